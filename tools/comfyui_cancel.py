"""Tool `comfyui_cancel`: stop a submitted job on its ComfyUI server."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.jobs import cancel


class ComfyuiCancelTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from cancel(self, tool_parameters)

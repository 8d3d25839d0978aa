"""Tool `comfyui_collect`: the state of a submitted job, or its outputs once it has finished."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.jobs import collect


class ComfyuiCollectTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from collect(self, tool_parameters)

"""Tool `text_to_image`: only a prompt; a built-in BizyAir workflow does the rest. With `mode`
submit it returns a job id at once (collected with comfyui_collect)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.jobs import invoke_in_mode
from tools.params import text_to_image_request


class TextToImageTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke_in_mode(self, tool_parameters, text_to_image_request, "text_to_image")

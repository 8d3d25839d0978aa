"""Tool `text_to_image`: only a prompt; a built-in BizyAir workflow does the rest."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.delivery import invoke
from tools.params import text_to_image_request


class TextToImageTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke(self, tool_parameters, text_to_image_request)

"""Tool `image_to_video`: a BizyAir cloud model from the catalogue, no workflow needed
(comfyui_bridge/catalogue, tools/catalogue_requests.py)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.catalogue_requests import image_to_video_request
from tools.delivery import invoke


class ImageToVideoTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke(self, tool_parameters, image_to_video_request)

"""Tool `image_to_video`: a BizyAir cloud model from the catalogue, no workflow needed
(comfyui_bridge/catalogue, tools/catalogue_requests.py). With `mode` submit it returns a job id
at once (collected with comfyui_collect)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.catalogue_requests import image_to_video_request
from tools.jobs import invoke_in_mode


class ImageToVideoTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke_in_mode(self, tool_parameters, image_to_video_request, "image_to_video")

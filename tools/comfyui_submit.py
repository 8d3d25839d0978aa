"""Tool `comfyui_submit`: queue the builder's workflow and return a job id at once."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.jobs import submit
from tools.params import workflow_request


class ComfyuiSubmitTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from submit(self, tool_parameters, workflow_request, "comfyui_submit")

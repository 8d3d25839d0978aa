"""Tool `comfyui_workflow`: run the builder's workflow with the caller's prompt."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from comfyui_bridge.models import RunRequest
from tools import params
from tools.delivery import invoke


class ComfyuiWorkflowTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke(self, tool_parameters, workflow_request)


def workflow_request(tool_parameters: dict[str, Any]) -> RunRequest:
    return params.run_request(tool_parameters, params.workflow_from(tool_parameters))

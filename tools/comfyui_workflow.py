"""Tool `comfyui_workflow`: run the builder's workflow with the caller's prompt."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.delivery import invoke
from tools.params import workflow_request


class ComfyuiWorkflowTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke(self, tool_parameters, workflow_request)

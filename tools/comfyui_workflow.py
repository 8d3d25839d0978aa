"""Tool `comfyui_workflow`: run the builder's workflow with the caller's prompt."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from comfyui_bridge.errors import BridgeError
from tools import params
from tools.delivery import fail, run_and_deliver
from tools.settings import credential_secrets, engine_from, storage_from


class ComfyuiWorkflowTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials
        secrets = credential_secrets(credentials)
        error: BridgeError | None = None
        try:
            engine = engine_from(credentials)
            storage = storage_from(credentials)
            request = params.run_request(tool_parameters, params.workflow_from(tool_parameters))
            options = params.delivery_options(tool_parameters)
        except BridgeError as exc:
            error = exc
        if error is not None:
            raise fail(error, secrets)
        yield from run_and_deliver(self, engine, storage, request, options, secrets)

"""Tool `text_to_image`: only a prompt; a built-in BizyAir workflow does the rest."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from comfyui_bridge.builtin import BUILTIN_MODELS, apply_size, find_size_node, load_builtin
from comfyui_bridge.errors import InputError
from comfyui_bridge.models import RunRequest
from tools import params
from tools.delivery import invoke
from tools.settings import DEFAULT_TIMEOUT, MAX_TIMEOUT, number, text


class TextToImageTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from invoke(self, tool_parameters, text_to_image_request)


def text_to_image_request(tool_parameters: dict[str, Any]) -> RunRequest:
    prompt = text(tool_parameters, "prompt")
    if not prompt:
        raise InputError("The prompt is empty: describe the picture you want.",
                         message_zh="提示词为空：请描述想要生成的画面。")
    custom = tool_parameters.get("workflow")
    if custom is not None:
        graph = params.workflow_from({"workflow": custom})
    else:
        model = text(tool_parameters, "model") or "sdxl"
        if model not in BUILTIN_MODELS:
            raise InputError(f"Unknown model '{model}'. Choose one of: {', '.join(BUILTIN_MODELS)}.",
                             message_zh=f"未知模型“{model}”，可选：{', '.join(BUILTIN_MODELS)}。")
        graph = load_builtin(model)
    width = number(tool_parameters, "width", None, low=64, high=4096, integer=True)
    height = number(tool_parameters, "height", None, low=64, high=4096, integer=True)
    if width or height:
        # A replacement workflow may set its size elsewhere; only the built-ins must have a size node.
        if custom is None or find_size_node(graph) is not None:
            apply_size(graph, int(width or 1024), int(height or 1024))
    return RunRequest(
        workflow=graph,
        prompt=prompt,
        negative_prompt=text(tool_parameters, "negative_prompt"),
        seed=params.seed(tool_parameters),
        timeout=float(number(tool_parameters, "timeout", DEFAULT_TIMEOUT, low=10, high=MAX_TIMEOUT)),
    )

"""Tool parameters → a RunRequest. Every bad value gets a message naming the parameter and the fix.

Every parser here is total: whatever type Dify (or a variable wired into the tool) sends — text,
numbers including NaN and infinities, booleans, lists, dicts nested a million deep, file objects
whose download fails — the result is a value or an InputError, never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfyui_bridge.builtin import BUILTIN_MODELS, apply_size, find_size_node, load_builtin
from comfyui_bridge.errors import InputError
from comfyui_bridge.media import plain
from comfyui_bridge.models import RunRequest
from comfyui_bridge.overrides import load_overrides
from comfyui_bridge.workflow import MAX_BYTES as MAX_WORKFLOW_BYTES
from comfyui_bridge.workflow import load_workflow
from tools.settings import (
    DEFAULT_MAX_BLOB_MB,
    DEFAULT_TIMEOUT,
    HARD_BLOB_LIMIT,
    MAX_NAME_CHARS,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    number,
    text,
)

# The text_to_image YAML's limits for width and height (the form and the code agree).
MIN_SIDE, MAX_SIDE, DEFAULT_SIDE = 256, 2048, 1024
MAX_SEED = 2 ** 64 - 1     # ComfyUI's and BizyAir's seed inputs stop at 0xffffffffffffffff
MAX_BLOB_MB = 30.0
MAX_IMAGES = 32
_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off", "")


@dataclass
class DeliveryOptions:
    max_blob_bytes: int
    progress: bool


def file_bytes(file: Any, what: str, what_zh: str) -> bytes:
    """Bytes of a Dify file parameter, with a useful message when Dify's file URL is unreachable."""
    try:
        data = file.blob
    except Exception as exc:  # noqa: BLE001 - httpx/ValueError variants from the SDK, or not a file at all
        reason = str(exc)[:2000]
        hint = ""
        if "FILES_URL" in reason or "protocol" in reason.lower():
            hint = (" Dify gave the plugin a relative file URL: set FILES_URL (or INTERNAL_FILES_URL) in "
                    "Dify's .env to an address the plugin daemon can reach, e.g. http://api:5001.")
        elif "timed out" in reason.lower() or "timeout" in reason.lower():
            hint = " The download timed out; the file may be too large for the SDK's 5 s limit."
        raise InputError(f"Could not read the {what} file from Dify.{hint}",
                         message_zh=f"无法从 Dify 读取{what_zh}文件。请检查 Dify 的 FILES_URL 配置。") from None
    if not isinstance(data, (bytes, bytearray)):
        raise InputError(f"The {what} parameter is not a file.", message_zh=f"{what_zh}参数不是文件。")
    return bytes(data)


def workflow_from(params: dict[str, Any]) -> dict:
    file = params.get("workflow")
    if isinstance(file, list):          # a file-list variable wired into the file parameter
        if len(file) != 1:
            raise InputError(f"Give exactly one workflow file (got {len(file)}).",
                             message_zh=f"请只提供一个工作流文件（收到 {len(file)} 个）。")
        file = file[0]
    raw_text = text(params, "workflow_json", limit=MAX_WORKFLOW_BYTES)
    if isinstance(file, dict):          # already-parsed JSON from a variable
        return load_workflow(file)
    if file is not None and not isinstance(file, str):
        return load_workflow(file_bytes(file, "workflow", "工作流"))
    if raw_text:
        return load_workflow(raw_text)
    raise InputError("No workflow given. Attach the API-format workflow file (ComfyUI: Workflow → Export (API)) "
                     "to the 'workflow' parameter, or paste its JSON into 'workflow_json'.",
                     message_zh="没有提供工作流。请把 API 格式的工作流文件（ComfyUI：工作流 → 导出 (API)）"
                                "传给“workflow”参数，或把其 JSON 粘贴到“workflow_json”。")


def seed(params: dict[str, Any]) -> int | None:
    """Empty: a fresh random seed per run. Else a whole number from 0 to 2^64-1 (kept exact)."""
    value = number(params, "seed", None, low=0, high=MAX_SEED, integer=True)
    return None if value is None else int(value)


def overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The overrides as an object (JSON text is parsed with bounds on size and nesting); plan.py
    validates them against the workflow, so a mistake is reported with the node it concerns."""
    return load_overrides(params.get("overrides"))


def images(params: dict[str, Any]) -> list[tuple[str, bytes]]:
    files = params.get("images")
    if files is None or files == "":
        return []
    if not isinstance(files, list):
        files = [files]
    if len(files) > MAX_IMAGES:
        raise InputError(f"Too many input images ({len(files)}; at most {MAX_IMAGES}).",
                         message_zh=f"输入图片过多（{len(files)} 张，最多 {MAX_IMAGES} 张）。")
    out = []
    for index, f in enumerate(files, 1):
        if isinstance(f, (str, bytes, dict, list, int, float)) or f is None:
            raise InputError(f"Input image #{index} is not a file: pass the images as Dify files.",
                             message_zh=f"第 {index} 张输入图片不是文件，请以 Dify 文件形式传入。")
        name = getattr(f, "filename", None)
        if not isinstance(name, str) or not name:
            extension = getattr(f, "extension", None)
            name = f"image_{index}{extension if isinstance(extension, str) and len(extension) <= 12 else '.png'}"
        out.append((name[-200:], file_bytes(f, f"image #{index}", f"第 {index} 张图片")))
    return out


def node_list(params: dict[str, Any], name: str) -> list[str]:
    return [part.strip() for part in text(params, name, limit=MAX_NAME_CHARS).replace("\n", ",").split(",")
            if part.strip()]


def timeout(params: dict[str, Any]) -> float:
    value = number(params, "timeout", DEFAULT_TIMEOUT, low=MIN_TIMEOUT, high=MAX_TIMEOUT, unit="seconds")
    return DEFAULT_TIMEOUT if value is None else float(value)


def run_request(params: dict[str, Any], workflow: dict) -> RunRequest:
    return RunRequest(
        workflow=workflow,
        prompt=text(params, "prompt"),
        negative_prompt=text(params, "negative_prompt"),
        prompt_node=text(params, "prompt_node", limit=MAX_NAME_CHARS),
        negative_node=text(params, "negative_node", limit=MAX_NAME_CHARS),
        seed=seed(params),
        overrides=overrides(params),
        images=images(params),
        image_nodes=node_list(params, "image_nodes"),
        timeout=timeout(params),
    )


def workflow_request(params: dict[str, Any]) -> RunRequest:
    """The `comfyui_workflow` tool's request."""
    return run_request(params, workflow_from(params))


def flag(params: dict[str, Any], name: str) -> bool:
    """A boolean parameter: true/false, 1/0, yes/no, on/off; absent is false."""
    raw = params.get(name)
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise InputError(f"Parameter '{name}' must be true or false.", message_zh=f"参数“{name}”必须是 true 或 false。")


def delivery_options(params: dict[str, Any]) -> DeliveryOptions:
    value = number(params, "max_blob_mb", DEFAULT_MAX_BLOB_MB, low=0, high=MAX_BLOB_MB, unit="MB")
    mb = DEFAULT_MAX_BLOB_MB if value is None else float(value)
    return DeliveryOptions(max_blob_bytes=min(int(mb * 1024 * 1024), HARD_BLOB_LIMIT),
                           progress=flag(params, "progress"))


def text_to_image_request(tool_parameters: dict[str, Any]) -> RunRequest:
    """The `text_to_image` tool's request: a built-in workflow (or the given one), prompt, size, seed."""
    prompt = text(tool_parameters, "prompt")
    if not prompt:
        raise InputError("The prompt is empty: describe the picture you want.",
                         message_zh="提示词为空：请描述想要生成的画面。")
    custom = tool_parameters.get("workflow")
    if custom == "" or custom == []:     # an unset file parameter
        custom = None
    if custom is not None:
        graph = workflow_from({"workflow": custom})
    else:
        model = text(tool_parameters, "model", limit=MAX_NAME_CHARS) or "sdxl"
        if model not in BUILTIN_MODELS:
            raise InputError(f"Unknown model '{plain(model, 60)}'. Choose one of: {', '.join(BUILTIN_MODELS)}.",
                             message_zh=f"未知模型“{plain(model, 60)}”，可选：{', '.join(BUILTIN_MODELS)}。")
        graph = load_builtin(model)
    width = number(tool_parameters, "width", None, low=MIN_SIDE, high=MAX_SIDE, integer=True, unit="pixels")
    height = number(tool_parameters, "height", None, low=MIN_SIDE, high=MAX_SIDE, integer=True, unit="pixels")
    if width or height:
        # A replacement workflow may set its size elsewhere; only the built-ins must have a size node.
        if custom is None or find_size_node(graph) is not None:
            apply_size(graph, int(width or DEFAULT_SIDE), int(height or DEFAULT_SIDE))
    return RunRequest(
        workflow=graph,
        prompt=prompt,
        negative_prompt=text(tool_parameters, "negative_prompt"),
        seed=seed(tool_parameters),
        timeout=timeout(tool_parameters),
    )

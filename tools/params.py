"""Tool parameters → a RunRequest. Every bad value gets a message naming the parameter and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfyui_bridge.errors import InputError
from comfyui_bridge.models import RunRequest
from comfyui_bridge.workflow import load_workflow
from tools.settings import DEFAULT_MAX_BLOB_MB, DEFAULT_TIMEOUT, HARD_BLOB_LIMIT, MAX_TIMEOUT, number, text


@dataclass
class DeliveryOptions:
    max_blob_bytes: int
    progress: bool


def file_bytes(file: Any, what: str, what_zh: str) -> bytes:
    """Bytes of a Dify file parameter, with a useful message when Dify's file URL is unreachable."""
    try:
        return file.blob
    except Exception as exc:  # noqa: BLE001 - httpx/ValueError variants from the SDK
        reason = str(exc)
        hint = ""
        if "FILES_URL" in reason or "protocol" in reason.lower():
            hint = (" Dify gave the plugin a relative file URL: set FILES_URL (or INTERNAL_FILES_URL) in "
                    "Dify's .env to an address the plugin daemon can reach, e.g. http://api:5001.")
        elif "timed out" in reason.lower() or "timeout" in reason.lower():
            hint = " The download timed out; the file may be too large for the SDK's 5 s limit."
        raise InputError(f"Could not read the {what} file from Dify.{hint}",
                         message_zh=f"无法从 Dify 读取{what_zh}文件。请检查 Dify 的 FILES_URL 配置。") from None


def workflow_from(params: dict[str, Any]) -> dict:
    file = params.get("workflow")
    raw_text = text(params, "workflow_json")
    if file is not None and not isinstance(file, (str, dict)):
        return load_workflow(file_bytes(file, "workflow", "工作流"))
    if isinstance(file, dict):  # already-parsed JSON from a variable
        return load_workflow(file)
    if raw_text:
        return load_workflow(raw_text)
    raise InputError("No workflow given. Attach the API-format workflow file (ComfyUI: Workflow → Export (API)) "
                     "to the 'workflow' parameter, or paste its JSON into 'workflow_json'.",
                     message_zh="没有提供工作流。请把 API 格式的工作流文件（ComfyUI：工作流 → 导出 (API)）传给“workflow”参数，"
                                "或把其 JSON 粘贴到“workflow_json”。")


def seed(params: dict[str, Any]) -> int | None:
    raw = params.get("seed")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())  # big BizyAir seeds (up to 2^64-1) must not pass through float
    value = number(params, "seed", None, low=0, integer=True)
    return None if value is None else int(value)


def overrides(params: dict[str, Any]) -> dict[str, Any] | str:
    """The raw overrides (JSON text or an object); plan.py parses and validates them against the
    workflow, so a mistake is reported with the node it concerns."""
    raw = params.get("overrides")
    return raw.strip() if isinstance(raw, str) else (raw or {})


def images(params: dict[str, Any]) -> list[tuple[str, bytes]]:
    files = params.get("images") or []
    if not isinstance(files, list):
        files = [files]
    out = []
    for index, f in enumerate(files, 1):
        name = getattr(f, "filename", None) or f"image_{index}{getattr(f, 'extension', '') or '.png'}"
        out.append((str(name), file_bytes(f, f"image #{index}", f"第 {index} 张图片")))
    return out


def node_list(params: dict[str, Any], name: str) -> list[str]:
    return [part.strip() for part in text(params, name).replace("\n", ",").split(",") if part.strip()]


def run_request(params: dict[str, Any], workflow: dict) -> RunRequest:
    return RunRequest(
        workflow=workflow,
        prompt=text(params, "prompt"),
        negative_prompt=text(params, "negative_prompt"),
        prompt_node=text(params, "prompt_node"),
        negative_node=text(params, "negative_node"),
        seed=seed(params),
        overrides=overrides(params),
        images=images(params),
        image_nodes=node_list(params, "image_nodes"),
        timeout=float(number(params, "timeout", DEFAULT_TIMEOUT, low=10, high=MAX_TIMEOUT)),
    )


def delivery_options(params: dict[str, Any]) -> DeliveryOptions:
    mb = float(number(params, "max_blob_mb", DEFAULT_MAX_BLOB_MB, low=0, high=30))
    progress = params.get("progress")
    if isinstance(progress, str):
        progress = progress.strip().lower() in ("true", "1", "yes", "y", "on")
    return DeliveryOptions(max_blob_bytes=min(int(mb * 1024 * 1024), HARD_BLOB_LIMIT), progress=bool(progress))

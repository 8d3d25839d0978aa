"""Provider credentials and tool parameters → engine objects. Shared by the tools and the
provider (kept here so tools/ stays the only Dify-facing layer besides provider/)."""

from __future__ import annotations

from typing import Any

from comfyui_bridge.endpoint import ServerConfig, parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import InputError
from comfyui_bridge.storage import Storage
from comfyui_bridge.storage.cos import CosSettings, CosStorage

DEFAULT_TIMEOUT = 240.0
MAX_TIMEOUT = 590.0          # Dify kills an invocation at 600 s
DEFAULT_MAX_BLOB_MB = 15.0   # Dify struggles above ~15 MB and rejects blobs over 30 MiB
HARD_BLOB_LIMIT = 30 * 1024 * 1024 - 1024


def servers_from(credentials: dict[str, Any]) -> list[ServerConfig]:
    return parse_servers(str(credentials.get("comfyui_base_url") or ""),
                         str(credentials.get("comfyui_token") or ""),
                         str(credentials.get("comfyui_extra_header") or ""))


def engine_from(credentials: dict[str, Any]) -> Engine:
    return Engine(servers_from(credentials), bizyair_key=str(credentials.get("bizyair_api_key") or ""))


def storage_from(credentials: dict[str, Any]) -> Storage | None:
    """COS storage when configured, else None (the tool then yields blobs only). Built per
    invocation: credentials are never cached across tenants."""
    settings = CosSettings.from_credentials(credentials)
    return CosStorage(settings) if settings else None


def credential_secrets(credentials: dict[str, Any]) -> list[str]:
    names = ("comfyui_token", "comfyui_extra_header", "bizyair_api_key", "cos_secret_id",
             "cos_secret_key", "cos_token")
    out = []
    for name in names:
        value = str(credentials.get(name) or "").strip()
        if value:
            out.append(value)
            if ":" in value:  # "Name: value" headers: the value alone is the secret
                out.append(value.split(":", 1)[1].strip())
    return [v for v in out if len(v) >= 4]


def number(params: dict[str, Any], name: str, default: float | None, *, low: float | None = None,
           high: float | None = None, integer: bool = False) -> float | int | None:
    raw = params.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InputError(f"Parameter '{name}' must be a number, got {str(raw)[:40]!r}.",
                         message_zh=f"参数“{name}”必须是数字。") from None
    if integer:
        if value != int(value):
            raise InputError(f"Parameter '{name}' must be a whole number.", message_zh=f"参数“{name}”必须是整数。")
        value = int(value)
    if low is not None and value < low:
        raise InputError(f"Parameter '{name}' must be at least {low:g}.", message_zh=f"参数“{name}”不能小于 {low:g}。")
    if high is not None and value > high:
        raise InputError(f"Parameter '{name}' must be at most {high:g}.", message_zh=f"参数“{name}”不能大于 {high:g}。")
    return value


def text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    return "" if value is None else str(value).strip()

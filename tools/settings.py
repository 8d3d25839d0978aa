"""Provider credentials and tool parameters → engine objects. Shared by the tools and the
provider (kept here so tools/ stays the only Dify-facing layer besides provider/)."""

from __future__ import annotations

import math
import re
from typing import Any

from comfyui_bridge import models
from comfyui_bridge.endpoint import ServerConfig, parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import InputError
from comfyui_bridge.jsonsafe import shown
from comfyui_bridge.storage import Storage
from comfyui_bridge.storage.cos import CosSettings, CosStorage

DEFAULT_TIMEOUT = models.DEFAULT_TIMEOUT   # one default for every entry point (tool YAMLs say it too)
MIN_TIMEOUT = 10.0           # shorter cannot even queue a BizyAir run
MAX_TIMEOUT = 590.0          # Dify kills an invocation at 600 s
DEFAULT_MAX_BLOB_MB = 15.0   # Dify struggles above ~15 MB and rejects blobs over 30 MiB
HARD_BLOB_LIMIT = 30 * 1024 * 1024 - 1024


def servers_from(credentials: dict[str, Any]) -> list[ServerConfig]:
    return parse_servers(str(credentials.get("comfyui_base_url") or ""),
                         str(credentials.get("comfyui_token") or ""),
                         str(credentials.get("comfyui_extra_header") or ""))


def engine_from(credentials: dict[str, Any]) -> Engine:
    return Engine(servers_from(credentials), bizyair_key=str(credentials.get("bizyair_api_key") or ""),
                  comfy_org_key=str(credentials.get("comfy_org_api_key") or ""))


def storage_from(credentials: dict[str, Any]) -> Storage | None:
    """COS storage when configured, else None (the tool then yields blobs only). Built per
    invocation: credentials are never cached across tenants."""
    settings = CosSettings.from_credentials(credentials)
    return CosStorage(settings) if settings else None


def credential_secrets(credentials: dict[str, Any]) -> list[str]:
    names = ("comfyui_token", "comfyui_extra_header", "bizyair_api_key", "comfy_org_api_key", "cos_secret_id",
             "cos_secret_key", "cos_token")
    out = []
    for name in names:
        value = str(credentials.get(name) or "").strip()
        if value:
            out.append(value)
            if ":" in value:  # "Name: value" headers: the value alone is the secret
                out.append(value.split(":", 1)[1].strip())
    return [v for v in out if len(v) >= 4]


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?", re.ASCII)
_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)
MAX_NUMBER_CHARS = 100
MAX_TEXT_CHARS = 100_000       # a prompt; CLIP reads a few hundred tokens of it
MAX_NAME_CHARS = 1000          # node ids, titles, lists of them, a model name


def number(params: dict[str, Any], name: str, default: float | None, *, low: float, high: float,
           integer: bool = False, unit: str = "") -> float | int | None:
    """The parameter as a finite number from `low` to `high` (a whole number when `integer`; digit
    strings stay exact, so seeds up to 2^64-1 survive), `default` when empty, else InputError naming
    the parameter and the valid range. Total: any value Dify could send gives one of the two."""
    raw = params.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    value = _as_number(raw, integer)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise _number_error(name, raw, low, high, integer, unit)
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise _number_error(name, raw, low, high, integer, unit)
        value = int(value)
    if not low <= value <= high:
        raise _number_error(name, raw, low, high, integer, unit)
    return value


def _as_number(raw: Any, integer: bool) -> float | int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return raw
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if len(text) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(text):
        return None          # also "nan", "inf", "1_000", non-ASCII digits
    if _WHOLE.fullmatch(text):
        return int(text)     # at most 100 digits: exact, and fast
    return float(text)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _number_error(name: str, raw: Any, low: float, high: float, integer: bool, unit: str) -> InputError:
    kind, kind_zh = ("a whole number", "整数") if integer else ("a number", "数字")
    unit_text = f" {unit}" if unit else ""
    return InputError(f"Parameter '{name}' must be {kind} from {_fmt(low)} to {_fmt(high)}{unit_text}, "
                      f"not {shown(raw, 40)!r}.",
                      message_zh=f"参数“{name}”必须是 {_fmt(low)} 到 {_fmt(high)} 之间的{kind_zh}。")


def text(params: dict[str, Any], name: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    """The parameter as stripped text ('' when absent). Numbers are taken as their digits; any other
    type, or more than `limit` characters, is an InputError naming the parameter."""
    value = params.get(name)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"Parameter '{name}' must be text, not {type(value).__name__}.",
                         message_zh=f"参数“{name}”必须是文本。")
    if len(value) > limit:
        raise InputError(f"Parameter '{name}' is too long ({len(value)} characters; at most {limit}).",
                         message_zh=f"参数“{name}”过长（{len(value)} 个字符，最多 {limit} 个）。")
    return value.strip()

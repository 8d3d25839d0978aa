"""BizyAir run-time failures → short English + Chinese messages with the action to take."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..scrub import one_line
from .diagnosis import SET_KEY_ACTION, SET_KEY_ACTION_ZH

_DEPRECATED = ("This node is deprecated", "该节点已经停止支持")
_CODE_PATTERNS = (
    re.compile(r"\[错误码\s*(\d{3,6})\]"),                 # core/common/errors.py _append_code
    re.compile(r"(?i)error\s*code[:=\s]+(\d{3,6})"),     # older bizyengine: "Error code: 60000"
    re.compile(r"""['"]code['"]\s*:\s*['"]?(\d{5,6})"""),  # JSON / repr of a cloud answer
    re.compile(r"\bcode=(\d{5,6})\b"),
)
# Built-in workflows that replace retired nodes (the Kolors text encoder is the usual one).
_REPLACEMENT = {"BizyAir_MinusZoneChatGLM3TextEncode": "sdxl", "BizyAirGenerateLightningImage": "sdxl"}


@dataclass(frozen=True)
class _Kind:
    name: str
    en: str
    zh: str


_AUTH = _Kind(
    "auth",
    "BizyAir rejected the API key: it is missing, wrong or expired. Fix: " + SET_KEY_ACTION +
    "; for a container in server mode, enter a valid key in the plugin's credentials.",
    "BizyAir 拒绝了 API 密钥：密钥缺失、错误或已过期。解决：" + SET_KEY_ACTION_ZH
    + "；服务器模式的容器请在插件凭据中填写有效密钥。")
_SERVER_MODE_NO_KEY = _Kind(
    "server_mode_no_key",
    "The BizyAir container runs in server mode and received no API key with the workflow. Enter "
    "your BizyAir API key in the plugin's credentials.",
    "BizyAir 容器运行在服务器模式，工作流中没有附带 API 密钥。请在插件凭据中填写你的 BizyAir API 密钥。")
_KEY_EXPIRED = _Kind(
    "key_expired",
    "The BizyAir API key has expired or used up its quota. Create or renew a key on the API keys page "
    "of the SiliconFlow console (cloud.siliconflow.cn) and set it on the container.",
    "BizyAir API 密钥已过期或额度已用完。请在硅基流动控制台（cloud.siliconflow.cn）的 API 密钥页面"
    "创建或续期密钥，并设置到容器上。")
_BALANCE = _Kind(
    "balance",
    "The BizyAir account has insufficient balance. Top it up in the SiliconFlow console "
    "(cloud.siliconflow.cn), then run again.",
    "BizyAir 账户余额不足。请在硅基流动控制台（cloud.siliconflow.cn）充值后重试。")
_QUEUE_FULL = _Kind(
    "queue_full",
    "BizyAir's queue is full or the account's parallel-task limit is reached. Wait a moment and run "
    "again, or run fewer workflows at once.",
    "BizyAir 队列已满或已达到账户的并发任务上限。请稍后重试，或减少同时运行的工作流。")
_MODERATION = _Kind(
    "moderation",
    "BizyAir's content moderation rejected the prompt or input image. Change the prompt or image "
    "and run again.",
    "BizyAir 的内容审核拒绝了提示词或输入图片。请修改后重试。")
_SERVICE_DOWN = _Kind(
    "service_unavailable",
    "The BizyAir cloud service behind this node is unavailable or retired. Try again later, or use "
    "a workflow with other nodes (for example the built-in sdxl or flux_dev workflow).",
    "该节点背后的 BizyAir 云服务暂不可用或已下线。请稍后重试，"
    "或改用其他节点的工作流（例如内置的 sdxl 或 flux_dev 工作流）。")
_TIMEOUT = _Kind(
    "timeout",
    "The BizyAir cloud stopped answering: the node waited until the connection timed out or was "
    "reset (it ignores Interrupt meanwhile, for up to an hour). The container's connection to "
    "api.bizyair.cn drops traffic; check its outbound network or proxy, then run again.",
    "BizyAir 云端停止响应：节点一直等待到连接超时或被重置（期间无法中断，最长一小时）。"
    "容器到 api.bizyair.cn 的连接在丢包，请检查其出站网络或代理后重试。")
_NETWORK = _Kind(
    "network",
    "The BizyAir container cannot reach the BizyAir cloud (api.bizyair.cn): no internet or DNS "
    "from inside the container. Give it outbound HTTPS access (or an HTTPS_PROXY) and run again.",
    "BizyAir 容器无法连接 BizyAir 云端（api.bizyair.cn）：容器内没有网络或 DNS。"
    "请为其开通出站 HTTPS 访问（或设置 HTTPS_PROXY）后重试。")
_TASK_FAILED = _Kind(
    "cloud_failed",
    "The BizyAir cloud could not finish this node's task. Try again; if it keeps failing, try "
    "other settings or another workflow.",
    "BizyAir 云端未能完成该节点的任务。请重试；若持续失败，请更换参数或工作流。")

_CODE_KINDS = {
    20093: _KEY_EXPIRED, 20094: _KEY_EXPIRED,
    20049: _BALANCE, 20050: _BALANCE, 20051: _BALANCE,
    30039: _QUEUE_FULL, 30040: _QUEUE_FULL,
    20021: _MODERATION,
    20052: _AUTH, 401000: _AUTH,
    60000: _SERVICE_DOWN,
}
_AUTH_TEXT = ("Key is invalid", "Error validating API key", "API key validation failed",
              "API 密钥无效或已过期", "无效的API密钥", "Unauthorized")
_TIMEOUT_TEXT = ("Timeout waiting for task", "Task processing timeout", "task timed out",
                 "Connection reset by peer")
_NETWORK_TEXT = ("网络连接异常", "Cannot connect to host", "Connection error", "Name or service not known",
                 "Temporary failure in name resolution", "urlopen error", "Network is unreachable")
_SERVICE_TEXT = ("后端服务暂不可用或已下线",)


def explain_failure(node_type: str, exception_type: str, exception_message: str,
                    secrets: Iterable[str] = ()) -> tuple[str, str, dict] | None:
    """A short (en, zh, detail) explanation of a BizyAir node failure, or None if not BizyAir's.

    `detail` holds node type, exception type, kind, error code (if any) and the scrubbed first
    200 characters of the message. Never pass or include `current_inputs`: BizyAir's hold the whole
    prompt (and, in server mode, the key).
    """
    secrets = list(secrets)
    node_type = str(node_type or "")
    exc_type = str(exception_type or "")
    raw = str(exception_message or "")
    if not _is_bizyair(node_type, exc_type, raw):
        return None
    code = _error_code(raw)
    kind = _classify(node_type, exc_type, raw, code)
    detail: dict[str, Any] = {"node_type": one_line(node_type, 80, secrets),
                              "exception_type": one_line(exc_type, 120, secrets),
                              "kind": kind.name, "text": one_line(raw, 200, secrets)}
    if code is not None:
        detail["error_code"] = code
    if kind.name == "deprecated":
        detail["replacement"] = _REPLACEMENT.get(node_type, "sdxl or flux_dev")
    en, zh = kind.en, kind.zh
    if kind is _TASK_FAILED or kind.name == "unknown":
        short = one_line(raw, 160, secrets)
        if short:
            en += f" (BizyAir said: {short})"
            zh += f"（BizyAir 返回：{short}）"
    suffix = f" [code {code}]" if code is not None else ""
    node = detail["node_type"]
    return f"Node {node} failed: {en}{suffix}", f"节点 {node} 失败：{zh}{suffix}", detail


def _is_bizyair(node_type: str, exc_type: str, raw: str) -> bool:
    return (node_type.startswith("BizyAir") or exc_type.startswith("bizyengine.")
            or "api.bizyair" in raw or "BizyAir" in raw)


def _error_code(raw: str) -> int | None:
    """The cloud's error code in the text, if any (20000 is the cloud's "OK", never an error)."""
    for pattern in _CODE_PATTERNS:
        for match in pattern.finditer(raw):
            if int(match.group(1)) != 20000:
                return int(match.group(1))
    return None


def _classify(node_type: str, exc_type: str, raw: str, code: int | None) -> _Kind:
    short_type = exc_type.rsplit(".", 1)[-1]
    if any(s in raw for s in _DEPRECATED):
        return _deprecated(node_type)
    if code in _CODE_KINDS:
        return _CODE_KINDS[code]
    if short_type == "BizyAirAuthError" or any(s in raw for s in _AUTH_TEXT):
        return _AUTH
    if short_type == "KeyError" and "api_key" in raw:
        # Server mode without the magic node: bizyengine indexes extra_data["api_key"].
        return _SERVER_MODE_NO_KEY
    if short_type in ("TimeoutError", "ConnectionResetError", "ServerTimeoutError") or \
            any(s in raw for s in _TIMEOUT_TEXT):
        return _TIMEOUT
    if short_type.startswith("ClientConnector") or any(s in raw for s in _NETWORK_TEXT):
        return _NETWORK
    if any(s in raw for s in _SERVICE_TEXT):
        return _SERVICE_DOWN
    if short_type in ("RuntimeError", "ValueError") and ("failed" in raw.lower() or "Task" in raw):
        return _TASK_FAILED
    return _Kind("unknown",
                 "The node failed inside BizyAir. Check the BizyAir container's log for details.",
                 "该节点在 BizyAir 内部出错。请查看 BizyAir 容器日志了解详情。")


def _deprecated(node_type: str) -> _Kind:
    instead = _REPLACEMENT.get(node_type)
    use_en = f"the built-in '{instead}' workflow" if instead else "the built-in 'sdxl' or 'flux_dev' workflow"
    use_zh = f"内置的“{instead}”工作流" if instead else "内置的“sdxl”或“flux_dev”工作流"
    return _Kind("deprecated",
                 "BizyAir retired this node: it always fails, whatever the key. Use a workflow "
                 f"without it, for example {use_en}.",
                 f"该节点已被 BizyAir 停用，无论密钥如何都会失败。请改用不含该节点的工作流，例如{use_zh}。")

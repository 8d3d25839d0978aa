"""What we know about BizyAir containers (ComfyUI + SiliconFlow's BizyAir custom nodes, bizyengine).

A BizyAir container looks like plain ComfyUI from outside: /prompt, ws, /history and /view are
unchanged. What differs, and what this module knows about:

- its API key is never checked at start-up; a missing or wrong key only shows up at run time as an
  `execution_error` on whichever BizyAir node runs first (`diagnose` checks it up front);
- a container started with BIZYAIR_SERVER_MODE holds no key and expects one with every prompt
  (`apply_server_mode_key`);
- its error texts carry ANSI codes, whole `sk-…` keys and Chinese-only wording (`explain_failure`);
- third-party API nodes may return stock placeholder media instead of failing (`is_placeholder`);
- it caches cloud results on disk for 7 days, keyed by the sub-graph including the seed (`cache_note`).

Facts come from bizyengine 1.2.114 (PyPI wheel) and from runs against a real container; file
references below are paths inside that wheel (`bizyengine/...`).
"""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .client import ComfyClient
from .errors import AuthRejected, BridgeError, ConnectionFailed
from .scrub import one_line

# ---- key states ------------------------------------------------------------------------------

KEY_VALID = "valid"
KEY_INVALID_OR_OFFLINE = "invalid_or_offline"
KEY_NOT_LOADED_OR_SERVER_MODE = "not_loaded_or_server_mode"
KEY_NOT_APPLICABLE = "not_applicable"

# Any class every BizyAir install registers; /object_info/<it> is {} when BizyAir did not load.
# (/bizyair/get_api_key proves nothing: bizyengine/misc/auth.py registers it even when the rest of
# the package failed to import, e.g. with mcp 2.x.)
PROBE_CLASS = "BizyAir_KSampler"

# The container's key check calls the BizyAir cloud; on a network that drops packets it would hang
# for as long as we let it. A credential check should not wait that long.
KEY_CHECK_TIMEOUT = 10.0
ROUTE_PROBE_TIMEOUT = 3.0

_SET_KEY_ACTION = ("set BIZYAIR_API_KEY on the container (docker run -e BIZYAIR_API_KEY=sk-…) "
                   "or log in once in its ComfyUI UI")
_SET_KEY_ACTION_ZH = "请在容器上设置 BIZYAIR_API_KEY（docker run -e BIZYAIR_API_KEY=sk-…），或在其 ComfyUI 界面中登录一次"


@dataclass
class Diagnosis:
    """What a BizyAir pre-flight check found on one server. `ok` False means runs will fail."""

    server: str
    comfyui_version: str
    bizyair_installed: bool
    key_state: str
    ok: bool
    message: str
    message_zh: str
    detail: dict[str, Any] = field(default_factory=dict)


def diagnose(client: ComfyClient, server_mode_key_configured: bool = False,
             limit: float | None = None) -> Diagnosis:
    """Check one server: is it ComfyUI, are BizyAir nodes loaded, will its BizyAir key work?

    Raises the client's BridgeError when the server itself is unreachable or not ComfyUI (that
    error already says what to fix). Never copies text from the container's answers: they can
    echo whole keys.
    """
    label = client.server.label
    stats = client.system_stats(limit=limit)
    version = str((stats.get("system") or {}).get("comfyui_version") or "")
    detail: dict[str, Any] = {"server": label, "comfyui_version": version}

    installed = bool(client.object_info(PROBE_CLASS, limit=limit))
    detail["bizyair_installed"] = installed
    if not installed:
        return _plain_comfyui(client, label, version, detail, server_mode_key_configured, limit)

    check_limit = KEY_CHECK_TIMEOUT if limit is None else min(limit, KEY_CHECK_TIMEOUT)
    status = _user_info_status(client, check_limit)
    detail["user_info_status"] = status
    if status == 200:
        return Diagnosis(label, version, True, KEY_VALID, True,
                         f"BizyAir at {label} is ready: the container's BizyAir API key works.",
                         f"{label} 上的 BizyAir 已就绪：容器中的 BizyAir API 密钥有效。", detail)
    if status == "timeout":
        return Diagnosis(
            label, version, True, KEY_INVALID_OR_OFFLINE, False,
            f"BizyAir at {label} did not finish its key check within {check_limit:g} s: the "
            "container's connection to the BizyAir cloud (api.bizyair.cn) seems to hang, and runs "
            "would hang too. Check the container's outbound network or proxy.",
            f"{label} 上的 BizyAir 在 {check_limit:g} 秒内未完成密钥检查：容器到 BizyAir 云端"
            "（api.bizyair.cn）的连接似乎卡住了，运行也会卡住。请检查容器的出站网络或代理。", detail)

    server_mode = _server_mode(client, limit)
    detail["server_mode"] = server_mode
    if status == 401:
        return _no_valid_key(label, version, detail, server_mode_key_configured, server_mode)
    if status == 404 or server_mode:
        return _routes_missing(label, version, detail, server_mode_key_configured, server_mode)
    # 5xx or an unexpected 200 body (user/info only ever answered 200/20000 or 401 in captures).
    return Diagnosis(
        label, version, True, KEY_INVALID_OR_OFFLINE, False,
        f"BizyAir at {label} answered its key check with an unexpected result ({status}). Runs of "
        f"BizyAir nodes will probably fail; {_SET_KEY_ACTION}, and check the container's log.",
        f"{label} 上的 BizyAir 密钥检查返回了意外结果（{status}），BizyAir 节点很可能会运行失败；"
        f"{_SET_KEY_ACTION_ZH}，并查看容器日志。", detail)


def _plain_comfyui(client: ComfyClient, label: str, version: str, detail: dict,
                   key_configured: bool, limit: float | None) -> Diagnosis:
    named = f"ComfyUI {version}" if version else "ComfyUI"
    message = (f"{named} at {label} is plain ComfyUI, no BizyAir nodes: workflows with BizyAir "
               "nodes will not run there, other workflows will.")
    message_zh = f"{label} 上是普通 ComfyUI，没有 BizyAir 节点：含 BizyAir 节点的工作流无法在此运行，其他工作流可以。"
    # bizyengine/misc/auth.py registers /bizyair/get_api_key before the rest of the package is
    # imported, so the route answering while no class loaded means a broken install, not "absent".
    if _route_exists(client, "/bizyair/get_api_key", limit):
        detail["bizyair_import_failed"] = True
        message += (" BizyAir's files are there but its nodes failed to load (a known cause: "
                    "bizyengine with mcp 2.x; run pip install 'mcp<2' in the container and restart it).")
        message_zh += "BizyAir 文件存在但节点加载失败（已知原因：bizyengine 搭配 mcp 2.x；请在容器中执行 pip install 'mcp<2' 后重启）。"
    if key_configured:
        message += " The BizyAir API key in the plugin settings is not used by this server."
        message_zh += "插件设置中的 BizyAir API 密钥不会用于此服务器。"
    return Diagnosis(label, version, False, KEY_NOT_APPLICABLE, True, message, message_zh, detail)


def _no_valid_key(label: str, version: str, detail: dict, key_configured: bool,
                  server_mode: bool | None) -> Diagnosis:
    message = (f"BizyAir nodes are installed at {label}, but the container has no valid BizyAir API "
               "key, or no route to the BizyAir cloud (from outside both look the same). "
               f"Fix: {_SET_KEY_ACTION}, and make sure the container can reach api.bizyair.cn.")
    message_zh = (f"{label} 上已安装 BizyAir 节点，但容器没有有效的 BizyAir API 密钥，或无法连接 BizyAir 云端"
                  f"（从外部无法区分）。解决：{_SET_KEY_ACTION_ZH}，并确认容器能访问 api.bizyair.cn。")
    if key_configured:
        # bizyengine/core/nodes_base.py pop_api_key_and_prompt_id reads the key from the prompt
        # only when BIZYAIR_SERVER_MODE is on; otherwise it uses the container's own key.
        message += (" The BizyAir API key in the plugin settings is only used by containers started "
                    "with BIZYAIR_SERVER_MODE=1; this one is not in server mode, so it uses its own key.")
        message_zh += "插件设置中的 BizyAir API 密钥只用于以 BIZYAIR_SERVER_MODE=1 启动的容器；此容器不是服务器模式，使用的是它自己的密钥。"
    return Diagnosis(label, version, True, KEY_INVALID_OR_OFFLINE, False, message, message_zh, detail)


def _routes_missing(label: str, version: str, detail: dict, key_configured: bool,
                    server_mode: bool | None) -> Diagnosis:
    if server_mode:
        if key_configured:
            return Diagnosis(label, version, True, KEY_NOT_LOADED_OR_SERVER_MODE, True,
                             f"BizyAir at {label} runs in server mode: the plugin sends its BizyAir "
                             "API key with every run.",
                             f"{label} 上的 BizyAir 运行在服务器模式：插件会在每次运行时附带 BizyAir API 密钥。",
                             detail)
        return Diagnosis(label, version, True, KEY_NOT_LOADED_OR_SERVER_MODE, False,
                         f"BizyAir at {label} runs in server mode (BIZYAIR_SERVER_MODE) and holds no "
                         "key of its own: enter your BizyAir API key in the plugin's credentials.",
                         f"{label} 上的 BizyAir 运行在服务器模式（BIZYAIR_SERVER_MODE），自身不保存密钥："
                         "请在插件凭据中填写你的 BizyAir API 密钥。", detail)
    ok = key_configured and server_mode is None
    message = (f"BizyAir nodes are loaded at {label}, but its key-check route is missing: a partly "
               "broken BizyAir install, or a server mode this plugin cannot confirm. Check the "
               "container's start-up log for BizyAir import errors.")
    message_zh = (f"{label} 上已加载 BizyAir 节点，但缺少其密钥检查接口：可能是 BizyAir 安装不完整，"
                  "或是无法确认的服务器模式。请查看容器启动日志中的 BizyAir 导入错误。")
    if ok:
        message += " The plugin will send its BizyAir API key with every run."
        message_zh += "插件会在每次运行时附带其 BizyAir API 密钥。"
    return Diagnosis(label, version, True, KEY_NOT_LOADED_OR_SERVER_MODE, ok, message, message_zh, detail)


def _user_info_status(client: ComfyClient, limit: float) -> int | str:
    """HTTP status of GET /bizyair/user/info (200 only with body code 20000), or "timeout"."""
    try:
        resp = client.request("GET", "/bizyair/user/info", limit=limit)
    except AuthRejected as exc:
        # The client treats 401 as "proxy wants a token"; here it is BizyAir's answer (the
        # /system_stats call before went through, so the proxy, if any, let us in).
        status = exc.detail.get("status")
        if status == 401:
            return 401
        raise
    except ConnectionFailed as exc:
        if exc.code == "timeout":
            return "timeout"
        raise
    if resp.status_code != 200:
        return resp.status_code
    try:
        body = resp.json()
    except ValueError:
        return "unreadable 200"
    code = body.get("code") if isinstance(body, dict) else None
    if code == 20000:
        return 200
    # Only a number is repeated: any text from the container could carry a key.
    return f"200 with code {code}" if isinstance(code, int) else "200 without a code"


def _server_mode(client: ComfyClient, limit: float | None) -> bool | None:
    """GET /bizyair/server_mode → True/False; None when the route is absent or unreadable.
    bizyengine/bizy_server/server.py registers it in both modes, before the mode split."""
    probe_limit = ROUTE_PROBE_TIMEOUT if limit is None else min(limit, ROUTE_PROBE_TIMEOUT)
    try:
        resp = client.request("GET", "/bizyair/server_mode", limit=probe_limit)
        if resp.status_code != 200:
            return None
        data = resp.json().get("data")
        value = data.get("server_mode") if isinstance(data, dict) else None
        return value if isinstance(value, bool) else None
    except (BridgeError, ValueError, AttributeError):
        return None


def _route_exists(client: ComfyClient, path: str, limit: float | None) -> bool:
    probe_limit = ROUTE_PROBE_TIMEOUT if limit is None else min(limit, ROUTE_PROBE_TIMEOUT)
    try:
        resp = client.request("GET", path, limit=probe_limit)
    except BridgeError:
        return False
    # aiohttp's own 404 has an empty body; BizyAir's "no key" 404 says so in text.
    return resp.status_code != 404 or "api key" in resp.text.lower()


# ---- server mode -----------------------------------------------------------------------------

# bizyengine/core/nodes_base.py: BIZYAIR_PARAM_MAGIC_NODE_ID = "bizyair_magic_node".
SERVER_MODE_NODE_ID = "bizyair_magic_node"
# bizyengine/misc/nodes.py `class PassParameter(BizyAirBaseNode)`, registered with the "BizyAir_"
# prefix by core/nodes_base.py register_node(); no inputs, no outputs, never executed.
SERVER_MODE_NODE_CLASS = "BizyAir_PassParameter"


def apply_server_mode_key(graph: dict, extra_data: dict, key: str, prompt_id: str = "") -> None:
    """Give a BIZYAIR_SERVER_MODE container the BizyAir key for this one prompt (in place).

    How bizyengine 1.2.114 gets the key in server mode:
    - `core/common/env_var.py`: BIZYAIR_SERVER_MODE = env("BIZYAIR_SERVER_MODE", bool, False).
    - `core/common/client.py` get_api_key() / validate_api_key() / set_api_key() return early in
      server mode: the container neither holds nor validates a key.
    - Every BizyAir node has a hidden input `bizyair_prompt` = "PROMPT", i.e. the whole prompt as
      posted (`core/nodes_base.py` ensure_hidden_unique_id_and_prompt).
    - `core/nodes_base.py` pop_api_key_and_prompt_id(): in server mode, if the prompt has a node
      with id "bizyair_magic_node", it takes `api_key` and `prompt_id` from that node's `_meta`;
      nothing else is consulted (not extra_data, not HTTP headers). Without that node the key is
      missing and the first cloud call fails (KeyError 'api_key' in prompt_processor /
      trd_nodes_base, or "Bearer None" → 401).
    - The key then goes out as `Authorization: Bearer <key>` (`client.headers(api_key=...)`) and in
      the request body `exec_info.api_key` (`core/commands/processors/prompt_processor.py`).
    - `prompt_id` becomes the `X-BIZYAIR-PROMPT-ID` header and the key of the per-prompt counter of
      parallel API-node tasks (`bizyair_extras/third_party_api/trd_nodes_base.py` api_call), so it
      must be unique per run: pass the ComfyUI prompt id we queue under.
    - The `/bizyair/*` REST routes read an RSA-encrypted key from `Authorization` instead
      (`bizy_server/server.py` _get_request_api_key, `bizy_server/utils.py` decrypt_apikey); they
      play no part in running a prompt.

    `extra_data` is deliberately left unchanged: bizyengine never reads it, and ComfyUI stores it
    in /history like the prompt. The key does end up in the container's /history (inside this
    node) and in `execution_error.current_inputs.bizyair_prompt`: add `secrets(key)` to every scrub.
    An empty key does nothing.
    """
    del extra_data  # documented above: nothing to put there
    key = (key or "").strip()
    if not key:
        return
    graph[SERVER_MODE_NODE_ID] = {
        "class_type": SERVER_MODE_NODE_CLASS,
        "inputs": {},
        "_meta": {"api_key": key, "prompt_id": prompt_id or str(uuid.uuid4())},
    }


def remove_server_mode_key(graph: dict) -> dict:
    """A copy of `graph` without the key node, for anything we show or store."""
    return {k: v for k, v in graph.items() if k != SERVER_MODE_NODE_ID}


def secrets(key: str) -> list[str]:
    """Values to add to the scrub list when a BizyAir key is configured."""
    key = (key or "").strip()
    return [key] if key else []


# ---- execution errors ------------------------------------------------------------------------

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
    "BizyAir rejected the API key: it is missing, wrong or expired. Fix: " + _SET_KEY_ACTION +
    "; for a container in server mode, enter a valid key in the plugin's credentials.",
    "BizyAir 拒绝了 API 密钥：密钥缺失、错误或已过期。解决：" + _SET_KEY_ACTION_ZH + "；服务器模式的容器请在插件凭据中填写有效密钥。")
_SERVER_MODE_NO_KEY = _Kind(
    "server_mode_no_key",
    "The BizyAir container runs in server mode and received no API key with the workflow. Enter "
    "your BizyAir API key in the plugin's credentials.",
    "BizyAir 容器运行在服务器模式，工作流中没有附带 API 密钥。请在插件凭据中填写你的 BizyAir API 密钥。")
_KEY_EXPIRED = _Kind(
    "key_expired",
    "The BizyAir API key has expired or used up its quota. Create or renew a key at "
    "https://cloud.siliconflow.cn and set it on the container.",
    "BizyAir API 密钥已过期或额度已用完。请在 https://cloud.siliconflow.cn 创建或续期密钥，并设置到容器上。")
_BALANCE = _Kind(
    "balance",
    "The BizyAir account has insufficient balance. Top it up at https://cloud.siliconflow.cn, then "
    "run again.",
    "BizyAir 账户余额不足。请在 https://cloud.siliconflow.cn 充值后重试。")
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
    "该节点背后的 BizyAir 云服务暂不可用或已下线。请稍后重试，或改用其他节点的工作流（例如内置的 sdxl 或 flux_dev 工作流）。")
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
    "BizyAir 容器无法连接 BizyAir 云端（api.bizyair.cn）：容器内没有网络或 DNS。请为其开通出站 HTTPS 访问（或设置 HTTPS_PROXY）后重试。")
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


# ---- placeholder media -----------------------------------------------------------------------

# sha256 of the stock media bizyengine returns instead of raising when a third-party API node fails
# while sibling API tasks of the same prompt still run (trd_nodes_base.py api_call). Computed from
# bizyengine-1.2.114-py3-none-any.whl (PyPI), files
# bizyengine/bizyair_extras/third_party_api/placeholder.png (6920 bytes, 600×400 RGBA) and
# bizyengine/bizyair_extras/third_party_api/placeholder.mp4 (5783 bytes).
PLACEHOLDER_SIZES = frozenset({6920, 5783})   # bytes of placeholder.png, placeholder.mp4
PLACEHOLDER_SHA256 = frozenset({
    "add61636c790e93aeebc24523f2ade745c9f76b7da4da6f2f54eb9f3f7b8736d",  # placeholder.png
    "06abb29f80340f16cdac8b267efa8c0bea2e6e2870fb841203cd85a31111ba16",  # placeholder.mp4
})

# The node does not hand those bytes on: it decodes placeholder.png into an IMAGE tensor
# (bizyairsdk bytesio_to_image_tensor, RGBA float32) and SaveImage/PreviewImage write a new PNG
# (other compression, prompt metadata, values possibly off by one). So an output file is
# recognised by its pixels as well: the image is 600×400, background #dddddd, the word
# "Placeholder" in #999999. Below: the dark runs [start, end) of five rows through the word.
_PH_SIZE = (600, 400)
_PH_BACKGROUND = 0xDD
_PH_DARK_BELOW = 0xBB
_PH_BACKGROUND_ROWS = (20, 100, 160)
_PH_TEXT_ROWS = {
    180: ((122, 153), (163, 172), (285, 294), (364, 372), (403, 412)),
    190: ((122, 131), (148, 157), (163, 172), (187, 200), (224, 237), (257, 270), (285, 294),
          (299, 310), (333, 346), (364, 372), (389, 400), (403, 412), (429, 441), (457, 464),
          (470, 478)),
    200: ((122, 131), (139, 155), (163, 172), (199, 207), (214, 223), (248, 256), (271, 278),
          (285, 294), (307, 316), (323, 332), (347, 356), (364, 372), (380, 389), (403, 412),
          (419, 428), (443, 450), (457, 467)),
    210: ((122, 131), (163, 172), (180, 195), (199, 207), (213, 222), (247, 255), (285, 294),
          (308, 316), (323, 331), (348, 357), (364, 372), (379, 388), (403, 412), (418, 427),
          (457, 466)),
    220: ((122, 131), (163, 172), (178, 207), (218, 243), (251, 278), (285, 294), (308, 316),
          (327, 353), (364, 372), (382, 412), (423, 450), (457, 466)),
}
_PH_EDGE_SLACK = 8          # anti-aliased edge pixels that may land on the other side per row


def is_placeholder(data: bytes) -> bool:
    """True if `data` is BizyAir's stock placeholder image or video instead of a real result.

    Byte-identical files match by sha256. A PNG written by ComfyUI from the placeholder image
    matches by its pixels. A re-muxed placeholder video is not recognised (no video decoding here).
    """
    # Only files of the stock sizes can be byte-identical: skip hashing every real output.
    if len(data) in PLACEHOLDER_SIZES and hashlib.sha256(data).hexdigest() in PLACEHOLDER_SHA256:
        return True
    if not data.startswith(_PNG_MAGIC) or _png_size(data) != _PH_SIZE:
        return False
    try:
        rows = _png_grey_rows(data, max(_PH_TEXT_ROWS) + 1)
    except (ValueError, zlib.error, struct.error, IndexError):
        return False
    if rows is None:
        return False
    for y in _PH_BACKGROUND_ROWS:
        if any(abs(v - _PH_BACKGROUND) > 4 for v in rows[y]):
            return False
    for y, runs in _PH_TEXT_ROWS.items():
        expected = bytearray(_PH_SIZE[0])
        for start, end in runs:
            expected[start:end] = b"\x01" * (end - start)
        wrong = sum(1 for x, v in enumerate(rows[y]) if (v < _PH_DARK_BELOW) != bool(expected[x]))
        if wrong > _PH_EDGE_SLACK:
            return False
    return True


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}   # colour type → samples per pixel (8-bit only)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _png_grey_rows(data: bytes, count: int) -> list[bytes] | None:
    """First channel of the first `count` rows of an 8-bit, non-interlaced PNG (None otherwise)."""
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        return None
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or interlace or colour not in _PNG_CHANNELS or count > height:
        return None
    bpp = _PNG_CHANNELS[colour]
    stride = width * bpp
    raw = zlib.decompressobj().decompress(b"".join(idat), count * (stride + 1))
    prev, out = bytearray(stride), []
    for y in range(count):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, bpp)
        out.append(bytes(line[0::bpp]))
        prev = line
    return out


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    """Undo one PNG row filter (RFC 2083 §6)."""
    n = len(line)
    if kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    elif kind != 0:
        raise ValueError(f"bad PNG filter {kind}")
    return line


# ---- cache -----------------------------------------------------------------------------------

# bizyengine/core/configs/models.yaml cache_config.expiration: 604800 (7 days); the key is a sha256
# of the route and the encoded sub-graph, seed included (core/commands/servers/prompt_server.py).
def cache_note(seed_fixed: bool, is_bizyair: bool) -> str | None:
    """Bilingual note ("en\\nzh") that a fixed seed returns the cached BizyAir result, else None."""
    if not (seed_fixed and is_bizyair):
        return None
    return ("With a fixed seed, the BizyAir container returns its cached result for the same "
            "workflow and inputs for up to 7 days instead of generating a new one; leave the seed "
            "empty for a fresh result.\n"
            "使用固定种子时，对于相同的工作流和输入，BizyAir 容器会在 7 天内直接返回缓存结果，不会重新生成；"
            "如需新结果请将种子留空。")


__all__ = [
    "Diagnosis", "diagnose", "apply_server_mode_key", "remove_server_mode_key", "secrets",
    "explain_failure", "is_placeholder", "cache_note", "PLACEHOLDER_SHA256",
    "KEY_VALID", "KEY_INVALID_OR_OFFLINE", "KEY_NOT_LOADED_OR_SERVER_MODE", "KEY_NOT_APPLICABLE",
    "SERVER_MODE_NODE_ID", "SERVER_MODE_NODE_CLASS",
]

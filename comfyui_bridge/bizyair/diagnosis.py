"""Pre-flight check of a BizyAir container: is it ComfyUI, are the BizyAir nodes loaded, will its key
work? Never copies text from the container's answers: they can echo whole keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..client import ComfyClient
from ..deadline import Deadline
from ..errors import AuthRejected, BridgeError, ConnectionFailed
from .server_mode import ask_server_mode

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

SET_KEY_ACTION = ("set BIZYAIR_API_KEY on the container (docker run -e BIZYAIR_API_KEY=sk-…) "
                   "or log in once in its ComfyUI UI")
SET_KEY_ACTION_ZH = ("请在容器上设置 BIZYAIR_API_KEY（docker run -e BIZYAIR_API_KEY=sk-…），"
                     "或在其 ComfyUI 界面中登录一次")


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
             deadline: Deadline | None = None) -> Diagnosis:
    """Check one server: is it ComfyUI, are BizyAir nodes loaded, will its BizyAir key work?

    Raises the client's BridgeError when the server itself is unreachable or not ComfyUI (that
    error already says what to fix). Never copies text from the container's answers: they can
    echo whole keys.
    """
    deadline = deadline or Deadline.after(KEY_CHECK_TIMEOUT + 3 * ROUTE_PROBE_TIMEOUT + 10)
    label = client.server.label
    version = client.system_stats(deadline=deadline)
    detail: dict[str, Any] = {"server": label, "comfyui_version": version}

    installed = bool(client.object_info(PROBE_CLASS, deadline=deadline))
    detail["bizyair_installed"] = installed
    if not installed:
        return _plain_comfyui(client, label, version, detail, server_mode_key_configured, deadline)

    check_limit = min(KEY_CHECK_TIMEOUT, deadline.remaining())
    status = _user_info_status(client, deadline.within(KEY_CHECK_TIMEOUT))
    detail["user_info_status"] = status
    if status == 200:
        return Diagnosis(label, version, True, KEY_VALID, True,
                         f"BizyAir at {label} is ready: the container's BizyAir API key works.",
                         f"{label} 上的 BizyAir 已就绪：容器中的 BizyAir API 密钥有效。", detail)
    if status == "timeout":
        return Diagnosis(
            label, version, True, KEY_INVALID_OR_OFFLINE, False,
            f"BizyAir at {label} did not finish its key check within {check_limit:.0f} s: the "
            "container's connection to the BizyAir cloud (api.bizyair.cn) seems to hang, and runs "
            "would hang too. Check the container's outbound network or proxy.",
            f"{label} 上的 BizyAir 在 {check_limit:.0f} 秒内未完成密钥检查：容器到 BizyAir 云端"
            "（api.bizyair.cn）的连接似乎卡住了，运行也会卡住。请检查容器的出站网络或代理。", detail)

    server_mode = _server_mode(client, deadline)
    detail["server_mode"] = server_mode
    if status == 401:
        return _no_valid_key(label, version, detail, server_mode_key_configured, server_mode)
    if status == 404 or server_mode:
        return _routes_missing(label, version, detail, server_mode_key_configured, server_mode)
    # 5xx or an unexpected 200 body (user/info only ever answered 200/20000 or 401 in captures).
    return Diagnosis(
        label, version, True, KEY_INVALID_OR_OFFLINE, False,
        f"BizyAir at {label} answered its key check with an unexpected result ({status}). Runs of "
        f"BizyAir nodes will probably fail; {SET_KEY_ACTION}, and check the container's log.",
        f"{label} 上的 BizyAir 密钥检查返回了意外结果（{status}），BizyAir 节点很可能会运行失败；"
        f"{SET_KEY_ACTION_ZH}，并查看容器日志。", detail)


def _plain_comfyui(client: ComfyClient, label: str, version: str, detail: dict,
                   key_configured: bool, deadline: Deadline) -> Diagnosis:
    named = f"ComfyUI {version}" if version else "ComfyUI"
    message = (f"{named} at {label} is plain ComfyUI, no BizyAir nodes: workflows with BizyAir "
               "nodes will not run there, other workflows will.")
    message_zh = f"{label} 上是普通 ComfyUI，没有 BizyAir 节点：含 BizyAir 节点的工作流无法在此运行，其他工作流可以。"
    # bizyengine/misc/auth.py registers /bizyair/get_api_key before the rest of the package is
    # imported, so the route answering while no class loaded means a broken install, not "absent".
    if _route_exists(client, "/bizyair/get_api_key", deadline):
        detail["bizyair_import_failed"] = True
        message += (" BizyAir's files are there but its nodes failed to load (a known cause: "
                    "bizyengine with mcp 2.x; run pip install 'mcp<2' in the container and restart it).")
        message_zh += ("BizyAir 文件存在但节点加载失败（已知原因：bizyengine 搭配 mcp 2.x；"
                       "请在容器中执行 pip install 'mcp<2' 后重启）。")
    if key_configured:
        message += " The BizyAir API key in the plugin settings is not used by this server."
        message_zh += "插件设置中的 BizyAir API 密钥不会用于此服务器。"
    return Diagnosis(label, version, False, KEY_NOT_APPLICABLE, True, message, message_zh, detail)


def _no_valid_key(label: str, version: str, detail: dict, key_configured: bool,
                  server_mode: bool | None) -> Diagnosis:
    message = (f"BizyAir nodes are installed at {label}, but the container has no valid BizyAir API "
               "key, or no route to the BizyAir cloud (from outside both look the same). "
               f"Fix: {SET_KEY_ACTION}, and make sure the container can reach api.bizyair.cn.")
    message_zh = (f"{label} 上已安装 BizyAir 节点，但容器没有有效的 BizyAir API 密钥，或无法连接 BizyAir 云端"
                  f"（从外部无法区分）。解决：{SET_KEY_ACTION_ZH}，并确认容器能访问 api.bizyair.cn。")
    if key_configured:
        # bizyengine/core/nodes_base.py pop_api_key_and_prompt_id reads the key from the prompt
        # only when BIZYAIR_SERVER_MODE is on; otherwise it uses the container's own key.
        message += (" The BizyAir API key in the plugin settings is only used by containers started "
                    "with BIZYAIR_SERVER_MODE=1; this one is not in server mode, so it uses its own key.")
        message_zh += ("插件设置中的 BizyAir API 密钥只用于以 BIZYAIR_SERVER_MODE=1 启动的容器；"
                       "此容器不是服务器模式，使用的是它自己的密钥。")
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


def _user_info_status(client: ComfyClient, deadline: Deadline) -> int | str:
    """HTTP status of GET /bizyair/user/info (200 only with body code 20000), or "timeout"."""
    try:
        resp = client.request("GET", "/bizyair/user/info", deadline=deadline, max_bytes=256 * 1024)
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


def _server_mode(client: ComfyClient, deadline: Deadline) -> bool | None:
    """GET /bizyair/server_mode → True/False; None when the route is absent or unreadable. Always
    asked afresh here (a credential check), which also refreshes what runs remember."""
    return ask_server_mode(client, deadline.within(ROUTE_PROBE_TIMEOUT), fresh=True)


def _route_exists(client: ComfyClient, path: str, deadline: Deadline) -> bool:
    try:
        resp = client.request("GET", path, deadline=deadline.within(ROUTE_PROBE_TIMEOUT), max_bytes=256 * 1024)
    except BridgeError:
        return False
    # aiohttp's own 404 has an empty body; BizyAir's "no key" 404 says so in text.
    return resp.status_code != 404 or "api key" in resp.text.lower()

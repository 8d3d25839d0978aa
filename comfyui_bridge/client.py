"""HTTP access to one ComfyUI server.

Every call is bounded by a `Deadline` — connect, headers and the whole body, not each socket read
(a server trickling one byte a second is cut off at the deadline by the watchdog) — and by a size
limit checked before and after decompression. Every call carries the configured auth headers, turns
transport failures into errors a user can act on, and parses the answer totally
(`responses.py`): an unexpected shape is one clear BadResponse, never a raw exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from . import jsonsafe, responses
from .deadline import WATCHDOG, Deadline
from .endpoint import ServerConfig
from .errors import AuthRejected, BadResponse, ConnectionFailed, NotComfyUI, PromptRejected
from .guarded_http import GuardedAdapter
from .models import OutputRef
from .rejections import describe_rejection
from .scrub import one_line

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0          # one socket read; the call as a whole is bounded by its Deadline
DEFAULT_CALL = 35.0          # a call given no deadline (command line, checks) ends within this
MAX_JSON_BYTES = 16 * 1024 * 1024    # /history/<id>, /object_info/<Class>, /prompt answers: KBs in practice
MAX_QUEUE_BYTES = 64 * 1024 * 1024   # /queue lists every pending prompt whole
MAX_JSON_DEPTH = 100                 # our graph (≤ 64) inside ComfyUI's envelopes
CHUNK = 256 * 1024


@dataclass
class Reply:
    """A whole HTTP answer, read within the deadline and the size limit."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    max_bytes: int = MAX_JSON_BYTES

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; raises jsonsafe.JsonError (a ValueError) on anything else."""
        return jsonsafe.parse(self.content, max_bytes=self.max_bytes, max_depth=MAX_JSON_DEPTH)


# ---- the client --------------------------------------------------------------------------------

class ComfyClient:
    """A thin client for one server. Stateless apart from a pooled HTTP session."""

    def __init__(self, server: ServerConfig, session: requests.Session | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.server = server
        self.session = session or _session_for(server)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    # ---- plumbing -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, deadline: Deadline | None = None,
                max_bytes: int = MAX_JSON_BYTES, **kw: Any) -> Reply:
        """Send one request and read the whole answer, all within `deadline` (default: DEFAULT_CALL
        seconds from now) and `max_bytes` (after decompression)."""
        deadline = deadline or Deadline.after(DEFAULT_CALL)
        route = path.split("?")[0]
        with WATCHDOG.guard(deadline) as guard:
            try:
                resp = self._send(method, path, deadline, **kw)
                try:
                    body = _read_body(resp, max_bytes, self._too_large(route, max_bytes))
                    return Reply(resp.status_code, resp.headers, body, max_bytes)
                finally:
                    resp.close()
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if guard.tripped or deadline.expired():
                    raise self._timeout_error(method, route, deadline) from None
                raise self._transport_error(exc, method, route, deadline) from None

    def _send(self, method: str, path: str, deadline: Deadline, **kw: Any) -> requests.Response:
        """The request up to its headers (body not read); raises on auth walls and redirects."""
        headers = dict(self.server.headers())
        headers.update(kw.pop("headers", {}) or {})
        if deadline.expired():
            raise requests.exceptions.ReadTimeout("deadline passed before sending")
        resp = self.session.request(method, self.server.url(path), headers=headers, stream=True,
                                    timeout=(deadline.timeout(self.connect_timeout), deadline.timeout(self.read_timeout)),
                                    allow_redirects=False, **kw)
        if resp.status_code in (401, 403):
            resp.close()
            raise AuthRejected(
                f"{self.server.label} refused the request with HTTP {resp.status_code}. If ComfyUI is "
                "behind an auth proxy, set the ComfyUI token or extra header in the plugin's "
                "credentials; if one is set, check that it is still valid.",
                message_zh=f"{self.server.label} 以 HTTP {resp.status_code} 拒绝了请求。若 ComfyUI 位于鉴权代理之后，"
                           "请在插件凭据中填写 Token 或额外请求头；若已填写，请确认其仍然有效。",
                detail={"server": self.server.label, "status": resp.status_code})
        if 300 <= resp.status_code < 400:
            where = resp.headers.get("Location", "")
            resp.close()
            raise NotComfyUI(
                f"{self.server.label} redirected {path.split('?')[0]} to {one_line(where, 120, self.server.secrets())}. "
                "Use the final ComfyUI address (a login page in front of ComfyUI needs a token instead).",
                message_zh=f"{self.server.label} 将请求重定向到了别处。请填写最终的 ComfyUI 地址。",
                detail={"server": self.server.label, "status": resp.status_code})
        return resp

    def _why(self, exc: object) -> str:
        return one_line(exc, 160, self.server.secrets())

    def _timeout_error(self, method: str, route: str, deadline: Deadline) -> ConnectionFailed:
        return ConnectionFailed(
            f"ComfyUI at {self.server.label} did not finish answering {method} {route} in time. The server "
            "may be overloaded or frozen.",
            message_zh=f"{self.server.label} 上的 ComfyUI 未能在时限内完成对 {method} {route} 的响应，服务器可能过载或卡死。",
            detail={"server": self.server.label, "path": route}, code="timeout")

    def _too_large(self, route: str, max_bytes: int) -> BadResponse:
        return BadResponse(
            f"ComfyUI at {self.server.label} answered {route} with more than {max_bytes // (1024 * 1024)} MB; "
            "the answer was not read. The server is misbehaving (or is not ComfyUI).",
            message_zh=f"{self.server.label} 对 {route} 的响应超过 {max_bytes // (1024 * 1024)} MB，未读取。服务器行为异常。",
            detail={"server": self.server.label, "path": route}, code="too_large")

    def _transport_error(self, exc: BaseException, method: str, route: str, deadline: Deadline) -> ConnectionFailed:
        host = self.server.label
        if isinstance(exc, requests.exceptions.SSLError):
            return ConnectionFailed(
                f"TLS handshake with {host} failed ({self._why(exc)}). Check that the URL's scheme is right "
                "(http vs https) and that the certificate is valid.",
                message_zh=f"与 {host} 的 TLS 握手失败。请检查地址是 http 还是 https，以及证书是否有效。",
                detail={"server": host})
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return ConnectionFailed(
                f"Could not connect to {host} within {deadline.timeout(self.connect_timeout):.0f} s. Check the "
                "address and that a firewall lets Dify's containers reach it.",
                message_zh=f"在规定时间内无法连接 {host}。请检查地址，并确认防火墙允许 Dify 容器访问。",
                detail={"server": host}, code="connect_timeout")
        if isinstance(exc, requests.exceptions.Timeout):
            return ConnectionFailed(
                f"ComfyUI at {host} did not answer {method} {route} within {self.read_timeout:.0f} s. The server "
                "may be overloaded or frozen.",
                message_zh=f"{host} 上的 ComfyUI 在规定时间内没有响应，服务器可能过载或卡死。",
                detail={"server": host, "path": route}, code="timeout")
        text = str(exc)
        if any(s in text for s in ("Name or service not known", "NameResolution", "nodename nor servname",
                                    "Temporary failure in name resolution", "getaddrinfo failed")):
            return ConnectionFailed(
                f"The host name in {host} cannot be resolved. Check the spelling; inside Docker use the "
                "service name or host.docker.internal, not localhost.",
                message_zh=f"{host} 中的主机名无法解析。请检查拼写；在 Docker 中请使用服务名或 host.docker.internal，而不是 localhost。",
                detail={"server": host}, code="dns_failed")
        if "refused" in text.lower():
            return ConnectionFailed(
                f"Connection to {host} was refused: nothing listens there. Check that ComfyUI is running "
                "and the port is right; from Dify's containers, 127.0.0.1 is the container itself "
                "(use host.docker.internal or the server's LAN address).",
                message_zh=f"连接 {host} 被拒绝：该端口没有服务在监听。请确认 ComfyUI 正在运行且端口正确；"
                           "在 Dify 容器中 127.0.0.1 指向容器自身（请使用 host.docker.internal 或服务器的局域网地址）。",
                detail={"server": host}, code="refused")
        return ConnectionFailed(f"Cannot talk to {host} ({method} {route}): {self._why(exc)}",
                                message_zh=f"无法与 {host} 通信。", detail={"server": host, "path": route})

    def get_json(self, path: str, *, deadline: Deadline | None = None, max_bytes: int = MAX_JSON_BYTES,
                 **kw: Any) -> Any:
        return self._json(self.request("GET", path, deadline=deadline, max_bytes=max_bytes, **kw), path)

    def _json(self, resp: Reply, path: str) -> Any:
        route = path.split("?")[0]
        if resp.status_code == 404:
            raise NotComfyUI(
                f"{self.server.label} has no {route} route (HTTP 404): this is not a ComfyUI API root. "
                "Use the address you open ComfyUI with, e.g. http://host:8188, without extra path.",
                message_zh=f"{self.server.label} 没有 {route} 接口（HTTP 404），这不是 ComfyUI 的地址。"
                           "请填写打开 ComfyUI 界面所用的地址，例如 http://主机:8188。",
                detail={"server": self.server.label, "status": 404, "path": route})
        if resp.status_code >= 400:
            raise BadResponse(
                f"ComfyUI at {self.server.label} answered {route} with HTTP {resp.status_code}: "
                f"{one_line(resp.text[:2000], 200, self.server.secrets())}",
                message_zh=f"{self.server.label} 上的 ComfyUI 返回了 HTTP {resp.status_code}。",
                detail={"server": self.server.label, "status": resp.status_code, "path": route})
        try:
            return resp.json()
        except jsonsafe.JsonTooDeep:
            raise self._unexpected(route, "JSON nested too deep") from None
        except jsonsafe.JsonError:
            ctype = resp.headers.get("Content-Type", "")
            if "html" in ctype or resp.content.lstrip()[:1] == b"<":
                raise NotComfyUI(
                    f"{self.server.label} answered {route} with an HTML page, not ComfyUI's JSON. The URL "
                    "probably points at a web page or proxy login, not at ComfyUI.",
                    message_zh=f"{self.server.label} 返回了网页而不是 ComfyUI 的 JSON，地址可能指向了网页或代理登录页。",
                    detail={"server": self.server.label, "path": route}) from None
            raise BadResponse(
                f"ComfyUI at {self.server.label} answered {route} with a body that is not JSON.",
                message_zh=f"{self.server.label} 返回的内容不是 JSON。",
                detail={"server": self.server.label, "path": route}) from None

    def _unexpected(self, route: str, what: object) -> BadResponse:
        return BadResponse(
            f"ComfyUI at {self.server.label} answered {route} in an unexpected form: {one_line(what, 160)}.",
            message_zh=f"{self.server.label} 上的 ComfyUI 对 {route} 的响应格式异常：{one_line(what, 160)}。",
            detail={"server": self.server.label, "path": route}, code="bad_response")

    # ---- ComfyUI API ---------------------------------------------------------------------------

    def system_stats(self, deadline: Deadline | None = None) -> str:
        """ComfyUI's version ("" if it does not say); NotComfyUI when the answer is not ComfyUI's."""
        version = responses.system_version(self.get_json("/system_stats", deadline=deadline))
        if version is None:
            raise NotComfyUI(
                f"{self.server.label} answered /system_stats, but not like ComfyUI does. Check the URL.",
                message_zh=f"{self.server.label} 的 /system_stats 响应不像 ComfyUI。请检查地址。",
                detail={"server": self.server.label})
        return version

    def object_info(self, class_type: str, deadline: Deadline | None = None) -> dict:
        """Definition of one class ({} if unknown). Never the full /object_info: on a BizyAir
        container that call can freeze the whole server for ~80 s."""
        data = self.get_json(f"/object_info/{quote(class_type, safe='')}", deadline=deadline)
        if not isinstance(data, dict):
            raise self._unexpected("/object_info", "the answer is not an object")
        found = data.get(class_type)
        return found if isinstance(found, dict) else {}

    def queue_prompt(self, graph: dict, prompt_id: str, client_id: str, extra_data: dict | None = None,
                     deadline: Deadline | None = None) -> dict:
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = extra_data
        resp = self.request("POST", "/prompt", data=json.dumps(body), deadline=deadline,
                            headers={"Content-Type": "application/json"})
        if resp.status_code == 400:
            try:
                payload = resp.json()
            except jsonsafe.JsonError:
                payload = {}
            message, lines = describe_rejection(payload, graph)
            raise PromptRejected(message, lines=lines,
                                 message_zh="ComfyUI 拒绝了该工作流（校验失败）：\n" + "\n".join(lines),
                                 detail={"server": self.server.label, "node_errors": _node_error_summary(payload),
                                         "error_types": _error_types(payload)})
        if resp.status_code >= 500:
            raise BadResponse(
                f"ComfyUI at {self.server.label} failed on the workflow (HTTP {resp.status_code}: "
                f"{one_line(resp.text[:2000], 120, self.server.secrets())}). This happens when the file is not an "
                "API-format workflow; export it with 'Export (API)' in ComfyUI.",
                message_zh=f"ComfyUI 处理该工作流时出错（HTTP {resp.status_code}）。这通常是因为文件不是 API 格式，"
                           "请在 ComfyUI 中用“导出（API）”重新导出。",
                detail={"server": self.server.label, "status": resp.status_code})
        try:
            return responses.prompt_accepted(self._json(resp, "/prompt"), prompt_id)
        except responses.UnexpectedShape as exc:
            raise self._unexpected("/prompt", exc) from None

    def history(self, prompt_id: str, deadline: Deadline | None = None) -> responses.HistoryEntry | None:
        """The history entry of one prompt, or None while it is pending, running or unknown.
        Always /history/<id>: `/history?prompt_id=` is ignored by ComfyUI and returns everything."""
        data = self.get_json(f"/history/{quote(prompt_id, safe='')}", deadline=deadline)
        try:
            return responses.history_entry(data, prompt_id)
        except responses.UnexpectedShape as exc:
            raise self._unexpected("/history", exc) from None

    def queue(self, deadline: Deadline | None = None) -> responses.QueueView:
        data = self.get_json("/queue", deadline=deadline, max_bytes=MAX_QUEUE_BYTES)
        try:
            return responses.queue_view(data)
        except responses.UnexpectedShape as exc:
            raise self._unexpected("/queue", exc) from None

    def queue_state(self, prompt_id: str, deadline: Deadline | None = None) -> tuple[str, int]:
        """('running'|'pending'|'absent', position among pending (1-based, 0 if not pending))."""
        return self.queue(deadline).state(prompt_id)

    def queue_remaining(self, deadline: Deadline | None = None) -> int:
        data = self.get_json("/prompt", deadline=deadline)
        try:
            value = data["exec_info"]["queue_remaining"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TypeError
            return value
        except (KeyError, TypeError, IndexError):
            raise NotComfyUI(f"{self.server.label} answered /prompt, but not like ComfyUI does.",
                             message_zh=f"{self.server.label} 的 /prompt 响应不像 ComfyUI。",
                             detail={"server": self.server.label}) from None

    def interrupt(self, prompt_id: str, deadline: Deadline | None = None) -> None:
        # With a prompt_id ComfyUI only interrupts that prompt, never someone else's.
        self.request("POST", "/interrupt", json={"prompt_id": prompt_id}, deadline=deadline)

    def delete_queued(self, prompt_id: str, deadline: Deadline | None = None) -> None:
        self.request("POST", "/queue", json={"delete": [prompt_id]}, deadline=deadline)

    def delete_history(self, prompt_id: str, deadline: Deadline | None = None) -> None:
        self.request("POST", "/history", json={"delete": [prompt_id]}, deadline=deadline)

    def upload_image(self, name: str, data: bytes, mime_type: str = "application/octet-stream",
                     deadline: Deadline | None = None) -> str:
        """Upload an input image; returns the name to put in LoadImage (the server may rename)."""
        resp = self.request("POST", "/upload/image", files={"image": (name, data, mime_type)},
                            data={"type": "input"}, deadline=deadline)
        if resp.status_code == 413:
            raise BadResponse(f"The image '{name}' is too large for ComfyUI's upload limit.",
                              message_zh=f"图片“{name}”超出了 ComfyUI 的上传大小限制。",
                              detail={"server": self.server.label, "status": 413})
        info = self._json(resp, "/upload/image")
        stored = info.get("name") if isinstance(info, dict) else None
        sub = info.get("subfolder") if isinstance(info, dict) else None
        if not isinstance(stored, str) or not stored or (sub is not None and not isinstance(sub, str)):
            raise BadResponse(f"ComfyUI did not confirm the upload of '{name}'.",
                              message_zh=f"ComfyUI 没有确认图片“{name}”的上传。",
                              detail={"server": self.server.label})
        return f"{sub}/{stored}" if sub else stored

    def view(self, ref: OutputRef, max_bytes: int, deadline: Deadline | None = None) -> tuple[bytes, str]:
        """Download one output, whole, within `deadline` and `max_bytes`; checks the length
        against Content-Length (truncation)."""
        deadline = deadline or Deadline.after(DEFAULT_CALL)
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        name = one_line(ref.filename, 80)
        with WATCHDOG.guard(deadline) as guard:
            try:
                resp = self._send("GET", "/view", deadline, params=params)
                try:
                    if resp.status_code != 200:
                        raise BadResponse(
                            f"ComfyUI could not serve output '{name}' of node {one_line(ref.node_id, 40)} "
                            f"(HTTP {resp.status_code}).",
                            message_zh=f"ComfyUI 无法提供节点 {one_line(ref.node_id, 40)} 的输出文件“{name}”"
                                       f"（HTTP {resp.status_code}）。",
                            detail={"status": resp.status_code, "node_id": ref.node_id}, code="view_failed")
                    too_large = BadResponse(f"Output '{name}' is over the {max_bytes}-byte download limit.",
                                            message_zh=f"输出文件“{name}”超过了 {max_bytes} 字节的下载上限。",
                                            code="too_large", detail={"node_id": ref.node_id})
                    data = _read_body(resp, max_bytes, too_large)
                    return data, str(resp.headers.get("Content-Type", ""))[:200]
                finally:
                    resp.close()
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if guard.tripped or deadline.expired():
                    raise BadResponse(f"The download of '{name}' did not finish in time.",
                                      message_zh=f"下载“{name}”未能在时限内完成。", code="timeout",
                                      detail={"node_id": ref.node_id}) from None
                raise BadResponse(f"The download of '{name}' failed: {self._why(exc)}",
                                  message_zh=f"下载“{name}”失败。", code="truncated",
                                  detail={"node_id": ref.node_id}) from None

    def close(self) -> None:
        self.session.close()


class _Truncated(urllib3.exceptions.HTTPError):
    """The body ended before Content-Length said it would."""


def _read_body(resp: requests.Response, max_bytes: int, too_large: Exception) -> bytes:
    """The whole body, decompressed, at most `max_bytes` (checked before reading when the length is
    announced, and while reading, so a compression bomb stops at the limit). With a plain
    Content-Length: one read of exactly that many bytes (a single allocation; outputs can be
    hundreds of MB). Time is bounded by the caller's guard."""
    raw = resp.raw
    length = str(resp.headers.get("Content-Length", "")).strip()
    encoded = bool(resp.headers.get("Content-Encoding"))
    if length.isdigit() and not encoded:
        expected = int(length)
        if expected > max_bytes:
            raise too_large
        data = raw.read(expected)
        if len(data) != expected:
            raise _Truncated(f"cut off: {len(data)} of {expected} bytes")
        return data
    buf = bytearray()
    while True:
        chunk = raw.read(CHUNK, decode_content=True)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > max_bytes:
            raise too_large


def _session_for(server: ServerConfig) -> requests.Session:
    """A session honouring the environment's proxy and CA settings (Dify passes HTTP(S)_PROXY,
    NO_PROXY and REQUESTS_CA_BUNDLE to plugins), resolved once for this server instead of on
    every request. Its connections register with the deadline watchdog."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(server.base_url)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _node_error_summary(payload: Any, limit: int = 50) -> dict:
    """{node id: {class_type, errors}} from a /prompt 400 body, whatever its shape; at most `limit` nodes."""
    out: dict[str, Any] = {}
    node_errors = payload.get("node_errors") if isinstance(payload, dict) else None
    if not isinstance(node_errors, dict):
        return out
    for node_id, err in list(node_errors.items())[:limit]:
        if not isinstance(err, dict):
            continue
        items = jsonsafe.as_list(err.get("errors"))
        out[one_line(node_id, 40)] = {
            "class_type": one_line(err.get("class_type") or "", 80),
            "errors": [one_line(e.get("message", ""), 200) + (f" ({one_line(e.get('details'), 200)})"
                       if e.get("details") else "") for e in items[:10] if isinstance(e, dict)],
        }
    return out


def _error_types(payload: Any) -> list[str]:
    """The `type` of every problem in a /prompt 400 body (top-level and per node), at most 50."""
    kinds: list[str] = []
    if not isinstance(payload, dict):
        return kinds
    top = payload.get("error")
    if isinstance(top, dict) and isinstance(top.get("type"), str):
        kinds.append(top["type"][:60])
    node_errors = payload.get("node_errors")
    for err in (node_errors.values() if isinstance(node_errors, dict) else ()):
        items = err.get("errors") if isinstance(err, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and isinstance(item.get("type"), str) and len(kinds) < 50:
                kinds.append(item["type"][:60])
    return kinds

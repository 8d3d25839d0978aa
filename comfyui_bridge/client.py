"""HTTP and websocket access to one ComfyUI server.

Every call has a timeout, carries the configured auth headers (HTTP and the websocket
handshake alike), and turns transport failures into errors a user can act on.
"""

from __future__ import annotations

import json
import os
import ssl
from typing import Any

import requests
import urllib3
import websocket

from .endpoint import ServerConfig
from .errors import AuthRejected, BadResponse, ConnectionFailed, NotComfyUI, PromptRejected
from .models import OutputRef
from .rejections import describe_rejection
from .scrub import one_line

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


class ComfyClient:
    """A thin client for one server. Stateless apart from a pooled HTTP session."""

    def __init__(self, server: ServerConfig, session: requests.Session | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.server = server
        self.session = session or _session_for(server)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    # ---- plumbing -------------------------------------------------------------------------

    def _timeout(self, limit: float | None) -> tuple[float, float]:
        read = self.read_timeout if limit is None else max(0.05, min(self.read_timeout, limit))
        return (min(self.connect_timeout, read), read)

    def request(self, method: str, path: str, *, limit: float | None = None, **kw) -> requests.Response:
        """Send one request. `limit` caps the timeout (seconds left before a deadline)."""
        headers = dict(self.server.headers())
        headers.update(kw.pop("headers", {}) or {})
        try:
            resp = self.session.request(method, self.server.url(path), headers=headers,
                                        timeout=self._timeout(limit), allow_redirects=False, **kw)
        except requests.exceptions.SSLError as exc:
            raise ConnectionFailed(
                f"TLS handshake with {self.server.label} failed ({self._why(exc)}). Check that the "
                "URL's scheme is right (http vs https) and that the certificate is valid.",
                message_zh=f"与 {self.server.label} 的 TLS 握手失败。请检查地址是 http 还是 https，以及证书是否有效。",
                detail={"server": self.server.label}) from None
        except requests.exceptions.ConnectTimeout:
            raise ConnectionFailed(
                f"Could not connect to {self.server.label} within {self._timeout(limit)[0]:.0f} s. Check the "
                "address and that a firewall lets Dify's containers reach it.",
                message_zh=f"在规定时间内无法连接 {self.server.label}。请检查地址，并确认防火墙允许 Dify 容器访问。",
                detail={"server": self.server.label}, code="connect_timeout") from None
        except requests.exceptions.Timeout:
            raise ConnectionFailed(
                f"ComfyUI at {self.server.label} did not answer {method} {path.split('?')[0]} within "
                f"{self._timeout(limit)[1]:.0f} s. The server may be overloaded or frozen.",
                message_zh=f"{self.server.label} 上的 ComfyUI 在规定时间内没有响应，服务器可能过载或卡死。",
                detail={"server": self.server.label, "path": path.split("?")[0]}, code="timeout") from None
        except requests.exceptions.ConnectionError as exc:
            raise self._connection_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(f"Request to {self.server.label} failed: {self._why(exc)}",
                                   detail={"server": self.server.label}) from None
        if resp.status_code in (401, 403):
            raise AuthRejected(
                f"{self.server.label} refused the request with HTTP {resp.status_code}. If ComfyUI is "
                "behind an auth proxy, set the ComfyUI token or extra header in the plugin's "
                "credentials; if one is set, check that it is still valid.",
                message_zh=f"{self.server.label} 以 HTTP {resp.status_code} 拒绝了请求。若 ComfyUI 位于鉴权代理之后，"
                           "请在插件凭据中填写 Token 或额外请求头；若已填写，请确认其仍然有效。",
                detail={"server": self.server.label, "status": resp.status_code})
        if 300 <= resp.status_code < 400:
            where = resp.headers.get("Location", "")
            raise NotComfyUI(
                f"{self.server.label} redirected {path.split('?')[0]} to {one_line(where, 120)}. "
                "Use the final ComfyUI address (a login page in front of ComfyUI needs a token instead).",
                message_zh=f"{self.server.label} 将请求重定向到了别处。请填写最终的 ComfyUI 地址。",
                detail={"server": self.server.label, "status": resp.status_code})
        return resp

    def _why(self, exc: Exception) -> str:
        return one_line(exc, 160, self.server.secrets())

    def _connection_error(self, exc: Exception) -> ConnectionFailed:
        text = str(exc)
        host = self.server.label
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
        return ConnectionFailed(
            f"Cannot connect to {host}: {self._why(exc)}",
            message_zh=f"无法连接 {host}。", detail={"server": host})

    def get_json(self, path: str, *, limit: float | None = None, **kw) -> Any:
        resp = self.request("GET", path, limit=limit, **kw)
        return self._json(resp, path)

    def _json(self, resp: requests.Response, path: str) -> Any:
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
                f"{one_line(resp.text, 200, self.server.secrets())}",
                message_zh=f"{self.server.label} 上的 ComfyUI 返回了 HTTP {resp.status_code}。",
                detail={"server": self.server.label, "status": resp.status_code, "path": route})
        try:
            return resp.json()
        except ValueError:
            ctype = resp.headers.get("Content-Type", "")
            if "html" in ctype or resp.text.lstrip()[:1] == "<":
                raise NotComfyUI(
                    f"{self.server.label} answered {route} with an HTML page, not ComfyUI's JSON. The URL "
                    "probably points at a web page or proxy login, not at ComfyUI.",
                    message_zh=f"{self.server.label} 返回了网页而不是 ComfyUI 的 JSON，地址可能指向了网页或代理登录页。",
                    detail={"server": self.server.label, "path": route}) from None
            raise BadResponse(
                f"ComfyUI at {self.server.label} answered {route} with a body that is not JSON.",
                message_zh=f"{self.server.label} 返回的内容不是 JSON。",
                detail={"server": self.server.label, "path": route}) from None

    # ---- ComfyUI API ---------------------------------------------------------------------------

    def system_stats(self, limit: float | None = None) -> dict:
        data = self.get_json("/system_stats", limit=limit)
        if not isinstance(data, dict) or "system" not in data:
            raise NotComfyUI(
                f"{self.server.label} answered /system_stats, but not like ComfyUI does. Check the URL.",
                message_zh=f"{self.server.label} 的 /system_stats 响应不像 ComfyUI。请检查地址。",
                detail={"server": self.server.label})
        return data

    def object_info(self, class_type: str, limit: float | None = None) -> dict:
        """Definition of one class ({} if unknown). Never the full /object_info: on a BizyAir
        container that call can freeze the whole server for ~80 s."""
        from urllib.parse import quote
        data = self.get_json(f"/object_info/{quote(class_type, safe='')}", limit=limit)
        return data.get(class_type, {}) if isinstance(data, dict) else {}

    def queue_prompt(self, graph: dict, prompt_id: str, client_id: str, extra_data: dict | None = None,
                     limit: float | None = None) -> dict:
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = extra_data
        resp = self.request("POST", "/prompt", data=json.dumps(body),
                            headers={"Content-Type": "application/json"}, limit=limit)
        if resp.status_code == 400:
            try:
                payload = resp.json()
            except ValueError:
                payload = {}
            message, lines = describe_rejection(payload, graph)
            raise PromptRejected(message, lines=lines,
                                 message_zh="ComfyUI 拒绝了该工作流（校验失败）：\n" + "\n".join(lines),
                                 detail={"server": self.server.label, "node_errors": _node_error_summary(payload)})
        if resp.status_code >= 500:
            raise BadResponse(
                f"ComfyUI at {self.server.label} failed on the workflow (HTTP {resp.status_code}: "
                f"{one_line(resp.text, 120)}). This happens when the file is not an API-format "
                "workflow; export it with 'Export (API)' in ComfyUI.",
                message_zh=f"ComfyUI 处理该工作流时出错（HTTP {resp.status_code}）。这通常是因为文件不是 API 格式，"
                           "请在 ComfyUI 中用“导出（API）”重新导出。",
                detail={"server": self.server.label, "status": resp.status_code})
        data = self._json(resp, "/prompt")
        if not isinstance(data, dict) or "prompt_id" not in data:
            raise BadResponse(f"ComfyUI at {self.server.label} accepted the workflow but returned no prompt id.",
                              detail={"server": self.server.label})
        return data

    def history(self, prompt_id: str, limit: float | None = None) -> dict | None:
        """The history entry of one prompt, or None while it is pending, running or unknown.
        Always /history/<id>: `/history?prompt_id=` is ignored by ComfyUI and returns everything."""
        data = self.get_json(f"/history/{prompt_id}", limit=limit)
        if not isinstance(data, dict):
            raise BadResponse(f"ComfyUI at {self.server.label} returned a malformed history entry.",
                              detail={"server": self.server.label})
        entry = data.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def queue(self, limit: float | None = None) -> dict:
        data = self.get_json("/queue", limit=limit)
        return data if isinstance(data, dict) else {}

    def queue_state(self, prompt_id: str, limit: float | None = None) -> tuple[str, int]:
        """('running'|'pending'|'absent', position among pending (1-based, 0 if not pending))."""
        data = self.queue(limit)
        for item in data.get("queue_running") or []:
            if len(item) > 1 and item[1] == prompt_id:
                return "running", 0
        pending = sorted((i for i in data.get("queue_pending") or [] if len(i) > 1),
                         key=lambda i: i[0] if isinstance(i[0], (int, float)) else 0)
        for pos, item in enumerate(pending, 1):
            if item[1] == prompt_id:
                return "pending", pos
        return "absent", 0

    def queue_remaining(self, limit: float | None = None) -> int:
        data = self.get_json("/prompt", limit=limit)
        try:
            return int(data["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError):
            raise NotComfyUI(f"{self.server.label} answered /prompt, but not like ComfyUI does.",
                             detail={"server": self.server.label}) from None

    def interrupt(self, prompt_id: str, limit: float | None = None) -> None:
        # With a prompt_id ComfyUI only interrupts that prompt, never someone else's.
        self.request("POST", "/interrupt", json={"prompt_id": prompt_id}, limit=limit)

    def delete_queued(self, prompt_id: str, limit: float | None = None) -> None:
        self.request("POST", "/queue", json={"delete": [prompt_id]}, limit=limit)

    def delete_history(self, prompt_id: str, limit: float | None = None) -> None:
        self.request("POST", "/history", json={"delete": [prompt_id]}, limit=limit)

    def upload_image(self, name: str, data: bytes, mime_type: str = "application/octet-stream",
                     limit: float | None = None) -> str:
        """Upload an input image; returns the name to put in LoadImage (the server may rename)."""
        resp = self.request("POST", "/upload/image", files={"image": (name, data, mime_type)},
                            data={"type": "input"}, limit=limit)
        if resp.status_code == 413:
            raise BadResponse(f"The image '{name}' is too large for ComfyUI's upload limit.",
                              message_zh=f"图片“{name}”超出了 ComfyUI 的上传大小限制。",
                              detail={"server": self.server.label, "status": 413})
        info = self._json(resp, "/upload/image")
        if not isinstance(info, dict) or not info.get("name"):
            raise BadResponse(f"ComfyUI did not confirm the upload of '{name}'.",
                              detail={"server": self.server.label})
        sub = info.get("subfolder") or ""
        return f"{sub}/{info['name']}" if sub else info["name"]

    def view(self, ref: OutputRef, max_bytes: int, limit: float | None = None) -> tuple[bytes, str]:
        """Download one output. Checks the length against Content-Length (truncation)."""
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        resp = self.request("GET", "/view", params=params, stream=True, limit=limit)
        try:
            if resp.status_code != 200:
                raise BadResponse(
                    f"ComfyUI could not serve output '{ref.filename}' of node {ref.node_id} "
                    f"(HTTP {resp.status_code}).",
                    message_zh=f"ComfyUI 无法提供节点 {ref.node_id} 的输出文件“{ref.filename}”（HTTP {resp.status_code}）。",
                    detail={"status": resp.status_code, "node_id": ref.node_id}, code="view_failed")
            expected = resp.headers.get("Content-Length")
            if expected and expected.isdigit() and int(expected) > max_bytes:
                raise BadResponse(f"Output '{ref.filename}' is {int(expected)} bytes, over the "
                                  f"{max_bytes}-byte download limit.", code="too_large",
                                  detail={"node_id": ref.node_id, "size": int(expected)})
            data = self._read_body(resp, ref, max_bytes)
            if expected and expected.isdigit() and len(data) != int(expected):
                raise BadResponse(
                    f"The download of '{ref.filename}' was cut off ({len(data)} of {expected} bytes).",
                    message_zh=f"下载“{ref.filename}”时连接中断（{len(data)}/{expected} 字节）。",
                    code="truncated", detail={"node_id": ref.node_id})
            return data, resp.headers.get("Content-Type", "")
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise BadResponse(f"The download of '{ref.filename}' failed: {self._why(exc)}",
                              message_zh=f"下载“{ref.filename}”失败。", code="truncated",
                              detail={"node_id": ref.node_id}) from None
        finally:
            resp.close()

    @staticmethod
    def _read_body(resp: requests.Response, ref: OutputRef, max_bytes: int) -> bytes:
        """The body in one piece. With a plain Content-Length, one read of exactly that many bytes
        (a single allocation: outputs can be hundreds of MB); otherwise chunks, bounded."""
        expected = resp.headers.get("Content-Length", "")
        if expected.isdigit() and not resp.headers.get("Content-Encoding"):
            return resp.raw.read(int(expected))
        chunks, size = [], 0
        for chunk in resp.iter_content(chunk_size=256 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise BadResponse(f"Output '{ref.filename}' is over the {max_bytes}-byte download limit.",
                                  code="too_large", detail={"node_id": ref.node_id})
        return b"".join(chunks)

    def open_ws(self, client_id: str, timeout: float) -> websocket.WebSocket:
        """Open the websocket for one run. Auth headers go on the handshake too."""
        headers = [f"{k}: {v}" for k, v in self.server.headers().items()]
        try:
            return websocket.create_connection(
                self.server.ws_url(client_id), timeout=max(0.1, timeout), header=headers,
                enable_multithread=False, suppress_origin=True, skip_utf8_validation=True,
                sslopt={"cert_reqs": ssl.CERT_REQUIRED} if self.server.base_url.startswith("https") else None)
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code in (401, 403):
                raise AuthRejected(
                    f"{self.server.label} refused the websocket with HTTP {exc.status_code}. Check the "
                    "ComfyUI token / extra header; a proxy must also forward websockets (Upgrade headers).",
                    message_zh=f"{self.server.label} 以 HTTP {exc.status_code} 拒绝了 WebSocket 连接。请检查 Token/额外请求头；"
                               "代理还需转发 WebSocket（Upgrade 头）。",
                    detail={"server": self.server.label, "status": exc.status_code}) from None
            raise ConnectionFailed(f"The websocket of {self.server.label} answered HTTP {exc.status_code}.",
                                   detail={"server": self.server.label}, code="ws_failed") from None
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionFailed(f"Cannot open the websocket of {self.server.label}: {self._why(exc)}",
                                   detail={"server": self.server.label}, code="ws_failed") from None

    def close(self) -> None:
        self.session.close()


def _session_for(server: ServerConfig) -> requests.Session:
    """A session honouring the environment's proxy and CA settings (Dify passes HTTP(S)_PROXY,
    NO_PROXY and REQUESTS_CA_BUNDLE to plugins), resolved once for this server instead of on
    every request."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(server.base_url)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return session


def _node_error_summary(payload: Any) -> dict:
    out = {}
    if isinstance(payload, dict):
        for node_id, err in (payload.get("node_errors") or {}).items():
            if isinstance(err, dict):
                out[str(node_id)] = {
                    "class_type": err.get("class_type"),
                    "errors": [one_line(e.get("message", ""), 200) + (f" ({one_line(e.get('details'), 200)})"
                               if e.get("details") else "")
                               for e in err.get("errors") or [] if isinstance(e, dict)],
                }
    return out


"""The run's websocket to ComfyUI, opened so that no server can hold it past our deadline.

- The TCP (and TLS) connection is made first and registered with the deadline watchdog, so a
  handshake or a frame trickled byte by byte ends at the deadline like any HTTP request.
- No redirects: websocket-client follows 3 by default and sends the auth headers to the new
  host; ComfyUI never redirects /ws, so a redirect is refused with a clear message.
- Frames are bounded: one frame (and one fragmented message) at most MAX_MESSAGE_BYTES, read into
  one buffer (websocket-client keeps a list of every recv() chunk, ~34 bytes of overhead each).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from typing import Any

import websocket
from websocket._abnf import continuous_frame, frame_buffer  # the classes WebSocket() builds
from websocket._http import connect as _connect_socket  # proxy, tunnel and TLS, as create_connection
from websocket._http import proxy_info

from .deadline import Deadline, current_guard
from .endpoint import ServerConfig
from .errors import AuthRejected, ConnectionFailed, NotComfyUI
from .scrub import one_line

__all__ = ["MAX_MESSAGE_BYTES", "FEATURE_FLAGS", "close_quietly", "open_run_socket"]

# A SaveImageWebsocket PNG of a 4096² image is ~50 MB; nothing ComfyUI sends is larger.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CONNECT_CEILING = 5.0
FEATURE_FLAGS = json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})


class _BoundedFrames(frame_buffer):
    """websocket-client's frame reader with a size limit and a single receive buffer."""

    def recv_length(self) -> None:
        super().recv_length()
        if self.length is not None and self.length > MAX_MESSAGE_BYTES:
            raise websocket.WebSocketProtocolException(
                f"a frame of {self.length} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")

    def recv_strict(self, bufsize: int) -> bytes:
        buf = bytearray(b"".join(self.recv_buffer))
        self.recv_buffer = []
        while len(buf) < bufsize:
            chunk = self.recv(min(1 << 16, bufsize - len(buf)))
            if not chunk:
                break
            buf += chunk
        if len(buf) > bufsize:
            self.recv_buffer = [bytes(buf[bufsize:])]
            del buf[bufsize:]
        return bytes(buf)


class _BoundedMessages(continuous_frame):
    """Fragmented messages: the sum of the fragments is bounded too."""

    def add(self, frame: Any) -> None:
        super().add(frame)
        if self.cont_data is not None and len(self.cont_data[1]) > MAX_MESSAGE_BYTES:
            raise websocket.WebSocketProtocolException(f"a message over the {MAX_MESSAGE_BYTES}-byte limit")


def open_run_socket(server: ServerConfig, client_id: str, deadline: Deadline) -> websocket.WebSocket:
    """A connected websocket on `/ws?clientId=<client_id>` that asked for type-4 binary frames
    (they carry the prompt id, so SaveImageWebsocket images can be attributed to our run)."""
    url = server.ws_url(client_id)
    headers = [f"{k}: {v}" for k, v in server.headers().items()]
    sslopt = {"cert_reqs": ssl.CERT_REQUIRED} if url.startswith("wss") else {}
    ws = websocket.WebSocket(sslopt=sslopt, enable_multithread=False, skip_utf8_validation=True)
    ws.frame_buffer = _BoundedFrames(ws._recv, True)
    ws.cont_frame = _BoundedMessages(False, True)
    timeout = deadline.timeout(CONNECT_CEILING, floor=0.1)
    try:
        ws.sock_opt.timeout = timeout
        sock, _ = _connect_socket(url, ws.sock_opt, proxy_info(), None)
        guard = current_guard()
        if guard is not None:
            guard.watch(sock)
        ws.connect(url, socket=sock, timeout=timeout, header=headers, suppress_origin=True, redirect_limit=0)
        ws.send(FEATURE_FLAGS)
    except websocket.WebSocketBadStatusException as exc:
        close_quietly(ws)
        raise _bad_status(server, exc.status_code) from None
    except (OSError, ValueError, websocket.WebSocketException) as exc:
        close_quietly(ws)
        if "redirect" in str(exc).lower():
            raise NotComfyUI(
                f"The websocket of {server.label} answered with a redirect. The plugin does not follow "
                "websocket redirects (the credentials would go to another address): use the final "
                "ComfyUI address.",
                message_zh=f"{server.label} 的 WebSocket 返回了重定向。插件不跟随 WebSocket 重定向（凭据会被发往其他地址），"
                           "请填写最终的 ComfyUI 地址。",
                detail={"server": server.label}, code="ws_failed") from None
        raise ConnectionFailed(f"Cannot open the websocket of {server.label}: {one_line(exc, 160, server.secrets())}",
                               message_zh=f"无法打开 {server.label} 的 WebSocket 连接。",
                               detail={"server": server.label}, code="ws_failed") from None
    return ws


def _bad_status(server: ServerConfig, status: int) -> Exception:
    if status in (401, 403):
        return AuthRejected(
            f"{server.label} refused the websocket with HTTP {status}. Check the ComfyUI token / extra "
            "header; a proxy must also forward websockets (Upgrade headers).",
            message_zh=f"{server.label} 以 HTTP {status} 拒绝了 WebSocket 连接。请检查 Token/额外请求头；"
                       "代理还需转发 WebSocket（Upgrade 头）。",
            detail={"server": server.label, "status": status})
    return ConnectionFailed(f"The websocket of {server.label} answered HTTP {status}.",
                            message_zh=f"{server.label} 的 WebSocket 返回了 HTTP {status}。",
                            detail={"server": server.label, "status": status}, code="ws_failed")


def close_quietly(ws: websocket.WebSocket | None) -> None:
    """Close politely (a close frame, at most 0.5 s for the answer), else drop the connection."""
    if ws is None:
        return
    try:
        ws.close(timeout=0.5)
    except Exception:  # noqa: BLE001 - closing a broken socket must never raise
        with contextlib.suppress(Exception):
            ws.shutdown()

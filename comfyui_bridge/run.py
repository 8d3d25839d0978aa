"""Follow one queued prompt to its end.

The websocket is the fast path; `/history/<id>` polling is the safety net. We poll when the
socket is silent, when it drops, and every few seconds regardless (broadcast traffic from
other clients can keep a socket busy while our run is long gone, e.g. after a restart).
Every wait is bounded by the caller's deadline.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websocket

from .client import ComfyClient
from .errors import BridgeError, ConnectionFailed

Progress = Callable[[str, dict[str, Any]], None]

SILENCE = 2.0        # seconds of websocket silence before we ask /history
POLL_GAP = 5.0       # poll at least this often even when the socket is busy
POLL_INTERVAL = 0.5  # poll-only mode (no socket)
FEATURE_FLAGS = json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})


@dataclass
class Outcome:
    status: str                                   # success | error | interrupted | timeout | lost
    history: dict | None = None                   # the /history entry when we have it
    error: dict | None = None                     # execution_error / execution_interrupted payload
    cached_nodes: list[str] = field(default_factory=list)
    ws_frames: list[tuple[str, bytes]] = field(default_factory=list)   # (node_id, image bytes) from SaveImageWebsocket
    ws_outputs: dict[str, dict] = field(default_factory=dict)          # node -> `executed` output (history fallback)
    socket_dropped: bool = False
    last_error: BridgeError | None = None         # transport error seen while polling, if any


def open_socket(client: ComfyClient, client_id: str, timeout: float) -> websocket.WebSocket:
    ws = client.open_ws(client_id, timeout)
    try:
        # Ask for type-4 binary frames: they carry the prompt id, so images from
        # SaveImageWebsocket can be attributed to our run and not to someone else's.
        ws.send(FEATURE_FLAGS)
    except (OSError, websocket.WebSocketException):
        close_quietly(ws)
        raise ConnectionFailed("The websocket closed right after it opened.", code="ws_failed") from None
    return ws


def close_quietly(ws: websocket.WebSocket | None) -> None:
    if ws is None:
        return
    try:
        ws.close(timeout=0.5)
    except Exception:  # noqa: BLE001 - closing a broken socket must never raise
        try:
            ws.shutdown()
        except Exception:  # noqa: BLE001
            pass


class RunFollower:
    """State machine over websocket frames and history polls for one prompt."""

    def __init__(self, client: ComfyClient, prompt_id: str, client_id: str, deadline: float,
                 ws: websocket.WebSocket | None, on_progress: Progress | None = None,
                 websocket_nodes: set[str] | None = None):
        self.client = client
        self.prompt_id = prompt_id
        self.client_id = client_id
        self.deadline = deadline
        self.ws = ws
        self.on_progress = on_progress or (lambda kind, data: None)
        self.websocket_nodes = websocket_nodes or set()
        self.outcome = Outcome(status="timeout")
        self._last_poll = time.monotonic()
        self._absent_polls = 0
        self._terminal: str | None = None
        self._reconnected = False
        self._last_queue_pos: int | None = None

    # ---- public -------------------------------------------------------------------------------

    def follow(self) -> Outcome:
        try:
            while True:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    self.outcome.status = "timeout"
                    return self.outcome
                if self.ws is not None:
                    done = self._read_socket(remaining)
                else:
                    done = self._poll(remaining)
                    if not done:
                        time.sleep(max(0.0, min(POLL_INTERVAL, self.deadline - time.monotonic())))
                if done:
                    return self.outcome
        finally:
            close_quietly(self.ws)
            self.ws = None

    # ---- websocket ------------------------------------------------------------------------------

    def _read_socket(self, remaining: float) -> bool:
        if time.monotonic() - self._last_poll > POLL_GAP and self._poll(remaining):
            return True
        self.ws.settimeout(max(0.05, min(SILENCE, remaining)))
        try:
            opcode, payload = self.ws.recv_data()
        except websocket.WebSocketTimeoutException:
            return self._poll(self.deadline - time.monotonic())
        except (OSError, websocket.WebSocketException):
            self._socket_lost()
            return self._poll(self.deadline - time.monotonic())
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self._socket_lost()
            return self._poll(self.deadline - time.monotonic())
        if opcode == websocket.ABNF.OPCODE_BINARY:
            self._binary(payload)
            return False
        try:
            message = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return False
        return self._message(message) if isinstance(message, dict) else False

    def _socket_lost(self) -> None:
        """Close the dead socket first (two sockets on one clientId make the new one deaf), then
        try one reconnect; after that, history polling carries the run."""
        self.outcome.socket_dropped = True
        close_quietly(self.ws)
        self.ws = None
        if self._reconnected:
            return
        self._reconnected = True
        remaining = self.deadline - time.monotonic()
        if remaining <= 1.0:
            return
        try:
            self.ws = open_socket(self.client, self.client_id, min(3.0, remaining))
        except BridgeError:
            self.ws = None

    def _message(self, message: dict) -> bool:
        kind = message.get("type")
        data = message.get("data") or {}
        if not isinstance(data, dict):
            return False
        if kind == "status":
            return False
        pid = data.get("prompt_id")
        if pid is not None and pid != self.prompt_id:
            return False  # someone else's broadcast (progress of a prompt without client_id, …)
        if kind == "execution_start":
            self.on_progress("started", {})
        elif kind == "execution_cached":
            self.outcome.cached_nodes = [str(n) for n in data.get("nodes") or []]
            if self.outcome.cached_nodes:
                self.on_progress("cached", {"nodes": self.outcome.cached_nodes})
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                if pid == self.prompt_id:
                    return self._finish_from_history()
            elif pid == self.prompt_id:
                self.on_progress("node", {"node": str(node)})
        elif kind == "progress" and pid == self.prompt_id:
            self.on_progress("progress", {"node": str(data.get("node")), "value": data.get("value"),
                                          "max": data.get("max")})
        elif kind == "executed" and pid == self.prompt_id and isinstance(data.get("output"), dict):
            self.outcome.ws_outputs[str(data.get("node"))] = data["output"]
        elif kind == "execution_success":
            self._terminal = "success"
        elif kind in ("execution_error", "execution_interrupted"):
            self._terminal = "error" if kind == "execution_error" else "interrupted"
            self.outcome.error = dict(data, _event=kind)
        return False

    def _binary(self, payload: bytes) -> None:
        if len(payload) < 8 or not self.websocket_nodes:
            return
        (event,) = struct.unpack(">I", payload[:4])
        if event != 4:
            return  # type 1 previews carry no prompt id: they may belong to another run
        (meta_len,) = struct.unpack(">I", payload[4:8])
        try:
            meta = json.loads(payload[8:8 + meta_len])
        except ValueError:
            return
        node = str(meta.get("node_id") or meta.get("display_node_id") or "")
        if meta.get("prompt_id") == self.prompt_id and node in self.websocket_nodes:
            self.outcome.ws_frames.append((node, bytes(payload[8 + meta_len:])))

    # ---- history --------------------------------------------------------------------------------

    def _finish_from_history(self) -> bool:
        """`executing {node: null}` is sent after the history is stored; fetch it (briefly retry)."""
        end = min(self.deadline, time.monotonic() + 3.0)
        while True:
            try:
                entry = self.client.history(self.prompt_id, limit=max(0.05, self.deadline - time.monotonic()))
            except BridgeError as exc:
                entry, self.outcome.last_error = None, exc
                end = 0.0  # history is broken (500, not JSON): do not wait for it
            if entry is not None and _finished(entry):
                self._from_history(entry)
                return True
            if time.monotonic() >= end:
                # The socket said done but the history cannot tell: trust the socket's verdict.
                self.outcome.status = self._terminal or "success"
                return True
            time.sleep(0.05)

    def _poll(self, remaining: float) -> bool:
        self._last_poll = time.monotonic()
        if remaining <= 0:
            return False
        try:
            entry = self.client.history(self.prompt_id, limit=remaining)
        except BridgeError as exc:
            # A frozen or flaky server: keep trying until the deadline; remember why.
            self.outcome.last_error = exc
            return False
        if entry is not None and _finished(entry):
            self._from_history(entry)
            return True
        return self._check_queue(self.deadline - time.monotonic())

    def _check_queue(self, remaining: float) -> bool:
        if remaining <= 0:
            return False
        try:
            state, position = self.client.queue_state(self.prompt_id, limit=remaining)
        except BridgeError as exc:
            self.outcome.last_error = exc
            return False
        if state == "absent":
            # Not in history, not queued, not running: the server forgot it (restart). Ask
            # twice: history is stored just before the queue entry is released.
            self._absent_polls += 1
            if self._absent_polls >= 2:
                self.outcome.status = "lost"
                return True
            return False
        self._absent_polls = 0
        if state == "pending" and position != self._last_queue_pos:
            self._last_queue_pos = position
            self.on_progress("queued", {"position": position})
        return False

    def _from_history(self, entry: dict) -> None:
        self.outcome.history = entry
        status = entry.get("status") or {}
        if status.get("status_str") == "success":
            self.outcome.status = "success"
            return
        for item in status.get("messages") or []:
            if isinstance(item, list) and len(item) == 2 and item[0] in ("execution_error", "execution_interrupted"):
                self.outcome.error = dict(item[1] or {}, _event=item[0])
                self.outcome.status = "error" if item[0] == "execution_error" else "interrupted"
                return
        self.outcome.status = self._terminal if self._terminal in ("error", "interrupted") else "error"


def _finished(entry: dict[str, Any]) -> bool:
    status = entry.get("status")
    if not isinstance(status, dict):
        return bool(entry.get("outputs"))
    return bool(status.get("completed")) or status.get("status_str") in ("success", "error")

"""Follow one queued prompt to its end.

The websocket is the fast path; `/history/<id>` polling is the safety net. We poll when the
socket is silent, when it drops, and every few seconds regardless (broadcast traffic from
other clients can keep a socket busy while our run is long gone, e.g. after a restart).
Every wait is bounded by the caller's deadline; the socket is registered with the deadline
watchdog, so a frame trickled byte by byte cannot outlive it either.

Ends: success / error / interrupted (history or socket says so), lost (the server answers but
has forgotten the run: a restart), gone (the server stopped accepting connections for
GONE_AFTER seconds and did not come back), timeout (the deadline passed first).
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websocket

from . import jsonsafe
from .budget import OutputBudget
from .client import ComfyClient
from .deadline import WATCHDOG, Deadline, Guard
from .errors import BridgeError
from .responses import HistoryEntry
from .ws import MAX_MESSAGE_BYTES, close_quietly, open_run_socket

__all__ = ["Outcome", "Progress", "RunFollower", "settle"]

Progress = Callable[[str, dict[str, Any]], None]

SILENCE = 2.0        # seconds of websocket silence before we ask /history
POLL_GAP = 5.0       # poll at least this often even when the socket is busy
POLL_INTERVAL = 0.5  # poll-only mode (no socket)
GONE_AFTER = 20.0    # a server refusing connections this long is gone (killed, not restarting)
DRAIN_LIMIT = 10.0   # after /history says done: read the socket's remaining frames for at most this long
FRAME_LIMIT = 10.0   # one websocket frame taking longer than this: the socket is broken (or hostile)
_DOWN_CODES = ("refused", "unreachable", "dns_failed", "connect_timeout")


@dataclass
class Outcome:
    ending: str                                   # success | error | interrupted | timeout | lost | gone
    history: HistoryEntry | None = None           # the /history entry when we have it
    error: dict | None = None                     # execution_error / execution_interrupted payload
    cached_nodes: list[str] = field(default_factory=list)
    ws_frames: list[tuple[str, bytes]] = field(default_factory=list)   # (node_id, image bytes) from SaveImageWebsocket
    ws_outputs: dict[str, dict] = field(default_factory=dict)          # node -> `executed` output (history fallback)
    ws_incomplete: bool = False                   # SaveImageWebsocket frames may be missing (socket lost early)
    ws_dropped: int = 0                           # frames refused by the run's output budget
    last_error: BridgeError | None = None         # transport error seen while polling, if any
    current_node: str = ""                        # the node the server said it was running last


class RunFollower:
    """State machine over websocket frames and history polls for one prompt."""

    def __init__(self, client: ComfyClient, prompt_id: str, client_id: str, deadline: Deadline,
                 ws: websocket.WebSocket | None, on_progress: Progress | None = None,
                 websocket_nodes: set[str] | None = None, budget: OutputBudget | None = None):
        self.client = client
        self.prompt_id = prompt_id
        self.client_id = client_id
        self.deadline = deadline
        self.ws = ws
        self.on_progress = on_progress or (lambda kind, data: None)
        self.websocket_nodes = websocket_nodes or set()
        self.budget = budget or OutputBudget()
        self.outcome = Outcome(ending="timeout")
        self._last_poll = time.monotonic()
        self._absent_polls = 0
        self._down_since: float | None = None
        self._terminal: str | None = None
        self._reconnected = False
        self._last_queue_pos: int | None = None
        self._ended_on_socket = False
        self._sock_guard: Guard | None = None

    # ---- public -------------------------------------------------------------------------------

    def follow(self) -> Outcome:
        self._attach(self.ws)
        try:
            while True:
                if self.deadline.expired():
                    self.outcome.ending = "timeout"
                    return self.outcome
                if self.ws is not None:
                    done = self._read_socket()
                else:
                    done = self._poll()
                    if not done:
                        self.deadline.sleep(POLL_INTERVAL)
                if done:
                    self._drain_websocket_images()
                    return self.outcome
        finally:
            self._detach()

    # ---- websocket ------------------------------------------------------------------------------

    def _read_socket(self) -> bool:
        assert self.ws is not None
        if time.monotonic() - self._last_poll > POLL_GAP and self._poll():
            return True
        try:
            self.ws.settimeout(self.deadline.timeout(SILENCE))
            self._frame_limit(self.deadline)
            opcode, payload = self.ws.recv_data()
        except websocket.WebSocketTimeoutException:
            return self._poll()
        except (OSError, ValueError, websocket.WebSocketException):
            self._socket_lost()
            return self._poll()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self._socket_lost()
            return self._poll()
        self._down_since = None
        if opcode == websocket.ABNF.OPCODE_BINARY:
            self._binary(payload)
            return False
        try:
            message = jsonsafe.parse(payload, max_bytes=MAX_MESSAGE_BYTES, max_depth=64)
        except jsonsafe.JsonError:
            return False
        return self._message(message) if isinstance(message, dict) else False

    def _attach(self, ws: websocket.WebSocket | None) -> None:
        """Follow on `ws`, under its own guard: re-armed for each frame, so a frame trickled byte by
        byte costs at most FRAME_LIMIT before the follower falls back to polling the history."""
        self.ws = ws
        if ws is not None:
            self._sock_guard = WATCHDOG.open_guard(self.deadline)
            self._sock_guard.watch(ws.sock)

    def _detach(self) -> None:
        close_quietly(self.ws)
        self.ws = None
        if self._sock_guard is not None:
            self._sock_guard.close()
            self._sock_guard = None

    def _frame_limit(self, deadline: Deadline) -> None:
        if self._sock_guard is not None:
            self._sock_guard.rearm(deadline.within(FRAME_LIMIT))

    def _socket_lost(self) -> None:
        """Close the dead socket first (two sockets on one clientId make the new one deaf), then
        try one reconnect; after that, history polling carries the run."""
        self._detach()
        if self.websocket_nodes and not self._ended_on_socket:
            self.outcome.ws_incomplete = True
        if self._reconnected or self.deadline.remaining() <= 1.0:
            return
        self._reconnected = True
        try:
            self._attach(open_run_socket(self.client.server, self.client_id, self.deadline.within(3.0)))
        except BridgeError:
            self.ws = None

    def _message(self, message: dict) -> bool:
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(data, dict) or kind == "status":
            return False
        pid = data.get("prompt_id")
        if pid != self.prompt_id:
            return False  # someone else's broadcast, or a message that does not say whose it is
        if kind == "execution_start":
            self.on_progress("started", {})
        elif kind == "execution_cached":
            nodes = data.get("nodes")
            self.outcome.cached_nodes = [str(n)[:64] for n in nodes[:10000]] if isinstance(nodes, list) else []
            if self.outcome.cached_nodes:
                self.on_progress("cached", {"nodes": self.outcome.cached_nodes})
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                self._ended_on_socket = True
                return self._finish_from_history()
            if isinstance(node, (str, int)):
                self.outcome.current_node = str(node)[:64]
                self.on_progress("node", {"node": self.outcome.current_node})
        elif kind == "progress":
            value, maximum = data.get("value"), data.get("max")
            if _is_number(value) and _is_number(maximum):
                self.on_progress("progress", {"node": str(data.get("node"))[:64], "value": value, "max": maximum})
        elif kind == "executed":
            if isinstance(data.get("output"), dict) and isinstance(data.get("node"), (str, int)):
                self.outcome.ws_outputs[str(data["node"])] = data["output"]
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
        if meta_len > len(payload) - 8:
            return
        try:
            meta = json.loads(payload[8:8 + meta_len])
        except (ValueError, RecursionError):
            return
        if not isinstance(meta, dict) or meta.get("prompt_id") != self.prompt_id:
            return
        node = str(meta.get("node_id") or meta.get("display_node_id") or "")[:64]
        if node in self.websocket_nodes:
            image = bytes(payload[8 + meta_len:])
            if self.budget.take(len(image)):
                self.outcome.ws_frames.append((node, image))
            else:
                self.outcome.ws_dropped += 1

    def _drain_websocket_images(self) -> None:
        """The run ended by a history poll while SaveImageWebsocket frames may still be on their
        way (ComfyUI sends them before `executing null`): read on until that message, briefly."""
        if self.ws is None or not self.websocket_nodes or self._ended_on_socket:
            return
        drain = self.deadline.within(DRAIN_LIMIT)
        while not self._ended_on_socket:
            if drain.expired():
                self.outcome.ws_incomplete = True
                return
            try:
                self.ws.settimeout(drain.timeout(SILENCE))
                self._frame_limit(drain)
                opcode, payload = self.ws.recv_data()
            except (OSError, ValueError, websocket.WebSocketException):
                self.outcome.ws_incomplete = True
                return
            if opcode == websocket.ABNF.OPCODE_BINARY:
                self._binary(payload)
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                try:
                    message = jsonsafe.parse(payload, max_bytes=MAX_MESSAGE_BYTES, max_depth=64)
                except jsonsafe.JsonError:
                    continue
                if (isinstance(message, dict) and message.get("type") == "executing"
                        and isinstance(message.get("data"), dict) and message["data"].get("node") is None
                        and message["data"].get("prompt_id") == self.prompt_id):
                    self._ended_on_socket = True
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                self.outcome.ws_incomplete = True
                return

    # ---- history --------------------------------------------------------------------------------

    def _finish_from_history(self) -> bool:
        """`executing {node: null}` is sent after the history is stored; fetch it (briefly retry)."""
        wait = self.deadline.within(3.0)
        while True:
            try:
                entry = self.client.history(self.prompt_id, deadline=self.deadline)
            except BridgeError as exc:
                # History is broken (500, not JSON, unexpected shape): trust the socket's verdict.
                self.outcome.last_error = exc
                self.outcome.ending = self._terminal or "success"
                return True
            if entry is not None:
                self._from_history(entry)
                return True
            if wait.expired():
                self.outcome.ending = self._terminal or "success"
                return True
            wait.sleep(0.05)

    def _poll(self) -> bool:
        self._last_poll = time.monotonic()
        if self.deadline.expired():
            return False
        try:
            entry = self.client.history(self.prompt_id, deadline=self.deadline)
        except BridgeError as exc:
            return self._failed_poll(exc)
        self._down_since = None
        if entry is not None:
            self._from_history(entry)
            return True
        return self._check_queue()

    def _failed_poll(self, exc: BridgeError) -> bool:
        """A frozen or flaky server: keep trying until the deadline; one that refuses connections
        for GONE_AFTER seconds is gone."""
        self.outcome.last_error = exc
        if exc.code not in _DOWN_CODES:
            self._down_since = None
            return False
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        if now - self._down_since >= GONE_AFTER:
            self.outcome.ending = "gone"
            return True
        return False

    def _check_queue(self) -> bool:
        if self.deadline.expired():
            return False
        try:
            state, position = self.client.queue_state(self.prompt_id, deadline=self.deadline)
        except BridgeError as exc:
            return self._failed_poll(exc)
        if state == "absent":
            # Not in history, not queued, not running: the server forgot it (restart). Ask
            # twice: history is stored just before the queue entry is released.
            self._absent_polls += 1
            if self._absent_polls >= 2:
                self.outcome.ending = "lost"
                return True
            return False
        self._absent_polls = 0
        if state == "pending" and position != self._last_queue_pos:
            self._last_queue_pos = position
            self.on_progress("queued", {"position": position})
        return False

    def _from_history(self, entry: HistoryEntry) -> None:
        settle(self.outcome, entry, self._terminal)

    def peek(self) -> Outcome:
        """One look (history, then queue) without waiting: the outcome, or status "timeout" while
        the prompt is still queued or running."""
        if not self._poll():
            self.outcome.ending = "timeout"
        return self.outcome


def settle(outcome: Outcome, entry: HistoryEntry, terminal: str | None = None) -> Outcome:
    """Fill `outcome` from the history entry of an ended prompt (`terminal`: what the socket said)."""
    outcome.history = entry
    failure = entry.first_failure()
    if entry.status == "success" and failure is None:
        outcome.ending = "success"
    elif failure is not None:
        kind, data = failure
        outcome.error = dict(data, _event=kind)
        outcome.ending = "error" if kind == "execution_error" else "interrupted"
    elif entry.status == "unknown" and terminal is None:
        # The entry exists (the run is over) but does not say how it went.
        outcome.ending = "unreadable"
    else:
        outcome.ending = terminal if terminal in ("error", "interrupted", "success") else "error"
    return outcome


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

"""One deadline for a whole call, and a watchdog that enforces it on sockets.

A `Deadline` is a point in time (monotonic clock). Everything that waits during one tool call —
HTTP requests, whole-body reads, the websocket, node-definition lookups, uploads, downloads,
clean-up, COS publishing — is handed the same `Deadline` (or a shorter one derived from it with
`within` / `reserve`), so the call ends by its `timeout`, whatever the servers do.

A socket read timeout bounds each `recv`, not a response: a server sending one byte a second
never trips it. `Watchdog.guard(deadline)` closes the sockets registered inside the block when
the deadline passes, so a trickled header, body or websocket frame ends at the deadline too.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["Deadline", "Guard", "WATCHDOG", "Watchdog", "current_guard"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """The moment (on `clock`) by which a call, or one step of it, must be over."""

    at: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        if not math.isfinite(seconds):
            raise ValueError("a deadline needs a finite number of seconds")
        return cls(clock() + max(0.0, seconds), clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at

    def within(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, or this one if it comes first (one step's own ceiling)."""
        return Deadline(min(self.at, self.clock() + max(0.0, seconds)), self.clock)

    def reserve(self, seconds: float) -> Deadline:
        """A deadline `seconds` before this one: time kept back for what must happen afterwards."""
        return Deadline(self.at - max(0.0, seconds), self.clock)

    def timeout(self, ceiling: float, floor: float = 0.05) -> float:
        """A socket timeout for one wait: at most `ceiling`, at most what is left, at least `floor`
        (0 would mean "non-blocking" to a socket)."""
        return max(floor, min(ceiling, self.remaining()))

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, but never past the deadline."""
        time.sleep(max(0.0, min(seconds, self.remaining())))


class Guard:
    """The sockets of one guarded block; closed by the watchdog when the block's deadline passes."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        self.tripped = False          # the watchdog cut this guard's sockets
        self.finished = False         # the guarded work is over: nothing left to cut
        self.at = time.monotonic() + deadline.remaining()   # real monotonic time of the deadline
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._watchdog: Watchdog | None = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.tripped:
                _shutdown(sock)
            elif not self.finished:
                self._socks.append(sock)

    def close(self) -> None:
        """The guarded work is over (sockets closed by their owner): forget them."""
        with self._lock:
            self.finished = True
            self._socks = []

    def rearm(self, deadline: Deadline) -> None:
        """Move this guard's deadline (earlier or later), e.g. a fresh limit for each websocket
        frame. Cheap: a later deadline costs nothing until the old one comes due."""
        self.deadline = deadline
        at = time.monotonic() + deadline.remaining()
        earlier = at < self.at
        self.at = at
        if earlier and self._watchdog is not None:
            self._watchdog._schedule(self)

    def trip(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.tripped = True
            socks, self._socks = self._socks, []
        for sock in socks:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # shutdown (not close) wakes a reader blocked in recv on another thread or greenlet, and leaves
    # the file descriptor to its owner, who closes it as usual.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_current: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("comfyui_bridge_guard", default=None)


def current_guard() -> Guard | None:
    """The guard of the innermost `Watchdog.guard` block running in this thread or greenlet."""
    return _current.get()


class Watchdog:
    """One background thread (a greenlet under gevent) that trips guards at their deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Guard]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, deadline: Deadline) -> Iterator[Guard]:
        """Within the block, sockets registered with `current_guard().watch(sock)` are shut down
        when `deadline` passes. Nested guards: the inner one applies inside it."""
        g = self.open_guard(deadline)
        token = _current.set(g)
        try:
            yield g
        finally:
            _current.reset(token)
            g.close()

    def open_guard(self, deadline: Deadline) -> Guard:
        """A guard outside any `with` block (e.g. one per websocket); call `close()` when done."""
        g = Guard(deadline)
        self._add(g)
        return g

    def _add(self, g: Guard) -> None:
        g._watchdog = self
        self._schedule(g)

    def _schedule(self, g: Guard) -> None:
        # The watchdog uses the real monotonic clock: a guard on an injected test clock was
        # converted to the equivalent real moment (Guard.at).
        with self._cond:
            heapq.heappush(self._heap, (g.at, next(self._counter), g))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="comfyui-deadline-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][2] is g:
                self._cond.notify()   # the watchdog sleeps until the earliest entry: wake it only for a new earliest

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, g = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if g.finished or g.tripped:
                    continue
                if g.at > at:
                    # Re-armed to a later deadline since this entry was made: wait for that one.
                    heapq.heappush(self._heap, (g.at, next(self._counter), g))
                    continue
            log.debug("deadline passed: closing the sockets of a guarded call")
            g.trip()


WATCHDOG = Watchdog()

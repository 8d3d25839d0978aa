"""The one deadline of a call, and the watchdog that enforces it on sockets a server holds open."""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest

from comfyui_bridge.deadline import WATCHDOG, Deadline, current_guard


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_deadline_counts_down_on_its_clock_and_derives_shorter_ones():
    clock = FakeClock()
    d = Deadline.after(10, clock)
    clock.now += 4
    assert d.remaining() == 6 and not d.expired()
    assert d.within(2).remaining() == 2 and d.within(60).remaining() == 6   # never later than d
    assert d.reserve(4).remaining() == 2
    assert d.timeout(30) == 6 and d.timeout(3) == 3
    clock.now += 10
    assert d.expired() and d.remaining() == 0 and d.timeout(30) == 0.05   # a socket timeout is never 0


def test_a_deadline_needs_a_finite_number_of_seconds():
    with pytest.raises(ValueError):
        Deadline.after(math.nan)


def blocked_reader():
    """(server socket, client socket, thread reading from the client, outcome dict)."""
    a, b = socket.socketpair()
    outcome: dict = {}

    def read():
        start = time.monotonic()
        try:
            outcome["data"] = b.recv(10)
        except OSError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - start

    return a, b, read, outcome


def test_the_watchdog_cuts_a_read_that_a_server_never_answers_at_the_deadline():
    a, b, read, outcome = blocked_reader()
    with WATCHDOG.guard(Deadline.after(0.5)) as guard:
        current_guard().watch(b)
        t = threading.Thread(target=read)
        t.start()
        t.join(5)
    assert guard.tripped and outcome.get("data", b"") == b"" and outcome["seconds"] < 2
    a.close(), b.close()


def test_a_rearmed_guard_waits_for_its_new_deadline_and_a_closed_one_is_left_alone():
    a, b = socket.socketpair()
    g = WATCHDOG.open_guard(Deadline.after(0.3))
    g.watch(b)
    g.rearm(Deadline.after(1.5))        # later: the first due time passes without a cut
    time.sleep(0.8)
    assert not g.tripped
    g.rearm(Deadline.after(0.1))        # earlier: cut soon
    time.sleep(0.6)
    assert g.tripped
    c, d = socket.socketpair()
    done = WATCHDOG.open_guard(Deadline.after(0.1))
    done.watch(d)
    done.close()
    time.sleep(0.4)
    assert not done.tripped
    d.sendall(b"x")                     # still usable: the watchdog did not touch it
    assert c.recv(1) == b"x"
    for s in (a, b, c, d):
        s.close()

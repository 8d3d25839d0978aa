"""requests sessions whose connections the deadline watchdog can cut (see deadline.py).

Each connection registers its socket with the guard of the call that uses it — when it connects,
and again when a kept-alive connection is reused by a later call — so a server that trickles a
response (or a COS endpoint that stalls an upload) is stopped at that call's deadline.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .deadline import current_guard

__all__ = ["GuardedAdapter", "guarded_session"]


class _GuardedHTTPConnection(HTTPConnection):
    """Registers its socket with the guard of the call using it (deadline.py)."""

    def connect(self) -> None:
        super().connect()
        _watch(self)

    def request(self, *args: Any, **kw: Any) -> None:
        if self.sock is not None:   # a kept-alive connection: this call's guard takes it over
            _watch(self)
        super().request(*args, **kw)


class _GuardedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self)

    def request(self, *args: Any, **kw: Any) -> None:
        if self.sock is not None:
            _watch(self)
        super().request(*args, **kw)


def _watch(conn: HTTPConnection) -> None:
    guard = current_guard()
    if guard is not None and conn.sock is not None:
        guard.watch(conn.sock)


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}

    def proxy_manager_for(self, proxy: str, **kw: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kw)
        manager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}
        return manager


def guarded_session(pool_size: int = 10) -> requests.Session:
    """A new session (environment proxies honoured) whose connections the watchdog can cut."""
    session = requests.Session()
    adapter = GuardedAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_shared: requests.Session | None = None
_shared_lock = threading.Lock()


def shared_session() -> requests.Session:
    """One pooled guarded session for the process (object storage clients share it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = guarded_session(pool_size=20)
        return _shared

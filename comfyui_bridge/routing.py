"""Several ComfyUI servers: which one to try first, which ones are broken, when to fail over.

The engine tries the servers in the order `choose_server` returns and moves on to the next one
only when queueing failed before the server could have accepted the prompt (`is_failover_error`);
a prompt that may have been accepted is never sent twice.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass

import requests

from .client import ComfyClient
from .deadline import Deadline
from .endpoint import ServerConfig
from .errors import BadResponse, BridgeError, ConnectionFailed
from .scrub import one_line

# A probe is a courtesy, not a check: a server that cannot answer GET /prompt this fast is
# skipped for this run rather than waited for.
PROBE_TIMEOUT = 2.0
CHECK_TIMEOUT = 10.0

MakeClient = Callable[[ServerConfig], ComfyClient]


@dataclass
class Probe:
    """One server's answer to GET /prompt: its queue length, or why it could not say."""

    server: ServerConfig
    queue_remaining: int | None
    error: str = ""

    @property
    def healthy(self) -> bool:
        return self.queue_remaining is not None


def probe_all(servers: list[ServerConfig], make_client: MakeClient,
              deadline: Deadline | None = None) -> list[Probe]:
    """Ask every server for its queue length at once (threads), each bounded by PROBE_TIMEOUT."""
    probe = (deadline or Deadline.after(PROBE_TIMEOUT)).within(PROBE_TIMEOUT)
    timeout = probe.remaining()

    def one(server: ServerConfig) -> Probe:
        client = make_client(server)
        try:
            return Probe(server, client.queue_remaining(deadline=probe))
        except BridgeError as exc:
            return Probe(server, None, one_line(exc.message, 200, server.secrets()))
        except Exception as exc:  # a probe must never break the run; the reason is enough
            return Probe(server, None, type(exc).__name__)
        finally:
            client.close()

    return _run_all(servers, one, timeout + 1.0,
                    lambda s: Probe(s, None, f"no answer within {timeout:.0f} s"))


def choose_server(servers: list[ServerConfig], make_client: MakeClient,
                  deadline: Deadline | None = None) -> list[ServerConfig]:
    """Healthy servers, shortest queue first (ties keep the configured order); unreachable ones
    are left out. A single server is returned as is, unprobed: there is nothing to choose and
    the engine's own request gives the better error."""
    if len(servers) <= 1:
        return list(servers)
    probes = probe_all(servers, make_client, deadline)
    ranked = sorted((p for p in probes if p.healthy),
                    key=lambda p: (p.queue_remaining, servers.index(p.server)))
    return [p.server for p in ranked]


def check_all(servers: list[ServerConfig], make_client: MakeClient,
              check: Callable[[ComfyClient], tuple[bool, str]] | None = None,
              deadline: Deadline | None = None) -> list[tuple[ServerConfig, bool, str]]:
    """Validate every server at once for the credentials form: (server, ok, message) each.

    `check(client)` returns (ok, message) and may raise BridgeError (counted as not ok); the
    default only checks that the server is a reachable ComfyUI. Pass e.g. a BizyAir diagnosis.
    """
    deadline = deadline or Deadline.after(CHECK_TIMEOUT)
    timeout = deadline.remaining()
    check = check or _reachable

    def one(server: ServerConfig) -> tuple[ServerConfig, bool, str]:
        client = make_client(server)
        try:
            ok, message = check(client)
            return server, ok, message
        except BridgeError as exc:
            return server, False, one_line(exc.message, 300, server.secrets())
        except Exception as exc:  # one broken check must not hide the other servers' results
            return server, False, f"{server.label}: unexpected {type(exc).__name__}."
        finally:
            client.close()

    return _run_all(servers, one, timeout + 1.0,
                    lambda s: (s, False, f"{s.label} did not answer within {timeout:.0f} s."))


def summarize(results: list[tuple[ServerConfig, bool, str]]) -> tuple[bool, str, str]:
    """(all ok, en, zh) naming the broken servers, for a credential-validation error."""
    broken = [(s, m) for s, ok, m in results if not ok]
    if not broken:
        return True, f"All {len(results)} ComfyUI server(s) are usable.", f"全部 {len(results)} 个 ComfyUI 服务器可用。"
    lines = "\n".join(f"- {s.label}: {m}" for s, m in broken)
    return (False,
            f"{len(broken)} of {len(results)} ComfyUI server(s) cannot be used:\n{lines}",
            f"{len(results)} 个 ComfyUI 服务器中有 {len(broken)} 个不可用：\n{lines}")


def is_failover_error(exc: BaseException) -> bool:
    """True if queueing failed before the server could have accepted the prompt, so trying the
    next server cannot run it twice: nothing listening, unknown host, websocket refused, or a
    proxy saying the ComfyUI behind it is down (502/503/504). A timeout is not one of them: the
    prompt may have arrived. Neither are auth and validation errors: every server would say so."""
    if isinstance(exc, ConnectionFailed):
        # "connect_timeout" in case the client ever tells connect and read timeouts apart.
        return exc.code in ("unreachable", "refused", "dns_failed", "ws_failed", "connect_timeout")
    if isinstance(exc, BadResponse):
        return exc.detail.get("status") in (502, 503, 504)
    if isinstance(exc, requests.exceptions.Timeout):
        return isinstance(exc, requests.exceptions.ConnectTimeout)
    return isinstance(exc, (requests.exceptions.ConnectionError, ConnectionRefusedError))


def _reachable(client: ComfyClient) -> tuple[bool, str]:
    version = client.system_stats(deadline=Deadline.after(CHECK_TIMEOUT)) or "?"
    return True, f"ComfyUI {version} at {client.server.label} is reachable."


def _run_all(servers, work, wait: float, on_timeout):
    """work(server) for every server in parallel, results in the servers' order."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(servers)),
                                                 thread_name_prefix="comfy-probe")
    try:
        futures = [pool.submit(work, s) for s in servers]
        concurrent.futures.wait(futures, timeout=wait)
        return [f.result() if f.done() else on_timeout(s) for f, s in zip(futures, servers, strict=True)]
    finally:
        # Do not wait for a straggler: its own request timeout ends it shortly.
        pool.shutdown(wait=False, cancel_futures=True)

import os
import signal
import sys

from dify_plugin import DifyPluginEnv, Plugin
from dify_plugin.core.server.stdio.request_reader import StdioRequestReader

from comfyui_bridge import lifecycle

# Our own deadlines (tool `timeout`, at most 590 s) stay under Dify's 600 s invocation limit;
# MAX_REQUEST_TIMEOUT only matters for remote/serverless runtimes, keep it above ours.
plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=620))

STOP_SECONDS = 2.0   # best effort to stop our queued/running prompts before exiting


def shutdown(why: str) -> None:
    """Dify is stopping this instance (upgrade, restart, scale-down): nobody will collect the
    outputs of our queued or running prompts, so stop them on their servers, then exit."""
    stopped, total = lifecycle.stop_all(STOP_SECONDS)
    # stderr, not stdout (the protocol channel): the daemon keeps it in its log.
    sys.stderr.write(f"comfyui_bizyair: {why}: stopped {stopped} of {total} prompt(s); exiting\n")
    sys.stderr.flush()
    os._exit(0)


def _on_sigterm(signum: int, frame: object) -> None:
    # The handler may run inside gevent's hub, which must not block: stop from a fresh greenlet.
    try:
        import gevent  # type: ignore[import-untyped]
    except ImportError:   # pragma: no cover - dify_plugin always brings gevent
        shutdown("SIGTERM")
        return
    gevent.spawn(shutdown, "SIGTERM")


def _read_or_shutdown(self: StdioRequestReader) -> bytes:
    # The daemon closed our stdin. The SDK would spin on empty reads forever; stop instead.
    data = _sdk_read(self)
    if not data:
        shutdown("stdin closed")
    return data


_sdk_read = StdioRequestReader._read_async
StdioRequestReader._read_async = _read_or_shutdown

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    plugin.run()

"""The packaged plugin over Dify's stdio protocol, with arrival times of every session event.

Wraps tests/e2e/stdio_harness.PluginProcess (build, fresh venv, launch, framing). The harness
already supports concurrent sessions (one queue per session id, a lock around stdin writes), so
8 threads may invoke at once. What it lacks for a benchmark is *when* each event arrived: the
subclass below gives every session a queue that stamps each event as the reader thread puts it,
so an invoke is timed from just before its request line is written to the arrival of its `end`,
and a blob's transfer from its first to its last chunk.
"""

from __future__ import annotations

import io
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from stdio_harness import PluginProcess, SessionResult

PROVIDER = "comfyui_bizyair"
TOOL = "comfyui_workflow"


class TimedQueue(queue.Queue):
    """A session queue that records (perf_counter, kind, blob bytes, last chunk?) per event."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[float, str, int, bool]] = []

    def put(self, item, block=True, timeout=None):
        now = time.perf_counter()
        kind, data = (item.get("type"), item.get("data")) if isinstance(item, dict) else ("?", None)
        if kind == "stream" and isinstance(data, dict) and data.get("type") == "blob_chunk":
            msg = data.get("message") or {}
            self.events.append((now, "blob_chunk", int(msg.get("total_length") or 0), bool(msg.get("end"))))
        else:
            self.events.append((now, str(kind), 0, False))
        super().put(item, block, timeout)


class _ShortLines(list):
    """The harness keeps every stdout line for grepping; blob chunks would make that hundreds of
    MB over a bench run. Keep long stdout lines cut short (stderr whole)."""

    LIMIT = 2000

    def append(self, item) -> None:
        stream, text = item
        if stream == "stdout" and len(text) > self.LIMIT:
            item = (stream, text[:200] + f"... [{len(text)} chars]")
        super().append(item)


@dataclass
class Invocation:
    seconds: float                 # request written → `end` arrived
    ended_at: float                # perf_counter() when `end` arrived
    result: SessionResult
    blob_bytes: int = 0            # total of every blob's announced length
    blob_seconds: float = 0.0      # first chunk → last chunk, summed over blobs (they are sequential)
    events: list = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        return self.result.jsons[0] if self.result.jsons else {}


class TimedPlugin(PluginProcess):
    def __init__(self, proc, workdir, own_workdir) -> None:
        # The harness starts the plugin with bufsize=0, so its reader thread's readline() on the
        # raw pipe costs one read() syscall per byte: ~1 MB/s, 3 s for a 3 MB blob. Dify's daemon
        # reads with a buffer (bufio); so do we, before the harness starts its reader threads.
        if isinstance(proc.stdout, io.RawIOBase):
            proc.stdout = io.BufferedReader(proc.stdout, buffer_size=1 << 20)
        super().__init__(proc, workdir, own_workdir)
        self.lines = _ShortLines(self.lines)   # before any invoke: only heartbeats can be lost


    def _queue(self, session_id):
        with self._lock:
            return self._sessions.setdefault(str(session_id), TimedQueue())

    def invoke_timed(self, credentials: dict, parameters: dict, *, timeout: float = 300,
                     tool: str = TOOL) -> Invocation:
        request = {"user_id": "bench", "type": "tool", "action": "invoke_tool", "provider": PROVIDER,
                   "tool": tool, "credentials": credentials, "credential_type": "api-key",
                   "tool_parameters": parameters}
        started = time.perf_counter()
        session_id = self.send(request)
        with self._lock:
            timed = self._sessions[session_id]
        result = self.collect(session_id, timeout)
        events = list(timed.events)
        end = next((t for t, kind, _, _ in events if kind == "end"), time.perf_counter())
        inv = Invocation(seconds=end - started, ended_at=end, result=result, events=events)
        first = None
        for t, kind, total, last in events:
            if kind != "blob_chunk":
                continue
            if first is None:
                first = t
            if last:
                inv.blob_bytes += total
                inv.blob_seconds += t - first
                first = None
        return inv

    # ---- memory ---------------------------------------------------------------------------------

    def status_kib(self, field_name: str) -> int:
        """A VmXxx value of /proc/<pid>/status in KiB (0 if unavailable)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith(field_name + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs)."""
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

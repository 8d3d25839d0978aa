"""The prompts this process has queued and not yet seen end, so they can be stopped when the
process is told to stop (Dify upgrades, restarts or scales the plugin down with SIGTERM, or closes
its stdin): nobody would collect their outputs, and they would keep the GPU or BizyAir busy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .deadline import Deadline

__all__ = ["ActiveRun", "register", "unregister", "active", "stop_all"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveRun:
    server: str            # label, for logs
    prompt_id: str
    stop: Callable[[Deadline], bool]    # dequeue / interrupt (and clean up); True when confirmed gone


_runs: dict[str, ActiveRun] = {}
_lock = threading.Lock()
_stopping = threading.Event()


def register(run: ActiveRun) -> None:
    with _lock:
        _runs[run.prompt_id] = run


def unregister(prompt_id: str) -> None:
    with _lock:
        _runs.pop(prompt_id, None)


def active() -> list[ActiveRun]:
    with _lock:
        return list(_runs.values())


def stopping() -> bool:
    """True once stop_all was called: new runs should not start."""
    return _stopping.is_set()


def stop_all(seconds: float = 2.0) -> tuple[int, int]:
    """Stop every registered prompt at once, best effort, within `seconds`. Returns (stopped,
    total). Never raises."""
    _stopping.set()
    runs = active()
    if not runs:
        return 0, 0
    deadline = Deadline.after(seconds)
    results: list[bool] = []

    def stop(run: ActiveRun) -> None:
        try:
            results.append(bool(run.stop(deadline)))
        except Exception:  # noqa: BLE001 - shutting down: one failure must not stop the others
            results.append(False)

    threads = [threading.Thread(target=stop, args=(r,), daemon=True, name="comfyui-stop") for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline.remaining()))
    stopped = sum(results)
    log.info("stopping: %d of %d queued/running prompt(s) stopped", stopped, len(runs))
    return stopped, len(runs)

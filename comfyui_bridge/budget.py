"""How many bytes of output one run may hold in memory.

A run's files live in memory from download to delivery (blobs to Dify, uploads to COS); the
plugin declares its memory in the manifest. One budget per run is shared by HTTP downloads and
SaveImageWebsocket frames: what does not fit is not fetched, and the result names it.
"""

from __future__ import annotations

import threading

__all__ = ["OutputBudget", "RUN_OUTPUT_LIMIT"]

MiB = 1024 * 1024
# Peak memory of a run is about twice its outputs (download + upload / blob encoding) plus the
# interpreter; with 1 GiB declared in the manifest this leaves room for everything else.
RUN_OUTPUT_LIMIT = 400 * MiB


class OutputBudget:
    """Bytes left for one run's outputs. Thread-safe; `take` never blocks."""

    def __init__(self, limit: int = RUN_OUTPUT_LIMIT):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, size: int) -> bool:
        """Reserve `size` bytes; False (nothing reserved) when they do not fit."""
        with self._lock:
            if size < 0 or self.used + size > self.limit:
                return False
            self.used += size
            return True

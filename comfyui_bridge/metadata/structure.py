"""What every format walker shares: the walk's state and limits, edits, bounded readers."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from .scan import Hits, Needles

MAX_PARTS = 250_000             # chunks, boxes, pages, frames, ... walked in one file (~0.6 s at worst)
MAX_INFLATED = 64 * 1024 * 1024  # bytes decompressed (PNG zTXt/iTXt, ID3 frames) in one file
_INFLATE_STEP = 1024 * 1024
_NAME_CHARS = re.compile(r"[^A-Za-z0-9 _.:()/-]")


class Malformed(Exception):
    """The file does not have the structure its format promises, or is too big to walk."""


class TooMuchWork(Malformed):
    """A limit of `Walk` was reached: never to be taken as "this part is merely broken"."""


@dataclass(frozen=True)
class Edit:
    """Replace data[start:end] by `data`. `label` says what was removed ('' for fix-ups)."""

    start: int
    end: int
    data: bytes
    label: str = ""


@dataclass
class Walk:
    """State of one file's walk: the patterns, their raw hits, and the work left."""

    needles: Needles
    hits: Hits
    parts_left: int = MAX_PARTS
    inflate_left: int = MAX_INFLATED

    def step(self, count: int = 1) -> None:
        self.parts_left -= count
        if self.parts_left < 0:
            raise TooMuchWork(f"more than {MAX_PARTS} parts to check")

    def holds(self, start: int, end: int) -> bool:
        """True if a raw hit overlaps data[start:end]."""
        return self.hits.any_in(start, end)

    def holds_bytes(self, data: bytes | bytearray | memoryview) -> bool:
        return self.needles.found_in(data)

    def inflated_holds(self, compressed: bytes | memoryview, wbits: int = 15) -> bool:
        """True if the zlib stream holds a secret. Raises zlib.error if it cannot be read."""
        inflater = zlib.decompressobj(wbits)
        keep = self.needles.longest - 1
        tail, pending = b"", bytes(compressed)
        while True:
            out = inflater.decompress(pending, _INFLATE_STEP)
            self.inflate_left -= len(out)
            if self.inflate_left < 0:
                raise TooMuchWork(f"more than {MAX_INFLATED // (1024 * 1024)} MiB of compressed text")
            window = tail + out
            if self.needles.found_in(window):
                return True
            tail = window[-keep:] if keep > 0 else b""
            pending = inflater.unconsumed_tail
            if inflater.eof or (not out and not pending):
                return False

    def name(self, raw: bytes | str, limit: int = 32) -> str:
        """A file-supplied name made safe for a label: printable, short, never part of a secret."""
        text = raw.decode("latin-1") if isinstance(raw, (bytes, bytearray)) else str(raw)
        text = _NAME_CHARS.sub("?", text)[:limit]
        return "?" if self.needles.leaks(text) else text


def apply_edits(data: bytes, edits: list[Edit]) -> bytes:
    """The file with every edit applied: one copy of the data, none of its untouched ranges."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos or edit.end < edit.start or edit.end > len(data):
            raise Malformed("overlapping edits")  # a walker bug; never deliver a half-edited file
        parts.append(view[pos:edit.start])
        parts.append(edit.data)
        pos = edit.end
    parts.append(view[pos:])
    return b"".join(parts)


def need(pos: int, size: int, end: int, what: str) -> None:
    """Raise Malformed unless [pos, pos+size) lies before `end`."""
    if pos < 0 or size < 0 or pos + size > end:
        raise Malformed(f"{what} runs past the end")

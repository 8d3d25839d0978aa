"""The secrets as byte patterns, and linear scans for them.

A secret can sit in a file as plain UTF-8 (PNG text, EXIF ASCII, Vorbis comments, MP4 and Matroska
tags), as UTF-16 (ID3 frames, EXIF XP* tags), JSON-escaped once (the prompt JSON) or twice (the
prompt JSON stored as a string inside another JSON, e.g. safetensors metadata), or XML-escaped
(XMP). Every form is one more pattern; each pattern is one `bytes.find` pass, which CPython runs in
linear time whatever the input.
"""

from __future__ import annotations

import html
import json
from bisect import bisect_left
from collections.abc import Iterable, Sequence

# Shorter secrets would match by chance inside compressed media; a BizyAir key is ~50 characters.
MIN_LENGTH = 8
# More copies than this means a file built to make us work, not a ComfyUI output.
MAX_HITS = 10_000


class TooManyHits(Exception):
    """The file holds more copies of a secret than `MAX_HITS`."""


def _forms(word: str) -> set[str]:
    """The ways `word` is written in files: as is, JSON-escaped once and twice, XML-escaped."""
    once = json.dumps(word)[1:-1]
    return {word, once, json.dumps(once)[1:-1], html.escape(word, quote=True)}


def _encodings(form: str) -> set[bytes]:
    """UTF-8 and UTF-16. For ASCII text both UTF-16 byte orders share one core ("s\\0k\\0...\\0Z"):
    matching the core alone keeps a hit from spilling one byte into the data before or after it."""
    if form.isascii():
        return {form.encode("utf-8"), form.encode("utf-16-le")[:-1]}
    return {form.encode("utf-8"), form.encode("utf-16-le"), form.encode("utf-16-be")}


class Needles:
    """The byte patterns of a set of secrets."""

    def __init__(self, secrets: Iterable[str]):
        words = sorted({s.strip() for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_LENGTH})
        patterns: set[bytes] = set()
        for word in words:
            for form in _forms(word):
                patterns.update(_encodings(form))
        self.words: tuple[str, ...] = tuple(words)
        self.patterns: tuple[bytes, ...] = tuple(sorted(patterns))
        self.longest = max((len(p) for p in self.patterns), default=0)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def found_in(self, data: bytes | bytearray | memoryview) -> bool:
        """True if any pattern occurs in `data`."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        return any(p in data for p in self.patterns)

    def found_in_pieces(self, pieces: Iterable[bytes | memoryview]) -> bool:
        """True if any pattern occurs in the concatenation of `pieces` (checked piece by piece)."""
        keep = self.longest - 1
        tail = b""
        for piece in pieces:
            window = tail + bytes(piece)
            if self.found_in(window):
                return True
            tail = window[-keep:] if keep > 0 else b""
        return False

    def hits(self, data: bytes | bytearray) -> Hits:
        """Every occurrence of every pattern in `data` (raises TooManyHits past MAX_HITS)."""
        found: list[tuple[int, int]] = []
        for pattern in self.patterns:
            pos = data.find(pattern)
            while pos >= 0:
                found.append((pos, len(pattern)))
                if len(found) > MAX_HITS:
                    raise TooManyHits
                pos = data.find(pattern, pos + 1)
        return Hits(found, self.longest)

    def leaks(self, text: str) -> bool:
        """True if `text` holds any 8 consecutive characters of a secret (labels must not)."""
        return any(word[i:i + MIN_LENGTH] in text
                   for word in self.words for i in range(len(word) - MIN_LENGTH + 1))


class Hits:
    """Positions of the patterns in the original file, for range questions."""

    def __init__(self, found: Sequence[tuple[int, int]], longest: int):
        ordered = sorted(found)
        self._starts = [start for start, _ in ordered]
        self._ends = [start + length for start, length in ordered]
        self._longest = longest

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __len__(self) -> int:
        return len(self._starts)

    def any_in(self, start: int, end: int) -> bool:
        """True if a hit overlaps the byte range [start, end)."""
        if end <= start or not self._starts:
            return False
        index = bisect_left(self._starts, start - self._longest + 1)
        while index < len(self._starts) and self._starts[index] < end:
            if self._ends[index] > start:
                return True
            index += 1
        return False

"""EXIF (a TIFF structure) inside WebP, JPEG and PNG: remove the tags that hold a secret, in place.

ComfyUI's SaveAnimatedWEBP puts the prompt into EXIF tag 0x0110 (Model) as "prompt:{json}" and each
extra_pnginfo entry into 0x010F (Make), 0x010E, ... as "{key}:{json}"
(comfy_api/latest/_ui.py, ImageSaveHelper._create_webp_metadata; Pillow's Exif.tobytes writes one
little-endian IFD0 with the values after it).

A removed tag leaves its IFD (the entry count drops by one, the later entries and the next-IFD
pointer move up, the freed 12 bytes at the end become zeros) and its value bytes are zeroed. The
TIFF keeps its length, so the container around it needs no size fix.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .structure import Malformed, Walk, need

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_POINTER_TAGS = {0x8769, 0x8825, 0xA005, 0x014A}  # Exif IFD, GPS IFD, Interoperability IFD, SubIFDs
_TAG_NAMES = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software",
              0x013B: "Artist", 0x8298: "Copyright", 0x9286: "UserComment", 0x927C: "MakerNote",
              0x9C9B: "XPTitle", 0x9C9C: "XPComment", 0x9C9D: "XPAuthor", 0x9C9E: "XPKeywords",
              0x9C9F: "XPSubject"}
_MAX_IFDS = 32
_MAX_DEPTH = 4


@dataclass
class TiffResult:
    data: bytes | None            # the new TIFF bytes (same length), None when nothing was removed
    labels: list[str] = field(default_factory=list)
    complete: bool = True         # False: a secret is still in the TIFF outside any removable tag


@dataclass(frozen=True)
class _Entry:
    pos: int          # absolute position of the 12-byte entry
    tag: int
    value: tuple[int, int]   # absolute range of the value (inside the entry when it fits in 4 bytes)


def scrub(data: bytes, start: int, end: int, walk: Walk) -> TiffResult:
    """Remove every tag of the TIFF in data[start:end] whose value holds a secret.

    Raises Malformed when the bytes are not a classic TIFF; the caller then drops the whole
    container (an EXIF chunk or segment) if it holds a secret.
    """
    need(start, 8, end, "EXIF header")
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[start:start + 2]))
    if order is None or struct.unpack_from(order + "H", data, start + 2)[0] != 42:
        raise Malformed("EXIF is not a TIFF structure")
    out: bytearray | None = None
    labels: list[str] = []
    queue = [(struct.unpack_from(order + "I", data, start + 4)[0], 0)]
    seen: set[int] = set()
    while queue:
        offset, depth = queue.pop()
        if offset == 0 or offset in seen or len(seen) >= _MAX_IFDS:
            continue
        seen.add(offset)
        entries, next_pos = _read_ifd(data, start, end, start + offset, order, walk)
        for entry in entries:
            if entry.tag in _POINTER_TAGS and depth < _MAX_DEPTH:
                queue.extend((pointer, depth + 1) for pointer in _pointers(data, entry, order))
        if next_pos + 4 <= end:
            queue.append((struct.unpack_from(order + "I", data, next_pos)[0], depth))
        dropped = [e for e in entries if walk.holds(*e.value) or walk.holds(e.pos, e.pos + 12)]
        if dropped:
            out = out if out is not None else bytearray(data[start:end])
            _rewrite_ifd(out, start, start + offset, entries, dropped, next_pos, end, order)
            labels += [f"EXIF tag 0x{e.tag:04X} ({_TAG_NAMES.get(e.tag, 'tag')})" for e in dropped]
    current = out if out is not None else data[start:end]
    return TiffResult(bytes(out) if out is not None else None, labels, not walk.holds_bytes(current))


def _read_ifd(data: bytes, start: int, end: int, ifd: int, order: str, walk: Walk) -> tuple[list[_Entry], int]:
    need(ifd, 2, end, "EXIF directory")
    count = struct.unpack_from(order + "H", data, ifd)[0]
    walk.step(count + 1)
    need(ifd + 2, 12 * count, end, "EXIF directory")
    entries = []
    for index in range(count):
        pos = ifd + 2 + 12 * index
        tag, kind, number = struct.unpack_from(order + "HHI", data, pos)
        size = _TYPE_SIZES.get(kind, 0) * number
        value = (pos + 8, pos + 8 + size)
        if size > 4:
            at = start + struct.unpack_from(order + "I", data, pos + 8)[0]
            value = (at, at + size) if start + 8 <= at and at + size <= end else (pos + 8, pos + 12)
        entries.append(_Entry(pos, tag, value))
    return entries, ifd + 2 + 12 * count


def _pointers(data: bytes, entry: _Entry, order: str) -> list[int]:
    first, last = entry.value
    count = min((last - first) // 4, 16)
    return [struct.unpack_from(order + "I", data, first + 4 * i)[0] for i in range(count)]


def _rewrite_ifd(out: bytearray, start: int, ifd: int, entries: list[_Entry], dropped: list[_Entry],
                 next_pos: int, end: int, order: str) -> None:
    """Rewrite one IFD without the dropped entries and zero their values (positions absolute)."""
    kept = [e for e in entries if e not in dropped]
    table_end = next_pos + 4 if next_pos + 4 <= end else next_pos
    for entry in dropped:
        first, last = entry.value
        if first >= table_end or last <= ifd:  # the value lives outside the table
            out[first - start:last - start] = bytes(last - first)
    body = b"".join(bytes(out[e.pos - start:e.pos - start + 12]) for e in kept)
    tail = bytes(out[next_pos - start:table_end - start])
    table = struct.pack(order + "H", len(kept)) + body + tail
    out[ifd - start:table_end - start] = table + bytes(table_end - ifd - len(table))

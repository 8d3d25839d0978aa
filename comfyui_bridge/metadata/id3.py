"""MP3 (ID3v2): drop the frames that hold a secret; the tag keeps its size (zero padding).

ComfyUI's SaveAudioMP3 writes through PyAV with `prompt` and the extra_pnginfo keys as container
metadata (comfy_api/latest/_ui.py, AudioSaveHelper.save_audio); FFmpeg's MP3 muxer writes an
ID3v2.4 tag at the start with one TXXX frame per key (description = key, UTF-8 value).

Kept frames move up and zeros fill the rest of the tag (ID3 padding), so the audio does not move. A
v2.4 footer becomes padding too (a tag with padding may not have a footer). Compressed frames are
inflated to look inside; encrypted frames cannot be read and are dropped. When the frames cannot be
walked (unsynchronised or malformed tag) and the tag holds a secret, the whole tag becomes an empty
tag of the same size. Several tags in a row are handled; a FLAC stream after the tags too.
"""

from __future__ import annotations

import re
import struct
import zlib

from . import flac
from .structure import Edit, Malformed, TooMuchWork, Walk, need

MAGIC = b"ID3"
_MAX_TAGS = 8
_FRAME_ID = re.compile(rb"[A-Z0-9]{3,4}")


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if not data.startswith(MAGIC):
        raise Malformed("not an ID3 tag")
    edits: list[Edit] = []
    pos = 0
    for _ in range(_MAX_TAGS):
        if data[pos:pos + 3] != MAGIC:
            break
        walk.step()
        stop, edit = _tag(data, pos, walk)
        if edit is not None:
            edits.append(edit)
        pos = stop
    if data[pos:pos + 4] == flac.MAGIC:
        edits += flac.plan_at(data, pos, walk)
    return edits


def _synchsafe(raw: bytes) -> int:
    if any(b & 0x80 for b in raw):
        raise Malformed("bad ID3 size")
    return raw[0] << 21 | raw[1] << 14 | raw[2] << 7 | raw[3]


def _tag(data: bytes, pos: int, walk: Walk) -> tuple[int, Edit | None]:
    need(pos, 10, len(data), "ID3 header")
    major, flags = data[pos + 3], data[pos + 5]
    if major not in (2, 3, 4):
        raise Malformed("unknown ID3 version")
    size = _synchsafe(data[pos + 6:pos + 10])
    footer = 10 if major == 4 and flags & 0x10 else 0
    stop = pos + 10 + size + footer
    need(pos, stop - pos, len(data), "ID3 tag")
    try:
        if flags & 0x80 or (major == 2 and flags & 0x40):
            raise Malformed("unsynchronised or compressed ID3 tag")
        frames_start = pos + 10 + (_extended_header(data, pos, major) if flags & 0x40 else 0)
        return stop, _frames(data, pos, frames_start, pos + 10 + size, footer, walk)
    except TooMuchWork:
        raise
    except Malformed:
        if not walk.holds(pos, stop) and not _unsynced_holds(data, pos + 10, stop, walk):
            return stop, None
        empty = data[pos:pos + 5] + b"\x00" + _to_synchsafe(stop - pos - 10) + bytes(stop - pos - 10)
        return stop, Edit(pos, stop, bytes(empty), "ID3 tag (whole tag)")


def _unsynced_holds(data: bytes, start: int, stop: int, walk: Walk) -> bool:
    """Unsynchronisation inserts a zero after every 0xFF: undo it before looking."""
    return walk.holds_bytes(bytes(data[start:stop]).replace(b"\xff\x00", b"\xff"))


def _extended_header(data: bytes, pos: int, major: int) -> int:
    need(pos + 10, 4, len(data), "ID3 extended header")
    raw = data[pos + 10:pos + 14]
    return _synchsafe(raw) if major == 4 else 4 + struct.unpack(">I", raw)[0]


def _frames(data: bytes, tag: int, start: int, end: int, footer: int, walk: Walk) -> Edit | None:
    kept: list[bytes] = []
    labels: list[str] = []
    major = data[tag + 3]
    header = 6 if major == 2 else 10
    pos = start
    while pos + header <= end and data[pos] != 0:
        walk.step()
        if major == 2:
            frame_id, size = bytes(data[pos:pos + 3]), int.from_bytes(data[pos + 3:pos + 6], "big")
        else:
            frame_id = bytes(data[pos:pos + 4])
            size = struct.unpack_from(">I", data, pos + 4)[0] if major == 3 else _synchsafe(data[pos + 4:pos + 8])
        if not _FRAME_ID.fullmatch(frame_id):
            raise Malformed("bad ID3 frame")
        stop = pos + header + size
        need(pos, header + size, end, "ID3 frame")
        reason = _frame_holds(data, pos, header, stop, major, walk)
        if reason is None:
            kept.append(bytes(data[pos:stop]))
        else:
            plain = major == 2 or not data[pos + 9] & (0xE0 if major == 3 else 0x4F)  # no compression etc.
            name = _description(data, pos + header, stop, frame_id, walk) if plain else ""
            labels.append(f"ID3 {frame_id.decode()} frame{name}{reason}")
        pos = stop
    if pos < end and walk.holds(pos, end):
        labels.append("ID3 padding data")
    elif not labels:
        return None
    body = b"".join(kept)
    area = end - start + footer
    new_header = b""
    if footer:  # padding and a footer may not go together: the footer becomes padding
        new_header = bytes(data[tag:tag + 5]) + bytes([data[tag + 5] & ~0x10]) + _to_synchsafe(end - tag - 10 + footer)
        return Edit(tag, end + footer, new_header + bytes(data[tag + 10:start]) + body + bytes(area - len(body)),
                    "; ".join(labels))
    return Edit(start, end, body + bytes(area - len(body)), "; ".join(labels))


def _frame_holds(data: bytes, pos: int, header: int, stop: int, major: int, walk: Walk) -> str | None:
    """None if the frame holds no secret; else '' or a note for the label."""
    if walk.holds(pos, stop):
        return ""
    if major == 2:
        return None
    format_flags = data[pos + 9]
    compressed, encrypted, skip = (
        (format_flags & 0x80, format_flags & 0x40, 4 if format_flags & 0x80 else 0) if major == 3 else
        (format_flags & 0x08, format_flags & 0x04, 4 if format_flags & 0x01 else 0))
    if major == 3 and format_flags & 0x20:
        skip += 1  # group identifier
    if major == 4 and format_flags & 0x40:
        skip += 1
    if encrypted:
        return " (encrypted, cannot be checked)"
    if compressed:
        try:
            return "" if walk.inflated_holds(memoryview(data)[pos + header + skip:stop]) else None
        except zlib.error:
            return " (unreadable compressed data)"
    return None


def _description(data: bytes, start: int, stop: int, frame_id: bytes, walk: Walk) -> str:
    """TXXX / WXXX description (the metadata key) for the label."""
    if frame_id not in (b"TXXX", b"WXXX", b"TXX") or stop - start < 2:
        return ""
    encoding, text = data[start], bytes(data[start + 1:min(stop, start + 81)])
    if encoding in (1, 2):
        name: str | bytes = text.decode("utf-16" if encoding == 1 else "utf-16-be", "replace").split("\x00")[0]
    else:
        name = text.split(b"\x00")[0]
    return f" '{walk.name(name)}'" if name else ""


def _to_synchsafe(value: int) -> bytes:
    if value >= 1 << 28:
        raise Malformed("ID3 tag too large")
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))

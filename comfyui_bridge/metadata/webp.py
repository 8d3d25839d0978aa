"""WebP (RIFF): remove EXIF tags in place, drop XMP and unknown chunks that hold a secret.

ComfyUI's SaveAnimatedWEBP passes an EXIF block to Pillow (comfy_api/latest/_ui.py,
ImageSaveHelper.save_animated_webp / _create_webp_metadata: tag 0x0110 = "prompt:{json}", 0x010F,
0x010E, ... = "{key}:{json}" per extra_pnginfo entry); Pillow's WebP writer stores it as an `EXIF`
chunk after the frames and sets the EXIF bit of VP8X.

Dropping a chunk shrinks the RIFF: its size field is rewritten, and the VP8X flag of a dropped
EXIF / XMP / ICCP chunk is cleared. Frame chunks (VP8, VP8L, ALPH, ANIM, ANMF, VP8X) are never
touched.
"""

from __future__ import annotations

import struct

from . import tiff
from .structure import Edit, Malformed, TooMuchWork, Walk, need

_PICTURE = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}
_FLAGS = {b"ICCP": 0x20, b"EXIF": 0x08, b"XMP ": 0x04}


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if not is_webp(data):
        raise Malformed("not a WebP")
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    need(0, riff_end, len(data), "RIFF")
    edits: list[Edit] = []
    dropped: list[bytes] = []
    vp8x_flags_at = None
    pos = 12
    while pos + 8 <= riff_end:
        walk.step()
        kind, size = struct.unpack_from("<4sI", data, pos)
        stop = pos + 8 + size + (size & 1)
        need(pos, 8 + size, riff_end, "WebP chunk")
        stop = min(stop, riff_end)
        if kind == b"VP8X" and size >= 1:
            vp8x_flags_at = pos + 8
        if kind not in _PICTURE and walk.holds(pos, stop):
            edit = _exif(data, pos, size, walk) if kind == b"EXIF" else None
            if edit is None:
                edits.append(Edit(pos, stop, b"", f"WebP {walk.name(kind).strip()} chunk"))
                dropped.append(kind)
            else:
                edits.append(edit)
        pos = stop
    if pos != riff_end:
        raise Malformed("WebP chunks do not fill the RIFF")
    if riff_end < len(data) and walk.holds(riff_end, len(data)):
        edits.append(Edit(riff_end, len(data), b"", "data after the WebP end"))
    shrink = sum(e.end - e.start for e in edits if not e.data and e.start < riff_end)
    if shrink:
        edits.append(Edit(4, 8, struct.pack("<I", riff_end - 8 - shrink)))
        clear = sum(_FLAGS.get(kind, 0) for kind in set(dropped))
        if vp8x_flags_at is not None and clear:
            flags = data[vp8x_flags_at] & ~clear & 0xFF
            edits.append(Edit(vp8x_flags_at, vp8x_flags_at + 1, bytes([flags])))
    return edits


def _exif(data: bytes, pos: int, size: int, walk: Walk) -> Edit | None:
    """Tags removed in place, or None to drop the whole chunk."""
    start = pos + 8
    if data[start:start + 6] == b"Exif\x00\x00":  # older Pillow kept the JPEG-style prefix
        start += 6
    try:
        result = tiff.scrub(data, start, pos + 8 + size, walk)
    except TooMuchWork:
        raise
    except Malformed:
        return None
    if not result.complete or result.data is None:
        return None
    return Edit(start, start + len(result.data), result.data, "WebP EXIF: " + ", ".join(result.labels))

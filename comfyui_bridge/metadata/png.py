"""PNG and APNG: drop the ancillary chunks that hold a secret.

ComfyUI writes the prompt as a `tEXt` chunk "prompt\\0{json}" plus one per extra_pnginfo key
(SaveImage / PreviewImage: comfy_api/latest/_ui.py ImageSaveHelper._create_png_metadata, Pillow
PngInfo.add_text), and for SaveAnimatedPNG as private `comf` chunks after the image data
(ImageSaveHelper._create_animated_png_metadata, PngInfo.add(b"comf", ..., after_idat=True)).
Other writers use zTXt/iTXt (compressed: inflated here to look inside) or eXIf (EXIF tags removed
in place, chunk CRC recomputed).

Chunks are self-delimiting and carry their own CRC, so dropping one leaves every other byte valid.
Chunks that shape the picture (IHDR, PLTE, IDAT, IEND, tRNS, APNG's acTL/fcTL/fdAT) are never
touched; a secret there stays and the final scan withholds the file.
"""

from __future__ import annotations

import struct
import zlib

from . import tiff
from .structure import Edit, Malformed, TooMuchWork, Walk, need

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PICTURE = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"acTL", b"fcTL", b"fdAT"}


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if not data.startswith(SIGNATURE):
        raise Malformed("not a PNG")
    edits: list[Edit] = []
    pos, end = len(SIGNATURE), len(data)
    while True:
        walk.step()
        need(pos, 12, end, "PNG chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise Malformed("bad PNG chunk header")
        body, stop = pos + 8, pos + 12 + length
        need(body, length + 4, end, "PNG chunk")
        if kind == b"IEND":
            if stop < end and walk.holds(stop, end):
                edits.append(Edit(stop, end, b"", "data after the PNG end"))
            return edits
        if kind == b"eXIf":
            edits += _exif(data, pos, body, stop, walk)
        elif kind not in _PICTURE:
            reason = _holds(data, kind, body, stop - 4, walk)
            if reason is not None:
                keyword = walk.name(bytes(data[body:min(body + 80, stop - 4)]).partition(b"\x00")[0])
                edits.append(Edit(pos, stop, b"", f"PNG {kind.decode()} chunk '{keyword}'{reason}"))
        pos = stop


def _holds(data: bytes, kind: bytes, body: int, crc_pos: int, walk: Walk) -> str | None:
    """None if the chunk holds no secret, else '' or a note for the label."""
    if walk.holds(body - 8, crc_pos + 4):
        return ""
    compressed = _compressed_text(data, kind, body, crc_pos)
    if compressed is None:
        return None
    try:
        return "" if walk.inflated_holds(compressed) else None
    except zlib.error:
        return " (unreadable compressed text)"


def _compressed_text(data: bytes, kind: bytes, body: int, stop: int) -> memoryview | None:
    """The zlib stream of a zTXt chunk or a compressed iTXt chunk, else None."""
    view = memoryview(data)[body:stop]
    keyword_end = bytes(view[:80]).find(b"\x00")
    if keyword_end < 0:
        return None
    if kind == b"zTXt":
        return view[keyword_end + 2:]
    if kind == b"iTXt" and len(view) > keyword_end + 2 and view[keyword_end + 1] == 1:
        rest = view[keyword_end + 3:]
        language_end = bytes(rest).find(b"\x00")
        translated_end = bytes(rest).find(b"\x00", language_end + 1) if language_end >= 0 else -1
        return rest[translated_end + 1:] if translated_end >= 0 else None
    return None


def _exif(data: bytes, pos: int, body: int, stop: int, walk: Walk) -> list[Edit]:
    if not walk.holds(pos, stop):
        return []
    try:
        result = tiff.scrub(data, body, stop - 4, walk)
    except TooMuchWork:
        raise
    except Malformed:
        return [Edit(pos, stop, b"", "PNG eXIf chunk (unreadable EXIF)")]
    if not result.complete:
        return [Edit(pos, stop, b"", "PNG eXIf chunk")]
    if result.data is None:
        return []
    crc = struct.pack(">I", zlib.crc32(b"eXIf" + result.data) & 0xFFFFFFFF)
    return [Edit(pos, stop, bytes(data[pos:body]) + result.data + crc, "; ".join(result.labels))]

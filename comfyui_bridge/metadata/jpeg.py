"""JPEG: remove EXIF tags in place; drop the APPn / COM segments that hold a secret.

ComfyUI's core nodes write no JPEG, but custom save nodes do (Pillow `exif=` → APP1 "Exif\\0\\0" +
TIFF; XMP → APP1 "http://ns.adobe.com/xap/1.0/\\0"; comments → COM). APP0 (JFIF) and APP14
(Adobe colour transform) change how the picture decodes and are never dropped; a secret there stays
and the final scan withholds the file.

Segments are walked up to the first SOS; metadata segments come before it (a secret in a later one
is still caught by the final scan).
"""

from __future__ import annotations

import struct

from . import tiff
from .structure import Edit, Malformed, TooMuchWork, Walk, need

_KEEP = {0xE0, 0xEE}                        # APP0 JFIF, APP14 Adobe
_DROPPABLE = set(range(0xE0, 0xF0)) | {0xFE}  # APPn, COM
_STANDALONE = set(range(0xD0, 0xD8)) | {0x01}
_SOS, _EOI = 0xDA, 0xD9


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if data[:2] != b"\xff\xd8":
        raise Malformed("not a JPEG")
    edits: list[Edit] = []
    pos, end = 2, len(data)
    while True:
        walk.step()
        need(pos, 2, end, "JPEG marker")
        if data[pos] != 0xFF:
            raise Malformed("JPEG segment does not start with a marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (_SOS, _EOI):
            return edits
        length = struct.unpack_from(">H", data, pos + 2)[0] if pos + 4 <= end else 0
        if length < 2:
            raise Malformed("bad JPEG segment length")
        stop = pos + 2 + length
        need(pos, 2 + length, end, "JPEG segment")
        if marker in _DROPPABLE and marker not in _KEEP and walk.holds(pos, stop):
            edits.append(_segment(data, pos, marker, stop, walk))
        pos = stop


def _segment(data: bytes, pos: int, marker: int, stop: int, walk: Walk) -> Edit:
    name = "COM" if marker == 0xFE else f"APP{marker - 0xE0}"
    body = pos + 4
    if marker == 0xE1 and data[body:body + 6] == b"Exif\x00\x00":
        try:
            result = tiff.scrub(data, body + 6, stop, walk)
        except TooMuchWork:
            raise
        except Malformed:
            result = None
        if result is not None and result.complete and result.data is not None:
            return Edit(body + 6, stop, result.data, "JPEG EXIF: " + ", ".join(result.labels))
        return Edit(pos, stop, b"", "JPEG APP1 EXIF segment")
    if marker == 0xE1 and data[body:body + 29] == b"http://ns.adobe.com/xap/1.0/\x00":
        name = "APP1 XMP"
    return Edit(pos, stop, b"", f"JPEG {name} segment")

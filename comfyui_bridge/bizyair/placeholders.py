"""BizyAir's stock placeholder media, returned by failing third-party API nodes instead of an error."""

from __future__ import annotations

import hashlib
import struct
import zlib

# sha256 of the stock media bizyengine returns instead of raising when a third-party API node fails
# while sibling API tasks of the same prompt still run (trd_nodes_base.py api_call). Computed from
# bizyengine-1.2.114-py3-none-any.whl (PyPI), files
# bizyengine/bizyair_extras/third_party_api/placeholder.png (6920 bytes, 600×400 RGBA) and
# bizyengine/bizyair_extras/third_party_api/placeholder.mp4 (5783 bytes).
PLACEHOLDER_SIZES = frozenset({6920, 5783})   # bytes of placeholder.png, placeholder.mp4
PLACEHOLDER_SHA256 = frozenset({
    "add61636c790e93aeebc24523f2ade745c9f76b7da4da6f2f54eb9f3f7b8736d",  # placeholder.png
    "06abb29f80340f16cdac8b267efa8c0bea2e6e2870fb841203cd85a31111ba16",  # placeholder.mp4
})

# The node does not hand those bytes on: it decodes placeholder.png into an IMAGE tensor
# (bizyairsdk bytesio_to_image_tensor, RGBA float32) and SaveImage/PreviewImage write a new PNG
# (other compression, prompt metadata, values possibly off by one). So an output file is
# recognised by its pixels as well: the image is 600×400, background #dddddd, the word
# "Placeholder" in #999999. Below: the dark runs [start, end) of five rows through the word.
_PH_SIZE = (600, 400)
_PH_BACKGROUND = 0xDD
_PH_DARK_BELOW = 0xBB
_PH_BACKGROUND_ROWS = (20, 100, 160)
_PH_TEXT_ROWS = {
    180: ((122, 153), (163, 172), (285, 294), (364, 372), (403, 412)),
    190: ((122, 131), (148, 157), (163, 172), (187, 200), (224, 237), (257, 270), (285, 294),
          (299, 310), (333, 346), (364, 372), (389, 400), (403, 412), (429, 441), (457, 464),
          (470, 478)),
    200: ((122, 131), (139, 155), (163, 172), (199, 207), (214, 223), (248, 256), (271, 278),
          (285, 294), (307, 316), (323, 332), (347, 356), (364, 372), (380, 389), (403, 412),
          (419, 428), (443, 450), (457, 467)),
    210: ((122, 131), (163, 172), (180, 195), (199, 207), (213, 222), (247, 255), (285, 294),
          (308, 316), (323, 331), (348, 357), (364, 372), (379, 388), (403, 412), (418, 427),
          (457, 466)),
    220: ((122, 131), (163, 172), (178, 207), (218, 243), (251, 278), (285, 294), (308, 316),
          (327, 353), (364, 372), (382, 412), (423, 450), (457, 466)),
}
_PH_EDGE_SLACK = 8          # anti-aliased edge pixels that may land on the other side per row


def is_placeholder(data: bytes) -> bool:
    """True if `data` is BizyAir's stock placeholder image or video instead of a real result.

    Byte-identical files match by sha256. A PNG written by ComfyUI from the placeholder image
    matches by its pixels. A re-muxed placeholder video is not recognised (no video decoding here).
    """
    # Only files of the stock sizes can be byte-identical: skip hashing every real output.
    if len(data) in PLACEHOLDER_SIZES and hashlib.sha256(data).hexdigest() in PLACEHOLDER_SHA256:
        return True
    if not data.startswith(_PNG_MAGIC) or _png_size(data) != _PH_SIZE:
        return False
    try:
        rows = _png_grey_rows(data, max(_PH_TEXT_ROWS) + 1)
    except (ValueError, zlib.error, struct.error, IndexError):
        return False
    if rows is None:
        return False
    for y in _PH_BACKGROUND_ROWS:
        if any(abs(v - _PH_BACKGROUND) > 4 for v in rows[y]):
            return False
    for y, runs in _PH_TEXT_ROWS.items():
        expected = bytearray(_PH_SIZE[0])
        for start, end in runs:
            expected[start:end] = b"\x01" * (end - start)
        wrong = sum(1 for x, v in enumerate(rows[y]) if (v < _PH_DARK_BELOW) != bool(expected[x]))
        if wrong > _PH_EDGE_SLACK:
            return False
    return True


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}   # colour type → samples per pixel (8-bit only)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _png_grey_rows(data: bytes, count: int) -> list[bytes] | None:
    """First channel of the first `count` rows of an 8-bit, non-interlaced PNG (None otherwise)."""
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        return None
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or interlace or colour not in _PNG_CHANNELS or count > height:
        return None
    bpp = _PNG_CHANNELS[colour]
    stride = width * bpp
    raw = zlib.decompressobj().decompress(b"".join(idat), count * (stride + 1))
    prev, out = bytearray(stride), []
    for y in range(count):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, bpp)
        out.append(bytes(line[0::bpp]))
        prev = line
    return out


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    """Undo one PNG row filter (RFC 2083 §6)."""
    n = len(line)
    if kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        # a truncated stream leaves the last row short; like the other filters, keep what is there
        line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=False))
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    elif kind != 0:
        raise ValueError(f"bad PNG filter {kind}")
    return line

"""Facts read from a delivered file's bytes, for assertions: a PNG's size, an MP4's size and length."""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def mp4_facts(data: bytes) -> tuple[int, int, float]:
    """(width, height, seconds) from the MP4's tkhd and mvhd boxes."""
    mvhd = data.index(b"mvhd")
    timescale, duration = struct.unpack(">II", data[mvhd + 16:mvhd + 24])
    tkhd = data.index(b"tkhd")
    width, height = struct.unpack(">II", data[tkhd + 80:tkhd + 88])
    return width >> 16, height >> 16, duration / timescale

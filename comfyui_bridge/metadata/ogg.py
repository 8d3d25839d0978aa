"""Ogg (Opus, Vorbis, Theora): drop the comments that hold a secret, keeping every page's size.

ComfyUI's SaveAudioOpus writes through PyAV with `prompt` and the extra_pnginfo keys as container
metadata (comfy_api/latest/_ui.py, AudioSaveHelper.save_audio); FFmpeg's Ogg muxer writes them into
the comment header (the second packet of the stream: "OpusTags" / "\\x03vorbis" / "\\x81theora"),
spread over several pages when it is longer than 65,025 bytes; a secret may then be split by a page
header, so the packet is put back together before it is checked.

The cleaned comment packet keeps its length: the kept comments, what followed the list (Vorbis'
framing bit), then zeros (RFC 7845 §5.2 allows padding after the Opus comment list; Vorbis and
Theora readers stop at the framing bit). So every page keeps its size and lacing, and only the
pages holding the packet are rewritten, with a new CRC.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from . import vorbiscomment
from .structure import Edit, Malformed, Walk, need

MAGIC = b"OggS"
_PREFIXES = {b"OpusHead": b"OpusTags", b"\x01vorbis": b"\x03vorbis", b"\x80theora": b"\x81theora"}
_MAX_HEADER_PACKET = 64 * 1024 * 1024
# Ogg's CRC-32 is the unreflected one (poly 0x04C11DB7, init 0, no final xor). zlib computes the
# reflected one; feeding it bit-reversed bytes and bit-reversing the result gives Ogg's.
_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_crc(page: bytes | bytearray) -> int:
    raw = zlib.crc32(bytes(page).translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


@dataclass
class _Stream:
    packets: int = 0                      # complete packets seen
    first: bytes = b""                    # the identification packet's first 8 bytes
    pieces: list[tuple[int, int, int]] = field(default_factory=list)  # (page start, from, to)
    size: int = 0


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if not data.startswith(MAGIC):
        raise Malformed("not an Ogg file")
    streams: dict[int, _Stream] = {}
    comment_packets: list[list[tuple[int, int, int]]] = []
    pos, end = 0, len(data)
    while pos < end:
        walk.step()
        need(pos, 27, end, "Ogg page")
        if data[pos:pos + 4] != MAGIC or data[pos + 4] != 0:
            raise Malformed("bad Ogg page")
        header_type = data[pos + 5]
        serial = struct.unpack_from("<I", data, pos + 14)[0]
        count = data[pos + 26]
        need(pos + 27, count, end, "Ogg lacing")
        lacing = data[pos + 27:pos + 27 + count]
        body = pos + 27 + count
        stop = body + sum(lacing)
        need(body, stop - body, end, "Ogg page")
        if header_type & 0x02:  # beginning of a stream (also of each link of a chained file)
            streams[serial] = _Stream()
        stream = streams.setdefault(serial, _Stream(packets=2))
        if stream.packets < 2:
            _collect(data, pos, body, lacing, stream, comment_packets)
        pos = stop
    edits: list[Edit] = []
    for pieces in comment_packets:
        edits += _clean_packet(data, pieces, walk)
    return edits


def _collect(data: bytes, page: int, body: int, lacing: bytes, stream: _Stream,
             done: list[list[tuple[int, int, int]]]) -> None:
    """Follow the first two packets of a stream; keep where the second (the comments) lies."""
    start = body
    for index, value in enumerate(lacing):
        body += value
        if value == 255 and index < len(lacing) - 1:
            continue
        if stream.packets == 0:
            stream.first = stream.first or bytes(data[start:start + 8])
        elif stream.packets == 1 and body > start:
            stream.pieces.append((page, start, body))
            stream.size += body - start
            if stream.size > _MAX_HEADER_PACKET:
                raise Malformed("Ogg comment header too large")
        if value < 255:
            if stream.packets == 1 and any(stream.first.startswith(head) for head in _PREFIXES):
                done.append(stream.pieces)
            stream.packets += 1
            if stream.packets >= 2:
                return
        start = body


def _clean_packet(data: bytes, pieces: list[tuple[int, int, int]], walk: Walk) -> list[Edit]:
    view = memoryview(data)
    packet = b"".join(view[a:b] for _, a, b in pieces)
    prefix = next((p for p in _PREFIXES.values() if packet.startswith(p)), None)
    if prefix is None or not walk.holds_bytes(packet):
        return []
    result = vorbiscomment.scrub(packet, len(prefix), walk, "Ogg")
    if result.body is None:
        return []
    new = prefix + result.body + packet[result.rest:]
    new += bytes(len(packet) - len(new))
    return _rewrite_pages(data, pieces, new, "; ".join(result.labels))


def _rewrite_pages(data: bytes, pieces: list[tuple[int, int, int]], packet: bytes, label: str) -> list[Edit]:
    """Write `packet` (same length) back over its pieces, page by page, with new page CRCs."""
    pages: dict[int, bytearray] = {}
    offset = 0
    for page, start, stop in pieces:
        if page not in pages:
            count = data[page + 26]
            size = 27 + count + sum(data[page + 27:page + 27 + count])
            pages[page] = bytearray(data[page:page + size])
        buf = pages[page]
        buf[start - page:stop - page] = packet[offset:offset + stop - start]
        offset += stop - start
    edits = []
    for page, buf in pages.items():
        buf[22:26] = b"\x00\x00\x00\x00"
        buf[22:26] = struct.pack("<I", ogg_crc(buf))
        edits.append(Edit(page, page + len(buf), bytes(buf), label))
        label = ""
    return edits

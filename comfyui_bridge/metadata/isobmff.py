"""MP4 / MOV (ISO base media): neutralise the metadata boxes that hold a secret, in place.

ComfyUI's SaveVideo opens the output with `movflags=use_metadata_tags(+faststart)` and sets every
extra_pnginfo key and `prompt` as container metadata (comfy_api/latest/_input_impl/video_types.py:
VideoFromComponents.save_to, video_output_config / get_open_write_kwargs). FFmpeg's mov muxer then
writes moov/udta/meta with an `mdta` handler, a `keys` box and an `ilst` whose item N (box type =
N as a 32-bit number) holds a `data` box with the JSON.

A box is neutralised by turning it into a `free` box of the same size with a zeroed payload: no
byte moves, so the chunk offsets (stco/co64) that point into mdat stay right whether moov comes
before mdat (faststart) or after. Only boxes inside udta / meta / ilst, or top-level uuid / meta /
free boxes, are neutralised; a secret in media data or sample tables stays and the final scan
withholds the file.
"""

from __future__ import annotations

import struct

from .structure import Edit, Malformed, Walk, need

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"udta", b"meta", b"ilst", b"edts", b"dinf",
               b"moof", b"traf", b"mvex"}
_METADATA_PARENTS = {b"udta", b"meta", b"ilst"}
_TOP_LEVEL_METADATA = {b"uuid", b"meta", b"free", b"skip", b"wide", b"udta"}
_KNOWN_TOP = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"moof", b"mfra",
              b"styp", b"sidx", b"pdin", b"pnot", b"udta", b"prft", b"emsg", b"ssix"}
_MAX_DEPTH = 8


def is_isobmff(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] in _KNOWN_TOP


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if not is_isobmff(data):
        raise Malformed("not an MP4")
    edits: list[Edit] = []
    # (start, end, parent type, depth): an explicit stack, never recursion.
    stack: list[tuple[int, int, bytes, int]] = [(0, len(data), b"", 0)]
    while stack:
        start, end, parent, depth = stack.pop()
        pos = start
        while pos < end:
            walk.step()
            if end - pos < 8 and not any(data[pos:end]):
                break  # QuickTime ends some atom lists with a 32-bit zero
            kind, header, size = _box(data, pos, end, top=depth == 0)
            stop = pos + size
            if kind == b"cmov":
                raise Malformed("compressed movie header (cannot be checked)")
            holds = walk.holds(pos, stop)
            if kind in _CONTAINERS and depth < _MAX_DEPTH and (holds or kind == b"moov"):  # moov: look for cmov
                body = pos + header + (_meta_skip(data, pos + header, stop) if kind == b"meta" else 0)
                stack.append((body, stop, kind, depth + 1))
            elif holds and (parent in _METADATA_PARENTS or (depth == 0 and kind in _TOP_LEVEL_METADATA)):
                label = f"MP4 {_box_name(kind, parent, walk)} box"
                edits.append(Edit(pos, stop, _free(data, pos, header, size), label))
            pos = stop
    return edits


def _box(data: bytes, pos: int, end: int, top: bool) -> tuple[bytes, int, int]:
    """(type, header length, box size) of the box at pos."""
    need(pos, 8, end, "MP4 box")
    size, kind = struct.unpack_from(">I4s", data, pos)
    header = 8
    if size == 1:
        need(pos, 16, end, "MP4 box")
        size = struct.unpack_from(">Q", data, pos + 8)[0]
        header = 16
    elif size == 0:
        if not top:
            raise Malformed("MP4 box of size 0 inside another box")
        size = end - pos
    if size < header or pos + size > end:
        raise Malformed("MP4 box runs past its parent")
    return kind, header, size


def _meta_skip(data: bytes, body: int, stop: int) -> int:
    """ISO `meta` is a full box (4 bytes of version/flags); QuickTime's is not."""
    return 0 if data[body + 4:body + 8] == b"hdlr" else min(4, stop - body)


def _free(data: bytes, pos: int, header: int, size: int) -> bytes:
    """A `free` box of `size` bytes with the original size field."""
    return bytes(data[pos:pos + 4]) + b"free" + bytes(data[pos + 8:pos + header]) + bytes(size - header)


def _box_name(kind: bytes, parent: bytes, walk: Walk) -> str:
    if parent == b"ilst" and kind[:2] == b"\x00\x00":
        return f"ilst item {struct.unpack('>I', kind)[0]}"
    return walk.name(kind)

"""GIF: drop the comment, plain-text and application extensions that hold a secret.

Extension data comes in sub-blocks of at most 255 bytes, so a secret may be split by a length byte:
each extension's sub-blocks are also checked joined. Image data and graphic-control extensions are
never touched.
"""

from __future__ import annotations

from .structure import Edit, Malformed, Walk, need

_COMMENT, _PLAIN_TEXT, _APPLICATION = 0xFE, 0x01, 0xFF
_NAMES = {_COMMENT: "comment", _PLAIN_TEXT: "plain text", _APPLICATION: "application"}
_SUB_BLOCKS_PER_PART = 8


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise Malformed("not a GIF")
    end = len(data)
    need(0, 13, end, "GIF header")
    pos = 13 + _color_table(data[10])
    edits: list[Edit] = []
    while True:
        walk.step()
        need(pos, 1, end, "GIF block")
        kind = data[pos]
        if kind == 0x3B:  # trailer
            if pos + 1 < end and walk.holds(pos + 1, end):
                edits.append(Edit(pos + 1, end, b"", "data after the GIF end"))
            return edits
        if kind == 0x21:
            need(pos, 2, end, "GIF extension")
            label = data[pos + 1]
            stop, pieces = _sub_blocks(data, pos + 2, walk, keep=label in _NAMES)
            if label in _NAMES and (walk.holds(pos, stop) or walk.needles.found_in_pieces(pieces)):
                edits.append(Edit(pos, stop, b"", f"GIF {_NAMES[label]} extension"))
            pos = stop
        elif kind == 0x2C:
            need(pos, 10, end, "GIF image descriptor")
            pos += 10 + _color_table(data[pos + 9])
            need(pos, 1, end, "GIF image data")
            pos, _ = _sub_blocks(data, pos + 1, walk, keep=False)
        else:
            raise Malformed("unknown GIF block")


def _color_table(flags: int) -> int:
    return 3 * (2 << (flags & 7)) if flags & 0x80 else 0


def _sub_blocks(data: bytes, pos: int, walk: Walk, keep: bool) -> tuple[int, list[memoryview]]:
    """(position after the terminator, the sub-blocks' data if `keep`). A tight loop: image data
    is most of a GIF, in sub-blocks of up to 255 bytes; a sub-block costs 1/8 of a walk part."""
    view = memoryview(data)
    pieces: list[memoryview] = []
    end = len(data)
    left = walk.parts_left * _SUB_BLOCKS_PER_PART
    while True:
        if pos >= end:
            raise Malformed("GIF sub-blocks run past the end")
        size = data[pos]
        if size == 0:
            walk.parts_left = left // _SUB_BLOCKS_PER_PART
            return pos + 1, pieces
        if keep:
            pieces.append(view[pos + 1:pos + 1 + size])
        pos += 1 + size
        left -= 1
        if left < 0:
            raise Malformed("too many GIF sub-blocks")

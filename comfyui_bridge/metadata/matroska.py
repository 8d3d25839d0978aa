"""Matroska / WebM: turn the tag elements that hold a secret into EBML Void elements, in place.

ComfyUI's SaveWEBM sets `prompt` and every extra_pnginfo key as container metadata
(comfy_extras/nodes_video.py, SaveWEBM.execute: container.metadata[...] = json.dumps(...)), and so
does SaveVideo for the webm / mkv formats (comfy_api/latest/_input_impl/video_types.py). FFmpeg's
Matroska muxer writes them as Segment/Tags/Tag/SimpleTag (TagName upper-cased, TagString = JSON).

A Void element of the same total size replaces each SimpleTag holding a secret (the whole Tag when
all its SimpleTags do; an Info Title, an AttachedFile, a chapter EditionEntry likewise), so no
position moves and SeekHead / Cues stay right. A Void is valid anywhere. When the parent carries a
CRC-32 element (FFmpeg writes one in every level-1 element of .mkv files), it is recomputed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from .structure import Edit, Malformed, Walk, need

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_SEGMENT, _CLUSTER = 0x18538067, 0x1F43B675
_TAGS, _TAG, _SIMPLE_TAG = 0x1254C367, 0x7373, 0x67C8
_INFO, _TITLE = 0x1549A966, 0x7BA9
_ATTACHMENTS, _ATTACHED_FILE = 0x1941A469, 0x61A7
_CHAPTERS, _EDITION = 0x1043A770, 0x45B9
_VOID, _CRC32 = 0xEC, 0xBF
_LEVEL1 = {0x114D9B74, _INFO, 0x1654AE6B, _CHAPTERS, _CLUSTER, 0x1C53BB6B, _ATTACHMENTS, _TAGS, _VOID, _CRC32}
_NAMES = {_SIMPLE_TAG: "SimpleTag", _TAG: "Tag", _TITLE: "Title", _ATTACHED_FILE: "AttachedFile",
          _EDITION: "EditionEntry"}


@dataclass(frozen=True)
class Element:
    ident: int
    start: int       # first byte of the ID
    body: int        # first byte of the data
    end: int         # one past the last byte


def plan(data: bytes, walk: Walk) -> list[Edit]:
    if not data.startswith(EBML_MAGIC):
        raise Malformed("not a Matroska file")
    edits: list[Edit] = []
    for element in _children(data, 0, len(data), walk):
        if element.ident == _SEGMENT:
            for child in _children(data, element.body, element.end, walk):
                if walk.holds(child.start, child.end):
                    edits += _level1(data, child, walk)
    return edits


def _level1(data: bytes, element: Element, walk: Walk) -> list[Edit]:
    """Voids inside one level-1 element, plus its CRC-32 when it has one."""
    if element.ident == _VOID:
        return [Edit(element.body, element.end, bytes(element.end - element.body), "Matroska Void data")]
    if element.ident not in (_TAGS, _INFO, _ATTACHMENTS, _CHAPTERS):
        return []  # media, tracks, cues: a secret there stays and the final scan withholds the file
    children = list(_children(data, element.body, element.end, walk))
    edits: list[Edit] = []
    if element.ident == _TAGS:
        for tag in children:
            if tag.ident == _TAG and walk.holds(tag.start, tag.end):
                edits += _tag_edits(data, tag, walk)
    elif element.ident == _INFO:
        edits = _voids(data, [c for c in children if c.ident == _TITLE and walk.holds(c.start, c.end)], walk)
    elif element.ident == _ATTACHMENTS:
        edits = _voids(data, [c for c in children if c.ident == _ATTACHED_FILE and walk.holds(c.start, c.end)], walk)
    else:
        edits = _voids(data, [c for c in children if c.ident == _EDITION and walk.holds(c.start, c.end)], walk)
    return edits + _crc_fix(data, children, element.end, edits)


def _tag_edits(data: bytes, tag: Element, walk: Walk) -> list[Edit]:
    """Void the SimpleTags of a Tag that hold a secret, or the whole Tag if all of them do."""
    children = list(_children(data, tag.body, tag.end, walk))
    simple = [c for c in children if c.ident == _SIMPLE_TAG]
    holding = [c for c in simple if walk.holds(c.start, c.end)]
    if simple and len(holding) == len(simple):
        return _voids(data, [tag], walk)
    edits = _voids(data, holding, walk)
    return edits + _crc_fix(data, children, tag.end, edits)


def _voids(data: bytes, elements: list[Element], walk: Walk) -> list[Edit]:
    return [Edit(e.start, e.end, _void(e.end - e.start),
                 f"Matroska {_NAMES.get(e.ident, 'element')}{_tag_name(data, e, walk)}") for e in elements]


def _crc_fix(data: bytes, children: list[Element], end: int, edits: list[Edit]) -> list[Edit]:
    """The parent's CRC-32 (its first child, if any) recomputed over the edited data."""
    crc = children[0] if children else None
    if not edits or crc is None or crc.ident != _CRC32 or crc.end - crc.body != 4:
        return []
    return [_crc_edit(data, crc, end, edits)]


def _tag_name(data: bytes, element: Element, walk: Walk) -> str:
    if element.ident != _SIMPLE_TAG:
        return ""
    for child in _children(data, element.body, element.end, walk):
        if child.ident == 0x45A3:  # TagName
            return f" '{walk.name(bytes(data[child.body:child.end]))}'"
    return ""


def _void(size: int) -> bytes:
    """An EBML Void element of exactly `size` bytes (size >= 2)."""
    width = min(8, size - 1)
    payload = size - 1 - width
    if size < 2 or payload >= (1 << (7 * width)) - 1:
        raise Malformed("element too small or too large to void")
    marker = 1 << (7 * width)  # the vint length bit
    return bytes([_VOID]) + (marker | payload).to_bytes(width, "big") + bytes(payload)


def _crc_edit(data: bytes, crc: Element, end: int, voids: list[Edit]) -> Edit:
    """CRC-32 (IEEE, stored little-endian) of everything after the CRC element, voids applied."""
    value, pos = 0, crc.end
    for edit in sorted(voids, key=lambda e: e.start):
        value = zlib.crc32(memoryview(data)[pos:edit.start], value)
        value = zlib.crc32(edit.data, value)
        pos = edit.end
    value = zlib.crc32(memoryview(data)[pos:end], value)
    return Edit(crc.body, crc.end, struct.pack("<I", value & 0xFFFFFFFF))


def _children(data: bytes, start: int, end: int, walk: Walk) -> Iterator[Element]:
    """The elements in data[start:end], in order. An element of unknown size (all ones) runs to
    the parent's end, or for a Cluster up to the next level-1 element."""
    pos = start
    while pos < end:
        walk.step()
        ident, id_len = _vint(data, pos, end, keep_marker=True)
        size, size_len = _vint(data, pos + id_len, end, keep_marker=False)
        body = pos + id_len + size_len
        if size == (1 << (7 * size_len)) - 1:  # unknown size
            stop = _cluster_end(data, body, end, walk) if ident == _CLUSTER else end
        else:
            stop = body + size
            need(body, size, end, "Matroska element")
        yield Element(ident, pos, body, stop)
        pos = stop


def _cluster_end(data: bytes, pos: int, end: int, walk: Walk) -> int:
    while pos < end:
        walk.step()
        ident, id_len = _vint(data, pos, end, keep_marker=True)
        if ident in _LEVEL1:
            return pos
        size, size_len = _vint(data, pos + id_len, end, keep_marker=False)
        if size == (1 << (7 * size_len)) - 1:
            raise Malformed("unknown-size element inside a Cluster")
        pos += id_len + size_len + size
        need(pos, 0, end, "Matroska cluster")
    return end


def _vint(data: bytes, pos: int, end: int, keep_marker: bool) -> tuple[int, int]:
    """(value, length) of the EBML variable-length integer at pos."""
    need(pos, 1, end, "EBML number")
    first = data[pos]
    if first == 0:
        raise Malformed("bad EBML number")
    length = 9 - first.bit_length()
    if keep_marker and length > 4:
        raise Malformed("bad EBML ID")
    need(pos, length, end, "EBML number")
    value = int.from_bytes(data[pos:pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length

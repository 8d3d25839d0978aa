"""FLAC: drop the Vorbis comments that hold a secret; drop or zero other metadata blocks holding one.

ComfyUI's SaveAudio writes FLAC through PyAV with `prompt` and the extra_pnginfo keys as container
metadata (comfy_api/latest/_ui.py, AudioSaveHelper.save_audio); FFmpeg's FLAC muxer puts them in the
VORBIS_COMMENT block. The metadata blocks are rewritten (they may shrink); FLAC has no absolute
offsets (SEEKTABLE offsets count from the first audio frame), so the audio frames need no change.
STREAMINFO, SEEKTABLE and CUESHEET are never touched.
"""

from __future__ import annotations

from . import vorbiscomment
from .structure import Edit, Malformed, Walk, need

MAGIC = b"fLaC"
_PADDING, _APPLICATION, _VORBIS_COMMENT, _PICTURE = 1, 2, 4, 6
_NAMES = {_APPLICATION: "APPLICATION", _PICTURE: "PICTURE"}
_MAX_BLOCKS = 1024


def plan(data: bytes, walk: Walk) -> list[Edit]:
    return plan_at(data, 0, walk)


def plan_at(data: bytes, start: int, walk: Walk) -> list[Edit]:
    """The FLAC stream starting at data[start] (after ID3 tags, if any)."""
    if data[start:start + 4] != MAGIC:
        raise Malformed("not a FLAC stream")
    blocks: list[tuple[int, int, int]] = []  # (type, start, stop)
    pos, end = start + 4, len(data)
    while True:
        walk.step()
        need(pos, 4, end, "FLAC metadata block")
        header = data[pos]
        kind, length = header & 0x7F, int.from_bytes(data[pos + 1:pos + 4], "big")
        if kind == 127 or len(blocks) >= _MAX_BLOCKS:
            raise Malformed("bad FLAC metadata block")
        need(pos + 4, length, end, "FLAC metadata block")
        blocks.append((kind, pos, pos + 4 + length))
        pos += 4 + length
        if header & 0x80:
            break
    if not walk.holds(start, pos):
        return []
    return _rewrite(data, blocks, walk)


def _rewrite(data: bytes, blocks: list[tuple[int, int, int]], walk: Walk) -> list[Edit]:
    """One edit replacing the whole metadata area with the kept (and cleaned) blocks."""
    kept: list[tuple[int, bytes]] = []
    labels: list[str] = []
    for kind, start, stop in blocks:
        body = bytes(data[start + 4:stop])
        if kind == _VORBIS_COMMENT and walk.holds(start, stop):
            result = vorbiscomment.scrub(body, 0, walk, "FLAC")
            if result.body is not None:
                body = result.body + body[result.rest:]
                labels += result.labels
        elif kind == _PADDING and walk.holds(start, stop):
            body = bytes(len(body))
            labels.append("FLAC padding data")
        elif kind in _NAMES and walk.holds(start, stop):
            labels.append(f"FLAC {_NAMES[kind]} block")
            continue
        kept.append((kind, body))
    if not labels:
        return []
    out = bytearray()
    for index, (kind, body) in enumerate(kept):
        if len(body) >= 1 << 24:
            raise Malformed("FLAC metadata block too large")
        last = 0x80 if index == len(kept) - 1 else 0
        out += bytes([last | kind]) + len(body).to_bytes(3, "big") + body
    first, stop = blocks[0][1], blocks[-1][2]
    return [Edit(first, stop, bytes(out), "; ".join(labels))]

"""Vorbis comments (FLAC's VORBIS_COMMENT block, Ogg's OpusTags / Vorbis / Theora comment packets).

ComfyUI's SaveAudio / SaveAudioMP3 / SaveAudioOpus set `prompt` and every extra_pnginfo key as
container metadata through PyAV (comfy_api/latest/_ui.py, AudioSaveHelper.save_audio); FFmpeg's
FLAC and Ogg muxers write them as "prompt={json}" comments.

Layout (little-endian): vendor length, vendor, comment count, then length + "KEY=value" per comment;
whatever follows (Vorbis' framing bit, Opus' optional binary data) is the caller's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .structure import Walk, need


@dataclass
class CommentResult:
    body: bytes | None            # vendor + count + kept comments; None when nothing was removed
    rest: int                     # offset (in the given buffer) of what followed the comment list
    labels: list[str] = field(default_factory=list)


def scrub(buf: bytes, start: int, walk: Walk, where: str) -> CommentResult:
    """Drop every comment of the list at buf[start:] that holds a secret (a vendor string holding
    one becomes empty). Raises Malformed if the list runs past the buffer."""
    end = len(buf)
    need(start, 4, end, "comment vendor")
    vendor_len = struct.unpack_from("<I", buf, start)[0]
    need(start + 4, vendor_len + 4, end, "comment vendor")
    vendor = buf[start + 4:start + 4 + vendor_len]
    pos = start + 4 + vendor_len
    count = struct.unpack_from("<I", buf, pos)[0]
    pos += 4
    need(pos, 4 * count, end, "comment list")  # every comment takes at least its length field
    walk.step(count + 1)
    kept: list[bytes] = []
    labels: list[str] = []
    for _ in range(count):
        length = struct.unpack_from("<I", buf, pos)[0]
        need(pos + 4, length, end, "comment")
        comment = buf[pos + 4:pos + 4 + length]
        pos += 4 + length
        if walk.holds_bytes(comment):
            labels.append(f"{where} comment '{walk.name(bytes(comment).partition(b'=')[0])}'")
        else:
            kept.append(bytes(comment))
    if walk.holds_bytes(vendor):
        labels.append(f"{where} vendor string")
        vendor = b""
    if not labels:
        return CommentResult(None, pos)
    body = struct.pack("<I", len(vendor)) + bytes(vendor) + struct.pack("<I", len(kept))
    body += b"".join(struct.pack("<I", len(c)) + c for c in kept)
    return CommentResult(body, pos, labels)

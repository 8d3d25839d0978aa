"""Which walker reads a file: decided by its first bytes, never by a server's name or type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import flac, gif, id3, isobmff, jpeg, matroska, ogg, png, safetensors, webp
from .structure import Edit, Walk


@dataclass(frozen=True)
class Format:
    name: str
    plan: Callable[[bytes, Walk], list[Edit]]
    # True when a secret can sit where a plain byte scan does not see it (compressed text, text
    # split across pages or sub-blocks, a compressed movie header): the walk must always run.
    may_hide: bool


PNG = Format("PNG", png.plan, may_hide=True)
WEBP = Format("WebP", webp.plan, may_hide=False)
JPEG = Format("JPEG", jpeg.plan, may_hide=False)
GIF = Format("GIF", gif.plan, may_hide=True)
MP4 = Format("MP4", isobmff.plan, may_hide=True)
MATROSKA = Format("Matroska", matroska.plan, may_hide=False)
FLAC = Format("FLAC", flac.plan, may_hide=False)
ID3 = Format("ID3", id3.plan, may_hide=True)
OGG = Format("Ogg", ogg.plan, may_hide=True)
SAFETENSORS = Format("safetensors", safetensors.plan, may_hide=False)


def sniff(data: bytes) -> Format | None:
    """The format of `data` from its magic bytes, or None (then only the byte scan applies)."""
    head = bytes(data[:16])
    if head.startswith(png.SIGNATURE):
        return PNG
    if webp.is_webp(head):
        return WEBP
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head.startswith(matroska.EBML_MAGIC):
        return MATROSKA
    if head.startswith(flac.MAGIC):
        return FLAC
    if head.startswith(id3.MAGIC):
        return ID3
    if head.startswith(ogg.MAGIC):
        return OGG
    if isobmff.is_isobmff(head):
        return MP4
    if safetensors.header_length(data):
        return SAFETENSORS
    return None

"""Keep secrets out of output files: remove them from embedded metadata, then scan for them.

In BizyAir server mode the key travels inside the queued prompt, and ComfyUI's save nodes write
the queued prompt into every output's metadata (PNG text chunks, WebP EXIF, MP4 / WebM tags, FLAC /
MP3 / Opus comments, safetensors metadata). `remove_secrets` removes each metadata entry that holds
a secret and leaves the rest; its verdict (`Cleaned.still_inside`) comes from a final scan of the
cleaned bytes. A file that still holds a secret, or that cannot be read well enough to be sure,
must be withheld by the caller.

    cleaned = remove_secrets(data, mime_type, [api_key])
    if cleaned.clean: deliver cleaned.data (the input object itself when nothing was removed)
    else: withhold the file (cleaned.problem says why)

Cost: one linear scan per secret form (UTF-8, UTF-16, JSON-escaped) over the file, a structure walk
(headers only; bounded by `structure.MAX_PARTS`, decompressed text by `MAX_INFLATED`), one copy of
the file when something is removed, and one more scan of the result. Never raises on file content.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from .formats import Format, sniff
from .scan import Needles, TooManyHits
from .structure import Malformed, Walk, apply_edits

__all__ = ["Cleaned", "find_secret", "remove_secrets"]

# Errors a walker can meet on hostile bytes besides its own Malformed. Anything here means
# "could not be read": the file is withheld if it may hold a secret.
_READ_ERRORS = (Malformed, TooManyHits, ValueError, IndexError, KeyError, struct.error, zlib.error,
                OverflowError, RecursionError, MemoryError)


@dataclass(frozen=True)
class Cleaned:
    data: bytes                   # the file to deliver (the input itself when nothing was removed)
    removed: tuple[str, ...]      # what was removed, e.g. "PNG tEXt chunk 'prompt'"
    still_inside: bool            # True: a secret is, or may be, still inside: withhold the file
    problem: str = ""             # why, when still_inside (English, holds no secret)
    format: str = ""              # the format read ("" when unknown)

    @property
    def clean(self) -> bool:
        """True: `data` holds no secret and may be delivered."""
        return not self.still_inside


def remove_secrets(data: bytes, mime_type: str, secrets: Iterable[str]) -> Cleaned:
    """Remove every metadata entry holding one of `secrets` from `data`; see the module doc.

    The format is read from the bytes (a server's name or type decides nothing); `mime_type` only
    names the file in `problem` when its format is not one this module can edit."""
    needles = Needles(secrets)
    if not needles:
        return Cleaned(data, (), False)
    fmt = sniff(data)
    name = fmt.name if fmt else ""
    try:
        walk = Walk(needles, needles.hits(data))
    except TooManyHits:
        return Cleaned(data, (), True, "the file holds the key too many times to clean", name)
    if fmt is None:
        kind = _safe_type(mime_type)
        return Cleaned(data, (), bool(walk.hits), f"the key is in a {kind} file, a type that cannot be cleaned"
                       if walk.hits else "", name)
    if not walk.hits and not fmt.may_hide:
        return Cleaned(data, (), False, "", name)
    try:
        edits = fmt.plan(data, walk)
        cleaned = apply_edits(data, edits) if edits else data
    except _READ_ERRORS as exc:
        return Cleaned(data, (), True, f"the {name} file could not be read to clean it ({_reason(exc)})", name)
    removed = tuple(e.label for e in edits if e.label)
    if not edits:
        left = bool(walk.hits)
    else:
        left = find_secret(cleaned, needles.words)
    problem = f"the key is still in the {name} file outside the metadata that can be removed" if left else ""
    return Cleaned(cleaned, removed, left, problem, name)


def find_secret(data: bytes, secrets: Iterable[str]) -> bool:
    """True if `data` holds a secret: anywhere as plain bytes, or inside the compressed or split
    text containers its format walker opens. Also True when such a format cannot be read."""
    needles = Needles(secrets)
    if not needles:
        return False
    try:
        walk = Walk(needles, needles.hits(data))
    except TooManyHits:
        return True
    if walk.hits:
        return True
    fmt = sniff(data)
    return fmt is not None and fmt.may_hide and _hides(fmt, data, walk)


def _hides(fmt: Format, data: bytes, walk: Walk) -> bool:
    try:
        return bool(fmt.plan(data, walk))
    except _READ_ERRORS:
        return True


def _safe_type(mime_type: str) -> str:
    kind = (mime_type or "").split(";")[0].strip().lower()
    return kind if kind and len(kind) <= 64 and all(c.isalnum() or c in "/.+-" for c in kind) else "binary"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Malformed) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, TooManyHits):
        return "too many copies of the key"
    return type(exc).__name__

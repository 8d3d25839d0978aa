"""Object keys for published outputs.

Keys are built from our own ids only — the run's prompt id, the node id and a counter — never
from ComfyUI's file names or user text, so two runs cannot collide and nothing a user typed can
steer where an object lands:

    <prefix><yyyy>/<mm>/<dd>/<prompt_id>_<node>_<n>.<ext>     (date in UTC)
"""

from __future__ import annotations

import mimetypes
import re
from datetime import datetime, timezone

from ..media import safe_id   # the same id rule as OutputFile.name, so keys match file names

DEFAULT_PREFIX = "comfyui/"

_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXT_UNSAFE = re.compile(r"[^a-z0-9]+")
_MAX_EXT = 10

# Our own table first: mimetypes' answers vary by platform (jpe, jfif, ...).
_EXT_BY_MIME = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/apng": "png",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/svg+xml": "svg",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/webm": "webm",
    "model/gltf-binary": "glb",
    "application/json": "json",
    "text/plain": "txt",
}


def sanitize_prefix(raw: str | None) -> str:
    """A safe key prefix: no leading '/', no '.'/'..' segments, only [A-Za-z0-9._-] in segments,
    and a trailing '/'. Empty (or None) means the default `comfyui/`; a lone "/" means none."""
    text = (raw or "").strip()
    if not text:
        return DEFAULT_PREFIX
    segments = []
    for part in text.replace("\\", "/").split("/"):
        part = _SEGMENT_UNSAFE.sub("-", part).strip("-")
        if part.strip("."):        # drops "", ".", "..", "..." — no way to climb or hide
            segments.append(part)
    return "".join(s + "/" for s in segments)


def extension_for(mime_type: str, filename: str = "") -> str:
    """Lower-case alphanumeric extension: from our own file name if it has a sane one, else
    from the mime type, else 'bin'."""
    if "." in filename:
        ext = _clean_ext(filename.rsplit(".", 1)[1])
        if ext:
            return ext
    mime = (mime_type or "").split(";", 1)[0].strip().lower()
    if mime in _EXT_BY_MIME:
        return _EXT_BY_MIME[mime]
    guessed = mimetypes.guess_extension(mime) if mime else None
    return _clean_ext(guessed or "") or "bin"


def _clean_ext(raw: str) -> str:
    ext = _EXT_UNSAFE.sub("", raw.lower())
    return ext if 0 < len(ext) <= _MAX_EXT else ""


def object_key(prefix: str, prompt_id: str, node_id: object, n: int, ext: str,
               when: datetime | None = None) -> str:
    """`<prefix><yyyy>/<mm>/<dd>/<prompt_id>_<node>_<n>.<ext>`; `when` defaults to now (UTC).
    `prefix` is used as given once sanitized ("" means no prefix, unlike sanitize_prefix(""))."""
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    ext = _clean_ext(ext) or "bin"
    name = f"{safe_id(prompt_id)}_{safe_id(node_id)}_{int(n)}.{ext}"
    return f"{sanitize_prefix(prefix) if prefix else ''}{when:%Y/%m/%d}/{name}"

"""Object keys for published outputs.

Keys are built from our own ids only — the run's prompt id, the node id and a counter — never
from ComfyUI's file names or user text, so two runs cannot collide and nothing a user typed can
steer where an object lands. Within a run every output has its own key (`media.output_name`
keeps node ids that sanitise alike apart):

    <prefix><yyyy>/<mm>/<dd>/<prompt_id>_<node>_<n>.<ext>     (date in UTC)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..media import ext_for, id_part, safe_type

DEFAULT_PREFIX = "comfyui/"

_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXT_UNSAFE = re.compile(r"[^a-z0-9]+")
_MAX_EXT = 10
# What media.output_name makes: our ids, a counter, an extension. Anything else is rebuilt.
_OWN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\.[a-z0-9]{1,10}")


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
    """Lower-case alphanumeric extension: an allowed media type's own (or our file name's when it
    matches that type), a known harmless one from our file name (`.latent`), else `bin`. Never
    `html`, `svg`, `js`, whatever the name or type says."""
    return ext_for(filename, safe_type(mime_type))


def _clean_ext(raw: str) -> str:
    ext = _EXT_UNSAFE.sub("", raw.lower())
    return ext if 0 < len(ext) <= _MAX_EXT else ""


def is_own_name(name: str) -> bool:
    """True for names of our own making (safe characters, an extension, no `..`)."""
    return bool(_OWN_NAME.fullmatch(name)) and ".." not in name


def key_for_name(prefix: str, name: str, when: datetime | None = None) -> str:
    """`<prefix><yyyy>/<mm>/<dd>/<name>` for one of our own file names (see is_own_name)."""
    if not is_own_name(name):
        raise ValueError("not one of our own file names")
    return f"{_dated(prefix, when)}{name}"


def object_key(prefix: str, prompt_id: str, node_id: object, n: int, ext: str,
               when: datetime | None = None) -> str:
    """`<prefix><yyyy>/<mm>/<dd>/<prompt_id>_<node>_<n>.<ext>`; `when` defaults to now (UTC).
    `prefix` is used as given once sanitized ("" means no prefix, unlike sanitize_prefix(""))."""
    ext = _clean_ext(ext) or "bin"
    return f"{_dated(prefix, when)}{id_part(prompt_id)}_{id_part(node_id)}_{int(n)}.{ext}"


def _dated(prefix: str, when: datetime | None) -> str:
    when = when or datetime.now(UTC)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{sanitize_prefix(prefix) if prefix else ''}{when:%Y/%m/%d}/"

"""File types, our own file names, and server text made safe to show.

What a server says a file is (its extension, its Content-Type) decides nothing on its own: only
raster images, video and audio keep a real media type, from our own table. Everything else is
`application/octet-stream` and is published as an attachment, so no server can make us serve
HTML, SVG or a script from the user's bucket, CDN domain or Dify.
"""

from __future__ import annotations

import hashlib
import re

from .jsonsafe import shown

OCTET_STREAM = "application/octet-stream"

# Extension → (media type, kind): the only types we ever hand on as they are. Video and
# animations come under ComfyUI's `images` key, so the kind follows the type, never the key.
_INLINE: dict[str, tuple[str, str]] = {
    "png": ("image/png", "image"), "apng": ("image/png", "image"), "jpg": ("image/jpeg", "image"),
    "jpeg": ("image/jpeg", "image"), "webp": ("image/webp", "image"), "gif": ("image/gif", "image"),
    "bmp": ("image/bmp", "image"), "tif": ("image/tiff", "image"), "tiff": ("image/tiff", "image"),
    "avif": ("image/avif", "image"),
    "mp4": ("video/mp4", "video"), "m4v": ("video/mp4", "video"), "webm": ("video/webm", "video"),
    "mov": ("video/quicktime", "video"), "mkv": ("video/x-matroska", "video"), "avi": ("video/x-msvideo", "video"),
    "flac": ("audio/flac", "audio"), "mp3": ("audio/mpeg", "audio"), "wav": ("audio/wav", "audio"),
    "ogg": ("audio/ogg", "audio"), "opus": ("audio/opus", "audio"), "m4a": ("audio/mp4", "audio"),
    "aac": ("audio/aac", "audio"),
}
INLINE_TYPES = frozenset(mime for mime, _ in _INLINE.values())
RASTER_IMAGE_TYPES = frozenset(mime for mime, kind in _INLINE.values() if kind == "image")
# Server Content-Types that name an allowed type under another spelling.
_ALIASES = {"image/jpg": "image/jpeg", "image/apng": "image/png", "image/x-png": "image/png",
            "audio/mp3": "audio/mpeg", "audio/x-flac": "audio/flac", "audio/x-wav": "audio/wav",
            "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav", "audio/webm": "video/webm"}
# Other outputs worth a kind and an extension of their own; always octet-stream attachments.
# Deliberately absent: html, htm, xhtml, svg, xml, js, mjs, css, pdf, … (they become .bin).
_OTHER_KINDS = {"latent": "latent", "safetensors": "file", "glb": "model", "gltf": "model", "obj": "model",
                "ply": "model", "stl": "model", "fbx": "model", "usdz": "model", "exr": "file", "npy": "file",
                "npz": "file", "json": "file", "txt": "file"}
_EXT_BY_MIME = {mime: ext for ext, (mime, _) in reversed(list(_INLINE.items()))}
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME_CHARS = 1024   # no file system has longer names; a longer one cannot be a real output


def extension(filename: str) -> str:
    """Lower-case alphanumeric extension of a server-provided name ('' if none)."""
    base = filename[-256:].replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in base:
        return ""
    ext = base.rsplit(".", 1)[1].lower()
    return ext if ext.isascii() and ext.isalnum() and len(ext) <= 12 else ""


def classify(filename: str, content_type: str = "") -> tuple[str, str]:
    """(media type, kind) of an output. The type is from INLINE_TYPES or `application/octet-stream`;
    the extension decides first, the server's Content-Type only when the name has no known one."""
    ext = extension(filename)
    if ext in _INLINE:
        return _INLINE[ext]
    if ext in _OTHER_KINDS:
        return OCTET_STREAM, _OTHER_KINDS[ext]
    mime = safe_type(content_type)
    if mime != OCTET_STREAM and not ext:
        return mime, mime.split("/", 1)[0]
    return OCTET_STREAM, "file"


def safe_type(content_type: str) -> str:
    """`content_type` when it is an allowed raster image, video or audio type, else octet-stream."""
    mime = str(content_type or "")[:200].split(";", 1)[0].strip().lower()
    mime = _ALIASES.get(mime, mime)
    return mime if mime in INLINE_TYPES else OCTET_STREAM


def is_inline_type(mime_type: str) -> bool:
    """True when a file of this type may be served as itself; anything else is an attachment."""
    return mime_type in INLINE_TYPES


def is_raster_image(mime_type: str) -> bool:
    return mime_type in RASTER_IMAGE_TYPES


def ext_for(filename: str, mime_type: str) -> str:
    """Extension of our own name for a file: the server's when it matches an allowed type (or is a
    known harmless kind such as `.latent`), else the type's own, else `bin`."""
    ext = extension(filename)
    if mime_type in INLINE_TYPES:
        return ext if _INLINE.get(ext, ("",))[0] == mime_type else _EXT_BY_MIME[mime_type]
    return ext if ext in _OTHER_KINDS else "bin"


def safe_id(value: object) -> str:
    return _SAFE_ID.sub("_", str(value)[:256]).strip("_")[:64] or "x"


def id_part(value: object) -> str:
    """`value` as a name part, one to one: ids that are already safe stay as they are; any other
    id gets `.` and a hash of the raw id, so `a/b` and `a_b` never share a name (`.` is never
    in a safe id)."""
    raw = str(value)
    part = safe_id(raw)
    if part == raw:
        return part
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{part[:40]}.{digest}"


def output_name(prompt_id: str, node_id: str, index: int, filename: str, mime_type: str,
                websocket: bool = False) -> str:
    """Our own name for an output: `<prompt_id>_<node>_<n>.<ext>` (`_w<n>` for websocket images).
    Never ComfyUI's name: only our ids, a counter and an allowed extension."""
    counter = f"w{int(index)}" if websocket else str(int(index))
    return f"{id_part(prompt_id)}_{id_part(node_id)}_{counter}.{ext_for(filename, mime_type)}"


def is_unsafe_path(filename: str, subfolder: str = "") -> bool:
    """True for names that try to escape a folder (`..`, absolute paths, drive letters, NUL), and
    for names no file system has (longer than MAX_NAME_CHARS)."""
    for part in (filename, subfolder):
        text = str(part or "")
        if len(text) > MAX_NAME_CHARS:
            return True
        text = text.replace("\\", "/")
        if "\x00" in text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
            return True
        if any(seg == ".." for seg in text.split("/")):
            return True
    return not str(filename or "").strip()


# ---- server text in our texts ---------------------------------------------------------------

# Removed from server names and texts before they reach `text`, notes or `markdown`: control and
# format characters (newlines, bidi overrides, zero-width), and the characters markdown needs to
# make a link, an image, HTML or code (`[`, `]`, `<`, `>`, backtick), plus emphasis and escapes.
_DROP: dict[int, str | None] = {c: None for c in range(0x20)}
_DROP.update({c: None for c in range(0x7F, 0xA0)})
_DROP.update({c: None for c in (0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0x2060, 0xFEFF)})
_DROP.update({c: None for c in range(0x202A, 0x202F)})
_DROP.update({c: None for c in range(0x2066, 0x206A)})
_DROP.update({ord(c): None for c in "[]<>`*\\"})
_DROP.update({ord(c): " " for c in "\t\n\r"})
_DROP.update({c: "\ufffd" for c in range(0xD800, 0xE000)})   # lone surrogates cannot be sent as UTF-8


def plain(value: object, limit: int = 200) -> str:
    """Server-supplied text as one plain line for our own texts: control characters, newlines and
    markdown syntax removed, whitespace collapsed, at most `limit` characters (saying how many more
    there were). Linear in `limit`, whatever the size of `value`."""
    head, more = plain_parts(value, limit)
    return f"{head}… ({more} more characters)" if more else head


def plain_parts(value: object, limit: int) -> tuple[str, int]:
    """(plain text of at most `limit` characters, how many characters of `value` it leaves out)."""
    text = value if isinstance(value, str) else shown(value, limit * 4)
    window = text[: limit * 4]
    head = " ".join(window.translate(_DROP).split()).lstrip("#").strip()
    return head[:limit], len(text) - len(window) + max(0, len(head) - limit)

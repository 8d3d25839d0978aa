"""File types and safe names for outputs."""

from __future__ import annotations

import re

# Extension → (mime type, kind). Video and animations come under ComfyUI's `images` key, so
# the kind is decided by the extension (or the /view Content-Type), never by the key.
_TYPES: dict[str, tuple[str, str]] = {
    "png": ("image/png", "image"), "jpg": ("image/jpeg", "image"), "jpeg": ("image/jpeg", "image"),
    "webp": ("image/webp", "image"), "gif": ("image/gif", "image"), "bmp": ("image/bmp", "image"),
    "tif": ("image/tiff", "image"), "tiff": ("image/tiff", "image"), "avif": ("image/avif", "image"),
    "svg": ("image/svg+xml", "image"), "exr": ("image/x-exr", "image"),
    "mp4": ("video/mp4", "video"), "webm": ("video/webm", "video"), "mov": ("video/quicktime", "video"),
    "mkv": ("video/x-matroska", "video"), "avi": ("video/x-msvideo", "video"), "m4v": ("video/mp4", "video"),
    "flac": ("audio/flac", "audio"), "mp3": ("audio/mpeg", "audio"), "wav": ("audio/wav", "audio"),
    "ogg": ("audio/ogg", "audio"), "opus": ("audio/opus", "audio"), "m4a": ("audio/mp4", "audio"),
    "aac": ("audio/aac", "audio"),
    "glb": ("model/gltf-binary", "model"), "gltf": ("model/gltf+json", "model"), "obj": ("model/obj", "model"),
    "latent": ("application/octet-stream", "latent"), "safetensors": ("application/octet-stream", "file"),
    "json": ("application/json", "file"), "txt": ("text/plain", "file"),
}
_EXT_BY_MIME = {mime: ext for ext, (mime, _) in reversed(list(_TYPES.items()))}
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]+")


def extension(filename: str) -> str:
    """Lower-case alphanumeric extension of a server-provided name ('' if none)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in base:
        return ""
    ext = base.rsplit(".", 1)[1].lower()
    return ext if ext.isalnum() and len(ext) <= 12 else ""


def classify(filename: str, content_type: str = "") -> tuple[str, str]:
    """(mime type, kind) from the extension, else from the server's Content-Type."""
    ext = extension(filename)
    if ext in _TYPES:
        return _TYPES[ext]
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and ctype != "application/octet-stream":
        major = ctype.split("/")[0]
        return ctype, major if major in ("image", "video", "audio") else "file"
    return "application/octet-stream", "file"


def ext_for(filename: str, mime_type: str) -> str:
    return extension(filename) or _EXT_BY_MIME.get(mime_type, "bin")


def safe_id(value: str) -> str:
    return _SAFE_ID.sub("_", str(value)).strip("_")[:64] or "x"


def output_name(prompt_id: str, node_id: str, index: int, filename: str, mime_type: str) -> str:
    """Our own name for an output: `<prompt_id>_<node>_<n>.<ext>`. Never ComfyUI's counter name."""
    return f"{safe_id(prompt_id)}_{safe_id(node_id)}_{index}.{ext_for(filename, mime_type)}"


def is_unsafe_path(filename: str, subfolder: str = "") -> bool:
    """True for names that try to escape a folder (`..`, absolute paths, drive letters, NUL)."""
    for part in (filename, subfolder):
        text = str(part or "").replace("\\", "/")
        if "\x00" in text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
            return True
        if any(seg == ".." for seg in text.split("/")):
            return True
    return not str(filename or "").strip()

"""safetensors (SaveLatent): drop the `__metadata__` entries that hold a secret.

ComfyUI's SaveLatent stores `prompt` and every extra_pnginfo key as safetensors metadata
(nodes.py, SaveLatent.save: metadata = {"prompt": json.dumps(prompt), ...}; comfy.utils
.save_torch_file). The file is an 8-byte little-endian header length, a JSON header, then the
tensor bytes (offsets relative to the end of the header). The header is rewritten compactly and
padded with spaces to its old length (valid JSON; the format pads the same way), so nothing moves.
"""

from __future__ import annotations

import json
import struct

from .structure import Edit, Malformed, Walk

_MAX_HEADER = 64 * 1024 * 1024


def header_length(data: bytes) -> int:
    """The JSON header's length if `data` looks like safetensors, else 0."""
    if len(data) < 10:
        return 0
    length = struct.unpack_from("<Q", data, 0)[0]
    return length if 2 <= length <= min(_MAX_HEADER, len(data) - 8) and data[8:9] == b"{" else 0


def plan(data: bytes, walk: Walk) -> list[Edit]:
    length = header_length(data)
    if not length:
        raise Malformed("not a safetensors file")
    if not walk.holds(8, 8 + length):
        return []
    try:
        header = json.loads(bytes(data[8:8 + length]))
    except (ValueError, RecursionError) as exc:
        raise Malformed("unreadable safetensors header") from exc
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        return []
    walk.step(len(metadata))
    dropped = [key for key, value in metadata.items()
               if walk.holds_bytes(str(key).encode("utf-8")) or walk.holds_bytes(str(value).encode("utf-8"))]
    if not dropped:
        return []
    for key in dropped:
        del metadata[key]
    new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(new) > length:
        raise Malformed("cleaned safetensors header does not fit")
    labels = ", ".join(f"'{walk.name(key)}'" for key in dropped)
    return [Edit(8, 8 + length, new + b" " * (length - len(new)), f"safetensors metadata {labels}")]

"""The one place where the tools create Dify messages, and why none can be too big.

Every message a tool yields travels as one line on the plugin's stdout, and Dify's daemon kills the
whole plugin instance (every user's calls) when one line exceeds 5 MiB. `Guarded` wraps the SDK
tool: each `create_*` call bounds what it is given so the message's JSON stays under
MAX_MESSAGE_BYTES, however large or strange the input (a 6 MB text output, a 3 MB server file name,
a lone surrogate that UTF-8 cannot encode, NaN, a number of 5000 digits). Blobs are chunked by the
SDK (8 KiB a line); only their meta is bounded here. Error texts go through `error_text`.

The delivery code builds its own compact texts first (it knows what to cut and says so); this is
the last line, so no future code path can put an unbounded message on the wire.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from comfyui_bridge.jsonsafe import shown

MAX_MESSAGE_BYTES = 64 * 1024
MAX_ERROR_BYTES = 16 * 1024      # the SDK sends an error's text twice (message and traceback)
_BUDGET = MAX_MESSAGE_BYTES - 1024   # room for the message's own fields around the value
_MAX_INT = 2 ** 64
# Shrinking schedule for structures over the budget: (longest string, entries per list or dict).
_SCHEDULE = ((4000, 200), (1000, 50), (300, 20), (80, 5), (20, 2))
_MAX_DEPTH = 20


def encoded_size(value: Any) -> int:
    """Bytes of `value` as JSON with every non-ASCII character escaped: never less than the SDK's
    UTF-8 encoding of the same value."""
    return len(json.dumps(value, ensure_ascii=True, allow_nan=False))


def fit_text(value: Any, budget: int = _BUDGET) -> str:
    """`value` as a string whose JSON encoding fits in `budget` bytes, cut with a note of how many
    characters were left out. Linear in `budget`, not in the size of `value`."""
    text = value if isinstance(value, str) else shown(value, budget)
    head = _clean_str(text[:budget])      # more characters than bytes can never fit
    if len(text) <= budget and (len(head) * 12 <= budget or encoded_size(head) <= budget):
        return head
    keep = max(0, budget - 80)
    while True:
        candidate = f"{head[:keep]}… ({len(text) - keep} more characters cut)"
        size = encoded_size(candidate)
        if size <= budget or keep == 0:
            return candidate
        keep = max(0, min(keep - 1, keep * (budget - 80) // size))


def fit_json(value: Any, budget: int = _BUDGET) -> Any:
    """A JSON-safe copy of `value` whose encoding fits in `budget` bytes: unchanged when it already
    fits, else with strings, lists and dicts cut (each cut says how much was left out). Each pass
    visits at most about `budget` items, whatever the size of `value`."""
    for longest, entries in ((budget, budget // 2), *_SCHEDULE):
        copy = _copy(value, longest, entries, budget // 2)
        if encoded_size(copy) <= budget:
            return copy
    return {"truncated": f"a {type(value).__name__} too large to send was left out"}


def _clean_str(text: str) -> str:
    """`text` encodable as UTF-8: a lone surrogate (which stops the SDK's serialiser) becomes '?'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _scalar(value: Any, longest: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_MAX_INT <= value <= _MAX_INT else f"<a whole number of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = _clean_str(value[:longest])
        return text if len(value) <= longest else f"{text}… ({len(value) - longest} more characters cut)"
    return _clean_str(shown(value, min(longest, 200)))


def _copy(value: Any, longest: int, entries: int, max_nodes: int) -> Any:
    """JSON-safe copy of `value`: strings of at most `longest` characters, at most `entries` per
    list or dict, nesting at most _MAX_DEPTH, at most `max_nodes` values in all (the first ones
    are kept). Iterative: no input can reach the recursion limit."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]   # (source, parent, slot, depth)
    nodes = 0
    while stack:
        source, parent, slot, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            parent[slot] = "… (left out)"
            continue
        if not isinstance(source, (Mapping, list, tuple)):
            parent[slot] = _scalar(source, longest)
            continue
        if depth >= _MAX_DEPTH:
            parent[slot] = "… (nested too deep, left out)"
            continue
        children: list[tuple[Any, Any, Any, int]] = []
        if isinstance(source, Mapping):
            out_dict: dict[str, Any] = {}
            parent[slot] = out_dict
            for count, (key, child) in enumerate(source.items()):
                if count == entries:
                    out_dict["…"] = f"{len(source) - entries} more entries left out"
                    break
                name = _scalar(key if isinstance(key, str) else shown(key, 80), min(longest, 200))
                out_dict[name] = None
                children.append((child, out_dict, name, depth + 1))
        else:
            out_list: list[Any] = [None] * min(len(source), entries)
            parent[slot] = out_list
            children = [(source[i], out_list, i, depth + 1) for i in range(len(out_list))]
            if len(source) > entries:
                out_list.append(f"… {len(source) - entries} more items left out")
        stack.extend(reversed(children))     # the first children are visited (and kept) first
    return root[0]


def error_text(text: Any) -> str:
    """An error message as the tool raises it: bounded and UTF-8 clean."""
    return fit_text(text, MAX_ERROR_BYTES)


class Guarded:
    """The SDK tool, with every message kind bounded (same method names, so the code reads as
    plain SDK calls). Wrapping twice is harmless."""

    def __init__(self, tool: Any):
        self._tool: Any = tool._tool if isinstance(tool, Guarded) else tool

    def create_text_message(self, text: str) -> Any:
        return self._tool.create_text_message(fit_text(text))

    def create_link_message(self, link: str) -> Any:
        return self._tool.create_link_message(fit_text(link, 8192))

    def create_json_message(self, obj: Any) -> Any:
        value = fit_json(obj)
        if not isinstance(value, (dict, list)):
            value = {"value": value}
        return self._tool.create_json_message(value)

    def create_variable_message(self, name: str, value: Any) -> Any:
        return self._tool.create_variable_message(fit_text(name, 200), fit_json(value))

    def create_stream_variable_message(self, name: str, value: str) -> Any:
        return self._tool.create_stream_variable_message(fit_text(name, 200), fit_text(value, 8192))

    def create_blob_message(self, blob: bytes, meta: dict[str, Any] | None = None) -> Any:
        # The SDK repeats `meta` on every 8 KiB chunk line: keep it small.
        return self._tool.create_blob_message(blob, meta=fit_json(meta or {}, 2048))


def guarded(tool: Any) -> Guarded:
    return tool if isinstance(tool, Guarded) else Guarded(tool)

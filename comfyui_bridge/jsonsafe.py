"""JSON from users and servers, parsed with bounds on size and nesting, in linear time.

`json.loads` is C and linear; on input nested deeper than the interpreter's recursion limit it
stops early with RecursionError. Everything else here is iterative, so no input can drive a
recursive walk of ours into the recursion limit or a quadratic scan.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

__all__ = ["JsonTooDeep", "JsonTooLarge", "JsonError", "as_dict", "as_list", "depth_exceeds", "is_utf8", "parse",
           "shown"]


class JsonError(ValueError):
    """Not JSON. `msg`, `lineno`, `colno` as json.JSONDecodeError has them (when known)."""

    def __init__(self, msg: str, lineno: int = 0, colno: int = 0, pos: int = 0):
        super().__init__(msg)
        self.msg, self.lineno, self.colno, self.pos = msg, lineno, colno, pos


class JsonTooLarge(JsonError):
    def __init__(self, size: int, limit: int):
        super().__init__(f"{size} bytes, over the {limit}-byte limit")
        self.size, self.limit = size, limit


class JsonTooDeep(JsonError):
    def __init__(self, limit: int):
        super().__init__(f"nested more than {limit} levels deep")
        self.limit = limit


def parse(raw: str | bytes, *, max_bytes: int, max_depth: int) -> Any:
    """The JSON value in `raw`. Raises JsonTooLarge, JsonTooDeep or JsonError (never anything else)."""
    if len(raw) > max_bytes:
        raise JsonTooLarge(len(raw), max_bytes)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise JsonError(exc.msg, exc.lineno, exc.colno, exc.pos) from None
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    except (ValueError, TypeError) as exc:  # an int of more than 4300 digits, bytes not UTF-8/16/32
        raise JsonError(str(exc)[:200]) from None
    if depth_exceeds(value, max_depth):
        raise JsonTooDeep(max_depth)
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers (dicts, lists, tuples) nest more than `limit` levels. Iterative, and
    each container is visited once."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return False


def shown(value: object, limit: int = 80) -> str:
    """`value` as text for a message that quotes user or server input: at most `limit` characters,
    saying how much was cut. Never the whole of a hostile megabyte."""
    text = value if isinstance(value, str) else _short_repr(value)
    if len(text) <= limit:
        return _utf8(text)
    return f"{_utf8(text[:limit])}… ({len(text) - limit} more characters)"


def is_utf8(text: str) -> bool:
    """False for text holding a lone surrogate (JSON allows `\\ud800`; UTF-8, URLs and Dify do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _utf8(text: str) -> str:
    """`text` with each lone surrogate replaced by `?`: sendable whatever the server wrote."""
    return text if is_utf8(text) else text.encode("utf-8", "replace").decode("utf-8")


_REPR = reprlib.Repr(maxlevel=3, maxdict=6, maxlist=6, maxtuple=6, maxstring=60, maxother=60)


def _short_repr(value: object) -> str:
    try:
        return _REPR.repr(value)
    except (ValueError, RecursionError):   # e.g. an int of more than 4300 digits
        return f"<{type(value).__name__}>"


def as_dict(value: Any) -> dict:
    """`value` when it is a dict, else an empty one: for reading a field of some hostile JSON."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    """`value` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []

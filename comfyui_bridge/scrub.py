"""Make server-provided text safe to show a user.

ComfyUI and BizyAir error texts carry ANSI colour codes, whole `sk-…` API keys and server
paths (tracebacks). Every text that came from a server passes through `scrub` before it
reaches a message, a log line or an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)([^\s,;'\"]{6,})")
_KEY_VALUE = re.compile(r"(?i)\b(token|api[_-]?key|secret[_-]?key|secretkey|password|authorization)(\s*[:=]\s*)"
                        r"(?!bearer\b)([^\s,;'\"]{6,})")
_COS_SIG = re.compile(r"(q-signature=|q-ak=|x-cos-security-token=)[^&\s\"']+")
# Absolute server paths (tracebacks, "Saving image outside /opt/ComfyUI/output").
_PATH = re.compile(r"(?<![\w:/.])(?:/(?:[\w.@+-]+/)+[\w.@+-]*|[A-Za-z]:\\(?:[\w .@+-]+\\)+[\w.@+-]*)")

REDACTED = "[redacted]"


def scrub(text: object, secrets: Iterable[str] = ()) -> str:
    """Strip ANSI codes, redact keys, tokens, signatures, the given secrets and server paths."""
    if text is None:
        return ""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, REDACTED)
    out = _ANSI.sub("", out)
    out = _SK_KEY.sub("sk-" + REDACTED, out)
    out = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, out)
    out = _KEY_VALUE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, out)
    out = _COS_SIG.sub(lambda m: m.group(1) + REDACTED, out)
    out = _PATH.sub(_shorten_path, out)
    return out.strip()


def _shorten_path(match: re.Match) -> str:
    path = match.group(0)
    # Keep URLs' paths and short relative-looking pieces; hide the server's directory layout.
    name = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
    return f"<path>/{name}" if name else "<path>"


def one_line(text: object, limit: int = 300, secrets: Iterable[str] = ()) -> str:
    """Scrubbed, whitespace-collapsed, length-bounded text for a single message line. Only a
    bounded head of `text` is looked at, so a server's megabyte costs no more than a kilobyte."""
    secrets = [s for s in secrets if s]
    raw = "" if text is None else str(text)
    if len(raw) > limit * 4 + 4096:
        raw = _drop_partial_secret(raw[: limit * 4 + 4096], secrets)
    flat = " ".join(scrub(raw, secrets).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _drop_partial_secret(head: str, secrets: list[str]) -> str:
    """A cut may end inside a secret; drop such a tail so no part of a secret stays readable."""
    for secret in secrets:
        for k in range(min(len(secret) - 1, len(head)), 3, -1):
            if head.endswith(secret[:k]):
                return head[:-k]
    return head

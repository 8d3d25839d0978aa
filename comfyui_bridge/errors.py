"""One small error hierarchy. Every error carries a user-facing message (English, and Chinese
where we have one), a stable machine `code`, and technical `detail` for the JSON output.

Messages are always built from scrubbed text: an error's str() may be shown to a user as is.
"""

from __future__ import annotations

from typing import Any

# A message is read by a person (or an agent): a few lines. Anything longer quotes too much of
# some input; cut it here so no caller can turn a hostile megabyte into a megabyte of error.
MAX_MESSAGE_CHARS = 4000


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text`, cut to `limit` characters with a note of how much was cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters cut)"


class BridgeError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, message_zh: str = "", detail: dict[str, Any] | None = None,
                 code: str | None = None):
        message, message_zh = bounded(message), bounded(message_zh)
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.detail = dict(detail or {})
        if code:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def bilingual(self) -> str:
        return f"{self.message}\n{self.message_zh}" if self.message_zh else self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.message_zh:
            out["message_zh"] = self.message_zh
        if self.detail:
            out["detail"] = self.detail
        return out


class InputError(BridgeError):
    """The caller's input is wrong (workflow file, parameter, override). Nothing was queued."""

    code = "bad_input"


class WorkflowFormatError(InputError):
    code = "bad_workflow"


class ConnectionFailed(BridgeError):
    """The ComfyUI server could not be reached or did not answer in time."""

    code = "unreachable"


class AuthRejected(BridgeError):
    code = "auth_rejected"


class NotComfyUI(BridgeError):
    """Something answered, but it is not a ComfyUI API (HTML page, wrong path, other service)."""

    code = "not_comfyui"


class BadResponse(BridgeError):
    """ComfyUI answered with something we cannot read (500 text, non-JSON 200)."""

    code = "bad_response"


class PromptRejected(BridgeError):
    """POST /prompt answered 400: validation failed. `lines` has one readable line per node."""

    code = "prompt_rejected"

    def __init__(self, message: str, *, lines: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.lines = list(lines or [])


class ExecutionFailed(BridgeError):
    """The run started but failed on a node (execution_error) or was interrupted."""

    code = "execution_failed"


class RunTimeout(BridgeError):
    code = "timeout"


class RunLost(BridgeError):
    """The server forgot the run (restart mid-run): no history, no queue entry."""

    code = "run_lost"


class StorageError(BridgeError):
    code = "storage_failed"

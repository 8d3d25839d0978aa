"""ComfyUI's answers, parsed totally into our own small types.

Every function here accepts any JSON value. A shape we cannot use becomes `UnexpectedShape`
(which the client turns into one clear BadResponse naming the server and route), or is dropped
and named in `problems` when the rest of the answer is still worth having — a history entry whose
`messages` hold one malformed item still carries the outputs that finished.

Shapes follow ComfyUI 0.8.0 as captured in the team's protocol notes (`/history/<id>`,
`/queue`, `POST /prompt`, websocket messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .jsonsafe import shown

__all__ = ["HistoryEntry", "QueueView", "UnexpectedShape", "history_entry", "prompt_accepted", "queue_view",
           "system_version"]


class UnexpectedShape(ValueError):
    """The answer is JSON, but not in a form we can use; str() says what was wrong, briefly."""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# ---- /history/<id> -----------------------------------------------------------------------------

@dataclass
class HistoryEntry:
    """One ended prompt, as far as its history entry could be read."""

    status: str                                   # "success" | "error" | "unknown"
    messages: list[tuple[str, dict]] = field(default_factory=list)
    outputs: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # what was unreadable (and dropped)

    def first_failure(self) -> tuple[str, dict] | None:
        """The execution_error / execution_interrupted message, if the run failed."""
        for kind, data in self.messages:
            if kind in ("execution_error", "execution_interrupted"):
                return kind, data
        return None


def history_entry(data: Any, prompt_id: str) -> HistoryEntry | None:
    """The entry of `prompt_id` in a `/history/<id>` answer; None while the prompt is pending,
    running or unknown (ComfyUI answers `{}` then). ComfyUI writes the entry when the prompt has
    ended, so an entry means the run is over, whatever its status says."""
    if not isinstance(data, dict):
        raise UnexpectedShape(f"the answer is {_kind(data)}, not an object")
    entry = data.get(prompt_id)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise UnexpectedShape(f"the entry of our prompt is {_kind(entry)}, not an object")
    problems: list[str] = []
    outputs = _outputs(entry.get("outputs"), problems)
    raw_status = entry.get("status")
    messages: list[tuple[str, dict]] = []
    if isinstance(raw_status, dict):
        messages = _messages(raw_status.get("messages"), problems)
        text = raw_status.get("status_str")
        if text in ("success", "error"):
            status = text
        else:
            if text is not None:
                problems.append(f"'status_str' is {shown(text, 40)!r}")
            status = _status_from(messages)
    elif raw_status is None:
        status = _status_from(messages)   # old servers wrote no status
    else:
        problems.append(f"'status' is {_kind(raw_status)}, not an object")
        status = "unknown"
    return HistoryEntry(status, messages, outputs, problems)


def _status_from(messages: list[tuple[str, dict]]) -> str:
    if any(k in ("execution_error", "execution_interrupted") for k, _ in messages):
        return "error"
    return "success" if any(k == "execution_success" for k, _ in messages) else "unknown"


def _outputs(raw: Any, problems: list[str]) -> dict[str, dict]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"'outputs' is {_kind(raw)}, not an object")
        return {}
    out: dict[str, dict] = {}
    for node_id, node_out in raw.items():
        if isinstance(node_out, dict):
            out[str(node_id)] = node_out
        else:
            problems.append(f"the outputs of node {shown(str(node_id), 40)} are {_kind(node_out)}")
    return out


def _messages(raw: Any, problems: list[str]) -> list[tuple[str, dict]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"'messages' is {_kind(raw)}, not a list")
        return []
    out: list[tuple[str, dict]] = []
    bad = 0
    for item in raw:
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            out.append((item[0], item[1] if isinstance(item[1], dict) else {}))
        else:
            bad += 1
    if bad:
        problems.append(f"{bad} status message(s) in an unknown form were skipped")
    return out


# ---- /queue ------------------------------------------------------------------------------------

@dataclass
class QueueView:
    """Prompt ids in ComfyUI's queue: running, and pending in execution order."""

    running: list[str]
    pending: list[str]

    def state(self, prompt_id: str) -> tuple[str, int]:
        """('running'|'pending'|'absent', 1-based position among pending, 0 if not pending)."""
        if prompt_id in self.running:
            return "running", 0
        for pos, pid in enumerate(self.pending, 1):
            if pid == prompt_id:
                return "pending", pos
        return "absent", 0


def queue_view(data: Any) -> QueueView:
    """`{"queue_running": [[number, prompt_id, prompt, extra, outputs, …], …], "queue_pending": …}`."""
    if not isinstance(data, dict):
        raise UnexpectedShape(f"the answer is {_kind(data)}, not an object")
    running = _queue_items(data.get("queue_running"), "queue_running")
    pending = _queue_items(data.get("queue_pending"), "queue_pending")
    pending.sort(key=lambda item: item[0])
    return QueueView([pid for _, pid in running], [pid for _, pid in pending])


def _queue_items(raw: Any, name: str) -> list[tuple[float, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UnexpectedShape(f"'{name}' is {_kind(raw)}, not a list")
    items = []
    for item in raw:
        if isinstance(item, (list, tuple)) and len(item) > 1 and isinstance(item[1], str):
            number = item[0] if isinstance(item[0], (int, float)) and not isinstance(item[0], bool) else 0
            items.append((float(number), item[1]))
    return items


# ---- POST /prompt ------------------------------------------------------------------------------

def prompt_accepted(data: Any, prompt_id: str) -> dict[str, Any]:
    """The 200 answer to POST /prompt: `{"prompt_id", "number", "node_errors"}`; node_errors is
    always a dict here (ComfyUI lists outputs it skipped as invalid in it)."""
    if not isinstance(data, dict):
        raise UnexpectedShape(f"the answer is {_kind(data)}, not an object")
    pid = data.get("prompt_id")
    if not isinstance(pid, str) or not pid:
        raise UnexpectedShape("it carries no prompt id")
    if pid != prompt_id:
        raise UnexpectedShape(f"it names another prompt id ({shown(pid, 40)})")
    node_errors = data.get("node_errors")
    return {"prompt_id": pid, "number": data.get("number"),
            "node_errors": node_errors if isinstance(node_errors, dict) else {}}


# ---- /system_stats -----------------------------------------------------------------------------

def system_version(data: Any) -> str | None:
    """ComfyUI's version from /system_stats ("" when it does not say); None when the answer does
    not look like ComfyUI's at all."""
    if not isinstance(data, dict) or not isinstance(data.get("system"), dict):
        return None
    version = data["system"].get("comfyui_version")
    return shown(version, 40) if isinstance(version, str) else ""

"""From a history entry to downloaded files.

Every list of `{filename, subfolder, type}` dicts under an output node counts as files,
whatever its key (`images`, `gifs`, `audio`, `videos`, `latents`, 3D, custom nodes' keys).
`text` lists are text outputs. Temp previews are included: BizyAir graphs often end in
PreviewImage only.
"""

from __future__ import annotations

from typing import Any

from .budget import OutputBudget
from .client import ComfyClient
from .deadline import Deadline
from .errors import BridgeError
from .jsonsafe import is_utf8
from .media import classify, is_unsafe_path, output_name
from .models import OutputFile, OutputRef


def _node_order(node_id: str) -> tuple:
    parts = node_id[:256].replace(":", ".").split(".")
    return tuple((0, int(p), "") if p.isdigit() and len(p) < 20 else (1, 0, p) for p in parts)


def _name(value: Any) -> str | None:
    """A name field of a history item: text (numbers as text), or None for any other shape."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def collect_refs(outputs: Any) -> tuple[list[OutputRef], list[str]]:
    """(file refs, texts) of a history `outputs` dict, de-duplicated, in node order. Any other
    shape (a list, items that are not dicts, names that are not text) is skipped, never raised."""
    refs: list[OutputRef] = []
    texts: list[str] = []
    if not isinstance(outputs, dict):
        return refs, texts
    seen: set[tuple[str, str, str]] = set()
    for node_id in sorted(outputs, key=lambda n: _node_order(str(n))):
        node_out = outputs[node_id]
        if not isinstance(node_out, dict):
            continue
        animated = node_out.get("animated")
        if not isinstance(animated, list):
            animated = []
        for key, items in node_out.items():
            if not isinstance(items, list):
                continue
            if key == "text":
                texts.extend(t for t in map(_name, items) if t is not None)
                continue
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                filename = _name(item.get("filename"))
                if not filename:
                    continue
                ref = OutputRef(node_id=str(node_id), filename=filename,
                                subfolder=_name(item.get("subfolder")) or "", type=_name(item.get("type")) or "output",
                                listed_under=str(key), animated=index < len(animated) and animated[index] is True)
                if ref.identity not in seen:
                    seen.add(ref.identity)
                    refs.append(ref)
    return refs, texts


def download(client: ComfyClient, refs: list[OutputRef], prompt_id: str, deadline: Deadline,
             budget: OutputBudget) -> tuple[list[OutputFile], list[tuple[OutputRef, str]]]:
    """Download every ref within `deadline` and the run's output `budget`. Returns (files,
    [(ref, reason) for the ones that failed]). One failed file never loses the others."""
    files: list[OutputFile] = []
    failed: list[tuple[OutputRef, str]] = []
    counters: dict[str, int] = {}
    for ref in refs:
        if is_unsafe_path(ref.filename, ref.subfolder):
            failed.append((ref, "refused: the server named it with an unsafe path"))
            continue
        if not all(is_utf8(part) for part in (ref.filename, ref.subfolder, ref.type)):
            failed.append((ref, "refused: the server named it with text that is not valid UTF-8, so it cannot be "
                                "asked for by name"))
            continue
        if deadline.expired():
            failed.append((ref, "not downloaded: the time limit was reached"))
            continue
        if budget.left <= 0:
            failed.append((ref, f"not downloaded: the run's outputs already fill the {_mb(budget.limit)} limit"))
            continue
        try:
            data, ctype = client.view(ref, max_bytes=budget.left, deadline=deadline)
        except BridgeError as exc:
            if exc.code == "too_large":
                failed.append((ref, f"not downloaded: it does not fit in the run's {_mb(budget.limit)} output "
                                    f"limit ({_mb(budget.left)} left)"))
            else:
                failed.append((ref, exc.message))
            continue
        budget.take(len(data))
        files.append(make_file(ref, data, ctype, prompt_id, counters))
    return files, failed


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def make_file(ref: OutputRef, data: bytes, content_type: str, prompt_id: str,
              counters: dict[str, int]) -> OutputFile:
    """The downloaded file under our own name (see media.output_name): unique per output of a run,
    also for node ids that sanitise alike (`a/b`, `a_b`) and for websocket images of a node that
    also saved files."""
    mime, kind = classify(ref.filename, content_type)
    websocket = ref.type == "websocket"
    slot = ("w:" if websocket else "f:") + ref.node_id
    counters[slot] = counters.get(slot, 0) + 1
    name = output_name(prompt_id, ref.node_id, counters[slot], ref.filename, mime, websocket=websocket)
    return OutputFile(ref=ref, data=data, mime_type=mime, kind=kind, name=name)

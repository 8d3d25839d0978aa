"""Turn ComfyUI's 400 answer to POST /prompt into one readable line per failing node."""

from __future__ import annotations

from typing import Any

from .scrub import one_line
from .jsonsafe import as_dict

MAX_LINES = 20   # one per failing input; a hostile answer may list thousands


def describe_rejection(payload: Any, graph: dict | None = None) -> tuple[str, list[str]]:
    """(message, lines) for a /prompt 400 body. Lines look like
    'node 2 (SaveImage "Save Image"): required input "images" is missing'."""
    graph = graph if isinstance(graph, dict) else {}
    lines: list[str] = []
    node_errors = payload.get("node_errors") if isinstance(payload, dict) else None
    total = 0
    for node_id, err in (node_errors.items() if isinstance(node_errors, dict) else ()):
        if not isinstance(err, dict) or not isinstance(err.get("errors"), list):
            continue
        where = _node_label(str(node_id), err.get("class_type"), graph)
        for item in err["errors"]:
            if isinstance(item, dict):
                total += 1
                if len(lines) < MAX_LINES:
                    lines.append(f"{where}: {_explain(item)}")
    if total > len(lines):
        lines.append(f"… and {total - len(lines)} more problem(s)")
    error = payload.get("error") if isinstance(payload, dict) else None
    if not lines and isinstance(error, dict):
        lines.append(_explain_top(error, graph))
    if not lines:
        lines.append("ComfyUI rejected the workflow without saying why.")
    message = "ComfyUI rejected the workflow:\n" + "\n".join(f"- {line}" for line in lines)
    return message, lines


def _node_label(node_id: str, class_type: Any, graph: dict) -> str:
    node = graph.get(node_id)
    cls = class_type or (node.get("class_type") if isinstance(node, dict) else None) or "?"
    title = ""
    if isinstance(node, dict) and isinstance(node.get("_meta"), dict):
        title = node["_meta"].get("title") or ""
    cls, title = one_line(cls, 80), one_line(title, 60)
    return f"node {one_line(node_id, 40)} ({cls}" + (f' "{title}")' if title and title != cls else ")")


def _explain(item: dict) -> str:
    kind = item.get("type", "")
    details = one_line(item.get("details", ""), 240)
    extra = as_dict(item.get("extra_info"))
    name = one_line(extra.get("input_name") or details.split(",")[0].split(":")[0].strip(), 80)
    if kind == "required_input_missing":
        return f'required input "{name}" is missing'
    if kind == "value_smaller_than_min" or kind == "value_bigger_than_max":
        return f'input "{name}": {one_line(item.get("message", ""), 120)}'
    if kind == "value_not_in_list":
        return f"input {details}"[:300] + " — pick a value the server offers (model files must exist on the server)"
    if kind == "invalid_input_type":
        return f'input "{name}" has the wrong type: {one_line(item.get("message", ""), 120)}'
    if kind == "return_type_mismatch":
        return f"link type mismatch on {details}"
    if kind == "exception_during_validation":
        exc = one_line(extra.get("exception_type", ""), 80)
        if exc == "KeyError":
            return f"links to node {details}, which is not in the workflow"
        if exc == "IndexError":
            return "links to an output index the source node does not have"
        return f"validation raised {exc}: {details}"
    if kind == "custom_validation_failed":
        return details or one_line(item.get("message", ""), 200)
    msg = one_line(item.get("message", ""), 160)
    return f"{msg} ({details})" if details else msg


def _explain_top(error: dict, graph: dict) -> str:
    kind = one_line(error.get("type", ""), 80)
    if kind == "prompt_no_outputs":
        return ("the workflow has no output node (SaveImage, PreviewImage, SaveVideo, SaveAudio…); "
                "add one so there is something to return")
    if kind == "invalid_prompt":
        return one_line(error.get("message", ""), 200) + (
            " Install the custom node on the server or remove it from the workflow."
            if "does not exist" in str(error.get("message", "")) else "")
    if kind == "no_prompt":
        return "the request carried no workflow"
    return one_line(error.get("message") or kind, 200)

"""Reading a workflow file into an API-format graph, and a small façade to look things up in it.

API format is what `POST /prompt` takes: `{"<id>": {"class_type": ..., "inputs": {...}, "_meta": {"title": ...}}}`
where an input is either a literal or a link `["<source id>", <output slot>]`. UI-format files (what
"Save" writes: `nodes` + `links`) are converted by `uiformat.py` when that is provably right.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import jsonsafe
from .errors import InputError, WorkflowFormatError
from .formats import EXPORT_STEPS, EXPORT_STEPS_ZH, id_sort_key
from .uiformat import convert_ui_workflow

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_SPEC_CHARS = 300   # a node reference: id, title or class, plus ".input"

# ----------------------------------------------------------------------------------------------
# Loading

@dataclass
class LoadedWorkflow:
    graph: dict[str, Any]
    format: str                      # "api" | "ui"
    notes: list[str] = field(default_factory=list)   # what a conversion did (muted nodes removed, ...)


def load_workflow(raw: bytes | str | dict, nodeinfo=None) -> dict:
    """The API-format graph in `raw` (file bytes, text, or parsed JSON). Raises WorkflowFormatError."""
    return parse_workflow(raw, nodeinfo).graph


def parse_workflow(raw: bytes | str | dict, nodeinfo=None) -> LoadedWorkflow:
    """Like load_workflow, also telling which format the file was in and what a conversion did."""
    data = raw if isinstance(raw, dict) else _parse_json(_as_text(raw))
    if isinstance(raw, dict):
        _check_depth_of_object(raw)
    return _from_object(data, nodeinfo)


def _as_text(raw: bytes | str) -> str:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        if len(raw) > MAX_BYTES:
            raise _too_big(len(raw))
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise WorkflowFormatError(
                f"The workflow file is not UTF-8 text (byte {exc.start} cannot be decoded). A ComfyUI "
                "workflow is a .json file; did you upload an image or another file by mistake?",
                message_zh="工作流文件不是 UTF-8 文本。"
                           "ComfyUI 工作流应为 .json 文件，请确认没有误传图片或其他文件。") from None
    if not isinstance(raw, str):
        raise WorkflowFormatError(f"The workflow must be JSON text or a file, not {type(raw).__name__}.",
                                  message_zh="工作流必须是 JSON 文本或文件。")
    if len(raw) > MAX_BYTES:   # characters ≥ bytes/4; a cheap first bound before encoding
        raise _too_big(len(raw))
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _too_big(len(raw.encode("utf-8", "surrogatepass")))
    return raw.lstrip("\ufeff")


def _too_big(size: int) -> WorkflowFormatError:
    return WorkflowFormatError(
        f"The workflow is too large ({size // 1024} KB; the limit is {MAX_BYTES // (1024 * 1024)} MB). "
        "A workflow file is normally a few hundred KB at most; check that this is the right file "
        "(images embedded as base64 make files this big).",
        message_zh=f"工作流文件过大（{size // 1024} KB，上限 {MAX_BYTES // (1024 * 1024)} MB），请确认文件是否正确。")


def _too_deep() -> WorkflowFormatError:
    return WorkflowFormatError(
        f"The workflow JSON is nested more than {MAX_DEPTH} levels deep. ComfyUI workflows are shallow "
        "(about 5 levels); this file is not a workflow.",
        message_zh=f"工作流 JSON 嵌套超过 {MAX_DEPTH} 层，这不是 ComfyUI 工作流文件。")


def _check_depth_of_object(obj: Any) -> None:
    if jsonsafe.depth_exceeds(obj, MAX_DEPTH):
        raise _too_deep()


def _parse_json(text: str) -> Any:
    if not text.strip():
        raise WorkflowFormatError(
            "The workflow is empty. Paste or upload the JSON of a ComfyUI workflow. " + EXPORT_STEPS,
            message_zh="工作流为空，请粘贴或上传 ComfyUI 工作流的 JSON。" + EXPORT_STEPS_ZH)
    try:
        return jsonsafe.parse(text, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH)
    except jsonsafe.JsonTooDeep:
        raise _too_deep() from None
    except jsonsafe.JsonTooLarge as exc:
        raise _too_big(exc.size) from None
    except jsonsafe.JsonError as exc:
        if not exc.lineno:   # e.g. an integer with more than 4300 digits
            raise WorkflowFormatError(f"The workflow JSON cannot be read: {jsonsafe.shown(exc.msg, 120)}.",
                                      message_zh="无法读取工作流 JSON。") from None
        hint = _json_hint(text, exc)
        raise WorkflowFormatError(
            f"The workflow is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.{hint}",
            message_zh=f"工作流不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列出错。",
            detail={"line": exc.lineno, "column": exc.colno}) from None


def _json_hint(text: str, exc: jsonsafe.JsonError) -> str:
    near = text[max(0, exc.pos - 1):exc.pos + 1]
    if "'" in near or exc.msg.startswith("Expecting property name enclosed in double quotes") and "'" in text[:200]:
        return " It looks like single quotes are used; JSON needs double quotes (a Python dict printout is not JSON)."
    if exc.msg.startswith("Expecting property name") or exc.msg.startswith("Expecting value"):
        before = text[:exc.pos].rstrip()
        if before.endswith(","):
            return " There is a trailing comma before a closing bracket; remove it."
    if exc.msg.startswith("Extra data"):
        return " There is text after the end of the JSON object; paste exactly one workflow."
    return ""


def _from_object(data: Any, nodeinfo) -> LoadedWorkflow:
    if isinstance(data, list):
        raise WorkflowFormatError(
            "The workflow is a JSON list, but a ComfyUI workflow is a JSON object "
            "({\"<node id>\": {\"class_type\": ..., \"inputs\": {...}}, ...}). " + EXPORT_STEPS,
            message_zh="工作流是 JSON 数组，但 ComfyUI 工作流应为 JSON 对象。" + EXPORT_STEPS_ZH)
    if not isinstance(data, dict):
        raise WorkflowFormatError(
            f"The workflow is a JSON {type(data).__name__}, not an object. " + EXPORT_STEPS,
            message_zh="工作流不是 JSON 对象。" + EXPORT_STEPS_ZH)
    if not data:
        raise WorkflowFormatError("The workflow has no nodes ({}). " + EXPORT_STEPS,
                                  message_zh="工作流没有任何节点。" + EXPORT_STEPS_ZH)
    data = _unwrap(data)
    if is_ui_format(data):
        graph, notes = convert_ui_workflow(data, nodeinfo)
        return LoadedWorkflow(graph, "ui", notes)
    _check_api_graph(data)
    return LoadedWorkflow(data, "api")


_WRAPPERS = (("prompt",), ("workflow",), ("workflow_json",), ("input", "workflow"), ("input", "prompt"),
             ("input", "workflow_json"))


def _unwrap(data: dict) -> dict:
    """Accept the bodies people paste: `{"prompt": {...}}` (a POST /prompt body), `{"workflow": {...}}`,
    runpod's `{"input": {"workflow": {...}}}` and `{"input": {"workflow_json": ...}}` / `{"workflow_json": ...}`
    (Dify's ComfyUI tool parameter), where the workflow may also be a JSON string."""
    if _looks_like_graph(data) or is_ui_format(data):
        return data
    for path in _WRAPPERS:
        inner: Any = data
        for key in path:
            inner = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(inner, str) and inner.lstrip()[:1] == "{":
            try:
                inner = _parse_json(inner)      # bounded: it is part of a file already within MAX_BYTES
            except WorkflowFormatError:
                continue
        if isinstance(inner, dict) and inner and (_looks_like_graph(inner) or is_ui_format(inner)):
            return inner
    return data


def _looks_like_graph(data: dict) -> bool:
    return bool(data) and all(isinstance(v, dict) and "class_type" in v for v in data.values())


def is_ui_format(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "class_type" not in data


def detect_format(data: Any) -> str:
    """"ui", "api", or "unknown" for an already-parsed JSON value (wrappers are looked through)."""
    if not isinstance(data, dict) or not data:
        return "unknown"
    data = _unwrap(data)
    if is_ui_format(data):
        return "ui"
    return "api" if _looks_like_graph(data) else "unknown"


def _check_api_graph(graph: dict) -> None:
    bad_nodes = [k for k, v in graph.items() if not isinstance(v, dict)]
    if bad_nodes:
        raise WorkflowFormatError(
            f"This is not an API-format ComfyUI workflow: the entries {_few(bad_nodes)} are not node "
            "objects. " + EXPORT_STEPS,
            message_zh=f"这不是 API 格式的 ComfyUI 工作流：{_few(bad_nodes)} 不是节点对象。" + EXPORT_STEPS_ZH)
    no_class = [k for k, v in graph.items() if not isinstance(v.get("class_type"), str) or not v["class_type"].strip()]
    no_inputs = [k for k, v in graph.items() if k not in no_class and not isinstance(v.get("inputs", None), dict)]
    if no_class or no_inputs:
        parts = []
        if no_class:
            parts.append(f"node(s) {_few(no_class)} have no class_type")
        if no_inputs:
            parts.append(f"node(s) {_few(no_inputs)} have no \"inputs\" object")
        raise WorkflowFormatError(
            "This is not an API-format ComfyUI workflow: " + "; ".join(parts) + ". " + EXPORT_STEPS,
            message_zh="这不是 API 格式的 ComfyUI 工作流（缺少 class_type 或 inputs）。" + EXPORT_STEPS_ZH)
    for node_id, node in graph.items():
        for name, value in node["inputs"].items():
            if Workflow.is_link(value) and str(value[0]) not in graph:
                raise WorkflowFormatError(
                    f"Node {node_id} ({node['class_type']}) input \"{name}\" is connected to node "
                    f"{value[0]}, which is not in the workflow. Re-export the workflow from ComfyUI.",
                    message_zh=f"节点 {node_id} 的输入「{name}」连接到不存在的节点 {value[0]}，"
                               "请从 ComfyUI 重新导出工作流。")


def _few(items: list, n: int = 5) -> str:
    listed = ", ".join(jsonsafe.shown(str(i), 60) for i in items[:n])
    return listed + (f" and {len(items) - n} more" if len(items) > n else "")


# ----------------------------------------------------------------------------------------------
# The façade

__all__ = ["EXPORT_STEPS", "EXPORT_STEPS_ZH", "LoadedWorkflow", "Workflow", "detect_format", "id_sort_key",
           "is_ui_format", "load_workflow", "parse_workflow"]

class Workflow:
    """Lookups and edits on an API-format graph (edits happen in place on `graph`)."""

    def __init__(self, graph: dict[str, Any]):
        self.graph = graph

    # -- nodes --
    def ids(self) -> list[str]:
        return sorted(self.graph, key=id_sort_key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.graph

    def node(self, node_id: str) -> dict:
        try:
            return self.graph[node_id]
        except KeyError:
            raise InputError(f"There is no node {node_id} in the workflow.",
                             message_zh=f"工作流中没有节点 {node_id}。") from None

    def class_of(self, node_id: str) -> str:
        return self.node(node_id).get("class_type", "")

    def title_of(self, node_id: str) -> str:
        meta = self.node(node_id).get("_meta")
        return str(meta.get("title", "")) if isinstance(meta, dict) else ""

    def inputs(self, node_id: str) -> dict:
        return self.node(node_id).setdefault("inputs", {})

    def by_class(self, class_type: str) -> list[str]:
        return [i for i in self.ids() if self.graph[i].get("class_type") == class_type]

    def by_title(self, title: str) -> list[str]:
        want = _norm_title(title)
        return [i for i in self.ids() if want and _norm_title(self.title_of(i)) == want]

    def describe(self, node_id: str) -> str:
        """`id (class) "title"`, the way every message names a node."""
        title = self.title_of(node_id)
        shown = jsonsafe.shown
        return (f'{shown(node_id, 40)} ({shown(self.class_of(node_id), 80)})'
                + (f' "{shown(title, 60)}"' if title else ""))

    # -- inputs --
    def get(self, node_id: str, input_name: str, default: Any = None) -> Any:
        return self.node(node_id).get("inputs", {}).get(input_name, default)

    def set(self, node_id: str, input_name: str, value: Any) -> None:
        self.inputs(node_id)[input_name] = value

    @staticmethod
    def is_link(value: Any) -> bool:
        """`["<node id>", <slot>]` (ids may be ints in hand-written files)."""
        return (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], (str, int))
                and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))

    def links_to(self, node_id: str) -> dict[str, tuple[str, int]]:
        """The inputs of `node_id` that are links: {input name: (source id, output slot)}."""
        return {name: (str(v[0]), int(v[1])) for name, v in self.node(node_id).get("inputs", {}).items()
                if self.is_link(v)}

    def consumers(self, node_id: str) -> list[tuple[str, str, int]]:
        """Who reads the outputs of `node_id`: [(consumer id, input name, output slot)]."""
        out = []
        for cid in self.ids():
            for name, (src, slot) in self.links_to(cid).items():
                if src == str(node_id):
                    out.append((cid, name, slot))
        return out

    # -- specs --
    def resolve(self, spec: str) -> tuple[str, str | None]:
        """Find the node (and input) a user means by "<id>", "<id>.<input>", "<title>",
        "<title>.<input>", "<class_type>" or "<class_type>.<input>" (titles case-insensitive; a
        class only when exactly one node has it; "KSampler" also matches BizyAir_KSampler). Raises InputError
        when nothing or several match."""
        text = str(spec).strip()
        if not text:
            raise InputError("Empty node reference.", message_zh="节点引用为空。")
        if len(text) > MAX_SPEC_CHARS:
            raise InputError(f"The node reference \"{jsonsafe.shown(text, 60)}\" is too long "
                             f"(at most {MAX_SPEC_CHARS} characters). Use the node id, e.g. \"6\" or \"6.text\".",
                             message_zh=f"节点引用过长（最多 {MAX_SPEC_CHARS} 个字符），"
                                        "请使用节点 ID，例如 \"6\" 或 \"6.text\"。")
        whole = self._find_node(text)
        if whole:
            return self._one(whole, text), None
        # Split at a dot (rightmost first: titles may contain dots, input names do not).
        for pos in [m.start() for m in re.finditer(r"\.", text)][::-1]:
            head, tail = text[:pos].strip(), text[pos + 1:].strip()
            if not head or not tail:
                continue
            found = self._find_node(head)
            if found:
                return self._one(found, head), tail
        raise InputError(
            f"No node matches \"{text}\". Use a node id (e.g. \"6\" or \"6.text\"), a node title as shown "
            f"in ComfyUI, or a class name used once. Nodes: {self._catalogue()}.",
            message_zh=f"没有与「{text}」匹配的节点。"
                       "请使用节点 ID（如 \"6\" 或 \"6.text\"）、节点标题或只出现一次的类名。",
            detail={"spec": text})

    def _find_node(self, ref: str) -> list[str]:
        if ref in self.graph:
            return [ref]
        by_title = self.by_title(ref)
        if by_title:
            return by_title
        # "KSampler" also finds BizyAir_KSampler: BizyAir graphs mirror the native class names.
        return self.by_class(ref) or self.by_class(f"BizyAir_{ref}")

    def _one(self, found: list[str], ref: str) -> str:
        if len(found) == 1:
            return found[0]
        listed = "; ".join(self.describe(i) for i in found[:8])
        raise InputError(
            f"\"{ref}\" matches {len(found)} nodes: {listed}. Use the node id instead (e.g. \"{found[0]}\").",
            message_zh=f"「{ref}」匹配到 {len(found)} 个节点，请改用节点 ID（如 \"{found[0]}\"）。",
            detail={"spec": ref, "candidates": found})

    def _catalogue(self, limit: int = 12) -> str:
        ids = self.ids()
        shown = "; ".join(self.describe(i) for i in ids[:limit])
        return shown + (f"; … {len(ids) - limit} more" if len(ids) > limit else "")


def _norm_title(title: str) -> str:
    return " ".join(str(title).split()).casefold()

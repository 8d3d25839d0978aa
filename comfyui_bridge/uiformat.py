"""UI-format workflow (what ComfyUI's "Save" writes: `nodes` + `links`) → API format.

A UI file stores each node's widget values as a bare list (`widgets_values`), in the order the
frontend created the widgets, including widgets the API never sees (the "control_after_generate"
combo after a seed, LoadImage's upload button). Mapping that list onto input names needs the node
definitions, and getting it wrong silently runs a different workflow. So this converter only
returns a graph when every value provably lands on the right input: the value count must match the
definition's widget layout exactly and every value must have the type its input expects (combo
values must be one of the choices, control slots one of fixed/increment/decrement/randomize).
Anything else — unknown classes, subgraphs, group nodes, layouts that fit more than one way —
is refused with the steps to export the API format instead.

What it does handle, as the ComfyUI frontend does when it queues a prompt:
Reroute nodes are followed, muted nodes (mode 2) are dropped, bypassed nodes (mode 4) pass their
matching-type input through, PrimitiveNode values are written into the inputs they feed,
Note/MarkdownNote are dropped, and `_meta.title` is the node's title.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import WorkflowFormatError
from .formats import EXPORT_STEPS, EXPORT_STEPS_ZH, id_sort_key
from .jsonsafe import as_dict
from .nodeinfo import COMBO, InputSpec, NodeDef, NodeInfo

MUTED, BYPASSED = 2, 4
VIRTUAL = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}
DROPPED = {"Note", "MarkdownNote"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
UPLOAD_BUTTON_VALUES = {"image", None, ""}


class Refused(Exception):
    """Internal: the conversion cannot be proven right; the message says why."""


@dataclass
class _Link:
    id: int
    origin: str
    origin_slot: int
    target: str
    type: str


def convert_ui_workflow(ui: dict, nodeinfo: NodeInfo | None = None) -> tuple[dict, list[str]]:
    """(API graph, notes). Raises WorkflowFormatError (with export steps) when it cannot be sure."""
    try:
        return _Converter(ui, nodeinfo or NodeInfo()).run()
    except Refused as exc:
        raise WorkflowFormatError(
            "This workflow is in ComfyUI's UI format (the file \"Save\" writes), not the API format, and "
            f"it cannot be converted safely: {exc} " + EXPORT_STEPS,
            message_zh="该工作流是 ComfyUI 的 UI 格式（“保存”得到的文件），不是 API 格式，且无法可靠转换：" + str(exc)
            + " " + EXPORT_STEPS_ZH,
            detail={"format": "ui", "reason": str(exc)}) from None


class _Converter:
    def __init__(self, ui: dict, nodeinfo: NodeInfo):
        self.ui = ui
        self.info = nodeinfo
        self.nodes: dict[str, dict] = {}
        self.links: dict[int, _Link] = {}
        self.notes: list[str] = []
        self.inlined: list[str] = []

    # -- top level --
    def run(self) -> tuple[dict, list[str]]:
        self._refuse_unsupported_structures()
        self._read_nodes()
        self._read_links()
        defs = self._definitions()
        graph: dict[str, dict] = {}
        for nid in sorted(self.nodes, key=id_sort_key):
            node = self.nodes[nid]
            if node["type"] in VIRTUAL or _mode(node) in (MUTED, BYPASSED):
                continue
            d = defs[node["type"]]
            inputs = self._inputs(nid, node, d)
            title = node.get("title") or d.display_name or node["type"]
            graph[nid] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": str(title)}}
        if not graph:
            raise Refused("no runnable node is left after removing notes, reroutes, muted and bypassed nodes.")
        self._summarise(graph)
        return graph, self.notes

    def _refuse_unsupported_structures(self) -> None:
        defs = self.ui.get("definitions")
        if isinstance(defs, dict) and defs.get("subgraphs"):
            raise Refused("it contains subgraphs, which only the ComfyUI frontend can flatten.")
        extra = self.ui.get("extra")
        if isinstance(extra, dict) and extra.get("groupNodes"):
            raise Refused("it contains group nodes, which only the ComfyUI frontend can expand.")

    def _read_nodes(self) -> None:
        for node in self.ui.get("nodes") or []:
            if not isinstance(node, dict) or "id" not in node or not isinstance(node.get("type"), str):
                raise Refused("a node entry has no id or type.")
            nid = str(node["id"])
            if nid in self.nodes:
                raise Refused(f"node id {nid} appears twice.")
            t = node["type"]
            if t.startswith("workflow>") or t.startswith("workflow/"):
                raise Refused(f"node {nid} is a group node ({t}), which only the ComfyUI frontend can expand.")
            if _looks_like_uuid(t):
                raise Refused(f"node {nid} is a subgraph ({t}), which only the ComfyUI frontend can flatten.")
            self.nodes[nid] = node
        if not self.nodes:
            raise Refused("it has no nodes.")

    def _read_links(self) -> None:
        for raw in self.ui.get("links") or []:
            if raw is None:
                continue
            try:
                if isinstance(raw, dict):
                    int(raw["target_slot"])   # read to refuse a malformed link; the input names the slot
                    link = _Link(int(raw["id"]), str(raw["origin_id"]), int(raw["origin_slot"]),
                                 str(raw["target_id"]), str(raw.get("type", "*")))
                else:
                    int(raw[4])
                    link = _Link(int(raw[0]), str(raw[1]), int(raw[2]), str(raw[3]),
                                 str(raw[5]) if len(raw) > 5 else "*")
            except (KeyError, IndexError, TypeError, ValueError):
                raise Refused(f"a link entry cannot be read ({str(raw)[:60]}).") from None
            self.links[link.id] = link

    def _definitions(self) -> dict[str, NodeDef]:
        # Muted and bypassed nodes never reach the API graph; their classes need no definition.
        classes = sorted({n["type"] for n in self.nodes.values()
                          if n["type"] not in VIRTUAL and _mode(n) not in (MUTED, BYPASSED)})
        defs, unknown = {}, []
        for c in classes:
            d = self.info.get(c)
            if d is None:
                unknown.append(c)
            else:
                defs[c] = d
        if unknown:
            raise Refused(f"the node type(s) {', '.join(unknown[:8])} are not known here (custom nodes "
                          "this plugin has no definition for, and the server did not describe them).")
        return defs

    # -- one node --
    def _inputs(self, nid: str, node: dict, d: NodeDef) -> dict[str, Any]:
        linked: dict[str, Any] = {}
        for inp in node.get("inputs") or []:
            if not isinstance(inp, dict):
                raise Refused(f"node {nid} has an unreadable input entry.")
            widget = as_dict(inp.get("widget"))
            name = str(widget.get("name") or inp.get("name") or "")
            spec = d.input(name)
            if spec is None:
                raise Refused(f"node {nid} ({d.class_type}) has an input \"{name}\" that its definition does not "
                              "list (a newer or older node version?).")
            link_id = inp.get("link")
            if link_id is None:
                continue
            source = self._source(int(link_id), expect_target=nid)
            if source is None:
                if spec.required:
                    raise Refused(f"node {nid} ({d.class_type}) input \"{name}\" comes from a muted or bypassed "
                                  "node that passes nothing through, so the workflow would fail in ComfyUI too.")
                continue
            kind, value = source
            if kind == "value":
                problem = _check_value(spec, value)
                if problem:
                    raise Refused(f"the PrimitiveNode feeding node {nid} ({d.class_type}) input \"{name}\" holds "
                                  f"{problem}.")
                self.inlined.append(f"{nid}.{name}")
            linked[name] = value
        widgets = self._widget_values(nid, node, d, linked)
        out: dict[str, Any] = {}
        for name in d.inputs:
            if name in linked:
                out[name] = linked[name]
            elif name in widgets:
                out[name] = widgets[name]
        return out

    def _source(self, link_id: int, expect_target: str | None = None, depth: int = 0):
        """("link", [id, slot]) | ("value", v) for what feeds a link, or None when nothing does."""
        if depth > 200:
            raise Refused("links loop through reroutes or bypassed nodes.")
        link = self.links.get(link_id)
        if link is None:
            raise Refused(f"link {link_id} is used by a node but missing from the links table.")
        if expect_target is not None and link.target != expect_target:
            raise Refused(f"link {link_id} is recorded for node {link.target} but used by node {expect_target}.")
        origin = self.nodes.get(link.origin)
        if origin is None:
            raise Refused(f"link {link_id} starts at node {link.origin}, which does not exist.")
        t, mode = origin["type"], _mode(origin)
        if mode == MUTED:
            return None
        if t == "Reroute":
            ins = origin.get("inputs") or []
            src = ins[0].get("link") if ins and isinstance(ins[0], dict) else None
            return None if src is None else self._source(int(src), link.origin, depth + 1)
        if t == "PrimitiveNode":
            values = origin.get("widgets_values")
            if not isinstance(values, list) or not values:
                raise Refused(f"PrimitiveNode {link.origin} has no value.")
            return ("value", values[0])
        if t in DROPPED:
            raise Refused(f"link {link_id} starts at a note node ({link.origin}).")
        if mode == BYPASSED:
            through = self._bypass_input(origin, link.origin_slot)
            return None if through is None else self._source(through, link.origin, depth + 1)
        return ("link", [str(link.origin), link.origin_slot])

    def _bypass_input(self, node: dict, out_slot: int) -> int | None:
        """The frontend's rule: a bypassed node forwards the input at the same index when its type
        matches the output's, else the first input of that type."""
        outputs = node.get("outputs") or []
        if out_slot >= len(outputs) or not isinstance(outputs[out_slot], dict):
            raise Refused(f"bypassed node {node['id']} has no output slot {out_slot}.")
        out_type = str(outputs[out_slot].get("type", "*"))
        inputs = [i for i in (node.get("inputs") or []) if isinstance(i, dict)]

        def matches(i: dict) -> bool:
            return i.get("link") is not None and _same_type(str(i.get("type", "*")), out_type)

        if out_slot < len(inputs) and matches(inputs[out_slot]):
            return int(inputs[out_slot]["link"])
        for i in inputs:
            if matches(i):
                return int(i["link"])
        return None

    # -- widget values --
    def _widget_values(self, nid: str, node: dict, d: NodeDef, linked: dict) -> dict[str, Any]:
        specs = [s for s in d.inputs.values() if s.type in ("INT", "FLOAT", "STRING", "BOOLEAN", COMBO)]
        for s in specs:
            if s.is_combo and s.options.get("control_after_generate"):
                raise Refused(f"node {nid} ({d.class_type}) has a combo with a value-control widget, whose "
                              "saved layout cannot be verified.")
            for flag in ("audio_upload", "video_upload", "file_upload"):
                if s.options.get(flag):
                    raise Refused(f"node {nid} ({d.class_type}) has a {flag.replace('_', ' ')} widget whose saved "
                                  "layout cannot be verified.")
        raw = node.get("widgets_values")
        if raw is None:
            raw = []
        where = f"node {nid} ({d.class_type})"
        if isinstance(raw, dict):
            return self._widgets_by_name(where, specs, raw, linked)
        if not isinstance(raw, list):
            raise Refused(f"{where} has unreadable widget values.")
        results: list[tuple[dict, list[str]]] = []
        errors: list[str] = []
        for force_is_widget in ((False, True) if any(s.options.get("forceInput") for s in specs) else (False,)):
            for upload_slot in ((False, True) if any(s.image_upload for s in specs) else (False,)):
                got = _assign(_layout(specs, force_is_widget, upload_slot), raw, linked)
                if isinstance(got, str):
                    errors.append(got)
                elif got[0] not in [r[0] for r in results]:
                    results.append(got)
        if len(results) > 1:
            # An exact fit beats one that needs defaults; two exact fits are a real ambiguity.
            exact = [r for r in results if not r[1]]
            results = exact if len(exact) == 1 else results
        if len(results) == 1:
            values, defaulted = results[0]
            if defaulted:
                self.notes.append(f"Node {nid} ({d.class_type}) was saved without {', '.join(defaulted)} "
                                  "(an older node version); using the default, as ComfyUI does when it opens the file.")
            return values
        if len(results) > 1:
            raise Refused(f"the {len(raw)} widget values of {where} fit its definition in more than one way.")
        raise Refused(f"the widget values of {where} do not match its definition: {errors[0]}.")

    def _widgets_by_name(self, where: str, specs: list[InputSpec], raw: dict, linked: dict) -> dict:
        out = {}
        for s in specs:
            if s.name not in raw:
                if s.name in linked or not s.required or (s.options.get("forceInput")):
                    continue
                raise Refused(f"{where} has no saved value for \"{s.name}\".")
            problem = _check_value(s, raw[s.name])
            if problem and s.name not in linked:
                raise Refused(f"{where} input \"{s.name}\" holds {problem}.")
            out[s.name] = _coerce(s, raw[s.name])
        return out

    def _summarise(self, graph: dict) -> None:
        muted = [i for i, n in self.nodes.items() if _mode(n) == MUTED]
        bypassed = [i for i, n in self.nodes.items() if _mode(n) == BYPASSED and n["type"] not in VIRTUAL]
        notes = [i for i, n in self.nodes.items() if n["type"] in DROPPED]
        self.notes.insert(0, f"Converted from UI format: {len(graph)} nodes.")
        if muted:
            self.notes.append(f"Muted nodes left out: {', '.join(sorted(muted, key=id_sort_key))}.")
        if bypassed:
            self.notes.append(f"Bypassed nodes passed through: {', '.join(sorted(bypassed, key=id_sort_key))}.")
        if self.inlined:
            self.notes.append(f"PrimitiveNode values written into: {', '.join(self.inlined)}.")
        if notes:
            self.notes.append(f"Notes dropped: {len(notes)}.")


# ----------------------------------------------------------------------------------------------
# Layout of widget values

def _layout(specs: list[InputSpec], force_is_widget: bool, upload_slot: bool) -> list[tuple[str, InputSpec]]:
    """The widget slots the frontend creates, in order: ("value", spec), ("control", spec) after
    seed-like INTs, ("upload", spec) after image-upload combos."""
    slots: list[tuple[str, InputSpec]] = []
    for s in specs:
        if s.options.get("forceInput") and not force_is_widget:
            continue
        slots.append(("value", s))
        if s.control_after_generate:
            slots.append(("control", s))
        if s.image_upload and upload_slot:
            slots.append(("upload", s))
    return slots


def _assign(layout: list[tuple[str, InputSpec]], values: list, linked: dict) -> tuple[dict, list[str]] | str:
    """({input: value}, [inputs filled with defaults]) when `values` fits `layout` slot by slot;
    else a sentence saying where it does not.

    Fewer values than slots is accepted only when every missing slot is a plain widget with a
    default: that is a file saved before the node gained those trailing widgets, and ComfyUI's own
    loader fills them with their defaults the same way."""
    if len(values) > len(layout) or (len(values) < len(layout) and not all(
            kind == "value" and spec.default is not None for kind, spec in layout[len(values):])):
        names = ", ".join(s.name if kind == "value" else f"{kind} of {s.name}" for kind, s in layout)
        return f"{len(values)} saved values for {len(layout)} widget slots ({names or 'none'})"
    out: dict[str, Any] = {}
    # fewer values than slots is accepted above (trailing widgets take their defaults, filled below)
    for i, ((kind, spec), value) in enumerate(zip(layout, values, strict=False)):
        if kind == "control":
            if value not in CONTROL_VALUES:
                return f"value #{i + 1} ({_show(value)}) should be the control mode after \"{spec.name}\""
            continue
        if kind == "upload":
            if value not in UPLOAD_BUTTON_VALUES:
                return f"value #{i + 1} ({_show(value)}) should be the upload button after \"{spec.name}\""
            continue
        problem = _check_value(spec, value)
        if problem:
            return f"value #{i + 1} for \"{spec.name}\" is {problem}"
        out[spec.name] = _coerce(spec, value)
    defaulted = []
    for _, spec in layout[len(values):]:
        out[spec.name] = spec.default
        defaulted.append(spec.name)
    return out, defaulted


def _check_value(spec: InputSpec, value: Any) -> str | None:
    """None when `value` fits `spec`'s type, else a short description of the mismatch."""
    t = spec.type
    if t == "INT":
        ok = ((isinstance(value, int) and not isinstance(value, bool))
              or (isinstance(value, float) and value.is_integer()))
        return None if ok else f"{_show(value)}, not an integer"
    if t == "FLOAT":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{_show(value)}, not a number"
    if t == "BOOLEAN":
        return None if isinstance(value, bool) else f"{_show(value)}, not true/false"
    if t == "STRING":
        return None if isinstance(value, str) else f"{_show(value)}, not text"
    if t == COMBO:
        if spec.open_choices:
            ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
            return None if ok else f"{_show(value)}, not a choice"
        return None if value in spec.choices else f"{_show(value)}, not one of its choices ({_choices(spec)})"
    return None


def _coerce(spec: InputSpec, value: Any) -> Any:
    if spec.type == "INT" and isinstance(value, float):
        return int(value)
    return value


def _choices(spec: InputSpec, n: int = 6) -> str:
    shown = ", ".join(repr(c) for c in spec.choices[:n])
    return shown + (", …" if len(spec.choices) > n else "")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _mode(node: dict) -> int:
    m = node.get("mode", 0)
    return m if isinstance(m, int) else 0


def _same_type(a: str, b: str) -> bool:
    if a == "*" or b == "*":
        return True
    return bool(set(a.split(",")) & set(b.split(",")))


def _looks_like_uuid(text: str) -> bool:
    import re
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text))

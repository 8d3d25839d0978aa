"""Overrides: `{"<node id, title or class>.<input>": value}` set on the graph, checked first.

Every key and value is validated against the node definitions before anything is applied, so a
typo fails with a message that names the valid choices instead of a ComfyUI 400 (or, worse, a run
with a silently ignored value). Wired inputs are protected: replacing a link by a literal would cut
the graph, so it is refused unless the new value is itself a link `["<node id>", <slot>]`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from . import jsonsafe
from .errors import InputError
from .models import InputChange
from .nodeinfo import COMBO, PRIMITIVE_TYPES, InputSpec, NodeInfo
from .workflow import Workflow

MAX_OVERRIDES = 200
MAX_OVERRIDES_BYTES = 1024 * 1024
MAX_OVERRIDES_DEPTH = 16     # values are scalars, links or small lists; a JSON input value may nest a little
MAX_KEY_CHARS = 300
LARGEST_INT = 2 ** 64        # no ComfyUI input takes a whole number beyond 64 bits


@dataclass(frozen=True)
class Override:
    key: str
    node_id: str
    input: str
    value: Any


def load_overrides(raw: Any) -> dict[str, Any]:
    """The overrides as an object: JSON text parsed with bounds on size and nesting (linear time,
    no recursion), or an object checked for the same bounds. Raises InputError for anything else."""
    if raw is None or raw == "" or raw == {}:
        return {}
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            raw = jsonsafe.parse(raw, max_bytes=MAX_OVERRIDES_BYTES, max_depth=MAX_OVERRIDES_DEPTH)
        except jsonsafe.JsonTooLarge as exc:
            raise InputError(f"The overrides are too large ({exc.size} characters; at most {MAX_OVERRIDES_BYTES}).",
                             message_zh=f"覆盖参数过大（最多 {MAX_OVERRIDES_BYTES} 个字符）。") from None
        except jsonsafe.JsonTooDeep:
            raise _too_deep() from None
        except jsonsafe.JsonError as exc:
            where = f" at line {exc.lineno}, column {exc.colno}" if exc.lineno else ""
            raise InputError(f"The overrides are not valid JSON ({jsonsafe.shown(exc.msg, 120)}{where}). "
                             "Write them as {\"<node>.<input>\": value}, e.g. {\"3.steps\": 30}.",
                             message_zh="覆盖参数不是有效的 JSON，格式示例：{\"3.steps\": 30}。") from None
    elif isinstance(raw, dict) and jsonsafe.depth_exceeds(raw, MAX_OVERRIDES_DEPTH):
        raise _too_deep()
    if not isinstance(raw, dict):
        raise InputError("The overrides must be a JSON object like {\"3.steps\": 30, \"KSampler.cfg\": 6.5}.",
                         message_zh="覆盖参数必须是 JSON 对象，例如 {\"3.steps\": 30}。")
    if len(raw) > MAX_OVERRIDES:
        raise InputError(f"Too many overrides ({len(raw)}; at most {MAX_OVERRIDES}).",
                         message_zh=f"覆盖参数过多（最多 {MAX_OVERRIDES} 个）。")
    for key in raw:
        if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
            raise InputError(f"The override key {jsonsafe.shown(key, 60)!r} is not a \"<node>.<input>\" name "
                             f"(text of at most {MAX_KEY_CHARS} characters).",
                             message_zh=f"覆盖参数的键 {jsonsafe.shown(key, 60)!r} 无效。")
    return raw


def _too_deep() -> InputError:
    return InputError(f"The overrides are nested more than {MAX_OVERRIDES_DEPTH} levels deep; an override value "
                      "is a number, text, true/false or a link [\"<node id>\", <slot>].",
                      message_zh=f"覆盖参数嵌套超过 {MAX_OVERRIDES_DEPTH} 层。")


def parse_overrides(graph: dict, nodeinfo: NodeInfo, overrides: dict | str | None) -> list[Override]:
    """Resolve and validate every override; raises InputError on the first problem."""
    overrides = load_overrides(overrides)
    if not overrides:
        return []
    wf = Workflow(graph)
    out: list[Override] = []
    seen: dict[tuple[str, str], str] = {}
    for key, value in overrides.items():
        o = _parse_one(wf, nodeinfo, str(key), value)
        if (o.node_id, o.input) in seen:
            raise InputError(f"The overrides \"{seen[(o.node_id, o.input)]}\" and \"{key}\" both set "
                             f"{o.node_id}.{o.input}; keep one.",
                             message_zh=f"覆盖参数 \"{key}\" 与另一项设置了同一个输入 {o.node_id}.{o.input}。")
        seen[(o.node_id, o.input)] = str(key)
        out.append(o)
    return out


def apply_overrides(graph: dict, parsed: list[Override]) -> list[InputChange]:
    wf = Workflow(graph)
    for o in parsed:
        wf.set(o.node_id, o.input, o.value)
    return [InputChange(o.node_id, o.input, "override", o.value) for o in parsed]


# ----------------------------------------------------------------------------------------------

def _parse_one(wf: Workflow, info: NodeInfo, key: str, value: Any) -> Override:
    try:
        nid, name = wf.resolve(key)
    except InputError as exc:
        raise InputError(f"Override \"{key}\": {exc.message}", message_zh=exc.message_zh, detail=exc.detail) from None
    if name is None:
        raise InputError(f"Override \"{key}\" names a node but no input; write \"{key}.<input>\", "
                         f"e.g. \"{nid}.{_example_input(wf, nid)}\".",
                         message_zh=f"覆盖参数 \"{key}\" 缺少输入名，应写成 \"{key}.<输入名>\"。")
    where = f"Override \"{key}\" ({wf.describe(nid)}.{name})"
    d = info.get(wf.class_of(nid), live=True)
    current = wf.get(nid, name)
    spec = d.input(name) if d else None
    if d is not None and spec is None:
        names = [s.name for s in d.inputs.values()]
        close = difflib.get_close_matches(name, names, n=3)
        raise InputError(f"{where}: {wf.class_of(nid)} has no input \"{name}\"."
                         + (f" Did you mean {', '.join(close)}?" if close else "")
                         + f" Its inputs: {', '.join(names) or 'none'}.",
                         message_zh=f"覆盖参数 \"{key}\"：节点类型 {wf.class_of(nid)} 没有输入「{name}」。",
                         detail={"inputs": names})
    if d is None and name not in wf.node(nid).get("inputs", {}):
        raise InputError(f"{where}: this node has no input \"{name}\" (and its type {wf.class_of(nid)} is not "
                         f"described, so only its existing inputs can be set: "
                         f"{', '.join(wf.node(nid).get('inputs', {})) or 'none'}).",
                         message_zh=f"覆盖参数 \"{key}\"：该节点没有输入「{name}」。")
    if Workflow.is_link(value):
        return Override(key, nid, name, _check_link(wf, info, where, spec, value))
    if Workflow.is_link(current):
        raise InputError(f"{where}: this input is connected to node {current[0]}; setting a value would cut "
                         "that connection. Override the source node instead, or give a link "
                         "[\"<node id>\", <output slot>] to rewire it.",
                         message_zh=f"覆盖参数 \"{key}\"：该输入连接着节点 {current[0]}，不能直接写入数值。")
    if spec is None:
        return Override(key, nid, name, _check_like_current(where, current, value))
    return Override(key, nid, name, check_value(where, spec, value))


def check_value(where: str, spec: InputSpec, value: Any) -> Any:
    """`value` converted to what `spec` takes, or InputError saying why it does not fit."""
    t = spec.type
    if t not in PRIMITIVE_TYPES and t != COMBO:
        raise InputError(f"{where} takes a connection ({t}), not a value. Give a link [\"<node id>\", <slot>] "
                         "to rewire it.",
                         message_zh=f"{where} 是连接类型（{t}），不能写入数值。")
    if t == "INT":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(where, "a whole number", value)
        _check_number(where, value)
        _check_range(where, spec, value)
    elif t == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(where, "a number", value)
        _check_number(where, value)
        _check_range(where, spec, value)
    elif t == "BOOLEAN":
        if not isinstance(value, bool):
            raise _type_error(where, "true or false", value)
    elif t == "STRING":
        if not isinstance(value, str):
            raise _type_error(where, "text", value)
    elif t == COMBO:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _type_error(where, "one of its choices", value)
        if not isinstance(value, str):
            _check_number(where, value)
        if not spec.open_choices and value not in spec.choices:
            choices = [str(c) for c in spec.choices]
            # difflib is quadratic in the text's length: only short values get suggestions
            close = (difflib.get_close_matches(str(value), choices, n=3, cutoff=0.5)
                     if len(str(value)) <= 200 else [])
            listed = close + [c for c in choices if c not in close][: max(0, 8 - len(close))]
            raise InputError(
                f"{where}: {_shown(value)} is not one of the {len(choices)} choices. "
                + (f"Did you mean {', '.join(_shown(c) for c in close)}? " if close else "")
                + f"Valid: {', '.join(_shown(c) for c in listed)}{', …' if len(choices) > len(listed) else ''}.",
                message_zh=f"{where}：{_shown(value)} 不在可选值中。",
                detail={"choices": [jsonsafe.shown(c, 200) for c in choices[:50]]})
    return value


def _check_number(where: str, value: int | float) -> None:
    """Finite, and no larger than any ComfyUI input can take (NaN and infinities pass every range
    check, and JSON has no spelling for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{where}: {value} is not a number ComfyUI can use; give a finite number.",
                         message_zh=f"{where}：{value} 不是有效的数字。")
    if abs(value) > LARGEST_INT:
        raise InputError(f"{where}: {_shown(value)} is too large (at most {LARGEST_INT}).",
                         message_zh=f"{where}：数值过大（最大 {LARGEST_INT}）。")


def _check_range(where: str, spec: InputSpec, value) -> None:
    lo, hi = spec.min, spec.max
    if isinstance(lo, (int, float)) and not isinstance(lo, bool) and value < lo:
        raise InputError(f"{where}: {value} is below the minimum {lo}.",
                         message_zh=f"{where}：{value} 小于最小值 {lo}。")
    if isinstance(hi, (int, float)) and not isinstance(hi, bool) and value > hi:
        raise InputError(f"{where}: {value} is above the maximum {hi}.",
                         message_zh=f"{where}：{value} 大于最大值 {hi}。")


def _check_link(wf: Workflow, info: NodeInfo, where: str, spec: InputSpec | None, value) -> list:
    src, slot = str(value[0])[:MAX_KEY_CHARS + 1], int(value[1])
    if src not in wf:
        raise InputError(f"{where}: the link points at node {_shown(src)}, which is not in the workflow.",
                         message_zh=f"{where}：连接指向不存在的节点 {_shown(src)}。")
    if not 0 <= slot < 1000:
        raise InputError(f"{where}: output slot {_shown(slot)} does not exist (slots count from 0).",
                         message_zh=f"{where}：输出槽 {_shown(slot)} 不存在。")
    d = info.get(wf.class_of(src))
    if d is not None:
        if not 0 <= slot < len(d.outputs):
            raise InputError(f"{where}: {wf.describe(src)} has no output slot {slot} "
                             f"(it has {len(d.outputs)}: {', '.join(d.outputs) or 'none'}).",
                             message_zh=f"{where}：节点 {src} 没有输出槽 {slot}。")
        out_type = d.outputs[slot]
        if spec is not None and not _types_match(out_type, spec.type):
            raise InputError(f"{where} takes {spec.type}, but output {slot} of {wf.describe(src)} is {out_type}.",
                             message_zh=f"{where} 需要 {spec.type} 类型，但节点 {src} 的输出 {slot} 是 {out_type}。")
    return [src, slot]


def _types_match(out_type: str, in_type: str) -> bool:
    if "*" in (out_type, in_type) or out_type == in_type:
        return True
    if in_type == COMBO and out_type in (COMBO, "STRING"):
        return True
    return bool(set(out_type.split(",")) & set(in_type.split(",")))


def _check_like_current(where: str, current: Any, value: Any) -> Any:
    """No definition: accept a value of the same JSON kind as the one in the workflow."""
    if current is None:
        return value
    kinds = {bool: "true or false", int: "a number", float: "a number", str: "text"}
    cur = type(current)
    if cur is bool:
        ok = isinstance(value, bool)
    elif cur in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            _check_number(where, value)
    elif cur is str:
        ok = isinstance(value, str)
    else:
        ok = type(value) is cur
    if not ok:
        raise _type_error(where, kinds.get(cur, f"a {cur.__name__}"), value)
    return value


def _type_error(where: str, wanted: str, value: Any) -> InputError:
    return InputError(f"{where} takes {wanted}, not {_shown(value)}.",
                      message_zh=f"{where} 的值类型不正确：{_shown(value)}。")


def _shown(value: Any) -> str:
    """A value quoted in a message: repr-like, cut to 80 characters saying how much was cut."""
    return jsonsafe.shown(repr(value) if isinstance(value, str) and len(value) <= 200 else value, 80)


def _example_input(wf: Workflow, nid: str) -> str:
    for name, value in wf.node(nid).get("inputs", {}).items():
        if not Workflow.is_link(value):
            return name
    return "input"

"""A catalogue model + the caller's choices → the graph to run, every choice checked first.

Everything is decided here, before any server is contacted: the model exists and is not retired,
the number of input images fits the node, and each option (aspect ratio, resolution, count,
duration, audio) is a value the model's node definition accepts. A refusal names the parameter,
the model (key and node class) and what it allows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..jsonsafe import shown
from ..nodeinfo import BIZYAIR_DEPRECATED, COMBO, InputSpec, NodeInfo
from ..workflow import Workflow
from .index import ImageSpec, Model, OptionSpec, tool_catalogue

MAX_LISTED = 24          # allowed values quoted in one message


@dataclass
class Built:
    """The graph of one catalogue run, and where the engine puts the prompt and the images."""

    model: Model
    graph: dict
    prompt_node: str
    negative_node: str = ""
    image_nodes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)     # node input → value set


def choose_model(tool: str, key: str) -> Model:
    """The model `key` of `tool` ('' = the tool's default), or InputError listing the models."""
    cat = tool_catalogue(tool)
    key = key.strip() or cat.default
    model = cat.models.get(key)
    if model is None:
        names = ", ".join(cat.models)
        raise InputError(f"Unknown model {shown(key, 60)!r} for {tool}. Choose one of: {names}.",
                         message_zh=f"{tool} 没有模型 {shown(key, 60)!r}，可选：{names}。",
                         detail={"input": "model"})
    return model


def retired(model: Model, nodeinfo: NodeInfo | None = None,
            deprecated: Collection[str] = BIZYAIR_DEPRECATED) -> bool:
    """Whether BizyAir retired the model's node: on the list of classes bizyengine replaced by an
    error stub, or flagged `deprecated` in its definition."""
    if model.class_type in deprecated:
        return True
    d = (nodeinfo or NodeInfo()).get(model.class_type)
    return bool(d and (d.deprecated or d.bizyair_deprecated))


def refuse_retired(model: Model, nodeinfo: NodeInfo | None = None,
                   deprecated: Collection[str] = BIZYAIR_DEPRECATED) -> None:
    """InputError when the model is retired, naming the model to use instead (its replacement, or
    the replacement's, when that one is retired too)."""
    if not retired(model, nodeinfo, deprecated):
        return
    cat = tool_catalogue(model.tool)
    seen = {model.key}
    instead = cat.models.get(model.replacement)
    while instead is not None and instead.key not in seen and retired(instead, nodeinfo, deprecated):
        seen.add(instead.key)
        instead = cat.models.get(instead.replacement)
    if instead is not None and instead.key in seen:
        instead = None
    use = (f"Use model '{instead.key}' ({instead.label}) instead." if instead else
           "Choose another model: " + ", ".join(k for k, m in cat.models.items()
                                                  if not retired(m, nodeinfo, deprecated)) + ".")
    use_zh = (f"请改用模型“{instead.key}”（{instead.label}）。" if instead else "请选择其他模型。")
    raise InputError(
        f"Model {model.described} has been retired by BizyAir: its node always fails, whatever the key. {use}",
        message_zh=f"模型 {model.described} 已被 BizyAir 停用：该节点无论密钥如何都会失败。{use_zh}",
        detail={"input": "model", "replacement": instead.key if instead else ""}, code="retired")


def check_image_count(model: Model, count: int, parameter: str = "images") -> None:
    spec = model.images
    if spec is None:
        if count:
            raise InputError(f"Model {model.described} takes no input image; remove the {count} given.",
                             message_zh=f"模型 {model.described} 不接受输入图片，请去掉这 {count} 张图片。",
                             detail={"input": parameter})
        return
    if spec.minimum <= count <= spec.maximum:
        return
    wanted = (f"exactly {spec.minimum}" if spec.minimum == spec.maximum
              else f"{spec.minimum} to {spec.maximum}")
    wanted_zh = (f"{spec.minimum}" if spec.minimum == spec.maximum else f"{spec.minimum}–{spec.maximum}")
    raise InputError(f"Parameter '{parameter}': model {model.described} takes {wanted} input image(s), "
                     f"not {count}.",
                     message_zh=f"参数“{parameter}”：模型 {model.described} 需要 {wanted_zh} 张输入图片，"
                                f"收到 {count} 张。",
                     detail={"input": parameter, "min": spec.minimum, "max": spec.maximum})


# ---- options ------------------------------------------------------------------------------

def resolve_options(model: Model, options: dict[str, Any], nodeinfo: NodeInfo | None = None) -> dict[str, Any]:
    """{node input: value} for the options the caller set (None or "" = the model's default).
    Raises InputError on the first option the model does not take or a value it does not allow."""
    info = nodeinfo or NodeInfo()
    definition = info.get(model.class_type)
    out: dict[str, Any] = {}
    sized: dict[str, tuple[OptionSpec, Any]] = {}
    for name, raw in options.items():
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        option = model.options.get(name)
        if option is None:
            raise _not_available(model, name)
        if option.kind == "size":
            sized[name] = (option, raw)
            continue
        spec = definition.input(option.input) if definition else None
        out[option.input] = _check(model, option, spec, raw)
    if sized:
        out.update(_size(model, sized))
    return out


def _size(model: Model, given: dict[str, tuple[OptionSpec, Any]]) -> dict[str, str]:
    """A node that takes one "W*H" size for both aspect_ratio and resolution: the size of the pair
    asked for (the default's half for the one not given)."""
    table = next(iter(given.values()))[0].table
    defaults = {n: o.default for n, o in model.options.items() if o.kind == "size"}
    chosen = {}
    for name in ("aspect_ratio", "resolution"):
        option, raw = given.get(name, (model.options[name], defaults[name]))
        names = list(table) if name == "aspect_ratio" else list(dict.fromkeys(t for s in table.values() for t in s))
        found = _match(option, names, raw)
        if found is _MISSING:
            raise _refused(model, option, raw, f"one of {', '.join(names)}", ", ".join(names))
        chosen[name] = found
    size = table[chosen["aspect_ratio"]].get(chosen["resolution"])
    if size is None:
        pairs = "; ".join(f"{a} at {', '.join(t)}" for a, t in table.items())
        name = "resolution" if "resolution" in given else "aspect_ratio"
        option, raw = given[name]
        raise _refused(model, option, raw, f"these aspect ratio and resolution pairs: {pairs}", pairs)
    return {model.options["aspect_ratio"].input: size}


def _not_available(model: Model, name: str) -> InputError:
    cat = tool_catalogue(model.tool)
    others = cat.taking(name)
    listed = ", ".join(others) if others else "none"
    return InputError(
        f"Parameter '{name}' is not available for model {model.described}: leave it empty, or choose a "
        f"model that takes it ({listed}).",
        message_zh=f"参数“{name}”不适用于模型 {model.described}：请留空，或改用支持它的模型（{listed}）。",
        detail={"input": name})


def _check(model: Model, option: OptionSpec, spec: InputSpec | None, raw: Any) -> Any:
    if option.kind == "flag":
        if isinstance(raw, bool):
            return raw
        raise _refused(model, option, raw, "true or false", "true 或 false")
    if option.kind == "range":
        lo, hi = _bounds(option, spec)
        value = _whole(raw)
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            unit = " seconds" if option.name == "duration" else ""
            raise _refused(model, option, raw, f"a whole number from {_fmt(lo)} to {_fmt(hi)}{unit}",
                           f"{_fmt(lo)} 到 {_fmt(hi)} 之间的整数")
        return value
    allowed = _allowed(option, spec)
    found = _match(option, allowed, raw)
    if found is _MISSING:
        listed = ", ".join(str(v) for v in allowed[:MAX_LISTED]) + (", …" if len(allowed) > MAX_LISTED else "")
        raise _refused(model, option, raw, f"one of {listed}", listed)
    return found


def _refused(model: Model, option: OptionSpec, raw: Any, allowed: str, allowed_zh: str) -> InputError:
    quoted = repr(shown(raw, 60)) if isinstance(raw, str) else shown(raw, 60)
    return InputError(
        f"Parameter '{option.name}': {quoted} is not accepted by model {model.described}; allowed: {allowed}.",
        message_zh=f"参数“{option.name}”：模型 {model.described} 不接受 {quoted}；可选：{allowed_zh}。",
        detail={"input": option.name})


_MISSING = object()


def _allowed(option: OptionSpec, spec: InputSpec | None) -> list:
    """The definition's closed choices (minus what the tool does not offer); the catalogue's copy
    when the definition cannot list them (a one-choice list is kept as an open combo)."""
    if spec is not None and spec.type == COMBO and not spec.open_choices:
        return [c for c in spec.choices if c not in option.exclude]
    return list(option.values)


def _bounds(option: OptionSpec, spec: InputSpec | None) -> tuple[float | None, float | None]:
    if spec is not None and spec.type in ("INT", "FLOAT"):
        lo, hi = spec.min, spec.max
        return (lo if _number(lo) else option.min), (hi if _number(hi) else option.max)
    return option.min, option.max


def _match(option: OptionSpec, allowed: list, raw: Any) -> Any:
    """The allowed value `raw` names: exact, through the option's aliases, or (text) ignoring case
    and spaces; numbers match numeric choices. _MISSING when none."""
    if isinstance(raw, bool):
        return _MISSING
    if isinstance(raw, (int, float)):
        whole = _whole(raw)
        return next((c for c in allowed if not isinstance(c, bool) and isinstance(c, (int, float)) and c == whole),
                    _MISSING)
    if not isinstance(raw, str):
        return _MISSING
    word = "".join(raw.split()).lower()
    word = {k.lower(): v for k, v in option.aliases.items()}.get(word, word)
    for choice in allowed:
        if str(choice).lower() == word.lower():
            return choice
    return _MISSING


def _whole(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().lstrip("+-").isdigit() and len(raw.strip()) <= 12:
        return int(raw.strip())
    return None


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fmt(x: Any) -> str:
    return "any" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


# ---- the graph ----------------------------------------------------------------------------

def build(tool: str, model_key: str, *, image_count: int = 0, options: dict[str, Any] | None = None,
          negative: bool = False, nodeinfo: NodeInfo | None = None,
          deprecated: Collection[str] = BIZYAIR_DEPRECATED, image_parameter: str = "images") -> Built:
    """The checked graph for one run of `tool` with `model_key`. Raises InputError before anything
    else when the model, the image count, an option or the negative prompt does not fit."""
    info = nodeinfo or NodeInfo()
    model = choose_model(tool, model_key)
    refuse_retired(model, info, deprecated)
    check_image_count(model, image_count, image_parameter)
    values = resolve_options(model, options or {}, info)
    if negative and not model.negative:
        raise _not_available(model, "negative_prompt")
    graph = model.load_workflow()
    wf = Workflow(graph)
    for name, value in values.items():
        wf.set(model.node, name, value)
    image_nodes = attach_images(graph, model, image_count)
    return Built(model=model, graph=graph, prompt_node=f"{model.node}.{model.prompt}",
                 negative_node=f"{model.node}.{model.negative}" if negative and model.negative else "",
                 image_nodes=image_nodes, options=values)


def attach_images(graph: dict, model: Model, count: int) -> list[str]:
    """Wire `count` LoadImage nodes into the model's node (the workflow holds the first one) and
    return their ids in order, for the engine to place the uploaded files in."""
    spec: ImageSpec | None = model.images
    if spec is None or count == 0:
        return []
    node = graph[model.node]
    first = node["inputs"].get(spec.inputs[0])
    if not Workflow.is_link(first) or graph.get(first[0], {}).get("class_type") != "LoadImage":
        raise ValueError(f"catalogue workflow {model.workflow}: {spec.inputs[0]} is not fed by a LoadImage")
    template = graph[first[0]]
    ids = [first[0]]
    next_id = max(int(n) for n in graph if n.isdigit()) + 1
    for index in range(1, count):
        nid = str(next_id)
        next_id += 1
        graph[nid] = {"class_type": "LoadImage", "inputs": dict(template["inputs"]),
                      "_meta": {"title": f"Input image {index + 1}"}}
        node["inputs"][spec.input_for(index)] = [nid, 0]
        ids.append(nid)
    if spec.count_input:
        node["inputs"][spec.count_input] = count
    return ids

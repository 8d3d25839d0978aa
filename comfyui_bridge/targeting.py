"""Where the prompt and the negative prompt go.

Order: an explicit spec (id, id.input, title — case-insensitive), else detection by walking the
graph the way the data flows: from every sampler or guider (a node that takes CONDITIONING and does
not output it: KSampler, SamplerCustom, BasicGuider, CFGGuider, their BizyAir_* versions, custom
ones) back along its positive (negative) inputs, through conditioning nodes (combine, concat, set
area, FluxGuidance, ControlNetApply*, …: anything that takes and returns CONDITIONING), to the text
encoder (a node that outputs CONDITIONING from a text widget), and from there, when the text is
itself wired in, to the string node that holds it (PrimitiveString*, Text Multiline, …).

Types come from node definitions, so custom nodes work as long as the server describes them;
without a definition, names (positive/negative/conditioning, text/prompt) stand in.

Graphs without a sampler (API nodes such as BizyAir_NanoBanana, LLM nodes) fall back to the one
node holding a prompt-like text input. Anything that could go two ways is an InputError that lists
the candidates and says to set prompt_node; it is never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .nodeinfo import InputSpec, NodeDef, NodeInfo, is_conditioning
from .workflow import Workflow

# Text inputs that hold something other than the image description.
_NOT_PROMPT = re.compile(r"negative|system|lyrics|uncond|empty|filename|prefix|suffix|delimiter|separator"
                         r"|url|path|api_key|model|instruction_template", re.I)
# Names that say "this is the prompt", best first.
PROMPT_NAMES = ("text", "prompt", "positive", "positive_prompt", "user_prompt", "prompt_text", "caption",
                "tags", "value", "string", "text_positive", "description")
_PROMPTISH = re.compile(r"(^|_)(text|prompt|positive|caption|tags|description)(_|\d|$)", re.I)
_NEGATIVEISH = re.compile(r"(^|_)negative(_|$)|^neg_prompt$|^negative_prompt$|^text_negative$", re.I)
# Text inputs of encoders, recognised by name when a class has no definition.
_ENCODER_FIELD = re.compile(r"^(text(_[gl])?|clip_[lg]|t5xxl|bert|mt5xl|llama|umt5|prompt)$", re.I)
_COND_NAMES = re.compile(r"^(positive|negative|conditioning(_\w+)?|cond\d*|cond_\w+)$", re.I)
MAX_WALK = 400


@dataclass(frozen=True)
class TextTarget:
    """Inputs of one node that take the prompt text (several for multi-field encoders)."""

    node_id: str
    inputs: tuple[str, ...]
    why: str = ""

    def pairs(self) -> list[list[str]]:
        return [[self.node_id, i] for i in self.inputs]


@dataclass
class Resolution:
    """What detection found for one role. `error` is set when it could go more than one way."""

    targets: list[TextTarget] = field(default_factory=list)
    error: InputError | None = None
    reason: str = ""            # why there is no target (for warnings)

    @property
    def found(self) -> bool:
        return bool(self.targets)

    def pairs(self) -> list[list[str]]:
        return [p for t in self.targets for p in t.pairs()]


@dataclass
class Analysis:
    positive: Resolution
    negative: Resolution
    samplers: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Public entry points

def find_targets(graph: dict, nodeinfo: NodeInfo, prompt_node: str = "", negative_node: str = "") -> Analysis:
    """Both roles, explicit specs first. Never raises for ambiguity: look at `Resolution.error`.
    Raises InputError for explicit specs that do not resolve."""
    g = _Graph(graph, nodeinfo)
    auto = g.detect()
    pos = g.explicit(prompt_node, "prompt_node") if prompt_node.strip() else auto.positive
    if negative_node.strip():
        neg = g.explicit(negative_node, "negative_node")
    else:
        neg = _without(auto.negative, pos)
    return Analysis(pos, neg, auto.samplers)


def prompt_targets(graph: dict, nodeinfo: NodeInfo, spec: str = "") -> list[TextTarget]:
    """The targets for the prompt; raises InputError on ambiguity. [] when the graph takes none."""
    res = find_targets(graph, nodeinfo, prompt_node=spec).positive
    if res.error:
        raise res.error
    return res.targets


def negative_targets(graph: dict, nodeinfo: NodeInfo, spec: str = "", prompt_spec: str = "") -> list[TextTarget]:
    res = find_targets(graph, nodeinfo, prompt_node=prompt_spec, negative_node=spec).negative
    if res.error:
        raise res.error
    return res.targets


def _without(neg: Resolution, pos: Resolution) -> Resolution:
    """A negative target that is also a positive one is not a negative target (e.g. a negative built
    with ConditioningZeroOut from the positive encoder, or a KSampler with the same encoder on both)."""
    if neg.error or not neg.targets:
        return neg
    taken = {(p[0], p[1]) for p in pos.pairs()}
    kept = []
    for t in neg.targets:
        inputs = tuple(i for i in t.inputs if (t.node_id, i) not in taken)
        if inputs:
            kept.append(TextTarget(t.node_id, inputs, t.why))
    if kept:
        return Resolution(kept)
    return Resolution(reason="the negative conditioning comes from the same text as the positive prompt")


# ----------------------------------------------------------------------------------------------

class _Graph:
    def __init__(self, graph: dict, info: NodeInfo):
        self.wf = Workflow(graph)
        self.info = info
        self._defs: dict[str, NodeDef | None] = {}
        self._consumed_as_cond: set[str] | None = None

    # -- definitions with name-based fallbacks --
    def d(self, nid: str) -> NodeDef | None:
        cls = self.wf.class_of(nid)
        if cls not in self._defs:
            self._defs[cls] = self.info.get(cls)
        return self._defs[cls]

    def spec(self, nid: str, name: str) -> InputSpec | None:
        d = self.d(nid)
        return d.input(name) if d else None

    def input_type(self, nid: str, name: str) -> str:
        s = self.spec(nid, name)
        if s is not None:
            return s.type
        value = self.wf.get(nid, name)
        if self.wf.is_link(value):
            return "CONDITIONING" if _COND_NAMES.match(name) else "*"
        if isinstance(value, bool):
            return "BOOLEAN"
        if isinstance(value, int):
            return "INT"
        if isinstance(value, float):
            return "FLOAT"
        return "STRING" if isinstance(value, str) else "*"

    def outputs_conditioning(self, nid: str) -> bool | None:
        d = self.d(nid)
        if d is None:
            return None
        return any(is_conditioning(o) for o in d.outputs)

    def cond_consumed(self) -> set[str]:
        """Nodes whose output some node reads through a conditioning-named input (for classes
        without a definition)."""
        if self._consumed_as_cond is None:
            self._consumed_as_cond = set()
            for cid in self.wf.ids():
                for name, (src, _) in self.wf.links_to(cid).items():
                    if _COND_NAMES.match(name):
                        self._consumed_as_cond.add(src)
        return self._consumed_as_cond

    def cond_inputs(self, nid: str) -> dict[str, tuple[str, int]]:
        return {n: link for n, link in self.wf.links_to(nid).items() if is_conditioning(self.input_type(nid, n))}

    def is_sampler(self, nid: str) -> bool:
        if not self.cond_inputs(nid):
            return False
        out = self.outputs_conditioning(nid)
        if out is None:
            return nid not in self.cond_consumed()
        return not out

    def string_inputs(self, nid: str) -> list[str]:
        """Inputs of `nid` that carry text: STRING widgets (literal or wired), by definition or value."""
        d = self.d(nid)
        names = []
        for name, value in self.wf.node(nid).get("inputs", {}).items():
            s = d.input(name) if d else None
            if s is not None:
                if s.type == "STRING":
                    names.append(name)
            elif d is None and (isinstance(value, str) or self.wf.is_link(value)) and (
                    _PROMPTISH.search(name) or _ENCODER_FIELD.match(name)) and not (
                    self.wf.is_link(value) and _COND_NAMES.match(name)):
                names.append(name)
        return names

    def multiline(self, nid: str, name: str) -> bool:
        s = self.spec(nid, name)
        return s.multiline if s is not None else True

    # -- detection --
    def detect(self) -> Analysis:
        samplers = [i for i in self.wf.ids() if self.is_sampler(i)]
        if not samplers:
            return Analysis(*self.fallback(), samplers=[])
        pos_hits: list[tuple[str, str]] = []
        neg_hits: list[tuple[str, str]] = []
        zeroed_neg = False
        for sid in samplers:
            for name, (src, slot) in self.cond_inputs(sid).items():
                role_neg = bool(re.search(r"negative|uncond", name, re.I))
                if re.search(r"empty", name, re.I):
                    continue
                why = f"{self.wf.class_of(sid)} {sid}.{name}"
                hits, zeroed = self.walk(src, slot, why)
                (neg_hits if role_neg else pos_hits).extend(hits)
                zeroed_neg |= zeroed and role_neg
        pos = self.decide(pos_hits, "prompt")
        if not pos.targets and not pos.error and not pos_hits:
            fb_pos, fb_neg = self.fallback()
            if fb_pos.targets or fb_pos.error:
                return Analysis(fb_pos, fb_neg, samplers)
            pos.reason = "the samplers' positive conditioning does not come from a text encoder"
        neg = self.decide(neg_hits, "negative prompt")
        if not neg.targets and not neg.error:
            neg.reason = ("the negative conditioning is zeroed out (ConditioningZeroOut), so its text has no effect"
                          if zeroed_neg else "no sampler takes a negative conditioning from a text encoder")
        return Analysis(pos, neg, samplers)

    def walk(self, nid: str, slot: int, why: str, depth: int = 0, seen: set | None = None) -> tuple[list, bool]:
        """Text encoders feeding (nid, slot) through conditioning nodes: ([(encoder, why)], zeroed)."""
        seen = set() if seen is None else seen
        if (nid, slot) in seen or depth > MAX_WALK or nid not in self.wf.graph:
            return [], False
        seen.add((nid, slot))
        cls = self.wf.class_of(nid)
        why = f"{why} ← {nid} {cls}"
        if cls.endswith("ConditioningZeroOut"):
            return [], True
        if self.prompt_fields(nid) and self.outputs_conditioning(nid) is not False:
            return [(nid, why)], False
        hits, zeroed = [], False
        for name, (src, s) in self.follow_through(nid, slot).items():
            h, z = self.walk(src, s, why, depth + 1, seen)
            hits += h
            zeroed |= z
        return hits, zeroed

    def follow_through(self, nid: str, slot: int) -> dict[str, tuple[str, int]]:
        """The conditioning inputs a conditioning node's output `slot` is made from: the input of the
        same name when there is one (ControlNetApplyAdvanced's "positive" output ← "positive" input),
        else all of them."""
        ins = self.cond_inputs(nid)
        if not ins:
            return {}
        d = self.d(nid)
        out_name = (d.output_name(slot) if d else None) or ""
        if out_name and out_name.lower() in {n.lower() for n in ins}:
            return {n: v for n, v in ins.items() if n.lower() == out_name.lower()}
        if d is None and {"positive", "negative"} <= set(ins):
            # No definition: tell a positive output from a negative one by how consumers read it.
            roles = {"negative" if "negative" in name.lower() else "positive"
                     for cid, name, s in self.wf.consumers(nid) if s == slot and _COND_NAMES.match(name)}
            if len(roles) == 1:
                key = roles.pop()
                return {key: ins[key]}
        return ins

    def decide(self, hits: list[tuple[str, str]], role: str) -> Resolution:
        """Turn encoder hits into targets; several different ones are ambiguous unless they all hold
        the same text (the same prompt typed into a base and a refiner encoder)."""
        targets: list[TextTarget] = []
        problems: list[str] = []
        for enc, why in hits:
            try:
                t = self.encoder_target(enc, why)
            except _Ambiguous as exc:
                return Resolution(error=self.ambiguity(role, exc.candidates, exc.what))
            if t is None:
                problems.append(f"the text of {self.wf.describe(enc)} is not typed in any node")
            elif all((t.node_id, t.inputs) != (x.node_id, x.inputs) for x in targets):
                targets.append(t)
        if len(targets) > 1:
            # Same text everywhere (a base and a refiner encoder, two pipelines of one prompt): fill
            # them all. Encoders left empty next to filled ones were left empty on purpose: skip them.
            filled = [t for t in targets if self.wf.get(t.node_id, t.inputs[0]) not in ("", None)]
            texts = {self.wf.get(t.node_id, t.inputs[0]) for t in filled}
            if len(texts) > 1:
                cands = [(t.node_id, t.inputs) for t in targets]
                return Resolution(error=self.ambiguity(role, cands, "different text encoders with different "
                                                       "texts feed the samplers"))
            targets = filled or targets
        return Resolution(targets, reason="; ".join(problems))

    def prompt_fields(self, nid: str) -> list[str]:
        return [f for f in self.string_inputs(nid) if not _NOT_PROMPT.search(f)]

    def encoder_target(self, nid: str, why: str) -> TextTarget | None:
        """Where the text of encoder `nid` is typed: the encoder itself, or the string node wired
        into it. None when the text is computed (not typed anywhere we can fill)."""
        fields = self.encoder_fields(nid)
        literal = tuple(f for f in fields if not self.wf.is_link(self.wf.get(nid, f)))
        wired = [f for f in fields if f not in literal]
        if not wired:
            return TextTarget(nid, literal, why) if literal else None
        sources: dict[tuple, TextTarget] = {}
        for f in wired:
            src = self.string_source(nid, f, why)
            if src is not None:
                sources.setdefault((src.node_id, src.inputs), src)
        if not literal and len(sources) == 1:
            return next(iter(sources.values()))
        if not sources:
            return TextTarget(nid, literal, why) if literal else None
        cands = ([(nid, literal)] if literal else []) + list(sources)
        raise _Ambiguous(cands, f"the text of {self.wf.describe(nid)} comes from several places")

    def encoder_fields(self, nid: str) -> list[str]:
        """The text inputs of an encoder to fill with the prompt: one, or all of a multi-field
        encoder's (CLIPTextEncodeFlux clip_l + t5xxl, SDXL text_g + text_l, SD3 clip_l/clip_g/t5xxl):
        several multiline text widgets on one encoder are the same prompt for different text models."""
        fields = self.prompt_fields(nid)
        if len(fields) <= 1:
            return fields
        multi = [f for f in fields if self.multiline(nid, f)]
        if len(multi) >= 2:
            return multi
        chosen = self._best_named(nid, fields)
        if not chosen:
            raise _Ambiguous([(nid, (f,)) for f in fields], f"{self.wf.describe(nid)} has several text inputs")
        return chosen

    def string_source(self, nid: str, field_name: str, why: str, depth: int = 0) -> TextTarget | None:
        """Follow a wired text input to the node where the text is typed (PrimitiveString*, Text
        Multiline, an LLM node's user prompt, ...). None when no such node is found."""
        value = self.wf.get(nid, field_name)
        if not self.wf.is_link(value) or depth > 20:
            return None
        src = str(value[0])
        if src not in self.wf.graph:
            return None
        why = f"{why}.{field_name} ← {src} {self.wf.class_of(src)}"
        fields = self.prompt_fields(src)
        if not fields:
            return None
        chosen = fields if len(fields) == 1 else self._best_named(src, fields)
        if not chosen:
            raise _Ambiguous([(src, (f,)) for f in fields], f"{self.wf.describe(src)} has several text inputs")
        f = chosen[0]
        if self.wf.is_link(self.wf.get(src, f)):
            return self.string_source(src, f, why, depth + 1)
        return TextTarget(src, (f,), why)

    def _best_named(self, nid: str, fields: list[str]) -> list[str]:
        """One field chosen by name (multiline first), or [] when names do not decide."""
        pool = [f for f in fields if self.multiline(nid, f)] or fields
        if len(pool) == 1:
            return pool
        for name in PROMPT_NAMES:
            if name in pool:
                return [name]
        return []

    # -- graphs without samplers --
    def fallback(self) -> tuple[Resolution, Resolution]:
        cands: dict[str, list[str]] = {}
        for nid in self.wf.ids():
            for f in self.string_inputs(nid):
                value = self.wf.get(nid, f)
                if self.wf.is_link(value) or _NOT_PROMPT.search(f):
                    continue
                if _PROMPTISH.search(f) or self.feeds_prompt_input(nid):
                    cands.setdefault(nid, []).append(f)
        if any(self.multiline(n, f) for n, fs in cands.items() for f in fs):
            cands = {n: [f for f in fs if self.multiline(n, f)] for n, fs in cands.items()}
            cands = {n: fs for n, fs in cands.items() if fs}
        pos = Resolution(reason="the workflow has no sampler and no node with a prompt-like text input")
        if len(cands) == 1:
            nid, fs = next(iter(cands.items()))
            chosen = fs if len(fs) == 1 else self._best_named(nid, fs)
            if chosen:
                pos = Resolution([TextTarget(nid, (chosen[0],), f"no sampler; only text input {nid}.{chosen[0]}")])
            else:
                pos = Resolution(error=self.ambiguity("prompt", [(nid, (f,)) for f in fs], "a node has several text inputs"))
        elif len(cands) > 1:
            pos = Resolution(error=self.ambiguity("prompt", [(n, tuple(fs)) for n, fs in cands.items()],
                                                  "the workflow has no sampler and several text inputs"))
        return pos, self.fallback_negative(pos)

    def feeds_prompt_input(self, nid: str) -> bool:
        """A string node whose output goes into some node's prompt-like (non-negative) input."""
        d = self.d(nid)
        if d is not None and "STRING" not in d.outputs:
            return False
        for cid, name, _ in self.wf.consumers(nid):
            if _PROMPTISH.search(name) and not _NOT_PROMPT.search(name):
                return True
        return False

    def fallback_negative(self, pos: Resolution) -> Resolution:
        owners = [t.node_id for t in pos.targets]
        cands = []
        for nid in owners + [i for i in self.wf.ids() if i not in owners]:
            for f in self.string_inputs(nid):
                if _NEGATIVEISH.search(f) and not self.wf.is_link(self.wf.get(nid, f)):
                    cands.append((nid, f))
            if cands and nid in owners:
                break
        if len({n for n, _ in cands}) == 1 and len(cands) == 1:
            nid, f = cands[0]
            return Resolution([TextTarget(nid, (f,), f"negative text input {nid}.{f}")])
        if cands:
            return Resolution(error=self.ambiguity("negative prompt", [(n, (f,)) for n, f in cands],
                                                   "several nodes have a negative text input"))
        return Resolution(reason="no node has a negative text input")

    # -- explicit specs --
    def explicit(self, spec: str, param: str) -> Resolution:
        nid, name = self.wf.resolve(spec)
        why = f"{param} = {spec!r}"
        role = "negative prompt" if param.startswith("negative") else "prompt"
        try:
            if name is None:
                return Resolution([self._target_for(nid, self._fields_of_node(nid, param), why)])
            self._check_text_input(nid, name, param)
            return Resolution([self._target_for(nid, (name,), why)])
        except _Ambiguous as exc:
            raise self.ambiguity(role, exc.candidates, exc.what, param=param) from None

    def _fields_of_node(self, nid: str, param: str) -> tuple[str, ...]:
        fields = self.encoder_fields(nid) if self.outputs_conditioning(nid) is not False else []
        if not fields:
            strings = self.prompt_fields(nid) or self.string_inputs(nid)
            fields = strings if len(strings) == 1 else self._best_named(nid, strings)
            if not fields and strings:
                raise _Ambiguous([(nid, (f,)) for f in strings], f"{self.wf.describe(nid)} has several text inputs")
        if not fields:
            raise InputError(
                f"{param} points at {self.wf.describe(nid)}, which has no text input. "
                f"Its inputs: {', '.join(self.wf.node(nid).get('inputs', {})) or 'none'}.",
                message_zh=f"{param} 指向的节点 {nid} 没有文本输入。")
        return tuple(fields)

    def _check_text_input(self, nid: str, name: str, param: str) -> None:
        s = self.spec(nid, name)
        if s is not None:
            if s.type != "STRING":
                raise InputError(f"{param} points at {nid}.{name}, a {s.type} input, not a text input.",
                                 message_zh=f"{param} 指向的 {nid}.{name} 不是文本输入。")
            return
        value = self.wf.get(nid, name)
        if self.d(nid) is not None or not (isinstance(value, str) or self.wf.is_link(value)):
            known = ", ".join(self.string_inputs(nid)) or "none"
            raise InputError(f"{param}: {self.wf.describe(nid)} has no text input \"{name}\" "
                             f"(text inputs: {known}).",
                             message_zh=f"{param}：节点 {nid} 没有文本输入「{name}」。")

    def _target_for(self, nid: str, fields: tuple[str, ...], why: str) -> TextTarget:
        wired = [f for f in fields if self.wf.is_link(self.wf.get(nid, f))]
        if not wired:
            return TextTarget(nid, fields, why)
        src = self.string_source(nid, wired[0], why)
        if src is None:
            raise InputError(
                f"{nid}.{wired[0]} is connected to node {self.wf.get(nid, wired[0])[0]}, which computes its "
                "text; point prompt_node at the node where the text is typed.",
                message_zh=f"{nid}.{wired[0]} 的文本来自其他节点，请将 prompt_node 指向输入文本的节点。")
        return src

    def ambiguity(self, role: str, cands: list[tuple[str, tuple]], what: str, param: str = "") -> InputError:
        param = param or ("negative_node" if role.startswith("negative") else "prompt_node")
        listed = "; ".join(f"{self.wf.describe(n)} → {', '.join(fs)}" for n, fs in cands[:10])
        first = cands[0]
        example = first[0] + (f".{first[1][0]}" if len(first[1]) == 1 else "")
        return InputError(
            f"Cannot tell where the {role} goes: {what}. Candidates: {listed}. "
            f"Set {param} to one of them (for example \"{example}\").",
            message_zh=f"无法确定{'反向提示词' if role.startswith('negative') else '提示词'}应写入哪个节点，"
                       f"请设置 {param}（例如 \"{example}\"）。候选：{listed}",
            detail={"role": role, "candidates": [[n, list(fs)] for n, fs in cands]})


class _Ambiguous(Exception):
    def __init__(self, candidates: list[tuple[str, tuple]], what: str):
        super().__init__(what)
        self.candidates = candidates
        self.what = what


def describe_target(graph: dict, t: TextTarget) -> str:
    wf = Workflow(graph)
    return f"{wf.describe(t.node_id)}.{'/'.join(t.inputs)}"


def current_text(graph: dict, t: TextTarget) -> Any:
    return Workflow(graph).get(t.node_id, t.inputs[0])

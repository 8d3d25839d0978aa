"""Where the prompt and the negative prompt go.

Order: an explicit spec (id, id.input, title — case-insensitive), else detection by walking the graph the
way the data flows, backwards:

1. **Samplers and guiders** are the nodes that consume conditioning and are not themselves read as
   conditioning (KSampler, SamplerCustom, BasicGuider, CFGGuider, FaceDetailer, WanVideoSampler, custom
   ones). Only those an output node depends on count. An input's role comes from its name: `positive`,
   `negative`, or neutral (`conditioning`, `text_embeds`, `hyvid_embeds`, `te_cond`, ...).
2. **Conditioning is walked back** through pass-through nodes, slot by slot: an output slot goes back to
   the input of the same name (ControlNetApplyAdvanced `positive` → `positive`), else to the inputs with
   the same role word (`CONDITIONING+`, `positive_NEW`, `base_positive`), else — for nodes without a
   definition — to the role its consumers read it as. Combine/concat nodes merge several branches; any-type
   switches are followed (to the chosen branch when a literal selects one); pipes and tuples (SDXL tuple,
   detailer pipe) are followed to the inputs of the same role. `ConditioningZeroOut` ends a branch.
3. **Encoders** end the walk: nodes that output conditioning from text. Their text fields are chosen by
   role (WanVideoTextEncode, Efficient Loader and friends hold both prompts: `positive_prompt` for the
   positive, `negative_prompt` for the negative) and by output slot (a styler's slot 0 is the positive
   text, slot 1 the negative). When a text field is wired, the **text is followed** to where it is typed
   (PrimitiveString, String Literal, CR Text, Text Multiline, ...), through concatenations and pass-through
   displays; text produced by taggers, captioners and LLMs from an image is *computed*.
4. **Deciding**: one typed text → that field (all model-specific fields of one encoder: clip_l + t5xxl,
   text_g + text_l). Several conditionings combined where one is filled and one is empty → the empty one
   (a fixed prefix next to the prompt slot). The same text in several encoders (base and refiner) → all of
   them; an encoder left empty next to filled ones in another sampler → skipped. Anything else — two
   pipelines with different texts, a prompt assembled from several typed fragments, an ambiguous switch —
   is refused with the candidates (an InputError telling the user to set prompt_node). No typed text on any
   path → no target, with the reason. The prompt never goes anywhere that does not reach a positive.

Types come from node definitions: the server's when asked, the bundled ComfyUI/BizyAir ones, and the
custom-node packs read from their source (`data/pack_defs.json`, partial: inputs it does not list are
inferred). Without a definition, roles are inferred from the graph: the types of the upstream outputs, a
vocabulary of conditioning and text input names, literal values, and the output slot a link comes from.

Graphs without any sampler (API nodes such as BizyAir_NanoBanana, text-to-speech, try-on) take the prompt
in the prompt field of the node that generates the output; segmentation queries never do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .nodeinfo import InputSpec, NodeDef, NodeInfo, load_pack_defs
from .workflow import Workflow, id_sort_key

# Text inputs that hold something other than the description of the output.
_NOT_PROMPT = re.compile(
    r"negative|system|lyrics|uncond|empty|filename|prefix|suffix|delimiter|separator|url|path|api_key|"
    r"model|instruction|template|exclude|populated|expression|question|^text2$|token|chat_id|caption_|"
    r"^custom$|hashes|time_format|folder|extension|^label$|^wildcard$|title|^task$|^mode$", re.I)
# Names that say "this is the prompt", best first.
PROMPT_NAMES = ("text", "prompt", "positive", "positive_prompt", "user_prompt", "prompt_text", "caption",
                "tags", "value", "string", "text_positive", "description")
# Text-looking input names, for inputs no definition describes.
_TEXT_NAME = re.compile(r"(^|_)(text|texts|prompt|prompts|positive|negative|caption|tags|description|string|str|"
                        r"value|content|words|lyrics|(text|prompt)\d+)(_|\d|$)|^(text|prompt|string)_?[a-z]$|^Text$|"
                        r"^String$", re.I)
# Model-specific text fields of one encoder: several of them are one prompt typed for several text models.
_ENCODER_FIELD = re.compile(r"^(text_[gl]|clip_[lg]|t5xxl|t5|bert|mt5xl|llama|umt5|gemma)$", re.I)
_NEG_WORD = re.compile(r"(^|_)(negative|neg|uncond|unconditional|nag)(_|\d|$)|(^|_)text_negative$|-$", re.I)
_POS_WORD = re.compile(r"(^|_)(positive|pos)(_|\d|$)|\+$", re.I)
# Link inputs that carry conditioning, for classes without a definition.
_COND_NAME = re.compile(
    r"^((base|refiner|high|low|stage_[bc])_)?(positive|negative)(_\w+)?$|^conditioning(_?\w+)?$|^cond\d*$|"
    r"^cond_\w+$|^(te|text|neg|pos|negative|positive)_cond(itioning)?$|^uncond$|^(text|hyvid|prompt|t5|llm)_?embeds?$",
    re.I)
_COND_TYPE = re.compile(r"CONDITIONING|TEXT_?EMBEDS|^HYVIDEMBEDS$|_COND_(POS|NEG)$|^PROMPT_EMBEDS$", re.I)
_BUNDLE_TYPE = re.compile(r"^(SDXL_TUPLE|BASIC_PIPE|DETAILER_PIPE|PIPE_LINE|PIPE_LINE_SDXL|PIPE)$", re.I)
# Link inputs an any-type switch or pass-through forwards, for classes without a definition.
_ANY_INPUT = re.compile(r"^(any|anything|input|signal|value|on_true|on_false|true|false|[a-z]+_?\d{1,2})$", re.I)
# Link inputs that feed a text model into an encoder.
_TEXT_MODEL_INPUT = re.compile(r"^(clip|t5|text_encoders?|tokenizer|llm|llm_model|gemma|umt5|clip_l)$", re.I)
# Classes that segment or detect: their text is a query, never the prompt.
_SEGMENTER = re.compile(r"segment|grounding|\bsam\d?\b|sam3|clipseg|detector|mask|florence|tagger|caption", re.I)
_OUTPUT_CLASS = re.compile(r"^(Save|Preview|Show|Display)|VideoCombine|SaveImage|Output|Send|Upload", re.I)
# Titles that call a text a fixed part of the prompt (next to the slot where the prompt goes).
_AUX_TITLE = re.compile(r"\b(constant|const|fixed|style|lora|trigger|prefix|suffix|quality)\b", re.I)
# The prompt field of a generator without a sampler (not an index or option kept as text).
_GEN_FIELD = re.compile(r"(^|_)(text|prompt|prompts|caption|description|tags|positive)(_|\d|$)", re.I)
# What a generator without a sampler makes, and the inputs that read it.
_MEDIA_TYPE = re.compile(r"IMAGE|VIDEO|AUDIO|LATENT|MESH|3D", re.I)
_MEDIA_INPUT = re.compile(r"^(images?|image_?\d|video|videos|audio|frames|samples|latents?|pixels|source_image|"
                          r"input_image|image_[ab]|model_file|mesh)$", re.I)
_SELECTOR = re.compile(r"^(boolean|switch|condition|select|selector|input|index|cond)$", re.I)
_EMPTY_NAME = re.compile(r"empty", re.I)
_NUMBER = re.compile(r"^\s*[-+]?\d+(\.\d+)?\s*$")
MAX_WALK = 400
MAX_TEXT_DEPTH = 40


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


def _without(neg: Resolution, pos: Resolution) -> Resolution:
    """A negative target that is also a positive one is not a negative target (a negative built with
    ConditioningZeroOut from the positive encoder, or a sampler with the same encoder on both sides)."""
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
# What a walk finds

@dataclass(frozen=True)
class _Leaf:
    """Text typed in `node` (one prompt, in one or several inputs)."""

    node: str
    inputs: tuple[str, ...]
    text: str
    why: str

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.node, self.inputs


@dataclass(frozen=True)
class _Computed:
    what: str           # "the text of 13 (CLIPTextEncode) comes from 36 (WD14Tagger|pysssss)"


@dataclass(frozen=True)
class _Amb:
    candidates: tuple[tuple[str, tuple[str, ...]], ...]
    what: str


@dataclass(frozen=True)
class _Zero:
    what: str


@dataclass
class _Group:
    """What one sampler input (or one combine node) leads to. `combined`: several conditionings were merged
    into one (the prefix-template rule applies); `alternatives`: a switch picks one of them."""

    items: list = field(default_factory=list)
    combined: bool = False
    alternatives: bool = False


_Item = Any   # _Leaf | _Computed | _Amb | _Zero | _Group


class _Ambiguous(Exception):
    def __init__(self, candidates: list[tuple[str, tuple]], what: str):
        super().__init__(what)
        self.candidates = candidates
        self.what = what


# ----------------------------------------------------------------------------------------------

class _Graph:
    def __init__(self, graph: dict, info: NodeInfo):
        self.wf = Workflow(graph)
        self.info = info
        self.packs = load_pack_defs()
        self._defs: dict[str, NodeDef | None] = {}
        self._ids = sorted(graph, key=id_sort_key)
        self._consumers: dict[str, list[tuple[str, str, int]]] = {}
        for cid in self._ids:
            for name, (src, slot) in self.wf.links_to(cid).items():
                self._consumers.setdefault(src, []).append((cid, name, slot))
        self._live: set[str] | None = None
        self._cond_consumed: dict[str, set[int]] | None = None
        self._kinds: dict[tuple[str, str], str] = {}
        self._walks: dict[tuple, _Group] = {}
        self._texts: dict[tuple, list] = {}

    # -- definitions ----------------------------------------------------------------------------
    def d(self, nid: str) -> NodeDef | None:
        cls = self.wf.class_of(nid)
        if cls not in self._defs:
            found = self.info.get(cls)
            if found is None and cls in self.packs:
                found = NodeDef.parse(cls, self.packs[cls], source="packs")
            self._defs[cls] = found
        return self._defs[cls]

    def spec(self, nid: str, name: str) -> InputSpec | None:
        d = self.d(nid)
        return d.input(name) if d else None

    def consumers(self, nid: str) -> list[tuple[str, str, int]]:
        return self._consumers.get(nid, [])

    def out_type(self, nid: str, slot: int) -> str | None:
        d = self.d(nid)
        return d.output_type(slot) if d else None

    def out_name(self, nid: str, slot: int) -> str:
        d = self.d(nid)
        return (d.output_name(slot) or "") if d else ""

    def literal(self, nid: str, name: str) -> bool:
        return not self.wf.is_link(self.wf.get(nid, name))

    # -- what an input carries ---------------------------------------------------------------------
    def input_kind(self, nid: str, name: str) -> str:
        """cond | bundle | any | text | other, for one input of `nid` (cached)."""
        key = (nid, name)
        if key not in self._kinds:
            self._kinds[key] = self._input_kind(nid, name)
        return self._kinds[key]

    def _input_kind(self, nid: str, name: str) -> str:
        value = self.wf.get(nid, name)
        s = self.spec(nid, name)
        if s is not None:
            if _COND_TYPE.search(s.type):
                return "cond"
            if _BUNDLE_TYPE.match(s.type):
                return "bundle"
            if s.type == "STRING":
                return "text"
            if s.type == "*" and self.wf.is_link(value):
                return "any"
            return "other"
        if self.wf.is_link(value):
            src, slot = str(value[0]), int(value[1])
            t = self.out_type(src, slot) if src in self.wf.graph else None
            if t is not None:
                if _COND_TYPE.search(t):
                    return "cond"
                if _BUNDLE_TYPE.match(t):
                    return "bundle"
                if t == "STRING":
                    return "text"
                if t == "*":
                    return "any" if not _COND_NAME.match(name) else "cond"
                return "other"
            if _COND_NAME.match(name):
                return "cond"
            if _TEXT_MODEL_INPUT.match(name):
                return "other"
            if src in self.wf.graph and self.looks_like_encoder(src) and not _TEXT_NAME.search(name):
                return "cond"
            if _TEXT_NAME.search(name) and not _COND_NAME.match(name):
                return "text"
            return "any" if _ANY_INPUT.match(name) else "other"
        if isinstance(value, str) and not _NUMBER.match(value) and self.text_by_name(nid, name):
            return "text"
        return "other"

    def text_by_name(self, nid: str, name: str) -> bool:
        """A literal string input no definition describes, judged by its name. On a class the packs
        describe only partly, only when none of its declared text inputs is present."""
        d = self.d(nid)
        if d is not None and d.source != "packs":
            return False
        if d is not None and any(n in d.inputs and d.inputs[n].type == "STRING"
                                 for n in self.wf.node(nid).get("inputs", {})):
            return False
        return bool(_TEXT_NAME.search(name) or _ENCODER_FIELD.match(name))

    def links(self, nid: str, kinds: tuple[str, ...]) -> dict[str, tuple[str, int]]:
        return {n: v for n, v in self.wf.links_to(nid).items()
                if v[0] in self.wf.graph and self.input_kind(nid, n) in kinds}

    def text_fields(self, nid: str) -> list[str]:
        """Inputs of `nid` holding or receiving text (literal or wired), in input order."""
        return [n for n in self.wf.node(nid).get("inputs", {}) if self.input_kind(nid, n) == "text"]

    def prompt_fields(self, nid: str) -> list[str]:
        return [f for f in self.text_fields(nid) if not _NOT_PROMPT.search(f) or _role_field(f)]

    def multiline(self, nid: str, name: str) -> bool:
        s = self.spec(nid, name)
        return s.multiline if s is not None else True

    def outputs_cond(self, nid: str) -> bool | None:
        d = self.d(nid)
        if d is None:
            return None
        return any(_COND_TYPE.search(o) or _BUNDLE_TYPE.match(o) for o in d.outputs)

    def looks_like_encoder(self, nid: str) -> bool:
        """A node that turns typed text into conditioning: by definition, it outputs conditioning and has a
        prompt field; without one, it has a text model wired in (clip, t5, text encoder), a text input judged
        by its name, and no conditioning input. Judged from the node alone (no recursion upstream)."""
        if self.d(nid) is not None:
            return bool(self.outputs_cond(nid)) and bool(self.prompt_fields(nid))
        links = self.wf.links_to(nid)
        if any(_COND_NAME.match(n) for n in links) or not any(_TEXT_MODEL_INPUT.match(n) for n in links):
            return False
        return any((_TEXT_NAME.search(n) or _ENCODER_FIELD.match(n)) and not _NOT_PROMPT.search(n)
                   and not _TEXT_MODEL_INPUT.match(n) and (isinstance(v, str) or self.wf.is_link(v))
                   for n, v in self.wf.node(nid).get("inputs", {}).items())

    # -- which nodes run ---------------------------------------------------------------------------
    def is_output(self, nid: str) -> bool:
        """An output node by a complete definition; else any node nothing reads (it may be one)."""
        d = self.d(nid)
        if d is not None and d.source != "packs":
            return d.output_node
        return not self.consumers(nid)

    def live(self) -> set[str]:
        """Nodes an output node depends on (what ComfyUI runs); every node when no output is recognisable."""
        if self._live is None:
            outs = [n for n in self._ids if self.is_output(n)]
            seen: set[str] = set()
            stack = list(outs)
            while stack:
                n = stack.pop()
                if n in seen:
                    continue
                seen.add(n)
                stack.extend(src for src, _ in self.wf.links_to(n).values() if src in self.wf.graph)
            self._live = seen if seen else set(self._ids)
        return self._live

    def cond_consumed(self, nid: str) -> set[int]:
        """Output slots of `nid` some node reads as conditioning (one pass over the links, cached)."""
        if self._cond_consumed is None:
            self._cond_consumed = {}
            for cid in self._ids:
                for name, (src, slot) in self.wf.links_to(cid).items():
                    if src in self.wf.graph and self.input_kind(cid, name) in ("cond", "bundle"):
                        self._cond_consumed.setdefault(src, set()).add(slot)
        return self._cond_consumed.get(nid, set())

    def is_sampler(self, nid: str) -> bool:
        if not self.links(nid, ("cond", "bundle")):
            return False
        consumed = self.cond_consumed(nid)
        d = self.d(nid)
        if d is not None:
            cond_slots = {i for i, o in enumerate(d.outputs) if _COND_TYPE.search(o) or _BUNDLE_TYPE.match(o)}
            # A sampler may pass its conditioning through (KSampler (Efficient)); it is a sampler when no
            # one reads those outputs as conditioning.
            return not (cond_slots & consumed) and not (cond_slots and not consumed and not self._also_samples(d))
        return not consumed and not self.prompt_fields(nid)

    @staticmethod
    def _also_samples(d: NodeDef) -> bool:
        """Outputs besides conditioning that only sampling produces (a latent, an image, a guider)."""
        return any(o in ("LATENT", "IMAGE", "GUIDER") or o.endswith("LATENT") for o in d.outputs
                   if not (_COND_TYPE.search(o) or _BUNDLE_TYPE.match(o)))

    def samplers(self) -> list[str]:
        live = self.live()
        return [i for i in self._ids if i in live and self.is_sampler(i)]

    # -- detection -------------------------------------------------------------------------------
    def detect(self) -> Analysis:
        samplers = self.samplers()
        if not samplers:
            pos, neg = self.fallback()
            return Analysis(pos, neg, [])
        pos_groups: dict[str, list[_Group]] = {}
        neg_groups: dict[str, list[_Group]] = {}
        for sid in samplers:
            for name, (src, slot) in self.links(sid, ("cond", "bundle")).items():
                if _EMPTY_NAME.search(name):
                    continue
                why = f"{self.wf.class_of(sid)} {sid}.{name}"
                role = _role_of(name)
                if role in ("pos", None):
                    pos_groups.setdefault(sid, []).append(self.walk(src, slot, "pos", why, strict=False))
                if role == "neg":
                    neg_groups.setdefault(sid, []).append(self.walk(src, slot, "neg", why, strict=False))
                elif role is None:
                    neg_groups.setdefault(sid, []).append(self.walk(src, slot, "neg", why, strict=True))
        pos = self.decide(pos_groups, "prompt", neg_groups)
        neg = self.decide(neg_groups, "negative prompt", pos_groups)
        if not neg.targets and not neg.error and not neg.reason:
            neg.reason = "no sampler takes a negative conditioning from typed text"
        return Analysis(pos, neg, samplers)

    # -- the conditioning walk ---------------------------------------------------------------------
    def walk(self, nid: str, slot: int, role: str, why: str, strict: bool,
             seen: set | None = None, depth: int = 0) -> _Group:
        """What the conditioning leaving (nid, slot) is made from, for `role` ("pos"/"neg"). `strict`: the
        consumer's input has no role (text_embeds), so only role-specific text counts for the negative."""
        key = (nid, slot, role, strict)
        if key in self._walks:          # each (node, slot, role) is walked once per graph: linear overall
            return self._walks[key]
        seen = set() if seen is None else seen
        if key in seen or depth > MAX_WALK or nid not in self.wf.graph:
            return _Group()
        seen.add(key)
        result = self._walk(nid, slot, role, why, strict, seen, depth)
        self._walks[key] = result
        return result

    def _walk(self, nid: str, slot: int, role: str, why: str, strict: bool, seen: set, depth: int) -> _Group:
        cls = self.wf.class_of(nid)
        why = f"{why} ← {nid} {cls}"
        if cls.endswith("ConditioningZeroOut"):
            return _Group([_Zero(f"{nid} (ConditioningZeroOut)")])
        slot_role = _role_of(self.out_name(nid, slot)) or (self.consumer_role(nid, slot) if self.d(nid) is None
                                                              else None)
        want = slot_role or role
        fields = self.prompt_fields(nid)
        cond_in = self.links(nid, ("cond", "bundle"))
        if fields and (self.looks_like_encoder(nid) or not cond_in) and self.outputs_cond(nid) is not False:
            return _Group([self.encoder_item(nid, want, why, strict)])
        follow = self.pass_through(nid, slot, want, cond_in)
        if not follow:
            return _Group()
        items = [self.walk(src, s, want, why, strict and not _role_of(name), seen, depth + 1)
                 for name, (src, s) in follow.items()]
        if len(items) == 1:
            return items[0]
        kinds = {self.input_kind(nid, n) for n in follow}
        return _Group(items, combined="any" not in kinds, alternatives="any" in kinds)

    def consumer_role(self, nid: str, slot: int) -> str | None:
        """For a node without a definition: the role its consumers read output `slot` as."""
        roles = {_role_of(name) for _, name, s in self.consumers(nid) if s == slot}
        roles.discard(None)
        return roles.pop() if len(roles) == 1 else None

    def pass_through(self, nid: str, slot: int, role: str, cond_in: dict) -> dict[str, tuple[str, int]]:
        """The inputs the conditioning leaving (nid, slot) comes from."""
        candidates = dict(cond_in)
        candidates.update(self.any_inputs(nid))
        if not candidates:
            return {}
        out_name = self.out_name(nid, slot).lower()
        same = {n: v for n, v in candidates.items() if n.lower() == out_name}
        if out_name and same:
            return same
        chosen = self.switch_choice(nid, candidates)
        if chosen is not None:
            return chosen
        by_role = {n: v for n, v in candidates.items() if _role_of(n) == role}
        if by_role and any(_role_of(n) not in (role, None) for n in candidates):
            return by_role
        if any(_role_of(n) for n in candidates) and not by_role:
            neutral = {n: v for n, v in candidates.items() if _role_of(n) is None}
            return neutral
        return candidates

    def any_inputs(self, nid: str) -> dict[str, tuple[str, int]]:
        """Any-type inputs a switch or pass-through forwards."""
        return self.links(nid, ("any",))

    def switch_choice(self, nid: str, candidates: dict) -> dict | None:
        """The branch a literal selector picks (Switch any [Crystools] boolean, ComfySwitchNode, numbered
        inputs with a literal index), or the first connected of an rgthree Any Switch."""
        inputs = self.wf.node(nid).get("inputs", {})
        sel = next((inputs[n] for n in inputs if _SELECTOR.match(n) and not self.wf.is_link(inputs[n])), None)
        if isinstance(sel, bool):
            want = "on_true" if sel else "on_false"
            pick = {n: v for n, v in candidates.items() if n.lower() in (want, want[3:])}
            return pick or None
        if isinstance(sel, int) and not isinstance(sel, bool):
            pick = {n: v for n, v in candidates.items() if re.search(rf"(^|\D){sel}$", n)}
            return pick or None
        if self.wf.class_of(nid).startswith("Any Switch"):
            first = min(candidates, key=lambda n: id_sort_key(n))
            return {first: candidates[first]}
        return None

    # -- encoders ----------------------------------------------------------------------------------
    def encoder_item(self, nid: str, role: str, why: str, strict: bool) -> _Item:
        """The text of encoder `nid` for `role`: a leaf, computed text, an ambiguity, or nothing (an empty
        group) when a neutral input reaches an encoder without role-specific text."""
        fields = self.role_fields(nid, role, strict)
        if not fields:
            return _Group()
        try:
            fields = self.encoder_fields(nid, fields)
        except _Ambiguous as exc:
            return _Amb(tuple((n, tuple(f)) for n, f in exc.candidates), exc.what)
        literal = tuple(f for f in fields if self.literal(nid, f))
        wired = [f for f in fields if f not in literal]
        items: list = []
        if literal:
            items.append(_Leaf(nid, literal, str(self.wf.get(nid, literal[0]) or ""), why))
        for f in wired:
            src, s = self.wf.links_to(nid)[f]
            items.extend(self.text_sources(src, s, role, f"{why}.{f}", set(), 0))
        return self.typed(items, nid, why)

    def role_fields(self, nid: str, role: str, strict: bool) -> list[str]:
        """Prompt fields of `nid` for `role`: an encoder holding both prompts gives each role its own."""
        fields = self.prompt_fields(nid)
        neg = [f for f in fields if _role_field(f) == "neg"]
        other = [f for f in fields if f not in neg]
        if role == "neg":
            if neg:
                return neg
            return [] if strict else other
        return other

    def encoder_fields(self, nid: str, fields: list[str]) -> list[str]:
        """One field, or all model-specific fields of a multi-field encoder (clip_l + t5xxl, text_g + text_l:
        one prompt for several text models). A text wired into another field of the encoder (a schedule's
        pre_text) is part of the prompt too: then the graph does not say where the prompt goes."""
        if len(fields) <= 1:
            return fields
        if all(_ENCODER_FIELD.match(f) for f in fields):
            return fields
        chosen = self._best_named(nid, fields)
        wired_rest = [f for f in fields if f not in chosen and not self.literal(nid, f)]
        if not chosen or wired_rest:
            raise _Ambiguous([(nid, (f,)) for f in (chosen + wired_rest or fields)],
                             f"{self.wf.describe(nid)} has several text inputs")
        return chosen

    def _best_named(self, nid: str, fields: list[str]) -> list[str]:
        """One field chosen by name (multiline first), or [] when names do not decide."""
        pool = [f for f in fields if self.multiline(nid, f)] or fields
        if len(pool) == 1:
            return pool
        for name in PROMPT_NAMES:
            if name in pool:
                return [name]
        return []

    def typed(self, items: list, nid: str, why: str) -> _Item:
        """Reduce what feeds one text field: one typed text → it; several → ambiguous; none → computed."""
        leaves = _unique([i for i in items if isinstance(i, _Leaf)])
        ambs = [i for i in items if isinstance(i, _Amb)]
        if ambs:
            return ambs[0]
        if len(leaves) == 1:
            return leaves[0]
        if len(leaves) > 1:
            return _Amb(tuple(leaf.key for leaf in leaves),
                        f"the text of {self.wf.describe(nid)} is assembled from several typed texts")
        computed = [i for i in items if isinstance(i, _Computed)]
        return computed[0] if computed else _Computed(f"the text of {self.wf.describe(nid)} is not typed in any node")

    # -- the text walk -----------------------------------------------------------------------------
    def text_sources(self, nid: str, slot: int, role: str, why: str, seen: set, depth: int) -> list:
        """Where the text leaving (nid, slot) is typed: leaves, computed text, ambiguities (cached)."""
        key = (nid, slot, role)
        if key in self._texts:
            return self._texts[key]
        if key in seen or depth > MAX_TEXT_DEPTH or nid not in self.wf.graph:
            return []
        seen.add(key)
        result = self._text_sources(nid, slot, role, why, seen, depth)
        self._texts[key] = result
        return result

    def _text_sources(self, nid: str, slot: int, role: str, why: str, seen: set, depth: int) -> list:
        why = f"{why} ← {nid} {self.wf.class_of(nid)}"
        if self.reads_media(nid):
            # A tagger, captioner or vision LLM: the text comes from the image; its typed fields are settings
            # and instructions.
            return [_Computed(f"the text comes from {self.wf.describe(nid)}, which computes it from an image")]
        fields = self.prompt_fields(nid)
        out_name = self.out_name(nid, slot).lower()
        same = [f for f in fields if f.lower() == out_name]
        if same:
            fields = same
        else:
            want = _role_of(out_name) or role
            neg = [f for f in fields if _role_field(f) == "neg"]
            if neg and len(neg) < len(fields):
                fields = neg if want == "neg" else [f for f in fields if f not in neg]
        literal = [f for f in fields if self.literal(nid, f)]
        wired = [f for f in fields if f not in literal]
        out: list = [_Leaf(nid, (f,), str(self.wf.get(nid, f) or ""), why) for f in literal]
        for f in wired:
            src, s = self.wf.links_to(nid)[f]
            out.extend(self.text_sources(src, s, role, f"{why}.{f}", seen, depth + 1))
        for name, (src, s) in self.any_inputs(nid).items():
            out.extend(self.text_sources(src, s, role, f"{why}.{name}", seen, depth + 1))
        if not out:
            out.append(_Computed(f"the text comes from {self.wf.describe(nid)}, which computes it"))
        return out

    def reads_media(self, nid: str) -> bool:
        return any(_MEDIA_INPUT.match(n) for n in self.wf.links_to(nid))

    # -- deciding ----------------------------------------------------------------------------------
    def resolve_group(self, group: _Group) -> tuple[list[_Leaf], list[_Item]]:
        """Leaves chosen in one group, plus the non-leaf items (for reasons and ambiguities)."""
        leaves: list[_Leaf] = []
        others: list[_Item] = []
        for item in group.items:
            if isinstance(item, _Group):
                sub, sub_others = self.resolve_group(item)
                leaves.extend(sub)
                others.extend(sub_others)
            elif isinstance(item, _Leaf):
                leaves.append(item)
            else:
                others.append(item)
        leaves = _unique(leaves)
        if len(leaves) > 1 and group.alternatives:
            others.append(_Amb(tuple(leaf.key for leaf in leaves), "a switch chooses between different texts"))
            return [], others
        if len(leaves) > 1 and group.combined:
            main = [leaf for leaf in leaves if not _AUX_TITLE.search(self.wf.title_of(leaf.node))]
            if main and len(main) < len(leaves):
                # Titles that call a text constant, a style or a LoRA trigger mark the fixed parts.
                leaves = main
        if len(leaves) > 1 and group.combined:
            texts = {leaf.text for leaf in leaves}
            empty = [leaf for leaf in leaves if not leaf.text.strip()]
            if len(texts) > 1 and len(empty) == 1:
                # A fixed text (a prefix, a style) combined with an empty encoder: the empty one is the prompt.
                return empty, others
            if len(texts) > 1:
                others.append(_Amb(tuple(leaf.key for leaf in leaves),
                                   "several conditionings with different texts are combined"))
                return [], others
        return leaves, others

    def decide(self, by_sampler: dict[str, list[_Group]], role: str,
               other_role: dict[str, list[_Group]] | None = None) -> Resolution:
        leaves: list[_Leaf] = []
        others: list[_Item] = []
        owners: dict[tuple, set[str]] = {}
        for sid, groups in by_sampler.items():
            for g in groups:
                sub, sub_others = self.resolve_group(g)
                leaves.extend(sub)
                others.extend(sub_others)
                for leaf in sub:
                    owners.setdefault(leaf.key, set()).add(sid)
        leaves = _unique(leaves)
        ambs = [o for o in others if isinstance(o, _Amb)]
        if ambs:
            cands = list(dict.fromkeys(c for a in ambs for c in a.candidates))
            cands += [leaf.key for leaf in leaves if leaf.key not in cands]
            return Resolution(error=self.ambiguity(role, cands, ambs[0].what))
        if len(leaves) > 1:
            filled = [leaf for leaf in leaves if leaf.text.strip()]
            texts = {leaf.text for leaf in filled}
            if filled and len(texts) == 1:
                # The same text typed for several samplers (a base and a refiner, two pipelines): fill them
                # all. Encoders left empty next to filled ones were left empty on purpose: skip them.
                leaves = filled
            elif not filled and (role.startswith("negative") or self.same_other_role(leaves, owners, other_role)):
                # Empty fields only. A negative prompt is generic: it goes to every sampler. Empty prompts
                # go to every sampler when the samplers are alike in the other role (duplicated pipelines,
                # a base and a refiner with the same negative); else they are different prompts.
                pass
            else:
                what = ("several samplers take different texts" if filled
                        else "several samplers take text from different empty fields")
                return Resolution(error=self.ambiguity(role, [leaf.key for leaf in leaves], what))
        if leaves:
            return Resolution([TextTarget(leaf.node, leaf.inputs, leaf.why) for leaf in leaves])
        return Resolution(reason=self.no_target_reason(others, role))

    def same_other_role(self, leaves: list[_Leaf], owners: dict, other_role: dict | None) -> bool:
        """Do the samplers owning `leaves` take the same text in the other role?"""
        if not other_role:
            return False
        signatures: set[tuple[str, ...]] = set()
        for sid in set().union(*(owners.get(leaf.key, set()) for leaf in leaves)):
            texts: list[str] = []
            for g in other_role.get(sid, []):
                sub, _ = self.resolve_group(g)
                texts.extend(leaf.text.strip() for leaf in sub)
            signatures.add(tuple(sorted(set(texts))))
        return len(signatures) == 1

    def no_target_reason(self, others: list, role: str) -> str:
        if any(isinstance(o, _Zero) for o in others):
            zero = next(o for o in others if isinstance(o, _Zero))
            if all(isinstance(o, _Zero) for o in others) or role.startswith("negative"):
                return f"the {'negative ' if role.startswith('negative') else ''}conditioning is zeroed out " \
                       f"({zero.what}), so its text has no effect"
        computed = [o for o in others if isinstance(o, _Computed)]
        if computed:
            return computed[0].what
        if role.startswith("negative"):
            return "no sampler takes a negative conditioning from typed text"
        return "the samplers' positive conditioning does not come from typed text"

    # -- graphs without samplers ---------------------------------------------------------------------
    def generators(self) -> list[str]:
        """Nodes that make the output from a prompt field: API nodes, text-to-speech, try-on, video
        interpolation with a prompt. Not segmenters or detectors, not text utilities."""
        live = self.live()
        media, text_only = [], []
        for nid in self._ids:
            if nid not in live or _SEGMENTER.search(self.wf.class_of(nid)) or self.is_output_only(nid):
                continue
            fields = [f for f in self.prompt_fields(nid) if _role_field(f) != "neg" and _GEN_FIELD.search(f)]
            if not fields or (self.d(nid) is not None and "MASK" in self.d(nid).outputs):  # type: ignore[union-attr]
                continue
            d = self.d(nid)
            if d is not None:
                if any(_MEDIA_TYPE.search(o) for o in d.outputs):
                    media.append(nid)
                elif d.outputs and all(o in ("STRING", "*") for o in d.outputs):
                    text_only.append(nid)
            elif self.feeds_only_text(nid):
                text_only.append(nid)
            elif any(_MEDIA_INPUT.match(n) for _, n, _ in self.consumers(nid)):
                media.append(nid)
        # Text-only nodes count when they compute text from the prompt (an LLM: a model choice, settings),
        # not when they merely hold it (a String Literal feeding a file writer).
        computing = [n for n in text_only
                     if len(self.wf.node(n).get("inputs", {})) > len(self.text_fields(n))]
        return media or computing

    def is_output_only(self, nid: str) -> bool:
        d = self.d(nid)
        return bool(d is not None and d.output_node and not d.outputs) or (
            d is None and not self.consumers(nid) and bool(_OUTPUT_CLASS.search(self.wf.class_of(nid))))

    def feeds_only_text(self, nid: str) -> bool:
        cons = self.consumers(nid)
        return bool(cons) and all(self.input_kind(c, n) == "text" for c, n, _ in cons)

    def fallback(self) -> tuple[Resolution, Resolution]:
        gens = self.generators()
        if not gens:
            reason = "the workflow has no sampler and no node that makes its output from a prompt"
            return Resolution(reason=reason), Resolution(reason="no node has a negative text input")
        pos_items, neg_items = [], []
        for nid in gens:
            why = f"no sampler; {self.wf.describe(nid)} makes the output"
            pos_items.append(self.encoder_item(nid, "pos", why, strict=False))
            neg_items.append(self.encoder_item(nid, "neg", why, strict=True))
        pos = self.decide({"": [_Group(pos_items)]}, "prompt")
        neg = self.decide({"": [_Group(neg_items)]}, "negative prompt")
        if not neg.targets and not neg.error:
            neg.reason = "no node has a negative text input"
        return pos, neg

    # -- explicit specs ------------------------------------------------------------------------------
    def explicit(self, spec: str, param: str) -> Resolution:
        nid, name = self.wf.resolve(spec)
        why = f"{param} = {spec!r}"
        role = "negative prompt" if param.startswith("negative") else "prompt"
        try:
            if name is None:
                return Resolution([self._target_for(nid, self._fields_of_node(nid, param), why, role)])
            self._check_text_input(nid, name, param)
            return Resolution([self._target_for(nid, (name,), why, role)])
        except _Ambiguous as exc:
            raise self.ambiguity(role, exc.candidates, exc.what, param=param) from None

    def _fields_of_node(self, nid: str, param: str) -> tuple[str, ...]:
        role = "neg" if param.startswith("negative") else "pos"
        fields = self.role_fields(nid, role, strict=False)
        if fields:
            fields = self.encoder_fields(nid, fields)
        if not fields:
            strings = self.text_fields(nid)
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
        d = self.d(nid)
        if (d is not None and d.source != "packs") or not (isinstance(value, str) or self.wf.is_link(value)):
            known = ", ".join(self.text_fields(nid)) or "none"
            raise InputError(f"{param}: {self.wf.describe(nid)} has no text input \"{name}\" "
                             f"(text inputs: {known}).",
                             message_zh=f"{param}：节点 {nid} 没有文本输入「{name}」。")

    def _target_for(self, nid: str, fields: tuple[str, ...], why: str, role: str) -> TextTarget:
        wired = [f for f in fields if not self.literal(nid, f)]
        if not wired:
            return TextTarget(nid, fields, why)
        src, slot = self.wf.links_to(nid)[wired[0]]
        item = self.typed(self.text_sources(src, slot, "neg" if role.startswith("negative") else "pos",
                                            f"{why}.{wired[0]}", set(), 0), nid, why)
        if isinstance(item, _Leaf):
            return TextTarget(item.node, item.inputs, item.why)
        if isinstance(item, _Amb):
            raise _Ambiguous(list(item.candidates), item.what)
        raise InputError(
            f"{nid}.{wired[0]} is connected to node {src}, which computes its "
            "text; point prompt_node at the node where the text is typed.",
            message_zh=f"{nid}.{wired[0]} 的文本来自其他节点，请将 prompt_node 指向输入文本的节点。")

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


def _role_of(name: str) -> str | None:
    """The role an input or output name states: "neg", "pos" or None."""
    if not name:
        return None
    if _NEG_WORD.search(name):
        return "neg"
    if _POS_WORD.search(name):
        return "pos"
    return None


def _role_field(name: str) -> str | None:
    """A text field that belongs to one role (negative_prompt, text_negative, positive_prompt)."""
    return _role_of(name)


def _unique(leaves: list[_Leaf]) -> list[_Leaf]:
    seen: dict[tuple, _Leaf] = {}
    for leaf in leaves:
        seen.setdefault(leaf.key, leaf)
    return list(seen.values())

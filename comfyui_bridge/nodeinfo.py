"""Node definitions: what inputs a class has, their types and bounds, what it outputs.

The shape is ComfyUI's `/object_info/<Class>` answer, trimmed to what the engine needs. Two sources:

* a bundled file (`data/node_defs.json`, built by `scripts/trim_object_info.py` from captures of a
  stock ComfyUI and a BizyAir container), always available, no network;
* optionally the live server, asked one class at a time through `fetch(class_type)` (normally
  `ComfyClient.object_info`). Never the full `/object_info`: on a BizyAir container that call freezes
  the whole server for ~80 s while the cloud is unreachable.

Live answers are cached process-wide per (server label, class) in a small LRU, so a Dify plugin
process asks each server about each class once.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jsonsafe import as_dict, as_list

log = logging.getLogger(__name__)

BUNDLED_PATH = Path(__file__).parent / "data" / "node_defs.json"
# Custom-node packs read from their source by scripts/build_pack_defs.py: only what targeting needs, so they
# complete the definitions targeting and seeds see, never those used to validate or convert workflows.
PACK_DEFS_PATH = Path(__file__).parent / "data" / "pack_defs.json"

PRIMITIVE_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
COMBO = "COMBO"

# Options the engine reads. Everything else (tooltips, step, display, ...) is dropped when trimming.
KEPT_OPTIONS = ("default", "min", "max", "control_after_generate", "multiline", "image_upload", "image_folder",
                "audio_upload", "video_upload", "file_upload", "forceInput", "defaultInput",
                "multiselect", "open")
MAX_COMBO_CHOICES = 256
LIVE_TTL = 600.0          # seconds a live definition is trusted before it is asked again
LOOKUP_WORKERS = 4        # classes asked at once when a workflow needs several
MAX_DEFAULT_STRING = 200
_FILE_LIKE = re.compile(r"(\.[A-Za-z][A-Za-z0-9_]{0,11}$)|[/\\]")

# bizyengine 1.2.114 keeps these classes in /object_info (they pass validation) but replaces their
# function by a stub raising "This node is deprecated, please use BizyAirPlus" (static scan of the
# package, see the BizyAir notes). A workflow using one cannot succeed with any key.
BIZYAIR_DEPRECATED = frozenset("""
BizyAirBAE_NormalMapPreprocessor BizyAirBinaryPreprocessor BizyAirCannyEdgePreprocessor
BizyAirColorPreprocessor BizyAirDWPreprocessor BizyAirDepthAnythingV2Preprocessor
BizyAirFakeScribblePreprocessor BizyAirGenerateLightningImage BizyAirHEDPreprocessor BizyAirJoyCaption
BizyAirLeReS_DepthMapPreprocessor BizyAirLineArtPreprocessor BizyAirM_LSDPreprocessor
BizyAirMetric3D_DepthMapPreprocessor BizyAirMetric3D_NormalMapPreprocessor BizyAirMiDaS_DepthMapPreprocessor
BizyAirMiDaS_NormalMapPreprocessor BizyAirOneFormer_ADE20K_SemSegPreprocessor
BizyAirOneFormer_COCO_SemSegPreprocessor BizyAirOpenposePreprocessor BizyAirPiDiNetPreprocessor
BizyAirSAMPreprocessor BizyAirScribblePreprocessor BizyAirSegmentAnythingPointBox BizyAirSegmentAnythingText
BizyAirSiliconCloudLLMAPI BizyAirSiliconCloudVLMAPI BizyAirTilePreprocessor BizyAirUniFormer_SemSegPreprocessor
BizyAirZoe_DepthMapPreprocessor BizyAir_MinusZoneChatGLM3TextEncode
""".split())


# ----------------------------------------------------------------------------------------------
# Trimming (shared by the bundling script and live answers, so both look the same)

def _combo_choices(spec: list) -> tuple[list | None, dict]:
    """(choices, options) of a combo spec in either the old `[[...], {...}]` form or the newer
    `["COMBO", {"options": [...]}]` form; (None, options) when the spec is not a combo."""
    head = spec[0] if spec else None
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(head, list):
        return head, opts
    if head == COMBO:
        options = opts.get("options")
        return (list(options) if isinstance(options, list) else []), opts
    return None, opts


def _is_open_list(choices: list, opts: dict) -> bool:
    """True when the choices cannot be trusted as the complete set of valid values: file names
    (they differ per server), remote/refreshable lists, placeholders (one entry or none, e.g.
    BizyAir's checkpoint loader lists only "to choose" yet accepts any name), huge lists."""
    if opts.get("remote") or opts.get("open") or len(choices) <= 1 or len(choices) > MAX_COMBO_CHOICES:
        return True
    return any(isinstance(c, str) and _FILE_LIKE.search(c) for c in choices)


def trim_input_spec(spec: Any) -> list:
    if not isinstance(spec, (list, tuple)) or not spec:
        return ["*", {}]
    spec = list(spec)
    choices, opts = _combo_choices(spec)
    kept = {k: opts[k] for k in KEPT_OPTIONS if k in opts}
    if isinstance(kept.get("default"), str) and len(kept["default"]) > MAX_DEFAULT_STRING:
        kept["default"] = kept["default"][:MAX_DEFAULT_STRING]
    if choices is not None:
        if _is_open_list(choices, opts):
            kept["open"] = True
            choices = []
        return [list(choices), kept] if kept else [list(choices)]
    head = spec[0] if isinstance(spec[0], str) else "*"
    return [head, kept] if kept else [head]


def trim_definition(d: dict, *, extra: dict | None = None) -> dict:
    """The parts of one `/object_info/<Class>` definition the engine uses."""
    inputs = as_dict(d.get("input"))
    order = as_dict(d.get("input_order"))
    out_in: dict[str, dict] = {}
    for section in ("required", "optional"):
        sec = inputs.get(section)
        if not isinstance(sec, dict) or not sec:
            continue
        # Stored in the definition's order, so no separate input_order is needed.
        out_in[section] = {n: trim_input_spec(sec[n]) for n in _ordered_names(sec, order.get(section))}
    raw_outputs = as_list(d.get("output"))
    outputs = [o[:200] if isinstance(o, str) else COMBO for o in raw_outputs]
    trimmed: dict[str, Any] = {"input": out_in, "output": outputs}
    names = d.get("output_name")
    if isinstance(names, list) and names and [str(n) for n in names] != outputs:
        trimmed["output_name"] = [str(n)[:200] for n in names]
    if d.get("output_node"):
        trimmed["output_node"] = True
    display = d.get("display_name")
    if isinstance(display, str) and display and display != d.get("name"):
        trimmed["display_name"] = display[:200]
    if d.get("deprecated") is True:
        trimmed["deprecated"] = True
    trimmed.update(extra or {})
    return trimmed


# ----------------------------------------------------------------------------------------------
# Parsed views

@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str                     # INT FLOAT STRING BOOLEAN COMBO, or a link type (MODEL, CONDITIONING, ...)
    options: dict
    choices: tuple = ()           # COMBO only; empty when `open`
    required: bool = True

    @property
    def is_combo(self) -> bool:
        return self.type == COMBO

    @property
    def is_widget(self) -> bool:
        """A value typed in the node (as opposed to a socket fed by a link)."""
        return (self.type in PRIMITIVE_TYPES or self.is_combo) and not self.options.get("forceInput")

    @property
    def open_choices(self) -> bool:
        return self.is_combo and (bool(self.options.get("open")) or not self.choices)

    @property
    def min(self):
        return self.options.get("min")

    @property
    def max(self):
        return self.options.get("max")

    @property
    def default(self):
        return self.options.get("default")

    @property
    def multiline(self) -> bool:
        return bool(self.options.get("multiline"))

    @property
    def image_upload(self) -> bool:
        return bool(self.options.get("image_upload"))

    @property
    def control_after_generate(self) -> bool:
        """Whether the UI adds the hidden "control_after_generate" widget after this input. The
        frontend's rule: the explicit flag if present, else INT inputs named seed/noise_seed."""
        if self.type != "INT":
            return False
        flag = self.options.get("control_after_generate")
        if flag is not None:
            return bool(flag)
        return self.name in ("seed", "noise_seed")

    @property
    def seed_like(self) -> bool:
        """An INT the engine should randomize: named seed/noise_seed, or flagged by its node."""
        if self.type != "INT":
            return False
        return self.name in ("seed", "noise_seed") or bool(self.options.get("control_after_generate"))


@dataclass
class NodeDef:
    class_type: str
    inputs: dict[str, InputSpec]          # required then optional, in the definition's order
    outputs: list[str]
    output_names: list[str]
    output_node: bool = False
    display_name: str = ""
    deprecated: bool = False              # ComfyUI's own flag
    bizyair_deprecated: bool = False      # bizyengine replaces the node's function by an error stub
    source: str = "bundled"               # bundled | live

    @classmethod
    def parse(cls, class_type: str, d: dict, source: str = "bundled") -> NodeDef:
        inputs: dict[str, InputSpec] = {}
        raw_inputs = d.get("input") or {}
        order = d.get("input_order") or {}
        outputs_raw = as_list(d.get("output"))
        for section in ("required", "optional"):
            sec = raw_inputs.get(section) if isinstance(raw_inputs, dict) else None
            if not isinstance(sec, dict):
                continue
            for name in _ordered_names(sec, order.get(section) if isinstance(order, dict) else None):
                inputs[name] = _parse_spec(name, sec[name], section == "required")
        outputs = [o if isinstance(o, str) else COMBO for o in outputs_raw]
        raw_names = d.get("output_name")
        names = [str(n)[:200] for n in raw_names] if isinstance(raw_names, list) else list(outputs)
        return cls(class_type=class_type, inputs=inputs, outputs=outputs, output_names=names,
                   output_node=bool(d.get("output_node")), display_name=str(d.get("display_name") or ""),
                   deprecated=bool(d.get("deprecated") is True), bizyair_deprecated=class_type in BIZYAIR_DEPRECATED,
                   source=source)

    def input(self, name: str) -> InputSpec | None:
        return self.inputs.get(name)

    def widgets(self) -> list[InputSpec]:
        return [s for s in self.inputs.values() if s.is_widget]

    def output_type(self, slot: int) -> str | None:
        return self.outputs[slot] if 0 <= slot < len(self.outputs) else None

    def output_name(self, slot: int) -> str | None:
        return self.output_names[slot] if 0 <= slot < len(self.output_names) else None


def _ordered_names(section: dict, order: Any) -> list[str]:
    """The section's input names in `order` first (ComfyUI's input_order), then the rest; any
    shape of `order` is accepted, in linear time."""
    listed = [n for n in order if isinstance(n, str) and n in section] if isinstance(order, list) else []
    seen = set(listed)
    return list(dict.fromkeys(listed)) + [n for n in section if n not in seen]


def _parse_spec(name: str, spec: Any, required: bool) -> InputSpec:
    if not isinstance(spec, (list, tuple)) or not spec:
        return InputSpec(name, "*", {}, required=required)
    spec = list(spec)
    choices, opts = _combo_choices(spec)
    opts = dict(opts)
    if choices is not None:
        opts.pop("options", None)
        if _is_open_list(choices, opts):
            opts["open"] = True
            choices = []
        return InputSpec(name, COMBO, opts, tuple(choices), required)
    head = spec[0] if isinstance(spec[0], str) else "*"
    return InputSpec(name, head, opts, (), required)


# ----------------------------------------------------------------------------------------------
# The bundled data and the process-wide live cache

_bundled_lock = threading.Lock()
_bundled: dict[str, dict] | None = None


def load_bundled(path: Path = BUNDLED_PATH) -> dict[str, dict]:
    global _bundled
    with _bundled_lock:
        if _bundled is None or path != BUNDLED_PATH:
            data = json.loads(path.read_text(encoding="utf-8"))
            classes = data.get("classes", data)
            if path != BUNDLED_PATH:
                return classes
            _bundled = classes
        return _bundled


_PACK_CODES: dict[str, list] = {
    "S": ["STRING", {}], "Sm": ["STRING", {"multiline": True}], "Sf": ["STRING", {"forceInput": True}],
    "I": ["INT"], "F": ["FLOAT"], "B": ["BOOLEAN"], "C": [[], {"open": True}],
}
_packs_lock = threading.Lock()
_packs: dict[str, dict] | None = None


def _expand_pack_input(code: str) -> list:
    if code in _PACK_CODES:
        return json.loads(json.dumps(_PACK_CODES[code]))
    if code.startswith("s:"):      # a seed INT with its bounds: "s:min:max" (either may be empty)
        _, lo, hi = (code.split(":") + ["", ""])[:3]
        opts: dict[str, Any] = {"control_after_generate": True}
        if lo.lstrip("-").isdigit():
            opts["min"] = int(lo)
        if hi.lstrip("-").isdigit():
            opts["max"] = int(hi)
        return ["INT", opts]
    return [code]


def load_pack_defs(path: Path = PACK_DEFS_PATH) -> dict[str, dict]:
    """The pack definitions in /object_info shape ({"input": {"required": ...}, "output": ..., "output_name": ...}),
    expanded from the compact file. Loaded once; {} when the file is missing."""
    global _packs
    with _packs_lock:
        if _packs is not None and path == PACK_DEFS_PATH:
            return _packs
        try:
            raw = json.loads(path.read_text(encoding="utf-8")).get("classes", {})
        except (OSError, ValueError):
            raw = {}
        classes: dict[str, dict] = {}
        for name, d in raw.items():
            if not isinstance(d, dict):
                continue
            out = [str(o) for o in d.get("o", [])]
            entry: dict[str, Any] = {"input": {"required": {n: _expand_pack_input(str(c))
                                                            for n, c in (d.get("i") or {}).items()}},
                                     "output": out}
            if d.get("n"):
                entry["output_name"] = [str(n) for n in d["n"]]
            classes[name] = entry
        if path == PACK_DEFS_PATH:
            _packs = classes
        return classes


class _LiveCache:
    """Bounded LRU of live definitions keyed by (server identity, class), each kept for `ttl`
    seconds: a custom node upgraded on the server is seen within that time. None = server lacks it."""

    def __init__(self, limit: int = 4096, ttl: float = LIVE_TTL, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.ttl = ttl
        self.clock = clock
        self._data: OrderedDict[tuple[str, str], tuple[float, dict | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[bool, dict | None]:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return False, None
            if self.clock() - item[0] > self.ttl:
                del self._data[key]
                return False, None
            self._data.move_to_end(key)
            return True, item[1]

    def put(self, key: tuple[str, str], value: dict | None) -> None:
        with self._lock:
            self._data[key] = (self.clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.limit:
                self._data.popitem(last=False)

    def forget_server(self, server: str) -> int:
        """Drop every definition of one server (ComfyUI rejected a workflow for an unknown class
        or input: what we cached may be stale). Returns how many were dropped."""
        with self._lock:
            stale = [k for k in self._data if k[0] == server]
            for k in stale:
                del self._data[k]
            return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


LIVE_CACHE = _LiveCache()


class NodeInfo:
    """Per-class definitions: bundled data, optionally completed (or overruled) by the live server.

    `fetch(class_type) -> dict | None` returns the class's definition (`{}`/None when the server does
    not know it). `live_first` names classes whose live definition should win over the bundled one
    (e.g. loaders whose model lists differ per server); `True` means every class.
    """

    def __init__(self, fetch: Callable[[str], dict | None] | None = None, *, server: str = "",
                 live_first: Iterable[str] | bool = (), bundled: dict[str, dict] | None = None):
        self._bundled = load_bundled() if bundled is None else bundled
        self._fetch = fetch
        self._server = server or "default"
        self._live_first = live_first if isinstance(live_first, bool) else set(live_first)
        self._parsed: dict[tuple[str, str], NodeDef | None] = {}
        self._fetch_broken = False   # one failure: the server is down or hostile; stop asking

    # -- lookups --
    def get(self, class_type: str, *, live: bool = False) -> NodeDef | None:
        """The definition of `class_type`, or None when no source knows it. `live=True` asks the
        server first even when the bundled data has the class."""
        bundled = self._bundled.get(class_type)
        if self._fetch and (live or self._wants_live(class_type)):
            found, d = self._live(class_type)
            if found and d:
                parsed = self._parse(class_type, d, "live")
                if parsed is not None:
                    return parsed
        if bundled is not None:
            return self._parse(class_type, bundled, "bundled")
        return None

    def __contains__(self, class_type: str) -> bool:
        return self.get(class_type) is not None

    def prefetch(self, class_types: Iterable[str]) -> None:
        """Warm the cache for the classes of one workflow: the ones that will be asked live are
        asked at once (a few at a time), not one after another."""
        wanted = [c for c in dict.fromkeys(class_types) if isinstance(c, str) and self._wants_live(c)]
        if self._fetch is None or len(wanted) < 2:
            for c in wanted:
                self.get(c)
            return
        with ThreadPoolExecutor(max_workers=min(LOOKUP_WORKERS, len(wanted)),
                                thread_name_prefix="comfy-object-info") as pool:
            list(pool.map(self._live, wanted))

    def forget_live(self) -> int:
        """Drop this server's cached definitions; the next lookups ask it again."""
        self._parsed = {k: v for k, v in self._parsed.items() if k[0] != "live"}
        return LIVE_CACHE.forget_server(self._server)

    @property
    def used_live(self) -> bool:
        """Whether any definition came from the server (and may be stale)."""
        return any(k[0] == "live" for k in self._parsed)

    def _wants_live(self, class_type: str) -> bool:
        want_live = self._live_first is True or (
            isinstance(self._live_first, set) and class_type in self._live_first)
        return want_live or class_type not in self._bundled

    def known(self) -> set[str]:
        return set(self._bundled)

    # -- internals --
    def _parse(self, class_type: str, d: dict, source: str) -> NodeDef | None:
        key = (source, class_type)
        if key not in self._parsed:
            try:
                self._parsed[key] = NodeDef.parse(class_type, d, source)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError):
                # A definition in a shape we cannot read counts as unknown, never as a crash.
                log.info("definition of %s in an unexpected form; ignored", class_type[:80])
                self._parsed[key] = None
        return self._parsed[key]

    def _live(self, class_type: str) -> tuple[bool, dict | None]:
        key = (self._server, class_type)
        hit, value = LIVE_CACHE.get(key)
        if hit:
            return True, value
        if self._fetch_broken or self._fetch is None:
            return False, None
        try:
            raw = self._fetch(class_type)
        except Exception as exc:  # any failure: fall back to bundled data, quietly
            log.debug("object_info/%s failed (%s); using bundled definitions", class_type, type(exc).__name__)
            self._fetch_broken = True
            return False, None
        try:
            value = trim_definition(raw) if isinstance(raw, dict) and raw else None
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):
            value = None   # a definition in a shape we cannot read counts as unknown
        LIVE_CACHE.put(key, value)
        return True, value

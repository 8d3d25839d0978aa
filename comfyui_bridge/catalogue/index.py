"""The generated catalogue (data/catalogue/, written by scripts/make_catalogue.py), read into
dataclasses: per tool, its models, each with its node class, workflow file, image inputs and the
options it takes."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "catalogue"
INDEX_PATH = DATA_DIR / "index.json"
TOOL_NAMES = ("edit_image", "text_to_video", "image_to_video")


@dataclass(frozen=True)
class OptionSpec:
    """One tool option (aspect_ratio, resolution, count, duration, audio) on one model's node."""

    name: str
    input: str                    # the node input it sets
    kind: str                     # choice | fixed | range | flag | size
    values: tuple = ()            # choice / fixed: what the definition lists (minus `exclude`)
    exclude: tuple = ()           # choices the tool does not offer (e.g. "Custom")
    min: float | None = None      # range
    max: float | None = None
    default: Any = None
    aliases: dict[str, str] = field(default_factory=dict)   # the tool's word → the node's
    table: dict[str, dict[str, str]] = field(default_factory=dict)   # size: {aspect: {resolution: "W*H"}}

    @classmethod
    def parse(cls, name: str, raw: dict) -> OptionSpec:
        return cls(name=name, input=raw["input"], kind=raw["kind"], values=tuple(raw.get("values") or ()),
                   exclude=tuple(raw.get("exclude") or ()), min=raw.get("min"), max=raw.get("max"),
                   default=raw.get("default"), aliases=dict(raw.get("aliases") or {}),
                   table={a: dict(t) for a, t in (raw.get("table") or {}).items()})


@dataclass(frozen=True)
class ImageSpec:
    """Where input images go: `inputs` in order; with `count_input`, BizyAir's dynamic form (the
    first image on inputs[0], the n-th on pattern.format(n=n), their number in count_input)."""

    minimum: int
    maximum: int
    inputs: tuple[str, ...]
    pattern: str = ""
    count_input: str = ""

    def input_for(self, index: int) -> str:
        """The node input of image number `index` (0-based)."""
        if index < len(self.inputs):
            return self.inputs[index]
        return self.pattern.format(n=index + 1)

    @classmethod
    def parse(cls, raw: dict | None) -> ImageSpec | None:
        if not raw:
            return None
        return cls(int(raw["min"]), int(raw["max"]), tuple(raw["inputs"]), raw.get("pattern", ""),
                   raw.get("count_input", ""))


@dataclass(frozen=True)
class Model:
    tool: str
    key: str
    label: str
    class_type: str
    workflow: str                 # path under data/catalogue/workflows/
    node: str                     # id of the model's node in the workflow
    prompt: str                   # its prompt input
    negative: str | None
    images: ImageSpec | None
    options: dict[str, OptionSpec]
    fixed: dict[str, Any]
    replacement: str

    @property
    def described(self) -> str:
        """How messages name the model: its key and its node class."""
        return f"'{self.key}' ({self.class_type})"

    def load_workflow(self) -> dict:
        return copy.deepcopy(_workflow(self.workflow))


@dataclass(frozen=True)
class ToolCatalogue:
    name: str
    default: str
    options: tuple[str, ...]
    models: dict[str, Model]

    def taking(self, option: str) -> list[str]:
        """The models that take `option` (or a negative prompt, for "negative_prompt")."""
        if option == "negative_prompt":
            return [k for k, m in self.models.items() if m.negative]
        return [k for k, m in self.models.items() if option in m.options]


_lock = threading.Lock()
_loaded: dict[str, ToolCatalogue] | None = None
_workflows: dict[str, dict] = {}


def catalogue() -> dict[str, ToolCatalogue]:
    """The catalogue, read once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _parse(json.loads(INDEX_PATH.read_text(encoding="utf-8")))
        return _loaded


def tool_catalogue(tool: str) -> ToolCatalogue:
    return catalogue()[tool]


def _parse(data: dict) -> dict[str, ToolCatalogue]:
    out = {}
    for tool, conf in data["tools"].items():
        models = {}
        for key, raw in conf["models"].items():
            models[key] = Model(
                tool=tool, key=key, label=raw["label"], class_type=raw["class_type"], workflow=raw["workflow"],
                node=raw["node"], prompt=raw["prompt"], negative=raw.get("negative"),
                images=ImageSpec.parse(raw.get("images")),
                options={n: OptionSpec.parse(n, o) for n, o in (raw.get("options") or {}).items()},
                fixed=dict(raw.get("fixed") or {}), replacement=raw.get("replacement") or "")
        out[tool] = ToolCatalogue(tool, conf["default"], tuple(conf["options"]), models)
    return out


def _workflow(rel: str) -> dict:
    with _lock:
        if rel not in _workflows:
            _workflows[rel] = json.loads((DATA_DIR / "workflows" / rel).read_text(encoding="utf-8"))
        return _workflows[rel]

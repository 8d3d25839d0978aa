"""Workflows shipped with the plugin, for users who have none of their own (BizyAir text-to-image).

The size target is found by type, not by id: the node that makes the empty latent (outputs LATENT,
has width/height widgets, takes no input links), so a re-exported file with new ids still works.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .models import InputChange
from .nodeinfo import NodeInfo
from .workflow import Workflow

DATA_DIR = Path(__file__).parent / "data" / "workflows"
LATENT_SIZE_CLASSES = ("EmptyLatentImage", "EmptySD3LatentImage", "EmptyHunyuanLatentVideo",
                       "EmptyLTXVLatentVideo", "EmptyMochiLatentVideo", "EmptyCosmosLatentVideo")


@dataclass(frozen=True)
class BuiltinModel:
    file: str
    label: str
    size: tuple[int, int] = (1024, 1024)     # default width, height
    note: str = ""

    @property
    def path(self) -> Path:
        return DATA_DIR / self.file


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "sdxl": BuiltinModel("sdxl_ksampler_txt2img_api.json", "SDXL (Juggernaut XL v9)"),
    "flux_dev": BuiltinModel("flux_dev_custom_sampler_txt2img_api.json", "FLUX.1 dev"),
    "kolors": BuiltinModel(
        "kolors_txt2img_api.json", "Kolors",
        note="Uses BizyAir_MinusZoneChatGLM3TextEncode, which bizyengine 1.2.114 lists but refuses at run "
             "time (\"This node is deprecated\"); it only works on older BizyAir versions."),
}


def load_builtin(model: str) -> dict:
    """A fresh copy of the built-in workflow `model` (a key of BUILTIN_MODELS)."""
    spec = BUILTIN_MODELS.get(model)
    if spec is None:
        raise InputError(f"Unknown built-in model \"{model}\". Choose one of: {', '.join(BUILTIN_MODELS)}.",
                         message_zh=f"未知的内置模型「{model}」，可选：{', '.join(BUILTIN_MODELS)}。")
    return json.loads(spec.path.read_text(encoding="utf-8"))


def find_size_node(graph: dict, nodeinfo: NodeInfo | None = None) -> str | None:
    """The node whose width/height set the image size: an empty-latent maker, found by type."""
    wf = Workflow(graph)
    info = nodeinfo or NodeInfo()
    found = []
    for nid in wf.ids():
        inputs = wf.node(nid).get("inputs", {})
        if not all(isinstance(inputs.get(k), int) for k in ("width", "height")) or wf.links_to(nid):
            continue
        d = info.get(wf.class_of(nid))
        if (d is not None and d.outputs == ["LATENT"]) or wf.class_of(nid) in LATENT_SIZE_CLASSES:
            found.append(nid)
    return found[0] if len(found) == 1 else None


def apply_size(graph: dict, width: int, height: int, nodeinfo: NodeInfo | None = None) -> list[InputChange]:
    """Set the image size on the size node (in place). Raises InputError when there is none or the
    size is out of the node's bounds."""
    from .overrides import check_value
    info = nodeinfo or NodeInfo()
    nid = find_size_node(graph, info)
    if nid is None:
        raise InputError("This workflow has no single empty-latent node to set the image size on.",
                         message_zh="该工作流没有唯一的空 Latent 节点，无法设置图片尺寸。")
    wf = Workflow(graph)
    d = info.get(wf.class_of(nid))
    changes = []
    for name, value in (("width", width), ("height", height)):
        spec = d.input(name) if d else None
        if spec is not None:
            value = check_value(f"{name} of {wf.describe(nid)}", spec, value)
        wf.set(nid, name, value)
        changes.append(InputChange(nid, name, "override", value))
    return changes

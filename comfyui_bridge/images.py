"""Which nodes receive the user's images, and writing the uploaded names into them.

A slot is an input of a LoadImage-like node: any class whose definition marks an input with
`image_upload` (LoadImage, LoadImageMask, custom loaders), or LoadImage/LoadImageMask by name when
the definition is missing. Loaders that read another folder (LoadImageOutput reads `output/`)
are not slots: an uploaded file lands in `input/`. Slots are filled in node id order (numeric-aware)
or in the order the caller lists them. The engine uploads and names the files (`dify_<uuid>.<ext>`);
this module only places the names.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .models import InputChange
from .nodeinfo import NodeInfo
from .workflow import Workflow

KNOWN_LOADERS = {"LoadImage": "image", "LoadImageMask": "image"}


@dataclass(frozen=True)
class ImageSlot:
    node_id: str
    input: str


def upload_input(graph: dict, nodeinfo: NodeInfo, node_id: str) -> str | None:
    """The input of `node_id` that takes an uploaded image file, or None."""
    wf = Workflow(graph)
    cls = wf.class_of(node_id)
    d = nodeinfo.get(cls)
    if d is not None:
        for spec in d.inputs.values():
            if spec.image_upload and spec.options.get("image_folder", "input") == "input":
                return spec.name
        return None
    return KNOWN_LOADERS.get(cls)


def find_image_slots(graph: dict, nodeinfo: NodeInfo, image_nodes: list[str] | tuple = ()) -> list[ImageSlot]:
    """The slots images go to: those of `image_nodes` (ids, titles, "<id>.<input>") in that order,
    else every LoadImage-like node in id order."""
    wf = Workflow(graph)
    if not image_nodes:
        slots = []
        for nid in wf.ids():
            name = upload_input(graph, nodeinfo, nid)
            if name and not Workflow.is_link(wf.get(nid, name)):
                slots.append(ImageSlot(nid, name))
        return slots
    slots = []
    for spec in image_nodes:
        nid, name = wf.resolve(str(spec))
        upload = upload_input(graph, nodeinfo, nid)
        if name is None:
            name = upload
        if name is None or (upload is None and name not in wf.node(nid).get("inputs", {})):
            raise InputError(
                f"image_nodes lists {wf.describe(nid)}, which does not load an uploaded image. "
                f"LoadImage-like nodes in this workflow: {_loaders(graph, nodeinfo) or 'none'}.",
                message_zh=f"image_nodes 中的节点 {nid} 不是加载图片（LoadImage）节点。")
        slot = ImageSlot(nid, name)
        if slot in slots:
            raise InputError(f"image_nodes lists {nid}.{name} twice.", message_zh=f"image_nodes 重复列出了 {nid}。")
        slots.append(slot)
    return slots


def check_image_count(graph: dict, slots: list[ImageSlot], count: int) -> list[str]:
    """Raise InputError when the images cannot all be placed; warnings for slots left as they are."""
    if count == 0:
        return []
    if not slots:
        raise InputError(
            f"{count} image(s) were given, but the workflow has no LoadImage node to put them in. "
            "Add a Load Image node, or run without images.",
            message_zh=f"提供了 {count} 张图片，但工作流中没有 LoadImage（加载图像）节点。")
    if count > len(slots):
        raise InputError(
            f"{count} images were given, but the workflow has only {len(slots)} LoadImage slot(s): "
            f"{', '.join(Workflow(graph).describe(s.node_id) for s in slots)}. Give at most {len(slots)} image(s).",
            message_zh=f"提供了 {count} 张图片，但工作流只有 {len(slots)} 个 LoadImage 节点。")
    if count < len(slots):
        rest = ", ".join(s.node_id for s in slots[count:])
        return [f"{count} image(s) for {len(slots)} LoadImage nodes: node(s) {rest} keep the file named in the workflow."]
    return []


def place_images(graph: dict, slots: list[ImageSlot], names: list[str]) -> list[InputChange]:
    """Write uploaded file names into the slots, in order (in place)."""
    wf = Workflow(graph)
    changes = []
    for slot, name in zip(slots, names):
        wf.set(slot.node_id, slot.input, name)
        changes.append(InputChange(slot.node_id, slot.input, "image", name))
    return changes


def rename_images(graph: dict, changes: list[InputChange], names: list[str]) -> None:
    """After the upload: the names ComfyUI gave the files replace the placeholders a plan was made
    with (in place; `changes` are the plan's "image" changes, in slot order)."""
    wf = Workflow(graph)
    for change, name in zip([c for c in changes if c.role == "image"], names, strict=False):
        wf.set(change.node_id, change.input_name, name)
        change.value = name


def _loaders(graph: dict, nodeinfo: NodeInfo) -> str:
    wf = Workflow(graph)
    return ", ".join(wf.describe(n) for n in wf.ids() if upload_input(graph, nodeinfo, n))

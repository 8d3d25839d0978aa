"""BizyAir's cloud catalogue as ready-made runs: image editing and video models, each a generated
workflow (data/catalogue/, from scripts/make_catalogue.py) whose options are checked against the
model's node definition before anything is queued; and what a server offers (`capabilities`).

    from comfyui_bridge.catalogue import build
    built = build("edit_image", "nanobanana", image_count=2, options={"aspect_ratio": "16:9"})
    RunRequest(workflow=built.graph, prompt=..., prompt_node=built.prompt_node, image_nodes=built.image_nodes, ...)
"""

from .build import (
    Built,
    attach_images,
    build,
    check_image_count,
    choose_model,
    refuse_retired,
    resolve_options,
    retired,
)
from .index import TOOL_NAMES, ImageSpec, Model, OptionSpec, ToolCatalogue, catalogue, tool_catalogue

__all__ = [
    "Built", "build", "attach_images", "check_image_count", "choose_model", "refuse_retired", "resolve_options",
    "retired", "TOOL_NAMES", "ImageSpec", "Model", "OptionSpec", "ToolCatalogue", "catalogue", "tool_catalogue",
]

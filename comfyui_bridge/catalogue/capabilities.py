"""What one ComfyUI server offers, asked cheaply: the catalogue models whose node it has, BizyAir's
model and LoRA lists, its checkpoints, LoRAs and samplers, and its node packs.

Only per-class `/object_info/<Class>` lookups (a few at a time), `/extensions` and the BizyAir key
check are used. Never the full `/object_info`: on a BizyAir container whose cloud is unreachable it
freezes the whole server for about 80 s (two classes, BizyAir_TRD_LLM_API and BizyAir_TRD_VLM_API,
retry their cloud model list inside INPUT_TYPES; even those two are never asked for here).

Every name comes from the server: each is cut, made plain and counted, every list is bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import bizyair
from ..client import ComfyClient
from ..deadline import Deadline
from ..errors import BridgeError
from ..media import plain
from .index import catalogue

log = logging.getLogger(__name__)

LOOKUP_WORKERS = 4
MAX_NAMES = 200              # names kept per list
NAME_CHARS = 160
LOOKUP_BUDGET = 20.0         # seconds for all class lookups together
# Classes whose INPUT_TYPES calls the BizyAir cloud with retries (40 s each while it is unreachable).
NEVER_ASK = frozenset({"BizyAir_TRD_LLM_API", "BizyAir_TRD_VLM_API"})

# Plain ComfyUI: (class, input) → the list it names.
COMFY_LISTS = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
    "loras": ("LoraLoader", "lora_name"),
    "diffusion_models": ("UNETLoader", "unet_name"),
    "vaes": ("VAELoader", "vae_name"),
    "samplers": ("KSampler", "sampler_name"),
    "schedulers": ("KSampler", "scheduler"),
}
# BizyAir: the cloud's model lists, as its loader nodes define them.
BIZYAIR_LISTS = {
    "diffusion_models": ("BizyAir_UNETLoader", "unet_name"),
    "vaes": ("BizyAir_VAELoader", "vae_name"),
    "text_encoders": ("BizyAir_DualCLIPLoader", "clip_name1"),
    "controlnets": ("BizyAir_ControlNetLoader_Legacy", "control_net_name"),
    "upscale_models": ("BizyAir_UpscaleModelLoader", "model_name"),
    "loras": ("BizyAir_LoraLoader_Legacy", "lora_name"),
    "samplers": ("BizyAir_KSamplerSelect", "sampler_name"),
}
# Lists that are placeholders filled at run time (BizyAir's model browser), not models.
PLACEHOLDERS = {"to choose"}
# Known packs without a web extension, found by one class each: class → pack name.
MARKER_CLASSES = {
    "BizyAir_KSampler": "BizyAir",
    "OpenAIGPTImage1": "ComfyUI partner API nodes (comfy_api_nodes)",
    "VHS_VideoCombine": "ComfyUI-VideoHelperSuite",
    "ImpactWildcardProcessor": "ComfyUI-Impact-Pack",
    "easy seed": "ComfyUI-Easy-Use",
    "IPAdapterUnifiedLoader": "ComfyUI_IPAdapter_plus",
    "ControlNetPreprocessorSelector": "comfyui_controlnet_aux",
}
PARTNER_PROBE = "OpenAIGPTImage1"


@dataclass
class Capabilities:
    kind: str = "comfyui"                       # "bizyair" | "comfyui"
    comfyui_version: str = ""
    bizyair_key: str = ""                       # KEY_* of bizyair.diagnosis, "" on plain ComfyUI
    bizyair_ready: bool = False
    models: dict[str, list[str]] = field(default_factory=dict)        # tool → catalogue models the server has
    missing: dict[str, list[str]] = field(default_factory=dict)       # tool → models whose node it lacks
    lists: dict[str, list[str]] = field(default_factory=dict)         # checkpoints, loras, samplers, …
    counts: dict[str, int] = field(default_factory=dict)              # full length of each list
    node_packs: list[str] = field(default_factory=list)
    partner_nodes: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "comfyui_version": self.comfyui_version, "bizyair_key": self.bizyair_key,
                "bizyair_ready": self.bizyair_ready, "models": self.models, "missing": self.missing,
                "lists": self.lists, "counts": self.counts, "node_packs": self.node_packs,
                "partner_nodes": self.partner_nodes, "notes": self.notes}


def discover(client: ComfyClient, deadline: Deadline, *, server_mode_key: bool = False) -> Capabilities:
    """What `client`'s server offers. Raises the client's BridgeError when the server is unreachable
    or not ComfyUI; everything after that is best effort (a failed lookup leaves a note)."""
    diagnosis = bizyair.diagnose(client, server_mode_key, deadline.within(25.0))
    caps = Capabilities(comfyui_version=plain(diagnosis.comfyui_version, 40))
    if diagnosis.bizyair_installed:
        caps.kind = "bizyair"
        caps.bizyair_key = diagnosis.key_state
        caps.bizyair_ready = diagnosis.ok
    lists = BIZYAIR_LISTS if caps.kind == "bizyair" else COMFY_LISTS
    classes = {cls for cls, _ in lists.values()} | set(MARKER_CLASSES)
    if caps.kind == "bizyair":
        classes |= {m.class_type for tool in catalogue().values() for m in tool.models.values()}
    found = lookup(client, sorted(classes - NEVER_ASK), deadline.within(LOOKUP_BUDGET))
    failed = [c for c, d in found.items() if d is None]
    if failed:
        caps.notes.append(f"{len(failed)} node definition(s) could not be read; the lists may be incomplete.")
    for name, (cls, input_name) in lists.items():
        names = choices(found.get(cls), input_name)
        caps.counts[name] = len(names)
        caps.lists[name] = names[:MAX_NAMES]
    if caps.kind == "bizyair":
        for tool_name, tool in catalogue().items():
            caps.models[tool_name] = [k for k, m in tool.models.items() if found.get(m.class_type)]
            caps.missing[tool_name] = [k for k, m in tool.models.items() if found.get(m.class_type) == {}]
    caps.partner_nodes = bool(found.get(PARTNER_PROBE))
    caps.node_packs = node_packs(client, found, deadline)
    return caps


def lookup(client: ComfyClient, classes: list[str], deadline: Deadline) -> dict[str, dict | None]:
    """{class: definition ({} when the server lacks it, None when the lookup failed)}, a few at a time."""
    def one(cls: str) -> tuple[str, dict | None]:
        if cls in NEVER_ASK:
            return cls, None
        try:
            return cls, client.object_info(cls, deadline=deadline)
        except BridgeError as exc:
            log.info("object_info/%s failed: %s", cls[:80], exc.code)
            return cls, None
    if not classes:
        return {}
    with ThreadPoolExecutor(max_workers=min(LOOKUP_WORKERS, len(classes)),
                            thread_name_prefix="comfy-capabilities") as pool:
        return dict(pool.map(one, classes))


def choices(definition: dict | None, input_name: str) -> list[str]:
    """The names a combo input lists (old `[[…], {…}]` and new `["COMBO", {"options": […]}]` forms),
    plain and cut, placeholders dropped. [] for anything else."""
    if not isinstance(definition, dict):
        return []
    inputs = definition.get("input")
    if not isinstance(inputs, dict):
        return []
    for section in ("required", "optional"):
        entries = inputs.get(section)
        spec = entries.get(input_name) if isinstance(entries, dict) else None
        if not isinstance(spec, list) or not spec:
            continue
        raw = spec[0]
        if raw == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            raw = spec[1].get("options")
        if isinstance(raw, list):
            names = [plain(c, NAME_CHARS) for c in raw[: MAX_NAMES * 50] if isinstance(c, (str, int, float))]
            return [n for n in dict.fromkeys(names) if n and n not in PLACEHOLDERS]
    return []


def node_packs(client: ComfyClient, found: dict[str, dict | None], deadline: Deadline) -> list[str]:
    """Custom node packs: those with a web extension (/extensions lists /extensions/<pack>/…) and the
    known packs whose marker class the server has."""
    packs = [MARKER_CLASSES[c] for c in MARKER_CLASSES if found.get(c)]
    packs += extension_packs(_extensions(client, deadline))
    return list(dict.fromkeys(packs))[:MAX_NAMES]


def _extensions(client: ComfyClient, deadline: Deadline) -> Any:
    try:
        return client.get_json("/extensions", deadline=deadline.within(5.0), max_bytes=4 * 1024 * 1024)
    except BridgeError as exc:
        log.info("/extensions failed: %s", exc.code)
        return []


def extension_packs(paths: Any) -> list[str]:
    """Pack folder names from /extensions' answer (`["/extensions/<pack>/<file>.js", …]`); the
    frontend's own `core` folder is not a pack."""
    if not isinstance(paths, list):
        return []
    out: dict[str, None] = {}
    for path in paths[: MAX_NAMES * 50]:
        if not isinstance(path, str):
            continue
        parts = path.split("/")
        if len(parts) > 3 and parts[1] == "extensions" and parts[2] and parts[2] != "core":
            name = plain(parts[2], NAME_CHARS)
            if name:
                out[name] = None
    return list(out)


def summary(caps: Capabilities, comfy_org_key: bool, listed: int = 12) -> str:
    """A few short lines for an agent: what to call, with which model names."""
    lines: list[str] = []
    if caps.kind == "bizyair":
        state = "its BizyAir key works" if caps.bizyair_ready else "BizyAir runs will fail: check its BizyAir key"
        lines.append(f"BizyAir container ({state}).")
        for tool, keys in caps.models.items():
            default = catalogue()[tool].default
            named = [f"{k} (default)" if k == default else k for k in keys]
            lines.append(f"{tool} models: {', '.join(named) if named else 'none on this server'}.")
    else:
        version = f" {caps.comfyui_version}" if caps.comfyui_version else ""
        lines.append(f"Plain ComfyUI{version}, no BizyAir nodes: use comfyui_workflow with the models below.")
    for name in ("checkpoints", "diffusion_models", "loras", "samplers"):
        if name in caps.lists:
            lines.append(_listed(name, caps.lists[name], caps.counts.get(name, 0), listed))
    if caps.partner_nodes:
        lines.append("ComfyUI partner API nodes are installed; the Comfy.org API key is "
                     + ("set." if comfy_org_key else "not set (they will fail without it)."))
    if caps.node_packs:
        lines.append(f"Node packs: {', '.join(caps.node_packs[:listed])}"
                     + (f" and {len(caps.node_packs) - listed} more." if len(caps.node_packs) > listed else "."))
    return " ".join(lines + caps.notes)


def _listed(name: str, names: list[str], total: int, limit: int) -> str:
    label = name.replace("_", " ").capitalize()
    if not total:
        return f"{label}: none."
    shown = ", ".join(names[:limit])
    return f"{label} ({total}): {shown}" + (f", … ({total - limit} more in the JSON)." if total > limit else ".")


def first_answering(clients: list[Callable[[], ComfyClient]], work: Callable[[ComfyClient], Capabilities]
                    ) -> tuple[int, Capabilities]:
    """(index, result) of the first server that answers; the last server's error when none does."""
    last: BridgeError | None = None
    for index, make in enumerate(clients):
        client = make()
        try:
            return index, work(client)
        except BridgeError as exc:
            last = exc
        finally:
            client.close()
    raise last or BridgeError("No ComfyUI server is configured.")

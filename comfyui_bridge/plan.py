"""From a workflow and a request to the graph that gets queued: prompt, negative, seeds,
overrides, images — on a deep copy, every edit recorded, every problem raised before queueing.
"""

from __future__ import annotations

import copy
from typing import Any

from .bizyair.cache import cache_note
from .errors import InputError
from .images import check_image_count, find_image_slots, place_images
from .models import InputChange, Plan, RunRequest
from .nodeinfo import NodeInfo
from .overrides import apply_overrides, parse_overrides
from .seeds import apply_seeds, find_seed_slots
from .targeting import Analysis, Resolution, find_targets
from .workflow import Workflow, parse_workflow

FIXED_SEED_NOTE = ("The seed is fixed: identical inputs are served from ComfyUI's cache, so the same "
                   "result comes back.")


def build_plan(graph: dict, request: RunRequest, nodeinfo: NodeInfo, uploaded_images: list[str] | tuple = ()) -> Plan:
    """The graph to queue for `request`. Never mutates `graph`. Raises InputError on any problem."""
    g = copy.deepcopy(graph)
    nodeinfo.prefetch(node.get("class_type", "") for node in g.values() if isinstance(node, dict))
    plan = Plan(graph=g)
    analysis = find_targets(g, nodeinfo, request.prompt_node or "", request.negative_node or "")
    _apply_text(plan, analysis.positive, request.prompt, "prompt")
    _apply_text(plan, analysis.negative, request.negative_prompt, "negative")
    overrides = parse_overrides(g, nodeinfo, request.overrides)
    slots = find_image_slots(g, nodeinfo, request.image_nodes)
    plan.warnings += check_image_count(g, slots, len(uploaded_images) or len(request.images))
    overridden = {(o.node_id, o.input) for o in overrides}
    seeds = apply_seeds(g, nodeinfo, request.seed, skip=overridden)
    plan.changes += seeds
    seed_inputs = {(s.node_id, s.input) for s in find_seed_slots(graph, nodeinfo)}
    if (request.seed is not None and seeds) or overridden & seed_inputs:
        plan.warnings.append(FIXED_SEED_NOTE)
        bizyair_note = cache_note(True, any(str(n.get("class_type", "")).startswith("BizyAir")
                                            for n in g.values() if isinstance(n, dict)))
        if bizyair_note:
            plan.warnings.append(bizyair_note)
    elif request.seed is not None:
        plan.warnings.append("The seed was not used: the workflow has no seed input holding a number.")
    plan.changes += apply_overrides(g, overrides)
    plan.changes += place_images(g, slots, list(uploaded_images))
    plan.warnings += deprecated_warnings(g, nodeinfo)
    return plan


def _apply_text(plan: Plan, res: Resolution, text: str, role: str) -> None:
    if not text:
        return
    if res.error:
        raise res.error
    if not res.targets:
        if role == "prompt":
            plan.warnings.append(f"The prompt was not used: {res.reason or 'no node takes a prompt'}. "
                                 "The workflow ran with its own text; set prompt_node to choose a node.")
        else:
            plan.warnings.append(f"The negative prompt was not used: {res.reason or 'no node takes one'}.")
        return
    wf = Workflow(plan.graph)
    for t in res.targets:
        for name in t.inputs:
            wf.set(t.node_id, name, text)
            plan.changes.append(InputChange(t.node_id, name, role, text))


def deprecated_warnings(graph: dict, nodeinfo: NodeInfo) -> list[str]:
    """One warning per BizyAir class that current bizyengine lists but refuses at run time."""
    wf = Workflow(graph)
    by_class: dict[str, list[str]] = {}
    for nid in wf.ids():
        d = nodeinfo.get(wf.class_of(nid))
        if d is not None and d.bizyair_deprecated:
            by_class.setdefault(d.class_type, []).append(nid)
    return [f"Node(s) {', '.join(ids)} ({cls}) are deprecated in current BizyAir (bizyengine 1.2.x): the class is "
            "still listed but fails at run time with \"This node is deprecated, please use BizyAirPlus\". "
            "Replace it with a current node." for cls, ids in by_class.items()]


def output_nodes(graph: dict, nodeinfo: NodeInfo) -> list[str]:
    wf = Workflow(graph)
    out = []
    for nid in wf.ids():
        cls = wf.class_of(nid)
        d = nodeinfo.get(cls)
        if (d.output_node if d is not None else cls.startswith(("Save", "Preview"))):
            out.append(nid)
    return out


def inspect_workflow(graph: dict | str | bytes, nodeinfo: NodeInfo) -> dict[str, Any]:
    """What build_plan would do with this workflow, without a request:
    {"format", "positive", "positive_all", "negative", "seeds", "images", "outputs", "warnings"}.
    `graph` may be the raw file (API, UI or a {"prompt": ...} wrapper). Ambiguities are reported in
    "warnings" (with positive/negative null) instead of raised."""
    loaded = parse_workflow(graph, nodeinfo)
    g = loaded.graph
    warnings = list(loaded.notes)
    analysis: Analysis = find_targets(g, nodeinfo)
    for role, res in (("prompt", analysis.positive), ("negative prompt", analysis.negative)):
        if res.error:
            warnings.append(res.error.message)
        elif not res.targets and res.reason:
            warnings.append(f"No {role} target: {res.reason}.")
    try:
        images = [s.node_id for s in find_image_slots(g, nodeinfo)]
    except InputError as exc:   # pragma: no cover - automatic slots never raise
        images = []
        warnings.append(exc.message)
    warnings += deprecated_warnings(g, nodeinfo)
    pos, neg = analysis.positive.pairs(), analysis.negative.pairs()
    return {
        "format": loaded.format,
        "positive": pos[0] if pos else None,
        "positive_all": pos,
        "negative": neg[0] if neg else None,
        "seeds": [[s.node_id, s.input] for s in find_seed_slots(g, nodeinfo)],
        "images": images,
        "outputs": output_nodes(g, nodeinfo),
        "warnings": warnings,
    }

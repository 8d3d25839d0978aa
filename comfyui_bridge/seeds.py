"""Seeds: a fresh random value on every seed input for every run, unless the user fixes one.

An API export freezes the seed the UI had ("control_after_generate" does nothing outside the UI),
so an identical prompt would be served from ComfyUI's cache — and on BizyAir from the cloud's 7-day
result cache. Seed-like inputs are `seed`, `noise_seed`, and any INT input whose definition carries
`control_after_generate` (for generic primitives such as PrimitiveInt, only when they feed a seed), and
the one integer of a constant node whose every use is a seed input (INTConstant "Seed", Int Literal).
A seed input holding a placeholder string ("__RANDOM_INT__", "{{seed}}", "randomize") is a seed too: it
gets a number. So is such a string wrapped in a one-item list (["randomize"]): not a link (a link is
[node, slot]), and ComfyUI would refuse it as one. Only literal values are touched (a seed wired from
another node is that node's business).
Bounds come from each node's definition (for custom packs, the bundled pack definitions), and they differ a
lot on BizyAir (0..2^31-1 for API nodes, 0..2^64-1 for samplers, -1..2^31-1 where -1 means "random", a float 1e14
for CogView). A random seed is never negative: -1 would hand the choice back to a cloud node, and
then nobody could report the seed that was used.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from .errors import InputError
from .models import InputChange
from .nodeinfo import NodeDef, NodeInfo, load_pack_defs
from .workflow import Workflow

SEED_NAMES = ("seed", "noise_seed")
# Random seeds stay below 2^53 so they survive any JSON round trip through a double (JS frontends,
# cloud relays), while still being within every bound seen (the smallest max is 2^31-1, applied per node).
JSON_SAFE_MAX = 2 ** 53 - 1
# Without a definition the node's bounds are unknown; 2^31-1 is accepted by every seed input seen.
UNKNOWN_MAX = 2 ** 31 - 1


@dataclass(frozen=True)
class SeedSlot:
    node_id: str
    input: str
    min: int | None          # the definition's bounds (None: not stated / no definition)
    max: int | None

    @property
    def random_range(self) -> tuple[int, int]:
        lo = max(self.min or 0, 0)
        hi = min(self.max if self.max is not None else UNKNOWN_MAX, JSON_SAFE_MAX)
        return lo, hi


def find_seed_slots(graph: dict, nodeinfo: NodeInfo) -> list[SeedSlot]:
    """Seed-like inputs holding a literal integer (or a placeholder string), in node id order."""
    wf = Workflow(graph)
    seed_readers = _seed_readers(wf)
    packs = load_pack_defs()
    slots = []
    for nid in wf.ids():
        cls = wf.class_of(nid)
        d = nodeinfo.get(cls)
        if d is None and cls in packs:
            d = NodeDef.parse(cls, packs[cls], source="packs")
        inputs = wf.node(nid).get("inputs", {})
        ints = [n for n, v in inputs.items() if _is_int(v)]
        for name, value in inputs.items():
            placeholder = _is_placeholder(value) and _is_seed_name(name)
            if not (_is_int(value) or placeholder):
                continue
            spec = d.input(name) if d else None
            if spec is not None and spec.type not in ("INT", "*"):
                continue
            bounds = (_bound(spec.min, math.ceil), _bound(spec.max, math.floor)) if spec is not None else (None, None)
            if spec is not None and spec.seed_like and (name in SEED_NAMES or nid in seed_readers):
                slots.append(SeedSlot(nid, name, *bounds))
            elif _is_seed_name(name) and (spec is None or spec.type == "INT"):
                slots.append(SeedSlot(nid, name, *bounds))
            elif ints == [name] and nid in seed_readers:
                # A constant node whose one integer only ever feeds seeds (INTConstant "Seed", Int Literal).
                slots.append(SeedSlot(nid, name, *bounds))
    return slots


def random_seed(slot: SeedSlot) -> int:
    lo, hi = slot.random_range
    if hi < lo:   # a definition with no non-negative value in range; keep what is there
        raise ValueError("empty seed range")
    return lo + secrets.randbelow(hi - lo + 1)


def apply_seeds(graph: dict, nodeinfo: NodeInfo, fixed: int | None = None,
                skip: AbstractSet[tuple[str, str]] = frozenset()) -> list[InputChange]:
    """Set every seed input of `graph` (in place): `fixed` when given, else a fresh random value.
    Inputs in `skip` (set by overrides) are left alone. Raises InputError for a fixed seed outside a
    node's bounds, before changing anything."""
    wf = Workflow(graph)
    slots = [s for s in find_seed_slots(graph, nodeinfo) if (s.node_id, s.input) not in skip]
    if fixed is not None:
        value = check_fixed_seed(fixed, slots, wf)
        for s in slots:
            wf.set(s.node_id, s.input, value)
        return [InputChange(s.node_id, s.input, "seed", value) for s in slots]
    changes = []
    for s in slots:
        try:
            value = random_seed(s)
        except ValueError:
            continue
        wf.set(s.node_id, s.input, value)
        changes.append(InputChange(s.node_id, s.input, "seed", value))
    return changes


def check_fixed_seed(seed, slots: list[SeedSlot], wf: Workflow) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        elif isinstance(seed, str) and seed.strip().lstrip("-").isdigit():
            seed = int(seed.strip())
        else:
            raise InputError(f"The seed must be a whole number, not {seed!r}.",
                             message_zh="种子必须是整数。")
    if seed < 0:
        raise InputError(f"The seed must be 0 or more (got {seed}). Leave it empty for a random seed.",
                         message_zh=f"种子必须 ≥ 0（当前 {seed}）。留空则使用随机种子。")
    for s in slots:
        if (s.min is not None and seed < s.min) or (s.max is not None and seed > s.max):
            lo = s.min if s.min is not None else 0
            hi = s.max if s.max is not None else "∞"
            raise InputError(
                f"The seed {seed} is out of range for {wf.describe(s.node_id)}.{s.input}, which accepts "
                f"{max(lo, 0)}..{hi}. Use a smaller seed, or leave it empty for a random one.",
                message_zh=f"种子 {seed} 超出节点 {s.node_id}.{s.input} 的范围（{max(lo, 0)}..{hi}）。",
                detail={"node_id": s.node_id, "input": s.input, "min": s.min, "max": s.max})
    return seed


def _seed_readers(wf: Workflow) -> set[str]:
    """Nodes whose every consumer reads them through a seed input. A flagged INT that is not called
    seed (PrimitiveInt.value) is a seed only then: the same primitive may just as well hold a width or a
    step count. One pass over the links."""
    uses: dict[str, bool] = {}
    for cid in wf.ids():
        for name, (src, _) in wf.links_to(cid).items():
            uses[src] = uses.get(src, True) and "seed" in name.lower()
    return {n for n, only_seeds in uses.items() if only_seeds}


def _is_seed_name(name: str) -> bool:
    return name in SEED_NAMES


def _is_placeholder(value) -> bool:
    """A string, or a string alone in a list (["randomize"]; a link has two items)."""
    return isinstance(value, str) or (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound(value, rounding) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(rounding(value))

"""A submitted run that another call — maybe in another process, after a restart — collects.

A `Job` holds what collecting needs and nothing secret: which server (its URL, matched against
the credentials of the collecting call), the prompt and client ids, a skeleton of the graph (ids,
classes, titles and links only: enough to name nodes in messages and to find the BizyAir node
behind a failed output), the seeds and the notes made when it was planned. `to_dict`/`from_dict`
round-trip it through JSON; `from_dict` accepts any value and refuses what is not a job.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .jsonsafe import as_dict
from .models import InputChange, OutputRef, Plan
from .workflow import Workflow

__all__ = ["Job", "JobRecordError", "SKELETON_MAX_NODES", "new_job_id", "skeleton"]

SKELETON_MAX_NODES = 2000
_FORMAT = 1


class JobRecordError(InputError):
    code = "bad_job"


def new_job_id() -> str:
    """Random, unguessable and carrying nothing: `cj_` + 24 hex digits."""
    return "cj_" + secrets.token_hex(12)


def skeleton(graph: dict[str, Any]) -> dict[str, Any]:
    """The graph without its values: classes, titles and links (at most SKELETON_MAX_NODES nodes)."""
    out: dict[str, Any] = {}
    for node_id, node in list(graph.items())[:SKELETON_MAX_NODES]:
        if not isinstance(node, dict):
            continue
        meta = as_dict(node.get("_meta"))
        inputs = as_dict(node.get("inputs"))
        entry: dict[str, Any] = {"class_type": str(node.get("class_type", ""))[:120]}
        title = meta.get("title")
        if isinstance(title, str) and title:
            entry["_meta"] = {"title": title[:120]}
        links = {str(k)[:80]: [str(v[0])[:64], int(v[1])] for k, v in inputs.items() if Workflow.is_link(v)}
        entry["inputs"] = links
        out[str(node_id)[:64]] = entry
    return out


@dataclass
class Job:
    job_id: str
    server: str                         # the base URL it was queued on
    prompt_id: str
    client_id: str
    submitted_at: float                 # Unix time
    key_injected: bool = False          # BizyAir server mode: strip metadata, delete history
    graph: dict[str, Any] = field(default_factory=dict)      # skeleton()
    seeds: dict[str, int] = field(default_factory=dict)      # "<node>.<input>" -> value
    warnings: list[str] = field(default_factory=list)
    outputs: list[OutputRef] = field(default_factory=list)   # filled once the run was collected

    @classmethod
    def create(cls, server: str, prompt_id: str, client_id: str, plan: Plan, key_injected: bool) -> Job:
        return cls(job_id=new_job_id(), server=server, prompt_id=prompt_id, client_id=client_id,
                   submitted_at=time.time(), key_injected=key_injected, graph=skeleton(plan.graph),
                   seeds=plan.seeds(), warnings=list(plan.warnings)[:20])

    def plan(self) -> Plan:
        """A Plan good enough for building the result: node names, seeds, notes."""
        changes = []
        for key, value in self.seeds.items():
            node, _, name = key.rpartition(".")
            if node:
                changes.append(InputChange(node, name, "seed", value))
        return Plan(graph=self.graph, changes=changes, warnings=list(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, "job_id": self.job_id, "server": self.server, "prompt_id": self.prompt_id,
                "client_id": self.client_id, "submitted_at": self.submitted_at, "key_injected": self.key_injected,
                "graph": self.graph, "seeds": self.seeds, "warnings": self.warnings,
                "outputs": [[r.node_id, r.filename, r.subfolder, r.type, r.listed_under, r.animated]
                            for r in self.outputs]}

    @classmethod
    def from_dict(cls, data: Any) -> Job:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise JobRecordError("The job record cannot be read (it was written by another version, or damaged).",
                                 message_zh="无法读取任务记录（由其他版本写入，或已损坏）。")
        try:
            job = cls(job_id=_text(data, "job_id"), server=_text(data, "server"), prompt_id=_text(data, "prompt_id"),
                      client_id=_text(data, "client_id"), submitted_at=float(data["submitted_at"]),
                      key_injected=data.get("key_injected") is True,
                      graph=data["graph"] if isinstance(data.get("graph"), dict) else {},
                      seeds={str(k): v for k, v in (data.get("seeds") or {}).items() if isinstance(v, int)},
                      warnings=[str(w) for w in data.get("warnings") or [] if isinstance(w, str)][:20],
                      outputs=[OutputRef(str(o[0]), str(o[1]), str(o[2]), str(o[3]), str(o[4]), bool(o[5]))
                               for o in data.get("outputs") or [] if isinstance(o, list) and len(o) == 6])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise JobRecordError("The job record is damaged.", message_zh="任务记录已损坏。") from None
        return job


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise ValueError(name)
    return value

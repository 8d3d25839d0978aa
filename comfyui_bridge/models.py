"""Data passed between the engine's steps. Plain dataclasses, no behaviour beyond small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .deadline import Deadline
from .errors import BridgeError

DEFAULT_TIMEOUT = 240.0    # seconds a run may take when the caller does not say (tools, CLI, RunRequest)


@dataclass
class RunRequest:
    """What a caller (Dify tool, command line, benchmark) asks the engine to run."""

    workflow: dict[str, Any]                 # API-format graph, already parsed
    prompt: str = ""
    negative_prompt: str = ""
    prompt_node: str = ""                     # "", "<id>", "<id>.<input>" or a node title
    negative_node: str = ""
    seed: int | None = None                   # None: fresh random seed on every seed input
    overrides: dict[str, Any] | str = field(default_factory=dict)  # {"<node or title>.<input>": value} or its JSON
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, bytes) for LoadImage nodes
    image_nodes: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class InputChange:
    """One edit the engine made to the workflow (reported back to the user)."""

    node_id: str
    input_name: str
    role: str            # "prompt", "negative", "seed", "override", "image"
    value: Any = None


@dataclass
class Plan:
    """The ready-to-queue graph and what was changed in it."""

    graph: dict[str, Any]
    changes: list[InputChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def seeds(self) -> dict[str, int]:
        return {f"{c.node_id}.{c.input_name}": c.value for c in self.changes if c.role == "seed"}


@dataclass
class OutputRef:
    """A file output as listed in /history (not downloaded yet)."""

    node_id: str
    filename: str
    subfolder: str
    type: str            # "output" | "temp" | "input"
    listed_under: str    # the history key it came under: images, gifs, audio, videos, ...
                         # (not a COS key: those are PublishResult.key)
    animated: bool = False

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.filename, self.subfolder, self.type)


@dataclass
class OutputFile:
    """A downloaded output."""

    ref: OutputRef
    data: bytes
    mime_type: str
    kind: str            # image | video | audio | latent | file
    name: str            # safe file name we give it: <prompt_id>_<node>_<n>.<ext>

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def node_id(self) -> str:
        return self.ref.node_id


@dataclass
class NodeFailure:
    node_id: str
    node_type: str
    exception_type: str
    message: str         # scrubbed


@dataclass
class RunResult:
    prompt_id: str
    server: str
    ending: str                                  # how the run ended: success | error | interrupted | timeout
                                                 # | lost | gone (the tool's `status` variable says
                                                 # success / partial / error for the user)
    outputs: list[OutputFile] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)          # text outputs (PreviewAny etc.)
    missing: list[OutputRef] = field(default_factory=list)  # listed but could not be downloaded
    error: BridgeError | None = None
    failure: NodeFailure | None = None
    cached_nodes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    deadline: Deadline | None = None                        # the call's deadline (publishing uses what is left)

    @property
    def ok(self) -> bool:
        return self.ending == "success" and self.error is None

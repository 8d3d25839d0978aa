"""Where a tool node's calls go: the built plugin over stdio (live), or a recording of what it
said (replay). A recording is tied to the package that made it: when the plugin's files change,
the recording is stale and the replay test says so (and how to re-record) instead of passing.

Recordings live in tests/contract/recordings/<example stem>.<case>.json:
    {"format": 1, "example", "case", "plugin_identifier": "author/name:version@checksum",
     "exchanges": [{"request": normalized invoke_tool request (see `normalized_request`),
                    "messages": the plugin's session payloads in order
                                ({"type": "stream"|"error"|"end", "data"})}, ...]}
one exchange per tool call of the run, in call order (an app with a Loop makes several).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dify_host import plugin_parameters
from graphon.nodes.tool.exc import ToolNodeError
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = Path(__file__).resolve().parent / "recordings"
FORMAT = 1
RECORD_COMMAND = "scripts/dev py tests/contract/record.py"


def _packer() -> Any:
    return load_script("build_pkg")


def current_identifier() -> str:
    """author/name:version@checksum of the package `scripts/dev package` would build now
    (same files, same checksum rule; no zip is written)."""
    bp = _packer()
    entries = {rel: (ROOT / rel).read_bytes() for rel in bp.collect_files(ROOT)}
    manifest = yaml.safe_load(entries["manifest.yaml"])
    return f"{manifest['author']}/{manifest['name']}:{manifest['version']}@{bp.checksum_of(entries)}"


def normalized_request(data: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of an invoke_tool request that must be the same at record and replay time:
    provider, tool, parameters (files by name, type and size: their URLs are per run) and the
    names of the credentials that are set (their values point at per-run test servers)."""
    def normal(value: Any) -> Any:
        if isinstance(value, dict) and value.get("dify_model_identity") == "__dify__file__":
            return {k: value.get(k) for k in ("filename", "extension", "mime_type", "size", "type")}
        if isinstance(value, list):
            return [normal(v) for v in value]
        return value
    params = plugin_parameters(data.get("tool_parameters") or {})
    return {"provider": data.get("provider"), "tool": data.get("tool"),
            "credentials": sorted(k for k, v in (data.get("credentials") or {}).items() if v not in ("", None)),
            "tool_parameters": {k: normal(v) for k, v in sorted(params.items())}}


def tool_messages(messages: list[dict[str, Any]]) -> Iterator[Any]:
    """The plugin's session payloads as the tool node receives them (an error fails the node)."""
    for item in messages:
        kind = item.get("type")
        if kind == "stream":
            yield item.get("data")
        elif kind == "error":
            data = item.get("data") or {}
            raise ToolNodeError(str(data.get("message") or data))


@dataclass
class Exchange:
    request: dict[str, Any]
    messages: list[dict[str, Any]]


@dataclass
class Recording:
    example: str
    case: str
    plugin_identifier: str
    exchanges: list[Exchange]

    @staticmethod
    def path_for(example: str, case: str) -> Path:
        return RECORDINGS / f"{Path(example).stem}.{case}.json"

    def save(self) -> Path:
        path = self.path_for(self.example, self.case)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"format": FORMAT, "example": self.example, "case": self.case,
                "plugin_identifier": self.plugin_identifier,
                "exchanges": [{"request": e.request, "messages": e.messages} for e in self.exchanges]}
        path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, example: str, case: str) -> Recording:
        """The recording, or an AssertionError naming the command that makes it."""
        path = cls.path_for(example, case)
        if not path.is_file():
            raise AssertionError(f"no recording {path.relative_to(ROOT)} for {example} ({case}): "
                                 f"record it with `{RECORD_COMMAND}`")
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != FORMAT:
            raise AssertionError(f"{path.relative_to(ROOT)} has format {body.get('format')}, expected {FORMAT}: "
                                 f"re-record with `{RECORD_COMMAND}`")
        exchanges = [Exchange(e["request"], e["messages"]) for e in body["exchanges"]]
        return cls(body["example"], body["case"], body["plugin_identifier"], exchanges)

    def check_fresh(self, identifier: str) -> None:
        if self.plugin_identifier != identifier:
            raise AssertionError(
                f"recording {self.path_for(self.example, self.case).relative_to(ROOT)} is stale: it was made with "
                f"{self.plugin_identifier}, the plugin now builds {identifier}. Its messages may no longer be what "
                f"the plugin says: re-record with `{RECORD_COMMAND}`")


class ReplayInvoker:
    """Answers each invoke_tool with the next recorded exchange, after checking graphon asks what
    was recorded."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.calls = 0

    def __call__(self, plugin_id: str, action: str, data: Mapping[str, Any]) -> Iterator[Any]:
        self.calls += 1
        if action != "invoke_tool":
            raise ToolNodeError(f"unexpected plugin action {action!r}")
        if plugin_id != self.recording.plugin_identifier:
            raise ToolNodeError(f"the app depends on {plugin_id}, the recording was made with "
                                f"{self.recording.plugin_identifier}: regenerate the examples and re-record "
                                f"with `{RECORD_COMMAND}`")
        if self.calls > len(self.recording.exchanges):
            raise ToolNodeError(f"the app made tool call {self.calls}, the recording has "
                                f"{len(self.recording.exchanges)}: re-record with `{RECORD_COMMAND}`")
        exchange = self.recording.exchanges[self.calls - 1]
        asked = normalized_request(data)
        if asked != exchange.request:
            raise ToolNodeError(f"the app now sends {json.dumps(asked, sort_keys=True)}, the recording has "
                                f"{json.dumps(exchange.request, sort_keys=True)}: re-record with "
                                f"`{RECORD_COMMAND}`")
        yield from tool_messages(exchange.messages)


class LiveInvoker:
    """Answers invoke_tool with the running plugin (tests/e2e/stdio_harness.PluginProcess);
    keeps what it said so the live run can be saved as a recording."""

    def __init__(self, plugin: Any, identifier: str, timeout: float = 120, storage: Any = None) -> None:
        self.plugin = plugin
        self.identifier = identifier
        self.timeout = timeout
        self.storage = storage          # stdio_harness.DaemonStorage: Dify's plugin storage for the calls
        self.exchanges: list[Exchange] = []

    def __call__(self, plugin_id: str, action: str, data: Mapping[str, Any]) -> Iterator[Any]:
        if action != "invoke_tool":
            raise ToolNodeError(f"unexpected plugin action {action!r}")
        if plugin_id != self.identifier:
            # Dify would refuse the import ("dependency mismatch") before any run.
            raise ToolNodeError(f"the app depends on {plugin_id}, the installed plugin is {self.identifier}")
        run = self.plugin.invoke(data["provider"], data["tool"], dict(data.get("credentials") or {}),
                                 plugin_parameters(data.get("tool_parameters") or {}), timeout=self.timeout,
                                 storage=self.storage)
        self.exchanges.append(Exchange(normalized_request(data), list(run.messages)))
        yield from tool_messages(run.messages)

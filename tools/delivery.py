"""Turn a finished run into Dify messages: blobs, URLs, variables, one compact JSON, one short
sentence. Shared by both tools. Nothing here talks to ComfyUI."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import BridgeError
from comfyui_bridge.models import OutputFile, RunRequest, RunResult
from comfyui_bridge.publish import publish, publish_deadline
from comfyui_bridge.scrub import one_line, scrub
from comfyui_bridge.storage import Storage
from tools.params import delivery_options
from tools.settings import credential_secrets, engine_from, storage_from

Messages = Generator[Any, None, None]  # ToolInvokeMessage; dify_plugin is not imported here
# (importing it monkey-patches the process with gevent: keep this module usable by tests).


class ToolRunError(Exception):
    """What a Dify user sees when the tool fails: one clear message, no traceback context."""


@dataclass
class Delivered:
    file: OutputFile
    url: str = ""
    key: str = ""
    etag: str = ""
    upload_error: str = ""
    blob: bool = True
    note: str = ""


@dataclass
class Report:
    """Everything the tool says about one run, built before any message is sent."""

    result: RunResult
    items: list[Delivered] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.items if i.url]


def fail(exc: BridgeError, secrets: list[str]) -> ToolRunError:
    return ToolRunError(scrub(exc.bilingual(), secrets))


def run_with_progress(engine: Engine, request: RunRequest, stream: bool
                      ) -> Iterator[tuple[str, Any]]:
    """Run the engine; yields ("progress", line) while it runs (when `stream`), then
    ("result", RunResult) or ("error", BridgeError). Under the plugin's gevent runtime the
    worker thread is a greenlet, so waiting here keeps the heartbeat alive."""
    if not stream:
        try:
            yield "result", engine.run(request)
        except BridgeError as exc:
            yield "error", exc
        return
    events: queue.Queue = queue.Queue()
    started = time.monotonic()

    def work() -> None:
        try:
            events.put(("result", engine.run(request, on_progress=lambda k, d: events.put(("event", (k, d))))))
        except BridgeError as exc:
            events.put(("error", exc))
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed
            events.put(("crash", exc))

    threading.Thread(target=work, name="comfyui-run", daemon=True).start()
    while True:
        kind, payload = events.get()
        if kind == "event":
            line = progress_line(*payload)
            if line:
                yield "progress", line
            continue
        if kind == "result":
            yield "progress", f"Finished in {time.monotonic() - started:.1f} s\n"
        if kind == "crash":
            raise payload
        yield kind, payload
        return


def progress_line(kind: str, data: dict[str, Any]) -> str:
    if kind == "accepted":
        return "Queued on ComfyUI\n"
    if kind == "queued":
        return f"Waiting in queue (position {data.get('position')})\n"
    if kind == "cached":
        return f"{len(data.get('nodes') or [])} node(s) served from ComfyUI's cache\n"
    if kind == "started":
        return "Running\n"
    if kind == "node":
        return f"Running node {data.get('title') or data.get('node')}\n"
    if kind == "progress" and data.get("max"):
        return f"Node {data.get('title') or data.get('node')}: step {data.get('value')}/{data.get('max')}\n"
    return ""


def deliver(result: RunResult, storage: Storage | None, max_blob_bytes: int, secrets: list[str]) -> Report:
    """Upload to storage (if any) and decide which files travel as blobs."""
    report = Report(result=result)
    items = [Delivered(file=f) for f in result.outputs]
    if storage is not None and items:
        results = publish(storage, [i.file for i in items], prompt_id=result.prompt_id, secrets=secrets,
                          deadline=publish_deadline(result.deadline))
        for item, published in zip(items, results):
            item.key = published.key
            if published.ok:
                item.url, item.etag = published.url, published.etag
            else:
                item.upload_error = one_line(published.error, 300, secrets)
        failed = [i for i in items if i.upload_error]
        if failed:
            report.notes.append(f"Upload to COS failed for {len(failed)} of {len(items)} file(s): "
                                f"{failed[0].upload_error} The files are still returned to Dify.")
    for item in items:
        if item.file.size > max_blob_bytes:
            item.blob = False
            size_mb = item.file.size / 1024 / 1024
            item.note = (f"{item.file.name} is {size_mb:.1f} MB, over the {max_blob_bytes / 1024 / 1024:.0f} MB "
                         "blob limit: " + ("returned as a URL only." if item.url else
                                           "not returned (configure COS to get a URL for large files)."))
            report.notes.append(item.note)
    report.items = items
    report.notes.extend(result.warnings)
    return report


def status(report: Report) -> str:
    """success; partial when the run failed after some outputs finished; error otherwise."""
    if report.result.error is None:
        return "success"
    return "partial" if report.items else "error"


def summary(report: Report) -> dict[str, Any]:
    """The compact JSON of a run: ids, status, seeds, one entry per file. Never the workflow."""
    result = report.result
    out: dict[str, Any] = {
        "status": status(report),
        "prompt_id": result.prompt_id,
        "server": result.server,
        "seeds": result.plan.seeds() if result.plan else {},
        "outputs": [{
            "node_id": i.file.node_id, "filename": i.file.name, "mime_type": i.file.mime_type,
            "kind": i.file.kind, "size": i.file.size, "url": i.url, "key": i.key, "etag": i.etag,
            "uploaded": bool(i.url), **({"upload_error": i.upload_error} if i.upload_error else {}),
            **({"returned_as": "url" if i.url else "none"} if not i.blob else {}),
        } for i in report.items],
    }
    if result.texts:
        out["texts"] = result.texts
    if result.error is not None:
        out["error"] = result.error.to_dict()
    if result.failure is not None:
        out["failed_node"] = {"node_id": result.failure.node_id, "class_type": result.failure.node_type,
                              "exception_type": result.failure.exception_type}
    if report.notes:
        out["notes"] = report.notes
    if result.cached_nodes:
        out["cached_nodes"] = result.cached_nodes
    out["timings_s"] = result.timings
    return out


def markdown(report: Report) -> str:
    lines = []
    for item in report.items:
        if item.url:
            if item.file.kind == "image":
                lines.append(f"![{item.file.name}]({item.url})")
            else:
                lines.append(f"[{item.file.name}]({item.url})")
    return "\n".join(lines)


def sentence(report: Report) -> str:
    """The one line an agent (or a workflow's `text` output) gets."""
    result = report.result
    n = len(report.items)
    kinds = sorted({i.file.kind for i in report.items}) or ["file"]
    what = f"{n} {'/'.join(kinds)} file{'s' if n != 1 else ''}"
    if result.error is not None:
        head = f"The ComfyUI run failed: {result.error.message}"
        if n:
            head += f" Returned {what} that finished."
    else:
        head = f"Generated {what}." if n else "The workflow finished without producing a file."
    urls = report.urls
    if urls:
        head += " URL" + ("s: " if len(urls) > 1 else ": ") + " ".join(urls)
    if report.notes:
        head += " Note: " + " ".join(report.notes)
    return head


def messages(tool: Any, report: Report) -> Messages:
    """Blobs first (Dify stores them as files), then the sentence, the variables and the JSON."""
    for item in report.items:
        if item.blob:
            yield tool.create_blob_message(item.file.data, meta={"mime_type": item.file.mime_type,
                                                                 "filename": item.file.name})
        elif item.url:
            yield tool.create_link_message(item.url)
    # The sentence right after the files: an agent reads it first (Dify concatenates the rest).
    yield tool.create_text_message(sentence(report))
    urls = report.urls
    result = report.result
    yield tool.create_variable_message("url", urls[0] if urls else "")
    yield tool.create_variable_message("urls", urls)
    yield tool.create_variable_message("markdown", markdown(report))
    yield tool.create_variable_message("prompt_id", result.prompt_id)
    yield tool.create_variable_message("status", status(report))
    yield tool.create_variable_message("seeds", result.plan.seeds() if result.plan else {})
    yield tool.create_json_message(summary(report))


def invoke(tool: Any, tool_parameters: dict[str, Any],
           make_request: Callable[[dict[str, Any]], RunRequest]) -> Messages:
    """The body of both tools' `_invoke`: credentials → engine and storage, parameters → request,
    then run and deliver. Input errors are raised outside any except block (no chained context)."""
    credentials = tool.runtime.credentials
    secrets = credential_secrets(credentials)
    error: BridgeError | None = None
    try:
        engine = engine_from(credentials)
        storage = storage_from(credentials)
        request = make_request(tool_parameters)
        options = delivery_options(tool_parameters)
    except BridgeError as exc:
        error = exc
    if error is not None:
        raise fail(error, secrets)
    yield from run_and_deliver(tool, engine, storage, request, options, secrets)


def run_and_deliver(tool: Any, engine: Engine, storage: Storage | None, request: RunRequest, options: Any,
                    secrets: list[str]) -> Messages:
    """Shared by both tools: run (streaming progress if asked), upload, yield messages."""
    error: BridgeError | None = None
    result = None
    for kind, payload in run_with_progress(engine, request, options.progress):
        if kind == "progress":
            yield tool.create_stream_variable_message("progress", payload)
        elif kind == "result":
            result = payload
        else:
            error = payload
    if error is not None:
        raise fail(error, secrets)
    if result.error is not None and not result.outputs:
        raise fail(result.error, secrets)
    if options.progress and storage is not None and result.outputs:
        yield tool.create_stream_variable_message("progress", f"Uploading {len(result.outputs)} file(s) to COS\n")
    report = deliver(result, storage, options.max_blob_bytes, secrets)
    yield from messages(tool, report)

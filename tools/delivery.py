"""Turn a finished run into Dify messages: blobs, URLs, variables, one compact JSON, one short
sentence. Shared by both tools. Nothing here talks to ComfyUI.

What an agent reads is everything but the blobs (Dify's agent runner concatenates the text, each
variable and the JSON into the observation), so none of it holds internal details an LLM could
repeat to end users: no server address, no COS key, no ETag, no timings. Those go to the plugin
log only. Every message is bounded (tools/guard.py); every server text is bounded and made plain
(media.plain) before it reaches `text`, notes or `markdown`.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import BridgeError
from comfyui_bridge.jsonsafe import shown
from comfyui_bridge.media import id_part, is_raster_image, plain, plain_parts, safe_type
from comfyui_bridge.models import OutputFile, RunRequest, RunResult
from comfyui_bridge.publish import PublishResult, publish, publish_deadline
from comfyui_bridge.scrub import scrub
from comfyui_bridge.storage import Storage
from tools.guard import MAX_MESSAGE_BYTES, encoded_size, error_text, guarded
from tools.params import delivery_options
from tools.settings import credential_secrets, engine_from, storage_from

log = logging.getLogger(__name__)
STREAM_CHUNK = 8000   # characters per streamed chunk (guard.py cuts a streamed chunk at 8 KiB)

Messages = Generator[Any, None, None]  # ToolInvokeMessage; dify_plugin is not imported here
# (importing it monkey-patches the process with gevent: keep this module usable by tests).

MAX_LISTED = 100            # files listed in `urls`, `markdown` and the JSON (all are still sent as files)
MAX_TEXTS = 20              # text outputs listed in the JSON
INLINE_TEXT_CHARS = 2000    # a longer text output comes back as a .txt file, with an excerpt inline
EXCERPT_CHARS = 500
NOTE_CHARS = 500
SENTENCE_URLS = 10
SENTENCE_NOTES = 5
BUDGET = MAX_MESSAGE_BYTES - 4096   # what our own JSON and variables aim for (the guard is the hard bound)
TEXT_MIME = "text/plain"    # our own .txt files of text outputs (UTF-8 text we wrote)
# Error detail an agent may read; everything else (server, bucket, key, request id, paths) stays out.
_ERROR_DETAIL = ("node_id", "class_type", "node_type", "exception_type", "error_code", "status", "replacement",
                 "cancelled", "input", "min", "max")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}")


class ToolRunError(Exception):
    """What a Dify user sees when the tool fails: one clear message, no traceback context."""


@dataclass
class Delivered:
    file: OutputFile
    url: str = ""
    key: str = ""           # internal (COS key): logged, never sent
    etag: str = ""          # internal: never sent
    upload_error: str = ""
    blob: bool = True
    note: str = ""


@dataclass
class TextOutput:
    """One text output of the run (ComfyUI `text`): inline when short, else a .txt file + excerpt."""

    inline: str                 # the whole text, or its excerpt saying where the rest is
    file_name: str = ""
    file_data: bytes = b""


@dataclass
class Report:
    """Everything the tool says about one run, built before any message is sent."""

    result: RunResult
    items: list[Delivered] = field(default_factory=list)
    texts: list[TextOutput] = field(default_factory=list)
    texts_left_out: int = 0
    notes: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.items if web_url(i.url)]


def fail(exc: BridgeError, secrets: list[str]) -> ToolRunError:
    return ToolRunError(error_text(scrub(exc.bilingual(), secrets)))


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


def progress_line(kind: str, data: Any) -> str:
    """One line of the progress log. Node titles come from the workflow and values from the server:
    each is cut and made plain."""
    data = data if isinstance(data, dict) else {}

    def node() -> str:
        return plain(data.get("title") or data.get("node"), 80)

    if kind == "accepted":
        return "Queued on ComfyUI\n"
    if kind == "queued":
        return f"Waiting in queue (position {plain(data.get('position'), 20)})\n"
    if kind == "cached":
        nodes = data.get("nodes")
        return f"{len(nodes) if isinstance(nodes, list) else 0} node(s) served from ComfyUI's cache\n"
    if kind == "started":
        return "Running\n"
    if kind == "node":
        return f"Running node {node()}\n"
    if kind == "progress" and data.get("max"):
        return f"Node {node()}: step {plain(data.get('value'), 20)}/{plain(data.get('max'), 20)}\n"
    return ""


# ---- from a result to a report ------------------------------------------------------------------

def deliver(result: RunResult, storage: Storage | None, max_blob_bytes: int, secrets: list[str], *,
            published: list[PublishResult] | None = None, when: datetime | None = None) -> Report:
    """Upload to storage (if any), decide which files travel as blobs, turn long text outputs into
    files, and bound every note. Submitted jobs (tools/jobs.py) pass `when` (the submission time:
    every collect of a job plans the same COS keys) and, when they deliver a job again,
    `published` (what the first delivery uploaded, one per output, in order: nothing is uploaded)."""
    report = Report(result=result, secrets=list(secrets))
    items = [Delivered(file=f) for f in result.outputs]
    notes: list[str] = []
    results: list[PublishResult] = []
    if published is not None:
        results = published
    elif storage is not None and items:
        results = publish(storage, [i.file for i in items], prompt_id=result.prompt_id, secrets=secrets,
                          deadline=publish_deadline(result.deadline), when=when)
    if results:
        for item, published_file in zip(items, results, strict=True):
            item.key = published_file.key
            if published_file.ok:
                item.url, item.etag = published_file.url, published_file.etag
            else:
                item.upload_error = server_text(published_file.error, 300, report)
        failed = [i for i in items if i.upload_error]
        if failed:
            notes.append(f"Upload to COS failed for {len(failed)} of {len(items)} file(s): "
                         f"{failed[0].upload_error} The files are still returned to Dify.")
    for item in items:
        if item.file.size > max_blob_bytes:
            item.blob = False
            size_mb = item.file.size / 1024 / 1024
            item.note = (f"{item.file.name} is {size_mb:.1f} MB, over the {max_blob_bytes / 1024 / 1024:.0f} MB "
                         "blob limit: " + ("returned as a URL only." if item.url else
                                           "not returned (configure COS to get a URL for large files)."))
            notes.append(item.note)
    report.items = items
    report.texts, text_notes = text_outputs(result, max_blob_bytes, report)
    report.texts_left_out = max(0, len(result.texts) - MAX_TEXTS)
    notes += text_notes
    notes += [server_text(w, NOTE_CHARS, report) for w in result.warnings]
    report.notes = notes
    _log_run(report)
    return report


def text_outputs(result: RunResult, max_blob_bytes: int, report: Report) -> tuple[list[TextOutput], list[str]]:
    """The run's text outputs: short ones inline; longer ones as a `.txt` file (when it may be sent
    as a blob) with an excerpt inline. Keys and tokens are removed from both."""
    out: list[TextOutput] = []
    notes: list[str] = []
    for index, raw in enumerate(result.texts[:MAX_TEXTS], 1):
        text = raw if isinstance(raw, str) else shown(raw, INLINE_TEXT_CHARS)
        if len(text) <= INLINE_TEXT_CHARS:
            out.append(TextOutput(inline=scrub_text(text, report.secrets)))
            continue
        name = f"{id_part(result.prompt_id)}_text_{index}.txt"
        data = scrub_text(text, report.secrets).encode("utf-8", "replace")
        excerpt = scrub_text(text[:EXCERPT_CHARS], report.secrets)
        if max_blob_bytes <= 0:
            name, data = "", b""
            where = "the rest is not returned (the blob limit is 0)"
        else:
            where = f"the whole text is in the file {name}"
            if len(data) > max_blob_bytes:
                data = data[:max_blob_bytes].decode("utf-8", "ignore").encode("utf-8")
                notes.append(f"Text output {index} has {len(text)} characters; {name} holds its first "
                             f"{len(data)} bytes (the blob limit).")
        inline = f"{excerpt}… ({len(text) - EXCERPT_CHARS} more characters; {where})"
        out.append(TextOutput(inline=inline, file_name=name, file_data=data))
    if len(result.texts) > MAX_TEXTS:
        notes.append(f"The run has {len(result.texts)} text outputs; only the first {MAX_TEXTS} are returned.")
    return out, notes


def scrub_text(text: str, secrets: list[str]) -> str:
    """A text output without our credentials or `sk-` keys, in linear time whatever its size (the
    full `scrub` rewrites paths too, and costs seconds on megabytes)."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _SK_KEY.sub("sk-[redacted]", text)


def server_text(text: object, limit: int, report: Report) -> str:
    """A server-made text (a warning, an error) for our texts: scrubbed, without the server's
    address, plain (see media.plain), at most `limit` characters saying how many more there were."""
    raw = text if isinstance(text, str) else shown(text, limit * 4)
    window = raw[: limit * 4 + 512]
    clean = scrub(window, report.secrets)
    server = report.result.server or ""
    if server:
        clean = clean.replace(server, "the server")
        host = urlsplit(server).netloc
        if host:
            clean = clean.replace(host, "the server")
    head, more = plain_parts(clean, limit)
    more += len(raw) - len(window)
    return f"{head}… ({more} more characters)" if more > 0 else head


def _log_run(report: Report) -> None:
    """The technical side of a run (server, COS keys, ETags, timings) goes to the plugin log."""
    result = report.result
    log.info("run %s on %s: %s, %d file(s), keys %s, timings %s", shown(result.prompt_id, 80),
             shown(result.server, 200), status(report), len(report.items),
             shown([i.key for i in report.items if i.key], 400), shown(result.timings, 400))


def status(report: Report) -> str:
    """success; partial when the run failed (or lost outputs) after some outputs finished; error
    otherwise."""
    result = report.result
    if result.error is None and not result.missing:
        return "success"
    return "partial" if report.items or report.texts else "error"


def nothing_to_return(report: Report) -> str:
    """Why the run failed when it has nothing to deliver ('' when it has something or succeeded)."""
    result = report.result
    if report.items or report.texts:
        return ""
    if result.missing:
        return ("The workflow ran, but none of its outputs could be delivered: "
                + " ".join(report.notes[:3]))
    return ""


# ---- what is sent ------------------------------------------------------------------------------

def web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _md_url(url: str) -> str:
    """A URL as a markdown link target: characters that could end or break the target escaped."""
    return quote(url, safe=":/?#@!$&'*+,;=%~-._")


def listed(report: Report) -> list[Delivered]:
    return report.items[:MAX_LISTED]


def summary(report: Report) -> dict[str, Any]:
    """The compact JSON of a run, as an agent may read it: status, prompt id, seeds, one entry per
    file (our name, kind, type, size, URL), text outputs, the error, notes. Never the workflow, the
    server address, COS keys, ETags or timings. Lists too long for one message keep their first
    entries, and `omitted` says how many were left out."""
    result = report.result
    out: dict[str, Any] = {
        "status": status(report),
        "prompt_id": result.prompt_id,
        "seeds": result.plan.seeds() if result.plan else {},
        "outputs": [_entry(i) for i in report.items],
    }
    if report.texts:
        out["texts"] = [t.inline for t in report.texts]
    if result.error is not None:
        out["error"] = _error(result.error, report)
    if result.failure is not None:
        out["failed_node"] = {"node_id": plain(result.failure.node_id, 100),
                              "class_type": plain(result.failure.node_type, 100),
                              "exception_type": plain(result.failure.exception_type, 100)}
    if report.notes:
        out["notes"] = list(report.notes)
    if result.cached_nodes:
        out["cached_nodes"] = [plain(n, 100) for n in result.cached_nodes]
    omitted: dict[str, int] = {}
    if report.texts_left_out:
        omitted["texts"] = report.texts_left_out
    return _fit_summary(out, omitted)


def _entry(item: Delivered) -> dict[str, Any]:
    f = item.file
    entry: dict[str, Any] = {"node_id": plain(f.node_id, 100), "filename": f.name, "kind": f.kind,
                             "mime_type": safe_type(f.mime_type), "size": f.size, "url": item.url,
                             "uploaded": bool(item.url),
                             "returned_as": "file" if item.blob else ("url" if item.url else "none")}
    if item.upload_error:
        entry["upload_error"] = item.upload_error
    return entry


def _error(error: BridgeError, report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {"code": error.code, "message": server_text(error.message, 2000, report)}
    if error.message_zh:
        out["message_zh"] = server_text(error.message_zh, 2000, report)
    detail = {k: error.detail[k] for k in _ERROR_DETAIL if k in error.detail}
    if detail:
        out["detail"] = {k: plain(v, 200) if isinstance(v, str) else v for k, v in detail.items()}
    return out


def _fit_summary(out: dict[str, Any], omitted: dict[str, int]) -> dict[str, Any]:
    """Cut the longest list (or the seeds) in half until the JSON fits the budget; count the cuts."""
    if len(out["outputs"]) > MAX_LISTED:
        omitted["outputs"] = len(out["outputs"]) - MAX_LISTED
        out["outputs"] = out["outputs"][:MAX_LISTED]
    if len(out["seeds"]) > MAX_LISTED:
        omitted["seeds"] = len(out["seeds"]) - MAX_LISTED
        out["seeds"] = dict(list(out["seeds"].items())[:MAX_LISTED])
    while True:
        if omitted:
            out["omitted"] = dict(omitted)
        size = encoded_size(out)
        if size <= BUDGET:
            return out
        cuttable = [k for k in ("outputs", "texts", "notes", "seeds", "cached_nodes") if out.get(k)]
        if not cuttable:
            return out      # the guard cuts what is left
        name = max(cuttable, key=lambda k: encoded_size(out[k]))
        value = out[name]
        keep = len(value) // 2
        omitted[name] = omitted.get(name, 0) + len(value) - keep
        out[name] = dict(list(value.items())[:keep]) if isinstance(value, dict) else value[:keep]


def markdown(report: Report) -> str:
    """Images (raster types only) inline, other files as links; only http(s) URLs; names plain."""
    lines: list[str] = []
    size = 0
    with_url = [i for i in listed(report) if web_url(i.url)]
    for count, item in enumerate(with_url):
        label = plain(item.file.name, 120)
        line = (f"![{label}]({_md_url(item.url)})" if is_raster_image(item.file.mime_type)
                else f"[{label}]({_md_url(item.url)})")
        size += encoded_size(line) + 2
        if size > BUDGET:
            lines.append(f"({len(with_url) - count} more files are not shown)")
            break
        lines.append(line)
    return "\n".join(lines)


def url_list(report: Report) -> list[str]:
    """The URLs for the `urls` variable: the first ones, as many as fit in one message."""
    out: list[str] = []
    size = 0
    for url in [i.url for i in listed(report) if web_url(i.url)]:
        size += encoded_size(url) + 2
        if size > BUDGET:
            break
        out.append(url)
    return out


def sentence(report: Report) -> str:
    """The short text an agent reads first (and a workflow's `text` output)."""
    result = report.result
    n = len(report.items)
    kinds = sorted({i.file.kind for i in report.items})
    what = f"{n} {'/'.join(kinds) or 'output'} file{'s' if n != 1 else ''}" if n else ""
    if report.texts:
        texts = f"{len(report.texts)} text output{'s' if len(report.texts) != 1 else ''}"
        what = f"{what} and {texts}" if what else texts
    if result.error is not None:
        head = f"The ComfyUI run failed: {server_text(result.error.message, 1000, report)}"
        if what:
            head += f" Returned {what} that finished."
    else:
        head = f"Generated {what}." if what else "The workflow finished without producing a file."
    urls = report.urls
    if urls:
        shown_urls = urls[:SENTENCE_URLS]
        head += " URL" + ("s: " if len(urls) > 1 else ": ") + " ".join(shown_urls)
        if len(urls) > len(shown_urls):
            head += f" (and {len(urls) - len(shown_urls)} more in `urls`)"
        head += "."
    head += _video_audio_note(report)
    if report.texts and not n:
        head += f" Text: {plain(report.texts[0].inline, 600)}"
    if report.notes:
        head += " Note: " + " ".join(report.notes[:SENTENCE_NOTES])
        if len(report.notes) > SENTENCE_NOTES:
            head += f" ({len(report.notes) - SENTENCE_NOTES} more notes in the JSON.)"
    return head


def _video_audio_note(report: Report) -> str:
    """Dify attaches images to a chat reply but not video or audio (an agent gets a link it
    ignores): say where they went and point at the URL."""
    av = [i for i in report.items if i.file.kind in ("video", "audio")]
    if not av:
        return ""
    kinds = " and ".join(sorted({i.file.kind for i in av}))
    delivered = [i for i in av if i.blob]
    where = (f" The {kinds} {'file is' if len(av) == 1 else 'files are'} in the workflow's files output"
             if delivered else f" The {kinds} {'file is' if len(av) == 1 else 'files are'} not attached")
    if all(web_url(i.url) for i in av):
        return where + f"; a chat reply does not show {kinds}, so give the user the URL."
    return where + f"; a chat reply does not show {kinds} (configure COS to get a URL to share)."


def messages(tool: Any, report: Report, extra: dict[str, Any] | None = None) -> Messages:
    """Blobs first (Dify stores them as files), then the sentence, the variables and the JSON
    (`extra` goes first in the JSON: a collected job's id). Every message goes through the guard
    (tools/guard.py)."""
    tool = guarded(tool)
    for item in report.items:
        if item.blob:
            yield tool.create_blob_message(item.file.data, meta={"mime_type": safe_type(item.file.mime_type),
                                                                 "filename": item.file.name})
        elif web_url(item.url):
            yield tool.create_link_message(item.url)
    for text in report.texts:
        if text.file_name:
            yield tool.create_blob_message(text.file_data, meta={"mime_type": TEXT_MIME, "filename": text.file_name})
    # The sentence right after the files: an agent reads it first (Dify concatenates the rest).
    yield tool.create_text_message(sentence(report))
    urls = url_list(report)
    result = report.result
    seeds = result.plan.seeds() if result.plan else {}
    # Text variables are streamed: Dify's tool node ends the stream of every variable sent whole
    # with an empty chunk, so an Answer node that shows `markdown` or `url` would show nothing;
    # streamed, they reach the Answer, and other nodes still read the whole value.
    yield from stream_text(tool, "url", urls[0] if urls else "")
    yield tool.create_variable_message("urls", urls)
    yield from stream_text(tool, "markdown", markdown(report))
    yield from stream_text(tool, "prompt_id", result.prompt_id)
    yield from stream_text(tool, "status", status(report))
    yield tool.create_variable_message("seeds", dict(list(seeds.items())[:MAX_LISTED]))
    yield tool.create_json_message({**(extra or {}), **summary(report)})


def stream_text(tool: Any, name: str, text: str, chunk: int = STREAM_CHUNK) -> Messages:
    """`text` as a streamed variable, in chunks of at most `chunk` characters, cut after a line
    where possible (Dify joins the chunks into the variable's value)."""
    if not text:
        yield tool.create_stream_variable_message(name, "")
        return
    start = 0
    while start < len(text):
        end = min(len(text), start + chunk)
        if end < len(text):
            cut = text.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        yield tool.create_stream_variable_message(name, text[start:end])
        start = end


# ---- the tools' body ---------------------------------------------------------------------------

def invoke(tool: Any, tool_parameters: dict[str, Any],
           make_request: Callable[[dict[str, Any]], RunRequest]) -> Messages:
    """The body of both tools' `_invoke`: credentials → engine and storage, parameters → request,
    then run and deliver (guarded: see run_guarded)."""
    def body(guard: Any, _tool: Any, credentials: dict[str, Any], secrets: list[str]) -> Messages:
        yield from _invoke(guard, credentials, secrets, tool_parameters, make_request)
    return run_guarded(tool, body, "tool")


# A tool's body: (the guarded tool, the tool itself, its credentials, their secrets) -> its messages.
Body = Callable[[Any, Any, dict[str, Any], list[str]], Messages]


def run_guarded(tool: Any, body: Body, what: str) -> Messages:
    """Run a tool's body so that whatever goes wrong ends as one bounded, secret-free ToolRunError,
    raised outside any except block (no chained context, nothing unbounded in the traceback Dify
    receives). `what` names the tool in the log line of an unexpected failure."""
    credentials = tool.runtime.credentials or {}
    secrets = credential_secrets(credentials)
    failure: ToolRunError | None = None
    try:
        yield from body(guarded(tool), tool, credentials, secrets)
    except ToolRunError as exc:
        failure = ToolRunError(error_text(str(exc)))
    except BridgeError as exc:
        failure = fail(exc, secrets)
    except Exception as exc:  # noqa: BLE001 - a bug must still end in a short, secret-free message
        log.warning("%s failed unexpectedly: %s", what, type(exc).__name__)
        failure = internal_error(exc, secrets)
    if failure is not None:
        raise failure


def internal_error(exc: BaseException, secrets: list[str]) -> ToolRunError:
    text = plain(scrub(str(exc)[:2000], secrets), 300)
    return ToolRunError(error_text(f"The tool failed unexpectedly ({type(exc).__name__}: {text}). "
                                   "Please report this to the plugin's maintainers.\n"
                                   f"工具意外出错（{type(exc).__name__}），请向插件维护者反馈。"))


def _invoke(tool: Any, credentials: dict[str, Any], secrets: list[str], tool_parameters: dict[str, Any],
            make_request: Callable[[dict[str, Any]], RunRequest]) -> Messages:
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
    tool = guarded(tool)
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
    if result is None:
        raise ToolRunError("The run ended without a result.")
    if result.error is not None and not result.outputs and not result.texts:
        raise fail(result.error, secrets)
    if options.progress and storage is not None and result.outputs:
        yield tool.create_stream_variable_message("progress", f"Uploading {len(result.outputs)} file(s) to COS\n")
    report = deliver(result, storage, options.max_blob_bytes, secrets)
    why = nothing_to_return(report)
    if why:
        raise ToolRunError(error_text(why))
    yield from messages(tool, report)

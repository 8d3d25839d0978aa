"""Submit now, collect later: the Dify side of the tools `comfyui_submit`, `comfyui_collect`,
`comfyui_cancel`, and the `mode: submit` of the built-in-workflow tools (`invoke_in_mode`).

A submit queues the run (Engine.submit) and keeps a JobRecord in Dify's plugin storage
(`self.session.storage`, through `PluginStorage`; comfyui_bridge/jobstore.py holds the logic).
A collect follows the job for up to `wait` seconds (Engine.collect) and, once it has ended,
delivers it exactly as `comfyui_workflow` does (tools/delivery.py), then records what it
delivered. Every later collect delivers the same again without uploading anything: the files
are fetched again from ComfyUI (Engine.fetch_outputs) and published under the keys and URLs
recorded the first time. Two collects of one job in one plugin process deliver one after the
other (a lock per job); in two processes both may upload, to the same keys (planned from the
submission time), with the same bytes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import ServerConfig
from comfyui_bridge.engine import COLLECT_MARGIN, Collected, Engine
from comfyui_bridge.errors import BridgeError, InputError, RunLost
from comfyui_bridge.jobs import Job
from comfyui_bridge.jobstore import (
    TTL_SECONDS,
    Delivery,
    JobRecord,
    JobStorageError,
    JobStore,
    Remembered,
    RememberedFile,
    is_job_id,
)
from comfyui_bridge.media import plain
from comfyui_bridge.models import OutputFile, RunRequest, RunResult
from comfyui_bridge.publish import PUBLISH_GRACE, PublishResult
from comfyui_bridge.scrub import one_line, scrub
from comfyui_bridge.storage import Storage
from tools.delivery import (
    Messages,
    Report,
    ToolRunError,
    deliver,
    fail,
    invoke,
    messages,
    nothing_to_return,
    run_guarded,
    web_url,
)
from tools.guard import error_text
from tools.params import delivery_options
from tools.settings import MAX_NAME_CHARS, MAX_TIMEOUT, engine_from, number, storage_from, text

log = logging.getLogger(__name__)

DEFAULT_WAIT = 15.0
# A collect that ends downloads for up to COLLECT_MARGIN seconds after its wait and uploads for
# PUBLISH_GRACE more: longer waits are shortened so the call still ends before Dify's 600 s.
MAX_WAIT = MAX_TIMEOUT - COLLECT_MARGIN - PUBLISH_GRACE
MAX_NOTES = 5
_MODES = ("run", "submit")


# ---- Dify's plugin storage ----------------------------------------------------------------------

class PluginStorage:
    """jobstore.KeyValue over the SDK's `self.session.storage` (the SDK hex-encodes values on the
    wire). A missing key is told by `exist` (a `get` of a missing key and a failed `get` give the
    daemon's same message). Failures become JobStorageError with what to do."""

    def __init__(self, storage: Any):
        self.storage = storage

    def load(self, key: str) -> bytes | None:
        try:
            if self.storage.exist(key) is not True:
                return None
            data = self.storage.get(key)
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception with the daemon's text
            raise _storage_error("read", exc) from None
        if not isinstance(data, (bytes, bytearray)):
            raise JobStorageError("Dify's plugin storage returned something other than bytes.",
                                  message_zh="Dify 插件存储返回了非字节数据。")
        return bytes(data)

    def save(self, key: str, data: bytes) -> None:
        try:
            self.storage.set(key, data)
        except Exception as exc:  # noqa: BLE001
            raise _storage_error("write", exc) from None

    def remove(self, key: str) -> None:
        try:
            self.storage.delete(key)
        except Exception as exc:  # noqa: BLE001
            raise _storage_error("delete", exc) from None


def _storage_error(action: str, exc: BaseException) -> JobStorageError:
    reason = one_line(str(exc), 300)
    if "permission denied" in reason:
        return JobStorageError(
            f"Dify refused the plugin access to its storage ({reason}). Install a package of this plugin that "
            "declares the storage permission (0.1.0 or later does).",
            message_zh="Dify 拒绝插件访问其存储。请安装声明了存储权限的插件包。")
    if "allocated size is greater than max storage size" in reason:
        return JobStorageError(
            "Dify's plugin storage for this workspace is full, so the job cannot be recorded. Jobs are deleted "
            f"{TTL_SECONDS // 86400} days after they were submitted; wait for old ones to expire, or ask the Dify "
            "administrator to raise PERSISTENCE_STORAGE_MAX_SIZE.",
            message_zh=f"当前工作空间的 Dify 插件存储已满，无法记录任务。任务会在提交 {TTL_SECONDS // 86400} 天后删除；"
                       "请等待旧任务过期，或请 Dify 管理员调大 PERSISTENCE_STORAGE_MAX_SIZE。",
            code="job_storage_full")
    return JobStorageError(f"Dify's plugin storage failed to {action} the job record: {reason}",
                           message_zh=f"Dify 插件存储{_ACTION_ZH.get(action, action)}任务记录失败：{reason}")


_ACTION_ZH = {"read": "读取", "write": "写入", "delete": "删除"}


def job_store(tool: Any) -> JobStore:
    return JobStore(PluginStorage(tool.session.storage))


# ---- one delivery at a time per job (in this process) -------------------------------------------

_locks: dict[str, tuple[threading.Lock, int]] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def job_lock(job_id: str) -> Iterator[None]:
    """Serialises the first delivery of a job: the second collect finds it delivered and uploads
    nothing. (Under the plugin's gevent runtime these are gevent locks.)"""
    with _locks_guard:
        lock, users = _locks.get(job_id, (threading.Lock(), 0))
        _locks[job_id] = (lock, users + 1)
    try:
        with lock:
            yield
    finally:
        with _locks_guard:
            lock, users = _locks[job_id]
            if users <= 1:
                del _locks[job_id]
            else:
                _locks[job_id] = (lock, users - 1)


# ---- parameters ---------------------------------------------------------------------------------

def job_id_param(params: dict[str, Any]) -> str:
    value = text(params, "job_id", limit=MAX_NAME_CHARS)
    if not value:
        raise InputError("No job_id given: pass the job_id that comfyui_submit returned.",
                         message_zh="没有提供 job_id：请传入 comfyui_submit 返回的 job_id。")
    if not is_job_id(value):
        raise InputError(f"'{plain(value, 60)}' is not a job id: job ids look like cj_ followed by 24 hex digits "
                         "(comfyui_submit returns one as job_id).",
                         message_zh=f"“{plain(value, 60)}”不是任务 ID：任务 ID 形如 cj_ 加 24 位十六进制数字"
                                    "（由 comfyui_submit 以 job_id 返回）。")
    return value


def wait_param(params: dict[str, Any]) -> float:
    """Seconds to wait, 0 to 590 (NaN, infinities and text refused like every number); more than
    MAX_WAIT is shortened to MAX_WAIT (the call must still download and upload within 600 s)."""
    value = number(params, "wait", DEFAULT_WAIT, low=0, high=MAX_TIMEOUT, unit="seconds")
    return min(float(DEFAULT_WAIT if value is None else value), MAX_WAIT)


def mode_param(params: dict[str, Any]) -> str:
    value = text(params, "mode", limit=MAX_NAME_CHARS) or "run"
    if value not in _MODES:
        raise InputError(f"Parameter 'mode' must be run or submit, not '{plain(value, 40)}'.",
                         message_zh="参数“mode”必须是 run 或 submit。")
    return value


# ---- the tools' bodies --------------------------------------------------------------------------

def invoke_in_mode(tool: Any, params: dict[str, Any], make_request: Callable[[dict[str, Any]], RunRequest],
                   tool_name: str) -> Messages:
    """A tool with a `mode` parameter: `run` (default) runs and delivers in this call, `submit`
    returns a job id at once (collect it with comfyui_collect). Any tool whose parameters become
    a RunRequest can offer both."""
    raw = params.get("mode")
    if raw is None or raw == "" or raw == "run":
        yield from invoke(tool, params, make_request)
    else:
        yield from submit(tool, params, make_request, tool_name)


def submit(tool: Any, params: dict[str, Any], make_request: Callable[[dict[str, Any]], RunRequest],
           tool_name: str) -> Messages:
    def body(out: Any, raw: Any, credentials: dict[str, Any], secrets: list[str]) -> Messages:
        if "mode" in params:
            mode_param(params)
        engine = engine_from(credentials)
        request = make_request(params)
        options = delivery_options(params)
        store = job_store(raw)
        submitted = engine.submit(request)
        job = submitted.job
        record = JobRecord(job=job, max_blob_bytes=options.max_blob_bytes, tool=tool_name)
        try:
            store.create(record)
        except BridgeError as exc:
            raise _not_recorded(engine, job, exc) from None
        log.info("submitted job %s (prompt %s on %s)", job.job_id, job.prompt_id, ServerConfig(job.server).label)
        yield from submitted_messages(out, job, submitted.status, submitted.position, record, secrets)
    return run_guarded(tool, body, "job tool")


def _not_recorded(engine: Engine, job: Job, exc: BridgeError) -> BridgeError:
    """The job was queued but cannot be recorded: nobody could collect it, so stop it."""
    try:
        stopped = engine.cancel(job)
    except BridgeError:
        stopped = False
    tail = (" The run was cancelled on ComfyUI." if stopped else
            " The run could not be cancelled on ComfyUI and may still use it for a while.")
    return JobStorageError(exc.message + tail, message_zh=exc.message_zh, code=exc.code)


def collect(tool: Any, params: dict[str, Any]) -> Messages:
    def body(out: Any, raw: Any, credentials: dict[str, Any], secrets: list[str]) -> Messages:
        job_id = job_id_param(params)
        wait = wait_param(params)
        engine = engine_from(credentials)
        storage = storage_from(credentials)
        store = job_store(raw)
        record = store.load(job_id)
        if record.delivery is not None:
            yield from deliver_again(out, engine, storage, record, secrets, at_hand=[])
            return
        try:
            collected = engine.collect(record.job, wait=wait)
        except BridgeError as exc:
            if isinstance(exc, InputError):     # e.g. the job's server is no longer configured
                raise
            raise _still_recorded(exc) from None
        if collected.status != "finished":
            yield from still_going_messages(out, record, collected)
            return
        result = collected.result
        if result is None:
            raise ToolRunError("The job ended without a result.")
        if isinstance(result.error, RunLost):
            raise _lost_or_cancelled(record)     # says "cancelled" when comfyui_cancel stopped it
        with job_lock(job_id):
            fresh = store.load(job_id)
            if fresh.delivery is not None:     # another collect delivered it meanwhile
                yield from deliver_again(out, engine, storage, fresh, secrets, at_hand=result.outputs)
                return
            yield from deliver_first(out, store, storage, fresh, result, secrets)
    return run_guarded(tool, body, "job tool")


def cancel(tool: Any, params: dict[str, Any]) -> Messages:
    def body(out: Any, raw: Any, credentials: dict[str, Any], secrets: list[str]) -> Messages:
        job_id = job_id_param(params)
        engine = engine_from(credentials)
        store = job_store(raw)
        record = store.load(job_id)
        if record.delivery is not None:
            yield from cancel_messages(out, job_id, "finished",
                                       f"The ComfyUI job {job_id} had already finished and was delivered: there is "
                                       "nothing to cancel. Collect it again with comfyui_collect to get its result.")
            return
        state = _state_on_server(engine, record.job)
        if state == "finished":
            yield from cancel_messages(out, job_id, "finished",
                                       f"The ComfyUI job {job_id} had already finished, so it was not cancelled: "
                                       "collect it with comfyui_collect to get its result.")
            return
        stopped = engine.cancel(record.job)
        record.cancelled_at = time.time()
        try:
            store.update(record)
        except BridgeError as exc:
            log.warning("cancel of %s not recorded: %s", job_id, exc.code)
        if stopped:
            where = {"queued": "it was removed from ComfyUI's queue", "running": "it was stopped on ComfyUI"}.get(
                state, "ComfyUI no longer had it queued or running")
            yield from cancel_messages(out, job_id, "cancelled", f"Cancelled the ComfyUI job {job_id}: {where}.")
        else:
            yield from cancel_messages(
                out, job_id, "cancel_requested",
                f"Asked ComfyUI to stop the job {job_id}, but it did not confirm within a few seconds (a BizyAir "
                "node waiting for its cloud ignores a stop until the cloud answers). Check with comfyui_collect.")
    return run_guarded(tool, body, "job tool")


# ---- finding out where a job is ---------------------------------------------------------------

def _state_on_server(engine: Engine, job: Job) -> str:
    """finished | queued | running | lost | unknown (the server is no longer configured), by
    looking only (Engine.state): nothing downloaded, no history entry deleted."""
    if not any(s.base_url == job.server for s in engine.servers):
        return "unknown"
    try:
        return engine.state(job)
    except BridgeError as exc:
        raise _still_recorded(exc) from None


def _still_recorded(exc: BridgeError) -> BridgeError:
    """The server did not answer: say so, and that the job can be collected once it does."""
    return BridgeError(exc.message + " The job is still recorded: try again once ComfyUI answers.",
                       message_zh=exc.message_zh + " 任务记录仍在，ComfyUI 恢复后可再试。",
                       detail=exc.detail, code=exc.code)


def _lost_or_cancelled(record: JobRecord) -> BridgeError:
    job_id = record.job.job_id
    if record.cancelled_at is not None:
        return InputError(f"The job {job_id} was cancelled {_ago(record.cancelled_at)} ago (comfyui_cancel): "
                          "there is nothing to collect.",
                          message_zh=f"任务 {job_id} 已被取消（comfyui_cancel），没有可收取的结果。",
                          code="job_cancelled")
    label = ServerConfig(record.job.server).label
    return RunLost(
        f"The job {job_id} is lost: ComfyUI at {label} has it neither in its queue nor in its history. The server "
        "restarted, or its history was trimmed or cleared (ComfyUI keeps only its most recent runs), after the job "
        "was submitted. Submit the workflow again.",
        message_zh=f"任务 {job_id} 已丢失：{label} 上的 ComfyUI 的队列和历史记录中都没有它。提交任务后服务器重启了，"
                   "或其历史记录被裁剪或清空（ComfyUI 只保留最近的运行）。请重新提交工作流。")


# ---- first delivery, and the same again ----------------------------------------------------------

def deliver_first(out: Any, store: JobStore, storage: Storage | None, record: JobRecord, result: RunResult,
                  secrets: list[str]) -> Messages:
    job = record.job
    error = result.error
    nothing = not result.outputs and not result.texts
    if error is not None and error.code == "run_lost":
        raise _lost_or_cancelled(record)
    if error is not None and record.cancelled_at is not None and nothing:
        raise _lost_or_cancelled(record)
    if error is not None and error.code == "server_gone":
        raise BridgeError(error.message + " The job is still recorded: try again once ComfyUI answers (if "
                          "ComfyUI restarted, the job is lost).", message_zh=error.message_zh + " 任务记录仍在。",
                          detail=error.detail, code=error.code)
    if error is not None and nothing:
        _remember(store, record, Delivery.of(result, []))
        raise fail(error, secrets)
    result.warnings.extend(_websocket_note(job))
    when = datetime.fromtimestamp(job.submitted_at, UTC)
    report = deliver(result, storage, record.max_blob_bytes, secrets, when=when)
    why = nothing_to_return(report)
    if not _remember(store, record, Delivery.of(result, remembered(report))):
        report.notes.append("The delivery could not be recorded in Dify's plugin storage: collecting this job again "
                            "may upload its files again.")
    if why:
        raise ToolRunError(error_text(why))
    yield from job_messages(out, report, job.job_id)


def _remember(store: JobStore, record: JobRecord, delivery: Delivery) -> bool:
    record.delivery = delivery
    try:
        store.update(record)
        return True
    except BridgeError as exc:
        log.warning("delivery of job %s not recorded: %s", record.job.job_id, exc.code)
        return False


def remembered(report: Report) -> list[Remembered]:
    """What the report delivered, per file. Signed URLs are not kept (they may carry an STS token
    and they expire): they are signed again from the key."""
    out = []
    for item in report.items:
        f = item.file
        url = item.url if web_url(item.url) and "?" not in item.url else ""
        out.append(Remembered(ref=f.ref, name=f.name, kind=f.kind, mime_type=f.mime_type, size=f.size,
                              key=item.key if not item.upload_error else "", url=url,
                              upload_error=item.upload_error))
    return out


def deliver_again(out: Any, engine: Engine, storage: Storage | None, record: JobRecord, secrets: list[str],
                  at_hand: list[OutputFile]) -> Messages:
    """The recorded delivery again: same names, same keys and URLs, nothing uploaded. The files
    come from `at_hand` (a collect that downloaded them just now) or are fetched again from ComfyUI."""
    job = record.job
    delivery = record.delivery or Delivery(ending="error")
    label = ServerConfig(job.server).label
    error = delivery.run_error()
    if error is not None and not delivery.files and not delivery.texts:
        raise fail(error, secrets)
    fetched = {f.ref.identity: f for f in at_hand}
    fetch_notes: list[str] = []
    fetch_error = ""
    wanted = [r for r in delivery.files if r.ref.identity not in fetched]
    if wanted:
        job.outputs = [r.ref for r in wanted]
        try:
            again = engine.fetch_outputs(job, Deadline.after(COLLECT_MARGIN))
            fetched.update({f.ref.identity: f for f in again.outputs})
            # Its warnings start with the job's own plan notes (already in the delivery): keep the rest.
            fetch_notes = list(again.warnings[len(job.warnings):])
        except BridgeError as exc:
            fetch_error = exc.message
            fetch_notes = [f"The files could not be fetched from ComfyUI again: {exc.message}"]
    result = delivery.result(job, fetched, label, fetch_error)
    result.warnings.extend(fetch_notes)
    notes: list[str] = []
    published = _published(delivery, storage, notes)
    report = deliver(result, storage, record.max_blob_bytes, secrets, published=published)
    unreachable = 0
    for item in report.items:
        if not isinstance(item.file, RememberedFile):
            continue
        item.blob = False
        if web_url(item.url):
            notes.append(f"{item.file.name} could not be fetched from ComfyUI again; its URL still works.")
        else:
            unreachable += 1
            result.missing.append(item.file.ref)
            notes.append(f"{item.file.name} could not be fetched from ComfyUI again and has no URL: it is not "
                         "returned.")
    report.notes = notes[:MAX_NOTES] + report.notes
    if unreachable and unreachable == len(report.items) and not report.texts:
        raise ToolRunError(error_text(
            f"The job {job.job_id} finished, but its files can no longer be fetched from ComfyUI at {label} "
            f"({one_line(fetch_error or 'the server no longer has them', 300, secrets)}) and they were not uploaded "
            "to COS. Submit the workflow again.\n"
            f"任务 {job.job_id} 已完成，但其文件已无法从 ComfyUI 获取，且未上传到 COS。请重新提交工作流。"))
    yield from job_messages(out, report, job.job_id)


def _published(delivery: Delivery, storage: Storage | None, notes: list[str]) -> list[PublishResult]:
    """The first delivery's publishing, for `deliver(published=…)`: recorded URLs as they were;
    a signed URL (not recorded) signed again from its key when COS is configured."""
    out = []
    unsigned = 0
    for r in delivery.files:
        res = PublishResult(name=r.name, node_id=r.ref.node_id, size=r.size, mime_type=r.mime_type, key=r.key)
        if r.upload_error:
            res.error = r.upload_error
        elif r.url:
            res.url = r.url
        elif r.key and storage is not None:
            try:
                res.url = storage.url_for(r.key)
            except BridgeError:
                unsigned += 1
        elif r.key:
            unsigned += 1
        out.append(res)
    if unsigned:
        notes.append(f"{unsigned} file(s) had a signed COS URL, which cannot be signed again without the COS "
                     "settings: their URLs are not returned.")
    return out


# ---- messages ------------------------------------------------------------------------------------

def job_messages(out: Any, report: Report, job_id: str) -> Messages:
    yield from messages(out, report, extra={"job_id": job_id})
    yield out.create_variable_message("job_id", job_id)


def submitted_messages(out: Any, job: Job, status: str, position: int, record: JobRecord,
                       secrets: list[str]) -> Messages:
    where = ("it is running now" if status == "running" else
             f"it is waiting in ComfyUI's queue at position {position}" if position else "it is queued")
    notes = [plain(scrub(w, secrets), 500) for w in job.warnings[:MAX_NOTES]] + _websocket_note(job)
    sentence = (f"Submitted the ComfyUI job {job.job_id}: {where}. It runs on the server without this call; get the "
                f"result with the comfyui_collect tool and job_id {job.job_id} (each call can wait up to "
                f"{int(MAX_TIMEOUT)} s). The job can be collected for {TTL_SECONDS // 86400} days.")
    if notes:
        sentence += " Note: " + " ".join(notes)
    seeds = dict(list(job.seeds.items())[:100])
    yield out.create_text_message(sentence)
    yield out.create_variable_message("job_id", job.job_id)
    yield out.create_variable_message("status", status)
    yield out.create_variable_message("position", position)
    yield out.create_variable_message("prompt_id", job.prompt_id)
    yield out.create_variable_message("seeds", seeds)
    yield out.create_json_message({"job_id": job.job_id, "status": status, "position": position,
                                   "prompt_id": job.prompt_id, "seeds": seeds,
                                   "expires_at": _iso(record.expires_at), "notes": notes})


def still_going_messages(out: Any, record: JobRecord, collected: Collected) -> Messages:
    job = record.job
    elapsed = max(0.0, time.time() - job.submitted_at)
    node = plain(collected.node, 160) if collected.node else ""
    step = f"{collected.step[0]}/{collected.step[1]}" if collected.step and collected.step[1] else ""
    if collected.status == "queued":
        where = (f"is waiting in ComfyUI's queue at position {collected.position}" if collected.position
                 else "is waiting in ComfyUI's queue")
    else:
        where = "is running" + (f": node {node}" if node else "") + (f", step {step}" if step else "")
    sentence = (f"The ComfyUI job {job.job_id} {where} ({_duration(elapsed)} since it was submitted). It is not "
                f"finished yet: collect it again with job_id {job.job_id} to get the result.")
    notes = []
    if record.cancelled_at is not None:
        notes.append(f"It was cancelled {_ago(record.cancelled_at)} ago, but ComfyUI has not stopped it yet.")
    notes += _websocket_note(job)
    if notes:
        sentence += " Note: " + " ".join(notes)
    yield out.create_text_message(sentence)
    yield out.create_variable_message("job_id", job.job_id)
    yield out.create_variable_message("status", collected.status)
    yield out.create_variable_message("position", collected.position)
    yield out.create_variable_message("node", node)
    yield out.create_variable_message("step", step)
    yield out.create_json_message({
        "job_id": job.job_id, "status": collected.status, "position": collected.position, "node": node,
        "step": {"value": collected.step[0], "max": collected.step[1]} if step and collected.step else None,
        "elapsed_seconds": round(elapsed), "notes": notes})


def cancel_messages(out: Any, job_id: str, status: str, sentence: str) -> Messages:
    yield out.create_text_message(sentence)
    yield out.create_variable_message("job_id", job_id)
    yield out.create_variable_message("status", status)
    yield out.create_json_message({"job_id": job_id, "status": status})


def _websocket_note(job: Job) -> list[str]:
    """SaveImageWebsocket sends its images only to the socket of a run followed live: a collect
    cannot get them."""
    if any(isinstance(n, dict) and "websocket" in str(n.get("class_type", "")).lower() for n in job.graph.values()):
        return ["The workflow has a SaveImageWebsocket node: its images are sent only while a run is followed "
                "live, so collecting cannot return them (use SaveImage, or comfyui_workflow)."]
    return []


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _ago(when: float) -> str:
    return _duration(max(0.0, time.time() - when))


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Job records for "submit now, collect later", kept in a small key-value store.

The store is Dify's plugin storage in the plugin (tools/jobs.py adapts `self.session.storage`)
and a dict in tests (`DictKeyValue`); this module knows nothing of Dify. What it needs:

    load(key) -> bytes | None      None when the key does not exist
    save(key, data)                overwrite
    remove(key)                    delete (an error for a missing key is fine: it is ignored)

each raising JobStorageError when the store fails.

Keys (flat: Dify's daemon stores each key as a file, so "a" and "a/b" could not both exist):

    comfyui_job.<job id>           one JobRecord as JSON (at most MAX_RECORD_BYTES)
    comfyui_jobs.h<YYYYMMDDHH>     the ids of the jobs submitted in that UTC hour (a bucket)
    comfyui_jobs.index             the buckets that may still hold records

Plugin storage cannot list keys, so expiry walks the buckets: after each submit, buckets whose
hour ended more than TTL_SECONDS ago are swept (at most SWEEP_LIMIT records deleted per call;
the rest on the next one). A record read after its expiry is deleted on the spot and reported
as expired. The store has no compare-and-set: a bucket or the index is read, changed, written
and read back (up to three tries); two submits that interleave exactly between those steps can
still lose one bucket entry, and that record is then only deleted when someone reads it after
its expiry. Records are small and the storage quota bounds the total either way.

A record holds no secret: the Job (server URL without credentials, prompt and client ids, graph
skeleton, seeds, notes), the delivery settings, and once delivered what was delivered (our file
names, where ComfyUI has each file, COS keys, public URLs — never a signed URL: it may carry an
STS token; it is signed again from the key when the job is collected again).
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import BridgeError, InputError
from .jobs import Job, JobRecordError
from .models import NodeFailure, OutputFile, OutputRef, RunResult

log = logging.getLogger(__name__)

__all__ = ["Delivery", "DictKeyValue", "JobNotFound", "JobRecord", "JobStorageError", "JobStore", "KeyValue",
           "Remembered", "RememberedFile", "MAX_RECORD_BYTES", "TTL_SECONDS", "is_job_id", "record_key"]

TTL_SECONDS = 7 * 24 * 3600      # a job can be collected for 7 days after it was submitted
MAX_RECORD_BYTES = 128 * 1024    # one record; larger ones are shrunk (see _fit)
MAX_BUCKET_IDS = 2000            # jobs indexed per hour; more are expired lazily (when read)
MAX_BUCKETS = 1000               # buckets in the index (TTL is 168 hours: far from full in use)
SWEEP_LIMIT = 50                 # records deleted by one sweep
MAX_REMEMBERED_TEXT = 2000       # characters kept per text output (tools/delivery.py shows up to 2000 inline)
MAX_REMEMBERED_TEXTS = 20
MAX_WARNINGS = 25
MAX_WARNING_CHARS = 600
MAX_LISTED = 100                 # cached nodes, missing outputs, seeds kept
_FORMAT = 1
_RECORD_PREFIX = "comfyui_job."
_BUCKET_PREFIX = "comfyui_jobs.h"
INDEX_KEY = "comfyui_jobs.index"
_JOB_ID = re.compile(r"cj_[0-9a-f]{24}")
_BUCKET = re.compile(r"\d{10}")


# ---- errors ------------------------------------------------------------------------------------

class JobStorageError(BridgeError):
    """The key-value store (Dify's plugin storage) failed."""

    code = "job_storage"


class JobNotFound(InputError):
    code = "job_unknown"


def _unknown(job_id: str) -> JobNotFound:
    return JobNotFound(
        f"No job {job_id} is known in this workspace. Check the job id (comfyui_submit returns it as job_id); "
        f"jobs are deleted {TTL_SECONDS // 86400} days after they were submitted.",
        message_zh=f"当前工作空间中没有任务 {job_id}。请检查任务 ID（comfyui_submit 返回的 job_id）；"
                   f"任务在提交 {TTL_SECONDS // 86400} 天后会被删除。")


def _expired(job_id: str) -> JobNotFound:
    return JobNotFound(
        f"The job {job_id} expired: jobs can be collected for {TTL_SECONDS // 86400} days after they were "
        "submitted, and its record was deleted. Files already uploaded to COS stay in the bucket; to get the "
        "result again, submit the workflow again.",
        message_zh=f"任务 {job_id} 已过期：任务只能在提交后 {TTL_SECONDS // 86400} 天内收取，其记录已删除。"
                   "已上传到 COS 的文件仍保留在存储桶中；如需再次获得结果，请重新提交工作流。",
        code="job_expired")


def is_job_id(text: str) -> bool:
    return bool(_JOB_ID.fullmatch(text))


def record_key(job_id: str) -> str:
    if not is_job_id(job_id):
        raise ValueError("not a job id")
    return _RECORD_PREFIX + job_id


# ---- the store interface ----------------------------------------------------------------------

class KeyValue(Protocol):
    def load(self, key: str) -> bytes | None: ...

    def save(self, key: str, data: bytes) -> None: ...

    def remove(self, key: str) -> None: ...


class DictKeyValue:
    """An in-memory KeyValue (tests, the command line)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def load(self, key: str) -> bytes | None:
        return self.values.get(key)

    def save(self, key: str, data: bytes) -> None:
        self.values[key] = bytes(data)

    def remove(self, key: str) -> None:
        if key not in self.values:
            raise JobStorageError(f"no key {key}")
        del self.values[key]


# ---- what a record holds ------------------------------------------------------------------------

@dataclass
class Remembered:
    """One delivered output file: where ComfyUI has it, and what it was published as."""

    ref: OutputRef
    name: str                  # our name (blob name, last part of the COS key)
    kind: str
    mime_type: str
    size: int
    key: str = ""              # COS key ("" without COS)
    url: str = ""              # a public URL ("" for a signed one: signed again from `key`)
    upload_error: str = ""

    def to_list(self) -> list[Any]:
        r = self.ref
        return [[r.node_id, r.filename, r.subfolder, r.type, r.listed_under, r.animated], self.name, self.kind,
                self.mime_type, self.size, self.key, self.url, self.upload_error]

    @classmethod
    def from_list(cls, item: Any) -> Remembered:
        ref, name, kind, mime, size, key, url, error = item
        ref = OutputRef(str(ref[0]), str(ref[1]), str(ref[2]), str(ref[3]), str(ref[4]), ref[5] is True)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("size")
        return cls(ref, _s(name), _s(kind), _s(mime), size, _s(key), _s(url), _s(error))


@dataclass
class RememberedFile(OutputFile):
    """An output that could not be fetched again: no bytes, but its size and name as delivered."""

    known_size: int = 0
    fetch_error: str = ""

    @property
    def size(self) -> int:
        return self.known_size


@dataclass
class Delivery:
    """What the first collect delivered, enough to deliver the same again (files fetched anew)."""

    ending: str                                              # RunResult.ending
    files: list[Remembered] = field(default_factory=list)
    forgotten: int = 0                                       # delivered, but not kept (record size)
    texts: list[tuple[str, int]] = field(default_factory=list)   # (kept text, its full length)
    error: dict[str, Any] | None = None                      # code, message, message_zh, detail
    failure: list[str] | None = None                         # NodeFailure fields
    missing: list[tuple[str, str]] = field(default_factory=list)  # (node id, file name) not delivered
    warnings: list[str] = field(default_factory=list)
    cached_nodes: list[str] = field(default_factory=list)
    delivered_at: float = 0.0

    @classmethod
    def of(cls, result: RunResult, files: list[Remembered], when: float | None = None) -> Delivery:
        error = None
        if result.error is not None:
            detail = {str(k)[:40]: (v[:200] if isinstance(v, str) else v) for k, v in
                      list(result.error.detail.items())[:12]
                      if isinstance(v, (str, int, float, bool)) or v is None}
            error = {"code": result.error.code, "message": result.error.message[:4000],
                     "message_zh": result.error.message_zh[:4000], "detail": detail}
        failure = None
        if result.failure is not None:
            f = result.failure
            failure = [f.node_id[:100], f.node_type[:100], f.exception_type[:200], f.message[:1000]]
        texts = [(t[:MAX_REMEMBERED_TEXT], len(t)) for t in result.texts[:MAX_REMEMBERED_TEXTS] if isinstance(t, str)]
        return cls(ending=result.ending, files=files, texts=texts, error=error, failure=failure,
                   missing=[(r.node_id[:100], r.filename[:200]) for r in result.missing[:MAX_LISTED]],
                   warnings=[w[:MAX_WARNING_CHARS] for w in result.warnings[:MAX_WARNINGS] if isinstance(w, str)],
                   cached_nodes=[n[:64] for n in result.cached_nodes[:MAX_LISTED]],
                   delivered_at=time.time() if when is None else when)

    def run_error(self) -> BridgeError | None:
        if self.error is None:
            return None
        e = self.error
        return BridgeError(e["message"], message_zh=e.get("message_zh") or "", detail=e.get("detail") or {},
                           code=e.get("code") or "error")

    def result(self, job: Job, fetched: dict[tuple[str, str, str], OutputFile], server: str,
               fetch_error: str = "") -> RunResult:
        """The RunResult to deliver again: the remembered files in their order (with their names as
        delivered), fetched bytes where `fetched` has them, RememberedFile where not."""
        outputs: list[OutputFile] = []
        for r in self.files:
            got = fetched.get(r.ref.identity)
            if got is not None:
                outputs.append(OutputFile(ref=r.ref, data=got.data, mime_type=r.mime_type, kind=r.kind, name=r.name))
            else:
                outputs.append(RememberedFile(ref=r.ref, data=b"", mime_type=r.mime_type, kind=r.kind, name=r.name,
                                              known_size=r.size, fetch_error=fetch_error))
        texts = [text for text, _ in self.texts]
        warnings = list(self.warnings)
        for index, (text, length) in enumerate(self.texts, 1):
            if length > len(text):
                warnings.append(f"Text output {index} had {length} characters; collecting again returns its first "
                                f"{len(text)} (the job record keeps no more).")
        if self.forgotten:
            warnings.append(f"{self.forgotten} more file(s) were delivered the first time but are not in the job "
                            "record (it is kept small): collecting again does not return them.")
        failure = NodeFailure(*self.failure) if self.failure and len(self.failure) == 4 else None
        return RunResult(prompt_id=job.prompt_id, server=server, ending=self.ending, outputs=outputs, texts=texts,
                         missing=[OutputRef(node, name, "", "output", "images") for node, name in self.missing],
                         error=self.run_error(), failure=failure, cached_nodes=list(self.cached_nodes),
                         warnings=warnings, plan=job.plan())

    def to_dict(self) -> dict[str, Any]:
        return {"ending": self.ending, "files": [f.to_list() for f in self.files], "forgotten": self.forgotten,
                "texts": [list(t) for t in self.texts], "error": self.error, "failure": self.failure,
                "missing": [list(m) for m in self.missing], "warnings": self.warnings,
                "cached_nodes": self.cached_nodes, "delivered_at": self.delivered_at}

    @classmethod
    def from_dict(cls, data: Any) -> Delivery:
        if not isinstance(data, dict):
            raise ValueError("delivery")
        error = data.get("error")
        if error is not None and not (isinstance(error, dict) and isinstance(error.get("message"), str)):
            raise ValueError("error")
        failure = data.get("failure")
        if failure is not None and not (isinstance(failure, list) and all(isinstance(x, str) for x in failure)):
            raise ValueError("failure")
        return cls(ending=_s(data.get("ending")) or "success",
                   files=[Remembered.from_list(f) for f in _list(data.get("files"))],
                   forgotten=_int(data.get("forgotten")),
                   texts=[(_s(t[0]), _int(t[1])) for t in _list(data.get("texts"))
                          if isinstance(t, list) and len(t) == 2],
                   error=error, failure=failure,
                   missing=[(_s(m[0]), _s(m[1])) for m in _list(data.get("missing"))
                            if isinstance(m, list) and len(m) == 2],
                   warnings=[w for w in _list(data.get("warnings")) if isinstance(w, str)],
                   cached_nodes=[n for n in _list(data.get("cached_nodes")) if isinstance(n, str)],
                   delivered_at=float(data.get("delivered_at") or 0.0))


@dataclass
class JobRecord:
    """A submitted job and how to deliver it."""

    job: Job
    max_blob_bytes: int
    tool: str = "comfyui_submit"       # the tool that submitted it
    expires_at: float = 0.0            # Unix time; 0: submitted_at + TTL_SECONDS
    cancelled_at: float | None = None
    delivery: Delivery | None = None

    def __post_init__(self) -> None:
        if not self.expires_at:
            self.expires_at = self.job.submitted_at + TTL_SECONDS

    def to_dict(self) -> dict[str, Any]:
        job = self.job.to_dict()
        job["outputs"] = []     # the delivery keeps the refs it needs
        return {"format": _FORMAT, "job": job, "max_blob_bytes": self.max_blob_bytes, "tool": self.tool,
                "expires_at": self.expires_at, "cancelled_at": self.cancelled_at,
                "delivery": self.delivery.to_dict() if self.delivery else None}

    @classmethod
    def from_dict(cls, data: Any) -> JobRecord:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise JobRecordError("The job record cannot be read (it was written by another version, or damaged).",
                                 message_zh="无法读取任务记录（由其他版本写入，或已损坏）。")
        job = Job.from_dict(data.get("job"))
        try:
            delivery = Delivery.from_dict(data["delivery"]) if data.get("delivery") is not None else None
            cancelled = data.get("cancelled_at")
            return cls(job=job, max_blob_bytes=_int(data.get("max_blob_bytes")), tool=_s(data.get("tool")),
                       expires_at=float(data["expires_at"]),
                       cancelled_at=float(cancelled) if isinstance(cancelled, (int, float)) else None,
                       delivery=delivery)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            raise JobRecordError("The job record is damaged.", message_zh="任务记录已损坏。") from None


def _s(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("text")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("count")
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("list")
    return value


# ---- encoding under the size cap ---------------------------------------------------------------

def _dumps(data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:   # a lone surrogate (JSON allows `\\ud800` in a title or a name): escape it
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def encode(record: JobRecord, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The record as JSON of at most `limit` bytes. Above it, in this order until it fits: node
    titles leave the graph skeleton, then its links, then the skeleton itself (messages then name
    nodes by id only); seeds, notes and text outputs are cut; the remembered files are halved
    (collecting again says how many it no longer knows). Each step is linear in the record."""
    data = record.to_dict()
    out = _dumps(data)
    steps: list[Callable[[dict[str, Any]], bool]] = [_drop_titles, _drop_links, _drop_graph, _cut_lists]
    for step in steps:
        if len(out) <= limit:
            return out
        if step(data):
            out = _dumps(data)
    while len(out) > limit and data["delivery"] and data["delivery"]["files"]:
        files = data["delivery"]["files"]
        keep = len(files) // 2
        data["delivery"]["forgotten"] += len(files) - keep
        data["delivery"]["files"] = files[:keep]
        out = _dumps(data)
    if len(out) > limit:
        raise JobStorageError(f"The job record is {len(out)} bytes even at its smallest (limit {limit}).",
                              message_zh="任务记录过大。", code="job_record_too_large")
    return out


def _drop_titles(data: dict[str, Any]) -> bool:
    graph = data["job"]["graph"]
    for node in graph.values():
        if isinstance(node, dict):
            node.pop("_meta", None)
    return bool(graph)


def _drop_links(data: dict[str, Any]) -> bool:
    graph = data["job"]["graph"]
    for node in graph.values():
        if isinstance(node, dict):
            node["inputs"] = {}
    return bool(graph)


def _drop_graph(data: dict[str, Any]) -> bool:
    had = bool(data["job"]["graph"])
    data["job"]["graph"] = {}
    return had


def _cut_lists(data: dict[str, Any]) -> bool:
    job = data["job"]
    job["seeds"] = dict(list(job["seeds"].items())[:MAX_LISTED])
    job["warnings"] = [w[:300] for w in job["warnings"][:5]]
    delivery = data["delivery"]
    if delivery:
        delivery["texts"] = [[t[:200], n] for t, n in delivery["texts"][:5]]
        delivery["warnings"] = [w[:300] for w in delivery["warnings"][:5]]
        delivery["cached_nodes"] = delivery["cached_nodes"][:10]
        delivery["missing"] = delivery["missing"][:10]
    return True


def decode(raw: bytes, job_id: str) -> JobRecord:
    if len(raw) > 4 * MAX_RECORD_BYTES:
        raise JobRecordError("The job record is damaged (too large).", message_zh="任务记录已损坏（过大）。")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JobRecordError("The job record is damaged (not JSON).", message_zh="任务记录已损坏。") from None
    record = JobRecord.from_dict(data)
    if record.job.job_id != job_id:
        raise JobRecordError("The job record is damaged (another job's id).", message_zh="任务记录已损坏。")
    return record


# ---- the store ---------------------------------------------------------------------------------

class JobStore:
    """Job records in a KeyValue: create, load, update, and sweep the expired ones."""

    def __init__(self, kv: KeyValue, clock: Callable[[], float] = time.time,
                 pause: Callable[[float], None] = time.sleep):
        self.kv = kv
        self.clock = clock
        self.pause = pause

    # -- records --

    def create(self, record: JobRecord) -> None:
        """Save a new record (raises JobStorageError), index it, then sweep expired ones. Indexing
        and sweeping failures are logged, never raised: the record is what matters."""
        self.kv.save(record_key(record.job.job_id), encode(record))
        try:
            self._index(record.job.job_id, record.job.submitted_at)
        except BridgeError as exc:
            log.warning("job %s not indexed (%s): it expires when it is next read", record.job.job_id, exc.code)
        try:
            self.sweep()
        except BridgeError as exc:
            log.info("sweeping expired jobs failed (%s); the next submit tries again", exc.code)

    def load(self, job_id: str) -> JobRecord:
        """The record, or JobNotFound (unknown or expired; an expired one is deleted)."""
        raw = self.kv.load(record_key(job_id))
        if raw is None:
            raise _unknown(job_id)
        record = decode(raw, job_id)
        if self.clock() > record.expires_at:
            self._forget(record_key(job_id))
            raise _expired(job_id)
        return record

    def update(self, record: JobRecord) -> None:
        self.kv.save(record_key(record.job.job_id), encode(record))

    # -- index and expiry --

    def _index(self, job_id: str, submitted_at: float) -> None:
        bucket = time.strftime("%Y%m%d%H", time.gmtime(submitted_at))
        added = self._append(_BUCKET_PREFIX + bucket, job_id, MAX_BUCKET_IDS)
        if added:
            self._append(INDEX_KEY, bucket, MAX_BUCKETS)

    def _append(self, key: str, item: str, limit: int) -> bool:
        """Add `item` to the JSON list under `key` (read, write, read back; three tries). False
        when the list is full."""
        for attempt in range(3):
            items = self._read_list(key)
            if item in items:
                return True
            if len(items) >= limit:
                log.warning("%s is full (%d entries)", key, limit)
                return False
            self.kv.save(key, _dumps(items + [item]))
            if item in self._read_list(key):
                return True
            self.pause(0.05 * (attempt + 1) + secrets.randbelow(50) / 1000)
        log.warning("%s: %s lost to concurrent writers", key, item)
        return False

    def _read_list(self, key: str) -> list[str]:
        raw = self.kv.load(key)
        if raw is None:
            return []
        try:
            items = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return []
        return [i for i in items if isinstance(i, str)] if isinstance(items, list) else []

    def sweep(self, limit: int = SWEEP_LIMIT) -> int:
        """Delete up to `limit` records from buckets whose hour ended more than TTL_SECONDS ago.
        Returns how many records were deleted."""
        now = self.clock()
        due = sorted(b for b in self._read_list(INDEX_KEY) if _bucket_due(b, now))
        deleted = 0
        emptied: list[str] = []
        for bucket in due:
            key = _BUCKET_PREFIX + bucket
            ids = self._read_list(key)
            while ids and deleted < limit:
                job_id = ids.pop(0)
                if is_job_id(job_id):
                    self._forget(record_key(job_id))
                    deleted += 1
            if ids:
                self.kv.save(key, _dumps(ids))
                break
            self._forget(key)
            emptied.append(bucket)
        if emptied:
            # Read again just before writing: a bucket added meanwhile must not be dropped.
            left = [b for b in self._read_list(INDEX_KEY) if b not in emptied]
            self.kv.save(INDEX_KEY, _dumps(left))
        if deleted:
            log.info("deleted %d expired job record(s)", deleted)
        return deleted

    def _forget(self, key: str) -> None:
        try:
            self.kv.remove(key)
        except BridgeError:
            pass    # already gone (deleted by another call, or never written)


def _bucket_due(bucket: str, now: float) -> bool:
    if not _BUCKET.fullmatch(bucket):
        return True     # not ours: clear it out of the index
    try:
        start = calendar.timegm(time.strptime(bucket, "%Y%m%d%H"))
    except (ValueError, OverflowError):
        return True
    return start + 3600 + TTL_SECONDS < now

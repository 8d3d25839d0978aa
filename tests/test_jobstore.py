"""Job records in a key-value store (comfyui_bridge/jobstore.py), against Dify's plugin storage as
the daemon serves it (tests/e2e/stdio_harness.DaemonStorage through the SDK's calls): records
round-trip, stay under their size cap, expire after 7 days and are swept in bounded steps; the
bucket index survives a concurrent writer; a full storage and a missing permission say so."""

from __future__ import annotations

import json

import pytest
from job_fixture import DaemonStorage, SdkStorage

from comfyui_bridge.errors import ExecutionFailed
from comfyui_bridge.jobs import Job, JobRecordError
from comfyui_bridge.jobstore import (
    INDEX_KEY,
    MAX_RECORD_BYTES,
    SWEEP_LIMIT,
    TTL_SECONDS,
    Delivery,
    DictKeyValue,
    JobNotFound,
    JobRecord,
    JobStorageError,
    JobStore,
    Remembered,
    RememberedFile,
    decode,
    encode,
    record_key,
)
from comfyui_bridge.models import NodeFailure, OutputFile, OutputRef, RunResult
from tools.jobs import PluginStorage

T0 = 1_790_000_000.0          # 2026-09-21 (UTC), a fixed "now" for the clock


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def job(n: int = 0, submitted_at: float = T0, graph: dict | None = None) -> Job:
    return Job(job_id=f"cj_{n:024x}", server="http://127.0.0.1:8188", prompt_id=f"p-{n}", client_id=f"c{n}",
               submitted_at=submitted_at, graph=graph or {"9": {"class_type": "SaveImage", "inputs": {}}},
               seeds={"3.seed": 42})


def dify_store(clock: Clock, daemon: DaemonStorage | None = None, **storage) -> tuple[JobStore, DaemonStorage]:
    daemon = daemon or DaemonStorage()
    return JobStore(PluginStorage(SdkStorage(daemon, **storage)), clock=clock, pause=lambda s: None), daemon


def test_a_record_round_trips_through_dify_storage_as_hex_on_the_wire():
    store, daemon = dify_store(Clock())
    record = JobRecord(job=job(1), max_blob_bytes=5 * 1024 * 1024, tool="comfyui_submit")
    store.create(record)
    loaded = store.load(record.job.job_id)
    assert loaded.job == record.job and loaded.max_blob_bytes == 5 * 1024 * 1024
    assert loaded.expires_at == T0 + TTL_SECONDS and loaded.delivery is None and loaded.cancelled_at is None
    # The key is derived from the job id; the record is JSON; nothing else was written but the index.
    assert json.loads(daemon.values[record_key(record.job.job_id)])["job"]["job_id"] == record.job.job_id
    assert set(daemon.values) == {record_key(record.job.job_id), "comfyui_jobs.h2026092114", INDEX_KEY}
    assert json.loads(daemon.values[INDEX_KEY]) == ["2026092114"]
    assert json.loads(daemon.values["comfyui_jobs.h2026092114"]) == [record.job.job_id]


def test_a_title_that_is_not_valid_utf8_is_stored_escaped_and_comes_back_as_it_was():
    store, daemon = dify_store(Clock())
    graph = {"9": {"class_type": "SaveImage", "inputs": {}, "_meta": {"title": "odd \ud800 title"}}}
    record = JobRecord(job=job(2, graph=graph), max_blob_bytes=1024, tool="comfyui_submit")
    store.create(record)
    assert b"\\ud800" in daemon.values[record_key(record.job.job_id)]
    assert store.load(record.job.job_id).job == record.job


def test_unknown_and_expired_jobs_say_so_and_an_expired_record_is_deleted_when_read():
    clock = Clock()
    store, daemon = dify_store(clock)
    with pytest.raises(JobNotFound) as unknown:
        store.load("cj_" + "0" * 24)
    assert unknown.value.code == "job_unknown"
    assert "No job cj_000000000000000000000000 is known" in unknown.value.message
    store.create(JobRecord(job=job(2), max_blob_bytes=0))
    clock.now = T0 + TTL_SECONDS - 1
    assert store.load(job(2).job_id).job.job_id == job(2).job_id
    clock.now = T0 + TTL_SECONDS + 1
    with pytest.raises(JobNotFound) as expired:
        store.load(job(2).job_id)
    assert expired.value.code == "job_expired" and "expired" in expired.value.message
    assert record_key(job(2).job_id) not in daemon.values
    with pytest.raises(JobNotFound) as again:
        store.load(job(2).job_id)
    assert again.value.code == "job_unknown"


def test_expired_records_are_swept_by_later_submits_in_bounded_steps():
    clock = Clock()
    store, daemon = dify_store(clock)
    old = [job(n, submitted_at=T0) for n in range(SWEEP_LIMIT * 2 + 20)]     # 120 jobs in one hour
    for j in old:
        store.create(JobRecord(job=j, max_blob_bytes=0))
    kept = job(999, submitted_at=T0 + 3 * 86400)
    clock.now = kept.submitted_at
    store.create(JobRecord(job=kept, max_blob_bytes=0))
    assert sum(k.startswith("comfyui_job.") for k in daemon.values) == len(old) + 1   # nothing due yet

    # Eight days later every old job is due; each submit deletes at most SWEEP_LIMIT of them.
    clock.now = T0 + TTL_SECONDS + 3600 + 1
    counts = []
    for n in range(3):
        fresh = job(2000 + n, submitted_at=clock.now)
        store.create(JobRecord(job=fresh, max_blob_bytes=0))
        counts.append(sum(record_key(j.job_id) in daemon.values for j in old))
    assert counts == [len(old) - SWEEP_LIMIT, len(old) - 2 * SWEEP_LIMIT, 0]
    assert record_key(kept.job_id) in daemon.values     # submitted 3 days later: not due
    assert "2026092114" not in json.loads(daemon.values[INDEX_KEY])
    assert "comfyui_jobs.h2026092114" not in daemon.values
    assert store.load(kept.job_id).job == kept


def test_an_index_entry_clobbered_by_a_concurrent_writer_is_written_again():
    class Racing(DictKeyValue):
        """The first write of the bucket is overwritten at once by another process's list."""

        def __init__(self):
            super().__init__()
            self.raced = False

        def save(self, key, data):
            super().save(key, data)
            if key.startswith("comfyui_jobs.h") and not self.raced:
                self.raced = True
                super().save(key, json.dumps(["cj_" + "f" * 24]).encode())

    kv = Racing()
    store = JobStore(kv, clock=Clock(), pause=lambda s: None)
    store.create(JobRecord(job=job(7), max_blob_bytes=0))
    assert kv.raced
    assert json.loads(kv.values["comfyui_jobs.h2026092114"]) == ["cj_" + "f" * 24, job(7).job_id]


def test_a_large_graph_loses_its_titles_first_and_the_record_stays_under_the_cap():
    # 1000 nodes with 120-character titles: ~140 KB of titles alone, ~60 KB without them.
    graph = {str(n): {"class_type": "CLIPTextEncode", "_meta": {"title": "t" * 120},
                      "inputs": {"clip": [str(n + 1), 0]}} for n in range(1000)}
    record = JobRecord(job=job(3, graph=graph), max_blob_bytes=0)
    raw = encode(record)
    assert len(raw) <= MAX_RECORD_BYTES
    back = decode(raw, record.job.job_id).job.graph
    assert len(back) == 1000 and all("_meta" not in n for n in back.values())
    assert back["5"]["inputs"] == {"clip": ["6", 0]}


def test_a_delivery_with_too_many_files_for_the_cap_remembers_half_as_often_as_needed():
    files = [Remembered(OutputRef("9", "f" * 200 + f"_{n}.png", "", "output", "images"), f"p_9_{n}.png", "image",
                        "image/png", 1000, f"comfyui/2026/09/21/p_9_{n}.png",
                        f"https://b.cos.ap-guangzhou.myqcloud.com/comfyui/2026/09/21/p_9_{n}.png")
             for n in range(1, 801)]    # ~800 × 400 bytes = 320 KB: two halvings leave 200 (~80 KB)
    record = JobRecord(job=job(4), max_blob_bytes=0, delivery=Delivery(ending="success", files=files))
    back = decode(encode(record), record.job.job_id).delivery
    assert (len(back.files), back.forgotten) == (200, 600)
    assert back.files == files[:200]


def test_delivery_round_trip_rebuilds_the_result_and_says_what_it_cut():
    ref = OutputRef("9", "ComfyUI_00001_.png", "", "output", "images")
    result = RunResult(prompt_id="p-5", server="http://127.0.0.1:8188", ending="error",
                       texts=["short", "x" * 5000], missing=[OutputRef("12", "lost.png", "", "output", "images")],
                       error=ExecutionFailed("Node 3 failed", message_zh="节点 3 失败", detail={"node_id": "3"}),
                       failure=NodeFailure("3", "KSampler", "RuntimeError", "boom"), cached_nodes=["4"],
                       warnings=["a note"])
    kept = Remembered(ref, "p-5_9_1.png", "image", "image/png", 321, "k/p-5_9_1.png", "https://x/k/p-5_9_1.png")
    record = JobRecord(job=job(5), max_blob_bytes=0, delivery=Delivery.of(result, [kept], when=T0))
    delivery = decode(encode(record), record.job.job_id).delivery
    again = delivery.result(record.job, {ref.identity: OutputFile(ref, b"png", "image/png", "image", "x.png")},
                            "http://127.0.0.1:8188")
    assert [(f.name, f.data) for f in again.outputs] == [("p-5_9_1.png", b"png")]
    assert again.texts == ["short", "x" * 2000]
    assert "Text output 2 had 5000 characters" in " ".join(again.warnings) and "a note" in again.warnings
    assert (again.error.code, again.error.message, again.error.message_zh) == ("execution_failed", "Node 3 failed",
                                                                               "节点 3 失败")
    assert again.failure == NodeFailure("3", "KSampler", "RuntimeError", "boom")
    assert [(m.node_id, m.filename) for m in again.missing] == [("12", "lost.png")]
    assert again.plan.seeds() == {"3.seed": 42}
    # Not fetched again: the name and size as delivered, no bytes.
    unfetched = delivery.result(record.job, {}, "http://127.0.0.1:8188").outputs[0]
    assert isinstance(unfetched, RememberedFile) and unfetched.size == 321 and unfetched.data == b""


@pytest.mark.parametrize("raw", [b"not json", b"[]", json.dumps({"format": 2}).encode(),
                                 json.dumps({"format": 1, "job": {"format": 1}}).encode(), b"{" * 100000])
def test_a_damaged_record_is_refused_with_our_error(raw):
    kv = DictKeyValue()
    kv.save(record_key(job(6).job_id), raw)
    with pytest.raises(JobRecordError):
        JobStore(kv, clock=Clock()).load(job(6).job_id)


def test_a_record_of_another_job_under_this_key_is_refused():
    kv = DictKeyValue()
    kv.save(record_key(job(8).job_id), encode(JobRecord(job=job(9), max_blob_bytes=0)))
    with pytest.raises(JobRecordError, match="another job"):
        JobStore(kv, clock=Clock()).load(job(8).job_id)


def test_a_full_storage_and_a_missing_permission_are_named():
    store, daemon = dify_store(Clock(), size=2048)     # the smallest quota a manifest may declare is 1024
    big = {str(n): {"class_type": "X" * 100, "inputs": {}} for n in range(40)}
    with pytest.raises(JobStorageError) as full:
        store.create(JobRecord(job=job(10, graph=big), max_blob_bytes=0))
    assert full.value.code == "job_storage_full" and "PERSISTENCE_STORAGE_MAX_SIZE" in full.value.message
    store, _ = dify_store(Clock(), enabled=False)
    with pytest.raises(JobStorageError) as denied:
        store.load(job(11).job_id)
    assert "storage permission" in denied.value.message


@pytest.mark.parametrize("bad", ["cj_123", "CJ_" + "0" * 24, "cj_" + "g" * 24, "../comfyui_job.x", ""])
def test_only_job_ids_become_keys(bad):
    with pytest.raises(ValueError):
        record_key(bad)

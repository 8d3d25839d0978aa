"""Submit now, collect later: the engine side. A submitted job is a small JSON record without
secrets; any engine built from the same credentials (another call, another process) collects it,
in pieces, until it ends; a restart of ComfyUI is reported as lost; cancel stops it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import InputError
from comfyui_bridge.jobs import Job, JobRecordError
from comfyui_bridge.models import RunRequest
from comfyui_bridge.workflow import load_workflow

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"


def save_workflow():
    return load_workflow((WORKFLOWS / "empty_save_1024.json").read_bytes())


def server_bytes(comfy, ref):
    base = Path(comfy.base_dir)
    root = base / "root" if (base / "root").is_dir() else base
    return (root / ref.type / ref.subfolder / ref.filename).read_bytes()


def test_submit_returns_while_the_run_goes_on_and_collect_brings_it_home_in_pieces(comfy_server):
    comfy_server.config(node_delay={"SaveImage": 3.0})
    engine = Engine(parse_servers(comfy_server.url))
    start = time.monotonic()
    submitted = engine.submit(RunRequest(workflow=save_workflow(), timeout=60))
    assert time.monotonic() - start < 2.0      # returns at once: the run itself takes 3 s
    assert submitted.status in ("queued", "running")
    record = json.dumps(submitted.job.to_dict())
    # Another process: a new engine from the same credentials, the job read back from storage.
    other = Engine(parse_servers(comfy_server.url))
    first = other.collect(Job.from_dict(json.loads(record)), wait=0.5)
    assert first.status in ("queued", "running") and first.result is None
    end = time.monotonic() + 30
    collected = first
    while collected.status != "finished":
        assert time.monotonic() < end
        collected = other.collect(Job.from_dict(json.loads(record)), wait=1.0)
    result = collected.result
    assert result.ok, result.error
    assert [f.node_id for f in result.outputs] == ["2"]
    assert result.outputs[0].data == server_bytes(comfy_server, result.outputs[0].ref)
    assert result.prompt_id == submitted.job.prompt_id


def test_a_job_record_carries_no_secret_and_refuses_garbage():
    engine_record = Job(job_id="cj_0123456789abcdef01234567", server="http://h:8188", prompt_id="p", client_id="c",
                        submitted_at=1.0)
    assert Job.from_dict(json.loads(json.dumps(engine_record.to_dict()))) == engine_record
    for garbage in (None, [], {"format": 1}, {"format": 1, "job_id": 5}, "x" * 100):
        with pytest.raises(JobRecordError):
            Job.from_dict(garbage)


def test_submitting_records_no_credential(comfy_server_factory):
    comfy = comfy_server_factory(token="tok-job-secret-1234")
    engine = Engine(parse_servers(comfy.url, token="tok-job-secret-1234"))
    submitted = engine.submit(RunRequest(workflow=save_workflow(), prompt="x", timeout=30))
    assert "tok-job-secret-1234" not in json.dumps(submitted.job.to_dict())
    assert submitted.job.job_id.startswith("cj_") and submitted.job.prompt_id not in submitted.job.job_id


def test_a_restart_of_comfyui_between_submit_and_collect_is_reported_as_lost(comfy_server):
    comfy_server.config(node_delay={"SaveImage": 5.0})
    engine = Engine(parse_servers(comfy_server.url))
    submitted = engine.submit(RunRequest(workflow=save_workflow(), timeout=60))
    comfy_server.restart()
    collected = engine.collect(submitted.job, wait=5)
    assert collected.status == "finished" and collected.result.error.code == "run_lost"
    assert "lost the run" in collected.result.error.message


def test_cancel_stops_a_submitted_job_on_its_server(comfy_server):
    comfy_server.config(paused_queue=True)
    engine = Engine(parse_servers(comfy_server.url))
    submitted = engine.submit(RunRequest(workflow=save_workflow(), timeout=30))
    assert submitted.status == "queued" and submitted.position == 1
    assert engine.cancel(submitted.job)
    stats = comfy_server.stats()
    assert submitted.job.prompt_id not in stats["queue"]["pending"] + stats["queue"]["running"]


def test_outputs_can_be_fetched_again_after_the_history_is_gone(comfy_server):
    engine = Engine(parse_servers(comfy_server.url))
    submitted = engine.submit(RunRequest(workflow=save_workflow(), timeout=30))
    collected = engine.collect(submitted.job, wait=20)
    assert collected.status == "finished" and submitted.job.outputs
    requests.post(f"{comfy_server.url}/history", json={"delete": [submitted.job.prompt_id]}, timeout=5)
    again = engine.fetch_outputs(submitted.job)
    assert [f.data for f in again.outputs] == [f.data for f in collected.result.outputs]


def test_a_job_whose_server_is_no_longer_configured_says_so(comfy_server):
    submitted = Engine(parse_servers(comfy_server.url)).submit(RunRequest(workflow=save_workflow(), timeout=30))
    with pytest.raises(InputError) as caught:
        Engine(parse_servers("http://127.0.0.1:9")).collect(submitted.job)
    assert caught.value.code == "job_server_gone"
    assert "no longer in the plugin's ComfyUI addresses" in caught.value.message


def test_state_looks_without_touching_and_a_quick_collect_also_sees_a_lost_job(comfy_server):
    comfy_server.config(paused_queue=True)
    engine = Engine(parse_servers(comfy_server.url))
    submitted = engine.submit(RunRequest(workflow=save_workflow(), timeout=30))
    assert engine.state(submitted.job) == "queued"
    comfy_server.restart()
    assert engine.state(submitted.job) == "lost"
    collected = engine.collect(submitted.job, wait=0)       # one quick look is enough to say so
    assert collected.status == "finished" and collected.result.error.code == "run_lost"


def test_state_of_a_finished_job_leaves_its_history_for_the_collect(comfy_server):
    engine = Engine(parse_servers(comfy_server.url))
    submitted = engine.submit(RunRequest(workflow=save_workflow(), timeout=30))
    end = time.monotonic() + 20
    while engine.state(submitted.job) != "finished":
        assert time.monotonic() < end
        time.sleep(0.1)
    assert submitted.job.prompt_id in comfy_server.stats()["history"]
    collected = engine.collect(submitted.job, wait=5)
    assert collected.status == "finished" and [f.node_id for f in collected.result.outputs] == ["2"]

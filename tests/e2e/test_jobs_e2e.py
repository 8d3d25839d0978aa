"""Submit now, collect later, end to end: the built .difypkg over Dify's stdio protocol, its
plugin storage answered as the daemon answers it (stdio_harness.DaemonStorage), against the
ComfyUI and COS test servers.

The long run, on an accelerated clock: tests/fixtures/workflows/slow_progress_then_save.json sends
40 images through SaveImageWebsocket (node 2, one progress step each) and saves one 1024×1024 image
with SaveImage (node 4). The test server spends 22.5 simulated seconds per step, so the run takes
15 simulated minutes; its clock runs 30 times faster than the wall clock (`clock_scale`), so that
is 30 real seconds. Dify's 600 s limit on one tool call scales with it to 20 s: the harness fails
any call that takes longer, and the run cannot fit into one call. Collects that wait 9 s
(4.5 simulated minutes) bring it home in pieces, the first of them from a fresh plugin process.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from cos_fixture import fetch
from job_fixture import object_versions, versioned_bucket
from stdio_harness import DaemonStorage, PluginProcess

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "tests/fixtures/workflows"
SLOW = (WORKFLOWS / "slow_progress_then_save.json").read_text()
SAVE = (WORKFLOWS / "empty_save_1024.json").read_text()
PROVIDER = "comfyui_bizyair"
ENV = {"NO_PROXY": "*", "no_proxy": "*"}
STEPS = 40          # the long run's SaveImageWebsocket images
CLOCK_SCALE = 30.0  # simulated seconds per real second on the test server
STEP_SECONDS = 22.5  # simulated seconds per step: 40 steps are 15 simulated minutes
DIFY_LIMIT = 600 / CLOCK_SCALE   # Dify's limit on one tool call, on the same clock: 20 real seconds
WAIT = 9            # each collect's wait (real seconds; 4.5 simulated minutes)


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess.start(env=ENV) as proc:
        yield proc


def invoke(plugin, tool, creds, params, storage, timeout=120):
    run = plugin.invoke(PROVIDER, tool, creds, params, storage=storage, timeout=timeout)
    return run


def test_a_run_longer_than_one_call_is_collected_in_pieces_from_a_fresh_process(
        plugin, comfy_server, cos_server, cos_credentials):
    versioned_bucket(cos_server, cos_credentials["cos_bucket"])
    comfy_server.config(ws_image_seconds=STEP_SECONDS, clock_scale=CLOCK_SCALE)
    storage = DaemonStorage()
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url)
    started = time.monotonic()
    submitted = invoke(plugin, "comfyui_submit", creds, {"workflow_json": SLOW, "prompt": "x"}, storage,
                       timeout=DIFY_LIMIT)
    assert not submitted.errors, submitted.errors
    job = submitted.variables
    assert job["status"] in ("queued", "running") and job["job_id"].startswith("cj_")
    assert time.monotonic() - started < 10

    # Dify restarts the plugin (or another instance serves the next call): only the storage is shared.
    log = []
    with PluginProcess.start(env=ENV) as fresh:
        while True:
            call_started = time.monotonic()
            # A call over Dify's (scaled) limit raises TimeoutError here: every piece must fit.
            run = invoke(fresh, "comfyui_collect", creds, {"job_id": job["job_id"], "wait": WAIT}, storage,
                         timeout=DIFY_LIMIT)
            assert not run.errors, run.errors
            state = run.variables
            log.append((round((time.monotonic() - started) * CLOCK_SCALE / 60, 1),
                        round(time.monotonic() - call_started, 1),
                        state["status"], state.get("node"), state.get("step")))
            if state["status"] not in ("queued", "running"):
                break
            assert time.monotonic() - started < 150, log
        final = run
        again = invoke(fresh, "comfyui_collect", creds, {"job_id": job["job_id"], "wait": 0}, storage)
    whole = time.monotonic() - started
    print(f"\nrun of {whole:.1f} s real = {whole * CLOCK_SCALE / 60:.1f} simulated minutes; Dify's limit "
          f"{DIFY_LIMIT:.0f} s real = 10 simulated minutes.\ncollects (simulated minutes since submit, "
          f"real s in the call, status, node, step):\n" + "\n".join(map(str, log)))

    assert whole > DIFY_LIMIT + 5, log       # longer than any one call may take
    running = [entry for entry in log if entry[2] == "running"]
    assert len(running) >= 2, log            # ~30 s of run, 9 s per call
    assert all(entry[1] < WAIT + 3 for entry in log[:-1]), log     # each call returned after its wait
    steps = [int(entry[4].split("/")[0]) for entry in running if entry[3] == "2 (SaveImageWebsocket)" and entry[4]]
    assert len(steps) >= 2 and steps == sorted(steps) and all(e[4].endswith(f"/{STEPS}") for e in running if e[4])

    out = final.variables
    assert out["status"] == "success" and out["job_id"] == job["job_id"] and out["prompt_id"] == job["prompt_id"]
    (blob,) = final.blobs.values()
    assert blob.data == comfy_server.saved_file(job["prompt_id"], "4").read_bytes()
    assert blob.meta["filename"] == f"{job['prompt_id']}_4_1.png"
    assert fetch(cos_server, out["url"]).content == blob.data
    assert "SaveImageWebsocket" in final.text          # its images cannot be collected: said so
    # Collected again: the same files, URLs and texts; the object was uploaded once.
    assert again.variables == out and again.text == final.text and again.jsons == final.jsons
    assert [b.data for b in again.blobs.values()] == [blob.data]
    assert list(object_versions(cos_server, cos_credentials["cos_bucket"]).values()) == [1]


def test_two_collects_of_one_job_at_once_upload_once(plugin, comfy_server, cos_server, cos_credentials):
    versioned_bucket(cos_server, cos_credentials["cos_bucket"])
    comfy_server.config(node_delay={"SaveImage": 2.0})
    storage = DaemonStorage()
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url)
    job = invoke(plugin, "comfyui_submit", creds, {"workflow_json": SAVE}, storage).variables
    runs: list = [None, None]

    def collect(i: int) -> None:
        runs[i] = invoke(plugin, "comfyui_collect", creds, {"job_id": job["job_id"], "wait": 30}, storage)

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert all(r is not None and not r.errors for r in runs), [r and r.errors for r in runs]
    assert runs[0].variables == runs[1].variables and runs[0].variables["status"] == "success"
    assert [b.data for b in runs[0].blobs.values()] == [b.data for b in runs[1].blobs.values()]
    assert list(object_versions(cos_server, cos_credentials["cos_bucket"]).values()) == [1]


def test_a_restart_of_comfyui_makes_the_job_lost(plugin, comfy_server):
    comfy_server.config(node_delay={"SaveImage": 5.0})
    storage = DaemonStorage()
    creds = {"comfyui_base_url": comfy_server.url}
    job = invoke(plugin, "comfyui_submit", creds, {"workflow_json": SAVE}, storage).variables
    comfy_server.restart()
    run = invoke(plugin, "comfyui_collect", creds, {"job_id": job["job_id"], "wait": 0}, storage)
    assert run.errors and f"The job {job['job_id']} is lost" in run.error
    assert "restarted, or its history was trimmed" in run.error


def test_cancel_stops_a_running_job_and_collect_then_says_so(plugin, comfy_server):
    comfy_server.config(ws_image_seconds=0.5)
    storage = DaemonStorage()
    creds = {"comfyui_base_url": comfy_server.url}
    job = invoke(plugin, "comfyui_submit", creds, {"workflow_json": SLOW}, storage).variables
    time.sleep(1.5)
    cancelled = invoke(plugin, "comfyui_cancel", creds, {"job_id": job["job_id"]}, storage)
    assert not cancelled.errors and cancelled.variables["status"] == "cancelled"
    assert "stopped on ComfyUI" in cancelled.text
    assert any(i["prompt_id"] == job["prompt_id"] and i["applied"] for i in comfy_server.stats()["interrupts"])
    run = invoke(plugin, "comfyui_collect", creds, {"job_id": job["job_id"], "wait": 5}, storage)
    assert run.errors and "was cancelled" in run.error


def test_expired_jobs_are_refused_and_swept(plugin, comfy_server):
    storage = DaemonStorage()
    creds = {"comfyui_base_url": comfy_server.url}
    job = invoke(plugin, "comfyui_submit", creds, {"workflow_json": SAVE}, storage).variables
    key = f"comfyui_job.{job['job_id']}"
    record = json.loads(storage.values[key])
    record["expires_at"] = time.time() - 1
    storage.values[key] = json.dumps(record).encode()
    run = invoke(plugin, "comfyui_collect", creds, {"job_id": job["job_id"], "wait": 0}, storage)
    assert run.errors and f"The job {job['job_id']} expired" in run.error and key not in storage.values

    # A job submitted eight days ago (its record and its hour's bucket in the index): the next
    # submit deletes it.
    old_id = "cj_" + "a" * 24
    old_hour = time.strftime("%Y%m%d%H", time.gmtime(time.time() - 8 * 86400))
    storage.values[f"comfyui_job.{old_id}"] = b"{}"
    storage.values[f"comfyui_jobs.h{old_hour}"] = json.dumps([old_id]).encode()
    index = json.loads(storage.values["comfyui_jobs.index"])
    storage.values["comfyui_jobs.index"] = json.dumps([old_hour, *index]).encode()
    fresh = invoke(plugin, "comfyui_submit", creds, {"workflow_json": SAVE}, storage)
    assert not fresh.errors
    assert f"comfyui_job.{old_id}" not in storage.values and f"comfyui_jobs.h{old_hour}" not in storage.values
    assert old_hour not in json.loads(storage.values["comfyui_jobs.index"])
    assert f"comfyui_job.{fresh.variables['job_id']}" in storage.values
    # Every request the plugin made went through the storage protocol (hex values, daemon key rules).
    assert {r["opt"] for r in storage.requests} <= {"get", "set", "del", "exist"}

"""The job tools (tools/jobs.py: comfyui_submit, comfyui_collect, comfyui_cancel, text_to_image in
submit mode) with the real engine, the ComfyUI test server, the COS test server and Dify's plugin
storage as the daemon serves it (job_fixture.SdkStorage). Each call below is one tool call, as
Dify would make it; the storage is all they share.

What is expected comes from the workflows: empty_save_1024.json has one SaveImage node ("2") fed
by a 1024×1024 EmptyImage, so a finished job delivers exactly that PNG from node 2;
slow_progress_ws_images.json sends 100 images through SaveImageWebsocket ("2"), one progress step
each, so a collect during it sees node 2 and a step out of 100.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from cos_fixture import COS_AK, COS_SK, fetch
from dify_view import variables as dify_variables
from job_fixture import DaemonStorage, JobTool, SdkStorage, object_versions, versioned_bucket
from media_facts import mp4_facts

from comfyui_bridge.bizyair.server_mode import forget_server_modes
from comfyui_bridge.jobstore import TTL_SECONDS, record_key
from tools.catalogue_requests import text_to_video_request
from tools.delivery import ToolRunError
from tools.jobs import MAX_WAIT, cancel, collect, invoke_in_mode, submit, wait_param
from tools.params import text_to_image_request, workflow_request

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = Path(__file__).parent / "fixtures/workflows"
SAVE = (WORKFLOWS / "empty_save_1024.json").read_text()
SLOW_WS = (WORKFLOWS / "slow_progress_ws_images.json").read_text()
PNG = b"\x89PNG\r\n\x1a\n"


def call(fn, tool, params) -> list[tuple]:
    return list(fn(tool, params))


def variables(sent) -> dict:
    return dify_variables(sent)


def only(sent, kind):
    (item,) = [m for m in sent if m[0] == kind]
    return item[1]


def blobs(sent) -> list[tuple[bytes, dict]]:
    return [(m[1], m[2]) for m in sent if m[0] == "blob"]


def server_file(comfy, prompt_id: str, node: str = "2") -> tuple[Path, bytes]:
    path = comfy.saved_file(prompt_id, node)
    return path, path.read_bytes()


@pytest.fixture
def daemon():
    return DaemonStorage()


def tool_for(comfy, daemon, **credentials) -> JobTool:
    return JobTool({"comfyui_base_url": comfy.url, **credentials}, SdkStorage(daemon))


def submit_save(tool, **params) -> dict:
    sent = call(lambda t, p: submit(t, p, workflow_request, "comfyui_submit"), tool,
                {"workflow_json": SAVE, **params})
    return variables(sent) | {"text": only(sent, "text"), "json": only(sent, "json")}


def collect_until_done(tool, job_id: str, wait: float = 1.0, limit: float = 60.0) -> tuple[list, list[list]]:
    """Collect until the job is no longer queued or running; (final messages, earlier ones)."""
    earlier = []
    end = time.monotonic() + limit
    while True:
        sent = call(collect, tool, {"job_id": job_id, "wait": wait})
        if variables(sent)["status"] not in ("queued", "running"):
            return sent, earlier
        earlier.append(sent)
        assert time.monotonic() < end, "the job did not finish"


def test_submit_returns_at_once_and_collect_brings_the_run_home_in_pieces(comfy_server, daemon):
    comfy_server.config(node_delay={"SaveImage": 3.0})
    tool = tool_for(comfy_server, daemon)
    started = time.monotonic()
    job = submit_save(tool)
    assert time.monotonic() - started < 2.5           # the run itself takes 3 s
    assert job["status"] in ("queued", "running") and job["job_id"].startswith("cj_")
    assert f"comfyui_collect tool and job_id {job['job_id']}" in job["text"]
    assert job["json"]["job_id"] == job["job_id"] and job["json"]["seeds"] == {}
    final, earlier = collect_until_done(tool, job["job_id"], wait=0.5)
    assert earlier, "a 3 s run collected with 0.5 s waits is seen running at least once"
    running = variables(earlier[0])
    assert running["status"] in ("queued", "running") and running["job_id"] == job["job_id"]
    assert f"collect it again with job_id {job['job_id']}" in only(earlier[0], "text")
    out = variables(final)
    assert out["status"] == "success" and out["job_id"] == job["job_id"] and out["prompt_id"] == job["prompt_id"]
    (blob, meta), = blobs(final)
    assert blob == server_file(comfy_server, job["prompt_id"])[1] and blob[:8] == PNG
    assert meta["filename"] == f"{job['prompt_id']}_2_1.png"
    summary = only(final, "json")
    assert summary["job_id"] == job["job_id"] and [o["node_id"] for o in summary["outputs"]] == ["2"]


def test_a_collect_during_the_run_names_the_node_and_its_step(comfy_server, daemon):
    comfy_server.config(ws_image_seconds=0.1)          # 100 images: about 10 s
    tool = tool_for(comfy_server, daemon)
    sent = call(lambda t, p: submit(t, p, workflow_request, "comfyui_submit"), tool, {"workflow_json": SLOW_WS})
    job_id = variables(sent)["job_id"]
    assert "SaveImageWebsocket node" in only(sent, "text")     # its images cannot be collected later
    time.sleep(1.0)
    seen = variables(call(collect, tool, {"job_id": job_id, "wait": 2}))
    assert seen["status"] == "running" and seen["node"] == "2 (SaveImageWebsocket)"
    value, total = seen["step"].split("/")
    assert total == "100" and 0 <= int(value) < 100
    assert cancel_status(tool, job_id) == "cancelled"


def cancel_status(tool, job_id: str) -> str:
    return variables(call(cancel, tool, {"job_id": job_id}))["status"]


def test_collecting_again_returns_the_same_files_under_the_same_keys_without_uploading(
        comfy_server, daemon, cos_server, cos_credentials):
    versioned_bucket(cos_server, cos_credentials["cos_bucket"])
    tool = tool_for(comfy_server, daemon, **cos_credentials)
    job = submit_save(tool)
    first, _ = collect_until_done(tool, job["job_id"])
    url = variables(first)["url"]
    assert url.startswith("https://") and fetch(cos_server, url).content == blobs(first)[0][0]
    # ComfyUI's history is trimmed meanwhile: the files are fetched again by name.
    requests.post(f"{comfy_server.url}/history", json={"delete": [job["prompt_id"]]}, timeout=5)
    second = call(collect, tool, {"job_id": job["job_id"], "wait": 0})
    assert second == first
    versions = object_versions(cos_server, cos_credentials["cos_bucket"])
    assert list(versions.values()) == [1] and next(iter(versions)) in url     # one object, uploaded once


def test_files_gone_from_comfyui_come_back_as_their_urls_or_are_said_lost(
        comfy_server, daemon, cos_server, cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    with_cos = tool_for(comfy_server, daemon, **cos_credentials)
    job = submit_save(with_cos)
    first, _ = collect_until_done(with_cos, job["job_id"])
    path, data = server_file(comfy_server, job["prompt_id"])
    path.unlink()
    again = call(collect, with_cos, {"job_id": job["job_id"], "wait": 0})
    assert blobs(again) == [] and variables(again)["url"] == variables(first)["url"]
    assert variables(again)["status"] == "success"
    assert "could not be fetched from ComfyUI again; its URL still works" in only(again, "text")
    assert only(again, "json")["outputs"][0]["returned_as"] == "url"
    assert fetch(cos_server, variables(again)["url"]).content == data
    # Without COS such a job has nothing left to return (another colour: not served from ComfyUI's cache).
    no_cos = tool_for(comfy_server, daemon)
    job = submit_save(no_cos, overrides='{"1.color": 255}')
    collect_until_done(no_cos, job["job_id"])
    server_file(comfy_server, job["prompt_id"])[0].unlink()
    with pytest.raises(ToolRunError, match="its files can no longer be fetched from ComfyUI"):
        call(collect, no_cos, {"job_id": job["job_id"], "wait": 0})


def test_two_collects_at_once_deliver_one_upload(comfy_server, daemon, cos_server, cos_credentials):
    versioned_bucket(cos_server, cos_credentials["cos_bucket"])
    comfy_server.config(node_delay={"SaveImage": 1.5})
    tool = tool_for(comfy_server, daemon, **cos_credentials)
    job = submit_save(tool)
    results: list = [None, None]

    def worker(i: int) -> None:
        results[i] = call(collect, tool, {"job_id": job["job_id"], "wait": 30})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results)
    assert results[0] == results[1] and variables(results[0])["status"] == "success"
    assert list(object_versions(cos_server, cos_credentials["cos_bucket"]).values()) == [1]


def test_a_restart_between_submit_and_collect_is_reported_lost(comfy_server, daemon):
    comfy_server.config(node_delay={"SaveImage": 5.0})
    tool = tool_for(comfy_server, daemon)
    job = submit_save(tool)
    comfy_server.restart()
    for wait in (0, 5):          # a look, and a wait long enough for the engine's own check
        with pytest.raises(ToolRunError) as lost:
            call(collect, tool, {"job_id": job["job_id"], "wait": wait})
        message = str(lost.value)
        assert f"The job {job['job_id']} is lost" in message
        assert "restarted, or its history was trimmed or cleared" in message and "任务" in message


def test_cancel_removes_a_queued_job_and_a_later_collect_says_it_was_cancelled(comfy_server, daemon):
    comfy_server.config(paused_queue=True)
    tool = tool_for(comfy_server, daemon)
    job = submit_save(tool)
    assert (job["status"], job["position"]) == ("queued", 1)
    sent = call(cancel, tool, {"job_id": job["job_id"]})
    assert variables(sent)["status"] == "cancelled" and "removed from ComfyUI's queue" in only(sent, "text")
    queue = comfy_server.stats()["queue"]
    assert job["prompt_id"] not in queue["pending"] + queue["running"]
    with pytest.raises(ToolRunError, match=f"The job {job['job_id']} was cancelled"):
        call(collect, tool, {"job_id": job["job_id"], "wait": 0})


def test_cancel_interrupts_a_running_job(comfy_server, daemon):
    comfy_server.config(ws_image_seconds=0.1)
    tool = tool_for(comfy_server, daemon)
    job_id = variables(call(lambda t, p: submit(t, p, workflow_request, "comfyui_submit"), tool,
                            {"workflow_json": SLOW_WS}))["job_id"]
    time.sleep(1.0)
    sent = call(cancel, tool, {"job_id": job_id})
    assert variables(sent)["status"] == "cancelled" and "stopped on ComfyUI" in only(sent, "text")
    assert any(i["applied"] for i in comfy_server.stats()["interrupts"])
    with pytest.raises(ToolRunError, match="was cancelled"):
        call(collect, tool, {"job_id": job_id, "wait": 5})


def test_cancel_leaves_a_finished_job_alone(comfy_server, daemon):
    tool = tool_for(comfy_server, daemon)
    job = submit_save(tool)
    comfy_server.wait_idle()
    assert cancel_status(tool, job["job_id"]) == "finished"
    final, _ = collect_until_done(tool, job["job_id"])
    assert variables(final)["status"] == "success"
    assert cancel_status(tool, job["job_id"]) == "finished"


def test_an_expired_job_says_so_and_its_record_is_gone(comfy_server, daemon):
    tool = tool_for(comfy_server, daemon)
    job = submit_save(tool)
    key = record_key(job["job_id"])
    record = json.loads(daemon.values[key])
    record["expires_at"] = time.time() - 1          # as if TTL_SECONDS had passed
    daemon.values[key] = json.dumps(record).encode()
    with pytest.raises(ToolRunError, match=f"The job {job['job_id']} expired: jobs can be collected for "
                                           f"{TTL_SECONDS // 86400} days"):
        call(collect, tool, {"job_id": job["job_id"], "wait": 0})
    assert key not in daemon.values
    with pytest.raises(ToolRunError, match="No job .* is known in this workspace"):
        call(collect, tool, {"job_id": job["job_id"], "wait": 0})


@pytest.mark.parametrize("params, message", [
    ({"job_id": "cj_" + "0" * 24}, "No job cj_000000000000000000000000 is known"),
    ({"job_id": "job-1"}, "'job-1' is not a job id"),
    ({"job_id": ""}, "No job_id given"),
    ({"job_id": "cj_" + "0" * 24, "wait": float("nan")}, "Parameter 'wait' must be a number from 0 to 590"),
    ({"job_id": "cj_" + "0" * 24, "wait": "591"}, "Parameter 'wait' must be a number from 0 to 590"),
    ({"job_id": "cj_" + "0" * 24, "wait": -1}, "Parameter 'wait' must be a number from 0 to 590"),
])
def test_bad_collect_parameters_are_named(comfy_server, daemon, params, message):
    with pytest.raises(ToolRunError, match=message.replace("(", r"\(")):
        call(collect, tool_for(comfy_server, daemon), params)


def test_a_long_wait_is_shortened_to_fit_difys_limit():
    assert wait_param({"wait": 590}) == MAX_WAIT == 555
    assert wait_param({}) == 15 and wait_param({"wait": "0"}) == 0


def test_a_job_that_cannot_be_recorded_is_cancelled_on_comfyui(comfy_server, daemon):
    comfy_server.config(paused_queue=True)
    tool = JobTool({"comfyui_base_url": comfy_server.url}, SdkStorage(daemon, size=1024))
    daemon.serve({"opt": "set", "key": "earlier_jobs", "value": "00" * 1000}, 1024)   # the quota is nearly used
    with pytest.raises(ToolRunError) as failed:
        submit_save(tool)
    assert "plugin storage for this workspace is full" in str(failed.value)
    assert "The run was cancelled on ComfyUI." in str(failed.value)
    queue = comfy_server.stats()["queue"]
    assert queue["pending"] == [] and queue["running"] == []


def test_a_job_whose_server_is_no_longer_configured_says_so(comfy_server, daemon):
    job = submit_save(tool_for(comfy_server, daemon))
    other = JobTool({"comfyui_base_url": "http://127.0.0.1:9"}, SdkStorage(daemon))
    with pytest.raises(ToolRunError, match="no longer in the plugin's ComfyUI addresses"):
        call(collect, other, {"job_id": job["job_id"], "wait": 0})


def test_records_hold_no_secret_and_signed_urls_are_signed_again(comfy_server_factory, daemon, cos_server,
                                                                   cos_credentials):
    comfy = comfy_server_factory(token="tok-jobs-secret-5678")  # noqa: S106 - a test token
    creds = dict(cos_credentials, cos_url_mode="presigned", comfyui_token="tok-jobs-secret-5678")  # noqa: S106
    tool = tool_for(comfy, daemon, **creds)
    job = submit_save(tool)
    first, _ = collect_until_done(tool, job["job_id"])
    stored = b"".join(daemon.values.values())
    for secret in ("tok-jobs-secret-5678", COS_AK, COS_SK, "q-signature"):
        assert secret.encode() not in stored
    time.sleep(1.1)          # a new signature has a new sign time
    again = call(collect, tool, {"job_id": job["job_id"], "wait": 0})
    url1, url2 = variables(first)["url"], variables(again)["url"]
    assert url1 != url2 and url1.split("?")[0] == url2.split("?")[0]      # same key, signed anew
    assert fetch(cos_server, url2).content == blobs(first)[0][0]


def test_text_to_image_submits_in_submit_mode_and_collects_like_any_job(comfy_server, daemon):
    tool = tool_for(comfy_server, daemon)
    sent = call(lambda t, p: submit(t, p, text_to_image_request, "text_to_image"), tool,
                {"prompt": "a red fox", "mode": "submit", "width": 512, "height": 512})
    job = variables(sent)
    assert job["status"] in ("queued", "running") and set(job["seeds"]) == {"3.seed"}
    final, _ = collect_until_done(tool, job["job_id"])
    (blob, meta), = blobs(final)
    assert blob[:8] == PNG and meta["filename"].startswith(job["prompt_id"])
    assert json.loads(daemon.values[record_key(job["job_id"])])["tool"] == "text_to_image"


def _schema(name: str) -> dict:
    doc = yaml.safe_load((ROOT / "tools" / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc["output_schema"]["properties"]


def test_output_schemas_declare_exactly_what_the_tools_send(comfy_server, daemon):
    comfy_server.config(node_delay={"SaveImage": 2.0})
    tool = tool_for(comfy_server, daemon)
    submitted = call(lambda t, p: submit(t, p, workflow_request, "comfyui_submit"), tool, {"workflow_json": SAVE})
    job_id = variables(submitted)["job_id"]
    final, earlier = collect_until_done(tool, job_id, wait=0.5)
    cancelled = call(cancel, tool, {"job_id": job_id})
    assert set(variables(submitted)) == set(_schema("comfyui_submit"))
    assert earlier and set(variables(earlier[0])) | set(variables(final)) == set(_schema("comfyui_collect"))
    assert set(variables(cancelled)) == set(_schema("comfyui_cancel"))
    assert set(variables(submitted)) <= set(_schema("text_to_image"))
    types = {"string": str, "number": int, "object": dict, "array": list}
    for sent, name in ((submitted, "comfyui_submit"), (final, "comfyui_collect"), (earlier[0], "comfyui_collect")):
        for var, value in variables(sent).items():
            assert isinstance(value, types[_schema(name)[var]["type"]]), (name, var, value)


@pytest.mark.parametrize("name", ["comfyui_submit", "comfyui_collect", "comfyui_cancel", "text_to_image"])
def test_tool_texts_are_in_every_language_and_tell_an_agent_what_to_do(name):
    doc = yaml.safe_load((ROOT / "tools" / f"{name}.yaml").read_text(encoding="utf-8"))
    languages = {"en_US", "zh_Hans", "ja_JP", "pt_BR"}
    assert set(doc["identity"]["label"]) == languages and set(doc["description"]["human"]) == languages
    for param in doc["parameters"]:
        assert set(param["label"]) == languages and set(param["human_description"]) == languages, param["name"]
    llm = doc["description"]["llm"]
    if name == "comfyui_submit":
        assert "job_id" in llm and "tell the user the job has started" in llm and "comfyui_collect" in llm
    elif name == "comfyui_collect":
        assert "collect again when the user asks" in llm
        assert "do not call this tool again and again in a loop" in llm
    elif name == "comfyui_cancel":
        assert "only when the user asks to cancel" in llm
    assert all(p.get("llm_description") for p in doc["parameters"] if p["form"] == "llm")


SERVER_MODE_KEY = "sk-serverModeJobKey0099887766"


def test_a_server_mode_job_stays_collectable_after_a_cancel_of_the_finished_run(comfy_server, daemon):
    """In BizyAir server mode the history entry holds the key and is deleted once collected; a
    cancel that finds the job finished must leave it for the collect, and a second collect
    fetches the files again by name."""
    forget_server_modes()
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=[SERVER_MODE_KEY])
    tool = tool_for(comfy_server, daemon, bizyair_api_key=SERVER_MODE_KEY)
    sent = call(lambda t, p: submit(t, p, workflow_request, "comfyui_submit"), tool,
                {"workflow_json": (WORKFLOWS / "bizyair/sdxl_ksampler_txt2img_api.json").read_text(), "prompt": "fox"})
    job = variables(sent)
    comfy_server.wait_idle()
    assert cancel_status(tool, job["job_id"]) == "finished"
    first, _ = collect_until_done(tool, job["job_id"])
    # Delivered, not lost: the SaveImage output of node 9, with the key removed from its metadata.
    assert variables(first)["status"] == "success" and variables(first)["job_id"] == job["job_id"]
    (blob, meta), = blobs(first)
    assert blob[:8] == PNG and meta["filename"] == f"{job['prompt_id']}_9_1.png"
    assert SERVER_MODE_KEY.encode() not in blob
    assert requests.get(f"{comfy_server.url}/history/{job['prompt_id']}", timeout=5).json() == {}
    again = call(collect, tool, {"job_id": job["job_id"], "wait": 0})
    assert again == first
    assert SERVER_MODE_KEY.encode() not in b"".join(daemon.values.values())
    assert SERVER_MODE_KEY not in json.dumps([m for m in first + again if m[0] != "blob"])


def test_a_collect_while_comfyui_does_not_answer_keeps_the_job(comfy_server_factory, daemon):
    comfy = comfy_server_factory()
    comfy.config(paused_queue=True)
    tool = tool_for(comfy, daemon)
    job = submit_save(tool)
    comfy.stop()
    with pytest.raises(ToolRunError) as down:
        call(collect, tool, {"job_id": job["job_id"], "wait": 0})
    assert "refused" in str(down.value) and "The job is still recorded" in str(down.value)
    assert record_key(job["job_id"]) in daemon.values


def test_text_to_video_in_submit_mode_returns_a_job_whose_collect_is_the_video(comfy_server, daemon):
    tool = tool_for(comfy_server, daemon)
    params = {"prompt": "waves rolling onto a beach at dawn", "model": "wan_2_7", "duration": 6,
              "aspect_ratio": "9:16", "resolution": "1080P", "mode": "submit"}
    sent = call(lambda t, p: invoke_in_mode(t, p, text_to_video_request, "text_to_video"), tool, params)
    job = variables(sent)
    assert job["status"] in ("queued", "running") and not blobs(sent)
    assert set(job) <= set(_schema("text_to_video"))
    final, _ = collect_until_done(tool, job["job_id"])
    (blob, meta), = blobs(final)
    assert meta["mime_type"] == "video/mp4" and mp4_facts(blob) == (1080, 1920, 6.0)
    assert "a chat reply does not show video" in only(final, "text")
    with pytest.raises(ToolRunError, match="Parameter 'mode' must be run or submit"):
        call(lambda t, p: invoke_in_mode(t, p, text_to_video_request, "text_to_video"), tool,
             {**params, "mode": "later"})

"""One plugin process serves every user of a Dify install: nothing one user sends, and nothing a
server answers, may kill it (a stdout line over 5 MiB), freeze it (a CPU loop that is not linear)
or hold a call past its timeout; and when Dify stops the process, our prompts stop with it."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
from stdio_harness import PluginProcess

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = (ROOT / "tests/fixtures/workflows/empty_save_1024.json").read_text()
PROVIDER = "comfyui_bizyair"
DAEMON_LINE_LIMIT = 5 * 1024 * 1024   # the daemon's stdout scanner kills the instance above this
MESSAGE_LIMIT = 64 * 1024 + 1024       # our own bound on one message, with its JSON envelope


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess.start(env={"NO_PROXY": "*", "no_proxy": "*", "HEARTBEAT_INTERVAL": "0.5"}) as proc:
        yield proc


def longest_stdout_line(plugin) -> int:
    return max((len(text.encode()) for stream, text in plugin.lines if stream == "stdout"), default=0)


def creds(comfy):
    return {"comfyui_base_url": comfy.url}


def test_a_workflow_that_is_one_5_mb_key_gets_a_short_refusal_and_the_instance_lives_on(plugin, comfy_server):
    hostile = json.dumps({"k" * 4_900_000: 1})
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds(comfy_server), {"workflow_json": hostile}, timeout=60)
    assert run.errors and "not an API-format ComfyUI workflow" in run.errors[0]["message"]
    assert len(run.errors[0]["message"]) < 2000
    assert longest_stdout_line(plugin) < MESSAGE_LIMIT < DAEMON_LINE_LIMIT
    after = plugin.invoke(PROVIDER, "comfyui_workflow", creds(comfy_server), {"workflow_json": WORKFLOW}, timeout=60)
    assert not after.errors and len(after.blobs) == 1


def test_escape_floods_are_refused_at_once_while_another_user_runs_at_normal_speed(plugin, comfy_server):
    flood = '"\\' * 65536            # 128 KB: the old nesting regex took a minute on this
    normal = {}

    def other_user():
        start = time.monotonic()
        normal["run"] = plugin.invoke(PROVIDER, "comfyui_workflow", creds(comfy_server),
                                      {"workflow_json": WORKFLOW}, timeout=60)
        normal["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=other_user)
    start = time.monotonic()
    thread.start()
    refused = plugin.invoke(PROVIDER, "comfyui_workflow", creds(comfy_server), {"workflow_json": flood}, timeout=60)
    refused_seconds = time.monotonic() - start
    thread.join(60)
    assert refused.errors and "not valid JSON" in refused.errors[0]["message"]
    assert not normal["run"].errors and len(normal["run"].blobs) == 1
    # Hang guards (the benchmark prints the real numbers): both answered in seconds, not minutes.
    assert refused_seconds < 5 and normal["seconds"] < 10


def test_a_slow_loris_history_ends_the_call_by_its_timeout(plugin, comfy_server):
    comfy_server.config(hostile={"GET /history/{id}": {"trickle": 1}}, ws_silent=True)
    start = time.monotonic()
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds(comfy_server),
                        {"workflow_json": WORKFLOW, "timeout": 10}, timeout=60)
    seconds = time.monotonic() - start
    assert seconds < 10 + 4
    assert run.errors and "did not finish within the time limit" in run.errors[0]["message"]


def test_a_slow_loris_download_ends_the_call_by_its_timeout(plugin, comfy_server):
    # 2 MB at 2 KB/s would take 1000 s; the run itself is quick, so only the download can hit the limit.
    comfy_server.config(image_bytes=2_000_000, hostile={"GET /view": {"trickle": 2048, "chunk": 2048}})
    start = time.monotonic()
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds(comfy_server),
                        {"workflow_json": WORKFLOW, "timeout": 10}, timeout=60)
    seconds = time.monotonic() - start
    assert seconds < 10 + 4
    assert not run.blobs
    # Nothing could be delivered: the call fails and says why, naming the file.
    assert run.errors and "did not finish in time" in run.errors[0]["message"]


LONG = json.loads((ROOT / "tests/fixtures/workflows/slow_progress_ws_images.json").read_text())
LONG["1"]["inputs"].update(batch_size=200, width=64, height=64)   # 200 steps of 0.5 s, interruptible


def _long_run_then(stop, comfy):
    """Start a run of ~100 s, wait until ComfyUI runs it, call stop(plugin), and return (plugin
    process, prompt id, seconds from stop to exit)."""
    comfy.config(ws_image_seconds=0.5)
    proc = PluginProcess.start(env={"NO_PROXY": "*", "no_proxy": "*"})
    try:
        sid = proc.send({"user_id": "u", "type": "tool", "action": "invoke_tool", "provider": PROVIDER,
                         "tool": "comfyui_workflow", "credentials": creds(comfy), "credential_type": "api-key",
                         "tool_parameters": {"workflow_json": json.dumps(LONG), "timeout": 300}})
        end = time.monotonic() + 30
        while not comfy.stats()["queue"]["running"]:
            assert time.monotonic() < end, "the run never started"
            time.sleep(0.05)
        (prompt_id,) = comfy.stats()["queue"]["running"]
        start = time.monotonic()
        stop(proc)
        proc.proc.wait(10)
        return proc, prompt_id, time.monotonic() - start, sid
    finally:
        proc.close()


@pytest.mark.parametrize("how", ["sigterm", "stdin closed"])
def test_when_dify_stops_the_plugin_its_running_prompt_is_stopped_on_comfyui(comfy_server, how):
    def stop(proc):
        if how == "sigterm":
            proc.proc.send_signal(signal.SIGTERM)
        else:
            proc.proc.stdin.close()

    proc, prompt_id, seconds, _ = _long_run_then(stop, comfy_server)
    assert proc.proc.returncode == 0
    assert seconds < 5
    # The plugin interrupted its prompt before exiting: ComfyUI is not left running it.
    stats = comfy_server.stats()
    assert prompt_id not in stats["queue"]["running"] + stats["queue"]["pending"]
    assert "stopped 1 of 1 prompt(s)" in proc.output_text()

"""The packaged plugin under load and under attack: eight users at once each get exactly their own
files, the heartbeat keeps flowing during long waits, and no secret ever leaves the process."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cos_fixture import COS_AK, COS_SK, fetch
from stdio_harness import PluginProcess

ROOT = Path(__file__).resolve().parents[2]
SDXL = (ROOT / "tests/fixtures/workflows/bizyair/sdxl_ksampler_txt2img_api.json").read_text()
PROVIDER = "comfyui_bizyair"


@pytest.fixture(scope="module")
def plugin():
    # A short heartbeat interval makes a starved heartbeat visible within a few seconds.
    with PluginProcess.start(env={"NO_PROXY": "*", "no_proxy": "*", "HEARTBEAT_INTERVAL": "0.5"}) as proc:
        yield proc


def test_eight_simultaneous_invocations_each_get_exactly_their_own_outputs(
        plugin, comfy_server, cos_server, cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url)
    prompts = [f"user {i}: a lighthouse painted in style number {i}" for i in range(8)]

    def invoke(prompt):
        return plugin.invoke(PROVIDER, "comfyui_workflow", creds, {"prompt": prompt, "workflow_json": SDXL},
                             timeout=180)

    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(pool.map(invoke, prompts))

    urls = set()
    for prompt, run in zip(prompts, runs):
        assert not run.errors, run.errors
        (blob,) = run.blobs.values()
        # The server embeds the queued graph in each PNG: ours, and nobody else's.
        assert prompt.encode() in blob.data
        assert not any(other.encode() in blob.data for other in prompts if other != prompt)
        (entry,) = run.jsons[0]["outputs"]
        urls.add(entry["url"])
        assert fetch(cos_server, entry["url"]).content == blob.data
    assert len(urls) == 8
    assert comfy_server.stats()["open_ws"] == 0


def test_the_heartbeat_keeps_flowing_while_a_run_waits(plugin, comfy_server):
    comfy_server.config(node_delay={"SaveImage": 4.0})
    before = plugin.heartbeats
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": (ROOT / "tests/fixtures/workflows/empty_save_1024.json").read_text()},
                        timeout=120)
    assert not run.errors
    # 4 s of waiting at a 0.5 s interval: a blocked gevent hub would send none.
    assert plugin.heartbeats - before >= 4


SECRETS = {
    "comfyui_token": "tok-ComfyProxy-9f8e7d6c5b4a",
    "bizyair_api_key": "sk-serverModeKey1234567890",
    "cos_secret_key": COS_SK,
    "cos_token": "sts-Token-aa11bb22cc33dd44",
}


def test_no_secret_reaches_any_message_log_or_error(plugin, comfy_server_factory, cos_credentials):
    comfy = comfy_server_factory(token=SECRETS["comfyui_token"])
    # A container whose key is wrong echoes it, with ANSI codes, in every error text.
    comfy.config(bizyair_state="stub_wrongkey", bizyair_key="sk-containerKeyLEAK0042")
    creds = dict(cos_credentials, comfyui_base_url=comfy.url, **SECRETS)
    outputs = [
        plugin.validate(PROVIDER, creds),
        plugin.invoke(PROVIDER, "comfyui_workflow", creds, {"prompt": "a cat", "workflow_json": SDXL}, timeout=120),
        plugin.invoke(PROVIDER, "comfyui_workflow", dict(creds, comfyui_token="tok-Wrong-000111222333"),
                      {"prompt": "a cat", "workflow_json": SDXL}, timeout=120),
        plugin.invoke(PROVIDER, "comfyui_workflow", dict(creds, comfyui_base_url="http://127.0.0.1:9"),
                      {"prompt": "a cat", "workflow_json": SDXL}, timeout=120),
    ]
    run = outputs[1]
    assert run.errors and "API key" in run.errors[0]["message"]  # the failure is explained...
    everything = plugin.output_text() + json.dumps([repr(o) for o in outputs])
    for secret in [*SECRETS.values(), COS_AK, "sk-containerKeyLEAK0042", "tok-Wrong-000111222333"]:
        assert secret not in everything, f"secret leaked: {secret[:6]}…"
    assert "\x1b[" not in everything


def test_the_server_mode_key_is_in_no_blob_and_no_cos_object(plugin, comfy_server, cos_server, cos_credentials):
    key = "sk-serverModeInFiles0099887766"
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=[key])
    cos_server.make_public(cos_credentials["cos_bucket"])
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url, bizyair_api_key=key)
    delivered = []
    for name in ("empty_save_1024.json", "video_mp4.json", "animated_webp.json", "audio_flac.json"):
        run = plugin.invoke(PROVIDER, "comfyui_workflow", creds,
                            {"workflow_json": (ROOT / "tests/fixtures/workflows" / name).read_text(), "max_blob_mb": 30},
                            timeout=120)
        assert not run.errors, (name, run.errors)
        assert run.blobs, name
        delivered += [b.data for b in run.blobs.values()]
        delivered += [fetch(cos_server, url).content for url in run.variables["urls"]]
    assert len(delivered) == 8
    for data in delivered:
        assert key.encode() not in data
    assert key not in plugin.output_text()

"""Keys and credentials go only where they belong: the BizyAir server-mode key only to a container
that runs in server mode (never to a plain ComfyUI, nor to a container with its own key), never
left in ComfyUI's history, and definitions cached per credentials, not per URL."""

from __future__ import annotations

import json
import time
from pathlib import Path

from comfyui_bridge.bizyair.server_mode import forget_server_modes
from comfyui_bridge.client import ComfyClient
from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import ServerConfig, parse_servers
from comfyui_bridge.engine import Engine, node_info
from comfyui_bridge.errors import PromptRejected
from comfyui_bridge.models import RunRequest
from comfyui_bridge.nodeinfo import LIVE_CACHE, _LiveCache
from comfyui_bridge.workflow import load_workflow

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"
KEY = "sk-serverModeKey0099887766"


def workflow(name):
    return load_workflow((WORKFLOWS / name).read_bytes())


def stored_prompt(comfy, prompt_id) -> str:
    """The graph ComfyUI stored in its history for `prompt_id`, as text ('' when there is none)."""
    entry = comfy.history_entry(prompt_id)
    return json.dumps(entry["prompt"]) if entry else ""


def setup_function():
    forget_server_modes()


def test_a_plain_comfyui_in_the_same_list_just_works_and_never_sees_the_key(comfy_server_factory):
    plain = comfy_server_factory()
    plain.config(bizyair_state="absent")
    serving = comfy_server_factory()
    serving.config(bizyair_state="server_mode", bizyair_valid_keys=[KEY])
    plain_run = Engine(parse_servers(plain.url), bizyair_key=KEY).run(
        RunRequest(workflow=workflow("empty_save_1024.json"), timeout=30))
    assert plain_run.ok, plain_run.error
    assert KEY not in stored_prompt(plain, plain_run.prompt_id)
    served = Engine(parse_servers(serving.url), bizyair_key=KEY).run(
        RunRequest(workflow=workflow("bizyair/sdxl_ksampler_txt2img_api.json"), prompt="a fox", timeout=30))
    assert served.ok, served.error
    # One list with both: every run succeeds wherever it lands.
    both = Engine(parse_servers(f"{plain.url},{serving.url}"), bizyair_key=KEY)
    assert all(both.run(RunRequest(workflow=workflow("empty_save_1024.json"), timeout=30)).ok for _ in range(3))


def test_a_bizyair_container_with_its_own_key_does_not_receive_ours(comfy_server):
    comfy_server.config(bizyair_state="stub_validkey")
    result = Engine(parse_servers(comfy_server.url), bizyair_key=KEY).run(
        RunRequest(workflow=workflow("bizyair/sdxl_ksampler_txt2img_api.json"), prompt="a fox", timeout=30))
    assert result.ok, result.error
    stored = stored_prompt(comfy_server, result.prompt_id)
    assert stored and KEY not in stored and "bizyair_magic_node" not in stored


def test_a_server_mode_run_that_could_not_be_stopped_has_its_history_deleted_when_it_ends(comfy_server):
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=[KEY], hang_class="SaveImage")
    result = Engine(parse_servers(comfy_server.url), bizyair_key=KEY).run(
        RunRequest(workflow=workflow("bizyair/sdxl_ksampler_txt2img_api.json"), prompt="a fox", timeout=6))
    assert result.ending == "timeout" and result.error.detail["cancelled"] is False
    comfy_server.release()              # the "cloud call" returns; ComfyUI writes the history entry
    end = time.monotonic() + 15
    while True:
        stats = comfy_server.stats()
        done = result.prompt_id not in stats["queue"]["running"] + stats["queue"]["pending"]
        if done and result.prompt_id not in stats["history"]:
            break                        # the background clean-up deleted the entry holding the key
        assert time.monotonic() < end, "the history entry holding the key was left behind"
        time.sleep(0.2)


def test_definitions_are_cached_per_url_and_credentials(comfy_server):
    body = {"TenantNode": {"input": {"required": {"text": ["STRING", {}]}}, "output": ["CONDITIONING"]}}
    comfy_server.config(hostile={"GET /object_info/{cls}": {"body": body}})
    LIVE_CACHE.clear()

    def lookups():
        return comfy_server.stats()["requests"].get("GET /object_info/{cls}", 0)

    first = node_info(ComfyClient(ServerConfig(comfy_server.url, token="tenant-a-token")), Deadline.after(5))
    assert first.get("TenantNode") is not None and lookups() == 1
    again = node_info(ComfyClient(ServerConfig(comfy_server.url, token="tenant-a-token")), Deadline.after(5))
    assert again.get("TenantNode") is not None and lookups() == 1          # same tenant: cached
    other = node_info(ComfyClient(ServerConfig(comfy_server.url, token="tenant-b-token")), Deadline.after(5))
    assert other.get("TenantNode") is not None and lookups() == 2          # another tenant: asked again


def test_cached_definitions_expire():
    now = [0.0]
    cache = _LiveCache(ttl=600, clock=lambda: now[0])
    cache.put(("srv", "Node"), {"input": {}})
    assert cache.get(("srv", "Node"))[0]
    now[0] = 601
    assert cache.get(("srv", "Node")) == (False, None)


def test_a_rejection_for_an_unknown_class_drops_the_cached_definitions_and_replans_once(comfy_server):
    # The server describes a custom class (so the plan uses a live definition) but its validation
    # does not know it: what we cached is stale. Forget it, plan again with fresh ones, queue once more.
    body = {"GoneNode": {"input": {"required": {"text": ["STRING", {}]}}, "output": ["STRING"]}}
    comfy_server.config(hostile={"GET /object_info/{cls}": {"body": body}})
    LIVE_CACHE.clear()
    graph = workflow("empty_save_1024.json")
    graph["7"] = {"class_type": "GoneNode", "inputs": {"text": "x"}}
    before = comfy_server.stats()["requests"]
    try:
        Engine(parse_servers(comfy_server.url)).run(RunRequest(workflow=graph, timeout=20))
    except PromptRejected as exc:
        assert "GoneNode" in exc.message
    else:
        raise AssertionError("the server cannot run GoneNode")
    after = comfy_server.stats()["requests"]

    def count(stats, key):
        return stats.get(key, 0)

    # Queued twice, and the second plan asked the server again instead of using the cached answer.
    assert count(after, "POST /prompt") - count(before, "POST /prompt") == 2
    assert count(after, "GET /object_info/{cls}") - count(before, "GET /object_info/{cls}") == 2


SAVE_KINDS = ["empty_save_1024.json", "animated_png.json", "animated_webp.json", "video_mp4.json", "webm_vp9.json",
              "audio_flac.json", "audio_mp3.json", "latent_save.json"]


def test_the_server_mode_key_is_in_every_file_comfyui_saved_and_in_none_we_deliver(comfy_server):
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=[KEY])
    engine = Engine(parse_servers(comfy_server.url), bizyair_key=KEY)
    for name in SAVE_KINDS:
        # The container is in server mode: every prompt carries the key, whatever its nodes.
        result = engine.run(RunRequest(workflow=workflow(name), timeout=30))
        assert result.ok, (name, result.error)
        assert result.outputs, (name, result.warnings)
        for f in result.outputs:
            on_server = server_file(comfy_server, f.ref)
            assert KEY.encode() in on_server, f"{name}: the test server did not embed the prompt"
            assert KEY.encode() not in f.data, f"{name}: the key came back in {f.name}"
            assert len(f.data) > 0


def server_file(comfy, ref) -> bytes:
    base = Path(comfy.base_dir)
    root = base / "root" if (base / "root").is_dir() else base
    return (root / ref.type / ref.subfolder / ref.filename).read_bytes()

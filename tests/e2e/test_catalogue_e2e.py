"""The catalogue tools (edit_image, text_to_video, image_to_video, list_capabilities) and the
Comfy.org key, through the built package over Dify's stdio protocol, against the ComfyUI test
server (BizyAir cloud simulated) and, for the key, ComfyUI's partner API nodes."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
import requests
from media_facts import mp4_facts, png_size
from stdio_harness import PluginProcess

from tests.servers.comfysim import media

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "comfyui_bizyair"
PARTNER_PLUGIN = ROOT / "tests/servers/partner_nodes.py"
COMFY_ORG_KEY = "comfyui-9d1c0ffee5ecret4cafe77aa01bb"       # the shape platform.comfy.org hands out


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess.start(env={"NO_PROXY": "*", "no_proxy": "*"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Stands in for Dify's file endpoint, serving input pictures of known sizes."""
    folder = tmp_path_factory.mktemp("inputs")
    for name, (w, h) in {"landscape.png": (640, 480), "square.png": (300, 300), "tall.png": (480, 720)}.items():
        (folder / name).write_bytes(media.png(w, h, (w % 256, h % 256, 90)))
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def file(name: str) -> dict:
        return {"dify_model_identity": "__dify__file__", "url": f"{base}/{name}", "mime_type": "image/png",
                "filename": name, "extension": ".png", "size": (folder / name).stat().st_size, "type": "image"}
    yield file
    httpd.shutdown()
    httpd.server_close()


# ---- the three run tools ---------------------------------------------------------------------------

def test_edit_image_combines_two_pictures_into_the_shape_asked_for(plugin, comfy_server, images):
    run = plugin.invoke(PROVIDER, "edit_image", {"comfyui_base_url": comfy_server.url},
                        {"images": [images("landscape.png"), images("square.png")], "model": "nanobanana_2",
                         "prompt": "put the square's object on the left of the landscape", "aspect_ratio": "16:9",
                         "resolution": "2K"}, timeout=120)
    assert not run.errors, run.errors
    (blob,) = run.blobs.values()
    assert blob.meta["mime_type"] == "image/png" and png_size(blob.data) == (1280, 720)
    (summary,) = run.jsons
    node = comfy_server.queued_graph(summary["prompt_id"])["1"]
    assert node["class_type"] == "BizyAir_NanoBanana2"
    assert node["inputs"]["prompt"] == "put the square's object on the left of the landscape"
    assert (node["inputs"]["inputcount"], isinstance(node["inputs"]["image_2"], list)) == (2, True)
    assert run.text.startswith("Generated 1 image file")


def test_text_to_video_returns_an_mp4_of_the_duration_and_shape_asked_for(plugin, comfy_server):
    run = plugin.invoke(PROVIDER, "text_to_video", {"comfyui_base_url": comfy_server.url},
                        {"prompt": "waves rolling onto a beach at dawn", "model": "wan_2_7", "duration": 6,
                         "aspect_ratio": "9:16", "resolution": "1080P", "negative_prompt": "text"}, timeout=120)
    assert not run.errors, run.errors
    (blob,) = run.blobs.values()
    assert blob.meta["mime_type"] == "video/mp4" and mp4_facts(blob.data) == (1080, 1920, 6.0)
    node = comfy_server.queued_graph(run.jsons[0]["prompt_id"])["1"]
    assert (node["inputs"]["ratio"], node["inputs"]["negative_prompt"]) == ("9:16", "text")
    assert "a chat reply does not show video" in run.text


def test_image_to_video_starts_from_the_picture(plugin, comfy_server, images):
    run = plugin.invoke(PROVIDER, "image_to_video", {"comfyui_base_url": comfy_server.url},
                        {"image": images("tall.png"), "prompt": "the tree sways in the wind",
                         "model": "seedance_1_5_pro", "resolution": "480p", "duration": 4}, timeout=120)
    assert not run.errors, run.errors
    (blob,) = run.blobs.values()
    assert mp4_facts(blob.data) == (480, 720, 4.0)       # adaptive: the first frame's shape
    graph = comfy_server.queued_graph(run.jsons[0]["prompt_id"])
    loader = graph["1"]["inputs"]["first_frame_image"][0]
    assert graph[loader]["class_type"] == "LoadImage" and graph[loader]["inputs"]["image"].startswith("dify_")


def test_a_bad_option_is_refused_before_anything_reaches_the_server(plugin, comfy_server, images):
    run = plugin.invoke(PROVIDER, "edit_image", {"comfyui_base_url": comfy_server.url},
                        {"images": [images("square.png")], "prompt": "make it blue", "model": "gpt_image_1",
                         "aspect_ratio": "16:9"}, timeout=120)
    (error,) = run.errors
    message = error["message"]
    assert ("Parameter 'aspect_ratio': '16:9' is not accepted by model 'gpt_image_1' "
            "(BizyAir_GPT_IMAGE_EDIT_API)") in message
    assert "allowed: one of 1:1, 2:3, 3:2" in message and "参数“aspect_ratio”" in message
    stats = comfy_server.stats()
    assert stats["prompts_accepted"] == 0 and stats["prompts_rejected"] == 0
    assert "POST /prompt" not in stats["requests"] and "POST /upload/image" not in stats["requests"]


def test_a_cloud_refusal_of_one_model_is_explained_in_both_languages(plugin, comfy_server):
    comfy_server.config(bizyair_api_errors={"BizyAir_Veo_V3_1_T2V_API": "balance"})
    run = plugin.invoke(PROVIDER, "text_to_video", {"comfyui_base_url": comfy_server.url},
                        {"prompt": "a comet over mountains", "model": "veo_3_1_fast"}, timeout=120)
    (error,) = run.errors
    assert '"veo_3_1_fast: Veo 3.1 Fast"' in error["message"] and "insufficient balance" in error["message"]
    assert "余额不足" in error["message"]


# ---- list_capabilities -----------------------------------------------------------------------------

def test_list_capabilities_names_the_models_per_tool_without_the_full_object_info(plugin, comfy_server):
    run = plugin.invoke(PROVIDER, "list_capabilities", {"comfyui_base_url": comfy_server.url}, {}, timeout=120)
    assert not run.errors, run.errors
    assert run.text.startswith("BizyAir container (its BizyAir key works).")
    assert "edit_image models: nanobanana (default), nanobanana_2," in run.text
    assert "image_to_video models: kling_2_6 (default)," in run.text
    assert run.variables["server_kind"] == "bizyair"
    assert run.variables["models"]["text_to_video"][0] == "kling_2_6"
    (summary,) = run.jsons
    assert "flux/ae.sft" in summary["lists"]["vaes"] and summary["counts"]["samplers"] == 44
    requests_seen = comfy_server.stats()["requests"]
    assert "GET /object_info" not in requests_seen
    assert requests_seen["GET /object_info/{cls}"] >= 40
    assert len(run.text) < 2000


def test_list_capabilities_on_plain_comfyui_lists_samplers_and_node_packs(plugin, comfy_server):
    comfy_server.config(bizyair_state="absent", hostile={"GET /extensions": {"body": [
        "/extensions/core/groupNode.js", "/extensions/ComfyUI-KJNodes/js/setget.js",
        "/extensions/ComfyUI-KJNodes/js/spline.js", "/extensions/rgthree-comfy/rgthree.js"]}})
    run = plugin.invoke(PROVIDER, "list_capabilities", {"comfyui_base_url": comfy_server.url}, {}, timeout=120)
    assert not run.errors, run.errors
    assert run.text.startswith("Plain ComfyUI") and "Samplers (44): euler," in run.text
    assert "ComfyUI partner API nodes are installed; the Comfy.org API key is not set" in run.text
    assert run.variables["server_kind"] == "comfyui" and run.variables["models"] == {}
    assert run.variables["node_packs"] == ["ComfyUI partner API nodes (comfy_api_nodes)", "ComfyUI-KJNodes",
                                           "rgthree-comfy"]
    assert "GET /object_info" not in comfy_server.stats()["requests"]


# ---- the Comfy.org key -----------------------------------------------------------------------------

PARTNER_WORKFLOW = json.dumps({
    "1": {"class_type": "OpenAIDalle2", "inputs": {"prompt": "a lighthouse", "seed": 0, "size": "512x512", "n": 1}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "partner"}},
})


@pytest.fixture
def partner_comfy(comfy_server_factory):
    return comfy_server_factory(plugins=[PARTNER_PLUGIN])


def _files_under(folder: Path) -> bytes:
    """Every file below `folder`, not following links (the plugin's .venv is a link to a shared one)."""
    out = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if d not in (".venv", "__pycache__")]
        out += [(Path(top) / n).read_bytes() for n in names if not (Path(top) / n).is_symlink()]
    return b"".join(out)


def test_the_comfy_org_key_reaches_partner_nodes_and_nothing_else(plugin, partner_comfy):
    creds = {"comfyui_base_url": partner_comfy.url, "comfy_org_api_key": COMFY_ORG_KEY}
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds, {"workflow_json": PARTNER_WORKFLOW}, timeout=120)
    assert not run.errors, run.errors
    calls = requests.get(f"{partner_comfy.url}/_test/partner_calls", timeout=10).json()
    assert calls == [{"class_type": "OpenAIDalle2", "key_sha256": hashlib.sha256(COMFY_ORG_KEY.encode()).hexdigest()}]
    prompt_id = run.jsons[0]["prompt_id"]
    stored = requests.get(f"{partner_comfy.url}/history/{prompt_id}", timeout=10).text
    leaks = {
        "plugin stdout/stderr": plugin.output_text(),
        "tool messages": json.dumps(run.messages, default=repr),
        "history": stored,
        "queue": requests.get(f"{partner_comfy.url}/queue", timeout=10).text,
        "server files": _files_under(Path(partner_comfy.base_dir)).decode("latin-1"),
        "plugin files": _files_under(plugin.workdir).decode("latin-1") if plugin.workdir else "",
    }
    for where, text in leaks.items():
        assert COMFY_ORG_KEY not in text, f"the Comfy.org key is in the {where}"


def test_partner_nodes_without_the_key_fail_as_comfyui_says(plugin, partner_comfy):
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": partner_comfy.url},
                        {"workflow_json": PARTNER_WORKFLOW}, timeout=120)
    (error,) = run.errors
    assert "Unauthorized: Please login first to use this node." in error["message"]


def test_an_error_quoting_the_key_reaches_the_user_without_it(plugin, partner_comfy):
    partner_comfy.config(partner_echo_key=True)
    creds = {"comfyui_base_url": partner_comfy.url, "comfy_org_api_key": COMFY_ORG_KEY}
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds, {"workflow_json": PARTNER_WORKFLOW}, timeout=120)
    (error,) = run.errors
    assert "Invalid API key [redacted]" in error["message"]
    assert COMFY_ORG_KEY not in plugin.output_text() + json.dumps(run.messages, default=repr)

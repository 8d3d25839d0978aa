"""The built .difypkg, installed in a fresh venv and driven over Dify's stdio protocol, against the
ComfyUI test server and the local COS server: what a Dify user would see, byte for byte."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
from cos_fixture import COS_AK, COS_SK, fetch
from stdio_harness import PluginProcess

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "tests/fixtures/workflows"
PROVIDER = "comfyui_bizyair"


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess.start(env={"NO_PROXY": "*", "no_proxy": "*"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def file_server():
    """Stands in for Dify's file endpoint: the plugin downloads file parameters from a URL."""
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(WORKFLOWS), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def dify_file(base: str, name: str) -> dict:
    return {"dify_model_identity": "__dify__file__", "url": f"{base}/{name}", "mime_type": "application/json",
            "filename": Path(name).name, "extension": ".json", "size": (WORKFLOWS / name).stat().st_size,
            "type": "document"}


def server_file(comfy, entry: dict) -> bytes:
    base = Path(comfy.base_dir)
    root = base / "root" if (base / "root").is_dir() else base
    return (root / entry["type"] / entry["subfolder"] / entry["filename"]).read_bytes()


def test_credentials_of_a_reachable_comfyui_pass(plugin, comfy_server):
    check = plugin.validate(PROVIDER, {"comfyui_base_url": comfy_server.url + "/"})
    assert check.ok, check.error


def test_an_unreachable_comfyui_is_refused_with_a_reason(plugin):
    check = plugin.validate(PROVIDER, {"comfyui_base_url": "http://127.0.0.1:9"})
    assert not check.ok
    assert "refused" in check.error and "127.0.0.1:9" in check.error


def test_a_wrong_cos_secret_key_is_named_in_validation(plugin, comfy_server, cos_credentials):
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url, cos_secret_key="x" * 32)
    check = plugin.validate(PROVIDER, creds)
    assert not check.ok and "SecretKey" in check.error
    assert "x" * 32 not in plugin.output_text()


def test_a_run_returns_the_exact_bytes_as_blobs_and_the_same_bytes_on_cos(
        plugin, comfy_server, cos_server, cos_credentials, file_server):
    cos_server.make_public(cos_credentials["cos_bucket"])
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url)
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds,
                        {"prompt": "a red fox", "workflow": dify_file(file_server, "batch4_save.json")}, timeout=120)
    assert not run.errors, run.errors
    (summary,) = run.jsons
    assert summary["status"] == "success" and len(summary["outputs"]) == 4
    history = comfy_server.history_entry(summary["prompt_id"])
    expected = [server_file(comfy_server, e) for e in history["outputs"]["2"]["images"]]
    blobs = [b.data for b in run.blobs.values()]
    assert blobs == expected
    assert [b.meta["mime_type"] for b in run.blobs.values()] == ["image/png"] * 4
    urls = run.variables["urls"]
    assert run.variables["url"] == urls[0] and len(urls) == 4
    assert run.variables["markdown"].splitlines()[0] == f"![{summary['outputs'][0]['filename']}]({urls[0]})"
    for entry, data in zip(summary["outputs"], expected, strict=True):
        assert entry["uploaded"] and entry["url"].endswith("/" + entry["filename"])
        assert "key" not in entry and "etag" not in entry and "server" not in summary    # nothing internal
        assert fetch(cos_server, entry["url"]).content == data
    assert run.variables["status"] == "success"
    for secret in (COS_AK, COS_SK):
        assert secret not in plugin.output_text()


def test_cos_down_still_delivers_the_blobs_and_says_why(plugin, comfy_server, cos_credentials):
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url, cos_endpoint="http://127.0.0.1:9")
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds,
                        {"workflow_json": (WORKFLOWS / "empty_save_1024.json").read_text()}, timeout=120)
    assert not run.errors
    assert len(run.blobs) == 1
    (summary,) = run.jsons
    assert summary["outputs"][0]["uploaded"] is False and summary["outputs"][0]["upload_error"]
    assert "Upload to COS failed" in run.text


def test_a_validation_error_fails_the_tool_with_one_line_per_node(plugin, comfy_server):
    graph = json.loads((WORKFLOWS / "empty_save_1024.json").read_text())
    graph["1"]["inputs"]["width"] = 0
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": json.dumps(graph)}, timeout=120)
    (error,) = run.errors
    assert 'node 1 (EmptyImage): input "width": Value 0 smaller than min of 1' in error["message"]


def test_a_ui_format_file_or_junk_gets_the_export_steps(plugin, comfy_server):
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": '{"nodes": [{"id": 1, "type": "NoSuchNodeAnywhere"}], "links": []}'},
                        timeout=120)
    (error,) = run.errors
    assert "Export (API)" in error["message"]


def test_partial_outputs_of_a_failed_run_are_delivered_with_the_reason(plugin, comfy_server):
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": (WORKFLOWS / "runtime_error_after_partial_output.json").read_text()},
                        timeout=120)
    assert not run.errors
    assert len(run.blobs) == 1 and run.variables["status"] == "partial"
    assert "SplitAudioChannels" in run.text and "only one channel" in run.text


def test_progress_streams_into_its_own_variable_only_when_asked(plugin, comfy_server):
    params = {"workflow_json": (WORKFLOWS / "empty_save_1024.json").read_text()}
    loud = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                         dict(params, progress=True), timeout=120)
    quiet = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url}, params, timeout=120)
    cached = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                           dict(params, progress=True), timeout=120)
    def streamed(run, name="progress"):
        return [m["message"]["variable_value"] for m in run.stream
                if m["type"] == "variable" and m["message"].get("stream") and m["message"]["variable_name"] == name]
    assert streamed(quiet) == []
    # url, markdown, status and prompt_id are streamed too (so an Answer node can show them), progress alone
    # depends on the switch.
    assert streamed(quiet, "status") == ["success"] and streamed(loud, "status") == ["success"]
    lines = "".join(streamed(loud))
    assert "Running node 2 (SaveImage)" in lines and "Finished in" in lines
    assert "2 node(s) served from ComfyUI's cache" in "".join(streamed(cached))
    assert not any("node" in t for t in quiet.texts if "Running" in t)  # the text output stays clean


def agent_observation(run) -> str:
    """What Dify's agent runner puts into the LLM context for these messages
    (api/core/tools/tool_engine.py `_convert_tool_response_to_str`; blobs arrive there already
    turned into image links)."""
    parts, json_parts = [], []
    for m in run.stream:
        kind = m["type"]
        if kind == "text":
            parts.append(m["message"]["text"])
        elif kind == "link":
            parts.append(f"result link: {m['message']['text']}. please tell user to check it.")
        elif kind in ("blob", "image", "image_link"):
            parts.append("image has been created and sent to user already, "
                         "you do not need to create it, just tell the user to check it now.")
        elif kind == "json":
            json_parts.append(json.dumps(m["message"]["json_object"], ensure_ascii=False))
        else:
            msg = m["message"]
            parts.append(f"variable_name='{msg['variable_name']}' variable_value={msg['variable_value']!r} "
                         f"stream={msg.get('stream', False)}")
    return "".join(parts + [p for p in json_parts if p not in parts])


def test_an_agent_sees_the_urls_and_one_sentence_never_the_workflow(plugin, comfy_server, cos_server,
                                                                     cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    creds = dict(cos_credentials, comfyui_base_url=comfy_server.url)
    sdxl = (WORKFLOWS / "bizyair/sdxl_ksampler_txt2img_api.json").read_text()
    run = plugin.invoke(PROVIDER, "comfyui_workflow", creds, {"prompt": "a lighthouse at dusk", "workflow_json": sdxl},
                        timeout=120)
    assert not run.errors
    seen = agent_observation(run)
    url = run.variables["url"]
    assert run.text.startswith("Generated 1 image file. URL: " + url)
    assert url in seen
    assert seen.index("Generated 1 image file") < seen.index("variable_name=")  # the sentence comes first
    for workflow_part in ("class_type", "CheckpointLoaderSimple", "Juggernaut", "inputs"):
        assert workflow_part not in seen
    assert len(seen) < 2500, seen


def test_text_to_image_needs_only_a_prompt(plugin, comfy_server):
    run = plugin.invoke(PROVIDER, "text_to_image", {"comfyui_base_url": comfy_server.url},
                        {"prompt": "a paper boat on a pond", "width": 768, "height": 512}, timeout=120)
    assert not run.errors, run.errors
    (blob,) = run.blobs.values()
    assert blob.meta["mime_type"] == "image/png" and b"a paper boat on a pond" in blob.data
    (summary,) = run.jsons
    assert set(summary["seeds"]) == {"3.seed"}


def test_text_to_image_on_a_retired_bizyair_node_names_the_workflow_to_use(plugin, comfy_server):
    run = plugin.invoke(PROVIDER, "text_to_image", {"comfyui_base_url": comfy_server.url},
                        {"prompt": "a paper boat", "model": "kolors"}, timeout=120)
    (error,) = run.errors
    assert "retired" in error["message"] and ("'sdxl'" in error["message"] or "'flux_dev'" in error["message"])

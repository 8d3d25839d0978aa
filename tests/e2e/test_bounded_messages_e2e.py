"""Over Dify's stdio protocol, with the built package: a server that answers with a 6 MB text output
or a 3 MB file name gets bounded messages back (Dify's daemon kills the whole plugin instance on a
stdout line over 5 MiB), and the plugin process serves the next call as usual."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stdio_harness import PluginProcess  # noqa: E402

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "tests/fixtures/workflows"
PROVIDER = "comfyui_bizyair"
LINE_LIMIT = 64 * 1024 + 1024     # our message bound plus the protocol's envelope


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess.start(env={"NO_PROXY": "*", "no_proxy": "*"}) as proc:
        yield proc


def stdout_since(plugin, start: int) -> list[str]:
    return [text for source, text in plugin.lines[start:] if source == "stdout"]


def a_normal_run_still_works(plugin, comfy_server) -> None:
    comfy_server.reset()       # default config, and no cached outputs of the hostile run
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": (WORKFLOWS / "empty_save_1024.json").read_text()}, timeout=120)
    assert not run.errors and len(run.blobs) == 1 and run.variables["status"] == "success"
    assert plugin.proc.poll() is None


def test_a_6_mb_text_output_arrives_as_a_txt_file_in_bounded_lines(plugin, comfy_server):
    graph = json.loads((WORKFLOWS / "text_only.json").read_text())
    inputs = graph["1"]["inputs"]
    line = inputs["string_a"] + inputs["delimiter"] + inputs["string_b"] + "\n"     # what PreviewAny shows
    expected = (line * (6_000_000 // len(line) + 1))[:6_000_000]
    comfy_server.config(text_output_bytes=6_000_000)
    start = len(plugin.lines)
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": json.dumps(graph)}, timeout=300)
    assert not run.errors, run.errors
    (blob,) = run.blobs.values()
    assert blob.meta["mime_type"] == "text/plain" and blob.meta["filename"].endswith("_text_1.txt")
    assert blob.data == expected.encode()
    (summary,) = run.jsons
    assert summary["texts"][0].startswith("hello world\nhello world") and blob.meta["filename"] in summary["texts"][0]
    assert max(len(text.encode()) for text in stdout_since(plugin, start)) <= LINE_LIMIT
    a_normal_run_still_works(plugin, comfy_server)


def test_a_3_mb_output_name_gives_a_short_error_and_the_plugin_lives_on(plugin, comfy_server):
    comfy_server.config(output_name_chars=3_000_000)
    start = len(plugin.lines)
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": (WORKFLOWS / "empty_save_1024.json").read_text()}, timeout=300)
    (error,) = run.errors
    assert "none of its outputs could be delivered" in error["message"]
    assert len(error["message"].encode()) < 16 * 1024
    lines = stdout_since(plugin, start)
    assert max(len(text.encode()) for text in lines) <= LINE_LIMIT
    assert not any("n" * 5000 in text for text in lines)
    a_normal_run_still_works(plugin, comfy_server)


def test_a_3_mb_name_beside_a_text_output_is_delivered_as_partial(plugin, comfy_server):
    comfy_server.config(output_name_chars=3_000_000)
    start = len(plugin.lines)
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": comfy_server.url},
                        {"workflow_json": (WORKFLOWS / "multi_output_mixed.json").read_text()}, timeout=300)
    assert not run.errors, run.errors
    assert run.variables["status"] == "partial" and not run.blobs
    (summary,) = run.jsons
    assert summary["texts"] == ["hello, world"] and summary["notes"]
    assert max(len(text.encode()) for text in stdout_since(plugin, start)) <= LINE_LIMIT
    a_normal_run_still_works(plugin, comfy_server)

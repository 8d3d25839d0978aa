"""Live contract: every example app, run by graphon (Dify's workflow engine), with its tool node
served by the built .difypkg over the stdio protocol against the ComfyUI test server, without
and with COS (the local COS test server). Asserts what the user sees (cases.check_turn).

With CONTRACT_RECORD=1 (set by tests/contract/record.py) each run is also saved as the
recording the replay test uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cases import DOWN_URL, QUERY, Case, all_cases, check, credentials, slow_down, start_inputs
from cos_fixture import fetch
from dify_host import DifyHost
from plugin_route import LiveInvoker, Recording, _packer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from stdio_harness import DaemonStorage, PluginProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RECORD = os.environ.get("CONTRACT_RECORD") == "1"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return _packer().build(ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def plugin(built):
    with PluginProcess.start(built.path, env={"NO_PROXY": "*", "no_proxy": "*"}) as proc:
        yield proc


def comfy_output(comfy, prompt_id: str) -> bytes:
    """The file the workflow's SaveImage node ("9") wrote on the ComfyUI server."""
    return comfy.saved_file(prompt_id, "9").read_bytes()


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.id)
def test_example_app_live(case: Case, plugin, built, comfy_server, request):
    cos = None
    if case.cos:
        cos = request.getfixturevalue("cos_credentials")
        cos_server = request.getfixturevalue("cos_server")
        cos_server.make_public(cos["cos_bucket"])
    comfyui_url = DOWN_URL if case.kind == "comfyui_down" else comfy_server.url
    slow = slow_down(case)
    if slow:
        comfy_server.config(node_delay=slow)
    invoker = LiveInvoker(plugin, built.identifier, storage=DaemonStorage())
    with DifyHost() as host:
        turn = host.run_chat(case.dsl(), invoker=invoker, credentials=credentials(comfyui_url, cos),
                             start_inputs=start_inputs(case.dsl(), host), query=QUERY)
        if RECORD:
            Recording(case.example, case.name, built.identifier, invoker.exchanges).save()
        seen = check(case, turn, host, image_bytes=lambda pid: comfy_output(comfy_server, pid),
                     cos_bytes=(lambda url: fetch(cos_server, url).content) if case.cos else None)
        if case.kind != "comfyui_down":
            # The plugin read the user's workflow file through Dify's signed files URL.
            assert len([p for p in host.files.fetches if p.endswith("/file-preview")]) == 1, host.files.fetches
    print(f"\n[{case.id}] answer:\n{seen.answer}\nfiles: {seen.files}")

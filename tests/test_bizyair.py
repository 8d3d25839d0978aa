"""What the bridge knows about BizyAir containers, and the simulated container it is tested against.

First part, no server: error explanations, the server-mode key, placeholders, the cache note.
Second part: `diagnose` against the simulated container in each key state, and the simulator
itself checked against what a real container (bizyengine 1.2.114) did. Captured errors and key
routes are copies in tests/fixtures/bizyair/ (execution_errors.json, key_routes.json).
"""

from __future__ import annotations

import ast
import json
import struct
import time
import uuid
import zlib
from pathlib import Path

import pytest
import requests
import websocket

from comfyui_bridge import bizyair
from comfyui_bridge.bizyair import apply_server_mode_key, cache_note, explain_failure, is_placeholder
from comfyui_bridge.client import ComfyClient
from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import ServerConfig
from comfyui_bridge.errors import AuthRejected

FIXTURES = Path(__file__).parent / "fixtures" / "bizyair"
CAPTURED = [e for e in json.loads((FIXTURES / "execution_errors.json").read_text("utf-8"))["errors"]
            if e["terminal"] == "execution_error"]
FAKE_KEY = "sk-testkey000"


def _ids(errors):
    return [f"{e['scenario']}-{e['workflow'].split('_')[0]}" for e in errors]


# ---- explain_failure -------------------------------------------------------------------------

# What each captured failure must be explained as (scenario, workflow prefix) → kind.
EXPECTED_KIND = {
    ("nokey", "kolors"): "deprecated", ("stub_nokey", "kolors"): "deprecated",
    ("stub_validkey", "kolors"): "deprecated",
    ("fakekey", "kolors"): "network", ("fakekey", "sdxl"): "network", ("fakekey", "flux"): "network",
    ("fakekey", "nanobanana"): "network",
    ("nokey", "sdxl"): "network", ("nokey", "flux"): "network", ("nokey", "nanobanana"): "network",
    ("stub_nokey", "sdxl"): "auth", ("stub_nokey", "flux"): "auth", ("stub_nokey", "nanobanana"): "auth",
    ("stub_wrongkey", "kolors"): "auth", ("stub_wrongkey", "sdxl"): "auth",
    ("stub_wrongkey", "flux"): "auth", ("stub_wrongkey", "nanobanana"): "auth",
    ("stub_hang", "sdxl"): "timeout",
}


def test_the_captures_cover_six_exception_types():
    types = {e["exception_type"] for e in CAPTURED}
    assert types == {"Exception", "ValueError", "bizyengine.core.common.errors.BizyAirUserError",
                     "bizyengine.core.common.errors.BizyAirAuthError",
                     "aiohttp.client_exceptions.ClientConnectorDNSError", "ConnectionResetError"}
    assert {(e["scenario"], e["workflow"].split("_")[0]) for e in CAPTURED} == set(EXPECTED_KIND)


@pytest.mark.parametrize("error", CAPTURED, ids=_ids(CAPTURED))
def test_every_captured_failure_gets_its_explanation(error):
    en, zh, detail = explain_failure(error["node_type"], error["exception_type"], error["exception_message"])
    assert detail["kind"] == EXPECTED_KIND[(error["scenario"], error["workflow"].split("_")[0])]
    assert detail["node_type"] == error["node_type"]
    assert detail["exception_type"] == error["exception_type"]
    assert error["node_type"] in en and error["node_type"] in zh
    assert "\x1b" not in en + zh + json.dumps(detail)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)


@pytest.mark.parametrize("error", CAPTURED, ids=_ids(CAPTURED))
def test_a_key_placed_in_any_captured_error_never_comes_back(error):
    other_key = "sk-otherKey4242"
    text = f"{error['exception_message']} key={FAKE_KEY} again {FAKE_KEY}, {other_key}"
    en, zh, detail = explain_failure(error["node_type"] + FAKE_KEY, error["exception_type"], text,
                                     secrets=[FAKE_KEY])
    everything = en + zh + json.dumps(detail, ensure_ascii=False)
    assert FAKE_KEY not in everything and "testkey000" not in everything
    assert other_key not in everything          # sk- keys are redacted even when not declared


def test_the_wrong_key_error_is_auth_and_loses_key_and_colour():
    error = next(e for e in CAPTURED if e["scenario"] == "stub_wrongkey")
    assert FAKE_KEY in error["exception_message"] and "\x1b[91m" in error["exception_message"]
    en, zh, detail = explain_failure(error["node_type"], error["exception_type"], error["exception_message"])
    assert "BIZYAIR_API_KEY" in en and "BIZYAIR_API_KEY" in zh
    assert FAKE_KEY not in detail["text"] and "Error validating API key" in detail["text"]


def test_the_retired_kolors_node_points_to_the_sdxl_workflow():
    error = next(e for e in CAPTURED if e["node_type"] == "BizyAir_MinusZoneChatGLM3TextEncode")
    en, zh, detail = explain_failure(error["node_type"], error["exception_type"], error["exception_message"])
    assert "'sdxl'" in en and "sdxl" in zh and detail["replacement"] == "sdxl"


def test_other_retired_nodes_name_both_builtin_workflows():
    message = "This node is deprecated, please use BizyAirPlus at https://plugin.bizyair.com/ instead"
    en, _, detail = explain_failure("BizyAirCannyEdgePreprocessor", "Exception", message)
    assert "sdxl" in en and "flux_dev" in en and detail["kind"] == "deprecated"


@pytest.mark.parametrize("message, kind, code", [
    ("该节点的后端服务暂不可用或已下线，请稍后重试或改用其他节点。[错误码 20049]", "balance", 20049),
    ("该节点的后端服务暂不可用或已下线，请稍后重试或改用其他节点。[错误码 20050]", "balance", 20050),
    ("请求处理失败，请稍后重试。如持续失败请联系 BizyAir 官方支持。[错误码 20051]", "balance", 20051),
    ("请求处理失败，请稍后重试。如持续失败请联系 BizyAir 官方支持。[错误码 30039]", "queue_full", 30039),
    ("请求处理失败，请稍后重试。如持续失败请联系 BizyAir 官方支持。[错误码 30040]", "queue_full", 30040),
    ("该节点的后端服务暂不可用或已下线，请稍后重试或改用其他节点。[错误码 60000]", "service_unavailable", 60000),
    ("该节点的后端服务暂不可用或已下线，请稍后重试或改用其他节点。", "service_unavailable", None),
    ("Failed to handle your request: HTTP Error 500: Internal Server Error. Error code: 60000",
     "service_unavailable", 60000),
    ("BizyAir_NanoBanana task 42 failed: {'code': 20021, 'message': 'content rejected'}", "moderation", 20021),
    ("请求处理失败，请稍后重试。如持续失败请联系 BizyAir 官方支持。[错误码 20093]", "key_expired", 20093),
    ("请求处理失败，请稍后重试。如持续失败请联系 BizyAir 官方支持。[错误码 20094]", "key_expired", 20094),
])
def test_cloud_error_codes_decide_the_explanation(message, kind, code):
    en, zh, detail = explain_failure("BizyAir_KSampler", "bizyengine.core.common.errors.BizyAirUserError", message)
    assert detail["kind"] == kind
    assert detail.get("error_code") == code
    if code:
        assert f"[code {code}]" in en and f"[code {code}]" in zh


def test_balance_message_says_to_top_up():
    en, zh, _ = explain_failure("BizyAir_KSampler", "BizyAirUserError", "后端服务暂不可用或已下线 [错误码 20050]")
    assert "balance" in en and "余额" in zh


@pytest.mark.parametrize("node_type, exc_type, message, kind", [
    ("BizyAir_KSampler", "PermissionError",
     "Key is invalid, please refer to https://cloud.siliconflow.cn to get the API key.\nIf you have the key, "
     "please click the 'API Key' button at the bottom right to set the key.", "auth"),
    ("BizyAir_KSampler", "TimeoutError", "Timeout waiting for task 1234 to finish", "timeout"),
    ("BizyAir_KSampler", "KeyError", "'api_key'", "server_mode_no_key"),
    ("BizyAir_NanoBanana", "aiohttp.client_exceptions.ClientConnectorError",
     "Cannot connect to host api.bizyair.cn:443 ssl:default [Connection refused]", "network"),
    ("BizyAir_NanoBanana", "RuntimeError", "Task failed: {'status': 'failed'}", "cloud_failed"),
])
def test_older_and_rarer_bizyair_failures(node_type, exc_type, message, kind):
    assert explain_failure(node_type, exc_type, message)[2]["kind"] == kind


def test_errors_of_ordinary_nodes_are_not_bizyair_business():
    assert explain_failure("KSampler", "RuntimeError", "CUDA out of memory") is None
    assert explain_failure("SaveImage", "ConnectionResetError", "[Errno 104] Connection reset by peer") is None


def test_a_bizyair_exception_on_any_node_is_recognised():
    result = explain_failure("SomeWrapper", "bizyengine.core.common.errors.BizyAirUserError",
                             "网络连接异常，请检查网络后重试。")
    assert result is not None and result[2]["kind"] == "network"


def test_unknown_bizyair_failures_show_the_scrubbed_text_and_no_server_paths():
    en, _, detail = explain_failure(
        "BizyAir_Foo", "ValueError",
        'boom at File "/opt/ComfyUI/venv/lib/python3.11/site-packages/bizyengine/core/x.py" with sk-abcdef123')
    assert detail["kind"] == "unknown"
    assert "boom" in en and "/opt/ComfyUI" not in en + detail["text"] and "sk-abcdef123" not in en


def test_the_clouds_ok_code_inside_a_failed_task_is_not_an_error_code():
    message = "BizyAir_NanoBanana task 9 failed: {'code': 20000, 'message': 'Ok', 'data': {'status': 'failed'}}"
    en, _, detail = explain_failure("BizyAir_NanoBanana", "ValueError", message)
    assert detail["kind"] == "cloud_failed" and "error_code" not in detail and "[code" not in en


# ---- server mode -----------------------------------------------------------------------------

def test_server_mode_key_travels_in_the_magic_node_only():
    graph = {"3": {"class_type": "BizyAir_KSampler", "inputs": {}}}
    apply_server_mode_key(graph, " sk-plugin0001 ", prompt_id="p-123")
    assert graph["bizyair_magic_node"] == {"class_type": "BizyAir_PassParameter", "inputs": {},
                                           "_meta": {"api_key": "sk-plugin0001", "prompt_id": "p-123"}}


def test_server_mode_key_replaces_a_magic_node_that_came_with_the_workflow():
    graph = {"bizyair_magic_node": {"class_type": "BizyAir_PassParameter", "inputs": {},
                                    "_meta": {"api_key": "sk-someoneelse", "prompt_id": "old"}}}
    apply_server_mode_key(graph, "sk-mine00001")
    meta = graph["bizyair_magic_node"]["_meta"]
    assert meta["api_key"] == "sk-mine00001" and meta["prompt_id"] not in ("", "old")


def test_no_key_means_no_magic_node():
    graph: dict = {}
    apply_server_mode_key(graph, "")
    assert graph == {}
    assert bizyair.secrets("") == [] and bizyair.secrets(" sk-x1234 ") == ["sk-x1234"]


def test_the_magic_node_class_is_one_real_containers_register():
    info = json.loads((Path(__file__).parent / "fixtures" / "captures" / "object_info_bizyair.json").read_text("utf-8"))
    assert bizyair.SERVER_MODE_NODE_CLASS in info["classes"]
    assert info["classes"][bizyair.SERVER_MODE_NODE_CLASS]["output"] == []


# ---- placeholders ----------------------------------------------------------------------------

PLACEHOLDER_PNG = (FIXTURES / "placeholder.png").read_bytes()
PLACEHOLDER_MP4 = (FIXTURES / "placeholder.mp4").read_bytes()


def _png_rows(data: bytes) -> tuple[int, int, list[bytearray]]:
    """RGBA rows of the stock placeholder (stored with filter 0 on every row)."""
    width, height = struct.unpack(">II", data[16:24])
    idat = b"".join(data[p + 8:p + 8 + n] for p, n in _chunks(data, b"IDAT"))
    raw = zlib.decompress(idat)
    stride = width * 4
    assert all(raw[y * (stride + 1)] == 0 for y in range(height))
    return width, height, [bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]) for y in range(height)]


def _chunks(data: bytes, kind: bytes):
    pos = 8
    while pos < len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        if tag == kind:
            yield pos, length
        pos += 12 + length


def _encode(width: int, height: int, rows: list[bytearray], channels: int, text: str) -> bytes:
    """A PNG as ComfyUI's SaveImage writes it: new filters per row, tEXt metadata."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    raw, prev = bytearray(), bytearray(width * channels)
    for y, row in enumerate(rows):
        kind = (0, 1, 2, 3, 4)[y % 5]
        raw += bytes([kind]) + _filter(kind, row, prev, channels)
        prev = row
    colour = {3: 2, 4: 6}[channels]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
            + chunk(b"tEXt", b"prompt\x00" + text.encode()) + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
            + chunk(b"IEND", b""))


def _filter(kind, row, prev, bpp):
    out = bytearray(len(row))
    for i, value in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = b
        elif kind == 3:
            pred = (a + b) >> 1
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
        out[i] = (value - pred) & 0xFF
    return out


def test_the_stock_files_are_the_ones_hashed():
    assert is_placeholder(PLACEHOLDER_PNG) and is_placeholder(PLACEHOLDER_MP4)
    assert len(PLACEHOLDER_MP4) < 2 * 1024 * 1024


def test_a_placeholder_rewritten_by_saveimage_is_still_recognised():
    width, height, rows = _png_rows(PLACEHOLDER_PNG)
    # float32 round trip in ComfyUI can lower a value by one; SaveImage adds metadata.
    rows = [bytearray(max(0, v - ((x + y) % 2)) for x, v in enumerate(row)) for y, row in enumerate(rows)]
    rgba = _encode(width, height, rows, 4, '{"1": {"class_type": "BizyAir_NanoBanana"}}')
    assert rgba != PLACEHOLDER_PNG and is_placeholder(rgba)
    rgb = _encode(width, height, [bytearray(v for i, v in enumerate(r) if i % 4 != 3) for r in rows], 3, "{}")
    assert is_placeholder(rgb)


def test_real_results_are_not_placeholders():
    width, height, rows = _png_rows(PLACEHOLDER_PNG)
    plain_grey = _encode(width, height, [bytearray(b"\xdd\xdd\xdd\xff" * width) for _ in rows], 4, "{}")
    assert not is_placeholder(plain_grey)
    shifted = _encode(width, height, [row[40:] + row[:40] for row in rows], 4, "{}")  # text moved 10 px
    assert not is_placeholder(shifted)
    assert not is_placeholder(PLACEHOLDER_PNG[:300])  # cut short: no crash, no match
    assert not is_placeholder(PLACEHOLDER_PNG[:100] + b"\x00" * 200 + PLACEHOLDER_PNG[300:])
    assert not is_placeholder(PLACEHOLDER_MP4[:-1] + bytes([PLACEHOLDER_MP4[-1] ^ 1]))
    assert not is_placeholder(b"") and not is_placeholder(b"GIF89a")


def test_the_placeholder_check_fails_when_the_hash_is_wrong(monkeypatch):
    monkeypatch.setattr(bizyair.placeholders, "PLACEHOLDER_SHA256", frozenset())
    assert not is_placeholder(PLACEHOLDER_MP4)
    assert is_placeholder(PLACEHOLDER_PNG)  # still caught by its pixels


# ---- cache note ------------------------------------------------------------------------------

def test_cache_note_only_for_a_fixed_seed_on_bizyair():
    note = cache_note(seed_fixed=True, is_bizyair=True)
    assert "7 days" in note and "7 天" in note
    assert cache_note(seed_fixed=False, is_bizyair=True) is None
    assert cache_note(seed_fixed=True, is_bizyair=False) is None


# ==== against the simulated BizyAir container ===================================================

WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows" / "bizyair"
KEY_ROUTES = json.loads((FIXTURES / "key_routes.json").read_text("utf-8"))["states"]
ALL_CAPTURED = json.loads((FIXTURES / "execution_errors.json").read_text("utf-8"))["errors"]
CAPTURED_STATE = {"mcp2_broken_nokey": "not_installed"}


def _client(server, **kw) -> ComfyClient:
    return ComfyClient(ServerConfig(server.url, **kw))


def _run(server, graph: dict, timeout: float = 20.0) -> dict:
    """Queue `graph` and return its /history entry once it ended."""
    resp = requests.post(server.url + "/prompt", json={"prompt": graph, "client_id": uuid.uuid4().hex}, timeout=10)
    assert resp.status_code == 200, resp.text
    prompt_id = resp.json()["prompt_id"]
    return server.finished_entry(prompt_id, timeout)


def _message(entry: dict, kind: str) -> dict | None:
    return next((data for name, data in entry["status"]["messages"] if name == kind), None)


def _workflow(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text("utf-8"))


# ---- diagnose ---------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["nokey", "fakekey", "stub_nokey", "stub_wrongkey"])
def test_no_valid_key_is_not_ok_and_says_how_to_set_one(comfy_server, state):
    comfy_server.config(bizyair_state=state, bizyair_key=FAKE_KEY)
    diagnosis = bizyair.diagnose(_client(comfy_server))
    assert (diagnosis.bizyair_installed, diagnosis.key_state, diagnosis.ok) == (True, "invalid_or_offline", False)
    assert diagnosis.comfyui_version == "0.8.0"
    assert "docker run -e BIZYAIR_API_KEY=sk-" in diagnosis.message and "BIZYAIR_API_KEY" in diagnosis.message_zh
    assert "no route to the BizyAir cloud" in diagnosis.message
    assert diagnosis.detail["user_info_status"] == 401


def test_a_working_key_is_ok(comfy_server):
    diagnosis = bizyair.diagnose(_client(comfy_server))   # the simulator's default: stub_validkey
    assert (diagnosis.key_state, diagnosis.ok, diagnosis.bizyair_installed) == ("valid", True, True)
    assert diagnosis.server == comfy_server.url


def test_a_plugin_key_does_not_rescue_a_container_outside_server_mode(comfy_server):
    comfy_server.config(bizyair_state="nokey")
    diagnosis = bizyair.diagnose(_client(comfy_server), server_mode_key_configured=True)
    assert not diagnosis.ok and diagnosis.key_state == "invalid_or_offline"
    assert "BIZYAIR_SERVER_MODE=1" in diagnosis.message and diagnosis.detail["server_mode"] is False


def test_server_mode_needs_the_plugin_key(comfy_server):
    comfy_server.config(bizyair_state="server_mode")
    without = bizyair.diagnose(_client(comfy_server))
    with_key = bizyair.diagnose(_client(comfy_server), server_mode_key_configured=True)
    assert without.key_state == with_key.key_state == "not_loaded_or_server_mode"
    assert not without.ok and "plugin's credentials" in without.message
    assert with_key.ok and with_key.detail["server_mode"] is True


@pytest.mark.parametrize("state, broken", [("absent", False), ("not_installed", True)])
def test_plain_comfyui_is_fine_and_a_broken_bizyair_import_is_named(comfy_server, state, broken):
    comfy_server.config(bizyair_state=state)
    diagnosis = bizyair.diagnose(_client(comfy_server))
    assert (diagnosis.ok, diagnosis.bizyair_installed, diagnosis.key_state) == (True, False, "not_applicable")
    assert "plain ComfyUI, no BizyAir nodes" in diagnosis.message
    assert ("mcp<2" in diagnosis.message) is broken


def test_a_key_check_that_hangs_is_reported_not_waited_for(comfy_server):
    comfy_server.config(route_delay={"GET /bizyair/user/info": 1.5})
    diagnosis = bizyair.diagnose(_client(comfy_server), deadline=Deadline.after(0.5))
    assert not diagnosis.ok and diagnosis.detail["user_info_status"] == "timeout"
    assert "hang" in diagnosis.message


def test_bizyair_nodes_without_their_key_route_are_a_broken_install(comfy_server):
    comfy_server.config(route_status={"GET /bizyair/user/info": 404})
    diagnosis = bizyair.diagnose(_client(comfy_server))
    assert (diagnosis.key_state, diagnosis.ok, diagnosis.detail["server_mode"]) == \
        ("not_loaded_or_server_mode", False, False)
    assert "partly broken" in diagnosis.message


def test_behind_a_token_the_bizyair_401_is_still_read_as_bizyair(comfy_server_factory):
    server = comfy_server_factory(token="comfy-token-123456")
    server.config(bizyair_state="stub_wrongkey")
    diagnosis = bizyair.diagnose(_client(server, token="comfy-token-123456"))
    assert diagnosis.key_state == "invalid_or_offline"
    with pytest.raises(AuthRejected):
        bizyair.diagnose(_client(server, token="wrong-token-000000"))


@pytest.mark.parametrize("state", ["nokey", "fakekey", "stub_nokey", "stub_wrongkey", "stub_validkey",
                                   "server_mode", "not_installed", "absent"])
def test_no_diagnosis_repeats_the_containers_key(comfy_server, state):
    comfy_server.config(bizyair_state=state, bizyair_key=FAKE_KEY)
    container_leaks = FAKE_KEY in requests.get(comfy_server.url + "/bizyair/get_api_key", timeout=5).text
    assert container_leaks == (state == "stub_wrongkey")
    diagnosis = bizyair.diagnose(_client(comfy_server), server_mode_key_configured=True)
    dumped = json.dumps(diagnosis.__dict__, ensure_ascii=False)
    assert FAKE_KEY not in dumped and "\x1b" not in dumped


# ---- the simulator's routes match the captures ---------------------------------------------------

def _replay(server, request: dict) -> requests.Response:
    desc, url = request["desc"], server.url + request["path"]
    if request["method"] == "GET":
        cookie = desc.split("cookie api_key=")[1] if "cookie api_key=" in desc else None
        return requests.get(url, cookies={"api_key": cookie} if cookie else None, timeout=5)
    if "JSON body" in desc:
        return requests.post(url, json={"api_key": "sk-setkey000"}, timeout=5)
    key = desc.split("form api_key=")[1].split(" ")[0] if "form api_key=" in desc else None
    return requests.post(url, data={"api_key": key} if key else {}, timeout=5)


@pytest.mark.parametrize("label", sorted(KEY_ROUTES))
def test_key_routes_answer_like_the_captured_container(comfy_server, label):
    comfy_server.config(bizyair_state=CAPTURED_STATE.get(label, label),
                        bizyair_valid_keys=["sk-validfake000"])
    for request in KEY_ROUTES[label]:
        if request["from"] == "surface":
            comfy_server.reset()
            comfy_server.config(bizyair_state=CAPTURED_STATE.get(label, label))
        resp = _replay(comfy_server, request)
        where = f"{label}: {request['method']} {request['path']} {request['desc']}"
        assert resp.status_code == request["status"], where
        assert resp.headers.get("Content-Type") == request["content_type"], where
        assert resp.text == request["body"] or resp.json() == json.loads(request["body"]), where


# ---- the simulator's executions match the captures ---------------------------------------------

RUNS = [e for e in ALL_CAPTURED if e["scenario"] != "stub_hang"]


@pytest.mark.parametrize("captured", RUNS, ids=_ids(RUNS))
def test_runs_fail_on_the_captured_node_with_the_captured_error(comfy_server, captured):
    comfy_server.config(bizyair_state=captured["scenario"])
    graph = _workflow(captured["workflow"])
    entry = _run(comfy_server, graph)
    if captured["terminal"] == "execution_success":
        assert entry["status"]["status_str"] == "success"
        assert sorted(entry["outputs"]) == sorted(captured["outputs"])
        return
    error = _message(entry, "execution_error")
    assert (error["node_id"], error["node_type"], error["exception_type"]) == \
        (captured["node_id"], captured["node_type"], captured["exception_type"])
    assert error["exception_message"] == captured["exception_message"]
    # (The traceback is not compared: the simulator replays the captured one, so that would compare
    # the fixture with itself.)
    assert sorted(error["current_inputs"]) == captured["current_input_names"]
    if "bizyair_prompt" in error["current_inputs"]:
        # The whole prompt, as a Python repr (validated values: 1 became 1.0, as in ComfyUI).
        assert ast.literal_eval(error["current_inputs"]["bizyair_prompt"][0]) == graph
    # Everything the captured run executed ran here too (plus what the captured server had cached).
    assert set(captured["executed"]) <= set(error["executed"]) and captured["node_id"] not in error["executed"]
    kind = explain_failure(error["node_type"], error["exception_type"], error["exception_message"])[2]["kind"]
    assert kind == EXPECTED_KIND[(captured["scenario"], captured["workflow"].split("_")[0])]


def test_successful_bizyair_runs_write_real_pngs(comfy_server):
    entry = _run(comfy_server, _workflow("sdxl_ksampler_txt2img_api"))
    image = entry["outputs"]["9"]["images"][0]
    data = requests.get(comfy_server.url + "/view", params=image, timeout=5).content
    assert data.startswith(b"\x89PNG") and not is_placeholder(data)


def test_a_hung_cloud_call_ignores_interrupt_and_ends_with_a_reset(comfy_server):
    comfy_server.config(bizyair_state="stub_hang")
    client_id = uuid.uuid4().hex
    ws = websocket.create_connection(f"{comfy_server.ws_url}?clientId={client_id}", timeout=10)
    try:
        resp = requests.post(comfy_server.url + "/prompt", timeout=5,
                             json={"prompt": _workflow("sdxl_ksampler_txt2img_api"), "client_id": client_id})
        prompt_id = resp.json()["prompt_id"]
        while True:  # until the sampler (the first node that calls the cloud) is running
            frame = ws.recv()
            if isinstance(frame, str) and json.loads(frame) == {
                    "type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": prompt_id}}:
                break
    finally:
        ws.close()
    requests.post(comfy_server.url + "/interrupt", json={"prompt_id": prompt_id}, timeout=5)
    time.sleep(0.3)  # an interruptible node would have ended by now
    assert comfy_server.stats()["queue"]["running"] == [prompt_id]
    comfy_server.release()
    entry = comfy_server.finished_entry(prompt_id)
    error = _message(entry, "execution_error")
    assert _message(entry, "execution_interrupted") is None
    assert (error["node_id"], error["exception_type"]) == ("3", "ConnectionResetError")
    captured = next(e for e in ALL_CAPTURED if e["scenario"] == "stub_hang")
    assert error["exception_message"] == captured["exception_message"]
    kind = explain_failure(error["node_type"], error["exception_type"], error["exception_message"])[2]["kind"]
    assert kind == "timeout"


def test_an_api_node_that_gave_up_returns_the_placeholder(comfy_server):
    comfy_server.config(bizyair_placeholder=True)
    entry = _run(comfy_server, _workflow("nanobanana_txt2img_api"))
    image = entry["outputs"]["2"]["images"][0]
    data = requests.get(comfy_server.url + "/view", params=image, timeout=5).content
    assert data != PLACEHOLDER_PNG          # written anew by SaveImage, with the prompt inside
    assert b"BizyAir_NanoBanana" in data and is_placeholder(data)
    comfy_server.config(bizyair_placeholder=False)
    graph = _workflow("nanobanana_txt2img_api")
    graph["1"]["inputs"]["seed"] = 7
    real = _run(comfy_server, graph)["outputs"]["2"]["images"][0]
    assert not is_placeholder(requests.get(comfy_server.url + "/view", params=real, timeout=5).content)


# ---- server mode, end to end ------------------------------------------------------------------

def test_server_mode_runs_with_the_key_in_the_magic_node_and_fails_without(comfy_server):
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=["sk-plugin0001"])
    graph = _workflow("sdxl_ksampler_txt2img_api")

    missing = _message(_run(comfy_server, graph), "execution_error")
    assert (missing["node_id"], missing["exception_type"], missing["exception_message"]) == \
        ("3", "KeyError", "'api_key'\n")
    assert explain_failure(missing["node_type"], missing["exception_type"], missing["exception_message"])[2]["kind"] \
        == "server_mode_no_key"

    wrong = dict(graph)
    apply_server_mode_key(wrong, "sk-wrong00001", prompt_id="p1")
    error = _message(_run(comfy_server, wrong), "execution_error")
    assert error["exception_type"].endswith("BizyAirAuthError")
    assert "sk-wrong00001" in json.dumps(error["current_inputs"])   # the container repeats the prompt...
    en, zh, detail = explain_failure(error["node_type"], error["exception_type"], error["exception_message"],
                                     secrets=bizyair.secrets("sk-wrong00001"))
    assert "sk-wrong00001" not in en + zh + json.dumps(detail)      # ...we never do

    good = dict(graph)
    apply_server_mode_key(good, "sk-plugin0001", prompt_id="p2")
    assert _run(comfy_server, good)["status"]["status_str"] == "success"


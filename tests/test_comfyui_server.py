"""The simulated ComfyUI server (tests/servers/comfyui_server.py) behaves like the captured ComfyUI 0.8.0.

Every wf_*.json capture is replayed in its original order (so cache hits line up) with a plain
websocket-client + requests client, and the frame sequence, history shape and /view answers are
compared with the recording. invalid_prompts.json and http_surface.json are replayed the same way.
The rest pins protocol details from comfyui-protocol.md and each test fault.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
import websocket

CAPTURES = Path(__file__).parent / "fixtures" / "captures"
WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows"
WF_CAPTURES = sorted(p.stem for p in CAPTURES.glob("wf_*.json"))
INVALID = json.loads((CAPTURES / "invalid_prompts.json").read_text())
SURFACE = json.loads((CAPTURES / "http_surface.json").read_text())


def load_capture(name: str) -> dict:
    return json.loads((CAPTURES / f"{name}.json").read_text())


def captured_history(capture: dict) -> dict:
    return next(iter(capture["history"]["json"].values()))


def workflow(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def png(width=8, height=8, rgba=(10, 20, 30, 255)) -> bytes:
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = (b"\x00" + bytes(rgba) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def png_text_chunks(data: bytes) -> dict[str, str]:
    return {body.partition(b"\x00")[0].decode(): body.partition(b"\x00")[2].decode("latin-1")
            for tag, body in png_chunks(data) if tag == b"tEXt"}


def first_pixel(data: bytes) -> bytes:
    idat = b"".join(body for tag, body in png_chunks(data) if tag == b"IDAT")
    return zlib.decompress(idat)[1:4]


# ---- a plain client ------------------------------------------------------------------------

class Ws:
    """A websocket-client connection that keeps every frame it reads."""

    def __init__(self, server, client_id: str | None = None, feature_flags: bool = False, headers=None):
        url = server.ws_url + (f"?clientId={client_id}" if client_id else "")
        self.conn = websocket.create_connection(url, timeout=10, header=headers or {})
        self.frames: list[dict] = []
        if feature_flags:
            self.conn.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))

    def recv(self, timeout: float = 10.0) -> dict:
        self.conn.settimeout(timeout)
        raw = self.conn.recv()
        if isinstance(raw, bytes):
            frame = {"type": "binary", "event": struct.unpack(">I", raw[:4])[0], "bytes": raw}
        else:
            frame = json.loads(raw)
        self.frames.append(frame)
        return frame

    def until(self, predicate, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        start = len(self.frames)
        while True:
            frame = self.recv(max(0.05, deadline - time.monotonic()))
            if predicate(frame):
                return self.frames[start:]

    def until_done(self, prompt_id: str, timeout: float = 15.0) -> list[dict]:
        return self.until(lambda f: f["type"] == "executing" and f["data"].get("node") is None
                          and f["data"].get("prompt_id") == prompt_id, timeout)

    def silent_for(self, seconds: float) -> bool:
        try:
            self.recv(seconds)
        except websocket.WebSocketTimeoutException:
            return True
        return False

    def assert_dropped(self, timeout: float = 5.0) -> None:
        """Frames already in flight may still arrive; then the connection must end."""
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            for _ in range(100):
                self.recv(timeout)

    def close(self):
        self.conn.close()


def post_prompt(server, graph, client_id=None, expect=200, **fields):
    body = {"prompt": graph, **fields}
    if client_id is not None:
        body["client_id"] = client_id
    resp = requests.post(server.url + "/prompt", json=body, timeout=10)
    assert resp.status_code == expect, resp.text
    return resp.json()


def history(server, prompt_id: str) -> dict:
    return requests.get(f"{server.url}/history/{prompt_id}", timeout=10).json()


def wait_history(server, prompt_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = history(server, prompt_id).get(prompt_id)
        if entry:
            return entry
        time.sleep(0.02)
    raise AssertionError(f"no history for {prompt_id}")


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def types(frames: list[dict]) -> list[str]:
    return [f"binary:{f['event']}" if f["type"] == "binary" else f["type"] for f in frames]


def upload(server, name: str, data: bytes, **fields):
    return requests.post(server.url + "/upload/image", files={"image": (name, data)}, data=fields, timeout=10)


def slow_blur_graph(blurs: int = 3, color: int = 1) -> dict:
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}}}
    for n in range(2, blurs + 2):
        graph[str(n)] = {"class_type": "ImageBlur",
                         "inputs": {"image": [str(n - 1), 0], "blur_radius": 3, "sigma": 1.0}}
    graph[str(blurs + 2)] = {"class_type": "SaveImage",
                             "inputs": {"images": [str(blurs + 1), 0], "filename_prefix": "t/blur"}}
    return graph


def ws_images_graph(batch: int, color: int = 1) -> dict:
    return {"1": {"class_type": "EmptyImage",
                  "inputs": {"width": 16, "height": 16, "batch_size": batch, "color": color}},
            "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}}


def save_graph(color: int = 1, prefix: str = "t/img", size: int = 32) -> dict:
    return {"1": {"class_type": "EmptyImage",
                  "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}


# ---- replay of the wf_*.json captures --------------------------------------------------------

@pytest.fixture(scope="module")
def replay(comfy_server_session):
    """Run every captured workflow in capture order on one clean server; keep what the client saw."""
    server = comfy_server_session
    server.reset()
    server.config(blur_seconds=0.05)
    assert upload(server, "probe_upload.png", png(32, 32)).status_code == 200
    captures = {name: load_capture(name) for name in WF_CAPTURES}
    results = {}
    for name in sorted(captures, key=lambda n: captured_history(captures[n])["prompt"][0]):
        capture = captures[name]
        graph = captured_history(capture)["prompt"][2]
        ws = Ws(server, capture["client_id"])
        ws.recv()
        prompt_id = post_prompt(server, graph, capture["client_id"])["prompt_id"]
        frames = [ws.frames[0]] + ws.until_done(prompt_id)
        ws.close()
        entry = history(server, prompt_id)[prompt_id]
        views = []
        for view in capture["views"]:
            index = sum(1 for v in views if (v["node"], v["key"]) == (view["node"], view["key"]))
            params = entry["outputs"][view["node"]][view["key"]][index]
            resp = requests.get(server.url + "/view", params=params, timeout=10)
            views.append({"node": view["node"], "key": view["key"], "status": resp.status_code,
                          "content_type": resp.headers.get("Content-Type"), "body": resp.content, "params": params})
        results[name] = {"frames": frames, "history": entry, "views": views, "prompt_id": prompt_id}
    server.reset()
    return results


@pytest.mark.parametrize("name", WF_CAPTURES)
def test_replayed_frame_sequence_matches_capture(replay, name):
    capture = load_capture(name)
    expected = [f"binary:{f['event']}" if f["kind"] == "binary" else f["type"] for f in capture["ws"]]
    assert types(replay[name]["frames"]) == expected


@pytest.mark.parametrize("name", WF_CAPTURES)
def test_replayed_cache_and_executed_nodes_match_capture(replay, name):
    capture = load_capture(name)

    def summary(frames):
        cached = [f["data"]["nodes"] for f in frames if f.get("type") == "execution_cached"]
        executed = {f["data"]["node"]: sorted(f["data"]["output"]) for f in frames if f.get("type") == "executed"}
        executing = sorted(f["data"]["node"] for f in frames if f.get("type") == "executing" and f["data"]["node"])
        return [sorted(c) for c in cached], executed, executing
    assert summary(replay[name]["frames"]) == summary(capture["ws"])


@pytest.mark.parametrize("name", WF_CAPTURES)
def test_replayed_history_has_the_captured_shape(replay, name):
    want, got = captured_history(load_capture(name)), replay[name]["history"]
    assert list(got) == list(want)
    assert len(got["prompt"]) == 5 and got["prompt"][2] == want["prompt"][2]
    assert sorted(got["prompt"][4]) == sorted(want["prompt"][4])
    assert list(got["prompt"][3]) == list(want["prompt"][3])
    assert {k: v for k, v in got["status"].items() if k != "messages"} == \
        {k: v for k, v in want["status"].items() if k != "messages"}
    assert [m[0] for m in got["status"]["messages"]] == [m[0] for m in want["status"]["messages"]]
    assert sorted(got["meta"]) == sorted(want["meta"])
    assert sorted(got["outputs"]) == sorted(want["outputs"])
    for node, output in want["outputs"].items():
        assert sorted(got["outputs"][node]) == sorted(output)
        for key, items in output.items():
            assert len(got["outputs"][node][key]) == len(items)
            for mine, theirs in zip(got["outputs"][node][key], items, strict=True):
                if isinstance(theirs, dict):
                    assert {k: v for k, v in mine.items() if k != "filename"} == \
                        {k: v for k, v in theirs.items() if k != "filename"}
                    stem = re.sub(r"_\d{5}_\.", "_#_.", theirs["filename"])
                    if theirs["type"] == "temp":
                        stem = re.sub(r"_temp_[a-z]{5}_", "_temp_?_", stem)
                        assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_\d{5}_\.\w+", mine["filename"])
                    numbered = re.sub(r"_\d{5}_\.", "_#_.", mine["filename"])
                    assert re.sub(r"_temp_[a-z]{5}_", "_temp_?_", numbered) == stem
                else:
                    assert mine == theirs  # animated flags, text


@pytest.mark.parametrize("name", [n for n in WF_CAPTURES if load_capture(n)["views"]])
def test_replayed_view_answers_match_capture(replay, name):
    capture = load_capture(name)
    for mine, theirs in zip(replay[name]["views"], capture["views"], strict=True):   # one per captured view
        assert mine["status"] == theirs["status"] == 200
        assert mine["content_type"] == theirs["headers"]["Content-Type"]
        assert mine["body"][:4].hex() == theirs["magic"][:8]


@pytest.mark.parametrize("name", ["wf_runtime_error_audio_split", "wf_runtime_error_after_partial_output"])
def test_replayed_execution_error_payload_matches_capture(replay, name):
    want = next(f["data"] for f in load_capture(name)["ws"] if f["type"] == "execution_error")
    got = next(f["data"] for f in replay[name]["frames"] if f["type"] == "execution_error")
    assert list(got) == list(want)
    same = ("node_id", "node_type", "exception_message", "exception_type", "traceback", "current_inputs")
    assert {k: got[k] for k in same} == {k: want[k] for k in same}
    assert sorted(got["executed"]) == sorted(want["executed"])
    assert sorted(got["current_outputs"]) == sorted(want["current_outputs"])
    assert got["prompt_id"] == replay[name]["prompt_id"]


def test_replayed_png_carries_its_own_prompt_graph(replay):
    view = replay["wf_empty_save_1024"]["views"][0]
    assert json.loads(png_text_chunks(view["body"])["prompt"]) == replay["wf_empty_save_1024"]["history"]["prompt"][2]


# ---- invalid prompts (invalid_prompts.json) -------------------------------------------------

@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_prompt_answers_like_capture(comfy_server, case):
    want = INVALID[case]
    if case == "malformed_json_body":
        resp = requests.post(comfy_server.url + "/prompt", data=b"{not json", timeout=10)
    else:
        resp = requests.post(comfy_server.url + "/prompt", json=want["request"], timeout=10)
    assert resp.status_code == want["status"]
    if isinstance(want["response"], str):
        assert resp.text == want["response"]
        assert resp.headers["Content-Type"].startswith("text/plain")
    elif case == "partially_valid_two_outputs":
        assert resp.json()["node_errors"] == want["response"]["node_errors"]
    else:
        assert resp.json() == want["response"]


def test_partially_valid_prompt_runs_only_the_valid_output(comfy_server):
    answer = post_prompt(comfy_server, INVALID["partially_valid_two_outputs"]["request"]["prompt"])
    entry = wait_history(comfy_server, answer["prompt_id"])
    assert entry["prompt"][4] == ["2"] and entry["status"]["status_str"] == "success"
    assert list(entry["outputs"]) == ["2"]


def test_number_counts_rejected_posts_and_front_negates_it(comfy_server):
    comfy_server.config(paused_queue=True)
    first = post_prompt(comfy_server, save_graph(1))["number"]
    post_prompt(comfy_server, {}, expect=400)
    second = post_prompt(comfy_server, save_graph(2))["number"]
    third = post_prompt(comfy_server, save_graph(3), front=True)
    assert (first, second, third["number"]) == (0, 2, -3)
    pending = requests.get(comfy_server.url + "/queue", timeout=10).json()["queue_pending"]
    assert [item[0] for item in pending] == [-3, 0, 2]
    assert requests.get(comfy_server.url + "/prompt", timeout=10).json() == {"exec_info": {"queue_remaining": 3}}


def test_loadimage_accepts_an_uploaded_file_and_its_subfolder_path(comfy_server):
    assert upload(comfy_server, "up_b.png", png(), subfolder="plugin/sub").json()["subfolder"] == "plugin/sub"
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "plugin/sub/up_b.png"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t/load"}}}
    post_prompt(comfy_server, graph)
    graph["1"]["inputs"]["image"] = "up_b.png"
    rejected = post_prompt(comfy_server, graph, expect=400)
    assert rejected["node_errors"]["1"]["errors"][0]["type"] == "custom_validation_failed"


@pytest.mark.parametrize("path", sorted((WORKFLOWS / "bizyair").glob("*.json")), ids=lambda p: p.stem)
def test_bizyair_api_workflows_validate(comfy_server, path):
    answer = post_prompt(comfy_server, json.loads(path.read_text()))
    assert answer["node_errors"] == {}


def test_bizyair_classes_disappear_when_not_installed(comfy_server):
    assert "BizyAir_KSampler" in requests.get(comfy_server.url + "/object_info", timeout=10).json()
    comfy_server.config(bizyair_installed=False)
    assert requests.get(comfy_server.url + "/object_info/BizyAir_KSampler", timeout=10).json() == {}
    graph = json.loads((WORKFLOWS / "bizyair" / "sdxl_ksampler_txt2img_api.json").read_text())
    assert post_prompt(comfy_server, graph, expect=400)["error"]["type"] == "invalid_prompt"


# ---- HTTP surface (http_surface.json) -------------------------------------------------------

SURFACE_GETS = [k for k in SURFACE if k.startswith("GET ") and "jobs" not in k]  # the jobs API is not simulated


@pytest.mark.parametrize("key", SURFACE_GETS)
def test_get_endpoint_answers_like_capture(comfy_server, key):
    want = SURFACE[key]
    if "history?" in key:
        post_prompt(comfy_server, save_graph())
        comfy_server.wait_idle()
    resp = requests.get(comfy_server.url + want["path"], timeout=10)
    assert resp.status_code == want["status"]
    assert resp.headers.get("Content-Type") == want["content_type"]
    if key.endswith("/system_stats"):
        assert resp.json().keys() == want["json"].keys()
        assert resp.json()["system"].keys() == want["json"]["system"].keys()
    elif "history?" in key:
        (entry,) = resp.json().values()
        assert entry.keys() == next(iter(want["json"].values())).keys()
    elif key.endswith("/extensions"):
        assert isinstance(resp.json(), list)
    elif want["json"] is not None:
        assert resp.json() == want["json"]


def test_every_route_answers_the_same_under_api(comfy_server):
    for path in ("/system_stats", "/prompt", "/queue", "/history", "/history/x", "/object_info/EmptyImage",
                 "/features", "/embeddings", "/models", "/view?filename=example.png&type=input"):
        plain = requests.get(comfy_server.url + path, timeout=10)
        api = requests.get(comfy_server.url + "/api" + path, timeout=10)
        assert (plain.status_code, plain.headers["Content-Type"], plain.content) == \
            (api.status_code, api.headers["Content-Type"], api.content), path
    for path in ("/interrupt", "/queue", "/history"):
        assert requests.post(comfy_server.url + "/api" + path, json={}, timeout=10).status_code == 200
    answer = requests.post(comfy_server.url + "/api/prompt", json={"prompt": save_graph()}, timeout=10)
    assert answer.status_code == 200
    ws = websocket.create_connection(comfy_server.url.replace("http", "ws") + "/api/ws?clientId=api", timeout=5)
    assert json.loads(ws.recv())["data"]["sid"] == "api"
    ws.close()


def test_full_object_info_is_the_captured_one_plus_bizyair(comfy_server):
    info = requests.get(comfy_server.url + "/object_info", timeout=30).json()
    captured = json.loads((CAPTURES / "object_info.json").read_text())
    bizyair = json.loads((CAPTURES / "object_info_bizyair.json").read_text())["classes"]
    assert set(info) == set(captured) | set(bizyair)
    assert info["SaveImage"] == captured["SaveImage"]
    assert comfy_server.stats()["requests"]["GET /object_info"] == 1


def test_upload_renames_dedupes_and_overwrites_like_capture(comfy_server):
    want = {k: (v["status"], v.get("json")) for k, v in SURFACE["upload"].items()}
    got = {
        "basic": upload(comfy_server, "up_a.png", b"A" * 50),
        "same_name_same_bytes": upload(comfy_server, "up_a.png", b"A" * 50),
        "same_name_other_bytes": upload(comfy_server, "up_a.png", b"B" * 50),
        "overwrite_true": upload(comfy_server, "up_a.png", b"C" * 50, overwrite="true"),
        "subfolder": upload(comfy_server, "up_b.png", png(), subfolder="plugin/sub"),
        "type_temp": upload(comfy_server, "up_c.png", png(), type="temp"),
        "type_output": upload(comfy_server, "up_d.png", png(), type="output"),
        "jpeg": upload(comfy_server, "up_e.jpg", b"\xff\xd8\xff fake jpg"),
        "no_image_field": requests.post(comfy_server.url + "/upload/image", files={"other": ("a.png", b"x")},
                                        timeout=10),
        "image_as_text_field": requests.post(comfy_server.url + "/upload/image", files={"image": (None, "text")},
                                             timeout=10),
        "subfolder_traversal": upload(comfy_server, "up_x.png", png(), subfolder="../../etc"),
        "bogus_type": upload(comfy_server, "up_y.png", png(), type="bogus"),
        "api_prefix": requests.post(comfy_server.url + "/api/upload/image", files={"image": ("up_f.png", png())},
                                    timeout=10),
        "urlencoded_not_multipart": requests.post(comfy_server.url + "/upload/image", data={"image": "x"}, timeout=10),
    }
    for case, resp in got.items():
        status, body = want[case]
        assert resp.status_code == status, case
        if body is not None:
            assert resp.json() == body, case
    with open_file(comfy_server, "up_a.png", "input") as data:
        assert data == b"C" * 50


class open_file:
    def __init__(self, server, name, kind, subfolder=""):
        self.resp = requests.get(server.url + "/view", params={"filename": name, "type": kind, "subfolder": subfolder},
                                 timeout=10)

    def __enter__(self):
        assert self.resp.status_code == 200
        return self.resp.content

    def __exit__(self, *exc):
        return False


def test_loadimage_combo_lists_uploaded_inputs(comfy_server):
    upload(comfy_server, "listed.png", png())
    info = requests.get(comfy_server.url + "/object_info/LoadImage", timeout=10).json()
    assert info["LoadImage"]["input"]["required"]["image"] == [["example.png", "listed.png"], {"image_upload": True}]


def test_upload_over_the_limit_is_413(comfy_server):
    comfy_server.config(max_upload_size=1000)
    resp = upload(comfy_server, "big.png", b"x" * 5000)
    assert (resp.status_code, resp.text) == (413, "Maximum request body size 1000 exceeded.")


def test_view_answers_like_capture(comfy_server):
    upload(comfy_server, "alpha.png", png(8, 8, (1, 2, 3, 128)))
    upload(comfy_server, "up_b.png", png(), subfolder="plugin/sub")
    upload(comfy_server, "up_c.png", png(), type="temp")
    for case, want in SURFACE["view"].items():
        if case.endswith("_output"):
            continue  # files of the replayed workflows; covered by the replay tests
        resp = requests.get(comfy_server.url + "/view", params=want["params"], timeout=10)
        assert resp.status_code == want["status"], case
        assert resp.headers.get("Content-Type") == want["headers"].get("Content-Type"), case
        assert resp.headers.get("Content-Disposition") == want["headers"].get("Content-Disposition"), case
        assert resp.content[:4].hex() == want["magic"][:8], case


def test_view_supports_range_and_head(comfy_server):
    url = comfy_server.url + "/view"
    params = {"filename": "example.png", "type": "input"}
    full = requests.get(url, params=params, timeout=10)
    part = requests.get(url, params=params, headers={"Range": "bytes=0-7"}, timeout=10)
    head = requests.head(url, params=params, timeout=10)
    assert (part.status_code, part.content) == (206, full.content[:8])
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(full.content))
    assert {"Etag", "Last-Modified", "Accept-Ranges"} <= set(full.headers)


def test_unknown_history_and_class_are_empty_objects_and_interrupt_is_empty(comfy_server):
    assert requests.get(comfy_server.url + "/history/nope", timeout=10).json() == {}
    assert requests.get(comfy_server.url + "/object_info/NoSuchNode", timeout=10).json() == {}
    resp = requests.post(comfy_server.url + "/interrupt", timeout=10)
    assert (resp.status_code, resp.content, resp.headers.get("Content-Type")) == (200, b"", None)


# ---- Origin, auth ----------------------------------------------------------------------------

@pytest.mark.parametrize("origin,status", [("http://example.com", 403), ("http://localhost:{port}", 403),
                                           ("http://127.0.0.1:{port}", 200), ("null", 200), (None, 200)])
def test_origin_must_match_host(comfy_server, origin, status):
    headers = {"Origin": origin.format(port=comfy_server.port)} if origin else {}
    assert requests.get(comfy_server.url + "/system_stats", headers=headers, timeout=10).status_code == status


def test_websocket_handshake_checks_origin(comfy_server):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(comfy_server.ws_url, timeout=5, origin="http://example.com")
    assert info.value.status_code == 403
    ws = websocket.create_connection(comfy_server.ws_url.replace("127.0.0.1", "localhost"), timeout=5)
    assert json.loads(ws.recv())["type"] == "status"
    ws.close()


def test_token_guards_every_route_and_the_websocket(comfy_server_factory):
    server = comfy_server_factory(token="T0ken")
    assert requests.get(server.url + "/system_stats", timeout=10).status_code == 401
    wrong = requests.get(server.url + "/system_stats", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert requests.get(server.url + "/api/queue", headers=server.auth_headers(), timeout=10).status_code == 200
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(server.ws_url, timeout=5)
    assert info.value.status_code == 401
    ws = websocket.create_connection(server.ws_url, timeout=5, header=server.auth_headers())
    assert json.loads(ws.recv())["type"] == "status"
    ws.close()
    assert server.stats()["requests"]["GET /system_stats"] == 2


def test_required_header_guards_routes(comfy_server_factory):
    server = comfy_server_factory(require_header="X-Api-Key: k1")
    assert requests.get(server.url + "/queue", timeout=10).status_code == 401
    assert requests.get(server.url + "/queue", headers={"X-Api-Key": "k1"}, timeout=10).status_code == 200


# ---- websocket protocol ----------------------------------------------------------------------

def test_cached_rerun_resends_old_output_without_executing(comfy_server):
    ws = Ws(comfy_server, "cache")
    ws.recv()
    graph = save_graph(7)
    first = post_prompt(comfy_server, graph, "cache")["prompt_id"]
    ws.until_done(first)
    files_before = comfy_server.files()["output"]
    second = post_prompt(comfy_server, graph, "cache")["prompt_id"]
    frames = ws.until_done(second)
    ws.close()
    assert types(frames) == ["status", "status", "execution_start", "execution_cached", "executed",
                             "progress_state", "execution_success", "status", "executing"]
    assert frames[3]["data"]["nodes"] == ["1", "2"]
    assert history(comfy_server, second)[second]["outputs"] == history(comfy_server, first)[first]["outputs"]
    assert comfy_server.files()["output"] == files_before


def test_reused_prompt_id_overwrites_its_history(comfy_server):
    post_prompt(comfy_server, save_graph(1), prompt_id="mine")
    assert wait_history(comfy_server, "mine")["prompt"][2]["1"]["inputs"]["color"] == 1
    post_prompt(comfy_server, save_graph(2), prompt_id="mine")
    comfy_server.wait_idle()
    entry = history(comfy_server, "mine")["mine"]
    assert entry["prompt"][2]["1"]["inputs"]["color"] == 2
    assert list(requests.get(comfy_server.url + "/history", timeout=10).json()) == ["mine"]


def test_prompt_without_client_id_broadcasts_only_progress(comfy_server):
    observer = Ws(comfy_server, "observer")
    observer.recv()
    prompt_id = post_prompt(comfy_server, ws_images_graph(2))["prompt_id"]
    entry = wait_history(comfy_server, prompt_id)
    frames = observer.until(
        lambda f: f["type"] == "status" and f["data"]["status"]["exec_info"]["queue_remaining"] == 0)
    observer.close()
    assert set(types(frames)) == {"status", "progress_state", "progress", "binary:1"}
    assert entry["prompt"][3].keys() == {"create_time"}


def test_targeted_events_reach_only_their_client(comfy_server):
    a, b = Ws(comfy_server, "A"), Ws(comfy_server, "B")
    a.recv(), b.recv()
    prompt_id = post_prompt(comfy_server, save_graph(3), "A")["prompt_id"]
    a.until_done(prompt_id)
    frames_b = b.until(lambda f: f["type"] == "status" and f["data"]["status"]["exec_info"]["queue_remaining"] == 0)
    a.close(), b.close()
    assert set(types(frames_b)) == {"status"}


def test_feature_flags_switch_previews_to_type_4(comfy_server):
    ws = Ws(comfy_server, "ff", feature_flags=True)
    ws.recv()
    flags = ws.recv()
    assert flags == {"type": "feature_flags", "data": {"supports_preview_metadata": True, "max_upload_size": 104857600,
                                                       "extension": {"manager": {"supports_v4": True}}}}
    prompt_id = post_prompt(comfy_server, ws_images_graph(3), "ff")["prompt_id"]
    frames = ws.until_done(prompt_id)
    ws.close()
    binaries = [f["bytes"] for f in frames if f["type"] == "binary"]
    assert len(binaries) == 3
    event, length = struct.unpack(">II", binaries[0][:8])
    meta = json.loads(binaries[0][8:8 + length])
    assert event == 4 and meta == {"node_id": "2", "prompt_id": prompt_id, "display_node_id": "2",
                                   "parent_node_id": None, "real_node_id": "2", "image_type": "image/png"}
    assert binaries[0][8 + length:].startswith(b"\x89PNG")
    progress = [f["data"]["value"] for f in frames if f["type"] == "progress"]
    assert progress == [0, 1, 2]  # never reaches max
    assert types(frames).index("binary:4") < types(frames).index("progress")


def test_reconnect_with_the_running_client_id_gets_executing_without_prompt_id(comfy_server):
    comfy_server.config(blur_seconds=0.5)
    old = Ws(comfy_server, "re")
    old.recv()
    prompt_id = post_prompt(comfy_server, slow_blur_graph(2), "re")["prompt_id"]
    old.until(lambda f: f["type"] == "executing" and f["data"]["node"] == "2")
    old.close()
    new = Ws(comfy_server, "re")
    assert new.recv()["data"]["sid"] == "re"
    resent = new.recv()
    assert resent["type"] == "executing" and resent["data"] in ({"node": "2"}, {"node": "3"})
    assert new.until_done(prompt_id)[-1]["data"] == {"node": None, "prompt_id": prompt_id}
    new.close()


def test_closing_the_old_socket_after_reconnecting_makes_the_new_one_deaf(comfy_server):
    old = Ws(comfy_server, "dup")
    old.recv()
    new = Ws(comfy_server, "dup")
    new.recv()
    old.close()
    wait_for(lambda: comfy_server.stats()["open_ws_by_client"] == {"dup": 1})
    post_prompt(comfy_server, save_graph(4), "dup")
    comfy_server.wait_idle()
    assert new.silent_for(0.5)
    assert comfy_server.stats()["registered_ws"] == []
    new.close()


# ---- interrupts and the queue ---------------------------------------------------------------

def test_interrupt_lands_at_the_next_node_boundary(comfy_server):
    comfy_server.config(blur_seconds=0.4)
    ws = Ws(comfy_server, "intr")
    ws.recv()
    prompt_id = post_prompt(comfy_server, slow_blur_graph(3), "intr")["prompt_id"]
    ws.until(lambda f: f["type"] == "executing" and f["data"]["node"] == "2")
    requests.post(comfy_server.url + "/interrupt", json={"prompt_id": "someone-else"}, timeout=10)
    requests.post(comfy_server.url + "/interrupt", json={"prompt_id": prompt_id}, timeout=10)
    frames = ws.until_done(prompt_id)
    ws.close()
    assert types(frames)[-6:] == ["progress_state", "progress_state", "executing", "execution_interrupted", "status",
                                  "executing"]
    data = next(f["data"] for f in frames if f["type"] == "execution_interrupted")
    assert (data["node_id"], data["node_type"], sorted(data["executed"])) == ("3", "ImageBlur", ["1", "2"])
    status = history(comfy_server, prompt_id)[prompt_id]["status"]
    assert (status["status_str"], status["completed"], status["messages"][-1][0]) == \
        ("error", False, "execution_interrupted")
    assert [i["applied"] for i in comfy_server.stats()["interrupts"]] == [False, True]


def test_interrupt_lands_inside_a_progress_node(comfy_server):
    comfy_server.config(ws_image_seconds=0.05)
    ws = Ws(comfy_server, "mid")
    ws.recv()
    prompt_id = post_prompt(comfy_server, ws_images_graph(200), "mid")["prompt_id"]
    ws.until(lambda f: f["type"] == "progress" and f["data"]["value"] == 2)
    requests.post(comfy_server.url + "/interrupt", timeout=10)
    frames = ws.until_done(prompt_id)
    ws.close()
    data = next(f["data"] for f in frames if f["type"] == "execution_interrupted")
    assert (data["node_id"], data["executed"]) == ("2", ["1"])
    assert max(f["data"]["value"] for f in ws.frames if f["type"] == "progress") < 50


def test_an_accelerated_clock_runs_simulated_time_faster(comfy_server):
    comfy_server.config(ws_image_seconds=10.0, clock_scale=50.0)   # 20 steps of 10 s: 200 simulated s
    ws = Ws(comfy_server, "fast")
    ws.recv()
    started = time.monotonic()
    prompt_id = post_prompt(comfy_server, ws_images_graph(20), "fast")["prompt_id"]
    ws.until_done(prompt_id)
    ws.close()
    assert 3.5 < time.monotonic() - started < 15          # 200 s / 50 = 4 real seconds


def test_interrupt_without_client_id_is_broadcast(comfy_server):
    comfy_server.config(blur_seconds=0.3)
    observer = Ws(comfy_server, "obs")
    observer.recv()
    prompt_id = post_prompt(comfy_server, slow_blur_graph(2))["prompt_id"]
    observer.until(lambda f: f["type"] == "progress_state" and "2" in f["data"]["nodes"])
    requests.post(comfy_server.url + "/interrupt", timeout=10)
    frames = observer.until(lambda f: f["type"] == "execution_interrupted")
    observer.close()
    assert frames[-1]["data"]["prompt_id"] == prompt_id
    assert "executing" not in types(observer.frames)


def test_queue_delete_removes_a_pending_prompt_without_history(comfy_server):
    comfy_server.config(paused_queue=True)
    keep = post_prompt(comfy_server, save_graph(1))["prompt_id"]
    drop = post_prompt(comfy_server, save_graph(2))["prompt_id"]
    assert requests.post(comfy_server.url + "/queue", json={"delete": [drop]}, timeout=10).content == b""
    assert comfy_server.stats()["queue"]["pending"] == [keep]
    comfy_server.config(paused_queue=False)
    comfy_server.wait_idle()
    assert history(comfy_server, drop) == {} and keep in history(comfy_server, keep)
    assert comfy_server.stats()["deletes"] == [{"delete": [drop], "removed": [drop]}]


def test_pending_and_running_ids_have_empty_history(comfy_server):
    comfy_server.config(hang_class="SaveImage")
    running = post_prompt(comfy_server, save_graph(1))["prompt_id"]
    pending = post_prompt(comfy_server, save_graph(2))["prompt_id"]
    wait_for(lambda: comfy_server.stats()["queue"]["running"] == [running])
    assert history(comfy_server, running) == {} and history(comfy_server, pending) == {}
    queue = requests.get(comfy_server.url + "/queue", timeout=10).json()
    assert [i[1] for i in queue["queue_running"]] == [running] and [i[1] for i in queue["queue_pending"]] == [pending]
    comfy_server.config(hang_class=None)
    comfy_server.release()
    comfy_server.wait_idle()
    assert running in history(comfy_server, running)


# ---- faults -----------------------------------------------------------------------------------

def test_fault_ws_silent_accepts_but_never_sends(comfy_server):
    comfy_server.config(ws_silent=True)
    ws = Ws(comfy_server, "silent")
    post_prompt(comfy_server, save_graph(), "silent")
    comfy_server.wait_idle()
    assert ws.silent_for(0.3)
    assert comfy_server.stats()["open_ws"] == 1
    ws.close()


def test_fault_ws_drop_after_n_frames(comfy_server):
    comfy_server.config(ws_drop_after=3)
    ws = Ws(comfy_server, "drop")
    ws.recv()
    post_prompt(comfy_server, save_graph(), "drop")
    ws.recv(), ws.recv()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.recv(5)  # exactly three frames were sent


def test_fault_history_status_and_html(comfy_server):
    prompt_id = post_prompt(comfy_server, save_graph())["prompt_id"]
    wait_history(comfy_server, prompt_id)
    comfy_server.config(history_status=500)
    resp = requests.get(f"{comfy_server.url}/history/{prompt_id}", timeout=10)
    assert (resp.status_code, resp.text) == (500, "500 Internal Server Error\n\nServer got itself in trouble")
    comfy_server.config(history_status=None, history_html=True)
    resp = requests.get(f"{comfy_server.url}/api/history/{prompt_id}", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        resp.json()
    assert requests.get(comfy_server.url + "/history", timeout=10).status_code == 200


def test_fault_non_json_and_route_status_on_chosen_routes(comfy_server):
    comfy_server.config(non_json=["GET /queue"], route_status={"POST /prompt": 502})
    assert requests.get(comfy_server.url + "/api/queue", timeout=10).headers["Content-Type"].startswith("text/html")
    resp = requests.post(comfy_server.url + "/prompt", json={"prompt": save_graph()}, timeout=10)
    assert resp.status_code == 502 and "Bad Gateway" in resp.text
    assert requests.get(comfy_server.url + "/system_stats", timeout=10).json()["system"]["comfyui_version"] == "0.8.0"


def test_fault_html_everywhere(comfy_server):
    comfy_server.config(html_everywhere=True)
    for path in ("/system_stats", "/api/object_info/SaveImage", "/view?filename=x.png", "/ws"):
        resp = requests.get(comfy_server.url + path, timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html"), path
    assert requests.post(comfy_server.url + "/prompt", json={"prompt": save_graph()}, timeout=10).status_code == 200


def test_fault_view_status_and_truncate(comfy_server):
    params = {"filename": "example.png", "type": "input"}
    comfy_server.config(view_status=404)
    assert requests.get(comfy_server.url + "/view", params=params, timeout=10).status_code == 404
    comfy_server.config(view_status=None, view_truncate=True)
    resp = requests.get(comfy_server.url + "/view", params=params, stream=True, timeout=10)
    assert resp.status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        resp.content  # noqa: B018 - reading the body is the assertion


def test_fault_node_delay_and_image_bytes(comfy_server):
    comfy_server.config(node_delay={"EmptyImage": 0.5}, image_bytes=3_000_000)
    prompt_id = post_prompt(comfy_server, save_graph(9))["prompt_id"]
    wait_for(lambda: comfy_server.stats()["queue"]["running"] == [prompt_id])
    assert history(comfy_server, prompt_id) == {}  # still inside the delayed node
    entry = wait_history(comfy_server, prompt_id)
    params = entry["outputs"]["2"]["images"][0]
    with open_file(comfy_server, params["filename"], "output", params["subfolder"]) as data:
        assert len(data) == 3_000_000
        assert json.loads(png_text_chunks(data)["prompt"]) == save_graph(9)
        assert len(zlib.compress(data[-100_000:])) > 99_000  # the padding does not compress


def test_fault_hang_class_ignores_interrupt_until_released(comfy_server):
    comfy_server.config(hang_class="ImageInvert")
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    ws = Ws(comfy_server, "hang")
    ws.recv()
    prompt_id = post_prompt(comfy_server, graph, "hang")["prompt_id"]
    ws.until(lambda f: f["type"] == "executing" and f["data"]["node"] == "2")
    requests.post(comfy_server.url + "/interrupt", timeout=10)
    assert ws.silent_for(0.4)
    comfy_server.release()
    frames = ws.until_done(prompt_id)
    ws.close()
    assert "execution_interrupted" in types(frames)  # the flag lands at the next boundary


def test_fault_paused_queue_keeps_prompts_pending(comfy_server):
    comfy_server.config(paused_queue=True)
    prompt_id = post_prompt(comfy_server, save_graph())["prompt_id"]
    time.sleep(0.2)
    assert comfy_server.stats()["queue"] == {"running": [], "pending": [prompt_id]}
    comfy_server.config(paused_queue=False)
    wait_history(comfy_server, prompt_id)


def test_fault_restart_forgets_everything_and_drops_websockets(comfy_server):
    comfy_server.config(hang_class="SaveImage")
    ws = Ws(comfy_server, "rs")
    ws.recv()
    running = post_prompt(comfy_server, save_graph(1), "rs")["prompt_id"]
    post_prompt(comfy_server, save_graph(2))
    ws.until(lambda f: f["type"] == "executing" and f["data"]["node"] == "2")
    comfy_server.restart()
    ws.assert_dropped()
    stats = comfy_server.stats()
    assert stats["queue"] == {"running": [], "pending": []} and stats["history"] == [] and stats["open_ws"] == 0
    assert history(comfy_server, running) == {}
    assert post_prompt(comfy_server, save_graph(3))["number"] == 0


def test_fault_restart_with_downtime_refuses_connections(comfy_server_fresh):
    server = comfy_server_fresh
    server._control("POST", "/_test/restart", {"down_seconds": 0.6})
    time.sleep(0.25)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url + "/system_stats", timeout=2)
    server.wait_ready(timeout=10)
    assert requests.get(server.url + "/system_stats", timeout=5).status_code == 200


def test_frozen_server_times_out_and_recovers(comfy_server_fresh):
    server = comfy_server_fresh
    server.freeze()
    try:
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(server.url + "/system_stats", timeout=0.5)
    finally:
        server.thaw()
    assert requests.get(server.url + "/system_stats", timeout=5).status_code == 200


def test_stats_count_requests_per_route_template(comfy_server):
    requests.get(comfy_server.url + "/history/a", timeout=10)
    requests.get(comfy_server.url + "/api/history/b", timeout=10)
    requests.get(comfy_server.url + "/object_info/SaveImage", timeout=10)
    stats = comfy_server.stats()
    assert stats["requests"] == {"GET /history/{id}": 2, "GET /object_info/{cls}": 1}
    assert stats["requests_raw"]["GET /api/history/{id}"] == 1


def test_unknown_config_keys_are_refused(comfy_server):
    resp = requests.post(comfy_server.url + "/_test/config", json={"no_such_fault": 1}, timeout=10)
    assert resp.status_code == 400 and "no_such_fault" in resp.json()["error"]


# ---- plugin hook --------------------------------------------------------------------------------

PLUGIN = '''
from aiohttp import web

def register(app, state):
    state.add_config_defaults({"fake_fail": False})

    def sampler(inputs, ctx):
        if ctx.config["fake_fail"]:
            ctx.fail("bizyengine.core.common.client.ServerError", "no key", ["  File \\"/opt/x.py\\", line 1\\n"])
        ctx.progress(0, 2)
        ctx.sleep(0.01)
        return None

    state.register_executor("BizyAir_KSampler", sampler)

    async def ping(request):
        return web.json_response({"pong": True})
    app.router.add_get("/bizyair/ping", ping)
'''


def test_plugins_add_routes_executors_and_config(comfy_server_factory, tmp_path):
    plugin = tmp_path / "fake_bizyair.py"
    plugin.write_text(PLUGIN)
    server = comfy_server_factory(plugins=(plugin,))
    assert requests.get(server.url + "/bizyair/ping", timeout=10).json() == {"pong": True}
    graph = json.loads((WORKFLOWS / "bizyair" / "sdxl_ksampler_txt2img_api.json").read_text())
    ws = Ws(server, "bz")
    ws.recv()
    ok = post_prompt(server, graph, "bz")["prompt_id"]
    frames = ws.until_done(ok)
    assert any(f["type"] == "progress" and f["data"]["node"] == "3" for f in frames)
    assert history(server, ok)[ok]["status"]["status_str"] == "success"
    server.config(fake_fail=True)
    graph["3"]["inputs"]["seed"] = 3
    failed = post_prompt(server, graph, "bz")["prompt_id"]
    error = next(f["data"] for f in ws.until_done(failed) if f["type"] == "execution_error")
    ws.close()
    assert (error["node_id"], error["exception_type"], error["exception_message"]) == \
        ("3", "bizyengine.core.common.client.ServerError", "no key\n")


def test_passthrough_images_differ_with_the_seed(comfy_server):
    graph = json.loads((WORKFLOWS / "bizyair" / "sdxl_ksampler_txt2img_api.json").read_text())
    comfy_server.config(bizyair_installed=True)
    colors = []
    for seed in (1, 2):
        graph["3"]["inputs"]["seed"] = seed
        entry = wait_history(comfy_server, post_prompt(comfy_server, graph)["prompt_id"])
        assert entry["status"]["status_str"] == "success"  # default BizyAir state: a key that works
        params = entry["outputs"]["9"]["images"][0]
        with open_file(comfy_server, params["filename"], "output", params["subfolder"]) as data:
            assert data.startswith(b"\x89PNG")
            colors.append(first_pixel(data))
    assert colors[0] != colors[1]


def test_two_concurrent_clients_each_get_their_own_file(comfy_server):
    results = {}

    def run(color):
        client_id = f"c{color}"
        ws = Ws(comfy_server, client_id)
        ws.recv()
        prompt_id = post_prompt(comfy_server, save_graph(color, prefix="t/conc"), client_id)["prompt_id"]
        frames = ws.until_done(prompt_id)
        ws.close()
        results[color] = next(f["data"]["output"]["images"][0] for f in frames if f["type"] == "executed")

    threads = [threading.Thread(target=run, args=(c,)) for c in (11, 12)]
    [t.start() for t in threads]
    [t.join(20) for t in threads]
    for color, params in results.items():
        with open_file(comfy_server, params["filename"], "output", params["subfolder"]) as data:
            assert json.loads(png_text_chunks(data)["prompt"])["1"]["inputs"]["color"] == color
    assert len({p["filename"] for p in results.values()}) == 2


def test_fill_history_grows_the_history_that_history_routes_serve(comfy_server):
    reply = requests.post(comfy_server.url + "/_test/fill_history", params={"n": 50}, timeout=10).json()
    assert reply["history"] >= 50
    listed = requests.get(comfy_server.url + "/history", params={"max_items": 100}, timeout=10).json()
    assert len(listed) >= 50
    some_id = next(iter(listed))
    assert requests.get(f"{comfy_server.url}/history/{some_id}", timeout=10).json()[some_id]["status"]

"""A ComfyUI that misbehaves on purpose: slow answers, bombs, hostile shapes, redirects, a death.

Each case states what the user sees. None may run past its timeout by more than the few seconds
kept for stopping the prompt and collecting outputs (those bounds are hang guards, not speed
targets), none may raise anything but our own errors, and what did finish is still delivered.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from comfyui_bridge.client import ComfyClient
from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import ServerConfig, parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import BridgeError, NotComfyUI
from comfyui_bridge.models import RunRequest
from comfyui_bridge.workflow import load_workflow

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"
SLACK = 3.0   # seconds past `timeout` a call may take (stopping the prompt, closing sockets)


def workflow(name="empty_save_1024.json"):
    return load_workflow((WORKFLOWS / name).read_bytes())


def timed_run(comfy, name="empty_save_1024.json", timeout=10, **kw):
    start = time.monotonic()
    result = Engine(parse_servers(comfy.url, **kw)).run(RunRequest(workflow=workflow(name), timeout=timeout))
    return result, time.monotonic() - start


def real_png(comfy, result):
    ref = result.outputs[0].ref
    return comfy.file_path(ref.type, ref.subfolder, ref.filename).read_bytes()


# ---- time: the whole answer within the deadline ------------------------------------------------

def test_a_history_sent_one_byte_a_second_ends_at_the_timeout_with_the_files_the_socket_saw(comfy_server):
    comfy_server.config(hostile={"GET /history/{id}": {"trickle": 1}})
    result, seconds = timed_run(comfy_server, timeout=10)
    assert seconds < 10 + SLACK
    # The websocket said the run succeeded and which file it wrote: that file is delivered.
    assert [f.node_id for f in result.outputs] == ["2"]
    assert result.outputs[0].data == real_png(comfy_server, result)


def test_a_history_whose_status_line_and_headers_trickle_ends_at_the_timeout(comfy_server):
    comfy_server.config(hostile={"GET /history/{id}": {"trickle_headers": 2}})
    result, seconds = timed_run(comfy_server, timeout=8)
    assert seconds < 8 + SLACK
    assert [f.node_id for f in result.outputs] == ["2"]


def test_a_download_trickled_at_2_kb_a_second_is_named_not_delivered_and_the_call_ends_on_time(comfy_server):
    # 2 MB at 2 KB/s would take 1000 s; the run itself is quick, so only the download can hit the limit.
    comfy_server.config(image_bytes=2_000_000, hostile={"GET /view": {"trickle": 2048, "chunk": 2048}})
    result, seconds = timed_run(comfy_server, timeout=10)
    assert seconds < 10 + SLACK
    assert result.outputs == []
    assert any("did not finish in time" in w for w in result.warnings), result.warnings


def test_a_websocket_frame_trickled_byte_by_byte_cannot_hold_the_run_past_its_timeout(comfy_server):
    comfy_server.config(ws_trickle=0.5)
    result, seconds = timed_run(comfy_server, timeout=8)
    assert seconds < 8 + SLACK
    assert [f.node_id for f in result.outputs] == ["2"]     # what finished is still delivered


def test_a_stalled_websocket_frame_gives_way_to_history_polling_and_the_run_succeeds(comfy_server):
    # One frame taking more than FRAME_LIMIT: the socket is dropped (one reconnect, which stalls
    # too), history polling finds the finished run: a success, not a timeout.
    comfy_server.config(ws_trickle=0.5)
    result, seconds = timed_run(comfy_server, timeout=60)
    assert result.ok, result.error
    assert [f.node_id for f in result.outputs] == ["2"]
    assert seconds < 2 * 10 + 5       # two stalled frames of FRAME_LIMIT (10 s), then one poll


def test_slow_node_definitions_share_one_small_budget_instead_of_adding_up(comfy_server):
    # Three custom classes the plugin does not ship, each answered after 5 s: one after another
    # that was 15 s before queueing; now they are asked together, within the lookup budget.
    graph = workflow()
    for i in range(3):
        graph[f"9{i}"] = {"class_type": f"UnknownCustomNode{i}", "inputs": {"text": "x"}}
    comfy_server.config(route_delay={"GET /object_info/{cls}": 5.0})
    start = time.monotonic()
    with pytest.raises(BridgeError):   # the server rejects the unknown classes; we only time the lookups
        Engine(parse_servers(comfy_server.url)).run(RunRequest(workflow=graph, timeout=30))
    assert time.monotonic() - start < 5.0 + SLACK


# ---- size: bombs and floods stop at the limit ----------------------------------------------------

def test_a_gzip_bomb_from_history_is_refused_at_the_size_limit_and_the_run_still_delivers(comfy_server):
    comfy_server.config(hostile={"GET /history/{id}": {"gzip_bomb": 1 << 30}})
    result, seconds = timed_run(comfy_server, timeout=20)
    assert seconds < 20 + SLACK
    assert [f.node_id for f in result.outputs] == ["2"]   # from the websocket's `executed` message


def test_json_nested_100k_deep_is_refused_as_an_unexpected_form(comfy_server):
    comfy_server.config(hostile={"GET /history/{id}": {"deep": 100_000}})
    client = ComfyClient(ServerConfig(comfy_server.url))
    with pytest.raises(BridgeError) as caught:
        client.history("some-prompt", deadline=Deadline.after(5))
    assert "unexpected form" in caught.value.message and "too deep" in caught.value.message


def test_a_100_mb_answer_is_not_read(comfy_server):
    comfy_server.config(hostile={"GET /queue": {"pad": 100_000_000}})
    client = ComfyClient(ServerConfig(comfy_server.url))
    with pytest.raises(BridgeError) as caught:
        client.queue(deadline=Deadline.after(20))
    assert caught.value.code == "too_large" and "MB" in caught.value.message


# ---- shapes: every answer parsed totally ----------------------------------------------------------

@pytest.mark.parametrize("patch, problem", [
    ({"status": "success"}, "'status' is a string"),
    ({"status": {"status_str": "success", "completed": True, "messages": [1, "x", ["a"]]}}, "status message"),
    ({"outputs": ["not", "an", "object"]}, "'outputs' is a list"),
])
def test_a_history_entry_in_an_unexpected_form_is_named_and_keeps_what_it_can(comfy_server, patch, problem):
    comfy_server.config(hostile={"GET /history/{id}": {"patch": patch}})
    result, _ = timed_run(comfy_server, timeout=20)
    assert any(problem in w for w in result.warnings), result.warnings
    if "outputs" not in patch:
        assert [f.node_id for f in result.outputs] == ["2"]


def test_an_animated_flag_that_is_a_number_does_not_lose_the_file(comfy_server):
    def outputs_of(result):
        return [(f.node_id, f.mime_type) for f in result.outputs]

    clean, _ = timed_run(comfy_server)
    entry = comfy_server.history_entry(clean.prompt_id)
    entry_outputs = entry["outputs"]
    entry_outputs["2"]["animated"] = 7
    comfy_server.config(hostile={"GET /history/{id}": {"patch": {"outputs": entry_outputs}}})
    result, _ = timed_run(comfy_server)
    assert outputs_of(result) == outputs_of(clean) == [("2", "image/png")]


@pytest.mark.parametrize("body", [
    {"queue_running": "x", "queue_pending": []},
    {"queue_running": [[1]], "queue_pending": [["a", 5], {"x": 1}]},
    [],
])
def test_a_queue_in_an_unexpected_form_never_crashes_the_follower(comfy_server, body):
    # The socket is silent, so the follower polls history (running: nothing yet) and the queue.
    comfy_server.config(ws_silent=True, node_delay={"SaveImage": 1.5}, hostile={"GET /queue": {"body": body}})
    result, seconds = timed_run(comfy_server, timeout=15)
    assert seconds < 15 + SLACK
    assert [f.node_id for f in result.outputs] == ["2"]


def test_a_prompt_answer_whose_node_errors_is_a_list_is_accepted(comfy_server):
    comfy_server.config(hostile={"POST /prompt": {"patch": {"node_errors": ["odd"]}}})
    result, _ = timed_run(comfy_server)
    assert result.ok and [f.node_id for f in result.outputs] == ["2"]


@pytest.mark.parametrize("body", [
    {"error": "flat text", "node_errors": []},
    {"error": {"type": 5}, "node_errors": {"3": {"errors": "x", "class_type": ["y"]}}},
    {"node_errors": {"3": {"errors": [{"type": "value_not_in_list", "extra_info": [1], "details": {"a": 1}}]}}},
])
def test_a_rejection_in_an_unexpected_form_is_still_one_readable_error(comfy_server, body):
    comfy_server.config(hostile={"POST /prompt": {"body": body, "status": 400}})
    with pytest.raises(BridgeError) as caught:
        timed_run(comfy_server)
    assert caught.value.code == "prompt_rejected"
    assert caught.value.message.startswith("ComfyUI rejected the workflow")


def test_a_cached_message_without_a_prompt_id_is_someone_elses(comfy_server):
    comfy_server.config(ws_extra=[{"type": "execution_cached", "data": {"nodes": 5}},
                                  {"type": "executing", "data": {"node": None}},
                                  {"type": "progress", "data": {"value": "x", "max": None}}])
    result, _ = timed_run(comfy_server)
    assert result.ok and result.cached_nodes == [] and [f.node_id for f in result.outputs] == ["2"]


def test_a_definition_whose_input_order_is_not_a_list_counts_as_unknown_not_a_crash(comfy_server):
    body = {"MyNode": {"input": {"required": {"text": ["STRING", {}]}}, "input_order": {"required": 5},
                       "output": "CONDITIONING"}}
    comfy_server.config(hostile={"GET /object_info/{cls}": {"body": body}})
    from comfyui_bridge.engine import node_info
    info = node_info(ComfyClient(ServerConfig(comfy_server.url)), Deadline.after(5))
    found = info.get("MyNode")
    assert found is not None and list(found.inputs) == ["text"] and found.outputs == []


# ---- websocket images are all read before the run is declared done --------------------------------

def test_every_websocket_image_is_delivered_even_when_history_says_done_first(comfy_server):
    graph = workflow("slow_progress_ws_images.json")
    graph["1"]["inputs"].update(batch_size=45, width=64, height=64)
    # The run (and its history entry) ends at once; the 45 frames trickle out over ~9 s, so the
    # follower's periodic history poll sees "done" while most frames are still on their way.
    comfy_server.config(ws_binary_delay=0.2)
    result = Engine(parse_servers(comfy_server.url)).run(RunRequest(workflow=graph, timeout=60))
    assert len(result.outputs) == 45, result.warnings
    assert not any("may be missing" in w for w in result.warnings)


def test_websocket_images_cut_off_by_a_dropped_socket_are_named_as_possibly_missing(comfy_server):
    graph = workflow("slow_progress_ws_images.json")
    graph["1"]["inputs"].update(batch_size=20, width=64, height=64)
    comfy_server.config(ws_drop_after=8)
    result = Engine(parse_servers(comfy_server.url)).run(RunRequest(workflow=graph, timeout=30))
    assert len(result.outputs) < 20
    assert any("may be missing" in w for w in result.warnings), result.warnings


# ---- redirects and auth ---------------------------------------------------------------------------

def test_a_websocket_redirect_is_not_followed_and_the_token_never_reaches_the_other_host(comfy_server_factory):
    elsewhere = comfy_server_factory()
    main = comfy_server_factory(token="tok-redirect-secret")
    main.config(ws_redirect=elsewhere.ws_url + "?clientId=x")
    result, _ = timed_run(main, token="tok-redirect-secret")
    assert result.ok   # the run is followed by polling instead
    assert elsewhere.stats()["requests"].get("GET /ws", 0) == 0


def test_the_websocket_refuses_a_redirect_with_a_message_naming_it(comfy_server):
    from comfyui_bridge.ws import open_run_socket
    comfy_server.config(ws_redirect="http://127.0.0.1:9/ws")
    with pytest.raises(NotComfyUI, match="redirect"):
        open_run_socket(ServerConfig(comfy_server.url), "c1", Deadline.after(5))


def test_user_and_password_in_the_url_authenticate_http_and_the_websocket(comfy_server_factory):
    import base64
    basic = base64.b64encode(b"ann:s3cret-pw").decode()
    comfy = comfy_server_factory(require_header=f"Authorization: Basic {basic}")
    host = comfy.url.split("://", 1)[1]
    result = Engine(parse_servers(f"http://ann:s3cret-pw@{host}")).run(RunRequest(workflow=workflow(), timeout=20))
    assert result.ok and [f.node_id for f in result.outputs] == ["2"]
    assert comfy.stats()["ws_connects"] >= 1   # the websocket got through the same auth


# ---- a server that dies --------------------------------------------------------------------------

def test_a_server_killed_during_the_run_is_reported_within_30_seconds(comfy_server_fresh):
    comfy_server_fresh.config(node_delay={"SaveImage": 60})
    import threading
    threading.Timer(2.0, comfy_server_fresh.process.kill).start()
    result, seconds = timed_run(comfy_server_fresh, timeout=240)
    assert seconds < 30
    assert result.ending == "gone" and result.error.code == "server_gone"
    assert "stopped accepting connections" in result.error.message


def test_an_output_name_that_is_not_valid_utf8_is_named_and_the_rest_is_delivered(comfy_server):
    clean, _ = timed_run(comfy_server)
    entry = comfy_server.history_entry(clean.prompt_id)
    entry_outputs = entry["outputs"]
    (good,) = entry_outputs["2"]["images"]
    # A lone surrogate: valid in JSON (`\ud800`), not encodable as UTF-8.
    entry_outputs["2"]["images"] = [dict(good, filename="bad\ud800name.png"), good]
    comfy_server.config(hostile={"GET /history/{id}": {"patch": {"outputs": entry_outputs}}})
    result, _ = timed_run(comfy_server)
    assert [(f.node_id, f.mime_type) for f in result.outputs] == [("2", "image/png")]
    assert len(result.missing) == 1
    (warning,) = [w for w in result.warnings if "not delivered" in w]
    assert "bad" in warning and "\ud800" not in warning
    warning.encode("utf-8")    # what the user reads is valid UTF-8

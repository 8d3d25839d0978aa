"""Property-based: any shape of any answer ComfyUI can give is parsed into our own types or our
own errors — never a raw AttributeError/TypeError/ValueError/RecursionError — and a run fed a
mangled answer still ends within its timeout, keeping the outputs that finished.

Parsers are fed many random JSON values (fast); the engine against the test server is fed fewer
(each example is a real run), so CI stays quick.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfyui_bridge import responses
from comfyui_bridge.client import _error_types, _node_error_summary
from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import BridgeError, ConnectionFailed
from comfyui_bridge.models import RunRequest
from comfyui_bridge.nodeinfo import NodeInfo, trim_definition
from comfyui_bridge.outputs import collect_refs
from comfyui_bridge.rejections import describe_rejection
from comfyui_bridge.run import RunFollower
from comfyui_bridge.workflow import load_workflow

WORKFLOW = load_workflow((Path(__file__).parent / "fixtures/workflows/empty_save_1024.json").read_bytes())

# Texts include lone surrogates: JSON allows `\ud800`, UTF-8 (URLs, Dify's stdout) does not.
texts = st.text(max_size=20) | st.text(alphabet=st.characters(exclude_categories=()), max_size=6)
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | texts)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)
keys = st.sampled_from(["status", "status_str", "completed", "messages", "outputs", "images", "filename",
                        "subfolder", "type", "animated", "text", "queue_running", "queue_pending", "prompt_id",
                        "node_errors", "errors", "error", "extra_info", "class_type", "input", "required",
                        "optional", "input_order", "output", "output_name", "data", "node", "nodes", "p"])
# Objects built from the keys ComfyUI uses, so the parsers' interesting branches are reached.
comfy_shaped = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(keys, inner, max_size=5), max_leaves=30)
anything = json_values | comfy_shaped
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(anything)
def test_history_answers_of_any_shape_parse_or_raise_unexpected_shape(data):
    try:
        entry = responses.history_entry(data, "p")
    except responses.UnexpectedShape:
        return
    if entry is not None:
        assert entry.status in ("success", "error", "unknown")
        assert all(isinstance(v, dict) for v in entry.outputs.values())
        refs, texts = collect_refs(entry.outputs)
        assert all(isinstance(t, str) for t in texts)


@FAST
@given(anything)
def test_queue_and_prompt_answers_of_any_shape_parse_or_raise_unexpected_shape(data):
    for parse in (responses.queue_view, lambda d: responses.prompt_accepted(d, "p"), responses.system_version):
        try:
            parse(data)
        except responses.UnexpectedShape:
            pass


@FAST
@given(anything)
def test_rejections_of_any_shape_give_readable_lines(data):
    message, lines = describe_rejection(data, {"3": {"class_type": "KSampler", "inputs": {}}})
    assert message.startswith("ComfyUI rejected the workflow") and lines
    "\n".join([message, *lines]).encode("utf-8")    # raises on a lone surrogate: the user must be able to read it
    assert isinstance(_node_error_summary(data), dict) and isinstance(_error_types(data), list)


@FAST
@given(anything)
def test_node_definitions_of_any_shape_are_a_definition_or_unknown(data):
    info = NodeInfo(fetch=lambda cls: {cls: data}.get(cls) if isinstance(data, dict) else data,
                    server=f"fuzz-{id(data)}", bundled={})
    found = info.get("FuzzNode")
    assert found is None or isinstance(found.inputs, dict)
    if isinstance(data, dict):
        try:
            trim_definition(data)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):
            pass   # NodeInfo catches these (above): the definition then counts as unknown


class _DownServer:
    """Stands in for the client when a frame says the run is done: the history fetch fails."""

    server = None

    def history(self, *args, **kw):
        raise ConnectionFailed("down", code="refused")


ours = st.fixed_dictionaries({"type": st.sampled_from(["executing", "executed", "execution_cached", "progress",
                                                       "execution_error", "execution_success"]),
                              "data": st.fixed_dictionaries({"prompt_id": st.just("p")}, optional={
                                  "node": anything, "nodes": anything, "output": anything, "value": anything,
                                  "max": anything, "exception_message": anything})})


@FAST
@given(anything | ours, st.binary(max_size=64))
def test_websocket_frames_of_any_shape_are_read_or_ignored(message, binary):
    follower = RunFollower(_DownServer(), "p", "c", deadline=Deadline.after(5), ws=None,  # type: ignore[arg-type]
                           websocket_nodes={"2"})
    if isinstance(message, dict):
        follower._message(message)
    follower._binary(binary)
    follower._binary(b"\x00\x00\x00\x04" + len(json.dumps(message)).to_bytes(4, "big") + json.dumps(message).encode())


# ---- the engine against the test server, fed mangled answers ----------------------------------------

SERVER = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def run(comfy, timeout=10):
    start = time.monotonic()
    try:
        result = Engine(parse_servers(comfy.url)).run(RunRequest(workflow=WORKFLOW, timeout=timeout))
    except BridgeError as exc:
        return exc, time.monotonic() - start
    return result, time.monotonic() - start


@SERVER
@given(status=anything, messages=anything)
def test_a_history_entry_with_a_mangled_status_still_delivers_the_finished_file(comfy_server, status, messages):
    mangled = status if not isinstance(status, dict) else dict(status, messages=messages)
    comfy_server.config(hostile={"GET /history/{id}": {"patch": {"status": mangled}}})
    result, seconds = run(comfy_server)
    assert not isinstance(result, BridgeError), result
    assert seconds < 10 + 3
    assert [f.node_id for f in result.outputs] == ["2"]   # the outputs part was intact


@SERVER
@given(route=st.sampled_from(["GET /history/{id}", "GET /queue", "POST /prompt", "GET /object_info/{cls}",
                              "GET /prompt"]),
       body=anything, status=st.sampled_from([200, 200, 400, 500]))
def test_any_answer_on_any_route_ends_in_a_result_or_our_error_within_the_timeout(comfy_server, route, body, status):
    comfy_server.config(hostile={route: {"body": body, "status": status}}, ws_silent=route == "GET /queue")
    result, seconds = run(comfy_server, timeout=6)
    assert seconds < 6 + 3
    if not isinstance(result, BridgeError) and result.error is None and route != "POST /prompt":
        assert [f.node_id for f in result.outputs] == ["2"]


@SERVER
@given(headers=st.dictionaries(st.sampled_from(["Content-Length", "Content-Type", "Content-Encoding"]),
                               st.sampled_from(["", "-1", "abc", "5, 5", "99999999999999999999", "gzip", "br",
                                                "text/html", "image/svg+xml", "0", "10"]), max_size=3))
def test_view_answers_with_any_headers_give_the_file_or_name_it(comfy_server, headers):
    comfy_server.config(hostile={"GET /view": {"headers": headers}})
    result, seconds = run(comfy_server, timeout=8)
    assert seconds < 8 + 3
    assert not isinstance(result, BridgeError), result
    assert len(result.outputs) + len(result.missing) == 1


def test_the_fuzzers_reach_the_branches_they_claim():
    # Guard against a strategy that never produces what the properties are about.
    assert responses.history_entry({"p": {"status": "x", "outputs": []}}, "p").problems
    with pytest.raises(responses.UnexpectedShape):
        responses.queue_view({"queue_running": 3})

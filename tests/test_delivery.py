"""From a finished run to Dify messages, with the real engine, the ComfyUI test server and the
COS test server: URLs beside blobs, large files as links, COS failures that lose nothing, messages
that stay small whatever the server sends, and nothing internal in what an agent reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cos_fixture import COS_SK, fetch
from dify_view import Recorder
from dify_view import variables as dify_variables

from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import ExecutionFailed
from comfyui_bridge.models import OutputRef, RunRequest, RunResult
from comfyui_bridge.outputs import make_file
from comfyui_bridge.storage.cos import CosSettings, CosStorage
from comfyui_bridge.workflow import load_workflow
from tools.delivery import (
    Delivered,
    Report,
    ToolRunError,
    deliver,
    invoke,
    markdown,
    messages,
    run_and_deliver,
    sentence,
    summary,
)
from tools.guard import MAX_MESSAGE_BYTES, Guarded
from tools.params import DeliveryOptions

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"
MB = 1024 * 1024


def wire_size(message) -> int:
    """Bytes the message's payload takes as JSON (blob bytes excluded: the SDK sends them in 8 KiB
    chunks). Also proves it is valid UTF-8 JSON (no NaN, no lone surrogate)."""
    payload = [m for m in message[1:] if not isinstance(m, bytes)]
    json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return len(json.dumps(payload, ensure_ascii=True, allow_nan=False))


def agent_visible(sent) -> str:
    """Everything of the messages but the blobs: what Dify's agent runner concatenates for the LLM."""
    return json.dumps([m for m in sent if m[0] != "blob"] +
                      [("meta", m[2]) for m in sent if m[0] == "blob"], ensure_ascii=False)


def workflow(name: str) -> dict:
    return load_workflow((WORKFLOWS / name).read_bytes())


def run(comfy, name="empty_save_1024.json", graph=None, **config):
    if config:
        comfy.config(**config)
    return Engine(parse_servers(comfy.url)).run(RunRequest(workflow=graph or workflow(name), timeout=30))


def storage(creds):
    return CosStorage(CosSettings.from_credentials(creds), backoff=0.01)


class FinishedEngine:
    """An engine whose run already happened: hands run_and_deliver the real result of a run on the
    test server (run_and_deliver is what the tools call after the engine)."""

    def __init__(self, result: RunResult):
        self.result = result

    def run(self, request, on_progress=None):
        return self.result


def deliver_all(result: RunResult, store=None, max_blob_bytes=15 * MB, progress=False) -> list:
    return list(run_and_deliver(Recorder(), FinishedEngine(result), store, RunRequest(workflow={}),
                                DeliveryOptions(max_blob_bytes=max_blob_bytes, progress=progress), []))


# ---- files, URLs, COS -----------------------------------------------------------------------------

def test_each_file_gets_a_blob_and_a_url_with_the_same_bytes(comfy_server, cos_server, cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    report = deliver(run(comfy_server, "batch4_save.json"), storage(cos_credentials), 15 * MB, [])
    sent = list(messages(Recorder(), report))
    blobs = [m for m in sent if m[0] == "blob"]
    assert len(blobs) == 4 and all(m[2]["mime_type"] == "image/png" for m in blobs)
    variables = dify_variables(sent)
    assert variables["url"] == variables["urls"][0] and len(variables["urls"]) == 4
    assert variables["markdown"] == markdown(report) and variables["markdown"].count("![") == 4
    for entry, blob, item in zip(summary(report)["outputs"], blobs, report.items, strict=True):
        assert entry["uploaded"] and entry["returned_as"] == "file" and entry["filename"] == blob[2]["filename"]
        got = fetch(cos_server, entry["url"])
        assert got.content == blob[1] and got.headers["ETag"].strip('"') == item.etag


def test_files_over_the_blob_limit_travel_as_url_only_and_the_user_is_told(comfy_server, cos_server,
                                                                           cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    report = deliver(run(comfy_server, image_bytes=2 * MB), storage(cos_credentials), 1 * MB, [])
    sent = list(messages(Recorder(), report))
    assert [m[0] for m in sent if m[0] in ("blob", "link")] == ["link"]
    (link,) = [m[1] for m in sent if m[0] == "link"]
    assert len(fetch(cos_server, link).content) >= 2 * MB
    assert "over the 1 MB blob limit: returned as a URL only" in sentence(report)
    assert summary(report)["outputs"][0]["returned_as"] == "url"


def test_files_over_the_limit_without_cos_are_named_not_sent(comfy_server):
    report = deliver(run(comfy_server, image_bytes=2 * MB), None, 1 * MB, [])
    sent = list(messages(Recorder(), report))
    assert not [m for m in sent if m[0] in ("blob", "link")]
    assert "configure COS" in sentence(report)
    assert summary(report)["outputs"][0]["returned_as"] == "none"


def test_cos_5xx_then_success_is_retried_and_uploaded(comfy_server, cos_server, cos_credentials):
    cos_server.fail_next(2, status=503)
    report = deliver(run(comfy_server), storage(cos_credentials), 15 * MB, [])
    assert [i.url != "" for i in report.items] == [True]


def test_cos_auth_failure_still_returns_the_files_and_says_why(comfy_server, cos_credentials):
    creds = dict(cos_credentials, cos_secret_key="wrongSecretKey0000000000000000000")
    report = deliver(run(comfy_server, "batch4_save.json"), storage(creds), 15 * MB, [creds["cos_secret_key"]])
    sent = list(messages(Recorder(), report))
    assert len([m for m in sent if m[0] == "blob"]) == 4
    entries = summary(report)["outputs"]
    assert all(not e["uploaded"] and "SecretKey" in e["upload_error"] for e in entries)
    text = sentence(report)
    assert "Upload to COS failed for 4 of 4 file(s)" in text and "still returned" in text
    assert "wrongSecretKey" not in repr(sent) and COS_SK not in repr(sent)


@pytest.mark.parametrize("name, status", [("runtime_error_after_partial_output.json", "partial")])
def test_a_failed_run_with_finished_outputs_is_delivered_as_partial(comfy_server, name, status):
    report = deliver(run(comfy_server, name), None, 15 * MB, [])
    sent = list(messages(Recorder(), report))
    variables = dify_variables(sent)
    assert variables["status"] == status
    assert summary(report)["failed_node"]["class_type"] == "SplitAudioChannels"


def test_node_ids_that_sanitise_alike_keep_their_own_file_and_url(comfy_server, cos_server, cos_credentials):
    """`a/b` and `a_b` used to map to one COS key and one blob name: the second upload replaced the first."""
    cos_server.make_public(cos_credentials["cos_bucket"])
    graph = {"a/b": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                             "color": 0xFF0000}},
             "a_b": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                             "color": 0x0000FF}},
             "s/1": {"class_type": "SaveImage", "inputs": {"images": ["a/b", 0], "filename_prefix": "red"}},
             "s_1": {"class_type": "SaveImage", "inputs": {"images": ["a_b", 0], "filename_prefix": "blue"}}}
    report = deliver(run(comfy_server, graph=graph), storage(cos_credentials), 15 * MB, [])
    sent = list(messages(Recorder(), report))
    blobs = [m for m in sent if m[0] == "blob"]
    assert len(blobs) == 2 and blobs[0][1] != blobs[1][1]
    assert len({b[2]["filename"] for b in blobs}) == 2 and len({i.key for i in report.items}) == 2
    for item, blob in zip(report.items, blobs, strict=True):
        assert fetch(cos_server, item.url).content == blob[1]


# ---- what an agent reads -----------------------------------------------------------------------------

def test_what_an_agent_reads_has_no_server_address_cos_key_etag_or_timings(comfy_server, cos_server,
                                                                            cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    result = run(comfy_server, "batch4_save.json")
    report = deliver(result, storage(cos_credentials), 15 * MB, [])
    visible = agent_visible(list(messages(Recorder(), report)))
    assert result.server and result.timings and all(i.key and i.etag for i in report.items)
    assert f"127.0.0.1:{comfy_server.port}" not in visible and result.server not in visible
    for item in report.items:
        assert item.etag not in visible
        assert item.key not in visible.replace(item.url, "")   # the key is only inside its own URL
    assert '"server"' not in visible and '"key"' not in visible and '"etag"' not in visible
    assert "timings" not in visible and "ws_connected" not in visible


def test_the_server_address_is_removed_from_error_texts_an_agent_reads(comfy_server):
    result = run(comfy_server, "runtime_error_after_partial_output.json")
    result.error = ExecutionFailed(f"ComfyUI at {result.server} failed on node 4.",
                                   message_zh=f"{result.server} 上的节点 4 失败。",
                                   detail={"server": result.server, "node_id": "4", "bucket": "b-1250000000"})
    sent = deliver_all(result)
    visible = agent_visible(sent)
    assert result.server not in visible and f"127.0.0.1:{comfy_server.port}" not in visible
    assert "b-1250000000" not in visible
    (summary_json,) = [m[1] for m in sent if m[0] == "json"]
    assert summary_json["error"]["detail"] == {"node_id": "4"}
    assert "ComfyUI at the server failed on node 4." in summary_json["error"]["message"]


def test_video_without_a_url_is_said_to_be_in_the_workflow_output(comfy_server):
    sent = deliver_all(run(comfy_server, "video_mp4.json"))
    (text,) = [m[1] for m in sent if m[0] == "text"]
    assert [m[2]["mime_type"] for m in sent if m[0] == "blob"] == ["video/mp4"]
    assert "video file is in the workflow's files output" in text
    assert "a chat reply does not show video" in text and "configure COS" in text


def test_audio_with_a_url_tells_the_agent_to_give_the_url(comfy_server, cos_server, cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    sent = deliver_all(run(comfy_server, "audio_flac.json"), storage(cos_credentials))
    (text,) = [m[1] for m in sent if m[0] == "text"]
    (url,) = dify_variables(sent)["urls"]
    assert url in text and "give the user the URL" in text
    assert "[" in markdown_of(sent) and "![" not in markdown_of(sent)      # audio is a link, not an image


def markdown_of(sent) -> str:
    return dify_variables(sent)["markdown"]


def test_markdown_embeds_raster_images_only_and_only_web_urls():
    counters: dict[str, int] = {}
    files = [make_file(OutputRef("9", "x.png", "", "output", "images"), b"1", "", "p", counters),
             make_file(OutputRef("9", "x.svg", "", "output", "images"), b"<svg/>", "image/svg+xml", "p", counters),
             make_file(OutputRef("9", "v.mp4", "", "output", "gifs"), b"2", "", "p", counters),
             make_file(OutputRef("9", "y.png", "", "output", "images"), b"3", "", "p", counters)]
    urls = ["https://b.example/p_9_1.png", "https://b.example/p_9_2.bin", "https://b.example/v (1).mp4",
            "javascript:alert(1)//x.png"]
    report = Report(result=RunResult(prompt_id="p", server="", ending="success"),
                    items=[Delivered(file=f, url=u) for f, u in zip(files, urls, strict=True)])
    lines = markdown(report).splitlines()
    assert lines == ["![p_9_1.png](https://b.example/p_9_1.png)", "[p_9_2.bin](https://b.example/p_9_2.bin)",
                     "[p_9_3.mp4](https://b.example/v%20%281%29.mp4)"]


# ---- bounded messages -------------------------------------------------------------------------------

HOSTILE_TEXTS = ["x" * 6_000_000, "\x00" * 300_000, "😀" * 300_000, "a\ud800b" * 100_000, "é\n[l](j:x)" * 100_000]


def hostile_values():
    deep: list = []
    cur = deep
    for _ in range(100_000):
        cur.append([])
        cur = cur[0]
    return [*HOSTILE_TEXTS, deep, {str(i): "v" * 1000 for i in range(100_000)}, list(range(1_000_000)),
            float("nan"), float("inf"), 10 ** 5000, {"k": [float("-inf"), "\udfff" * 10]}, b"\xff" * 10, object()]


@pytest.mark.parametrize("kind", ["text", "link", "json", "variable", "stream", "blob"])
def test_every_message_kind_is_bounded_whatever_it_is_given(kind):
    tool = Guarded(Recorder())
    for value in hostile_values():
        if kind == "text":
            message = tool.create_text_message(value)
        elif kind == "link":
            message = tool.create_link_message(value)
        elif kind == "json":
            message = tool.create_json_message(value if isinstance(value, (dict, list)) else {"v": value})
        elif kind == "variable":
            message = tool.create_variable_message("v" * 1_000_000, value)
        elif kind == "stream":
            message = tool.create_stream_variable_message("progress", value)
        else:
            message = tool.create_blob_message(b"data", meta={"filename": value, "mime_type": value})
        assert wire_size(message) <= MAX_MESSAGE_BYTES, (kind, type(value).__name__)


def test_a_cut_text_says_how_much_was_cut():
    (_, text) = Guarded(Recorder()).create_text_message("y" * 6_000_000)
    assert re.search(r"… \((\d+) more characters cut\)$", text)
    kept = len(text) - len(text[text.index("…"):])
    assert int(re.search(r"\((\d+) more", text).group(1)) == 6_000_000 - kept


def test_a_6_mb_text_output_comes_back_as_a_txt_file_with_an_excerpt(comfy_server):
    graph = workflow("text_only.json")
    graph["1"]["inputs"]["string_a"] = "line ![x](https://evil.example/a.png)"
    result = run(comfy_server, graph=graph, text_output_bytes=6_000_000)
    (raw,) = result.texts
    assert len(raw) == 6_000_000
    sent = deliver_all(result)
    assert all(wire_size(m) <= MAX_MESSAGE_BYTES for m in sent)
    (blob,) = [m for m in sent if m[0] == "blob"]
    assert blob[2]["mime_type"] == "text/plain" and blob[2]["filename"].endswith("_text_1.txt")
    assert blob[1] == raw.encode("utf-8")
    (summary_json,) = [m[1] for m in sent if m[0] == "json"]
    (inline,) = summary_json["texts"]
    assert inline.startswith("line ![x]") and f"5999500 more characters; the whole text is in the file " \
                                                  f"{blob[2]['filename']}" in inline
    (text,) = [m[1] for m in sent if m[0] == "text"]
    assert "Generated 1 text output." in text and "![" not in text and "\n" not in text
    assert summary_json["status"] == "success"


def test_a_short_text_output_stays_inline(comfy_server):
    sent = deliver_all(run(comfy_server, "text_only.json"))
    assert not [m for m in sent if m[0] == "blob"]
    (summary_json,) = [m[1] for m in sent if m[0] == "json"]
    assert summary_json["texts"] == ["hello world"]
    assert "Text: hello world" in next(m[1] for m in sent if m[0] == "text")


def test_a_3_mb_output_name_never_appears_whole_and_the_rest_is_delivered(comfy_server):
    """Every saved file of the run is listed under a 3 MB name: none can be fetched, the text output
    still arrives, and the names show up cut in the notes."""
    result = run(comfy_server, "multi_output_mixed.json", output_name_chars=3_000_000)
    assert result.missing and len(result.missing[0].filename) == 3_000_000
    sent = deliver_all(result)
    assert all(wire_size(m) <= MAX_MESSAGE_BYTES for m in sent)
    assert "n" * 5000 not in agent_visible(sent)
    variables = dify_variables(sent)
    assert variables["status"] == "partial"
    (summary_json,) = [m[1] for m in sent if m[0] == "json"]
    assert summary_json["texts"] == ["hello, world"]
    notes = [n for n in summary_json["notes"] if n.startswith("output multi_")]
    assert len(notes) == 2 and all(len(n) < 600 and "more characters)" in n for n in notes)


def test_a_3_mb_name_as_the_only_output_fails_with_a_short_message(comfy_server):
    result = run(comfy_server, "empty_save_1024.json", output_name_chars=3_000_000)
    with pytest.raises(ToolRunError) as info:
        deliver_all(result)
    message = str(info.value)
    assert len(message.encode()) < 16 * 1024 and "none of its outputs could be delivered" in message
    assert "n" * 5000 not in message


def test_the_json_summary_is_bounded_as_a_whole_and_keeps_the_first_entries():
    files = [make_file(OutputRef(str(i), f"ComfyUI_{i:05}_.png", "", "output", "images"), b"png", "", "p", {})
             for i in range(5000)]
    result = RunResult(prompt_id="p", server="http://10.0.0.5:8188", ending="success", outputs=files,
                       texts=[f"text {i} " + "t" * 1500 for i in range(300)],
                       warnings=[f"warning {i}: " + "w" * 20_000 for i in range(1000)])
    report = deliver(result, None, 15 * MB, [])
    out = summary(report)
    assert len(json.dumps(out, ensure_ascii=True)) <= MAX_MESSAGE_BYTES
    listed = out["outputs"]
    assert [e["node_id"] for e in listed] == [str(i) for i in range(len(listed))]
    assert out["omitted"]["outputs"] == 5000 - len(listed)
    assert out["omitted"]["texts"] == 300 - len(out.get("texts", []))
    assert out["omitted"]["notes"] == len(report.notes) - len(out.get("notes", []))
    assert out["notes"][0].startswith("The run has 300 text outputs") or out["notes"][0].startswith("warning 0")
    sent = list(messages(Recorder(), report))
    assert all(wire_size(m) <= MAX_MESSAGE_BYTES for m in sent)
    assert len([m for m in sent if m[0] == "blob"]) == 5000      # every file is still sent
    variables = dify_variables(sent)
    assert variables["urls"] == [] and variables["status"] == "success"


def test_server_names_with_newlines_and_markdown_reach_no_text_as_syntax(comfy_server):
    graph = workflow("multi_output_mixed.json")
    graph["2"]["inputs"]["filename_prefix"] = "evil\n# Head ![p](javascript:alert(1)) <b>x<b> `c`"
    result = run(comfy_server, graph=graph, view_status=404)
    assert any("\n" in ref.filename for ref in result.missing)
    sent = deliver_all(result)
    (text,) = [m[1] for m in sent if m[0] == "text"]
    (summary_json,) = [m[1] for m in sent if m[0] == "json"]
    for shown_text in [text, *summary_json["notes"]]:
        assert "\n" not in shown_text and "![" not in shown_text and "<b>" not in shown_text
        assert "`" not in shown_text
    assert any("output evil # Head !p(javascript:alert(1)) bxb c_00001_.png of node 2" in n
               for n in summary_json["notes"])


def test_progress_lines_are_plain_and_short():
    from tools.delivery import progress_line
    line = progress_line("node", {"title": "T\n![x](y)" + "t" * 100_000, "node": "3"})
    assert line.endswith("\n") and line.count("\n") == 1 and "![" not in line and len(line) < 200
    assert progress_line("queued", {"position": [[[[1]]]]}).startswith("Waiting in queue (position ")
    assert progress_line("cached", {"nodes": "not a list"}) == "0 node(s) served from ComfyUI's cache\n"


class ToolWithCredentials(Recorder):
    class runtime:  # noqa: N801 - the SDK's attribute name
        credentials = {"comfyui_base_url": "http://127.0.0.1:9", "comfyui_token": "tok-secret-4242"}


@pytest.mark.parametrize("crash", [RecursionError, ValueError, KeyError, TypeError])
def test_an_unexpected_exception_ends_in_a_short_message_without_secrets(crash):
    def make_request(_params):
        raise crash("boom tok-secret-4242\nline two " + "x" * 6_000_000)
    with pytest.raises(ToolRunError) as info:
        list(invoke(ToolWithCredentials(), {}, make_request))
    message = str(info.value)
    assert f"The tool failed unexpectedly ({crash.__name__}: " in message and "工具意外出错" in message
    assert len(message.encode()) < 2000 and "tok-secret-4242" not in message
    assert info.value.__context__ is None and info.value.__cause__ is None

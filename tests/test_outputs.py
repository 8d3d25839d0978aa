import json
from pathlib import Path

import pytest

from comfyui_bridge.media import classify, is_unsafe_path, output_name, plain
from comfyui_bridge.models import OutputRef
from comfyui_bridge.outputs import collect_refs, make_file

CAPTURES = Path(__file__).parent / "fixtures/captures"


def history_of(name):
    capture = json.loads((CAPTURES / f"wf_{name}.json").read_text())
    (entry,) = capture["history"]["json"].values()
    return entry


@pytest.mark.parametrize("name, count, kind", [
    ("empty_save_1024", 1, "image"), ("batch4_save", 4, "image"), ("empty_invert_preview", 1, "image"),
    ("video_mp4", 1, "video"), ("webm_vp9", 1, "video"), ("animated_webp", 1, "image"),
    ("audio_flac", 1, "audio"), ("audio_mp3", 1, "audio"), ("latent_save", 1, "latent"),
    ("mask_preview", 1, "image"),
])
def test_every_file_output_is_found_whatever_its_key(name, count, kind):
    refs, texts = collect_refs(history_of(name)["outputs"])
    assert len(refs) == count
    assert {classify(r.filename)[1] for r in refs} == {kind}


def test_mixed_outputs_keep_temp_previews_and_texts():
    refs, texts = collect_refs(history_of("multi_output_mixed")["outputs"])
    assert [r.type for r in refs].count("temp") == 2 and [r.type for r in refs].count("output") == 2
    assert texts == ["hello, world"]


def test_video_under_images_is_typed_by_extension_not_by_key():
    (ref,), _ = collect_refs(history_of("video_mp4")["outputs"])
    assert ref.listed_under == "images" and ref.animated
    assert classify(ref.filename) == ("video/mp4", "video")


def test_failed_run_still_lists_the_outputs_that_finished():
    entry = history_of("runtime_error_after_partial_output")
    assert entry["status"]["status_str"] == "error"
    refs, _ = collect_refs(entry["outputs"])
    assert len(refs) == 1 and refs[0].filename.endswith(".png")


def test_the_same_file_listed_twice_is_returned_once():
    item = {"filename": "a.png", "subfolder": "", "type": "output"}
    refs, _ = collect_refs({"2": {"images": [item, dict(item)]}, "3": {"images": [dict(item)]}})
    assert len(refs) == 1


def test_text_only_workflow_has_no_file():
    refs, texts = collect_refs(history_of("text_only")["outputs"])
    assert refs == [] and texts == ["hello world"]


@pytest.mark.parametrize("filename, subfolder", [("../x.png", ""), ("/etc/passwd", ""), ("a.png", "../.."),
                                                 ("C:\\x.png", ""), ("", "")])
def test_names_that_escape_a_folder_are_refused(filename, subfolder):
    assert is_unsafe_path(filename, subfolder)


def test_our_names_come_from_our_ids_never_from_comfyui_names():
    name = output_name("7c6d29b0-4a4e", "9", 2, "../../evil name_00001_.PNG", "image/png")
    assert name == "7c6d29b0-4a4e_9_2.png"


def test_a_name_longer_than_any_file_system_allows_is_refused_before_any_request():
    assert is_unsafe_path("a" * 3_000_000 + ".png")
    assert is_unsafe_path("a.png", "s" * 2000)
    assert not is_unsafe_path("ComfyUI_00001_.png", "plugin_test")


@pytest.mark.parametrize("outputs", [
    [], "text", 7, None,                                                # not a dict at all
    {"9": ["images"]}, {"9": {"images": "a.png"}}, {"9": {"images": [["a.png"]]}},
    {"9": {"images": [{"filename": {"nested": "a.png"}}]}}, {"9": {"images": [{"filename": None}]}},
    {"9": {"images": [{"filename": "a.png"}], "animated": 3}},         # `animated` as a number
    {"9": {"images": [{"filename": "a.png", "subfolder": ["x"], "type": {"t": 1}}], "animated": "yes"}},
    {"9": {"text": [{"x": 1}, None, ["deep"]]}},
])
def test_history_outputs_of_any_shape_give_refs_or_nothing_never_an_exception(outputs):
    refs, texts = collect_refs(outputs)
    assert all(isinstance(r.filename, str) and isinstance(r.subfolder, str) and isinstance(r.type, str)
               for r in refs)
    assert all(isinstance(t, str) for t in texts)


def test_odd_but_usable_items_keep_their_file():
    refs, texts = collect_refs({"9": {"images": [{"filename": "a.png", "subfolder": ["x"], "type": 5}],
                                      "animated": 3, "text": ["one", 2, None]}})
    assert [(r.filename, r.subfolder, r.type, r.animated) for r in refs] == [("a.png", "", "5", False)]
    assert texts == ["one", "2"]


@pytest.mark.parametrize("filename, content_type, expected", [
    ("x.svg", "image/svg+xml", ("application/octet-stream", "file")),
    ("x.html", "text/html", ("application/octet-stream", "file")),
    ("x.unknown", "text/html", ("application/octet-stream", "file")),
    ("noext", "image/svg+xml", ("application/octet-stream", "file")),
    ("noext", "text/html; charset=utf-8", ("application/octet-stream", "file")),
    ("noext", "image/webp", ("image/webp", "image")),
    ("noext", "audio/x-wav", ("audio/wav", "audio")),
    ("clip.MP4", "text/html", ("video/mp4", "video")),       # the extension decides
    ("x.latent", "", ("application/octet-stream", "latent")),
    ("x.exr", "image/x-exr", ("application/octet-stream", "file")),
])
def test_types_come_from_the_allowlist_whatever_the_server_claims(filename, content_type, expected):
    assert classify(filename, content_type) == expected


def test_our_names_never_carry_a_page_or_script_extension():
    for bad in ("x.html", "x.svg", "x.js", "x.xhtml", "x.htm", "x.php"):
        mime, _ = classify(bad)
        assert output_name("p", "9", 1, bad, mime).endswith(".bin")


def test_each_output_of_a_run_gets_its_own_name():
    counters: dict[str, int] = {}
    refs = [OutputRef("a/b", "x.png", "", "output", "images"), OutputRef("a_b", "x.png", "", "output", "images"),
            OutputRef("a_b", "y.png", "", "output", "images"), OutputRef("a_b", "ws_0.png", "", "websocket", "images")]
    names = [make_file(r, b"png", "", "p", counters).name for r in refs]
    assert len(set(names)) == 4
    assert names[1:] == ["p_a_b_1.png", "p_a_b_2.png", "p_a_b_w1.png"]


def test_server_text_is_made_plain_for_our_texts():
    hostile = "name\n![x](https://evil.example/t.png)<img src=x onerror=alert(1)>`code`\u202e**b** #h"
    text = plain(hostile, 200)
    assert "\n" not in text and "![" not in text and "<" not in text and "`" not in text and "*" not in text
    assert "\u202e" not in text and "evil.example" in text     # the words stay, the syntax goes
    long = plain("a" * 3_000_000, 100)
    assert len(long) < 200 and long.endswith("(2999900 more characters)")

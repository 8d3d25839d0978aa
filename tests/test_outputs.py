import json
from pathlib import Path

import pytest

from comfyui_bridge.media import classify, is_unsafe_path, output_name
from comfyui_bridge.outputs import collect_refs

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
    assert ref.key == "images" and ref.animated
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

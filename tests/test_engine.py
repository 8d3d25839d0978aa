"""The engine against the ComfyUI test server: every kind of workflow returns exactly the files
the server wrote, and bad input or a failing run says what happened without losing outputs."""

import json
from pathlib import Path

import pytest

from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import InputError, PromptRejected, WorkflowFormatError
from comfyui_bridge.models import RunRequest
from comfyui_bridge.workflow import load_workflow

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"


def workflow(name):
    return load_workflow((WORKFLOWS / name).read_bytes())


def run(comfy, name, **kw):
    kw.setdefault("timeout", 30)
    return Engine(parse_servers(comfy.url)).run(RunRequest(workflow=workflow(name), **kw))


def server_root(comfy):
    base = Path(comfy.base_dir)
    return base / "root" if (base / "root").is_dir() else base


def server_bytes(comfy, f):
    ref = f.ref
    return (server_root(comfy) / ref.type / ref.subfolder / ref.filename).read_bytes()


@pytest.mark.parametrize("name, expected", [
    ("empty_save_1024.json", [("2", "image/png", "output")]),
    ("batch4_save.json", [("2", "image/png", "output")] * 4),
    ("empty_invert_preview.json", [("3", "image/png", "temp")]),
    ("video_mp4.json", [("3", "video/mp4", "output")]),
    ("webm_vp9.json", [("2", "video/webm", "output")]),
    ("animated_webp.json", [("6", "image/webp", "output")]),
    ("audio_flac.json", [("2", "audio/flac", "output")]),
    ("audio_mp3.json", [("2", "audio/mpeg", "output")]),
])
def test_each_workflow_returns_exactly_the_files_the_server_wrote(comfy_server, name, expected):
    result = run(comfy_server, name)
    assert result.ok, result.error
    assert [(f.node_id, f.mime_type, f.ref.type) for f in result.outputs] == expected
    for f in result.outputs:
        assert f.data == server_bytes(comfy_server, f)
        assert f.name.startswith(result.prompt_id + "_")


def test_mixed_outputs_return_saved_files_previews_and_texts(comfy_server):
    result = run(comfy_server, "multi_output_mixed.json")
    assert sorted(f.ref.type for f in result.outputs) == ["output", "output", "temp", "temp"]
    assert result.texts == ["hello, world"]


def test_text_only_workflow_returns_its_text_and_says_there_is_no_file(comfy_server):
    result = run(comfy_server, "text_only.json")
    assert result.ok and result.outputs == [] and result.texts == ["hello world"]


def test_every_run_uses_its_own_prompt_id_and_a_fresh_client_id(comfy_server):
    first, second = run(comfy_server, "empty_save_1024.json"), run(comfy_server, "empty_save_1024.json")
    assert first.prompt_id != second.prompt_id
    stats = comfy_server.stats()
    assert set(stats["history"]) >= {first.prompt_id, second.prompt_id}
    assert stats["open_ws"] == 0


def test_the_prompt_lands_in_the_graph_that_is_queued(comfy_server):
    result = run(comfy_server, "bizyair/sdxl_ksampler_txt2img_api.json", prompt="a red fox in snow",
                 negative_prompt="blurry")
    changes = {(c.node_id, c.input_name, c.role): c.value for c in result.plan.changes}
    assert changes[("6", "text", "prompt")] == "a red fox in snow"
    assert changes[("7", "text", "negative")] == "blurry"
    seed = changes[("3", "seed", "seed")]
    assert 0 <= seed <= 2**64 - 1
    (saved,) = result.outputs
    assert b"a red fox in snow" in saved.data  # the server embeds the queued graph in the PNG


def test_a_fixed_seed_is_used_and_the_cache_is_mentioned(comfy_server):
    result = run(comfy_server, "bizyair/sdxl_ksampler_txt2img_api.json", prompt="x", seed=42)
    assert result.plan.seeds() == {"3.seed": 42}
    assert any("cache" in w for w in result.warnings)


def test_input_images_are_uploaded_under_unique_names_and_placed(comfy_server):
    png = (server_root(comfy_server) / "input/example.png").read_bytes()
    result = run(comfy_server, "load_scale_save.json", images=[("photo.png", png)])
    assert result.ok, result.error
    (change,) = [c for c in result.plan.changes if c.role == "image"]
    assert change.value.startswith("dify_") and change.value.endswith(".png")
    # The graph ComfyUI ran names the uploaded file, not the placeholder the plan was made with.
    assert result.plan.graph[change.node_id]["inputs"][change.input_name] == change.value


def test_too_many_images_are_refused_before_anything_is_uploaded(comfy_server):
    png = (server_root(comfy_server) / "input/example.png").read_bytes()
    before = sorted(p.name for p in (server_root(comfy_server) / "input").iterdir())
    with pytest.raises(InputError, match="only 1 LoadImage"):
        run(comfy_server, "load_scale_save.json", images=[("a.png", png), ("b.png", png)])
    assert sorted(p.name for p in (server_root(comfy_server) / "input").iterdir()) == before


def test_validation_errors_become_one_line_per_node_before_anything_runs(comfy_server):
    graph = workflow("empty_save_1024.json")
    graph["1"]["inputs"]["width"] = 0
    with pytest.raises(PromptRejected) as err:
        Engine(parse_servers(comfy_server.url)).run(RunRequest(workflow=graph, timeout=20))
    assert err.value.lines == ['node 1 (EmptyImage): input "width": Value 0 smaller than min of 1']
    assert comfy_server.stats()["open_ws"] == 0


def test_a_run_that_fails_after_some_outputs_names_the_node_and_keeps_the_outputs(comfy_server):
    result = run(comfy_server, "runtime_error_after_partial_output.json")
    assert result.ending == "error"
    assert result.failure.node_type == "SplitAudioChannels"
    assert "AudioSplit: Input audio has only one channel" in result.error.message
    assert "1 output file(s)" in result.error.message
    assert [f.mime_type for f in result.outputs] == ["image/png"]
    assert "/opt/ComfyUI" not in result.error.message and "Traceback" not in result.error.message


def test_a_run_that_fails_with_nothing_finished_has_no_outputs(comfy_server):
    result = run(comfy_server, "runtime_error_audio_split.json")
    assert result.ending == "error" and result.outputs == []
    assert "SplitAudioChannels" in result.error.message


@pytest.mark.parametrize("raw, phrase", [
    (b"{not json", "not valid JSON"),
    (b"[]", "object"),
    (b"{}", "no nodes"),
])
def test_bad_workflow_files_get_a_clear_message(raw, phrase):
    with pytest.raises(WorkflowFormatError) as err:
        load_workflow(raw)
    assert phrase.lower() in err.value.message.lower()


def test_a_prompt_node_that_does_not_exist_is_refused_before_queueing(comfy_server):
    with pytest.raises(InputError) as err:
        run(comfy_server, "bizyair/sdxl_ksampler_txt2img_api.json", prompt="x", prompt_node="999")
    assert "999" in err.value.message
    assert comfy_server.stats()["prompts_accepted"] == 0


def test_a_simple_ui_format_file_is_converted_to_the_graph_it_shows():
    # Read off the UI file: 8 nodes (one a Note), links 28→27 model, 31→27 positive, 32→27 negative,
    # 54→27 latent, 27→34, 28→34 vae, 34→35; the KSampler's widgets are [2, "fixed", 20, 8, "euler",
    # "normal", 1], where "fixed" is the UI-only control_after_generate widget.
    raw = (WORKFLOWS / "ui-format/bizyair_showcase_ksampler_txt2img.json").read_bytes()
    graph = load_workflow(raw)
    assert sorted(graph) == ["27", "28", "31", "32", "34", "35", "54"]     # the Note is gone
    sampler = graph["27"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"], sampler["sampler_name"], sampler["scheduler"],
            sampler["denoise"]) == (2, 20, 8, "euler", "normal", 1)
    assert (sampler["model"], sampler["positive"], sampler["negative"], sampler["latent_image"]) == (
        ["28", 0], ["31", 0], ["32", 0], ["54", 0])
    assert graph["31"]["inputs"]["text"].startswith("a happy girl with wings")
    assert graph["34"]["inputs"] == {"samples": ["27", 0], "vae": ["28", 2]}
    assert graph["54"]["inputs"] == {"width": 1024, "height": 1024, "batch_size": 1}


def test_a_ui_format_file_that_cannot_be_converted_safely_is_refused_with_export_steps():
    # A node the converter has no definition for: its widget values cannot be named safely.
    ui = json.loads((WORKFLOWS / "ui-format/bizyair_showcase_ksampler_txt2img.json").read_text())
    ui["nodes"].append({"id": 99, "type": "SomeUnknownCustomNode", "mode": 0, "inputs": [], "outputs": [],
                        "widgets_values": [1, "x"]})
    with pytest.raises(WorkflowFormatError) as caught:
        load_workflow(json.dumps(ui))
    assert "Export (API)" in caught.value.message and "SomeUnknownCustomNode" in caught.value.message


def test_several_servers_each_run_goes_to_the_one_with_the_shortest_queue(comfy_server_factory):
    busy, idle = comfy_server_factory(), comfy_server_factory()
    busy.config(paused_queue=True)
    engine = Engine(parse_servers(f"{busy.url},{idle.url}"))
    # Make the first server's queue long, then see the run go to the idle one.
    for _ in range(2):
        Engine(parse_servers(busy.url)).client_factory(parse_servers(busy.url)[0]).queue_prompt(
            workflow("empty_save_1024.json"), f"p{_}", "c")
    result = engine.run(RunRequest(workflow=workflow("empty_save_1024.json"), timeout=20))
    assert result.ok and result.server == parse_servers(idle.url)[0].label


def test_a_server_that_is_down_before_queueing_fails_over_to_the_next(comfy_server):
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    engine = Engine(parse_servers(f"{dead},{comfy_server.url}"))
    result = engine.run(RunRequest(workflow=workflow("empty_save_1024.json"), timeout=20))
    assert result.ok and result.server.endswith(str(comfy_server.port))


def test_the_json_summary_never_carries_the_workflow(comfy_server):
    result = run(comfy_server, "bizyair/sdxl_ksampler_txt2img_api.json", prompt="a cat")
    from tools.delivery import deliver, summary
    text = json.dumps(summary(deliver(result, None, 15 * 2**20, [])))
    assert "CheckpointLoaderSimple" not in text and "class_type" not in text


def test_server_mode_runs_carry_the_key_and_leave_no_trace_of_it(comfy_server):
    key = "sk-serverModeKey0077"
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=[key])
    eng = Engine(parse_servers(comfy_server.url), bizyair_key=key)
    result = eng.run(RunRequest(workflow=workflow("bizyair/sdxl_ksampler_txt2img_api.json"), prompt="a fox",
                                timeout=30))
    assert result.ok, result.error
    assert result.prompt_id not in comfy_server.stats()["history"]  # the key sat in the stored graph
    assert key not in repr(result.warnings) and key not in repr(result.timings)


def test_server_mode_without_the_key_explains_what_is_missing(comfy_server):
    comfy_server.config(bizyair_state="server_mode")
    result = run(comfy_server, "bizyair/sdxl_ksampler_txt2img_api.json", prompt="a fox")
    assert result.ending == "error" and "BizyAir API key" in result.error.message


def test_a_bizyair_placeholder_is_reported_as_a_failure_not_delivered(comfy_server):
    comfy_server.config(bizyair_placeholder=True)
    result = run(comfy_server, "bizyair/nanobanana_txt2img_api.json", prompt="a fox")
    assert result.outputs == [] and result.ending == "error"
    assert result.error.code == "placeholder" and "placeholder" in result.error.message
    assert (result.failure.node_id, result.failure.node_type) == ("1", "BizyAir_NanoBanana")

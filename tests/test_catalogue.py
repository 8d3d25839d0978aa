"""The BizyAir catalogue (comfyui_bridge/catalogue): the generated workflows against the BizyAir
definitions, the options against what each node lists, refusals before anything is queued, and
every model run on the BizyAir test server, whose simulated cloud answers each node's inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from media_facts import mp4_facts, png_size
from script_loader import load_script

from comfyui_bridge.catalogue import TOOL_NAMES, build, catalogue
from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.errors import InputError
from comfyui_bridge.models import RunRequest
from comfyui_bridge.nodeinfo import BIZYAIR_DEPRECATED, NodeInfo
from comfyui_bridge.overrides import check_value
from comfyui_bridge.workflow import Workflow
from tests.servers.comfysim import graph as sim_graph
from tests.servers.comfysim import media

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests/fixtures/captures"
CORE = json.loads((CAPTURES / "object_info.json").read_text(encoding="utf-8"))
BIZY = json.loads((CAPTURES / "object_info_bizyair.json").read_text(encoding="utf-8"))["classes"]
MODELS = [(tool, key) for tool in TOOL_NAMES for key in catalogue()[tool].models]


def _script():
    return load_script("make_catalogue")


def model(tool, key):
    return catalogue()[tool].models[key]


def images_for(tool, key):
    spec = model(tool, key).images
    return spec.minimum if spec else 0


# ---- the generated files ---------------------------------------------------------------------------

def test_the_committed_catalogue_is_what_the_script_makes_from_the_definitions():
    script = _script()
    for path, text in script.expected_files().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run scripts/make_catalogue.py"
    on_disk = set((ROOT / "comfyui_bridge/data/catalogue").rglob("*.json"))
    assert on_disk == set(script.expected_files())


@pytest.mark.parametrize("tool, key", MODELS)
@pytest.mark.parametrize("images", ["fewest", "most"])
def test_each_workflow_passes_comfyui_validation_against_the_bizyair_definitions(tool, key, images):
    """The test server's port of ComfyUI's validate_prompt, over the 231 captured BizyAir classes."""
    spec = model(tool, key).images
    count = 0 if spec is None else (spec.minimum if images == "fewest" else spec.maximum)
    built = build(tool, key, image_count=count)
    registry = sim_graph.Registry(CORE, {"bizyair": BIZY})
    ok, error, outputs, node_errors = sim_graph.Validator(registry, lambda name: True).validate_prompt(built.graph)
    assert ok, (error, node_errors)
    assert outputs == ["2"] and node_errors == {}


@pytest.mark.parametrize("tool, key", MODELS)
def test_each_workflow_fits_the_bundled_definitions_input_by_input(tool, key):
    built = build(tool, key, image_count=images_for(tool, key))
    info = NodeInfo()
    wf = Workflow(built.graph)
    for nid in wf.ids():
        d = info.get(wf.class_of(nid))
        assert d is not None, wf.class_of(nid)
        inputs = wf.node(nid)["inputs"]
        assert [s.name for s in d.inputs.values() if s.required and s.name not in inputs] == []
        for name, value in inputs.items():
            spec = d.input(name)
            if Workflow.is_link(value):
                source = info.get(wf.class_of(value[0]))
                wanted = spec.type if spec else "IMAGE"          # image_2 … are BizyAir's dynamic IMAGE inputs
                assert source.outputs[value[1]] == wanted, (nid, name)
            else:
                assert spec is not None, (nid, name)
                assert check_value(f"{nid}.{name}", spec, value) == value
    main = built.graph[model(tool, key).node]
    assert main["class_type"] == model(tool, key).class_type
    assert main["inputs"]["prompt"] == ""                       # the engine puts the prompt there


def _raw_choices(spec):
    return list(spec[0]) if isinstance(spec[0], list) else None


@pytest.mark.parametrize("tool, key", MODELS)
def test_each_option_offers_exactly_what_the_node_definition_lists(tool, key):
    m = model(tool, key)
    raw = BIZY[m.class_type]["input"]
    specs = {**raw.get("required", {}), **raw.get("optional", {})}
    assert set(m.options) <= set(catalogue()[tool].options)
    for option in m.options.values():
        spec = specs[option.input]
        choices = _raw_choices(spec)
        if option.kind == "size":
            assert sorted(v for tiers in option.table.values() for v in tiers.values()) == sorted(choices)
            w, h = (int(x) for x in spec[1]["default"].split("*"))
            assert option.table[m.options["aspect_ratio"].default][m.options["resolution"].default] == f"{w}*{h}"
            continue
        if choices is not None:
            assert list(option.values) == [c for c in choices if c not in option.exclude]
            assert option.kind == ("fixed" if len(option.values) == 1 else "choice")
        elif spec[0] == "BOOLEAN":
            assert option.kind == "flag"
        else:
            assert (option.kind, option.min, option.max) == ("range", spec[1]["min"], spec[1]["max"])
        assert option.default == m.fixed.get(option.input, spec[1].get("default"))
    for name, value in m.fixed.items():
        assert value in _raw_choices(specs[name])


def test_no_model_uses_a_node_bizyair_retired_and_the_script_refuses_one():
    classes = {m.class_type for tool in catalogue().values() for m in tool.models.values()}
    assert classes and not classes & BIZYAIR_DEPRECATED
    script = _script()
    retired = script.Pick("edit_image", "kolors_text", "BizyAir_MinusZoneChatGLM3TextEncode", "Kolors")
    with pytest.raises(SystemExit, match="retired"):
        script.build_model(retired, BIZY[retired.class_type], CORE)


def test_every_tool_has_its_default_and_each_replacement_is_a_model_of_the_same_tool():
    for tool in catalogue().values():
        assert tool.default in tool.models
        for m in tool.models.values():
            assert m.replacement in tool.models and m.replacement != m.key


# ---- refusals before anything is queued -----------------------------------------------------------

def test_a_retired_model_is_refused_naming_its_replacement():
    with pytest.raises(InputError) as caught:
        build("edit_image", "nanobanana", image_count=1, deprecated={"BizyAir_NanoBanana"})
    err = caught.value
    assert err.code == "retired" and err.detail["replacement"] == "nanobanana_2"
    assert "'nanobanana' (BizyAir_NanoBanana)" in err.message and "Use model 'nanobanana_2'" in err.message
    assert "nanobanana_2" in err.message_zh and "停用" in err.message_zh


def test_a_retired_replacement_is_skipped_for_the_next_one():
    retired = {"BizyAir_NanoBanana", "BizyAir_NanoBanana2"}
    with pytest.raises(InputError) as caught:
        build("edit_image", "nanobanana", image_count=1, deprecated=retired)
    assert caught.value.detail["replacement"] == "nanobanana_pro"


def test_a_model_retired_with_its_whole_family_lists_the_models_left():
    retired = {"BizyAir_Flux_Kontext_API"}
    with pytest.raises(InputError) as caught:
        build("edit_image", "flux_kontext_pro", image_count=1, deprecated=retired)
    message = caught.value.message
    assert "Choose another model: " in message and "flux_kontext_max" not in message.split("Choose")[1]
    assert "nanobanana" in message.split("Choose")[1]


@pytest.mark.parametrize("tool, key, count, options, expected", [
    ("edit_image", "nanobanana", 1, {"aspect_ratio": "7:3"},
     ["Parameter 'aspect_ratio'", "'7:3'", "'nanobanana' (BizyAir_NanoBanana)", "1:1, 16:9, 9:16, 4:3, 3:4, auto"]),
    ("edit_image", "nanobanana", 1, {"resolution": "2K"},
     ["Parameter 'resolution' is not available for model 'nanobanana' (BizyAir_NanoBanana)",
      "nanobanana_2, nanobanana_pro, seedream_4_5, seedream_5, gpt_image_2, kling_2"]),
    ("edit_image", "gpt_image_1", 1, {"count": 3},
     ["Parameter 'count': 3 is not accepted by model 'gpt_image_1' (BizyAir_GPT_IMAGE_EDIT_API)", "one of 1, 2, 4"]),
    ("edit_image", "seedream_4_5", 1, {"resolution": "Custom"},
     ["Parameter 'resolution'", "'seedream_4_5' (BizyAir_Seedream4_5)", "one of 2K, 4K."]),
    ("edit_image", "kling_2", 1, {"resolution": "2K"}, ["(BizyAir_Kling_2_I2I_API)", "one of 1K."]),
    ("edit_image", "seedream_5", 1, {"count": 16}, ["Parameter 'count'", "from 1 to 15"]),
    ("text_to_video", "kling_3_0_std", 0, {"duration": 20},
     ["Parameter 'duration': 20", "'kling_3_0_std' (BizyAir_Kling_3_0_T2V_API)", "from 3 to 15 seconds"]),
    ("text_to_video", "kling_2_6", 0, {"duration": 7}, ["Parameter 'duration': 7", "one of 5, 10"]),
    ("text_to_video", "veo_3_1_fast", 0, {"duration": 5},
     ["Parameter 'duration' is not available for model 'veo_3_1_fast' (BizyAir_Veo_V3_1_T2V_API)"]),
    ("text_to_video", "sora_2", 0, {"aspect_ratio": "1:1"}, ["Parameter 'aspect_ratio'", "one of 9:16, 16:9"]),
    ("image_to_video", "hailuo_2_3", 1, {"resolution": "720p"}, ["Parameter 'resolution'", "one of 768P, 1080P"]),
    ("image_to_video", "kling_2_6", 1, {"audio": "yes please"}, ["Parameter 'audio'", "true or false"]),
])
def test_a_bad_option_is_refused_naming_parameter_model_and_allowed_values(tool, key, count, options, expected):
    with pytest.raises(InputError) as caught:
        build(tool, key, image_count=count, options=options)
    for part in expected:
        assert part in caught.value.message
    name = next(iter(options))
    assert f"“{name}”" in caught.value.message_zh and caught.value.detail["input"] == name


@pytest.mark.parametrize("tool, key, count, parameter, expected", [
    ("edit_image", "nanobanana", 6, "images", "takes 1 to 5 input image(s), not 6"),
    ("edit_image", "nanobanana_2", 15, "images", "takes 1 to 14 input image(s), not 15"),
    ("edit_image", "seededit_3", 0, "images", "takes exactly 1 input image(s), not 0"),
    ("image_to_video", "wan_2_7", 2, "image", "takes exactly 1 input image(s), not 2"),
])
def test_an_image_count_the_node_cannot_take_is_refused(tool, key, count, parameter, expected):
    with pytest.raises(InputError, match=r".*") as caught:
        build(tool, key, image_count=count, image_parameter=parameter)
    assert f"Parameter '{parameter}'" in caught.value.message and expected in caught.value.message


def test_a_negative_prompt_is_refused_by_a_model_without_one_and_used_by_one_with_it():
    with pytest.raises(InputError, match="'negative_prompt' is not available for model 'kling_2_6'"):
        build("text_to_video", "kling_2_6", negative=True)
    built = build("text_to_video", "kling_2_1_master", negative=True)
    assert built.negative_node == "1.negative_prompt"


def test_an_unknown_model_lists_the_models_of_the_tool():
    with pytest.raises(InputError) as caught:
        build("text_to_video", "kling_9000")
    assert "Unknown model 'kling_9000' for text_to_video" in caught.value.message
    assert ", ".join(catalogue()["text_to_video"].models) in caught.value.message


def test_words_map_onto_the_node_values_whatever_their_case():
    assert build("text_to_video", "seedance_1_0_pro", options={"aspect_ratio": "auto", "resolution": "1080P"}
                 ).options == {"ratio": "adaptive", "resolution": "1080p"}
    assert build("edit_image", "gpt_image_2", image_count=1, options={"resolution": "2K"}).options == {
        "resolution": "2k"}
    assert build("image_to_video", "kling_2_6", image_count=1, options={"duration": 10, "audio": True}).options == {
        "duration": 10, "sound": True}
    assert build("edit_image", "kling_2", image_count=1, options={"resolution": "1k"}).options == {
        "resolution": "1K"}


def test_fixed_slots_and_dynamic_inputs_get_one_loader_per_image():
    fixed = build("edit_image", "nanobanana", image_count=3)
    main = fixed.graph["1"]["inputs"]
    assert [main[n] for n in ("image", "image2", "image3")] == [[i, 0] for i in fixed.image_nodes]
    assert "image4" not in main
    dynamic = build("edit_image", "nanobanana_2", image_count=3)
    main = dynamic.graph["1"]["inputs"]
    assert [main[n] for n in ("images", "image_2", "image_3")] == [[i, 0] for i in dynamic.image_nodes]
    assert main["inputcount"] == 3
    assert {dynamic.graph[i]["class_type"] for i in dynamic.image_nodes} == {"LoadImage"}
    assert len(set(dynamic.image_nodes)) == 3


# ---- the YAML follows the catalogue ----------------------------------------------------------------

def _params(tool):
    return {p["name"]: p for p in yaml.safe_load((ROOT / f"tools/{tool}.yaml").read_text(encoding="utf-8"))[
        "parameters"]}


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_the_model_choice_is_the_catalogue_with_its_default(tool):
    params = _params(tool)
    assert [o["value"] for o in params["model"]["options"]] == list(catalogue()[tool].models)
    assert params["model"]["default"] == catalogue()[tool].default


@pytest.mark.parametrize("tool", TOOL_NAMES)
@pytest.mark.parametrize("option", ["aspect_ratio", "resolution"])
def test_the_option_choices_are_every_value_some_model_takes(tool, option):
    offered = {str(o["value"]).lower() for o in _params(tool)[option]["options"]}
    values = set()
    for m in catalogue()[tool].models.values():
        spec = m.options.get(option)
        if spec and spec.kind == "size":
            values |= {(a if option == "aspect_ratio" else t).lower() for a, tiers in spec.table.items() for t in tiers}
        elif spec:
            reverse = {v.lower(): k.lower() for k, v in spec.aliases.items()}
            values |= {reverse.get(str(v).lower(), str(v).lower()) for v in spec.values}
    if option == "resolution":
        values.discard("auto")          # empty is the model's default ("auto" where the node has it)
    assert offered == values


# ---- on the BizyAir test server ---------------------------------------------------------------------

def png(width, height, rgb=(200, 40, 40)):
    return media.png(width, height, rgb)


def run_model(comfy, tool, key, *, images=None, options=None, prompt="a red fox in snow", **kw):
    images = images if images is not None else [("in.png", png(640, 480))] * images_for(tool, key)
    built = build(tool, key, image_count=len(images), options=options or {})
    request = RunRequest(workflow=built.graph, prompt=prompt, prompt_node=built.prompt_node, images=images,
                         image_nodes=built.image_nodes, timeout=30, **kw)
    return Engine(parse_servers(comfy.url)).run(request)


@pytest.mark.parametrize("tool, key", MODELS)
def test_every_model_runs_on_the_bizyair_test_server(comfy_server, tool, key):
    result = run_model(comfy_server, tool, key)
    assert result.ok, result.error
    kinds = [(f.node_id, f.mime_type) for f in result.outputs]
    assert kinds == [("2", "image/png" if tool == "edit_image" else "video/mp4")]
    queued = comfy_server.queued_graph(result.prompt_id)
    assert queued["1"]["class_type"] == model(tool, key).class_type
    assert queued["1"]["inputs"]["prompt"] == "a red fox in snow"
    for name, value in model(tool, key).fixed.items():
        assert queued["1"]["inputs"][name] == value


def test_an_edit_gets_the_aspect_ratio_resolution_and_images_asked_for(comfy_server):
    inputs = [("a.png", png(640, 480)), ("b.png", png(300, 300, (0, 0, 255))), ("c.png", png(200, 100))]
    result = run_model(comfy_server, "edit_image", "nanobanana_2", images=inputs,
                       options={"aspect_ratio": "16:9", "resolution": "2K"})
    assert result.ok, result.error
    (out,) = result.outputs
    assert png_size(out.data) == (1280, 720)            # 2K is 1280 px on the simulated long side
    queued = comfy_server.queued_graph(result.prompt_id)["1"]["inputs"]
    assert (queued["aspect_ratio"], queued["resolution"], queued["inputcount"]) == ("16:9", "2K", 3)
    assert [k for k in ("images", "image_2", "image_3") if isinstance(queued.get(k), list)] == [
        "images", "image_2", "image_3"]


def test_auto_keeps_the_shape_of_the_first_image(comfy_server):
    result = run_model(comfy_server, "edit_image", "nanobanana", images=[("a.png", png(600, 900))],
                       options={"aspect_ratio": "auto"})
    (out,) = result.outputs
    assert png_size(out.data) == (683, 1024)


def test_a_count_makes_that_many_images(comfy_server):
    result = run_model(comfy_server, "edit_image", "gpt_image_1", options={"count": 2, "aspect_ratio": "3:2"})
    assert result.ok, result.error
    assert [png_size(f.data) for f in result.outputs] == [(1024, 683)] * 2


def test_a_video_gets_the_duration_and_aspect_ratio_asked_for(comfy_server):
    result = run_model(comfy_server, "text_to_video", "kling_3_0_std", options={"duration": 7, "aspect_ratio": "9:16"})
    assert result.ok, result.error
    (out,) = result.outputs
    assert out.mime_type == "video/mp4" and mp4_facts(out.data) == (720, 1280, 7.0)


def test_a_size_list_is_picked_by_aspect_ratio_and_resolution_together(comfy_server):
    result = run_model(comfy_server, "text_to_video", "wan_2_6", options={"aspect_ratio": "3:4", "resolution": "720p"})
    assert result.ok, result.error
    assert comfy_server.queued_graph(result.prompt_id)["1"]["inputs"]["size"] == "832*1088"
    assert mp4_facts(result.outputs[0].data) == (832, 1088, 5.0)
    assert build("text_to_video", "wan_2_5", options={"aspect_ratio": "9:16"}).options == {"size": "1080*1920"}
    with pytest.raises(InputError) as caught:
        build("text_to_video", "wan_2_5", options={"aspect_ratio": "4:3", "resolution": "480P"})
    assert "Parameter 'resolution': '480P' is not accepted by model 'wan_2_5'" in caught.value.message
    assert "4:3 at 720P, 1080P" in caught.value.message


def test_an_image_to_video_follows_the_first_frame_when_adaptive(comfy_server):
    result = run_model(comfy_server, "image_to_video", "seedance_1_0_pro", images=[("f.png", png(640, 480))],
                       options={"aspect_ratio": "auto", "resolution": "480p", "duration": 4})
    assert result.ok, result.error
    (out,) = result.outputs
    assert mp4_facts(out.data) == (640, 480, 4.0)
    assert comfy_server.queued_graph(result.prompt_id)["1"]["inputs"]["ratio"] == "adaptive"


@pytest.mark.parametrize("kind, english, chinese, code", [
    ("moderation", "content moderation rejected", "内容审核", 20021),
    ("balance", "insufficient balance", "余额不足", 20049),
    ("timeout", "stopped answering", "停止响应", None),
])
def test_a_cloud_failure_names_the_model_and_says_what_to_do(comfy_server, kind, english, chinese, code):
    comfy_server.config(bizyair_api_errors={"BizyAir_Kling_2_6_T2V_API": kind})
    result = run_model(comfy_server, "text_to_video", "kling_2_6")
    assert result.ending == "error" and result.outputs == []
    assert "kling_2_6: Kling 2.6" in result.error.message and english in result.error.message
    assert chinese in result.error.message_zh
    assert result.error.detail.get("error_code") == code
    other = run_model(comfy_server, "text_to_video", "wan_2_7")      # only that model's cloud fails
    assert other.ok, other.error


@pytest.mark.parametrize("readme", ["README.md", "readme/README_zh_Hans.md"])
def test_both_readmes_list_every_model_with_its_node_class(readme):
    rows = [line for line in (ROOT / readme).read_text(encoding="utf-8").split("\n") if line.startswith("| `")]
    for tool, key in MODELS:
        m = model(tool, key)
        assert any(row.startswith(f"| `{key}`") and f"`{m.class_type}`" in row for row in rows), (readme, key)

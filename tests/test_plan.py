"""Building the graph to queue: every edit on a copy, recorded, and every problem raised first."""

import copy
import json
from pathlib import Path

import pytest

from comfyui_bridge.builtin import BUILTIN_MODELS, apply_size, find_size_node, load_builtin
from comfyui_bridge.errors import InputError
from comfyui_bridge.images import find_image_slots
from comfyui_bridge.models import RunRequest
from comfyui_bridge.nodeinfo import NodeInfo
from comfyui_bridge.plan import FIXED_SEED_NOTE, build_plan, inspect_workflow

FIX = Path(__file__).parent / "fixtures"
INFO = NodeInfo()


def load(rel: str) -> dict:
    return json.loads((FIX / rel).read_text(encoding="utf-8"))


def request(graph, **kw) -> RunRequest:
    return RunRequest(workflow=graph, **kw)


def roles(plan) -> list[tuple]:
    return [(c.node_id, c.input_name, c.role) for c in plan.changes]


# ---------------------------------------------------------------- the whole plan

def test_prompt_negative_seed_and_override_on_a_copy():
    g = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    before = copy.deepcopy(g)
    plan = build_plan(g, request(g, prompt="a red fox", negative_prompt="blurry", overrides={"3.steps": 25}), INFO)
    assert g == before
    assert plan.graph["6"]["inputs"]["text"] == "a red fox" and plan.graph["7"]["inputs"]["text"] == "blurry"
    assert plan.graph["3"]["inputs"]["steps"] == 25
    assert roles(plan) == [("6", "text", "prompt"), ("7", "text", "negative"), ("3", "seed", "seed"),
                           ("3", "steps", "override")]
    assert plan.seeds() == {"3.seed": plan.graph["3"]["inputs"]["seed"]}
    assert plan.warnings == []


def test_multi_field_encoder_gets_the_prompt_in_every_field():
    g = load("workflows/bizyair/flux_dev_custom_sampler_txt2img_api.json")
    plan = build_plan(g, request(g, prompt="a cake"), INFO)
    assert plan.graph["37"]["inputs"]["clip_l"] == plan.graph["37"]["inputs"]["t5xxl"] == "a cake"


def test_empty_prompt_leaves_the_workflow_text():
    g = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    plan = build_plan(g, request(g), INFO)
    assert plan.graph["6"]["inputs"]["text"] == g["6"]["inputs"]["text"]
    assert [c.role for c in plan.changes] == ["seed"]


def test_prompt_without_target_runs_as_is_with_a_warning():
    g = load("workflows/load_scale_save.json")
    plan = build_plan(g, request(g, prompt="ignored"), INFO)
    assert "The prompt was not used" in plan.warnings[0]
    assert plan.graph == g


def test_negative_without_target_is_a_warning():
    g = load("workflows/bizyair/flux_dev_custom_sampler_txt2img_api.json")
    plan = build_plan(g, request(g, prompt="a", negative_prompt="b"), INFO)
    assert any("negative prompt was not used" in w for w in plan.warnings)


def test_ambiguous_prompt_is_an_error_before_anything_changes():
    g = load("corpus/sd15/salad_sd15_parallel_2.json")
    g["30"]["inputs"]["text"] = "something else"
    with pytest.raises(InputError) as err:
        build_plan(g, request(g, prompt="x"), INFO)
    assert "prompt_node" in err.value.message
    plan = build_plan(g, request(g, prompt="x", prompt_node="30"), INFO)
    assert plan.graph["30"]["inputs"]["text"] == "x" and plan.graph["22"]["inputs"]["text"] == "a beautiful girl"


def test_fixed_seed_warns_about_caches():
    g = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    plan = build_plan(g, request(g, seed=1234), INFO)
    assert plan.graph["3"]["inputs"]["seed"] == 1234 and plan.seeds() == {"3.seed": 1234}
    assert FIXED_SEED_NOTE in plan.warnings
    assert any("7 days" in w for w in plan.warnings)  # BizyAir's own result cache


def test_fixed_seed_on_plain_comfyui_mentions_only_comfyuis_cache():
    g = {"1": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                                                   "scheduler": "normal", "denoise": 1.0}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    plan = build_plan(g, request(g, seed=9), INFO)
    assert FIXED_SEED_NOTE in plan.warnings and not any("7 days" in w for w in plan.warnings)


def test_seed_set_by_override_wins_and_warns():
    g = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    plan = build_plan(g, request(g, overrides={"3.seed": 77}), INFO)
    assert plan.graph["3"]["inputs"]["seed"] == 77
    assert ("3", "seed", "seed") not in roles(plan) and FIXED_SEED_NOTE in plan.warnings


def test_seed_given_to_a_workflow_without_seeds():
    g = load("workflows/empty_save_1024.json")
    assert "no seed input" in build_plan(g, request(g, seed=5), INFO).warnings[0]


def test_bad_override_fails_the_whole_plan():
    g = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    with pytest.raises(InputError):
        build_plan(g, request(g, prompt="x", overrides={"3.sampler_name": "nope"}), INFO)


def test_deprecated_bizyair_nodes_are_warned_once_per_class():
    g = load("workflows/bizyair/kolors_txt2img_api.json")
    warnings = build_plan(g, request(g, prompt="x"), INFO).warnings
    deprecated = [w for w in warnings if "deprecated" in w]
    assert len(deprecated) == 1 and "80, 81" in deprecated[0] and "BizyAirPlus" in deprecated[0]


# ---------------------------------------------------------------- images

def two_loaders() -> dict:
    g = load("workflows/load_scale_save.json")
    g["10"] = {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "alpha"}}
    g["4"] = {"class_type": "LoadImageOutput", "inputs": {"image": "old.png"}}   # reads output/: not a slot
    return g


def test_images_go_to_loaders_in_numeric_id_order():
    g = two_loaders()
    assert [(s.node_id, s.input) for s in find_image_slots(g, INFO)] == [("1", "image"), ("10", "image")]
    plan = build_plan(g, request(g, images=[("a.png", b"1"), ("b.png", b"2")]), INFO, ["dify_a.png", "dify_b.png"])
    assert plan.graph["1"]["inputs"]["image"] == "dify_a.png" and plan.graph["10"]["inputs"]["image"] == "dify_b.png"
    assert [c.role for c in plan.changes if c.role == "image"] == ["image", "image"]


def test_images_follow_an_explicit_order():
    g = two_loaders()
    plan = build_plan(g, request(g, images=[("a", b""), ("b", b"")], image_nodes=["10", "1"]), INFO, ["x.png", "y.png"])
    assert plan.graph["10"]["inputs"]["image"] == "x.png" and plan.graph["1"]["inputs"]["image"] == "y.png"


def test_fewer_images_than_loaders_is_a_warning():
    g = two_loaders()
    plan = build_plan(g, request(g, images=[("a", b"")]), INFO, ["x.png"])
    assert plan.graph["10"]["inputs"]["image"] == "mask.png"
    assert any("keep the file" in w and "10" in w for w in plan.warnings)


def test_more_images_than_loaders_is_an_error_before_upload():
    g = two_loaders()
    with pytest.raises(InputError) as err:
        build_plan(g, request(g, images=[("a", b"")] * 3), INFO, ["pending_0.png"] * 3)
    assert "only 2 LoadImage" in err.value.message


def test_images_without_any_loader_is_an_error():
    g = load("workflows/empty_save_1024.json")
    with pytest.raises(InputError) as err:
        build_plan(g, request(g, images=[("a", b"")]), INFO, ["pending_0.png"])
    assert "no LoadImage" in err.value.message


def test_explicit_image_node_that_is_not_a_loader_is_refused():
    g = two_loaders()
    with pytest.raises(InputError) as err:
        build_plan(g, request(g, images=[("a", b"")], image_nodes=["3"]), INFO, ["x.png"])
    assert "does not load an uploaded image" in err.value.message


# ---------------------------------------------------------------- inspect

def test_inspect_api_workflow():
    out = inspect_workflow(load("workflows/bizyair/sdxl_ksampler_txt2img_api.json"), INFO)
    assert out == {"format": "api", "positive": ["6", "text"], "positive_all": [["6", "text"]],
                   "negative": ["7", "text"], "seeds": [["3", "seed"]], "images": [], "outputs": ["9"],
                   "warnings": []}


def test_inspect_ui_workflow_and_multi_field():
    out = inspect_workflow(load("workflows/ui-format/bizyair_kolors_txt2img.json"), INFO)
    assert out["format"] == "ui" and out["positive"] == ["80", "text"] and out["outputs"] == ["86"]
    flux = inspect_workflow(load("workflows/bizyair/flux_dev_custom_sampler_txt2img_api.json"), INFO)
    assert flux["positive"] == ["37", "clip_l"] and flux["positive_all"] == [["37", "clip_l"], ["37", "t5xxl"]]
    assert flux["negative"] is None and flux["seeds"] == [["59", "noise_seed"]]


def test_inspect_reports_ambiguity_instead_of_raising():
    g = load("corpus/sd15/salad_sd15_parallel_2.json")
    g["30"]["inputs"]["text"] = "something else"
    out = inspect_workflow(g, INFO)
    assert out["positive"] is None and any("prompt_node" in w for w in out["warnings"])


def test_inspect_images_and_bytes_input():
    out = inspect_workflow((FIX / "workflows/load_scale_save.json").read_bytes(), INFO)
    assert out["images"] == ["1"] and out["positive"] is None and out["outputs"] == ["3"]


# ---------------------------------------------------------------- built-in workflows

@pytest.mark.parametrize("model", list(BUILTIN_MODELS))
def test_builtin_workflows_load_and_have_a_size_node_and_a_prompt(model):
    g = load_builtin(model)
    size = find_size_node(g, INFO)
    assert size is not None and g[size]["class_type"] == "EmptyLatentImage"
    assert inspect_workflow(g, INFO)["positive"] is not None
    assert load_builtin(model) is not load_builtin(model)


def test_apply_size_checks_bounds():
    g = load_builtin("sdxl")
    changes = apply_size(g, 832, 1216, INFO)
    assert g["5"]["inputs"]["width"] == 832 and g["5"]["inputs"]["height"] == 1216 and len(changes) == 2
    with pytest.raises(InputError):
        apply_size(g, 100000, 512, INFO)


def test_unknown_builtin_model():
    with pytest.raises(InputError) as err:
        load_builtin("sd9")
    assert "sdxl" in err.value.message

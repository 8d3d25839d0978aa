"""Seeds: fresh per run within each node's bounds, or the user's fixed value checked against them."""

import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import InputError
from comfyui_bridge.nodeinfo import NodeInfo
from comfyui_bridge.seeds import JSON_SAFE_MAX, UNKNOWN_MAX, apply_seeds, find_seed_slots

FIX = Path(__file__).parent / "fixtures"
INFO = NodeInfo()


def load(rel: str) -> dict:
    return json.loads((FIX / rel).read_text(encoding="utf-8"))


def node(cls: str, **inputs) -> dict:
    return {"class_type": cls, "inputs": inputs}


def test_seed_and_noise_seed_are_found_with_their_bounds():
    slots = find_seed_slots(load("workflows/bizyair/flux_dev_custom_sampler_txt2img_api.json"), INFO)
    assert [(s.node_id, s.input, s.min, s.max) for s in slots] == [("59", "noise_seed", 0, 2 ** 64 - 1)]
    slots = find_seed_slots(load("workflows/bizyair/nanobanana_txt2img_api.json"), INFO)
    assert [(s.node_id, s.input, s.max) for s in slots] == [("1", "seed", 2 ** 31 - 1)]


def test_wired_seeds_are_left_to_their_source():
    g = {"1": node("PrimitiveInt", value=5),
         "2": node("KSampler", seed=["1", 0], steps=20)}
    slots = find_seed_slots(g, INFO)
    assert [(s.node_id, s.input) for s in slots] == [("1", "value")]   # PrimitiveInt.value has control_after_generate


@pytest.mark.parametrize("placeholder", ["__RANDOM_INT__", "{{seed}}", "randomize", "100", ""])
def test_a_placeholder_string_in_a_seed_input_is_a_seed_and_gets_a_number(placeholder):
    g = {"1": node("RandomNoise", noise_seed=placeholder),
         "2": node("MyTemplatedSampler", seed=placeholder, steps="{{steps}}")}
    slots = find_seed_slots(g, INFO)
    assert [(s.node_id, s.input) for s in slots] == [("1", "noise_seed"), ("2", "seed")]
    apply_seeds(g, INFO)
    assert isinstance(g["1"]["inputs"]["noise_seed"], int) and isinstance(g["2"]["inputs"]["seed"], int)
    assert g["2"]["inputs"]["steps"] == "{{steps}}"       # other placeholders are not seeds


def test_a_placeholder_alone_in_a_list_is_a_seed_but_a_link_is_not():
    g = {"1": node("KSampler", seed=["randomize"], steps=20),
         "2": node("PrimitiveInt", value=5),
         "3": node("KSampler", seed=["2", 0], steps=20)}
    assert [(s.node_id, s.input) for s in find_seed_slots(g, INFO)] == [("1", "seed"), ("2", "value")]
    apply_seeds(g, INFO)
    assert isinstance(g["1"]["inputs"]["seed"], int) and g["3"]["inputs"]["seed"] == ["2", 0]


def test_strings_in_inputs_that_are_not_seeds_stay():
    g = {"1": node("CLIPTextEncode", text="__RANDOM_INT__"), "2": node("MyNode", seed_mode="randomize")}
    assert find_seed_slots(g, INFO) == []


def test_an_integer_constant_that_only_feeds_seeds_is_the_seed():
    g = {"1": node("INTConstant", value=8888888),
         "2": node("KSamplerAdvanced", noise_seed=["1", 0], steps=["3", 0]),
         "3": node("INTConstant", value=8),                     # feeds steps: not a seed
         "4": node("KSamplerAdvanced", noise_seed=["1", 0], steps=["3", 0]),
         "5": node("Int-🔬", value=438582246789955),
         "6": node("KSampler", seed=["5", 0], steps=20)}
    assert [(s.node_id, s.input) for s in find_seed_slots(g, INFO)] == [("1", "value"), ("5", "value")]


def test_seed_nodes_of_custom_packs_keep_their_bounds():
    # rgthree's Seed node accepts -1125899906842624..1125899906842624 (pack definition): a random seed
    # stays non-negative and within that maximum.
    slots = find_seed_slots({"1": node("Seed (rgthree)", seed=5)}, INFO)
    assert [(s.node_id, s.input, s.min, s.max) for s in slots] == [("1", "seed", -1125899906842624,
                                                                     1125899906842624)]
    for _ in range(20):
        g = {"1": node("Seed (rgthree)", seed=5)}
        apply_seeds(g, INFO)
        assert 0 <= g["1"]["inputs"]["seed"] <= 1125899906842624


def test_an_int_primitive_is_a_seed_only_when_it_feeds_one():
    g = {"1": node("PrimitiveInt", value=512),
         "2": node("EmptyLatentImage", width=["1", 0], height=512, batch_size=1)}
    assert find_seed_slots(g, INFO) == []
    assert apply_seeds(g, INFO) == [] and g["1"]["inputs"]["value"] == 512


def test_random_seeds_change_every_run_and_stay_in_bounds():
    g = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    seen = set()
    for _ in range(20):
        graph = json.loads(json.dumps(g))
        changes = apply_seeds(graph, INFO)
        assert [(c.node_id, c.input_name, c.role) for c in changes] == [("3", "seed", "seed")]
        value = graph["3"]["inputs"]["seed"]
        assert 0 <= value <= JSON_SAFE_MAX and value == changes[0].value
        seen.add(value)
    assert len(seen) > 15


@pytest.mark.parametrize("cls,hi", [("BizyAir_NanoBanana", 2 ** 31 - 1), ("BizyAir_CogView4_6B_Pipe", int(1e14)),
                                    ("BizyAir_Wan_ImageToVideoPipeline", 2 ** 32 - 1)])
def test_random_seed_respects_small_maxima(cls, hi):
    for _ in range(50):
        g = {"1": node(cls, seed=0)}
        apply_seeds(g, INFO)
        assert 0 <= g["1"]["inputs"]["seed"] <= hi


def test_minus_one_means_random_is_replaced_by_a_real_non_negative_seed():
    # Seedance: min -1 ("random on the cloud"); we pick the seed so it can be reported.
    slots = find_seed_slots({"1": node("BizyAir_Seedance_1_0_T2V_API", seed=-1)}, INFO)
    assert slots[0].min == -1
    for _ in range(50):
        g = {"1": node("BizyAir_Seedance_1_0_T2V_API", seed=-1)}
        apply_seeds(g, INFO)
        assert g["1"]["inputs"]["seed"] >= 0


def test_unknown_nodes_get_a_conservative_seed():
    for _ in range(50):
        g = {"1": node("SomeCustomSampler", seed=123)}
        apply_seeds(g, INFO)
        assert 0 <= g["1"]["inputs"]["seed"] <= UNKNOWN_MAX


def test_fixed_seed_is_used_everywhere():
    g = load("corpus/sd15/salad_sd15_parallel_2.json")
    changes = apply_seeds(g, INFO, fixed=42)
    assert {c.value for c in changes} == {42} and len(changes) == 2
    assert g["24"]["inputs"]["seed"] == g["27"]["inputs"]["seed"] == 42


def test_fixed_seed_out_of_a_nodes_range_is_refused_before_any_change():
    g = {"1": node("KSampler", seed=7), "2": node("BizyAir_NanoBanana", seed=8)}
    with pytest.raises(InputError) as info:
        apply_seeds(g, INFO, fixed=2 ** 31)
    msg = info.value.message
    assert "out of range" in msg and "2 (BizyAir_NanoBanana).seed" in msg and "0..2147483647" in msg
    assert g["1"]["inputs"]["seed"] == 7


@pytest.mark.parametrize("bad", [-1, -5, "abc", 1.5, True])
def test_bad_fixed_seeds_are_refused(bad):
    with pytest.raises(InputError):
        apply_seeds({"1": node("KSampler", seed=7)}, INFO, fixed=bad)


def test_fixed_seed_given_as_text_is_accepted():
    g = {"1": node("KSampler", seed=7)}
    apply_seeds(g, INFO, fixed="123")
    assert g["1"]["inputs"]["seed"] == 123


def test_skipped_inputs_are_untouched():
    g = {"1": node("KSampler", seed=7)}
    assert apply_seeds(g, INFO, skip={("1", "seed")}) == []
    assert g["1"]["inputs"]["seed"] == 7

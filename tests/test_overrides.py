"""Overrides: every key and value checked against the node definitions before anything changes."""

import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import InputError
from comfyui_bridge.nodeinfo import LIVE_CACHE, NodeInfo
from comfyui_bridge.overrides import apply_overrides, parse_overrides

FIX = Path(__file__).parent / "fixtures"
INFO = NodeInfo()


def sdxl() -> dict:
    return json.loads((FIX / "workflows/bizyair/sdxl_ksampler_txt2img_api.json").read_text(encoding="utf-8"))


def refuse(overrides, graph=None, info=INFO) -> str:
    with pytest.raises(InputError) as err:
        parse_overrides(graph or sdxl(), info, overrides)
    return err.value.message


def test_overrides_by_id_title_and_class_are_applied_and_reported():
    g = sdxl()
    parsed = parse_overrides(g, INFO, {"3.steps": 30, "Empty Latent Image.width": 768, "SaveImage.filename_prefix": "x",
                                       "KSampler.cfg": 6.5})
    changes = apply_overrides(g, parsed)
    assert g["3"]["inputs"]["steps"] == 30 and g["5"]["inputs"]["width"] == 768
    assert g["9"]["inputs"]["filename_prefix"] == "x" and g["3"]["inputs"]["cfg"] == 6.5
    assert [(c.node_id, c.input_name, c.role) for c in changes][0] == ("3", "steps", "override")


def test_overrides_as_json_text():
    parsed = parse_overrides(sdxl(), INFO, '{"3.denoise": 0.5}')
    assert parsed[0].value == 0.5


def test_parse_does_not_change_the_graph():
    g = sdxl()
    parse_overrides(g, INFO, {"3.steps": 30})
    assert g["3"]["inputs"]["steps"] == 20


def test_integral_float_for_an_int_is_accepted_as_int():
    assert parse_overrides(sdxl(), INFO, {"3.steps": 30.0})[0].value == 30


def test_optional_input_missing_from_the_graph_can_be_set():
    g = {"1": {"class_type": "CLIPLoader", "inputs": {"clip_name": "t5.safetensors", "type": "wan"}}}
    assert parse_overrides(g, INFO, {"1.device": "cpu"})[0].value == "cpu"


def test_unknown_node():
    assert "No node matches" in refuse({"Upscaler.scale": 2})


def test_key_without_input():
    assert "names a node but no input" in refuse({"3": 5})


def test_unknown_input_suggests_close_names():
    msg = refuse({"3.step": 30})
    assert 'has no input "step"' in msg and "steps" in msg


@pytest.mark.parametrize("key,value,words", [
    ("3.steps", "30", "whole number"),
    ("3.steps", True, "whole number"),
    ("3.cfg", "high", "a number"),
    ("9.filename_prefix", 5, "text"),
    ("1.character_consistency", "yes", "true or false"),
])
def test_wrong_types(key, value, words):
    g = sdxl()
    g["1"] = {"class_type": "BizyAir_NanoBanana", "inputs": {"prompt": "x", "character_consistency": True}}
    assert words in refuse({key: value}, g)


def test_out_of_range():
    assert "above the maximum 1.0" in refuse({"3.denoise": 1.5})
    assert "below the minimum 1" in refuse({"3.steps": 0})
    # BizyAir caps steps at 50 where native KSampler allows 10000.
    assert "above the maximum 50" in refuse({"3.steps": 60})


def test_combo_value_not_in_list_shows_choices():
    msg = refuse({"3.sampler_name": "eulr"})
    assert "'euler'" in msg and "not one of the" in msg


def test_combo_with_open_list_accepts_any_name():
    assert parse_overrides(sdxl(), INFO, {"4.ckpt_name": "sdxl/other.safetensors"})[0].value == "sdxl/other.safetensors"


def test_live_combo_list_wins_when_the_server_describes_the_class():
    LIVE_CACHE.clear()

    def fetch(cls):
        if cls == "SaveImage":
            return None
        return {"input": {"required": {"sampler_name": [["euler", "my_new_sampler"]],
                                       "steps": ["INT", {"min": 1, "max": 99}]}},
                "output": ["LATENT"]}

    info = NodeInfo(fetch=fetch, server="test-overrides")
    assert parse_overrides(sdxl(), info, {"3.sampler_name": "my_new_sampler"})[0].value == "my_new_sampler"
    LIVE_CACHE.clear()


def test_link_is_not_overwritten_by_a_value():
    msg = refuse({"3.positive": "a cat"})
    assert "connected to node 6" in msg


def test_link_can_be_rewired_with_a_link():
    g = sdxl()
    parsed = parse_overrides(g, INFO, {"3.positive": ["7", 0]})
    apply_overrides(g, parsed)
    assert g["3"]["inputs"]["positive"] == ["7", 0]


def test_link_to_a_wrong_type_or_slot_is_refused():
    assert "takes BIZYAIR_CONDITIONING" in refuse({"3.positive": ["5", 0]})
    assert "no output slot 3" in refuse({"3.positive": ["6", 3]})
    assert "not in the workflow" in refuse({"3.positive": ["77", 0]})


def test_value_on_a_connection_type_is_refused():
    g = sdxl()
    del g["3"]["inputs"]["model"]
    assert "takes a connection" in refuse({"3.model": "x"}, g)


def test_unknown_class_allows_existing_inputs_of_the_same_kind():
    g = {"1": {"class_type": "MyNode", "inputs": {"strength": 0.5, "name": "a"}}}
    assert parse_overrides(g, INFO, {"1.strength": 1})[0].value == 1
    assert "takes a number" in refuse({"1.strength": "x"}, g)
    assert "no input" in refuse({"1.other": 1}, g)


def test_two_keys_for_the_same_input_are_refused():
    assert "both set 3.steps" in refuse({"3.steps": 30, "KSampler.steps": 31})


@pytest.mark.parametrize("bad, words", [
    ("[1, 2]", "must be a JSON object"),
    ("not json", "not valid JSON (Expecting value at line 1, column 1)"),
    (5, "must be a JSON object"),
    ('{"3.steps": 30', "not valid JSON"),
    ("[" * 100_000, "nested more than 16 levels"),
    ({"3.steps": json.loads("[" * 17 + "1" + "]" * 17)}, "nested more than 16 levels"),
    ('{"3.steps": ' + "1" * 5000 + "}", "not valid JSON"),
    ("{" + ", ".join(f'"3.k{i}": 1' for i in range(201)) + "}", "Too many overrides (201; at most 200)"),
    ({"x" * 301 + ".steps": 1}, "is not a \"<node>.<input>\" name"),
])
def test_malformed_overrides_say_what_is_wrong(bad, words):
    assert words in refuse(bad)


@pytest.mark.parametrize("key, value, words", [
    ("3.cfg", float("nan"), "not a number ComfyUI can use"),
    ("3.cfg", float("inf"), "not a number ComfyUI can use"),
    ("3.steps", 2 ** 70, "too large"),
    ("3.sampler_name", float("-inf"), "not a number ComfyUI can use"),
])
def test_nan_infinities_and_huge_numbers_are_refused(key, value, words):
    assert words in refuse({key: value})


def test_an_undescribed_node_refuses_nan_too():
    g = {"1": {"class_type": "MyNode", "inputs": {"strength": 0.5}}}
    assert "not a number ComfyUI can use" in refuse({"1.strength": float("nan")}, g)


def test_hostile_values_are_quoted_short_and_checked_in_linear_time():
    msg = refuse({"3.sampler_name": "e" * 2_000_000})
    assert len(msg) < 1000 and "more characters" in msg
    msg = refuse({"3.positive": ["n" * 100_000, 0]})
    assert "not in the workflow" in msg and len(msg) < 1000
    assert "does not exist" in refuse({"3.positive": ["6", 10 ** 30]})

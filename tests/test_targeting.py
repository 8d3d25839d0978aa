"""Where the prompt and the negative prompt go: explicit specs, graph walking, and refusing to guess."""

import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import InputError
from comfyui_bridge.nodeinfo import LIVE_CACHE, NodeInfo
from comfyui_bridge.targeting import find_targets, negative_targets, prompt_targets

FIX = Path(__file__).parent / "fixtures"
INFO = NodeInfo()


def load(rel: str) -> dict:
    return json.loads((FIX / rel).read_text(encoding="utf-8"))


def n(cls: str, title: str = "", **inputs) -> dict:
    node = {"class_type": cls, "inputs": inputs}
    if title:
        node["_meta"] = {"title": title}
    return node


def sd15(pos="a cat", neg="blurry") -> dict:
    return {
        "4": n("CheckpointLoaderSimple", ckpt_name="m.safetensors"),
        "5": n("EmptyLatentImage", width=512, height=512, batch_size=1),
        "6": n("CLIPTextEncode", "Positive", text=pos, clip=["4", 1]),
        "7": n("CLIPTextEncode", "Negative", text=neg, clip=["4", 1]),
        "3": n("KSampler", seed=1, steps=20, cfg=7, sampler_name="euler", scheduler="normal", denoise=1,
               model=["4", 0], positive=["6", 0], negative=["7", 0], latent_image=["5", 0]),
        "8": n("VAEDecode", samples=["3", 0], vae=["4", 2]),
        "9": n("SaveImage", filename_prefix="x", images=["8", 0]),
    }


def pairs(graph, **kw):
    a = find_targets(graph, INFO, **kw)
    return a.positive.pairs(), a.negative.pairs()


# ---------------------------------------------------------------- detection on real graphs

def test_ksampler_positive_and_negative():
    assert pairs(load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")) == ([["6", "text"]], [["7", "text"]])


def test_flux_encoder_fills_both_text_fields_and_has_no_negative():
    a = find_targets(load("workflows/bizyair/flux_dev_custom_sampler_txt2img_api.json"), INFO)
    assert a.positive.pairs() == [["37", "clip_l"], ["37", "t5xxl"]]
    assert "BizyAir_BasicGuider 47.conditioning ← 37 BizyAir_CLIPTextEncodeFlux" == a.positive.targets[0].why
    assert a.negative.pairs() == [] and "no sampler takes a negative" in a.negative.reason


def test_sdxl_encoder_fills_text_g_and_text_l():
    assert pairs(load("corpus/sdxl/salad_sdxl_img2img.json"))[0] == [["16", "text_g"], ["16", "text_l"]]


def test_negative_through_combine_and_timestep_ranges():
    # SD3.5: negative = Combine(TimestepRange(ZeroOut(71)), TimestepRange(71)) → 71
    assert pairs(load("corpus/sd3/salad_sd35_txt2img.json")) == ([["6", "text"]], [["71", "text"]])


def test_controlnet_outputs_map_positive_to_positive():
    graph = load("corpus/controlnet/serverco_instantid_controlnet.json")
    assert pairs(graph) == ([["39", "text"]], [["40", "text"]])


def test_zeroed_negative_is_no_target():
    a = find_targets(load("corpus/flux/dreamifly_flux_krea_zero_out_negative.json"), INFO)
    assert a.positive.pairs() == [["45", "text"]]
    assert not a.negative.targets and "zeroed out" in a.negative.reason


def test_api_node_without_sampler_takes_the_prompt():
    assert pairs(load("workflows/bizyair/nanobanana_txt2img_api.json"))[0] == [["1", "prompt"]]


def test_graph_without_text_has_no_target():
    a = find_targets(load("workflows/load_scale_save.json"), INFO)
    assert not a.positive.targets and not a.positive.error and a.positive.reason


# ---------------------------------------------------------------- detection rules on small graphs

def test_prompt_typed_in_a_string_primitive_is_targeted_there():
    g = sd15()
    g["10"] = n("PrimitiveStringMultiline", "Prompt", value="a dog")
    g["6"]["inputs"]["text"] = ["10", 0]
    pos, neg = pairs(g)
    assert pos == [["10", "value"]] and neg == [["7", "text"]]


def test_prompt_from_an_llm_node_goes_to_its_user_prompt():
    g = sd15()
    g["10"] = n("BizyAirSiliconCloudLLMAPI", model="m", system_prompt="be a prompt expert", user_prompt="cat",
                max_tokens=512, temperature=0.7)
    g["6"]["inputs"]["text"] = ["10", 0]
    assert pairs(g)[0] == [["10", "user_prompt"]]


def test_ace_step_prompt_goes_to_tags_not_lyrics():
    g = {"1": n("CheckpointLoaderSimple", ckpt_name="ace.safetensors"),
         "2": n("TextEncodeAceStepAudio", tags="pop", lyrics="la la", lyrics_strength=1.0, clip=["1", 1]),
         "3": n("EmptyAceStepLatentAudio", seconds=60, batch_size=1),
         "4": n("ConditioningZeroOut", conditioning=["2", 0]),
         "5": n("KSampler", seed=1, steps=50, cfg=5, sampler_name="euler", scheduler="simple", denoise=1,
                model=["1", 0], positive=["2", 0], negative=["4", 0], latent_image=["3", 0])}
    assert pairs(g) == ([["2", "tags"]], [])


def test_same_text_in_two_pipelines_fills_both():
    assert pairs(load("corpus/sd15/salad_sd15_parallel_2.json")) == (
        [["22", "text"], ["30", "text"]], [["23", "text"], ["31", "text"]])


def test_refiner_encoder_left_empty_is_not_filled():
    g = load("corpus/sdxl/mangaeditor_sdxl_refiner.json")
    g["40"]["inputs"]["text"] = ""
    assert pairs(g)[0] == [["30", "text_g"], ["30", "text_l"]]


def test_two_samplers_with_different_encoders_are_ambiguous():
    g = load("corpus/sd15/salad_sd15_parallel_2.json")
    g["30"]["inputs"]["text"] = "a different picture"
    a = find_targets(g, INFO)
    err = a.positive.error
    assert err is not None and not a.positive.targets
    assert '22 (CLIPTextEncode) "CLIP Text Encode (Prompt)"' in err.message
    assert "30 (CLIPTextEncode)" in err.message and "prompt_node" in err.message
    assert err.detail["candidates"] == [["22", ["text"]], ["30", ["text"]]]
    with pytest.raises(InputError):
        prompt_targets(g, INFO)


def test_combined_prompts_with_different_texts_are_ambiguous():
    g = sd15()
    g["10"] = n("CLIPTextEncode", "Background", text="a forest", clip=["4", 1])
    g["11"] = n("ConditioningCombine", conditioning_1=["6", 0], conditioning_2=["10", 0])
    g["3"]["inputs"]["positive"] = ["11", 0]
    assert find_targets(g, INFO).positive.error is not None


def test_several_api_nodes_without_sampler_are_ambiguous():
    g = load("workflows/bizyair/nanobanana_txt2img_api.json")
    g["3"] = json.loads(json.dumps(g["1"]))
    err = find_targets(g, INFO).positive.error
    assert err is not None and "1 (BizyAir_NanoBanana)" in err.message and "3 (BizyAir_NanoBanana)" in err.message


def test_api_node_with_a_negative_prompt_field():
    g = {"1": n("MyVideoAPI", prompt="a wave", negative_prompt="blur", seed=3),
         "2": n("SaveVideo", video=["1", 0], filename_prefix="v", format="auto", codec="auto")}
    assert pairs(g) == ([["1", "prompt"]], [["1", "negative_prompt"]])


def test_unknown_custom_nodes_work_by_name():
    g = sd15()
    g["6"]["class_type"] = "MyFancyTextEncode"          # no definition anywhere
    g["3"]["class_type"] = "MyFancySampler"
    assert pairs(g) == ([["6", "text"]], [["7", "text"]])


def test_unknown_custom_nodes_work_by_type_when_the_server_describes_them():
    LIVE_CACHE.clear()

    def fetch(cls):
        if cls == "StoryEncoder":   # a text input named unlike any prompt
            return {"input": {"required": {"clip": ["CLIP"], "story": ["STRING", {"multiline": True}],
                                           "strength": ["FLOAT", {"default": 1.0}]}}, "output": ["CONDITIONING"]}
        return None

    g = sd15()
    g["6"] = n("StoryEncoder", story="once upon a time", strength=1.0, clip=["4", 1])
    info = NodeInfo(fetch=fetch, server="test-story")
    assert find_targets(g, info).positive.pairs() == [["6", "story"]]
    LIVE_CACHE.clear()


# ---------------------------------------------------------------- explicit specs

@pytest.mark.parametrize("spec", ["6", "6.text", "positive", "POSITIVE.text"])
def test_explicit_prompt_node(spec):
    assert pairs(sd15(), prompt_node=spec)[0] == [["6", "text"]]


def test_explicit_spec_resolves_ambiguity():
    g = load("corpus/sd15/salad_sd15_parallel_2.json")
    g["30"]["inputs"]["text"] = "a different picture"
    assert prompt_targets(g, INFO, "30")[0].inputs == ("text",)


def test_explicit_negative_node():
    assert negative_targets(sd15(), INFO, "7")[0].node_id == "7"


def test_explicit_encoder_with_wired_text_follows_to_the_source():
    g = sd15()
    g["10"] = n("PrimitiveString", value="a dog")
    g["6"]["inputs"]["text"] = ["10", 0]
    assert pairs(g, prompt_node="6.text")[0] == [["10", "value"]]


def test_prompt_node_pointing_at_the_negative_encoder_leaves_no_negative():
    pos, neg = pairs(sd15(), prompt_node="7")
    assert pos == [["7", "text"]] and neg == []


def test_explicit_non_text_input_is_refused():
    with pytest.raises(InputError) as info:
        prompt_targets(sd15(), INFO, "3.steps")
    assert "INT input" in info.value.message


def test_explicit_node_without_text_is_refused_with_its_inputs():
    with pytest.raises(InputError) as info:
        prompt_targets(sd15(), INFO, "3")
    assert "no text input" in info.value.message and "steps" in info.value.message


def test_explicit_unknown_input_is_refused():
    with pytest.raises(InputError) as info:
        prompt_targets(sd15(), INFO, "6.prompt")
    assert 'no text input "prompt"' in info.value.message


def test_explicit_unknown_node_is_refused():
    with pytest.raises(InputError):
        prompt_targets(sd15(), INFO, "Nonexistent")

"""Where the prompt and the negative prompt go: explicit specs, graph walking, and refusing to guess."""

import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import InputError
from comfyui_bridge.nodeinfo import LIVE_CACHE, NodeInfo
from comfyui_bridge.targeting import find_targets
from comfyui_bridge.workflow import parse_workflow

FIX = Path(__file__).parent / "fixtures"
INFO = NodeInfo()


def prompt_targets(graph, nodeinfo, spec=""):
    """The prompt's targets; raises the InputError an ambiguous or wrong spec gets."""
    res = find_targets(graph, nodeinfo, prompt_node=spec).positive
    if res.error:
        raise res.error
    return res.targets


def negative_targets(graph, nodeinfo, spec=""):
    res = find_targets(graph, nodeinfo, negative_node=spec).negative
    if res.error:
        raise res.error
    return res.targets


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


def test_several_api_nodes_without_sampler_and_different_prompts_are_ambiguous():
    g = load("workflows/bizyair/nanobanana_txt2img_api.json")
    g["3"] = json.loads(json.dumps(g["1"]))
    g["3"]["inputs"]["prompt"] = "a lighthouse at night"
    g["4"] = n("SaveImage", filename_prefix="second", images=["3", 0])
    err = find_targets(g, INFO).positive.error
    assert err is not None and "1 (BizyAir_NanoBanana)" in err.message and "3 (BizyAir_NanoBanana)" in err.message


def test_an_api_node_nothing_reads_is_not_run_so_not_a_target():
    # ComfyUI runs only what an output node depends on: the copy feeding nothing never runs.
    g = load("workflows/bizyair/nanobanana_txt2img_api.json")
    g["3"] = json.loads(json.dumps(g["1"]))
    g["3"]["inputs"]["prompt"] = "a lighthouse at night"
    assert pairs(g)[0] == [["1", "prompt"]]


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


# ---------------------------------------------------------------- the failure classes of issue 14
# Every expectation below is read off the graph: which text reaches the sampler's positive input.

def test_unknown_video_sampler_with_hyvid_embeds_and_no_definitions():
    # No definition anywhere for these classes: the input name says conditioning, the encoder has a text
    # model wired in and a prompt; the template selector is not the prompt.
    g = {"1": n("MyHyLoader", model="hy.safetensors"),
         "2": n("MyHyTextEncoder", text_encoders=["1", 0], prompt="a fox running", prompt_template="video",
                force_offload=True),
         "3": n("MyHySampler", model=["1", 1], hyvid_embeds=["2", 0], width=512, height=320, steps=30, seed=5),
         "4": n("MyHyDecode", samples=["3", 0]),
         "5": n("SaveVideo", video=["4", 0], filename_prefix="v", format="auto", codec="auto")}
    a = find_targets(g, INFO)
    assert a.positive.pairs() == [["2", "prompt"]] and a.samplers == ["3"]
    assert a.negative.pairs() == []


@pytest.mark.parametrize("pos_name,neg_name", [("te_cond", "neg_conditioning"), ("text_embeds", "negative")])
def test_unknown_sampler_with_other_conditioning_input_names(pos_name, neg_name):
    g = sd15()
    g["3"] = n("MyOddSampler", seed=1, model=["4", 0], latent_image=["5", 0],
               **{pos_name: ["6", 0], neg_name: ["7", 0]})
    assert pairs(g) == ([["6", "text"]], [["7", "text"]])


def test_unknown_sampler_whose_text_is_computed_gets_no_target_not_a_text_like_widget():
    # The old fallback wrote the prompt into whatever looked like text: a template selector, a number kept
    # as text, a description. The walk ends in a captioner: the text is computed, so there is no target.
    g = {"1": n("LoadImage", image="in.png"),
         "2": n("MyCaptioner", image=["1", 0], model="blip", max_words="77", description="auto caption"),
         "3": n("MyT5Encoder", t5=["4", 0], prompt=["2", 0]),
         "4": n("MyT5Loader", name="t5.safetensors"),
         "5": n("MyVideoSampler", text_embeds=["3", 0], steps="20", style_template="cinematic", seed=1),
         "6": n("SaveVideo", video=["5", 0], filename_prefix="v", format="auto", codec="auto")}
    a = find_targets(g, INFO)
    assert not a.positive.targets and not a.positive.error
    assert "2 (MyCaptioner)" in a.positive.reason


def test_text_typed_in_a_node_whose_input_is_called_string():
    for cls in ("String Literal", "My String Node"):
        g = sd15()
        g["10"] = n(cls, "Positive prompt", string="a dog")
        g["6"]["inputs"]["text"] = ["10", 0]
        assert pairs(g)[0] == [["10", "string"]], cls


def test_no_sampler_at_all_means_no_prompt_target():
    # An upscaler with a text utility on the side: nothing makes the output from a prompt.
    g = {"1": n("LoadImage", image="in.png"),
         "2": n("UpscaleModelLoader", model_name="4x.pth"),
         "3": n("ImageUpscaleWithModel", upscale_model=["2", 0], image=["1", 0]),
         "4": n("SaveImage", filename_prefix="up", images=["3", 0]),
         "5": n("PrimitiveStringMultiline", "Notes", value="upscale 4x then save"),
         "6": n("MyFilenameMaker", text=["5", 0], suffix="_up")}
    a = find_targets(g, INFO)
    assert a.positive.pairs() == [] and not a.positive.error and "no sampler" in a.positive.reason


def test_segmentation_queries_are_not_prompt_targets():
    g = {"1": n("LoadImage", image="in.png"),
         "2": n("MySegmentAnything", image=["1", 0], prompt="shirt, pants", threshold=0.3),
         "3": n("MyTryOn", image=["1", 0], mask=["2", 1], steps=30, seed=4),
         "4": n("SaveImage", filename_prefix="x", images=["3", 0])}
    a = find_targets(g, INFO)
    assert a.positive.pairs() == [] and not a.positive.error


def test_positive_made_by_zeroing_the_negative_encoder_is_not_a_target():
    # KSampler.positive ← ConditioningZeroOut(7) and .negative ← 7: the prompt has nowhere to go; it must
    # not land in the negative encoder.
    g = sd15()
    g["11"] = n("ConditioningZeroOut", conditioning=["7", 0])
    g["3"]["inputs"]["positive"] = ["11", 0]
    del g["6"]
    a = find_targets(g, INFO)
    assert a.positive.pairs() == [] and not a.positive.error and "zeroed out" in a.positive.reason
    assert a.negative.pairs() == [["7", "text"]]


def test_any_type_switch_with_a_literal_selector_follows_the_chosen_branch():
    g = sd15()
    g["10"] = n("CLIPTextEncode", "Alt", text="a cat in the rain", clip=["4", 1])
    g["11"] = n("Switch any [Crystools]", on_true=["10", 0], on_false=["6", 0], boolean=True)
    g["3"]["inputs"]["positive"] = ["11", 0]
    assert pairs(g)[0] == [["10", "text"]]
    g["11"]["inputs"]["boolean"] = False
    assert pairs(g)[0] == [["6", "text"]]


def test_any_type_switch_without_a_literal_choice():
    g = sd15()
    g["10"] = n("CLIPTextEncode", "Alt", text="a cat in the rain", clip=["4", 1])
    g["12"] = n("PrimitiveBoolean", value=True)
    g["11"] = n("MyLazySwitch", switch=["12", 0], on_true=["10", 0], on_false=["6", 0])
    g["3"]["inputs"]["positive"] = ["11", 0]
    err = find_targets(g, INFO).positive.error
    assert err is not None and {c[0] for c in err.detail["candidates"]} == {"6", "10"}
    # Both branches from the same text (an optional enhancer around one prompt): no doubt.
    g["13"] = n("MyEnhancer", prompt=["14", 0], system_prompt="improve it", max_tokens=256)
    g["14"] = n("PrimitiveStringMultiline", value="a cat")
    g["6"]["inputs"]["text"] = ["13", 0]
    g["10"]["inputs"]["text"] = ["14", 0]
    assert pairs(g)[0] == [["14", "value"]]


def test_renamed_pass_through_inputs_keep_their_role():
    # A node without a definition takes positive_NEW/negative_NEW and gives positive/negative: the names'
    # role words, and how the sampler reads each output, map output to input.
    g = sd15()
    g["11"] = n("MyCondTweak", positive_NEW=["6", 0], negative_NEW=["7", 0], strength=0.5)
    g["3"]["inputs"]["positive"] = ["11", 0]
    g["3"]["inputs"]["negative"] = ["11", 1]
    assert pairs(g) == ([["6", "text"]], [["7", "text"]])


def test_styler_with_two_text_outputs_slot_0_positive_slot_1_negative():
    g = sd15()
    g["10"] = n("SDXLPromptStyler", text_positive="a castle", text_negative="blurry", style="base",
                log_prompt="No", style_positive=True, style_negative=True)
    g["6"]["inputs"]["text"] = ["10", 0]
    g["7"]["inputs"]["text"] = ["10", 1]
    assert pairs(g) == ([["10", "text_positive"]], [["10", "text_negative"]])


def test_loader_holding_both_prompts_as_widgets():
    # Efficient Loader (pack definition): positive/negative text widgets, CONDITIONING+ and CONDITIONING-
    # outputs read by KSampler (Efficient).
    g = {"1": n("Efficient Loader", ckpt_name="m.safetensors", vae_name="Baked VAE", clip_skip=-1,
                lora_name="None", lora_model_strength=1, lora_clip_strength=1, positive="a red car",
                negative="lowres", token_normalization="none",  # noqa: S106 - a node input, not a secret
                weight_interpretation="comfy",
                empty_latent_width=512, empty_latent_height=512, batch_size=1),
         "2": n("KSampler (Efficient)", seed=3, steps=20, cfg=7, sampler_name="euler", scheduler="normal",
                denoise=1, preview_method="none", vae_decode="true", model=["1", 0], positive=["1", 1],
                negative=["1", 2], latent_image=["1", 3], optional_vae=["1", 4]),
         "3": n("SaveImage", filename_prefix="x", images=["2", 5])}
    assert pairs(g) == ([["1", "positive"]], [["1", "negative"]])


def test_unknown_node_with_both_prompts_feeding_two_encoders_by_slot():
    g = sd15()
    g["10"] = n("MyPromptLoader", url="https://example.invalid/p", positive_prompt="a boat",
                negative_prompt="fog")
    g["6"]["inputs"]["text"] = ["10", 0]
    g["7"]["inputs"]["text"] = ["10", 1]
    assert pairs(g) == ([["10", "positive_prompt"]], [["10", "negative_prompt"]])


def test_encoder_holding_both_prompts_fed_to_a_role_less_input():
    # WanVideoTextEncode's one output carries both texts into WanVideoSampler.text_embeds.
    g = {"1": n("LoadWanVideoT5TextEncoder", model_name="t5.safetensors"),
         "2": n("WanVideoTextEncode", t5=["1", 0], positive_prompt="a dancer", negative_prompt="static"),
         "3": n("WanVideoSampler", text_embeds=["2", 0], steps=30, seed=1, model=["4", 0]),
         "4": n("WanVideoModelLoader", model="wan.safetensors"),
         "5": n("WanVideoDecode", samples=["3", 0]),
         "6": n("VHS_VideoCombine", images=["5", 0], frame_rate=16, filename_prefix="w")}
    assert pairs(g) == ([["2", "positive_prompt"]], [["2", "negative_prompt"]])


def test_prefix_template_fills_the_empty_encoder_not_the_prefix():
    g = sd15(pos="")
    g["10"] = n("CLIPTextEncode", "Prefix", text="natural light, advertising photo of a ", clip=["4", 1])
    g["11"] = n("ConditioningConcat", conditioning_to=["10", 0], conditioning_from=["6", 0])
    g["3"]["inputs"]["positive"] = ["11", 0]
    assert pairs(g)[0] == [["6", "text"]]


def test_titles_marking_fixed_parts_leave_the_prompt():
    g = sd15()
    g["10"] = n("CLIPTextEncode", "STYLE PROMPT", text="", clip=["4", 1])
    g["11"] = n("CLIPTextEncode", "LORA PROMPT", text="", clip=["4", 1])
    g["12"] = n("ImpactConcatConditionings", conditioning1=["6", 0], conditioning2=["10", 0],
                conditioning3=["11", 0])
    g["3"]["inputs"]["positive"] = ["12", 0]
    assert pairs(g)[0] == [["6", "text"]]


def test_prompt_assembled_from_several_typed_fragments_is_refused_with_them():
    g = sd15()
    g["10"] = n("Text Multiline", text="trigger word")
    g["11"] = n("Text Multiline", text="a girl by the window")
    g["12"] = n("Text Concatenate", delimiter=", ", clean_whitespace="true", text_a=["10", 0], text_b=["11", 0])
    g["6"]["inputs"]["text"] = ["12", 0]
    err = find_targets(g, INFO).positive.error
    assert err is not None and err.detail["candidates"] == [["10", ["text"]], ["11", ["text"]]]


def test_one_typed_text_next_to_computed_tags_is_the_target():
    g = sd15()
    g["10"] = n("LoadImage", image="face.png")
    g["11"] = n("WD14Tagger|pysssss", image=["10", 0], model="wd", threshold=0.35, character_threshold=0.85,
                replace_underscore=False, trailing_comma=False, exclude_tags="", tags="1girl, solo")
    g["12"] = n("Text _O", text="ID photo, looking at viewer")
    g["13"] = n("ConcatStringSingle", string_a=["12", 0], string_b=["11", 0])
    g["6"]["inputs"]["text"] = ["13", 0]
    assert pairs(g)[0] == [["12", "text"]]
    # Only the tagger: the text is computed, nothing to fill (its tags widget is a display, not an input).
    g["6"]["inputs"]["text"] = ["11", 0]
    a = find_targets(g, INFO)
    assert a.positive.pairs() == [] and not a.positive.error


def test_duplicated_pipelines_with_empty_prompts_fill_all_and_different_stages_refuse():
    g = load("corpus/sd15/salad_sd15_parallel_2.json")
    g["22"]["inputs"]["text"] = g["30"]["inputs"]["text"] = ""
    # Same negatives (both empty): the empty positives are one slot duplicated.
    assert pairs(g)[0] == [["22", "text"], ["30", "text"]]
    # Different negatives: two stages, two prompts.
    g["31"]["inputs"]["text"] = "desaturated"
    err = find_targets(g, INFO).positive.error
    assert err is not None and {c[0] for c in err.detail["candidates"]} == {"22", "30"}


def test_sampler_nothing_reads_does_not_count():
    g = sd15()
    g["10"] = n("CLIPTextEncode", text="something else", clip=["4", 1])
    g["11"] = n("KSampler", seed=1, steps=20, cfg=7, sampler_name="euler", scheduler="normal", denoise=1,
                model=["4", 0], positive=["10", 0], negative=["7", 0], latent_image=["5", 0])
    a = find_targets(g, INFO)
    assert a.positive.pairs() == [["6", "text"]] and a.samplers == ["3"]


def test_detailer_pipe_and_sdxl_tuple_are_followed_by_role():
    g = sd15()
    g["20"] = n("ToDetailerPipe", model=["4", 0], clip=["4", 1], vae=["4", 2], positive=["6", 0],
                negative=["7", 0], wildcard="", bbox_detector=["21", 0])
    g["21"] = n("UltralyticsDetectorProvider", model_name="bbox/face.pt")
    g["22"] = n("FaceDetailerPipe", image=["8", 0], detailer_pipe=["20", 0], seed=2, steps=20, cfg=7,
                sampler_name="euler", scheduler="normal", denoise=0.4)
    g["23"] = n("SaveImage", filename_prefix="fd", images=["22", 0])
    assert pairs(g) == ([["6", "text"]], [["7", "text"]])


def test_hostile_long_chain_is_bounded_and_does_not_recurse_deeply():
    g = sd15()
    prev = "6"
    for i in range(100, 3100):       # 3000 pass-through nodes between encoder and sampler
        g[str(i)] = n("ConditioningSetTimestepRange", conditioning=[prev, 0], start=0.0, end=1.0)
        prev = str(i)
    g["3"]["inputs"]["positive"] = [prev, 0]
    a = find_targets(g, INFO)            # must return (the walk stops after MAX_WALK steps)
    assert not a.positive.targets and not a.positive.error
    assert a.negative.pairs() == [["7", "text"]]


def test_many_samplers_sharing_encoders_are_walked_once_each():
    g = sd15()
    for i in range(100, 2100):
        g[str(i)] = n("KSampler", seed=i, steps=1, cfg=1, sampler_name="euler", scheduler="normal", denoise=1,
                      model=["4", 0], positive=["6", 0], negative=["7", 0], latent_image=["5", 0])
        g[f"s{i}"] = n("PreviewAny", source=[str(i), 0])
    assert pairs(g) == ([["6", "text"]], [["7", "text"]])


@pytest.mark.parametrize("wrap", [
    lambda g: {"input": {"workflow_json": g}},                    # RunPod-style body, object
    lambda g: {"input": {"workflow_json": json.dumps(g)}},        # ... or a JSON string
    lambda g: {"workflow_json": json.dumps(g)},                   # Dify's ComfyUI tool parameter
])
def test_enveloped_workflows_are_unwrapped_before_detection(wrap):
    graph = parse_workflow(json.dumps(wrap(sd15())).encode(), INFO).graph
    assert pairs(graph) == ([["6", "text"]], [["7", "text"]])


def test_an_envelope_holding_broken_json_is_refused_as_not_a_workflow():
    with pytest.raises(InputError):
        parse_workflow(json.dumps({"input": {"workflow_json": "{not json"}}).encode(), INFO)

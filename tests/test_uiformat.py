"""UI-format conversion: converted only when every value provably lands on the right input."""

import copy
import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import WorkflowFormatError
from comfyui_bridge.nodeinfo import COMBO, LIVE_CACHE, NodeInfo
from comfyui_bridge.uiformat import convert_ui_workflow
from comfyui_bridge.workflow import Workflow

FIX = Path(__file__).parent / "fixtures"
INFO = NodeInfo()
BIZYAIR_UI = sorted((FIX / "workflows/ui-format").glob("*.json"))


def load(rel: str) -> dict:
    return json.loads((FIX / rel).read_text(encoding="utf-8"))


def check_every_input(graph: dict, ui: dict) -> None:
    """Each input is one the definition lists; literals have its type; links point at existing nodes
    whose output type fits; every required input is present."""
    wf = Workflow(graph)
    for nid, node in graph.items():
        d = INFO.get(node["class_type"])
        assert d is not None, nid
        for name, value in node["inputs"].items():
            spec = d.input(name)
            assert spec is not None, f"{nid}.{name}"
            if Workflow.is_link(value):
                src = INFO.get(wf.class_of(value[0]))
                out = src.outputs[value[1]]
                assert out == spec.type or "*" in (out, spec.type), f"{nid}.{name}: {out} into {spec.type}"
            elif spec.type == "INT":
                assert isinstance(value, int) and not isinstance(value, bool), f"{nid}.{name}"
            elif spec.type == "FLOAT":
                assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{nid}.{name}"
            elif spec.type == "STRING":
                assert isinstance(value, str), f"{nid}.{name}"
            elif spec.type == "BOOLEAN":
                assert isinstance(value, bool)
            elif spec.type == COMBO:
                assert spec.open_choices or value in spec.choices, f"{nid}.{name}={value!r}"
            else:
                pytest.fail(f"{nid}.{name} is a {spec.type} socket holding a literal")
        for name, spec in d.inputs.items():
            if spec.required:
                assert name in node["inputs"], f"{nid} misses {name}"
    titles = {str(n["id"]): n.get("title") for n in ui["nodes"]}
    for nid, node in graph.items():
        if titles.get(nid):
            assert node["_meta"]["title"] == titles[nid]


@pytest.mark.parametrize("path", BIZYAIR_UI, ids=lambda p: p.name)
def test_every_bizyair_ui_export_converts_with_every_input_checked(path):
    ui = json.loads(path.read_text(encoding="utf-8"))
    graph, notes = convert_ui_workflow(ui, INFO)
    check_every_input(graph, ui)
    assert notes[0].startswith("Converted from UI format")


def test_kolors_ui_matches_its_api_export():
    graph, _ = convert_ui_workflow(load("workflows/ui-format/bizyair_kolors_txt2img.json"), INFO)
    api = load("workflows/bizyair/kolors_txt2img_api.json")
    assert {k: (v["class_type"], v["inputs"]) for k, v in graph.items()} == \
           {k: (v["class_type"], v["inputs"]) for k, v in api.items()}


def test_showcase_ui_matches_the_sdxl_api_export_up_to_ids():
    graph, notes = convert_ui_workflow(load("workflows/ui-format/bizyair_showcase_ksampler_txt2img.json"), INFO)
    api = load("workflows/bizyair/sdxl_ksampler_txt2img_api.json")
    ks = graph["27"]["inputs"]
    # [2, "fixed", 20, 8, "euler", "normal", 1]: the hidden control value "fixed" is skipped.
    assert {k: ks[k] for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")} == \
           {k: api["3"]["inputs"][k] for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")}
    assert graph["28"]["inputs"] == api["4"]["inputs"]     # model_version_id filled with its default
    assert any("without model_version_id" in n for n in notes)
    assert "53" not in graph                                 # the Note


def test_reroute_is_followed():
    graph, _ = convert_ui_workflow(load("workflows/ui-format/bizyair_sd3_5_txt2img.json"), INFO)
    assert graph["304"]["inputs"]["clip"] == ["303", 0] and graph["306"]["inputs"]["clip"] == ["303", 0]
    assert "316" not in graph


def test_load_image_upload_button_value_is_skipped():
    graph, _ = convert_ui_workflow(load("workflows/ui-format/bizyair_remove_background_workflow.json"), INFO)
    assert graph["33"]["inputs"] == {"image": "ComfyUI_00018_.png"}


def test_native_new_frontend_file_converts():
    ui = load("corpus/ui/dify_official_txt2vid_wan2_2_5B_ui.json")
    graph, _ = convert_ui_workflow(ui, INFO)
    check_every_input(graph, ui)
    assert graph["3"]["inputs"]["seed"] == 480505662760198 and graph["3"]["inputs"]["sampler_name"] == "uni_pc"
    assert graph["55"]["inputs"] == {"vae": ["39", 0], "width": 1280, "height": 704, "length": 121, "batch_size": 1}


def test_unknown_class_is_refused_then_converted_when_the_server_describes_it():
    ui = load("corpus/ui/comfy_templates_audio_stable_audio_example_ui.json")
    with pytest.raises(WorkflowFormatError) as err:
        convert_ui_workflow(ui, INFO)
    assert "SaveAudioAdvanced" in err.value.message and "Export (API)" in err.value.message
    LIVE_CACHE.clear()
    live = {"input": {"required": {"audio": ["AUDIO"], "filename_prefix": ["STRING", {"default": "audio/ComfyUI"}],
                                    "format": [["flac", "mp3", "opus"]]}}, "output": ["AUDIO"], "output_node": True}
    info = NodeInfo(fetch=lambda c: live if c == "SaveAudioAdvanced" else None, server="test-ui")
    graph, _ = convert_ui_workflow(ui, info)
    assert graph["20"]["inputs"] == {"audio": ["12", 0], "filename_prefix": "audio/ComfyUI", "format": "flac"}
    LIVE_CACHE.clear()


# ---------------------------------------------------------------- synthetic graphs for each rule

def small_ui() -> dict:
    """LoadImage → ImageInvert (bypassed) → ImageScale (width from a PrimitiveNode) → Reroute → SaveImage,
    plus a muted PreviewImage and a Note."""
    return {
        "nodes": [
            {"id": 1, "type": "LoadImage", "mode": 0, "inputs": [],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]},
                         {"name": "MASK", "type": "MASK", "links": []}],
             "widgets_values": ["a.png", "image"]},
            {"id": 2, "type": "ImageInvert", "mode": 4, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}]},
            {"id": 3, "type": "ImageScale", "mode": 0, "title": "Resize",
             "inputs": [{"name": "image", "type": "IMAGE", "link": 2},
                        {"name": "width", "type": "INT", "widget": {"name": "width"}, "link": 5}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [3, 6]}],
             "widgets_values": ["bilinear", 512, 256, "disabled"]},
            {"id": 4, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 4}],
             "outputs": [], "widgets_values": ["out"]},
            {"id": 5, "type": "PrimitiveNode", "mode": 0, "inputs": [],
             "outputs": [{"name": "INT", "type": "INT", "links": [5], "widget": {"name": "width"}}],
             "widgets_values": [300, "fixed"]},
            {"id": 6, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 3}],
             "outputs": [{"name": "", "type": "IMAGE", "links": [4]}]},
            {"id": 7, "type": "PreviewImage", "mode": 2, "inputs": [{"name": "images", "type": "IMAGE", "link": 6}],
             "outputs": []},
            {"id": 8, "type": "Note", "mode": 0, "inputs": [], "outputs": [], "widgets_values": ["hello"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 6, 0, "IMAGE"],
                  [4, 6, 0, 4, 0, "IMAGE"], [5, 5, 0, 3, 1, "INT"], [6, 3, 0, 7, 0, "IMAGE"]],
        "version": 0.4,
    }


def test_bypass_mute_primitive_reroute_note_and_titles():
    graph, notes = convert_ui_workflow(small_ui(), INFO)
    assert graph == {
        "1": {"inputs": {"image": "a.png"}, "class_type": "LoadImage", "_meta": {"title": "Load Image"}},
        "3": {"inputs": {"image": ["1", 0], "upscale_method": "bilinear", "width": 300, "height": 256,
                         "crop": "disabled"}, "class_type": "ImageScale", "_meta": {"title": "Resize"}},
        "4": {"inputs": {"filename_prefix": "out", "images": ["3", 0]}, "class_type": "SaveImage",
              "_meta": {"title": "Save Image"}},
    }
    text = " ".join(notes)
    assert "Muted nodes left out: 7" in text and "Bypassed nodes passed through: 2" in text
    assert "PrimitiveNode values written into: 3.width" in text


def test_links_as_objects_are_read():
    ui = small_ui()
    ui["links"] = [dict(zip(["id", "origin_id", "origin_slot", "target_id", "target_slot", "type"], link, strict=True))
                   for link in ui["links"]]
    assert convert_ui_workflow(ui, INFO)[0]["3"]["inputs"]["image"] == ["1", 0]


def test_widget_values_by_name_are_read():
    ui = small_ui()
    ui["nodes"][2]["widgets_values"] = {"upscale_method": "area", "width": 1, "height": 64, "crop": "center",
                                        "videopreview": {}}
    assert convert_ui_workflow(ui, INFO)[0]["3"]["inputs"]["upscale_method"] == "area"


def refused(ui) -> str:
    with pytest.raises(WorkflowFormatError) as err:
        convert_ui_workflow(ui, INFO)
    assert "Export (API)" in err.value.message and err.value.detail["format"] == "ui"
    return err.value.detail["reason"]


def test_too_many_widget_values_are_refused():
    ui = small_ui()
    ui["nodes"][2]["widgets_values"].append("extra")
    assert "5 saved values for 4 widget slots" in refused(ui)


def test_a_value_of_the_wrong_type_is_refused():
    ui = small_ui()
    ui["nodes"][2]["widgets_values"] = [512, "bilinear", 256, "disabled"]   # shifted
    reason = refused(ui)
    assert "node 3 (ImageScale)" in reason and "upscale_method" in reason


def test_a_control_slot_holding_something_else_is_refused():
    ui = load("workflows/ui-format/bizyair_showcase_ksampler_txt2img.json")
    ks = next(n for n in ui["nodes"] if n["id"] == 27)
    ks["widgets_values"][1] = 20          # [seed, 20, 20, 8, ...]: no control value after the seed
    assert 'node 27 (BizyAir_KSampler)' in refused(ui)
    assert 'value #2 (20) should be the control mode after "seed"' in refused(ui)


def test_missing_trailing_value_without_default_is_refused():
    ui = small_ui()
    ui["nodes"][2]["widgets_values"] = ["bilinear", 512]
    assert "2 saved values for 4 widget slots (upscale_method, width, height, crop)" in refused(ui)


def test_unknown_class_subgraph_and_group_nodes_are_refused():
    ui = small_ui()
    ui["nodes"][2]["type"] = "MyCustomScale"
    assert "MyCustomScale" in refused(ui)
    ui = small_ui()
    ui["definitions"] = {"subgraphs": [{"id": "8b3c0e7a-0000-4000-8000-000000000000"}]}
    assert "subgraphs" in refused(ui)
    ui = small_ui()
    ui["nodes"][2]["type"] = "8b3c0e7a-0000-4000-8000-000000000000"
    assert "subgraph" in refused(ui)
    ui = small_ui()
    ui["nodes"][2]["type"] = "workflow>My Group"
    assert "group node" in refused(ui)
    ui = small_ui()
    ui["extra"] = {"groupNodes": {"My Group": {}}}
    assert "group nodes" in refused(ui)


def test_inconsistent_links_are_refused():
    ui = small_ui()
    ui["links"][0] = [1, 1, 0, 3, 0, "IMAGE"]     # recorded for node 3, used by node 2
    assert "recorded for node 3" in refused(ui)
    ui = small_ui()
    del ui["links"][0]
    assert "missing from the links table" in refused(ui)


def test_bypassed_node_with_nothing_to_pass_is_refused():
    ui = small_ui()
    ui["nodes"][1]["inputs"] = []          # the bypassed ImageInvert has no IMAGE input to forward
    assert "muted or bypassed" in refused(ui)


def test_primitive_of_the_wrong_type_is_refused():
    ui = small_ui()
    ui["nodes"][4]["widgets_values"] = ["wide", "fixed"]
    assert "PrimitiveNode" in refused(ui)


def test_input_unknown_to_the_definition_is_refused():
    ui = small_ui()
    ui["nodes"][2]["inputs"].append({"name": "depth", "type": "INT", "link": None})
    assert '"depth"' in refused(ui)


def test_conversion_does_not_modify_the_file():
    ui = small_ui()
    before = copy.deepcopy(ui)
    convert_ui_workflow(ui, INFO)
    assert ui == before

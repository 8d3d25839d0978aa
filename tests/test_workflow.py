"""Reading workflow files: what is accepted, what is refused and how the refusal reads."""

import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import InputError, WorkflowFormatError
from comfyui_bridge.workflow import (
    MAX_BYTES,
    MAX_DEPTH,
    Workflow,
    detect_format,
    id_sort_key,
    load_workflow,
    parse_workflow,
)

FIX = Path(__file__).parent / "fixtures"
SDXL = FIX / "workflows/bizyair/sdxl_ksampler_txt2img_api.json"


def sdxl() -> dict:
    return json.loads(SDXL.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- accepted inputs

@pytest.mark.parametrize("kind", ["bytes", "str", "dict"])
def test_api_workflow_loads_from_bytes_text_or_dict(kind):
    raw = {"bytes": SDXL.read_bytes(), "str": SDXL.read_text(encoding="utf-8"), "dict": sdxl()}[kind]
    graph = load_workflow(raw)
    assert graph == sdxl()
    assert graph["3"]["class_type"] == "BizyAir_KSampler"


def test_utf8_bom_is_ignored():
    assert load_workflow(b"\xef\xbb\xbf" + SDXL.read_bytes()) == sdxl()


def test_post_body_wrapper_is_unwrapped():
    body = {"prompt": sdxl(), "client_id": "abc", "extra_data": {}}
    assert load_workflow(json.dumps(body)) == sdxl()


def test_runpod_input_wrapper_is_unwrapped():
    assert load_workflow({"input": {"workflow": sdxl()}}) == sdxl()


def test_ui_format_is_converted_and_reported_as_ui():
    loaded = parse_workflow((FIX / "workflows/ui-format/bizyair_kolors_txt2img.json").read_bytes())
    assert loaded.format == "ui"
    assert loaded.graph["80"]["class_type"] == "BizyAir_MinusZoneChatGLM3TextEncode"
    assert any("Converted from UI format" in n for n in loaded.notes)


def test_detect_format():
    assert detect_format(sdxl()) == "api"
    assert detect_format({"prompt": sdxl()}) == "api"
    assert detect_format(json.loads((FIX / "workflows/ui-format/bizyair_kolors_txt2img.json").read_text())) == "ui"
    assert detect_format([]) == "unknown"


# ---------------------------------------------------------------- refused inputs

def _refusal(raw) -> WorkflowFormatError:
    with pytest.raises(WorkflowFormatError) as info:
        load_workflow(raw)
    return info.value


def test_invalid_json_says_where():
    err = _refusal('{\n  "3": {"class_type": "KSampler",\n    "inputs": {oops}\n}')
    assert "line 3" in err.message and "column" in err.message
    assert err.detail["line"] == 3


def test_single_quotes_get_a_hint():
    err = _refusal("{'3': {'class_type': 'KSampler', 'inputs': {}}}")
    assert "double quotes" in err.message


def test_trailing_comma_gets_a_hint():
    err = _refusal('{"3": {"class_type": "KSampler", "inputs": {},}}')
    assert "trailing comma" in err.message


@pytest.mark.parametrize("raw", [b"", "   \n", b"\xef\xbb\xbf"])
def test_empty_input_is_refused_with_export_steps(raw):
    err = _refusal(raw)
    assert "empty" in err.message and "Export (API)" in err.message
    assert err.message_zh


def test_a_list_is_refused():
    err = _refusal("[1, 2]")
    assert "list" in err.message and "object" in err.message


def test_a_scalar_is_refused():
    assert "not an object" in _refusal("42").message


def test_empty_object_is_refused():
    assert "no nodes" in _refusal("{}").message


def test_nodes_without_class_type_or_inputs_are_named():
    err = _refusal({"1": {"inputs": {}}, "2": {"class_type": "SaveImage"}})
    assert "node(s) 1 have no class_type" in err.message
    assert "node(s) 2 have no \"inputs\"" in err.message
    assert "Export (API)" in err.message


def test_non_object_entries_are_refused():
    assert "not node objects" in _refusal({"1": "KSampler"}).message


def test_links_to_missing_nodes_are_refused():
    graph = sdxl()
    graph["3"]["inputs"]["model"] = ["99", 0]
    err = _refusal(graph)
    assert "node 99" in err.message and "3" in err.message


def test_non_utf8_bytes_are_refused():
    err = _refusal(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert "UTF-8" in err.message


def test_oversized_input_is_refused_before_parsing():
    big = b'{"a": "' + b"x" * (MAX_BYTES + 10) + b'"}'
    assert "too large" in _refusal(big).message


def test_deep_nesting_is_refused_without_recursion():
    # 100 000 levels would crash a recursive parser; the scan refuses it first.
    hostile = "[" * 100_000 + "]" * 100_000
    assert "nested" in _refusal(hostile).message


def test_nesting_inside_strings_does_not_count():
    graph = sdxl()
    graph["6"]["inputs"]["text"] = "[" * (MAX_DEPTH * 4) + "{" * 10
    assert load_workflow(json.dumps(graph))["6"]["inputs"]["text"].startswith("[[[")


def test_deep_nesting_in_a_dict_is_refused():
    deep: dict = {}
    cur = deep
    for _ in range(MAX_DEPTH + 5):
        cur["x"] = {}
        cur = cur["x"]
    assert "nested" in _refusal(deep).message


def test_huge_integer_literal_is_a_clean_error():
    err = _refusal('{"1": {"class_type": "X", "inputs": {"seed": ' + "9" * 10_000 + "}}}")
    assert isinstance(err, WorkflowFormatError)


# ---------------------------------------------------------------- the façade

def test_ids_sort_numerically():
    assert sorted(["10", "2", "10:3", "a", "1"], key=id_sort_key) == ["1", "2", "10", "10:3", "a"]


def test_resolve_by_id_and_input():
    wf = Workflow(sdxl())
    assert wf.resolve("6") == ("6", None)
    assert wf.resolve("6.text") == ("6", "text")


def test_resolve_by_title_is_case_insensitive_and_space_tolerant():
    wf = Workflow(sdxl())
    assert wf.resolve("  save   IMAGE ") == ("9", None)
    assert wf.resolve("Empty latent image.width") == ("5", "width")


def test_resolve_by_unique_class_and_bizyair_alias():
    wf = Workflow(sdxl())
    assert wf.resolve("SaveImage.filename_prefix") == ("9", "filename_prefix")
    assert wf.resolve("KSampler.steps") == ("3", "steps")   # BizyAir_KSampler


def test_resolve_title_with_dots():
    graph = sdxl()
    graph["9"]["_meta"]["title"] = "Save v1.5"
    assert Workflow(graph).resolve("Save v1.5.filename_prefix") == ("9", "filename_prefix")


def test_resolve_ambiguous_title_lists_candidates():
    with pytest.raises(InputError) as info:
        Workflow(sdxl()).resolve("☁️BizyAir CLIP Text Encode (Prompt)")
    msg = info.value.message
    assert "matches 2 nodes" in msg and '6 (BizyAir_CLIPTextEncode)' in msg and "7 (BizyAir_CLIPTextEncode)" in msg


def test_resolve_unknown_lists_nodes():
    with pytest.raises(InputError) as info:
        Workflow(sdxl()).resolve("Upscaler.scale")
    assert "No node matches" in info.value.message and "9 (SaveImage)" in info.value.message


def test_get_set_links_and_consumers():
    wf = Workflow(sdxl())
    assert wf.get("3", "steps") == 20
    wf.set("3", "steps", 30)
    assert wf.graph["3"]["inputs"]["steps"] == 30
    assert wf.links_to("3")["positive"] == ("6", 0)
    assert ("3", "positive", 0) in wf.consumers("6")
    assert Workflow.is_link(["6", 0]) and Workflow.is_link([6, 0])
    assert not Workflow.is_link(["6", True]) and not Workflow.is_link("6") and not Workflow.is_link(["a", "b"])
    assert wf.describe("3") == '3 (BizyAir_KSampler) "☁️BizyAir KSampler"'

import json
from pathlib import Path

import pytest

from comfyui_bridge.rejections import describe_rejection

CASES = json.loads((Path(__file__).parent / "fixtures/captures/invalid_prompts.json").read_text())


@pytest.mark.parametrize("case, expected", [
    ("missing_required_input", 'node 2 (SaveImage): required input "images" is missing'),
    ("link_to_missing_node", "node 2 (SaveImage): links to node '99', which is not in the workflow"),
    ("link_bad_output_index", "node 2 (SaveImage): links to an output index the source node does not have"),
    ("value_below_min", 'node 1 (EmptyImage): input "width": Value 0 smaller than min of 1'),
    ("loadimage_missing_file", "node 1 (LoadImage): image - Invalid image file: does_not_exist.png"),
])
def test_each_failing_node_becomes_one_readable_line(case, expected):
    capture = CASES[case]
    message, lines = describe_rejection(capture["response"], capture["request"]["prompt"])
    assert lines == [expected]
    assert expected in message


def test_unknown_class_says_to_install_the_custom_node():
    capture = CASES["unknown_class_type"]
    _, lines = describe_rejection(capture["response"], capture["request"]["prompt"])
    assert "NoSuchNode does not exist" in lines[0] and "Install the custom node" in lines[0]


def test_no_output_node_says_what_to_add():
    _, lines = describe_rejection(CASES["no_output_nodes"]["response"], {})
    assert "SaveImage" in lines[0]


def test_tracebacks_never_reach_the_message():
    capture = CASES["link_to_missing_node"]
    message, _ = describe_rejection(capture["response"], capture["request"]["prompt"])
    assert "Traceback" not in message and "/opt/ComfyUI" not in message and "execution.py" not in message


def test_titles_are_shown_when_the_node_has_one():
    graph = {"6": {"class_type": "CLIPTextEncode", "inputs": {}, "_meta": {"title": "Positive"}}}
    payload = {"node_errors": {"6": {"class_type": "CLIPTextEncode", "errors": [
        {"type": "required_input_missing", "message": "Required input is missing", "details": "clip",
         "extra_info": {"input_name": "clip"}}]}}}
    _, lines = describe_rejection(payload, graph)
    assert lines == ['node 6 (CLIPTextEncode "Positive"): required input "clip" is missing']

"""The catalogue tools' parameters → RunRequest (tools/catalogue_requests.py): what Dify sends is
parsed totally, checked against the model before any image is downloaded, and becomes the same
RunRequest a submit-now / collect-later tool can queue."""

from __future__ import annotations

import pytest

from comfyui_bridge.errors import InputError
from tests.servers.comfysim import media
from tools.catalogue_requests import edit_image_request, image_to_video_request, text_to_video_request


class DifyFile:
    """Stands in for the SDK's File: its bytes come from Dify over HTTP on first access (`blob`)."""

    def __init__(self, data: bytes, filename: str = "in.png"):
        self.data = data
        self.filename = filename
        self.reads = 0

    @property
    def blob(self) -> bytes:
        self.reads += 1
        return self.data


PNG = media.png(64, 48, (1, 2, 3))


def test_an_edit_request_targets_the_model_node_and_its_loaders():
    files = [DifyFile(PNG, "a.png"), DifyFile(PNG, "b.png")]
    request = edit_image_request({"images": files, "prompt": "make it night", "model": "nanobanana_pro",
                                  "aspect_ratio": "4:5", "resolution": "4K", "seed": 7})
    assert request.prompt == "make it night" and request.prompt_node == "1.prompt"
    assert request.images == [("a.png", PNG), ("b.png", PNG)] and request.image_nodes == ["3", "4"]
    inputs = request.workflow["1"]["inputs"]
    assert (inputs["aspect_ratio"], inputs["resolution"], inputs["operation"]) == ("4:5", "4K", "edit")
    assert request.seed == 7 and request.timeout == 240


def test_the_default_model_is_used_when_none_is_chosen():
    request = edit_image_request({"images": [DifyFile(PNG)], "prompt": "x"})
    assert request.workflow["1"]["class_type"] == "BizyAir_NanoBanana"


def test_a_bad_option_is_refused_before_any_image_is_downloaded():
    files = [DifyFile(PNG), DifyFile(PNG)]
    with pytest.raises(InputError, match="Parameter 'aspect_ratio': '2:1' is not accepted by model 'nanobanana'"):
        edit_image_request({"images": files, "prompt": "x", "model": "nanobanana", "aspect_ratio": "2:1"})
    assert [f.reads for f in files] == [0, 0]
    with pytest.raises(InputError, match="takes exactly 1 input image"):
        edit_image_request({"images": files, "prompt": "x", "model": "seededit_3"})
    assert [f.reads for f in files] == [0, 0]


def test_videos_wait_as_long_as_dify_allows_unless_told_otherwise():
    assert text_to_video_request({"prompt": "waves"}).timeout == 590
    assert text_to_video_request({"prompt": "waves", "timeout": 120}).timeout == 120
    with pytest.raises(InputError, match="'timeout' must be a number from 10 to 590"):
        text_to_video_request({"prompt": "waves", "timeout": 600})


def test_video_options_reach_the_node():
    request = text_to_video_request({"prompt": "waves", "model": "seedance_2_0_fast", "duration": "8",
                                     "aspect_ratio": "21:9", "resolution": "2K", "audio": "on",
                                     "negative_prompt": ""})
    inputs = request.workflow["1"]["inputs"]
    assert (inputs["mode"], inputs["duration"], inputs["ratio"], inputs["resolution"], inputs["generateAudio"]) == (
        "fast", 8, "21:9", "2k", True)
    assert request.negative_node == ""


@pytest.mark.parametrize("value, expected", [("on", True), ("off", False), ("default", None), ("", None),
                                             (True, True), (False, False), (None, None)])
def test_audio_is_on_off_or_the_model_default(value, expected):
    request = image_to_video_request({"prompt": "move", "image": DifyFile(PNG), "audio": value})
    default = request.workflow["1"]["inputs"]["sound"]
    assert default is (False if expected is None else expected)


def test_a_negative_prompt_goes_to_the_node_that_takes_it():
    request = image_to_video_request({"prompt": "move", "image": DifyFile(PNG), "model": "wan_2_6",
                                      "negative_prompt": "blur"})
    assert (request.negative_prompt, request.negative_node) == ("blur", "1.negative_prompt")
    assert request.image_nodes == ["3"] and request.workflow["1"]["inputs"]["image"] == ["3", 0]


@pytest.mark.parametrize("params, message", [
    ({"prompt": "  "}, "The prompt is empty"),
    ({"prompt": "x", "duration": 2.5}, "'duration' must be a whole number from 1 to 3600 seconds"),
    ({"prompt": "x", "duration": float("nan")}, "'duration' must be a whole number"),
    ({"prompt": "x", "aspect_ratio": ["16:9"]}, "'aspect_ratio' must be text"),
    ({"prompt": "x", "audio": "loud"}, "'audio' must be on, off or default"),
    ({"prompt": "x", "model": {"a": 1}}, "'model' must be text"),
])
def test_malformed_parameters_are_refused_by_name(params, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        text_to_video_request(params)


def test_an_image_to_video_needs_its_image():
    with pytest.raises(InputError, match="Parameter 'image': model 'kling_2_6'.*takes exactly 1 input image"):
        image_to_video_request({"prompt": "move"})

"""Tool parameters: every parser is total (any value Dify could send gives a value or an InputError,
never another exception), numbers are finite and inside the range the message names, and nesting
is bounded. Property-based (hypothesis) over the parsers, plus the cases reported in issue 10."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfyui_bridge.errors import InputError
from comfyui_bridge.models import RunRequest
from comfyui_bridge.nodeinfo import NodeInfo
from comfyui_bridge.overrides import parse_overrides
from tools import params
from tools.settings import MAX_TIMEOUT

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"
GRAPH_TEXT = (WORKFLOWS / "empty_save_1024.json").read_text()
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class DifyFile:
    """What the SDK hands a tool for a file parameter: `.blob` downloads it (and may fail)."""

    def __init__(self, blob, filename=None, extension=None):
        self._blob, self.filename, self.extension = blob, filename, extension

    @property
    def blob(self):
        if isinstance(self._blob, BaseException):
            raise self._blob
        return self._blob


def deep_list(depth: int) -> list:
    root: list = []
    cur = root
    for _ in range(depth):
        cur.append([])
        cur = cur[0]
    return root


def deep_dict(depth: int) -> dict:
    root: dict = {}
    cur = root
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return root


NUMBER_TEXTS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e-999", "-1", "0", "1_000",
                "٣", "²", "１２", " 12 ", "0x10", "1e5", "30.0", "30.5", "9" * 100, "9" * 5000, "", " ", "\x00",
                "\ud800", "true", "false", "None", "[]", "{}", "18446744073709551615", "18446744073709551616",
                "+5", ".5", "5.", "--5", "1e", "e5"]
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2 ** 300), max_value=2 ** 300)
           | st.floats() | st.text(max_size=50) | st.binary(max_size=20) | st.sampled_from(NUMBER_TEXTS))
files = st.builds(DifyFile, st.one_of(st.binary(max_size=64), st.just(ValueError("Invalid file URL, FILES_URL")),
                                      st.just(TimeoutError("timed out")), st.none(), st.text(max_size=8)),
                  st.one_of(st.none(), st.text(max_size=20), st.integers()),
                  st.one_of(st.none(), st.text(max_size=20)))
values = st.recursive(scalars | files,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4),
                      max_leaves=12)
hostile = values | st.sampled_from([deep_list(100_000), deep_dict(100_000), "[" * 100_000, '{"a":' * 100_000,
                                    "x" * 2_000_000, list(range(10_000))])

NAMES = ["prompt", "negative_prompt", "workflow", "workflow_json", "prompt_node", "negative_node", "seed",
         "overrides", "images", "image_nodes", "timeout", "max_blob_mb", "progress", "model", "width", "height"]


def total(parse, *args):
    """Call a parser: its value, or None when it refused with an InputError (nothing else may escape)."""
    try:
        return parse(*args)
    except InputError as exc:
        assert exc.message and len(exc.message) <= 4100 and exc.message_zh
        return None


@FUZZ
@given(value=hostile)
def test_every_parser_gives_a_value_or_an_input_error(value):
    for name in NAMES:
        p = {name: value}
        total(params.seed, p)
        total(params.timeout, p)
        total(params.delivery_options, p)
        total(params.overrides, p)
        total(params.images, p)
        total(params.node_list, p, name)
        total(params.flag, p, name)
        total(params.workflow_from, p)
    for name in ("prompt", "negative_prompt", "prompt_node", "negative_node", "image_nodes", "model"):
        got = total(params.text, {name: value}, name)
        assert got is None or isinstance(got, str)


@FUZZ
@given(given_params=st.dictionaries(st.sampled_from(NAMES), hostile, max_size=6))
def test_whole_requests_are_built_or_refused_with_an_input_error(given_params):
    request = total(params.workflow_request, {"workflow_json": GRAPH_TEXT, **given_params})
    if request is not None:
        assert isinstance(request, RunRequest) and 10 <= request.timeout <= MAX_TIMEOUT
        assert request.seed is None or 0 <= request.seed <= 2 ** 64 - 1
        assert isinstance(request.overrides, dict)
    request = total(params.text_to_image_request, {"prompt": "a fox", **given_params})
    assert request is None or isinstance(request, RunRequest)


@FUZZ
@given(value=values)
def test_numbers_that_are_accepted_are_finite_and_inside_the_range(value):
    got = total(params.timeout, {"timeout": value})
    assert got is None or 10 <= got <= MAX_TIMEOUT
    options = total(params.delivery_options, {"max_blob_mb": value})
    assert options is None or 0 <= options.max_blob_bytes <= 30 * 1024 * 1024
    seed = total(params.seed, {"seed": value})
    assert seed is None or (isinstance(seed, int) and 0 <= seed <= 2 ** 64 - 1)


# ---- the cases of issue 10 ------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["nan", "NaN", float("nan"), "inf", float("-inf"), "1e999", -5, "-5", 10 ** 400,
                                 "9" * 5000, True, [30], {"v": 30}, "thirty", "1_00", "٣٠"])
def test_a_bad_timeout_is_refused_naming_the_parameter_and_the_range(raw):
    with pytest.raises(InputError) as info:
        params.timeout({"timeout": raw})
    assert "Parameter 'timeout' must be a number from 10 to 590 seconds" in info.value.message
    assert len(info.value.message) < 200


@pytest.mark.parametrize("raw", ["nan", float("inf"), "-1", 31, "1e308"])
def test_a_bad_max_blob_mb_is_refused_naming_the_parameter_and_the_range(raw):
    with pytest.raises(InputError) as info:
        params.delivery_options({"max_blob_mb": raw})
    assert "Parameter 'max_blob_mb' must be a number from 0 to 30 MB" in info.value.message


@pytest.mark.parametrize("raw, expected", [("240", 240.0), (" 45.5 ", 45.5), (60, 60.0), ("", 240.0), (None, 240.0),
                                           ("1e2", 100.0)])
def test_good_timeouts_are_read(raw, expected):
    assert params.timeout({"timeout": raw}) == expected


@pytest.mark.parametrize("raw, expected", [("18446744073709551615", 2 ** 64 - 1), (42, 42), (42.0, 42), ("7", 7),
                                           ("", None), (None, None)])
def test_seeds_are_exact_up_to_64_bits(raw, expected):
    assert params.seed({"seed": raw}) == expected


@pytest.mark.parametrize("raw", ["18446744073709551616", -1, 1.5, "nan", "²", "1e30", 2 ** 64, True])
def test_seeds_outside_64_bits_or_not_whole_are_refused(raw):
    with pytest.raises(InputError) as info:
        params.seed({"seed": raw})
    assert "'seed' must be a whole number from 0 to 18446744073709551615" in info.value.message


@pytest.mark.parametrize("raw", ["[" * 100_000, '{"3.steps": ' + "[" * 100_000, deep_dict(100_000),
                                 {"3.steps": deep_list(100_000)}])
def test_deeply_nested_overrides_are_refused_not_a_recursion_error(raw):
    with pytest.raises(InputError) as info:
        params.overrides({"overrides": raw})
    assert "nested more than" in info.value.message or "not valid JSON" in info.value.message


def test_huge_overrides_are_refused_before_parsing():
    with pytest.raises(InputError) as info:
        params.overrides({"overrides": '{"3.steps": "' + "x" * 2_000_000 + '"}'})
    assert "too large" in info.value.message


SDXL = json.loads((WORKFLOWS / "bizyair/sdxl_ksampler_txt2img_api.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("overrides, words", [
    ('{"3.cfg": NaN}', "not a number ComfyUI can use"),
    ('{"3.cfg": Infinity}', "not a number ComfyUI can use"),
    ('{"3.denoise": -Infinity}', "not a number ComfyUI can use"),
    ('{"3.cfg": 1e999}', "not a number ComfyUI can use"),
    ('{"3.seed": ' + "9" * 300 + "}", "too large"),
    ('{"3.sampler_name": NaN}', "not a number ComfyUI can use"),
])
def test_overrides_refuse_nan_infinities_and_huge_numbers(overrides, words):
    with pytest.raises(InputError) as info:
        parse_overrides(json.loads(json.dumps(SDXL)), NodeInfo(), params.overrides({"overrides": overrides}))
    assert words in info.value.message and '"3.' in info.value.message


def test_a_huge_override_value_is_quoted_short():
    with pytest.raises(InputError) as info:
        parse_overrides(json.loads(json.dumps(SDXL)), NodeInfo(), {"3.sampler_name": "q" * 1_000_000})
    assert "is not one of the" in info.value.message and len(info.value.message) < 1000


@pytest.mark.parametrize("raw", ["maybe", 2, 0.5, [True], {"on": 1}])
def test_progress_takes_true_or_false_only(raw):
    with pytest.raises(InputError) as info:
        params.delivery_options({"progress": raw})
    assert "'progress' must be true or false" in info.value.message


def test_text_parameters_refuse_other_types_and_huge_values():
    with pytest.raises(InputError) as info:
        params.workflow_request({"workflow_json": GRAPH_TEXT, "prompt": {"a": deep_list(10_000)}})
    assert "Parameter 'prompt' must be text" in info.value.message
    with pytest.raises(InputError) as info:
        params.workflow_request({"workflow_json": GRAPH_TEXT, "prompt_node": "n" * 3_000_000})
    assert "Parameter 'prompt_node' is too long (3000000 characters; at most 1000)" in info.value.message


def test_a_file_that_cannot_be_downloaded_names_the_fix():
    with pytest.raises(InputError) as info:
        params.workflow_from({"workflow": DifyFile(ValueError("Invalid file URL; check the FILES_URL"))})
    assert "FILES_URL" in info.value.message
    with pytest.raises(InputError):
        params.images({"images": [DifyFile(b"png"), "not a file"]})
    assert params.images({"images": [DifyFile(b"png", filename=None, extension=".jpg")]}) == [("image_1.jpg", b"png")]


def test_text_to_image_sizes_follow_the_yaml_limits():
    request = params.text_to_image_request({"prompt": "a fox", "width": 2048, "height": "256"})
    assert isinstance(request, RunRequest)
    for bad in (4096, 64, "nan"):
        with pytest.raises(InputError) as info:
            params.text_to_image_request({"prompt": "a fox", "width": bad})
        assert "'width' must be a whole number from 256 to 2048 pixels" in info.value.message

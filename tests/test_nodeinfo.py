"""Node definitions: the bundled file, trimming, and per-class live look-ups with a shared cache."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from comfyui_bridge.nodeinfo import BUNDLED_PATH, LIVE_CACHE, NodeInfo, trim_definition

ROOT = Path(__file__).parent.parent
CAPTURE = ROOT / "tests/fixtures/captures/object_info.json"


@pytest.fixture(autouse=True)
def _fresh_cache():
    LIVE_CACHE.clear()
    yield
    LIVE_CACHE.clear()


def test_bundled_file_is_small_and_current():
    assert BUNDLED_PATH.stat().st_size < 400 * 1024
    out = subprocess.run([sys.executable, "scripts/trim_object_info.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_bundled_data_has_native_and_bizyair_classes():
    info = NodeInfo()
    ks = info.get("KSampler")
    assert ks.input("seed").max == 2 ** 64 - 1 and ks.input("seed").control_after_generate
    assert "euler" in ks.input("sampler_name").choices and not ks.input("sampler_name").open_choices
    assert info.get("BizyAir_NanoBanana").input("seed").max == 2 ** 31 - 1
    assert info.get("BizyAir_CogView4_6B_Pipe").input("seed").max == 1e14
    assert info.get("SaveImage").output_node
    assert info.get("BizyAir_ControlNetApplyAdvanced").output_names == ["positive", "negative"]


def test_file_lists_are_open_not_validated():
    info = NodeInfo()
    ckpt = info.get("CheckpointLoaderSimple").input("ckpt_name")
    assert ckpt.open_choices and ckpt.choices == ()
    assert info.get("LoadImage").input("image").image_upload
    # BizyAir's checkpoint loader lists only a placeholder yet accepts any name.
    assert info.get("BizyAir_CheckpointLoaderSimple").input("ckpt_name").open_choices


def test_trim_drops_documentation_and_keeps_what_the_engine_reads():
    full = json.loads(CAPTURE.read_text())["KSampler"]
    trimmed = trim_definition(full)
    text = json.dumps(trimmed)
    assert "tooltip" not in text and "category" not in trimmed and "description" not in trimmed
    assert trimmed["input"]["required"]["seed"][1]["control_after_generate"] is True
    assert list(trimmed["input"]["required"]) == full["input_order"]["required"]


def test_new_style_combo_is_understood():
    d = trim_definition({"input": {"required": {"mode": ["COMBO", {"options": ["a", "b"], "default": "a"}]}},
                         "output": ["STRING"]})
    assert d["input"]["required"]["mode"] == [["a", "b"], {"default": "a"}]


def test_unknown_class_is_fetched_once_per_server_and_cached():
    calls = []

    def fetch(cls):
        calls.append(cls)
        return {"input": {"required": {"text": ["STRING", {"multiline": True}]}}, "output": ["CONDITIONING"],
                "description": "dropped"}

    first = NodeInfo(fetch=fetch, server="http://a:8188")
    assert first.get("MyEncoder").input("text").multiline
    assert first.get("MyEncoder").source == "live"
    NodeInfo(fetch=fetch, server="http://a:8188").get("MyEncoder")     # a new instance, same server
    assert calls == ["MyEncoder"]
    NodeInfo(fetch=fetch, server="http://b:8188").get("MyEncoder")     # another server asks again
    assert calls == ["MyEncoder", "MyEncoder"]


def test_known_classes_are_not_fetched_unless_live_should_win():
    calls = []
    info = NodeInfo(fetch=lambda c: calls.append(c) or {}, server="s")
    assert info.get("KSampler").source == "bundled"
    assert calls == []
    assert info.get("KSampler", live=True).source == "bundled"     # server answered {}: keep bundled
    assert calls == ["KSampler"]


def test_live_first_lets_the_server_win():
    def fetch(cls):
        return {"input": {"required": {"ckpt_name": [["mine.safetensors", "other.safetensors"]]}}, "output": ["MODEL"]}

    info = NodeInfo(fetch=fetch, server="s", live_first={"CheckpointLoaderSimple"})
    assert info.get("CheckpointLoaderSimple").source == "live"


def test_a_failing_fetch_falls_back_silently_and_stops_asking():
    calls = []

    def fetch(cls):
        calls.append(cls)
        raise ConnectionError("down")

    info = NodeInfo(fetch=fetch, server="s")
    assert info.get("KSampler", live=True).source == "bundled"
    assert info.get("NotAClass") is None
    assert info.get("AlsoNot") is None
    assert calls == ["KSampler"]


def test_unknown_everywhere_is_none():
    assert NodeInfo(fetch=lambda c: None, server="s").get("Nope") is None
    assert NodeInfo().get("Nope") is None


def test_cache_is_bounded():
    from comfyui_bridge.nodeinfo import _LiveCache
    cache = _LiveCache(limit=3)
    for i in range(5):
        cache.put(("s", str(i)), None)
    assert len(cache) == 3
    assert cache.get(("s", "0")) == (False, None) and cache.get(("s", "4"))[0]


def test_deprecated_bizyair_classes_are_flagged():
    info = NodeInfo()
    assert info.get("BizyAir_MinusZoneChatGLM3TextEncode").bizyair_deprecated
    assert not info.get("BizyAir_CLIPTextEncode").bizyair_deprecated

"""What a server offers (comfyui_bridge/catalogue/capabilities.py), asked of the ComfyUI test
server: per-class lookups only, never the full /object_info, and every name bounded."""

from __future__ import annotations

import json

import pytest

from comfyui_bridge.catalogue import catalogue
from comfyui_bridge.catalogue.capabilities import (
    BIZYAIR_LISTS,
    MARKER_CLASSES,
    MAX_NAMES,
    NEVER_ASK,
    choices,
    discover,
    extension_packs,
    summary,
)
from comfyui_bridge.client import ComfyClient
from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.errors import BridgeError

BIZY_CAPTURE = "tests/fixtures/captures/object_info_bizyair.json"


def ask(comfy, **kw):
    client = ComfyClient(parse_servers(comfy.url)[0])
    try:
        return discover(client, Deadline.after(30), **kw)
    finally:
        client.close()


def test_a_bizyair_container_lists_each_tools_models_and_bizyairs_model_lists(comfy_server):
    caps = ask(comfy_server)
    assert (caps.kind, caps.bizyair_key, caps.bizyair_ready) == ("bizyair", "valid", True)
    for tool, conf in catalogue().items():
        assert caps.models[tool] == list(conf.models) and caps.missing[tool] == []
    classes = json.loads(open(BIZY_CAPTURE, encoding="utf-8").read())["classes"]
    assert caps.lists["vaes"] == classes["BizyAir_VAELoader"]["input"]["required"]["vae_name"][0]
    assert caps.lists["loras"] == classes["BizyAir_LoraLoader_Legacy"]["input"]["required"]["lora_name"][0]
    assert caps.counts["samplers"] == 44 and caps.node_packs[0] == "BizyAir"
    requests = comfy_server.stats()["requests"]
    assert "GET /object_info" not in requests
    wanted = ({m.class_type for t in catalogue().values() for m in t.models.values()}
              | {cls for cls, _ in BIZYAIR_LISTS.values()} | set(MARKER_CLASSES))
    assert requests["GET /object_info/{cls}"] == len(wanted) + 1     # + the key check's probe of BizyAir_KSampler


def test_the_two_classes_that_freeze_a_container_are_never_asked(comfy_server):
    ask(comfy_server)
    raw = comfy_server.stats()["requests_raw"]
    assert all(f"/object_info/{cls}" not in key for key in raw for cls in NEVER_ASK)
    assert NEVER_ASK == {"BizyAir_TRD_LLM_API", "BizyAir_TRD_VLM_API"}


def test_a_broken_bizyair_install_is_listed_as_the_plain_comfyui_it_is(comfy_server):
    comfy_server.config(bizyair_state="not_installed")
    caps = ask(comfy_server)
    assert caps.kind == "comfyui" and caps.models == {}
    assert "checkpoints" in caps.lists and "vaes" in caps.lists and "text_encoders" not in caps.lists


def test_plain_comfyui_lists_samplers_and_says_the_partner_key_is_missing(comfy_server):
    comfy_server.config(bizyair_state="absent")
    caps = ask(comfy_server)
    assert caps.kind == "comfyui" and caps.bizyair_key == ""
    assert caps.lists["samplers"][:3] == ["euler", "euler_cfg_pp", "euler_ancestral"]
    assert caps.lists["checkpoints"] == [] and caps.counts["checkpoints"] == 0   # a CPU server without models
    assert caps.partner_nodes
    text = summary(caps, comfy_org_key=False)
    assert text.startswith("Plain ComfyUI 0.8.0, no BizyAir nodes")
    assert "Checkpoints: none." in text and "the Comfy.org API key is not set" in text
    assert "the Comfy.org API key is set." in summary(caps, comfy_org_key=True)


def test_hostile_lists_are_cut_and_made_plain():
    names = [f"model_{i}.safetensors" for i in range(5000)] + ["![x](http://evil.invalid)\n# heading"]
    listed = choices({"input": {"required": {"ckpt_name": [names, {}]}}}, "ckpt_name")
    assert len(listed) == 5001
    assert "[" not in listed[-1] and "]" not in listed[-1] and "\n" not in listed[-1]   # no markdown link survives
    capped = choices({"input": {"required": {"ckpt_name": [["a\nb", 7, None, {"x": 1}, "to choose", "a\nb"]]}}},
                     "ckpt_name")
    assert capped == ["a b", "7"]
    assert choices({"input": {"required": {"x": ["COMBO", {"options": ["p", "q"]}]}}}, "x") == ["p", "q"]
    for junk in (None, [], {"input": "x"}, {"input": {"required": {"ckpt_name": "x"}}}):
        assert choices(junk, "ckpt_name") == []
    assert len(choices({"input": {"required": {"n": [[f"m{i}" for i in range(10 ** 5)], {}]}}}, "n")) == MAX_NAMES * 50


@pytest.mark.parametrize("paths, packs", [
    (["/extensions/core/a.js", "/extensions/KJ/a.js", "/extensions/KJ/b.js", "/extensions/rg/x.js"], ["KJ", "rg"]),
    (["/extensions/core/a.js", "/elsewhere/KJ/a.js", 7, None, "/extensions//a.js"], []),
    ({"not": "a list"}, []),
    (["/extensions/" + "p" * 500 + "/a.js"], ["p" * 160 + "… (340 more characters)"]),
])
def test_node_packs_come_from_the_extension_folders(paths, packs):
    assert extension_packs(paths) == packs


def test_an_unreachable_server_is_an_error_saying_so():
    client = ComfyClient(parse_servers("http://127.0.0.1:9")[0])
    with pytest.raises(BridgeError) as caught:
        discover(client, Deadline.after(5))
    assert "refused" in caught.value.message


def test_with_several_servers_the_first_that_answers_is_asked(comfy_server):
    from functools import partial

    from comfyui_bridge.catalogue.capabilities import first_answering
    servers = parse_servers(f"http://127.0.0.1:9, {comfy_server.url}")
    index, caps = first_answering([partial(ComfyClient, s) for s in servers],
                                  partial(discover, deadline=Deadline.after(30)))
    assert (index, caps.kind) == (1, "bizyair")
    with pytest.raises(BridgeError, match="refused"):
        first_answering([partial(ComfyClient, servers[0])], partial(discover, deadline=Deadline.after(5)))

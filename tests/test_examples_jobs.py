"""The submit-and-collect example chatflow (examples/comfyui_bizyair_jobs_chatflow.yml) must keep
matching the plugin and Dify's Loop node: its dependency is the package `scripts/dev package`
builds, it is what scripts/make_example_dsl.py generates, both tool nodes mirror their tool YAML,
every variable it reads is declared, and the Loop has the shape Dify exports (a loop-start child,
children marked as in the loop, a loop variable the assigner writes from the collect's status and
the break conditions read). What the app shows when Dify runs it is tested in tests/contract/."""

from __future__ import annotations

from pathlib import Path

import pytest
from example_support import BUILTIN_TOOL_OUTPUTS, REGENERATE, TEMPLATE_REF, load_yaml
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
DSL_PATH = ROOT / "examples" / "comfyui_bizyair_jobs_chatflow.yml"


@pytest.fixture(scope="module")
def dsl():
    return load_yaml(DSL_PATH)


@pytest.fixture(scope="module")
def tools():
    manifest = load_yaml(ROOT / "manifest.yaml")
    provider = load_yaml(ROOT / manifest["plugins"]["tools"][0])
    return {doc["identity"]["name"]: doc for doc in (load_yaml(ROOT / rel) for rel in provider["tools"])}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return load_script("build_pkg").build(ROOT, tmp_path_factory.mktemp("dist"))


def _nodes(dsl, kind=None):
    return [n for n in dsl["workflow"]["graph"]["nodes"] if kind is None or n["data"].get("type") == kind]


def _by_tool(dsl, name):
    (node,) = [n for n in _nodes(dsl, "tool") if n["data"]["tool_name"] == name]
    return node


def test_it_depends_on_the_package_scripts_dev_package_builds_and_is_generated(dsl, built):
    (dep,) = dsl["dependencies"]
    assert dep["value"]["plugin_unique_identifier"] == built.identifier, f"run `{REGENERATE}`"
    assert {n["data"]["plugin_unique_identifier"] for n in _nodes(dsl, "tool")} == {built.identifier}
    expected = load_script("make_example_dsl").render_jobs(built.identifier)
    assert DSL_PATH.read_text(encoding="utf-8") == expected, f"{DSL_PATH.name} is out of date: run `{REGENERATE}`"
    assert dsl["kind"] == "app" and dsl["app"]["mode"] == "advanced-chat"


@pytest.mark.parametrize("tool_name", ["comfyui_submit", "comfyui_collect"])
def test_each_tool_node_mirrors_its_toolload_yaml(dsl, tools, tool_name):
    data = _by_tool(dsl, tool_name)["data"]
    tool = tools[tool_name]
    assert [(s["name"], s["type"], s["form"], s["required"]) for s in data["paramSchemas"]] == \
           [(p["name"], p["type"], p["form"], p.get("required", False)) for p in tool["parameters"]]
    assert data["output_schema"] == tool["output_schema"]
    assert data["tool_label"] == tool["identity"]["label"]["en_US"]
    params = {p["name"]: p for p in tool["parameters"]}
    for section, form in (("tool_parameters", "llm"), ("tool_configurations", "form")):
        for name in data[section]:
            assert params[name]["form"] == form, f"{tool_name}.{section}.{name}"
    assert set(data["params"]) == {n for n, p in params.items() if p["form"] == "llm"}
    assert set(data["tool_configurations"]) == {n for n, p in params.items() if p["form"] == "form"}


def test_collect_waits_a_valid_time_for_the_job_the_submit_made(dsl, tools):
    submit, collect = _by_tool(dsl, "comfyui_submit"), _by_tool(dsl, "comfyui_collect")
    wait = collect["data"]["tool_configurations"]["wait"]
    spec = {p["name"]: p for p in tools["comfyui_collect"]["parameters"]}["wait"]
    assert wait["type"] == "constant" and spec["min"] <= wait["value"] <= spec["max"]
    job_id = f"{{{{#{submit['id']}.job_id#}}}}"
    assert collect["data"]["tool_parameters"]["job_id"] == {"type": "mixed", "value": job_id}


def test_every_variable_reference_is_declared(dsl, tools):
    by_id = {n["id"]: n for n in _nodes(dsl)}
    texts = [v["value"] for n in _nodes(dsl, "tool") for v in n["data"]["tool_parameters"].values()
             if v["type"] == "mixed"]
    texts += [n["data"]["answer"] for n in _nodes(dsl, "answer")]
    refs = [m for t in texts for m in TEMPLATE_REF.findall(t)]
    selectors = [tuple(i["value"]) for n in _nodes(dsl, "assigner") for i in n["data"]["items"]]
    selectors += [tuple(c["variable_selector"]) for n in _nodes(dsl, "loop") for c in n["data"]["break_conditions"]]
    selectors += [tuple(i["variable_selector"]) for n in _nodes(dsl, "assigner") for i in n["data"]["items"]]
    assert refs and selectors
    for node_id, var in refs + selectors:
        data = by_id[node_id]["data"]
        if data["type"] == "start":
            assert var in {v["variable"] for v in data["variables"]}
        elif data["type"] == "tool":
            assert var in set(tools[data["tool_name"]]["output_schema"]["properties"]) | BUILTIN_TOOL_OUTPUTS, var
        elif data["type"] == "loop":
            assert var in {v["label"] for v in data["loop_variables"]}
        else:
            pytest.fail(f"unexpected reference to a {data['type']} node")
    # Answers show only the tools' text and files (custom variables render empty in an Answer).
    for node in _nodes(dsl, "answer"):
        for _node_id, var in TEMPLATE_REF.findall(node["data"]["answer"]):
            assert var in ("text", "files"), node["data"]["answer"]


def test_the_loop_has_difys_shape_and_ends_when_the_job_is_no_longer_queued_or_running(dsl):
    (loop,) = _nodes(dsl, "loop")
    (start,) = _nodes(dsl, "loop-start")
    data = loop["data"]
    assert data["start_node_id"] == start["id"] == f"{loop['id']}start" and start["type"] == "custom-loop-start"
    assert 1 <= data["loop_count"] <= 100        # Dify's LOOP_NODE_MAX_COUNT default
    (status,) = data["loop_variables"]
    assert (status["label"], status["var_type"], status["value_type"], status["value"]) == \
           ("status", "string", "constant", "queued")
    assert data["logical_operator"] == "and"
    assert sorted((c["comparison_operator"], c["value"], tuple(c["variable_selector"]))
                  for c in data["break_conditions"]) == [("is not", "queued", (loop["id"], "status")),
                                                         ("is not", "running", (loop["id"], "status"))]
    inside = {n["id"] for n in _nodes(dsl) if n.get("parentId") == loop["id"]}
    collect = _by_tool(dsl, "comfyui_collect")
    (assign,) = _nodes(dsl, "assigner")
    assert inside == {start["id"], collect["id"], assign["id"], *(n["id"] for n in _nodes(dsl, "answer")
                                                                   if n.get("parentId") == loop["id"])}
    assert all(by["data"].get("isInLoop") for by in _nodes(dsl) if by["id"] in inside)
    (item,) = assign["data"]["items"]
    assert (item["input_type"], item["operation"]) == ("variable", "over-write")
    assert item["value"] == [collect["id"], "status"] and item["variable_selector"] == [loop["id"], "status"]


def test_edges_run_submit_then_the_loop_and_inside_it_collect_assign_answer(dsl):
    ids = {n["id"]: n["data"]["type"] for n in _nodes(dsl)}
    (loop,) = _nodes(dsl, "loop")
    edges = dsl["workflow"]["graph"]["edges"]
    outside = {(ids[e["source"]], ids[e["target"]]) for e in edges if not e["data"]["isInLoop"]}
    inside = {(ids[e["source"]], ids[e["target"]]) for e in edges if e["data"]["isInLoop"]}
    assert outside == {("start", "tool"), ("tool", "answer"), ("answer", "loop")}
    assert inside == {("loop-start", "tool"), ("tool", "assigner"), ("assigner", "answer")}
    assert all(e["data"]["loop_id"] == loop["id"] and e["zIndex"] == 1002 for e in edges if e["data"]["isInLoop"])

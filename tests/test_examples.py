"""The example chatflow DSL must keep matching the plugin: its dependency is the exact package
`scripts/dev package` builds, the tool and parameters it uses exist with the same types, every
variable it reads is declared, and it is what scripts/make_example_dsl.py generates. What the
app shows when Dify runs it is tested in tests/contract/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from example_support import BUILTIN_TOOL_OUTPUTS, REGENERATE, TEMPLATE_REF, load_yaml
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
DSL_PATH = ROOT / "examples" / "comfyui_bizyair_chatflow.yml"
IDENTIFIER_RE = re.compile(
    r"^(?:([a-z0-9_-]{1,64})\/)?([a-z0-9_-]{1,255}):([0-9]{1,4})(\.[0-9]{1,4}){1,3}(-\w{1,16})?@[a-f0-9]{32,64}$")




@pytest.fixture(scope="module")
def dsl():
    return load_yaml(DSL_PATH)


@pytest.fixture(scope="module")
def plugin():
    manifest = load_yaml(ROOT / "manifest.yaml")
    provider = load_yaml(ROOT / manifest["plugins"]["tools"][0])
    tools = {}
    for rel in provider["tools"]:
        doc = load_yaml(ROOT / rel)
        tools[doc["identity"]["name"]] = doc
    return manifest, provider, tools


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A fresh build of the package, the way `scripts/dev package` makes it."""
    return load_script("build_pkg").build(ROOT, tmp_path_factory.mktemp("dist"))


def _nodes(dsl, kind=None):
    nodes = dsl["workflow"]["graph"]["nodes"]
    return [n for n in nodes if kind is None or n["data"].get("type") == kind]


def _tool_node(dsl):
    (node,) = _nodes(dsl, "tool")
    return node


def test_dsl_is_an_advanced_chat_app_with_the_plugin_as_dependency(dsl, plugin):
    manifest, _, _ = plugin
    assert dsl["kind"] == "app" and dsl["app"]["mode"] == "advanced-chat"
    (dep,) = dsl["dependencies"]
    ident = dep["value"]["plugin_unique_identifier"]
    assert dep["type"] == "package" and IDENTIFIER_RE.match(ident)
    assert ident.split("@")[0] == f"{manifest['author']}/{manifest['name']}:{manifest['version']}"
    assert _tool_node(dsl)["data"].get("plugin_unique_identifier", ident) == ident


def test_the_dependency_is_the_package_scripts_dev_package_builds(dsl, built):
    (dep,) = dsl["dependencies"]
    assert dep["value"]["plugin_unique_identifier"] == built.identifier, (
        f"the example depends on {dep['value']['plugin_unique_identifier']}, the package builds as "
        f"{built.identifier} (Dify would report a dependency mismatch): run `{REGENERATE}`")
    assert _tool_node(dsl)["data"]["plugin_unique_identifier"] == built.identifier


def test_the_example_is_what_the_generator_writes(built):
    expected = load_script("make_example_dsl").render(built.identifier)
    assert DSL_PATH.read_text(encoding="utf-8") == expected, f"{DSL_PATH.name} is out of date: run `{REGENERATE}`"


def test_tool_node_points_at_our_provider_and_tool(dsl, plugin):
    manifest, provider, tools = plugin
    data = _tool_node(dsl)["data"]
    expected = f"{manifest['author']}/{manifest['name']}/{provider['identity']['name']}"
    assert data["provider_id"] == data["provider_name"] == expected
    assert data["provider_type"] == "builtin"
    assert data["tool_name"] in tools
    assert data["tool_label"] == tools[data["tool_name"]]["identity"]["label"]["en_US"]


def test_param_schemas_mirror_the_toolload_yaml(dsl, plugin):
    _, _, tools = plugin
    data = _tool_node(dsl)["data"]
    params = tools[data["tool_name"]]["parameters"]
    assert [(s["name"], s["type"], s["form"], s["required"]) for s in data["paramSchemas"]] == \
           [(p["name"], p["type"], p["form"], p.get("required", False)) for p in params]
    assert data["output_schema"] == tools[data["tool_name"]]["output_schema"]


def test_every_value_the_node_sets_exists_with_a_matching_type(dsl, plugin):
    _, _, tools = plugin
    data = _tool_node(dsl)["data"]
    params = {p["name"]: p for p in tools[data["tool_name"]]["parameters"]}
    start_vars = {v["variable"]: v for n in _nodes(dsl, "start") for v in n["data"]["variables"]}
    start_id = _nodes(dsl, "start")[0]["id"]

    # LLM-filled parameters go in tool_parameters, builder settings in tool_configurations.
    for section, form in (("tool_parameters", "llm"), ("tool_configurations", "form")):
        for name, value in data[section].items():
            assert name in params, f"{section}.{name} is not a parameter of the tool"
            param = params[name]
            assert param["form"] == form, f"{name} is a {param['form']} parameter, not {form}"
            kind, content = value["type"], value["value"]
            if kind == "variable":
                node_id, var = content
                assert node_id == start_id and var in start_vars
                if param["type"] in ("file", "files"):
                    assert start_vars[var]["type"] == ("file" if param["type"] == "file" else "file-list")
            elif kind == "constant" and content is not None:
                ok = {"number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                      "boolean": lambda v: isinstance(v, bool),
                      "select": lambda v, p=param: v in [o["value"] for o in p["options"]]}
                assert ok.get(param["type"], lambda v: isinstance(v, str))(content), f"{name}={content!r}"
                if param["type"] == "number":
                    assert param.get("min", content) <= content <= param.get("max", content)
            else:
                assert kind in ("mixed", "constant") and param["type"] in ("string", "select", "number", "boolean")
    assert set(data["params"]) == {n for n, p in params.items() if p["form"] == "llm"}


def test_every_variable_reference_is_declared(dsl, plugin):
    _, _, tools = plugin
    node_by_id = {n["id"]: n for n in _nodes(dsl)}
    tool_node = _tool_node(dsl)
    declared = set(tools[tool_node["data"]["tool_name"]]["output_schema"]["properties"]) | BUILTIN_TOOL_OUTPUTS
    texts = [v["value"] for v in tool_node["data"]["tool_parameters"].values() if v["type"] == "mixed"]
    texts += [n["data"]["answer"] for n in _nodes(dsl, "answer")]
    refs = [m for t in texts for m in TEMPLATE_REF.findall(t)]
    assert refs, "the flow should pass the prompt and show the result"
    for node_id, var in refs:
        node = node_by_id[node_id]
        kind = node["data"]["type"]
        if kind == "start":
            assert var in {v["variable"] for v in node["data"]["variables"]}
        elif kind == "tool":
            assert var in declared, f"{var} is not an output of the tool"
        else:
            pytest.fail(f"unexpected reference to a {kind} node")
    # The reply shows the tool's sentence and its files (rendered as images, attached to the
    # message); custom variables such as markdown render empty in an Answer (see tests/contract).
    answer = _nodes(dsl, "answer")[0]["data"]["answer"]
    assert f"{{{{#{tool_node['id']}.text#}}}}" in answer and f"{{{{#{tool_node['id']}.files#}}}}" in answer


def test_edges_run_start_tool_answer(dsl):
    ids = {n["id"]: n["data"]["type"] for n in _nodes(dsl)}
    flow = {(ids[e["source"]], ids[e["target"]]) for e in dsl["workflow"]["graph"]["edges"]}
    assert flow == {("start", "tool"), ("tool", "answer")}

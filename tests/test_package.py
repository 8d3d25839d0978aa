"""The .difypkg as Dify receives it: which files go in, that the daemon's and the SDK's rules
accept the declarations, i18n coverage, the public parameter/credential interface, and signing."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from script_loader import load_script

from tools.settings import DEFAULT_TIMEOUT, MAX_TIMEOUT, MIN_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent


def _load_packer():
    return load_script("build_pkg")


bp = _load_packer()

RUNTIME_TOP_FILES = {"manifest.yaml", "main.py", "requirements.txt", "README.md", "PRIVACY.md", "LICENSE"}
RUNTIME_DIRS = ("_assets/", "provider/", "tools/", "comfyui_bridge/", "readme/")
REQUIRED = {
    "manifest.yaml", "main.py", "requirements.txt", "PRIVACY.md",
    "_assets/icon.svg", "_assets/icon-dark.svg",
    "provider/comfyui_bizyair.yaml", "provider/comfyui_bizyair.py",
    "tools/comfyui_workflow.yaml", "tools/comfyui_workflow.py",
    "tools/text_to_image.yaml", "tools/text_to_image.py",
    "comfyui_bridge/__init__.py",
}
FORBIDDEN = re.compile(r"(^|/)(tests|bench|scripts|examples|dist|\.venv|\.git|\.ci|__pycache__|\.pytest_cache)(/|$)"
                       r"|\.pyc$|(^|/)\.env$|\.difypkg$|\.pem$|(^|/)(pyproject\.toml|requirements-dev\.txt|"
                       r"\.difyignore|\.gitignore|CHANGELOG\.md|pytest\.ini|\.env\.example)$")

PROVIDER = "provider/comfyui_bizyair.yaml"
TOOLS = ("tools/comfyui_workflow.yaml", "tools/text_to_image.yaml")
# The catalogue tools: their own interface checks are in tests/test_catalogue_tools.py.
RUN_TOOLS = ("tools/edit_image.yaml", "tools/text_to_video.yaml", "tools/image_to_video.yaml")
CATALOGUE_TOOLS = RUN_TOOLS + ("tools/list_capabilities.yaml",)


def _yaml(rel: str) -> dict:
    return yaml.safe_load((ROOT / rel).read_text(encoding="utf-8"))


def _copy_runtime(dest: Path) -> Path:
    """The files the package would contain (plus .difyignore), copied to a scratch plugin dir."""
    for rel in bp.collect_files(ROOT) + [".difyignore"]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return bp.build(ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def entries(built) -> dict[str, bytes]:
    return bp.read_entries(built.path)


# ---- what is in the zip --------------------------------------------------------------------------

def test_zip_has_only_file_entries_sorted_with_forward_slashes(built):
    with zipfile.ZipFile(built.path) as zf:
        names = [i.filename for i in zf.infolist()]
        assert not [i.filename for i in zf.infolist() if i.is_dir()], "directory entries break Dify's decoder"
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert not [n for n in names if "\\" in n or n.startswith(("/", "./")) or n.endswith("/")]
    assert built.path.name == "comfyui_bizyair-0.1.0.difypkg"


def test_package_holds_exactly_the_runtime_files(entries):
    names = set(entries)
    outside = sorted(n for n in names if n not in RUNTIME_TOP_FILES and not n.startswith(RUNTIME_DIRS))
    assert outside == [], f"files that are not needed at run time: {outside}"
    leaked = sorted(n for n in names if FORBIDDEN.search(n))
    assert leaked == [], f"development files in the package: {leaked}"
    assert REQUIRED <= names, f"missing: {sorted(REQUIRED - names)}"


def test_package_is_far_below_the_50_mb_limit(built):
    assert built.uncompressed < 10 * bp.MB
    assert built.size < 5 * bp.MB
    assert built.uncompressed == sum(len(b) for b in bp.read_entries(built.path).values())


def test_identifier_is_what_the_daemon_computes(built, entries):
    assert bp.IDENTIFIER_RE.match(built.identifier)
    assert built.identifier == f"comfyui_bizyair_team/comfyui_bizyair:0.1.0@{built.checksum}"
    # decoder/checksum.go, written out independently: sha256 over sorted sha256(path)+sha256(content)
    blob = b"".join(hashlib.sha256(p.encode()).digest() + hashlib.sha256(entries[p]).digest() for p in sorted(entries))
    assert built.checksum == hashlib.sha256(blob).hexdigest()
    changed = dict(entries, **{"main.py": entries["main.py"] + b"\n"})
    assert bp.checksum_of(changed) != built.checksum


def test_the_same_sources_give_the_same_bytes(tmp_path):
    src = _copy_runtime(tmp_path / "plugin")   # a snapshot: the working tree may change meanwhile
    first = bp.build(src, tmp_path / "a").path.read_bytes()
    (src / "main.py").touch()                    # timestamps must not matter
    assert bp.build(src, tmp_path / "b").path.read_bytes() == first


# ---- .difyignore, with the daemon's gitignore semantics --------------------------------------------

def test_difyignore_drops_dev_files_and_keeps_runtime_data(tmp_path):
    src = _copy_runtime(tmp_path / "plugin")
    junk = [".venv/lib/python3.12/site.py", ".git/config", ".env", ".env.local", "tests/test_x.py",
            "tests/e2e/stdio_harness.py", "bench/run.py", "scripts/build_pkg.py", "examples/flow.yml",
            "dist/old.difypkg", "old.difypkg", "comfyui_bridge/__pycache__/engine.cpython-312.pyc",
            "tools/__pycache__/x.pyc", ".pytest_cache/v/cache", "pyproject.toml", "requirements-dev.txt",
            ".ci/run", "CHANGELOG.md", ".env.example", "signing.private.pem", "pytest.ini", "docs/_build/x.html",
            "comfyui_bridge/data/x.pyc"]
    keep = ["README.md", "readme/README_zh_Hans.md", "comfyui_bridge/data/extra/workflow.json",
            "comfyui_bridge/tests_helpers.py", "tools/examples_util.py"]
    for rel in junk + keep:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x", encoding="utf-8")
    files = set(bp.collect_files(src))
    assert not files & set(junk), sorted(files & set(junk))
    assert set(keep) <= files
    assert {"manifest.yaml", "comfyui_bridge/data/node_defs.json"} <= files


@pytest.mark.parametrize(("pattern", "path", "is_dir", "excluded"), [
    ("tests/", ["tests"], True, True),
    ("tests/", ["pkg", "tests"], True, True),          # unanchored: any depth
    ("tests/", ["tests"], False, False),               # dir-only pattern, file of that name
    ("/tests/", ["pkg", "tests"], True, False),        # anchored: root only
    ("/tests/", ["tests"], True, True),
    ("*.pyc", ["a", "b", "c.pyc"], False, True),
    ("*.pyc", ["a", "b", "c.py"], False, False),
    ("docs/_build", ["docs", "_build"], True, True),
    ("docs/_build", ["x", "docs", "_build"], True, False),
    ("**/cache", ["a", "b", "cache"], True, True),
    ("[!x].txt", ["a.txt"], False, False),             # Go's filepath.Match negates with ^, not !
    ("[^x].txt", ["a.txt"], False, True),
    ("!keep.txt", ["keep.txt"], False, False),         # a negation never excludes
])
def test_ignore_patterns_follow_go_git(pattern, path, is_dir, excluded):
    assert bp.is_excluded(path, is_dir, [bp.IgnorePattern.parse(pattern)]) is excluded


def test_a_negation_cannot_bring_back_an_excluded_file(tmp_path):
    (tmp_path / ".difyignore").write_text("*.json\n!keep.json\n", encoding="utf-8")
    for name in ("keep.json", "drop.json", "main.py"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    # (.difyignore itself is packed unless it lists itself, as with the Dify CLI)
    assert bp.collect_files(tmp_path) == [".difyignore", "main.py"]


def test_without_an_ignore_file_everything_is_packed(tmp_path):
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x").write_text("x", encoding="utf-8")
    (tmp_path / "main.py").write_text("", encoding="utf-8")
    assert bp.collect_files(tmp_path) == [".venv/x", "main.py"]


# ---- declarations: the packer's checks and the real SDK -------------------------------------------

def test_packer_finds_no_problem_in_the_repository():
    report = bp.validate(ROOT, bp.collect_files(ROOT))
    assert report.errors == []


def _break_manifest_version(src):
    text = (src / "manifest.yaml").read_text(encoding="utf-8").replace('version: "0.1.0"', "version: 1.0")
    (src / "manifest.yaml").write_text(text, encoding="utf-8")


def _edit_yaml(rel, change):
    def edit(src):
        doc = yaml.safe_load((src / rel).read_text(encoding="utf-8"))
        change(doc)
        (src / rel).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return edit


def _param(doc, name):
    return next(p for p in doc["parameters"] if p["name"] == name)


MISTAKES = {
    "unquoted version": (_break_manifest_version, "version must be a quoted string"),
    "runner version as number": (_edit_yaml("manifest.yaml", lambda d: d["meta"]["runner"].update(version=3.12)),
                                 "meta.runner.version must be a quoted string"),
    "upper-case author": (_edit_yaml("manifest.yaml", lambda d: d.update(author="ComfyTeam")), "author"),
    "unknown tag": (_edit_yaml("manifest.yaml", lambda d: d.update(tags=["images"])), "tag 'images'"),
    "missing icon": (lambda src: (src / "_assets" / "icon-dark.svg").unlink(), "'icon-dark.svg' not found in _assets/"),
    "credentials as a list": (_edit_yaml(PROVIDER, lambda d: d.update(credentials_for_provider=[
        {"name": "x", "type": "text-input", "label": {"en_US": "X"}}])), "must be a mapping"),
    "provider tag outside the SDK enum": (_edit_yaml(PROVIDER, lambda d: d["identity"].update(tags=["agent"])),
                                          "ToolLabelEnum"),
    "no human_description": (_edit_yaml(TOOLS[0], lambda d: _param(d, "seed").pop("human_description")),
                             "parameter seed human_description: missing"),
    "llm parameter without llm_description": (
        _edit_yaml(TOOLS[0], lambda d: _param(d, "prompt").pop("llm_description")), "needs an llm_description"),
    "select default not an option": (_edit_yaml(TOOLS[1], lambda d: _param(d, "model").update(default="sd15")),
                                     "default 'sd15' is not one of the options"),
    "no description.llm": (_edit_yaml(TOOLS[1], lambda d: d["description"].pop("llm")), "description.llm is required"),
    "tool source excluded": (lambda src: (src / ".difyignore").write_text(
        (src / ".difyignore").read_text(encoding="utf-8") + "text_to_image.py\n", encoding="utf-8"),
        "'tools/text_to_image.py' is not in the package"),
    "two Tool subclasses": (lambda src: (src / "tools" / "comfyui_workflow.py").write_text(
        (src / "tools" / "comfyui_workflow.py").read_text(encoding="utf-8") + "\n\nclass Other(Tool):\n    pass\n",
        encoding="utf-8"), "subclasses of Tool"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_packer_refuses_what_dify_would_refuse(mistake, tmp_path):
    src = _copy_runtime(tmp_path / "plugin")
    apply, expected = MISTAKES[mistake]
    apply(src)
    with pytest.raises(bp.PackageError) as info:
        bp.build(src, tmp_path / "out")
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.difypkg"))


def test_size_limit_names_the_five_largest_files(tmp_path):
    src = _copy_runtime(tmp_path / "plugin")
    for i in range(6):
        (src / "comfyui_bridge" / "data" / f"big{i}.bin").write_bytes(b"\0" * (300_000 + i))
    with pytest.raises(bp.PackageError) as info:
        bp.build(src, tmp_path / "out", max_size_mb=1)
    text = "\n".join(info.value.problems)
    assert "Plugin package size is too large" in text
    assert "1. name: comfyui_bridge/data/big" in text
    assert len(re.findall(r"^\d\. name: ", text, re.M)) == 5


def test_manifest_pins_the_choices_dify_depends_on():
    m = _yaml("manifest.yaml")
    assert (m["author"], m["name"], m["version"], m["type"]) == (
        "comfyui_bizyair_team", "comfyui_bizyair", "0.1.0", "plugin")
    assert m["meta"]["runner"] == {"language": "python", "version": "3.12", "entrypoint": "main"}
    assert m["meta"]["arch"] == ["amd64", "arm64"]
    # Dify 1.3.0 is the first whose API merges our blob chunks up to 30 MiB (up to 1.2 the daemon
    # merged them and failed the call above 15 MiB); see CHANGELOG.md.
    assert m["meta"]["minimum_dify_version"] == "1.3.0"
    # The only backwards invocation is plugin storage (records of submitted jobs, jobstore.py): 64 MiB.
    # 1 GiB: a run may hold 400 MB of outputs (budget.RUN_OUTPUT_LIMIT), about twice that at its peak.
    assert m["resource"] == {"memory": 1073741824,
                             "permission": {"storage": {"enabled": True, "size": 64 * 1024 * 1024}}}
    assert m["network"] == {"domains": ["*.myqcloud.com"]}
    # The project has no public URL yet: only a release build (scripts/release.py) writes these.
    assert "repo" not in m and "contact" not in m
    assert m["plugins"] == {"tools": [PROVIDER]}
    assert (m["icon"], m["icon_dark"], m["privacy"]) == ("icon.svg", "icon-dark.svg", "PRIVACY.md")
    assert set(m["tags"]) <= bp.MANIFEST_TAGS and set(m["tags"]) <= bp.PROVIDER_TAGS


def test_the_sdk_loads_every_declaration_and_class_from_the_unpacked_package(built, tmp_path):
    """Runs the SDK's own start-up loading (PluginRegistration) in the unpacked package, in a
    separate interpreter (importing dify_plugin monkey-patches the process with gevent)."""
    workdir = tmp_path / "wd"
    with zipfile.ZipFile(built.path) as zf:
        zf.extractall(workdir)
    script = (
        "import json, yaml\n"
        "from dify_plugin.config.config import DifyPluginEnv\n"
        "from dify_plugin.core.entities.plugin.setup import PluginConfiguration\n"
        "from dify_plugin.entities.tool import ToolProviderConfiguration\n"
        "from dify_plugin.core.plugin_registration import PluginRegistration\n"
        "m = PluginConfiguration(**yaml.safe_load(open('manifest.yaml', encoding='utf-8')))\n"
        f"p = ToolProviderConfiguration(**yaml.safe_load(open('{PROVIDER}', encoding='utf-8')))\n"
        "r = PluginRegistration(DifyPluginEnv())\n"
        "prov, cls, tools = r.tools_mapping['comfyui_bizyair']\n"
        "print(json.dumps({'name': m.name, 'version': m.version,\n"
        "  'credentials': [c.name for c in p.credentials_schema],\n"
        "  'tools': {t.identity.name: [x.name for x in t.parameters] for t in p.tools},\n"
        "  'provider_class': cls.__name__, 'tool_classes': {k: v[1].__name__ for k, v in tools.items()},\n"
        "  'assets': sorted(a.filename for a in r.files)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=workdir,  # noqa: S603 - our own interpreter
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (got["name"], got["version"]) == ("comfyui_bizyair", "0.1.0")
    assert got["credentials"] == list(CREDENTIALS)
    assert got["tools"] == {name: [p[0] for p in params] for name, params in TOOL_PARAMS.items()}
    assert set(got["tool_classes"]) == set(TOOL_PARAMS)
    assert got["assets"] == ["icon-dark.svg", "icon.svg"]


# ---- the public interface ------------------------------------------------------------------------

CREDENTIALS = {
    "comfyui_base_url": ("text-input", True), "comfyui_token": ("secret-input", False),
    "comfyui_extra_header": ("secret-input", False), "bizyair_api_key": ("secret-input", False),
    "comfy_org_api_key": ("secret-input", False),
    "cos_region": ("text-input", False), "cos_secret_id": ("secret-input", False),
    "cos_secret_key": ("secret-input", False), "cos_bucket": ("text-input", False),
    "cos_token": ("secret-input", False), "cos_prefix": ("text-input", False),
    "cos_url_mode": ("select", False), "cos_url_expires": ("text-input", False),
    "cos_domain": ("text-input", False), "cos_endpoint": ("text-input", False),
}

TOOL_PARAMS = {
    "comfyui_workflow": [
        ("prompt", "string", "llm"), ("negative_prompt", "string", "llm"), ("workflow", "file", "form"),
        ("workflow_json", "string", "form"), ("prompt_node", "string", "form"), ("negative_node", "string", "form"),
        ("seed", "number", "form"), ("overrides", "string", "form"), ("images", "files", "llm"),
        ("image_nodes", "string", "form"), ("timeout", "number", "form"), ("max_blob_mb", "number", "form"),
        ("progress", "boolean", "form")],
    "text_to_image": [
        ("prompt", "string", "llm"), ("negative_prompt", "string", "llm"), ("model", "select", "form"),
        ("width", "number", "form"), ("height", "number", "form"), ("seed", "number", "form"),
        ("workflow", "file", "form"), ("timeout", "number", "form"), ("max_blob_mb", "number", "form"),
        ("progress", "boolean", "form"), ("mode", "select", "form")],
    "edit_image": [
        ("images", "files", "llm"), ("prompt", "string", "llm"), ("model", "select", "form"),
        ("aspect_ratio", "select", "llm"), ("resolution", "select", "form"), ("count", "number", "form"),
        ("seed", "number", "form"), ("timeout", "number", "form"), ("max_blob_mb", "number", "form"),
        ("progress", "boolean", "form")],
    "text_to_video": [
        ("prompt", "string", "llm"), ("negative_prompt", "string", "llm"), ("model", "select", "form"),
        ("duration", "number", "llm"), ("aspect_ratio", "select", "llm"), ("resolution", "select", "form"),
        ("audio", "select", "form"), ("seed", "number", "form"), ("timeout", "number", "form"),
        ("max_blob_mb", "number", "form"), ("progress", "boolean", "form"), ("mode", "select", "form")],
    "image_to_video": [
        ("image", "file", "llm"), ("prompt", "string", "llm"), ("negative_prompt", "string", "llm"),
        ("model", "select", "form"), ("duration", "number", "llm"), ("aspect_ratio", "select", "llm"),
        ("resolution", "select", "form"), ("audio", "select", "form"), ("seed", "number", "form"),
        ("timeout", "number", "form"), ("max_blob_mb", "number", "form"), ("progress", "boolean", "form"),
        ("mode", "select", "form")],
    "list_capabilities": [("timeout", "number", "form")],
    # Submit now, collect later (tests/test_job_tools.py checks these in detail).
    "comfyui_submit": [
        ("prompt", "string", "llm"), ("negative_prompt", "string", "llm"), ("workflow", "file", "form"),
        ("workflow_json", "string", "form"), ("prompt_node", "string", "form"), ("negative_node", "string", "form"),
        ("seed", "number", "form"), ("overrides", "string", "form"), ("images", "files", "llm"),
        ("image_nodes", "string", "form"), ("max_blob_mb", "number", "form")],
    "comfyui_collect": [("job_id", "string", "llm"), ("wait", "number", "form")],
    "comfyui_cancel": [("job_id", "string", "llm")],
}


def test_provider_credentials_are_the_documented_interface():
    creds = _yaml(PROVIDER)["credentials_for_provider"]
    assert {k: (v["type"], v.get("required", False)) for k, v in creds.items()} == CREDENTIALS
    assert list(creds) == list(CREDENTIALS)
    assert creds["cos_prefix"]["default"] == "comfyui/"
    assert creds["cos_url_expires"]["default"] == "3600"      # Dify stores credentials as strings
    assert creds["cos_url_mode"]["default"] == "public"
    assert [o["value"] for o in creds["cos_url_mode"]["options"]] == ["public", "presigned"]
    links = {k: v.get("url") for k, v in creds.items()}
    assert links["cos_secret_id"] == links["cos_secret_key"] == "https://console.cloud.tencent.com/cam/capi"  # noqa: S105
    assert links["cos_bucket"] == links["cos_region"] == "https://console.cloud.tencent.com/cos/bucket"
    assert links["bizyair_api_key"] == "https://cloud.siliconflow.cn/account/ak"
    assert links["cos_token"].startswith("https://cloud.tencent.com/document/product/436/")
    assert "host.docker.internal" in creds["comfyui_base_url"]["help"]["en_US"]


@pytest.mark.parametrize("rel", TOOLS)
def test_tool_parameters_are_the_documented_interface(rel):
    doc = _yaml(rel)
    assert [(p["name"], p["type"], p["form"]) for p in doc["parameters"]] == TOOL_PARAMS[doc["identity"]["name"]]
    by_name = {p["name"]: p for p in doc["parameters"]}
    # The YAML states the code's own default and bounds (Dify shows and enforces the YAML's).
    assert (by_name["timeout"]["default"], by_name["timeout"]["min"], by_name["timeout"]["max"]) == (
        DEFAULT_TIMEOUT, MIN_TIMEOUT, MAX_TIMEOUT)
    blob = by_name["max_blob_mb"]
    assert (blob["default"], blob["min"], blob["max"]) == (15, 0, 30)
    assert by_name["progress"]["default"] is False
    assert by_name["seed"]["min"] == 0 and by_name["seed"]["precision"] == 0
    assert not any(p.get("required") for p in doc["parameters"] if p["name"] not in ("prompt", "model"))


def test_text_to_image_model_choices():
    params = {p["name"]: p for p in _yaml(TOOLS[1])["parameters"]}
    model = params["model"]
    assert [o["value"] for o in model["options"]] == ["sdxl", "flux_dev", "kolors"]
    assert model["default"] == "sdxl"
    assert "older" in next(o for o in model["options"] if o["value"] == "kolors")["label"]["en_US"]
    assert params["prompt"]["required"] is True
    for side in ("width", "height"):
        assert (params[side]["default"], params[side]["min"], params[side]["max"]) == (1024, 256, 2048)


OUTPUT_VARIABLES = {"url": "string", "urls": "array", "markdown": "string", "prompt_id": "string",
                    "status": "string", "seeds": "object", "progress": "string"}
# The tools with a `mode` also send, in submit mode, what comfyui_submit sends (tests/test_job_tools.py).
SUBMIT_VARIABLES = {"job_id": "string", "position": "number"}
SUBMIT_MODE_TOOLS = ("tools/text_to_image.yaml", "tools/text_to_video.yaml", "tools/image_to_video.yaml")


def _emitted_variables(name: str = "delivery.py") -> set[str]:
    """Variable names the tool code actually sends (create_[stream_]variable_message("name", …) and
    delivery.stream_text(tool, "name", …))."""
    text = (ROOT / "tools" / name).read_text()
    return set(re.findall(r'(?:create_(?:stream_)?variable_message\(|stream_text\(\s*\w+,)\s*"([a-z_]+)"', text))


@pytest.mark.parametrize("rel", TOOLS + RUN_TOOLS)
def test_output_schema_declares_exactly_the_variables_the_tools_emit(rel):
    props = _yaml(rel)["output_schema"]["properties"]
    extra = SUBMIT_VARIABLES if rel in SUBMIT_MODE_TOOLS else {}
    assert {k: v["type"] for k, v in props.items()} == {**OUTPUT_VARIABLES, **extra}
    assert set(props) == _emitted_variables() | set(extra)
    assert props["urls"]["items"] == {"type": "string"}


@pytest.mark.parametrize("rel", TOOLS + RUN_TOOLS)
def test_llm_description_tells_an_agent_how_to_use_the_tool(rel):
    doc = _yaml(rel)
    llm = doc["description"]["llm"]
    assert len(llm) > 300
    assert "English" in llm and "URL" in llm
    assert re.search(r"never|do not", llm, re.I)
    prompt = next(p for p in doc["parameters"] if p["name"] == "prompt")
    assert "English" in prompt["llm_description"]


# ---- i18n ----------------------------------------------------------------------------------------

def _i18n_fields():
    """(where, kind, value) for every translatable text the Dify UI shows."""
    m = _yaml("manifest.yaml")
    yield "manifest label", "label", m["label"]
    yield "manifest description", "description", m["description"]
    p = _yaml(PROVIDER)
    yield "provider label", "label", p["identity"]["label"]
    yield "provider description", "description", p["identity"]["description"]
    for name, conf in p["credentials_for_provider"].items():
        yield f"credential {name} label", "label", conf["label"]
        for key in ("help", "placeholder"):
            if key in conf:
                yield f"credential {name} {key}", key, conf[key]
        for opt in conf.get("options", []):
            yield f"credential {name} option {opt['value']}", "label", opt["label"]
    for rel in TOOLS + CATALOGUE_TOOLS:
        t = _yaml(rel)
        yield f"{rel} label", "label", t["identity"]["label"]
        yield f"{rel} description", "description", t["description"]["human"]
        for prm in t["parameters"]:
            yield f"{rel} {prm['name']} label", "label", prm["label"]
            yield f"{rel} {prm['name']} human_description", "description", prm["human_description"]
            if "placeholder" in prm:
                yield f"{rel} {prm['name']} placeholder", "placeholder", prm["placeholder"]
            for opt in prm.get("options", []):
                yield f"{rel} {prm['name']} option {opt['value']}", "label", opt["label"]


I18N = list(_i18n_fields())


@pytest.mark.parametrize(("where", "kind", "value"), I18N, ids=[w for w, _, _ in I18N])
def test_every_text_is_translated(where, kind, value):
    needed = ["en_US", "zh_Hans", "ja_JP"] + (["pt_BR"] if kind in ("label", "description") else [])
    missing = [lang for lang in needed if not str(value.get(lang) or "").strip()]
    assert missing == [], f"{where}: no {missing}"
    if kind in ("description", "help"):
        # Longer texts must really be translated, not English copied over.
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", value["zh_Hans"]), f"{where}: zh_Hans is not Chinese"
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", value["ja_JP"]), f"{where}: ja_JP is not Japanese"
        assert value["pt_BR"] != value["en_US"], f"{where}: pt_BR is a copy of en_US"


def test_icons_are_small_valid_svgs():
    for name in ("icon.svg", "icon-dark.svg"):
        data = (ROOT / "_assets" / name).read_bytes()
        assert len(data) < 8 * 1024
        root = __import__("xml.etree.ElementTree", fromlist=["fromstring"]).fromstring(data)
        assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 64 64"
    assert (ROOT / "_assets" / "icon.svg").read_bytes() != (ROOT / "_assets" / "icon-dark.svg").read_bytes()


# ---- signing -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return bp.keygen(d, "one", bits=2048), bp.keygen(d, "two", bits=2048)


def test_keys_are_pkcs1_pem_like_the_dify_cli(keys):
    (private, public), _ = keys
    assert private.name == "one.private.pem" and public.name == "one.public.pem"
    assert private.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN RSA PUBLIC KEY-----")


def test_signed_package_verifies_with_its_public_key(built, keys, tmp_path):
    (private, public), _ = keys
    signed = bp.sign(built.path, private, tmp_path / "signed.difypkg", now=1_700_000_000)
    bp.verify(signed, public)
    with zipfile.ZipFile(signed) as zf:
        infos = zf.infolist()
        comment = json.loads(zf.comment)
        assert infos[-1].filename == ".verification.dify.json"
        assert json.loads(zf.read(infos[-1])) == {"authorized_category": "community"}
        assert not [i for i in infos if i.is_dir()]
        # The daemon's algorithm, written out here on its own: sha256 of each entry in zip order,
        # then the decimal time, RSA PKCS#1 v1.5 / SHA-256.
        data = b"".join(hashlib.sha256(zf.read(i)).digest() for i in infos) + str(comment["time"]).encode()
    assert set(comment) == {"signature", "time"} and comment["time"] == 1_700_000_000
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_pem_public_key(public.read_bytes())
    key.verify(base64.b64decode(comment["signature"]), data, padding.PKCS1v15(), hashes.SHA256())


def test_changed_content_fails_verification(built, keys, tmp_path):
    (private, public), _ = keys
    signed = bp.sign(built.path, private, tmp_path / "signed.difypkg")
    with zipfile.ZipFile(signed) as zf:
        comment = zf.comment
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    tampered = tmp_path / "tampered.difypkg"
    items = [(n, d.replace(b"Plugin(", b"Plugin (") if n == "main.py" else d) for n, d in items]
    assert dict(items)["main.py"] != bp.read_entries(signed)["main.py"]
    bp.write_zip(tampered, items, comment)
    with pytest.raises(bp.SignatureError, match="does not match"):
        bp.verify(tampered, public)


def test_another_key_fails_verification(built, keys, tmp_path):
    (private, _), (_, other_public) = keys
    signed = bp.sign(built.path, private, tmp_path / "signed.difypkg")
    with pytest.raises(bp.SignatureError):
        bp.verify(signed, other_public)


def test_unsigned_package_fails_verification(built, keys):
    (_, public), _ = keys
    with pytest.raises(bp.SignatureError, match="not signed"):
        bp.verify(built.path, public)


def test_signing_twice_keeps_one_verification_file(built, keys, tmp_path):
    (private, public), _ = keys
    once = bp.sign(built.path, private, tmp_path / "once.difypkg")
    twice = bp.sign(once, private, tmp_path / "twice.difypkg", category="partner")
    bp.verify(twice, public)
    names = [i.filename for i in zipfile.ZipFile(twice).infolist()]
    assert names.count(".verification.dify.json") == 1


# ---- public keys: exactly what the plugin daemon loads (pkg/utils/encryption/rsa.go LoadPublicKey) ----
# The daemon reads each file of THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS with Go's pem.Decode,
# wants block type "RSA PUBLIC KEY" and nothing after the block, parses it with
# x509.ParsePKCS1PublicKey, and gives up on the whole list at the first key that fails.

def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)   # minimal two's complement
    return b"\x02" + _der_len(len(body)) + body


def _der_seq(*items: bytes) -> bytes:
    body = b"".join(items)
    return b"\x30" + _der_len(len(body)) + body


def _pem(kind: str, der: bytes, newline: str = "\n") -> bytes:
    b64 = base64.b64encode(der).decode()
    lines = [f"-----BEGIN {kind}-----", *(b64[i:i + 64] for i in range(0, len(b64), 64)), f"-----END {kind}-----"]
    return (newline.join(lines) + newline).encode()


@pytest.fixture(scope="module")
def signed_pkg(built, keys, tmp_path_factory):
    (private, _), _ = keys
    return bp.sign(built.path, private, tmp_path_factory.mktemp("signed") / "signed.difypkg")


@pytest.fixture(scope="module")
def key_numbers(keys):
    from cryptography.hazmat.primitives import serialization
    (_, public), _ = keys
    numbers = serialization.load_pem_public_key(public.read_bytes()).public_numbers()
    return numbers.n, numbers.e


def _write(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_keygen_public_key_is_byte_for_byte_the_pkcs1_form_the_daemon_loads(keys, key_numbers):
    (_, public), _ = keys
    n, e = key_numbers
    assert public.read_bytes() == _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e)))
    assert bp.load_daemon_public_key(public) == bp.DaemonKey(public, n, e)


ACCEPTED = {
    # Windows line endings: getLine drops the \r, base64 ignores it.
    "crlf": lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e)), "\r\n"),
    # Text before the block is skipped (pem.Decode looks for "\n-----BEGIN ").
    "comment before the block": lambda n, e: b"signing key of the plugin team\n" + _pem(
        "RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e))),
    # No newline after the END line: nothing is left after the block either.
    "no final newline": lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e)))[:-1],
    # encoding/asn1 allows extra elements at the end of a SEQUENCE ("version numbers have increased").
    "extra element inside the sequence": lambda n, e: _pem(
        "RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e), _der_int(7))),
}


@pytest.mark.parametrize("variant", sorted(ACCEPTED))
def test_keys_the_daemon_loads_verify(variant, signed_pkg, key_numbers, tmp_path):
    path = _write(tmp_path, "k.public.pem", ACCEPTED[variant](*key_numbers))
    assert bp.verify(signed_pkg, path).path == path


REFUSED = {
    "SPKI 'BEGIN PUBLIC KEY' (openssl rsa -pubout)": (
        lambda n, e: _pem("PUBLIC KEY", _der_seq(_der_seq(bytes.fromhex("06092a864886f70d010101"), b"\x05\x00"),
                                                 b"\x03" + _der_len(len(_der_seq(_der_int(n), _der_int(e))) + 1)
                                                 + b"\x00" + _der_seq(_der_int(n), _der_int(e)))),
        "found a 'PUBLIC KEY' block"),
    "an extra blank line after the END line": (
        lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e))) + b"\n",
        "1 byte(s) after the END line"),
    "a second key appended": (
        lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e))) * 2, "after the END line"),
    "a private key": (lambda n, e: _pem("RSA PRIVATE KEY", _der_seq(_der_int(0), _der_int(n), _der_int(e))),
                      "found a 'RSA PRIVATE KEY' block"),
    "not PEM at all": (lambda n, e: _der_seq(_der_int(n), _der_int(e)), "found no PEM block"),
    "integer with a superfluous leading zero": (
        lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), b"\x02\x04\x00" + e.to_bytes(3, "big"))),
        "not minimally-encoded"),
    "bytes after the DER sequence": (
        lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(e)) + b"\x00"), "trailing data"),
    "negative modulus": (lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(-n), _der_int(e))),
                         "zero or negative"),
    "exponent beyond a Go int32": (lambda n, e: _pem("RSA PUBLIC KEY", _der_seq(_der_int(n), _der_int(1 << 31))),
                                   "large public exponent"),
}


@pytest.mark.parametrize("variant", sorted(REFUSED))
def test_keys_the_daemon_refuses_are_refused_before_any_signature_check(variant, signed_pkg, key_numbers, tmp_path):
    make, reason = REFUSED[variant]
    path = _write(tmp_path, "k.public.pem", make(*key_numbers))
    with pytest.raises(bp.SignatureError) as info:
        bp.verify(signed_pkg, path)
    assert reason in str(info.value) and str(path) in str(info.value)
    assert "verifies no package at all" in str(info.value)


def test_one_unloadable_key_in_the_list_fails_every_verification(signed_pkg, keys, key_numbers, tmp_path):
    """Like the daemon: all keys are loaded before any is tried, so a good key does not help."""
    (_, good), _ = keys
    spki = _write(tmp_path, "spki.pem", REFUSED["SPKI 'BEGIN PUBLIC KEY' (openssl rsa -pubout)"][0](*key_numbers))
    assert bp.verify(signed_pkg, str(good)).path == good
    for listing in (f"{good},{spki}", f"{spki},{good}"):
        with pytest.raises(bp.SignatureError, match="spki.pem is not a PKCS#1"):
            bp.verify(signed_pkg, listing)


def test_key_list_is_read_like_the_daemon_setting(signed_pkg, keys):
    (_, good), (_, other) = keys
    assert bp.verify(signed_pkg, f" {other} , {good} ").path == good        # paths are TrimSpace'd
    with pytest.raises(bp.SignatureError, match="empty entry"):
        bp.verify(signed_pkg, f"{good},")                                   # ReadFile("") fails
    with pytest.raises(bp.SignatureError, match="cannot be read"):
        bp.verify(signed_pkg, f"{good},{good.parent / 'missing.pem'}")


def test_a_key_go_loads_but_cannot_verify_with_is_skipped(signed_pkg, keys, tmp_path):
    """Go ≥ 1.24 refuses RSA keys under 1024 bits when verifying, after loading them fine."""
    (_, good), _ = keys
    small = _write(tmp_path, "small.pem", _pem("RSA PUBLIC KEY", _der_seq(_der_int(3233), _der_int(17))))
    assert bp.load_daemon_public_key(small) == bp.DaemonKey(small, 3233, 17)
    assert bp.verify(signed_pkg, f"{small},{good}").path == good
    with pytest.raises(bp.SignatureError, match="small.pem loads but can never verify"):
        bp.verify(signed_pkg, small)


def test_worktree_git_file_is_not_packed(tmp_path):
    """In a git worktree `.git` is a file ("gitdir: …"), not a directory: it must stay out too."""
    src = _copy_runtime(tmp_path / "plugin")
    (src / ".git").write_text("gitdir: /somewhere/.git/worktrees/x\n", encoding="utf-8")
    assert ".git" not in bp.collect_files(src)


# ---- command line --------------------------------------------------------------------------------

def test_cli_builds_signs_and_verifies(tmp_path):
    def run(*args):
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_pkg.py"), *args],  # noqa: S603
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr

    code, out, err = run("build", "--out", str(tmp_path))
    assert code == 0, err
    pkg = Path(out.splitlines()[0])
    assert pkg == tmp_path / "comfyui_bizyair-0.1.0.difypkg" and pkg.is_file()
    assert re.search(r"^size: \d+ bytes", out, re.M)
    assert re.search(r"^identifier: comfyui_bizyair_team/comfyui_bizyair:0\.1\.0@[0-9a-f]{64}$", out, re.M)
    assert run("keygen", "--out-dir", str(tmp_path / "k"), "--bits", "2048")[0] == 0
    code, out, err = run("sign", str(pkg), "--key", str(tmp_path / "k" / "dify_plugin_signing_key.private.pem"))
    assert code == 0, err
    signed = tmp_path / "comfyui_bizyair-0.1.0.signed.difypkg"
    assert out.splitlines()[0] == str(signed)
    code, out, _ = run("verify", str(signed), "--pub", str(tmp_path / "k" / "dify_plugin_signing_key.public.pem"))
    assert code == 0 and "signature OK" in out
    code, _, err = run("verify", str(pkg), "--pub", str(tmp_path / "k" / "dify_plugin_signing_key.public.pem"))
    assert code == 1 and "not signed" in err

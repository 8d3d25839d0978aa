"""The release build for the Dify Marketplace (scripts/release.py) and our implementation of the
Marketplace's review rules (scripts/marketplace.py): a release of this repository passes them, a
release without a source repository and contact is refused, and each rule rejects what it should."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
REPO = "https://github.com/example-org/comfyui-bizyair"
CONTACT = "maintainer@example.com"


bp = load_script("build_pkg")
mp = load_script("marketplace")
rl = load_script("release")

VERSION = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))["version"]


def _source_copy(dest: Path, changelog: str | None = None) -> Path:
    """The files a release reads (runtime files, .difyignore, CHANGELOG.md) in a directory outside
    any git repository, with an unreleased CHANGELOG entry for the manifest's version."""
    for rel in bp.collect_files(ROOT) + [".difyignore"]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, dest / rel)
    (dest / "CHANGELOG.md").write_text(
        changelog if changelog is not None else f"# Changelog\n\n## {VERSION} — unreleased\n\n- A test release.\n",
        encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    src = _source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("out")
    result = rl.release(src, rl.Settings(REPO, CONTACT), out)
    return result, out


@pytest.fixture(scope="module")
def entries(released) -> dict[str, bytes]:
    return bp.read_entries(released[0].path)


@pytest.fixture(scope="module")
def unpacked(released, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("unpacked")
    mp.unpack(released[0].path, target)
    return target


# ---- a release of this repository ------------------------------------------------------------------

def test_release_writes_the_package_and_its_notes_and_nothing_else(released):
    result, out = released
    name = f"comfyui_bizyair-{VERSION}"
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.difypkg", f"{name}.release-notes.md"]
    assert result.identifier == bp.unique_identifier(result.path)
    assert bp.IDENTIFIER_RE.match(result.identifier)


def test_repo_and_contact_are_stamped_and_nothing_else_changes_in_the_manifest(entries):
    packed = yaml.safe_load(entries["manifest.yaml"])
    source = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    assert (packed.pop("repo"), packed.pop("contact")) == (REPO, CONTACT)
    assert packed == source


@pytest.mark.parametrize(("rel", "label"), [("README.md", "**Source:**"), ("readme/README_zh_Hans.md", "**源代码：**")])
def test_the_readmes_source_line_names_the_repository(entries, rel, label):
    packed = entries[rel].decode().split("\n")
    source = (ROOT / rel).read_text(encoding="utf-8").split("\n")
    changed = [i for i, (a, b) in enumerate(zip(packed, source, strict=True)) if a != b]
    assert len(changed) == 1
    assert packed[changed[0]] == f"{label} {REPO}" and source[changed[0]].startswith(label)


def test_requirements_are_pinned_to_the_dev_venv_for_the_runtime_closure_only(entries):
    lines = [ln for ln in entries["requirements.txt"].decode().splitlines() if ln and not ln.startswith("#")]
    pins = dict(ln.split("==") for ln in lines)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", ln) for ln in lines), lines
    norm = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    # The four direct dependencies of requirements.txt, at the versions this venv (the one running
    # the tests) has, and what they pull in: urllib3 via requests, pydantic and gevent via dify_plugin.
    for name in ("dify-plugin", "websocket-client", "requests", "cos-python-sdk-v5", "urllib3", "pydantic", "gevent"):
        assert norm[name] == metadata.version(name), name
    # Development tools never reach the package.
    assert not {"pytest", "moto", "boto3", "aiohttp", "flask-cors", "cryptography"} & set(norm)


def test_the_release_passes_the_marketplace_review(released):
    review = mp.review_package(released[0].path)
    assert review.blocking_errors == []
    assert review.declared_domains == ["*.myqcloud.com"]
    assert review.detected_domains == []            # no example address or live link left in the code
    assert {f.message for f in review.safety} == {"raised exception may expose credential-like values",
                                                  "return value may expose credential-like values"}
    assert review.result("dependency_pinning").warnings[0].endswith("0 unpinned)")


def test_every_credential_like_warning_is_explained_in_the_notes_and_no_explanation_is_stale(released):
    result, _ = released
    explanations = rl.reviewed_explanations()
    findings = result.outcome.review.safety
    assert {f.key for f in findings} == set(explanations)
    notes = result.notes.read_text(encoding="utf-8")
    for finding in findings:
        assert f"`{finding.path}:{finding.line}` ({finding.function})" in notes
        assert explanations[finding.key] in notes


def test_the_sdk_accepts_the_stamped_manifest(unpacked):
    script = ("import json, yaml\n"
              "from dify_plugin.core.entities.plugin.setup import PluginConfiguration\n"
              "m = PluginConfiguration(**yaml.safe_load(open('manifest.yaml', encoding='utf-8')))\n"
              "print(json.dumps({'repo': m.repo, 'min': m.meta.minimum_dify_version,\n"
              "                  'storage': m.resource.permission.storage.model_dump()}))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=unpacked,  # noqa: S603 - our own interpreter
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "repo": REPO, "min": "1.3.0", "storage": {"enabled": True, "size": 64 * 1024 * 1024}}


def test_release_signs_with_the_given_key(tmp_path):
    private, public = bp.keygen(tmp_path / "keys", "team", bits=2048)
    result = rl.release(_source_copy(tmp_path / "src"), rl.Settings(REPO, CONTACT), tmp_path / "out",
                        sign_key=private)
    assert result.signed == tmp_path / "out" / f"comfyui_bizyair-{VERSION}.signed.difypkg"
    assert bp.verify(result.signed, public).path == public
    with pytest.raises(bp.SignatureError, match="not signed"):
        bp.verify(result.path, public)


# ---- refusals ---------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "release.py"), *args],  # noqa: S603
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("flags", "message"), [
    ([], "missing repo and contact"),
    (["--repo", REPO], "missing contact"),
    (["--contact", CONTACT], "missing repo"),
])
def test_release_is_refused_without_repo_and_contact(flags, message, tmp_path):
    src = _source_copy(tmp_path / "src")
    proc = _cli("--src", str(src), "--out", str(tmp_path / "out"), *flags)
    assert proc.returncode == 1
    assert message in proc.stderr and "Nothing was built" in proc.stderr and "--repo https://" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("repo", "contact", "message"), [
    ("https://example.com/comfyui-bizyair", CONTACT, "on one of the hosts the Marketplace accepts"),
    ("github.com/example-org/comfyui-bizyair", CONTACT, "on one of the hosts the Marketplace accepts"),
    (REPO, "https://example.com/contact", "must be an email address"),
    (REPO, "maintainer at example.com", "must be an email address"),
])
def test_release_settings_follow_the_marketplace_rules(repo, contact, message):
    with pytest.raises(rl.ReleaseError, match=message):
        rl.read_settings(repo, contact, None)


def test_release_settings_come_from_the_config_file_and_flags_win(tmp_path):
    config = tmp_path / "release.toml"
    config.write_text(f'repo = "{REPO}"\ncontact = "{CONTACT}"\n', encoding="utf-8")
    assert rl.read_settings(None, None, config) == rl.Settings(REPO, CONTACT)
    assert rl.read_settings(None, "other@example.org", config) == rl.Settings(REPO, "other@example.org")
    config.write_text("repo = [", encoding="utf-8")
    with pytest.raises(rl.ReleaseError, match="not valid TOML"):
        rl.read_settings(None, None, config)


@pytest.mark.parametrize(("changelog", "message"), [
    ("# Changelog\n\n## 0.0.9 — 2026-01-01\n\n- Old.\n", f"no entry for version {VERSION}"),
    (f"# Changelog\n\n## {VERSION} — 2026-11-26\n\n- Shipped.\n", "was already released (2026-11-26"),
    (f"# Changelog\n\n## {VERSION} — unreleased\n\n## 0.0.9 — 2026-01-01\n\n- Old.\n", "is empty"),
])
def test_release_refuses_a_version_the_changelog_does_not_allow(changelog, message, tmp_path):
    src = _source_copy(tmp_path / "src", changelog)
    with pytest.raises(rl.ReleaseError, match=re.escape(message)):
        rl.release(src, rl.Settings(REPO, CONTACT), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_release_refuses_a_tagged_version(tmp_path):
    git = shutil.which("git")
    assert git is not None, "git is needed: the release refuses a version git has tagged"
    src = _source_copy(tmp_path / "src")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"], ["tag", f"v{VERSION}"]):
        subprocess.run([git, "-C", str(src), *args], check=True, env=env, capture_output=True, timeout=60)  # noqa: S603
    with pytest.raises(rl.ReleaseError, match=re.escape(f"already tagged (v{VERSION})")):
        rl.check_version_rule(src, VERSION)


def test_the_repositorys_changelog_has_an_entry_for_the_manifest_version():
    entries = rl.changelog_entries((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    assert VERSION in [e.version for e in entries]


def test_a_package_that_fails_the_review_is_not_written(tmp_path, monkeypatch):
    src = _source_copy(tmp_path / "src")
    (src / "comfyui_bridge" / "extra_calls.py").write_text(
        'import requests\n\ndef fetch():\n    return requests.get("https://api.undeclared-host.io/v1", timeout=5)\n',
        encoding="utf-8")
    with pytest.raises(rl.ReleaseError) as info:
        rl.release(src, rl.Settings(REPO, CONTACT), tmp_path / "out")
    assert "not declared in manifest.yaml network.domains: api.undeclared-host.io" in str(info.value)
    assert not (tmp_path / "out").exists()


# ---- the lock ---------------------------------------------------------------------------------------

def _fake_dist(root: Path, name: str, version: str, requires: list[str]) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def fake_site(tmp_path) -> Path:
    site = tmp_path / "site"
    _fake_dist(site, "toplib", "1.4", ["dep-a>=1", 'dep-b; extra == "fancy"', 'winonly; sys_platform == "win32"',
                                      'pytest; extra == "test"'])
    _fake_dist(site, "dep-a", "2.0", ["dep_c"])
    _fake_dist(site, "dep-b", "1.5", [])
    _fake_dist(site, "dep_c", "0.3", [])
    _fake_dist(site, "winonly", "1.0", [])
    _fake_dist(site, "pytest", "9.0", [])
    _fake_dist(site, "other", "3.0", ["toplib[fancy]"])
    return site


def _lock(tmp_path, site: Path, requirements: str) -> list[str]:
    path = tmp_path / "requirements.txt"
    path.write_text(requirements, encoding="utf-8")
    return [str(p) for p in rl.runtime_lock(path, metadata.distributions(path=[str(site)]))]


def test_lock_follows_extras_and_markers(tmp_path, fake_site):
    assert _lock(tmp_path, fake_site, "toplib>=1,<2\n") == ["dep-a==2.0", "dep_c==0.3", "toplib==1.4"]
    assert _lock(tmp_path, fake_site, "# runtime\ntoplib[fancy]>=1,<2  # with extras\n") == [
        "dep-a==2.0", "dep-b==1.5", "dep_c==0.3", "toplib==1.4"]
    # a requirement whose marker does not hold here is not needed here
    assert _lock(tmp_path, fake_site, 'toplib\nwinonly; sys_platform == "win32"\n') == [
        "dep-a==2.0", "dep_c==0.3", "toplib==1.4"]
    # an extra asked for by a dependency deeper in the tree counts too
    assert _lock(tmp_path, fake_site, "other==3.0\ntoplib\n") == [
        "dep-a==2.0", "dep-b==1.5", "dep_c==0.3", "other==3.0", "toplib==1.4"]


@pytest.mark.parametrize(("requirements", "message"), [
    ("toplib>=2\n", "toplib 1.4 is installed but requirements.txt needs toplib>=2"),
    ("missing-lib>=1\n", "missing-lib>=1 (needed by requirements.txt) is not installed"),
    ("toplib @@ nonsense\n", "cannot lock"),
])
def test_lock_refuses_a_venv_that_does_not_match_requirements(requirements, message, tmp_path, fake_site):
    with pytest.raises(rl.ReleaseError, match=re.escape(message)):
        _lock(tmp_path, fake_site, requirements)


# ---- stamping ---------------------------------------------------------------------------------------

def test_stamp_manifest_puts_repo_and_contact_after_privacy_and_replaces_old_values():
    text = 'version: "1.0.0"\nprivacy: PRIVACY.md\nrepo: https://github.com/old/one\ntags:\n  - image\n'
    out = rl.stamp_manifest(text, rl.Settings(REPO, CONTACT))
    assert out.split("\n")[:4] == ['version: "1.0.0"', "privacy: PRIVACY.md", f'repo: "{REPO}"',
                                   f'contact: "{CONTACT}"']
    assert "old/one" not in out and yaml.safe_load(out)["tags"] == ["image"]


def test_stamp_source_line_needs_exactly_one_source_line():
    assert rl.stamp_source_line("# T\n\n**Source:** soon\n", "**Source:**", REPO, "README.md") == \
        f"# T\n\n**Source:** {REPO}\n"
    for text in ("# T\n", "**Source:** a\n**Source:** b\n"):
        with pytest.raises(rl.ReleaseError, match="exactly one line starting with"):
            rl.stamp_source_line(text, "**Source:**", REPO, "README.md")


# ---- each Marketplace rule can fail -----------------------------------------------------------------

def _replace(rel: str, old: str, new: str):
    def edit(root: Path) -> None:
        text = (root / rel).read_text(encoding="utf-8")
        assert old in text, (rel, old)
        (root / rel).write_text(text.replace(old, new, 1), encoding="utf-8")
    return edit


def _write(rel: str, data: str | bytes):
    def edit(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            (root / rel).write_bytes(data)
        else:
            (root / rel).write_text(data, encoding="utf-8")
    return edit


BLOCKING = {
    "manifest without repo": (_replace("manifest.yaml", f'repo: "{REPO}"\n', ""), "manifest_metadata",
                              "missing required field: repo"),
    "manifest without contact": (_replace("manifest.yaml", f'contact: "{CONTACT}"\n', ""), "manifest_metadata",
                                 "missing required field: contact"),
    "repo on a host the Marketplace does not accept": (
        _replace("manifest.yaml", REPO, "https://git.example.com/x/y"), "manifest_metadata", "allowed source host"),
    "contact that is not an email": (_replace("manifest.yaml", CONTACT, "https://example.com/contact"),
                                     "manifest_metadata", "contact must be a valid email address"),
    "author claiming to be dify": (_replace("manifest.yaml", "author: comfyui_bizyair_team", "author: dify_team"),
                                   "manifest_metadata", "author must not contain 'dify'"),
    "privacy policy missing": (lambda root: (root / "PRIVACY.md").unlink(), "manifest_metadata",
                               "missing required file: PRIVACY.md"),
    "Chinese link text in the README": (
        _replace("README.md", "[Simplified Chinese README]", "[中文说明]"), "readme_metadata",
        "found 4 CJK characters"),
    "README without a source link": (_replace("README.md", f"**Source:** {REPO}", "**Source:** soon"),
                                     "readme_metadata", "must link the source repository"),
    "dependency without a version": (_write("requirements.txt", "dify_plugin==0.10.2\nrequests\n"),
                                     "package_dependencies", "dependency has no version constraint: requests"),
    "git dependency": (_write("requirements.txt", "dify_plugin==0.10.2\nfoo @ git+https://github.com/a/b\n"),
                       "package_dependencies", "git-based install is not allowed"),
    "old SDK": (_write("requirements.txt", "dify_plugin==0.8.0\n"), "package_dependencies",
                "dify_plugin dependency must be >= 0.9.0"),
    "API key in code": (_write("tools/leak.py", 'KEY = "sk-abcdefghijklmnopqrstuvwxyz0123"\n'), "package_secrets",
                        "tools/leak.py:1 matched OpenAI-style API key: sk-a...0123"),
    "random token in YAML": (_write("provider/x.yaml", "auth_token: 'aB3dE5fG7hJ9kL2mN4pQ6rS8tU1vW0xY'\n"),
                             "package_secrets", "provider/x.yaml:1 matched secret assignment `auth_token`"),
    "private key file content": (_write("comfyui_bridge/data/k.txt", "-----BEGIN RSA PRIVATE KEY-----\n"),
                                 "package_secrets", "matched private key block"),
    "native binary": (_write("comfyui_bridge/data/tool", b"\x7fELF\x02\x01\x01" + b"\0" * 32), "package_binaries",
                      "comfyui_bridge/data/tool: ELF executable"),
    ".env file": (_write(".env", "X=1\n"), "package_contents", "blocked file: .env"),
    "compiled cache": (_write("tools/__pycache__/a.cpython-312.pyc", b"\0"), "package_contents",
                       "blocked directory: tools/__pycache__/"),
    "syntax error": (_write("tools/broken.py", "def f(:\n"), "python_compile", "tools/broken.py: does not compile"),
}


@pytest.fixture
def good_copy(unpacked, tmp_path) -> Path:
    target = tmp_path / "pkg"
    shutil.copytree(unpacked, target)
    return target


def test_the_unmodified_release_has_no_blocking_finding(good_copy):
    assert mp.review_directory(good_copy).blocking_errors == []


@pytest.mark.parametrize("case", sorted(BLOCKING))
def test_each_blocking_rule_rejects_what_it_should(case, good_copy):
    edit, check, expected = BLOCKING[case]
    edit(good_copy)
    review = mp.review_directory(good_copy)
    errors = review.result(check).errors
    assert any(expected in e for e in errors), errors
    assert review.blocking_errors                       # and the release stops on it
    with pytest.raises(rl.ReleaseError, match="does not pass the Marketplace review"):
        rl.judge(review, rl.reviewed_explanations())


def test_cjk_inside_fenced_code_is_allowed_but_not_in_prose(good_copy):
    readme = good_copy / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\n```text\n提示词示例\n```\n", encoding="utf-8")
    assert mp.check_readme(good_copy).errors == []
    readme.write_text(readme.read_text(encoding="utf-8") + "\n`提示词` inline code is prose for the rule\n",
                      encoding="utf-8")
    assert "found 3 CJK characters" in mp.check_readme(good_copy).errors[0]


def test_domain_scan_finds_literal_hosts_in_code_and_config_but_not_docs(good_copy):
    (good_copy / "tools" / "calls.py").write_text(
        '"""See https://docs-site.io/guide for details."""\n'
        'import requests\n'
        '# https://commented.io is a comment\n'
        'URL = "https://api.undeclared-host.io/v1"\n'
        'LOCAL = "http://127.0.0.1:8188"\n'
        'EXAMPLE = "https://cdn.example.com/x"\n'
        'PRIVATE = "http://10.1.2.3:9000"\n'
        'DOCS = "https://docs.vendor.io/page"\n'
        'COS = "https://bucket-1250000000.cos.ap-guangzhou.myqcloud.com/key"\n', encoding="utf-8")
    (good_copy / "provider" / "extra.yaml").write_text(
        "field:\n  url: https://link-only.io\n  help:\n    en_US: see https://help-only.io\n"
        "  placeholder:\n    en_US: e.g. https://placeholder-host.io\n", encoding="utf-8")
    review = mp.review_directory(good_copy)
    assert review.detected_domains == ["10.1.2.3", "api.undeclared-host.io",
                                       "bucket-1250000000.cos.ap-guangzhou.myqcloud.com", "placeholder-host.io"]
    with pytest.raises(rl.ReleaseError) as info:
        rl.judge(review, rl.reviewed_explanations())
    assert "network.domains: 10.1.2.3, api.undeclared-host.io, placeholder-host.io (" in str(info.value)


def test_safety_scan_flags_names_not_values_like_the_marketplace(good_copy):
    (good_copy / "tools" / "risky.py").write_text(
        "import logging\nimport requests\nlogger = logging.getLogger(__name__)\n\n"
        "def a(url):\n    return requests.get(url)\n\n"
        "def b(api_key):\n    logger.info('key %s', api_key)\n\n"
        "def c():\n    return get_secret()\n\n"                   # a call counts only through its arguments
        "def d(cfg):\n    return cfg.token\n", encoding="utf-8")
    found = {(f.function, f.message) for f in mp.review_directory(good_copy).safety if f.path == "tools/risky.py"}
    assert found == {("a", "requests call may be missing timeout"),
                     ("b", "log call may expose credential-like values"),
                     ("d", "return value may expose credential-like values")}


def test_an_unexplained_credential_warning_stops_the_release(good_copy):
    (good_copy / "tools" / "risky.py").write_text("def d(cfg):\n    return cfg.token\n", encoding="utf-8")
    review = mp.review_directory(good_copy)
    with pytest.raises(rl.ReleaseError, match=re.escape("credential_like: 'tools/risky.py::d' in release_review")):
        rl.judge(review, rl.reviewed_explanations())
    outcome = rl.judge(review, {**rl.reviewed_explanations(), "tools/risky.py::d": "returns a masked copy"})
    assert ("tools/risky.py::d", "returns a masked copy") in [(f.key, why) for f, why in outcome.explained]


def test_marketplace_cli_reports_the_blocking_checks_of_an_unstamped_build(tmp_path):
    pkg = bp.build(_source_copy(tmp_path / "src"), tmp_path / "out").path
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "marketplace.py"), str(pkg)],  # noqa: S603
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "error: manifest_metadata: missing required field: repo" in proc.stderr
    assert "error: readme_metadata: README.md must link the source repository" in proc.stderr
    assert "| `package_secrets` | blocking | PASS |" in proc.stdout
    with zipfile.ZipFile(pkg) as zf:
        assert "repo" not in yaml.safe_load(zf.read("manifest.yaml"))

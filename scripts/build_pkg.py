#!/usr/bin/env python3
"""Build, check, sign and verify the plugin's .difypkg the way Dify's own tools do.

    python scripts/build_pkg.py [build] [--src DIR] [--out DIR] [--max-size MB]
    python scripts/build_pkg.py check [--src DIR]
    python scripts/build_pkg.py keygen --out-dir DIR [--name NAME] [--bits 4096]
    python scripts/build_pkg.py sign PKG --key NAME.private.pem [--out PATH] [--category community]
    python scripts/build_pkg.py verify PKG --pub NAME.public.pem[,OTHER.public.pem]
    python scripts/build_pkg.py checksum PKG

`build` does what `dify plugin package` does (langgenius/dify-plugin-daemon,
pkg/plugin_packager): it reads `.difyignore` (or `.gitignore`) with go-git's gitignore rules,
packs only files (no directory entries, sorted, "/" separators), refuses more than 50 MB
uncompressed and names the five largest files when it does. Before packing it validates the
manifest, the provider and tool YAML and the Python sources with the rules the daemon and the
dify_plugin SDK apply, so a package that builds here installs and starts. It writes
`<out>/<name>-<version>.difypkg` and prints its path, size, checksum and unique identifier
(`author/name:version@checksum`, as the daemon computes it).

`sign` / `verify` reproduce `dify signature sign|verify`: the signature is RSA PKCS#1 v1.5 over
SHA-256 of (sha256 of every zip entry in zip order, concatenated) + str(unix time), stored in the
zip comment as {"signature": base64, "time": unix}; signing appends `.verification.dify.json`.
Keys are PKCS#1 PEM files named like the Dify CLI's (`<name>.private.pem`, `<name>.public.pem`).
`verify` loads public keys exactly as the plugin daemon does (Go's PEM and PKCS#1 parsing: an
SPKI `BEGIN PUBLIC KEY` file or bytes after the PEM block are refused) and, like the daemon,
stops at the first key it cannot load.

Only the standard library, PyYAML and (for keys and signatures) `cryptography` are used.
"""

from __future__ import annotations

import argparse
import ast
import base64
import datetime as _dt
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 50
VERIFICATION_FILE = ".verification.dify.json"
AUTHORIZED_CATEGORIES = ("langgenius", "partner", "community")
# Fixed entry time: the same sources always give the same bytes (timestamps are not part of the
# checksum or the signature, so this changes nothing for Dify).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# ---- rules, with where they come from ----------------------------------------------------------

LANGS = ("en_US", "zh_Hans", "ja_JP", "pt_BR")
# daemon plugin_declaration.go / ManifestValidate
AUTHOR_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
NAME_RE = re.compile(r"^[a-z0-9_-]{1,128}$")
# daemon manifest_entities/version.go: exactly x.y.z
VERSION_RE = re.compile(r"^\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# daemon plugin_entities/identity.go
IDENTIFIER_RE = re.compile(
    r"^(?:([a-z0-9_-]{1,64})\/)?([a-z0-9_-]{1,255}):([0-9]{1,4})(\.[0-9]{1,4}){1,3}(-\w{1,16})?@[a-f0-9]{32,64}$")
# PEP 440 subset, enough for minimum_dify_version (the SDK parses it with packaging.Version)
PEP440_RE = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
# daemon manifest_entities/tags.go
MANIFEST_TAGS = {"search", "image", "videos", "weather", "finance", "design", "travel", "social", "news",
                 "medical", "productivity", "education", "business", "entertainment", "utilities",
                 "agent", "rag", "other", "trigger"}
# SDK entities/tool.py ToolLabelEnum (the daemon list minus agent and trigger)
PROVIDER_TAGS = MANIFEST_TAGS - {"agent", "trigger"}
ARCHES = {"amd64", "arm64"}
PERMISSION_KEYS = {"tool", "model", "node", "endpoint", "app", "storage"}
# SDK entities/provider_config.py ProviderConfig.Config
CREDENTIAL_TYPES = {"secret-input", "text-input", "select", "boolean", "model-selector", "app-selector",
                    "array[tools]"}
# SDK entities/tool.py ToolParameter.ToolParameterType
PARAM_TYPES = {"string", "number", "boolean", "select", "secret-input", "file", "files", "model-selector",
               "app-selector", "checkbox", "any", "object", "array", "dynamic-select", "date", "date-range"}
PARAM_FORMS = {"llm", "form", "schema"}
IDENT_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
JSON_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


class PackageError(Exception):
    """The plugin cannot be packed; `problems` lists every reason found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ---- go-git gitignore, as the daemon uses it ----------------------------------------------------
# Port of go-git plumbing/format/gitignore/pattern.go (the filepath.Match-based version the
# daemon builds with) and of Go's path/filepath.Match.

class _BadPattern(Exception):
    pass


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise _BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise _BadPattern
    return r, rest


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = bool(chunk) and chunk[0] == "^"
            if negated:
                chunk = chunk[1:]
            matched, nrange = False, 0
            while True:
                if chunk and chunk[0] == "]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if not failed and lo <= r <= hi:
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPattern
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return ("", False) if failed else (s, True)


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern and pattern[0] == "*":
        pattern, star = pattern[1:], True
    inrange, i = False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            inrange = True
        elif c == "]":
            inrange = False
        elif c == "*" and not inrange:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def go_filepath_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match on a Unix system; a malformed pattern matches nothing."""
    try:
        while pattern:
            star, chunk, pattern = _scan_chunk(pattern)
            if star and not chunk:
                return "/" not in name
            t, ok = _match_chunk(chunk, name)
            if ok and (not t or pattern):
                name = t
                continue
            if star:
                found = False
                i = 0
                while i < len(name) and name[i] != "/":
                    t, ok = _match_chunk(chunk, name[i + 1:])
                    if ok and not (not pattern and t):
                        name, found = t, True
                        break
                    i += 1
                if found:
                    continue
            return False
        return not name
    except _BadPattern:
        return False


@dataclass(frozen=True)
class IgnorePattern:
    """One line of .difyignore, with go-git's (pre-wildmatch) semantics."""

    pattern: tuple[str, ...]
    inclusion: bool
    dir_only: bool
    is_glob: bool

    @classmethod
    def parse(cls, line: str) -> IgnorePattern:
        inclusion = line.startswith("!")
        if inclusion:
            line = line[1:]
        if not line.endswith("\\ "):
            line = line.rstrip(" ")
        dir_only = line.endswith("/")
        if dir_only:
            line = line[:-1]
        return cls(tuple(line.split("/")), inclusion, dir_only, "/" in line)

    def match(self, parts: list[str], is_dir: bool) -> str | None:
        """'exclude', 'include' or None, like gitignore.Pattern.Match with an empty domain."""
        ok = self._glob_match(parts, is_dir) if self.is_glob else self._simple_match(parts, is_dir)
        if not ok:
            return None
        return "include" if self.inclusion else "exclude"

    def _simple_match(self, parts: list[str], is_dir: bool) -> bool:
        for i, name in enumerate(parts):
            if not go_filepath_match(self.pattern[0], name):
                continue
            if self.dir_only and not is_dir and i == len(parts) - 1:
                return False
            return True
        return False

    def _glob_match(self, parts: list[str], is_dir: bool) -> bool:
        path = list(parts)
        matched = can_traverse = False
        for i, pat in enumerate(self.pattern):
            if pat == "":
                can_traverse = False
                continue
            if pat == "**":
                if i == len(self.pattern) - 1:
                    break
                can_traverse = True
                continue
            if "**" in pat:
                return False
            if not path:
                return False
            if can_traverse:
                can_traverse = False
                while path:
                    e = path.pop(0)
                    if go_filepath_match(pat, e):
                        matched = True
                        break
                    if not path:
                        matched = False
            else:
                if not go_filepath_match(pat, path[0]):
                    return False
                matched = True
                path.pop(0)
        if matched and self.dir_only and not is_dir and not path:
            matched = False
        return matched


def load_ignore_patterns(src: Path) -> list[IgnorePattern]:
    """.difyignore, else .gitignore, else nothing (then Dify packs everything, .git and .venv too)."""
    for name in (".difyignore", ".gitignore"):
        path = src / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8").split("\n")
            return [IgnorePattern.parse(ln.strip()) for ln in lines
                    if ln.strip() and not ln.strip().startswith("#")]
    return []


def is_excluded(rel_parts: list[str], is_dir: bool, patterns: Iterable[IgnorePattern]) -> bool:
    # The daemon stops at the first Exclude; Include results are ignored, so "!x" re-includes nothing.
    return any(p.match(rel_parts, is_dir) == "exclude" for p in patterns)


def collect_files(src: Path) -> list[str]:
    """Paths (posix, relative to src, sorted) that `dify plugin package` would put in the zip."""
    src = src.resolve()
    patterns = load_ignore_patterns(src)
    found: list[str] = []

    def walk(directory: Path, parts: list[str]) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            rel = parts + [entry.name]
            # Like Go's WalkDir, a symlink is not a directory even if it points at one.
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_excluded(rel, is_dir, patterns):
                continue
            if is_dir:
                walk(Path(entry.path), rel)
            elif entry.is_symlink() and Path(entry.path).is_dir():
                raise PackageError([f"{'/'.join(rel)} is a symlink to a directory; Dify cannot pack it "
                                    "(copy the files or add it to .difyignore)"])
            else:
                found.append("/".join(rel))

    walk(src, [])
    return sorted(found)


# ---- validation ---------------------------------------------------------------------------------

@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, where: str, text: str) -> None:
        self.errors.append(f"{where}: {text}")

    def warn(self, where: str, text: str) -> None:
        self.warnings.append(f"{where}: {text}")


def _load_yaml(src: Path, rel: str, report: Report) -> dict | None:
    try:
        data = yaml.safe_load((src / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        report.error(rel, "file not found")
        return None
    except yaml.YAMLError as exc:
        report.error(rel, f"invalid YAML: {exc}")
        return None
    if not isinstance(data, dict):
        report.error(rel, "must be a YAML mapping")
        return None
    return data


def _valid_fs_path(path: str) -> bool:
    # The daemon reads declarations with zip.Reader.Open → io/fs.ValidPath.
    return bool(path) and not path.startswith(("/", "./")) and all(
        part not in ("", ".", "..") for part in path.split("/")) and "\\" not in path


def _check_ref(report: Report, where: str, what: str, path, packaged: set[str]) -> None:
    if not isinstance(path, str) or not path:
        report.error(where, f"{what} must be a path string")
    elif not _valid_fs_path(path):
        report.error(where, f"{what} '{path}' must be a plain relative path (no './', '/', '..')")
    elif path not in packaged:
        report.error(where, f"{what} '{path}' is not in the package (missing or excluded by .difyignore)")


def _check_i18n(report: Report, where: str, value, *, required: bool = True) -> None:
    if value is None:
        if required:
            report.error(where, "missing (needs at least en_US)")
        return
    if not isinstance(value, dict):
        report.error(where, "must be a mapping of language → text")
        return
    en = value.get("en_US")
    if not isinstance(en, str) or not en.strip():
        report.error(where, "en_US text is required")
    for lang, text in value.items():
        if lang not in LANGS:
            report.warn(where, f"unknown language key '{lang}' (Dify knows {', '.join(LANGS)})")
        elif not isinstance(text, str):
            report.error(where, f"{lang} must be a string")
        elif len(text) > 1023:
            report.error(where, f"{lang} is {len(text)} characters; the daemon allows at most 1023")


def _check_icon(report: Report, where: str, icon, packaged: set[str], *, required: bool) -> None:
    if icon is None or icon == "":
        if required:
            report.error(where, "icon is required")
        return
    if not isinstance(icon, str) or len(icon) > 128:
        report.error(where, "icon must be a file name of at most 128 characters")
    elif f"_assets/{icon}" not in packaged:
        report.error(where, f"'{icon}' not found in _assets/ (the daemon refuses the package)")


def validate_manifest(src: Path, packaged: set[str], report: Report) -> dict | None:
    m = _load_yaml(src, "manifest.yaml", report)
    if m is None:
        return None
    w = "manifest.yaml"
    version = m.get("version")
    if not isinstance(version, str):
        report.error(w, f"version must be a quoted string like \"0.1.0\", not {type(version).__name__} "
                        f"{version!r} (the SDK crashes at start-up on a number)")
    elif not VERSION_RE.match(version):
        report.error(w, f"version '{version}' must be x.y.z (e.g. 0.1.0)")
    if m.get("type") != "plugin":
        report.error(w, "type must be 'plugin'")
    author = m.get("author")
    if not isinstance(author, str) or not AUTHOR_RE.match(author):
        report.error(w, f"author {author!r} must match {AUTHOR_RE.pattern} (lower case)")
    elif UUID_RE.match(author):
        report.error(w, "author cannot be a UUID")
    name = m.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        report.error(w, f"name {name!r} must match {NAME_RE.pattern}")
    _check_i18n(report, f"{w} label", m.get("label"))
    _check_i18n(report, f"{w} description", m.get("description"))
    _check_icon(report, f"{w} icon", m.get("icon"), packaged, required=True)
    _check_icon(report, f"{w} icon_dark", m.get("icon_dark"), packaged, required=False)

    resource = m.get("resource") or {}
    memory = resource.get("memory") if isinstance(resource, dict) else None
    if not isinstance(memory, int) or isinstance(memory, bool) or memory <= 0:
        report.error(w, "resource.memory must be a positive number of bytes (e.g. 268435456)")
    perm = resource.get("permission") if isinstance(resource, dict) else None
    if perm is not None:
        if not isinstance(perm, dict):
            report.error(w, "resource.permission must be a mapping")
        else:
            for key in perm:
                if key not in PERMISSION_KEYS:
                    report.error(w, f"resource.permission.{key} is not a known permission")
            storage = perm.get("storage")
            if isinstance(storage, dict) and storage.get("enabled"):
                size = storage.get("size")
                if not isinstance(size, int) or not 1024 <= size <= 1073741824:
                    report.error(w, "resource.permission.storage.size must be 1024..1073741824")

    plugins = m.get("plugins")
    if not isinstance(plugins, dict) or not any(plugins.get(k) for k in (
            "tools", "models", "endpoints", "agent_strategies", "datasources", "triggers")):
        report.error(w, "plugins must list at least one provider (plugins.tools)")
    else:
        for kind, paths in plugins.items():
            if not isinstance(paths, list):
                report.error(w, f"plugins.{kind} must be a list of paths")
                continue
            for p in paths:
                if isinstance(p, str) and len(p) > 128:
                    report.error(w, f"plugins.{kind} path '{p}' is longer than 128 characters")
                _check_ref(report, w, f"plugins.{kind} entry", p, packaged)

    meta = m.get("meta")
    if not isinstance(meta, dict):
        report.error(w, "meta is required")
    else:
        if not isinstance(meta.get("version"), str) or not VERSION_RE.match(meta["version"]):
            report.error(w, "meta.version must be a quoted x.y.z string (the manifest spec version, e.g. 0.0.1)")
        arch = meta.get("arch")
        if not isinstance(arch, list) or not arch or any(a not in ARCHES for a in arch):
            report.error(w, f"meta.arch must be a non-empty list of {sorted(ARCHES)}")
        runner = meta.get("runner")
        if not isinstance(runner, dict):
            report.error(w, "meta.runner is required")
        else:
            if runner.get("language") != "python":
                report.error(w, "meta.runner.language must be 'python'")
            rv = runner.get("version")
            if not isinstance(rv, str) or not rv or len(rv) > 128:
                report.error(w, f"meta.runner.version must be a quoted string like \"3.12\", not {rv!r} "
                                "(an unquoted 3.12 is a number and the SDK crashes at start-up)")
            entry = runner.get("entrypoint")
            if not isinstance(entry, str) or not entry or len(entry) > 256:
                report.error(w, "meta.runner.entrypoint must be a module name such as 'main'")
            else:
                mod = entry.replace(".", "/")
                if f"{mod}.py" not in packaged and f"{mod}/__main__.py" not in packaged:
                    report.error(w, f"entrypoint '{entry}': {mod}.py is not in the package "
                                    f"(the daemon runs python -m {entry})")
        mdv = meta.get("minimum_dify_version")
        if mdv is not None and (not isinstance(mdv, str) or not PEP440_RE.match(mdv)):
            report.error(w, f"meta.minimum_dify_version {mdv!r} must be a quoted version like \"1.0.0\"")

    created = m.get("created_at")
    if isinstance(created, str):
        try:
            _dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            report.error(w, f"created_at '{created}' is not an RFC 3339 time")
    elif not isinstance(created, (_dt.datetime, _dt.date)):
        report.error(w, "created_at is required (RFC 3339, e.g. 2026-01-01T00:00:00Z)")
    tags = m.get("tags") or []
    if not isinstance(tags, list):
        report.error(w, "tags must be a list")
    else:
        for tag in tags:
            if tag not in MANIFEST_TAGS:
                report.error(w, f"tag '{tag}' is not one of Dify's tags ({', '.join(sorted(MANIFEST_TAGS))})")
    privacy = m.get("privacy")
    if privacy is not None:
        _check_ref(report, w, "privacy", privacy, packaged)
    repo = m.get("repo")
    if repo is not None and not (isinstance(repo, str) and re.match(r"^https?://[^\s/]+\.[^\s/]+(/\S*)?$", repo)):
        # daemon plugin_declaration.go: `repo` validate:"omitempty,url"
        report.error(w, f"repo {repo!r} must be a URL such as https://github.com/owner/name")
    if "README.md" not in packaged:
        report.warn(w, "README.md is not in the package (Dify shows it on the plugin page)")
    if "requirements.txt" not in packaged and "pyproject.toml" not in packaged:
        report.error(w, "neither requirements.txt nor pyproject.toml is in the package; the daemon cannot "
                        "install dependencies")
    elif "requirements.txt" in packaged:
        reqs = (src / "requirements.txt").read_text(encoding="utf-8").lower().replace("-", "_")
        if "dify_plugin" not in reqs:
            report.error("requirements.txt", "must list dify_plugin")
    return m


def validate_provider(src: Path, rel: str, packaged: set[str], report: Report) -> list[str]:
    """Checks one tool provider YAML; returns the tool YAML paths it lists."""
    p = _load_yaml(src, rel, report)
    if p is None:
        return []
    ident = p.get("identity")
    if not isinstance(ident, dict):
        report.error(rel, "identity is required")
    else:
        for key in ("author", "name"):
            if not isinstance(ident.get(key), str) or not IDENT_RE.match(ident[key]):
                report.error(rel, f"identity.{key} must match {IDENT_RE.pattern}")
        _check_i18n(report, f"{rel} identity.label", ident.get("label"))
        _check_i18n(report, f"{rel} identity.description", ident.get("description"))
        _check_icon(report, f"{rel} identity.icon", ident.get("icon"), packaged, required=True)
        _check_icon(report, f"{rel} identity.icon_dark", ident.get("icon_dark"), packaged, required=False)
        for tag in ident.get("tags") or []:
            if tag not in PROVIDER_TAGS:
                report.error(rel, f"identity.tags: '{tag}' is not in the SDK's ToolLabelEnum")

    creds = p.get("credentials_for_provider")
    if creds is not None and not isinstance(creds, dict):
        report.error(rel, "credentials_for_provider must be a mapping name → settings "
                          "(the SDK crashes at start-up on a list)")
    for cname, conf in (creds or {}).items() if isinstance(creds, dict) else ():
        where = f"{rel} credentials_for_provider.{cname}"
        if not isinstance(conf, dict):
            report.error(where, "must be a mapping")
            continue
        if conf.get("type") not in CREDENTIAL_TYPES:
            report.error(where, f"type {conf.get('type')!r} must be one of {sorted(CREDENTIAL_TYPES)}")
        _check_i18n(report, f"{where}.label", conf.get("label"))
        for key in ("help", "placeholder"):
            _check_i18n(report, f"{where}.{key}", conf.get(key), required=False)
        default = conf.get("default")
        if isinstance(default, (dict, list)):
            report.error(where, "default must be a plain value")
        if conf.get("type") == "select":
            values = _option_values(report, where, conf.get("options"))
            if default is not None and values and str(default) not in values:
                report.error(where, f"default {default!r} is not one of the options {values}")
        if "url" in conf and not (isinstance(conf["url"], str) and conf["url"].startswith(("http://", "https://"))):
            report.error(where, "url must be an http(s) link")

    tools = p.get("tools")
    if not isinstance(tools, list) or not tools:
        report.error(rel, "tools must list the tool YAML files")
        tools = []
    for t in tools:
        _check_ref(report, rel, "tools entry", t, packaged)
    source = _extra_source(p)
    _check_ref(report, rel, "extra.python.source", source, packaged)
    if isinstance(source, str) and source in packaged:
        check_single_subclass(src / source, "ToolProvider", report, source)
    return [t for t in tools if isinstance(t, str)]


def _option_values(report: Report, where: str, options) -> list[str]:
    if not isinstance(options, list) or not options:
        report.error(where, "a select needs a non-empty options list")
        return []
    values = []
    for opt in options:
        if not isinstance(opt, dict) or not isinstance(opt.get("value"), str):
            report.error(where, "each option needs a string value")
            continue
        if len(opt["value"]) >= 128:
            report.error(where, f"option value '{opt['value']}' must be shorter than 128 characters")
        _check_i18n(report, f"{where} option {opt['value']} label", opt.get("label"))
        values.append(opt["value"])
    return values


def _extra_source(doc: dict):
    extra = doc.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("python"), dict):
        return extra["python"].get("source")
    return None


def validate_tool(src: Path, rel: str, packaged: set[str], report: Report) -> str | None:
    t = _load_yaml(src, rel, report)
    if t is None:
        return None
    ident = t.get("identity") or {}
    name = ident.get("name") if isinstance(ident, dict) else None
    if not isinstance(name, str) or not IDENT_RE.match(name):
        report.error(rel, f"identity.name {name!r} must match {IDENT_RE.pattern}")
    if not isinstance(ident, dict) or not isinstance(ident.get("author"), str):
        report.error(rel, "identity.author is required")
    _check_i18n(report, f"{rel} identity.label", ident.get("label") if isinstance(ident, dict) else None)
    desc = t.get("description")
    if not isinstance(desc, dict):
        report.error(rel, "description (human + llm) is required")
    else:
        _check_i18n(report, f"{rel} description.human", desc.get("human"))
        if not isinstance(desc.get("llm"), str) or not desc["llm"].strip():
            report.error(rel, "description.llm is required: it is what an agent reads to decide when to call the tool")

    params = t.get("parameters") or []
    if not isinstance(params, list):
        report.error(rel, "parameters must be a list")
        params = []
    seen: set[str] = set()
    for i, prm in enumerate(params):
        if not isinstance(prm, dict):
            report.error(rel, f"parameters[{i}] must be a mapping")
            continue
        pname = prm.get("name")
        where = f"{rel} parameter {pname or i}"
        if not isinstance(pname, str) or not pname:
            report.error(where, "name is required")
        elif pname in seen:
            report.error(where, "duplicate parameter name")
        else:
            seen.add(pname)
        _check_i18n(report, f"{where} label", prm.get("label"))
        _check_i18n(report, f"{where} human_description", prm.get("human_description"))
        _check_i18n(report, f"{where} placeholder", prm.get("placeholder"), required=False)
        ptype, form = prm.get("type"), prm.get("form")
        if ptype not in PARAM_TYPES:
            report.error(where, f"type {ptype!r} must be one of {sorted(PARAM_TYPES)}")
        if form not in PARAM_FORMS:
            report.error(where, f"form {form!r} must be llm, form or schema")
        if form == "llm" and not (isinstance(prm.get("llm_description"), str) and prm["llm_description"].strip()):
            report.error(where, "an llm parameter needs an llm_description (the model reads it to fill the value)")
        multiple = prm.get("multiple", False)
        if multiple and ptype not in ("select", "dynamic-select"):
            report.error(where, "multiple is only valid for select and dynamic-select")
        default = prm.get("default")
        if ptype == "select":
            values = _option_values(report, where, prm.get("options"))
            chosen = default if isinstance(default, list) else ([] if default is None else [default])
            if default is not None and isinstance(default, list) != bool(multiple):
                report.error(where, "default must be a list exactly when multiple is true")
            for d in chosen:
                if values and str(d) not in values:
                    report.error(where, f"default {d!r} is not one of the options {values}")
        if ptype == "number":
            lo, hi = prm.get("min"), prm.get("max")
            for key, val in (("min", lo), ("max", hi), ("default", default)):
                if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))):
                    report.error(where, f"{key} must be a number")
            nums = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
            if lo is not None and hi is not None and nums and lo > hi:
                report.error(where, "min is greater than max")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(lo, (int, float)) and default < lo or isinstance(hi, (int, float)) and default > hi:
                    report.error(where, f"default {default} is outside min/max")
        if ptype == "boolean" and default is not None and not isinstance(default, bool):
            report.error(where, "a boolean default must be true or false")

    schema = t.get("output_schema")
    if schema is not None:
        _check_output_schema(report, rel, schema)
    source = _extra_source(t)
    _check_ref(report, rel, "extra.python.source", source, packaged)
    if isinstance(source, str) and source in packaged:
        check_single_subclass(src / source, "Tool", report, source)
    return name if isinstance(name, str) else None


def _check_output_schema(report: Report, rel: str, schema) -> None:
    if not isinstance(schema, dict) or schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        report.error(rel, "output_schema must be {type: object, properties: {...}}")
        return

    def walk(node, path: str) -> None:
        if not isinstance(node, dict) or node.get("type") not in JSON_SCHEMA_TYPES:
            report.error(rel, f"output_schema {path} needs a JSON-schema type")
            return
        if node["type"] == "array" and "items" in node:
            walk(node["items"], path + "[]")
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{key}")

    for key, sub in schema["properties"].items():
        walk(sub, key)


def check_single_subclass(path: Path, parent: str, report: Report, rel: str) -> None:
    """The SDK loads each source and wants exactly one subclass of Tool / ToolProvider in it
    ("Missing subclass" / "Multiple subclasses" crash the plugin at start-up). Static version:
    classes defined in the file that derive, directly or through each other, from `parent`."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    except SyntaxError as exc:
        report.error(rel, f"syntax error: {exc}")
        return
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    top_level = [node for node in tree.body if isinstance(node, ast.ClassDef)]

    def base_names(node: ast.ClassDef) -> list[str]:
        names = []
        for b in node.bases:
            if isinstance(b, ast.Name):
                names.append(b.id)
            elif isinstance(b, ast.Attribute):
                names.append(b.attr)
        return names

    def derives(node: ast.ClassDef, seen=()) -> bool:
        for b in base_names(node):
            if b == parent:
                return True
            if b in classes and b not in seen and derives(classes[b], seen + (b,)):
                return True
        return False

    found = [c.name for c in top_level if derives(c)]
    if not found:
        report.error(rel, f"no subclass of {parent} (the SDK stops with 'Missing subclass')")
    elif len(found) > 1:
        report.error(rel, f"{len(found)} subclasses of {parent} ({', '.join(found)}); the SDK wants exactly one")


def validate(src: Path, packaged: Iterable[str]) -> Report:
    """Every check `build` runs, against the files that would be packed."""
    files = set(packaged)
    report = Report()
    manifest = validate_manifest(src, files, report)
    if manifest is None:
        return report
    tool_names: set[str] = set()
    providers = (manifest.get("plugins") or {}).get("tools") or [] if isinstance(manifest.get("plugins"), dict) else []
    if len(providers) > 1:
        report.warn("manifest.yaml", "the daemon keeps only the last tool provider of plugins.tools")
    for prov in providers:
        if not isinstance(prov, str) or prov not in files:
            continue
        for tool in validate_provider(src, prov, files, report):
            if tool not in files:
                continue
            name = validate_tool(src, tool, files, report)
            if name is None:
                continue
            if name in tool_names:
                report.error(tool, f"tool name '{name}' is used twice")
            tool_names.add(name)
    return report


# ---- package ------------------------------------------------------------------------------------

@dataclass
class BuildResult:
    path: Path
    size: int
    uncompressed: int
    files: list[str]
    checksum: str
    identifier: str
    warnings: list[str]


def checksum_of(entries: Mapping[str, bytes]) -> str:
    """daemon decoder/checksum.go: sha256 over sorted (sha256(path) + sha256(content))."""
    data = b"".join(hashlib.sha256(p.encode()).digest() + hashlib.sha256(entries[p]).digest()
                    for p in sorted(entries))
    return hashlib.sha256(data).hexdigest()


def read_entries(pkg: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(pkg) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def _identity(manifest: dict) -> str:
    return f"{manifest['author']}/{manifest['name']}:{manifest['version']}"


def unique_identifier(pkg: Path) -> str:
    entries = read_entries(pkg)
    manifest = yaml.safe_load(entries["manifest.yaml"])
    return f"{_identity(manifest)}@{checksum_of(entries)}"


def _size_error(sizes: list[tuple[str, int]], max_bytes: int) -> PackageError:
    top = sorted(sizes, key=lambda x: x[1], reverse=True)[:5]
    lines = [f"{i}. name: {p}, size: {s} bytes" for i, (p, s) in enumerate(top, 1)]
    return PackageError([f"Plugin package size is too large. Please ensure the uncompressed size is less "
                         f"than {max_bytes} bytes.", "Packaged file info:", *lines])


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def write_zip(path: Path, entries: Iterable[tuple[str, bytes]], comment: bytes = b"") -> None:
    """File entries only, in the given order, written to a temp file then moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".difypkg-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            for name, data in entries:
                zf.writestr(_zip_info(name), data)
            zf.comment = comment
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(src: Path = ROOT, out_dir: Path | None = None, max_size_mb: int = DEFAULT_MAX_SIZE_MB) -> BuildResult:
    src = Path(src).resolve()
    out_dir = Path(out_dir) if out_dir else src / "dist"
    files = collect_files(src)
    report = validate(src, files)
    if report.errors:
        raise PackageError(report.errors)
    max_bytes = max_size_mb * MB
    entries: dict[str, bytes] = {}
    sizes: list[tuple[str, int]] = []
    total = 0
    for rel in files:
        data = (src / rel).read_bytes()
        entries[rel] = data
        sizes.append((rel, len(data)))
        total += len(data)
        if total > max_bytes:
            raise _size_error(sizes, max_bytes)
    manifest = yaml.safe_load(entries["manifest.yaml"])
    target = out_dir / f"{manifest['name']}-{manifest['version']}.difypkg"
    write_zip(target, entries.items())
    digest = checksum_of(entries)
    return BuildResult(path=target, size=target.stat().st_size, uncompressed=total, files=files,
                       checksum=digest, identifier=f"{_identity(manifest)}@{digest}",
                       warnings=report.warnings)


# ---- keys and signatures ------------------------------------------------------------------------

class SignatureError(Exception):
    pass


# ---- public keys, loaded exactly as the plugin daemon loads them --------------------------------
# The daemon verifies with its official key plus the files in THIRD_PARTY_SIGNATURE_VERIFICATION_
# PUBLIC_KEYS (comma separated; decoder/verifier.go VerifyPluginWithPublicKeyPaths). It reads each
# path after strings.TrimSpace and loads it with encryption.LoadPublicKey (pkg/utils/encryption/
# rsa.go): Go's pem.Decode, block type "RSA PUBLIC KEY", no byte left after the block, then
# x509.ParsePKCS1PublicKey. The first key that fails to load aborts the whole verification, so one
# bad entry makes every package fail, Marketplace ones included. The functions below port those
# Go rules; a key they accept is a key the daemon accepts.

_PEM_START = b"\n-----BEGIN "
_PEM_END = b"\n-----END "
_PEM_EOL = b"-----"


@dataclass(frozen=True)
class PemBlock:
    type: str
    headers: dict[str, str]
    data: bytes


def _go_get_line(data: bytes) -> tuple[bytes, bytes]:
    """encoding/pem getLine: the first line without trailing spaces/tabs (and \\r), and the rest."""
    i = data.find(b"\n")
    if i < 0:
        i = j = len(data)
    else:
        j = i + 1
        if i > 0 and data[i - 1:i] == b"\r":
            i -= 1
    return data[:i].rstrip(b" \t"), data[j:]


def _go_base64(data: bytes) -> bytes | None:
    """base64.StdEncoding.Decode: \\r and \\n ignored, padding required, no other stray byte."""
    data = data.replace(b"\r", b"").replace(b"\n", b"")
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        return None


def go_pem_decode(data: bytes) -> tuple[PemBlock | None, bytes]:
    """Port of Go's encoding/pem.Decode: the first well-formed block and the bytes after it."""
    rest = data
    while True:
        if rest.startswith(_PEM_START[1:]):
            rest = rest[len(_PEM_START) - 1:]
        else:
            at = rest.find(_PEM_START)
            if at < 0:
                return None, data
            rest = rest[at + len(_PEM_START):]
        type_line, rest = _go_get_line(rest)
        if not type_line.endswith(_PEM_EOL):
            continue
        type_line = type_line[:-len(_PEM_EOL)]
        headers: dict[str, str] = {}
        while True:
            if not rest:
                return None, data
            line, following = _go_get_line(rest)
            key, colon, value = line.partition(b":")
            if not colon:
                break
            headers[key.strip().decode("latin-1")] = value.strip().decode("latin-1")
            rest = following
        if not headers and rest.startswith(_PEM_END[1:]):
            end, trailer_at = 0, len(_PEM_END) - 1
        else:
            end = rest.find(_PEM_END)
            trailer_at = end + len(_PEM_END)
        if end < 0:
            continue
        trailer = rest[trailer_at:]
        trailer_len = len(type_line) + len(_PEM_EOL)
        if len(trailer) < trailer_len:
            continue
        rest_of_end_line, trailer = trailer[trailer_len:], trailer[:trailer_len]
        if not trailer.startswith(type_line) or not trailer.endswith(_PEM_EOL):
            continue
        if _go_get_line(rest_of_end_line)[0]:
            continue
        decoded = _go_base64(rest[:end].replace(b" ", b"").replace(b"\t", b""))
        if decoded is None:
            continue
        return PemBlock(type_line.decode("latin-1"), headers, decoded), _go_get_line(rest[end + len(_PEM_END) - 1:])[1]


class _Asn1Error(Exception):
    pass


def _der_element(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """One DER element with the given single-byte tag (Go encoding/asn1 parseTagAndLength rules:
    definite, minimal lengths); returns (contents, rest)."""
    if len(data) < 2:
        raise _Asn1Error("data truncated")
    if data[0] != tag:
        raise _Asn1Error(f"expected tag 0x{tag:02x}, found 0x{data[0]:02x}")
    first, offset = data[1], 2
    if first & 0x80 == 0:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise _Asn1Error("indefinite length found (not DER)")
        length = 0
        for _ in range(count):
            if offset >= len(data):
                raise _Asn1Error("truncated tag or length")
            if length >= 1 << 23:
                raise _Asn1Error("length too large")
            length = (length << 8) | data[offset]
            offset += 1
            if length == 0:
                raise _Asn1Error("superfluous leading zeros in length")
        if length < 0x80:
            raise _Asn1Error("non-minimal length")
    if offset + length > len(data):
        raise _Asn1Error("data truncated")
    return data[offset:offset + length], data[offset + length:]


def _der_integer(data: bytes, max_bytes: int | None = None) -> tuple[int, bytes]:
    """An INTEGER (checkInteger: not empty, minimal two's complement); `max_bytes` for Go int fields."""
    content, rest = _der_element(data, 0x02)
    if not content:
        raise _Asn1Error("empty integer")
    if len(content) > 1 and ((content[0] == 0 and content[1] & 0x80 == 0)
                             or (content[0] == 0xFF and content[1] & 0x80)):
        raise _Asn1Error("integer not minimally-encoded")
    if max_bytes is not None and len(content) > max_bytes:
        raise _Asn1Error("integer too large")
    return int.from_bytes(content, "big", signed=True), rest


def parse_pkcs1_public_key(der: bytes) -> tuple[int, int]:
    """x509.ParsePKCS1PublicKey: SEQUENCE { n INTEGER, e INTEGER } → (n, e). Like Go, bytes after
    the two integers inside the SEQUENCE are ignored, bytes after the SEQUENCE are not."""
    body, rest = _der_element(der, 0x30)
    if rest:
        raise _Asn1Error("trailing data after the key")
    n, body = _der_integer(body)
    e, _ = _der_integer(body, max_bytes=8)   # E is a Go int: parseInt64
    if n <= 0 or e <= 0:
        raise _Asn1Error("public key contains zero or negative value")
    if e > (1 << 31) - 1:
        raise _Asn1Error("public key contains large public exponent")
    return n, e


@dataclass(frozen=True)
class DaemonKey:
    path: Path
    n: int
    e: int

    @property
    def usable(self) -> bool:
        """Go ≥ 1.24's crypto/rsa refuses to verify with keys under 1024 bits, even moduli and
        exponents below 2 or even: the daemon loads such a key, but it never verifies anything."""
        return self.n.bit_length() >= 1024 and self.n % 2 == 1 and self.e >= 3 and self.e % 2 == 1


def load_daemon_public_key(path: Path) -> DaemonKey:
    """encryption.LoadPublicKey on the file's bytes; SignatureError says why the daemon refuses it."""
    where = f"public key {path}"
    stop = "the daemon stops at this key and then verifies no package at all"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"{where} cannot be read ({exc.strerror}); {stop}") from None
    block, rest = go_pem_decode(data)
    if block is None or block.type != "RSA PUBLIC KEY":
        found = f"a '{block.type}' block" if block else "no PEM block"
        hint = (" (an SPKI/OpenSSL key: convert it with `openssl rsa -pubin -in KEY -RSAPublicKey_out "
                "-out KEY.public.pem`, or create keys with `build_pkg.py keygen`)") if block and \
            block.type == "PUBLIC KEY" else ""
        raise SignatureError(f"{where} is not a PKCS#1 '-----BEGIN RSA PUBLIC KEY-----' PEM file: found {found}"
                             f"{hint}; {stop}")
    if rest:
        raise SignatureError(f"{where} has {len(rest)} byte(s) after the END line (an extra blank line counts); "
                             f"the daemon refuses it ('extra data included in the PEM block'); {stop}")
    try:
        n, e = parse_pkcs1_public_key(block.data)
    except _Asn1Error as exc:
        raise SignatureError(f"{where} is not a valid PKCS#1 RSA public key ({exc}); {stop}") from None
    return DaemonKey(path, n, e)


def load_daemon_public_keys(spec: str | Path | Sequence[Path]) -> list[DaemonKey]:
    """The keys of THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS, loaded in order; raises at the first
    one the daemon cannot load. A string is split on commas like the daemon's setting."""
    if isinstance(spec, str):
        paths = [Path(p.strip()) if p.strip() else None for p in spec.split(",")]
    elif isinstance(spec, Path):
        paths = [spec]
    else:
        paths = [Path(p) for p in spec]
    keys = []
    for path in paths:
        if path is None:
            raise SignatureError("the key list has an empty entry (e.g. a trailing comma); the daemon fails to read "
                                 "it and then verifies no package at all")
        keys.append(load_daemon_public_key(path))
    return keys


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise SystemExit("signing needs the 'cryptography' package (pip install -r requirements-dev.txt)") from exc
    return InvalidSignature, hashes, serialization, padding, rsa


def keygen(out_dir: Path, name: str = "dify_plugin_signing_key", bits: int = 4096) -> tuple[Path, Path]:
    """An RSA key pair in the Dify CLI's format: PKCS#1 'RSA PRIVATE KEY' / 'RSA PUBLIC KEY' PEM."""
    _, _, serialization, _, rsa = _crypto()
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    private = out_dir / f"{name}.private.pem"
    public = out_dir / f"{name}.public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
    return private, public


def _signed_data(hashes_in_order: Iterable[bytes], unix_time: int) -> bytes:
    return b"".join(hashes_in_order) + str(unix_time).encode()


def sign(pkg: Path, private_key: Path, out: Path | None = None, category: str = "community",
         now: int | None = None) -> Path:
    """Re-writes the package with `.verification.dify.json` appended and the signature in the zip
    comment, as withkey.SignPluginWithPrivateKey does. Default output: <name>.signed.difypkg."""
    _, hashes, serialization, padding, _ = _crypto()
    if category not in AUTHORIZED_CATEGORIES:
        raise SignatureError(f"category must be one of {', '.join(AUTHORIZED_CATEGORIES)}")
    key = serialization.load_pem_private_key(Path(private_key).read_bytes(), password=None)
    with zipfile.ZipFile(pkg) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()
                   if not i.is_dir() and i.filename != VERIFICATION_FILE]
    # Go: parser.MarshalJsonBytes(Verification) → compact JSON.
    verification = json.dumps({"authorized_category": category}, separators=(",", ":")).encode()
    entries.append((VERIFICATION_FILE, verification))
    unix_time = int(time.time()) if now is None else int(now)
    data = _signed_data((hashlib.sha256(d).digest() for _, d in entries), unix_time)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    comment = json.dumps({"signature": base64.b64encode(signature).decode(), "time": unix_time},
                         separators=(",", ":")).encode()
    pkg = Path(pkg)
    out = Path(out) if out else pkg.with_name(f"{pkg.stem}.signed{pkg.suffix}")
    write_zip(out, entries, comment)
    return out


def verify(pkg: Path, public_keys: str | Path | Sequence[Path]) -> DaemonKey:
    """Raises SignatureError unless the package carries a signature that one of the keys verifies,
    with the daemon's rules (decoder.VerifyPluginWithPublicKeyPaths): every key must load, and a
    comma-separated string is read like THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS. Returns the
    key that verified."""
    InvalidSignature, hashes, _, padding, rsa = _crypto()
    keys = load_daemon_public_keys(public_keys)
    with zipfile.ZipFile(pkg) as zf:
        comment = zf.comment
        hashes_in_order = [hashlib.sha256(zf.read(i)).digest() for i in zf.infolist() if not i.is_dir()]
    try:
        meta = json.loads(comment.decode() or "null")
        signature = base64.b64decode(meta["signature"], validate=True)
        unix_time = int(meta["time"])
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise SignatureError("the package is not signed (no signature in the zip comment)") from exc
    data = _signed_data(hashes_in_order, unix_time)
    for key in keys:
        if not key.usable:
            continue
        try:
            rsa.RSAPublicNumbers(key.e, key.n).public_key().verify(signature, data, padding.PKCS1v15(),
                                                                   hashes.SHA256())
            return key
        except InvalidSignature:
            continue
    unusable = [str(k.path) for k in keys if not k.usable]
    note = (f" ({', '.join(unusable)} loads but can never verify: under 1024 bits or an invalid exponent)"
            if unusable else "")
    raise SignatureError("the signature does not match this package and key(s) "
                         f"(the content was changed after signing, or another key signed it){note}")


# ---- command line -------------------------------------------------------------------------------

def _human(n: int) -> str:
    return f"{n / MB:.2f} MB" if n >= MB else f"{n / 1024:.1f} KB"


def _cmd_build(args) -> int:
    result = build(Path(args.src), Path(args.out) if args.out else None, args.max_size)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(result.path)
    print(f"size: {result.size} bytes ({_human(result.size)}), {len(result.files)} files, "
          f"{_human(result.uncompressed)} uncompressed")
    print(f"checksum: {result.checksum}")
    print(f"identifier: {result.identifier}")
    return 0


def _cmd_check(args) -> int:
    src = Path(args.src).resolve()
    files = collect_files(src)
    report = validate(src, files)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for e in report.errors:
        print(f"error: {e}", file=sys.stderr)
    if not report.errors:
        print(f"ok: {len(files)} files would be packed")
    return 1 if report.errors else 0


def _cmd_keygen(args) -> int:
    private, public = keygen(Path(args.out_dir), args.name, args.bits)
    print(f"private key: {private}\npublic key: {public}")
    return 0


def _cmd_sign(args) -> int:
    out = sign(Path(args.pkg), Path(args.key), Path(args.out) if args.out else None, args.category)
    print(out)
    print(f"size: {out.stat().st_size} bytes ({_human(out.stat().st_size)})")
    print(f"identifier: {unique_identifier(out)}")
    return 0


def _cmd_verify(args) -> int:
    key = verify(Path(args.pkg), args.pub)
    print(f"signature OK: {args.pkg} (verified by {key.path})")
    print(f"identifier: {unique_identifier(Path(args.pkg))}")
    return 0


def _cmd_checksum(args) -> int:
    print(unique_identifier(Path(args.pkg)))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="build_pkg.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command")
    b = sub.add_parser("build", help="validate and pack the plugin")
    b.add_argument("--src", default=str(ROOT), help="plugin directory (default: the repository)")
    b.add_argument("--out", default=None, help="output directory (default: <src>/dist)")
    b.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE_MB, help="uncompressed limit in MB (default 50)")
    b.set_defaults(func=_cmd_build)
    c = sub.add_parser("check", help="validate only, print what is wrong")
    c.add_argument("--src", default=str(ROOT))
    c.set_defaults(func=_cmd_check)
    k = sub.add_parser("keygen", help="create an RSA key pair for signing")
    k.add_argument("--out-dir", required=True)
    k.add_argument("--name", default="dify_plugin_signing_key")
    k.add_argument("--bits", type=int, default=4096)
    k.set_defaults(func=_cmd_keygen)
    s = sub.add_parser("sign", help="sign a package (writes <name>.signed.difypkg)")
    s.add_argument("pkg")
    s.add_argument("--key", required=True, help="PEM private key")
    s.add_argument("--out", default=None)
    s.add_argument("--category", default="community", choices=AUTHORIZED_CATEGORIES,
                   help="authorized_category written to .verification.dify.json (default community)")
    s.set_defaults(func=_cmd_sign)
    v = sub.add_parser("verify", help="check a package's signature against a public key")
    v.add_argument("pkg")
    v.add_argument("--pub", required=True,
                   help="PKCS#1 PEM public key(s), comma separated like THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS")
    v.set_defaults(func=_cmd_verify)
    h = sub.add_parser("checksum", help="print author/name:version@checksum of a package")
    h.add_argument("pkg")
    h.set_defaults(func=_cmd_checksum)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "build")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except PackageError as exc:
        print("cannot build the package:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    except SignatureError as exc:
        print(f"signature: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

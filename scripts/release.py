#!/usr/bin/env python3
"""Build a release package that passes the Dify Marketplace's review (run it as `scripts/dev release`).

    scripts/dev release --repo https://github.com/OWNER/NAME --contact you@example.com
                        [--config release.toml] [--out DIR] [--sign-key KEY.private.pem [--category community]]

Steps, all before anything is written to the output directory:

1. Settings: `repo` (the public source repository) and `contact` (an email address) come from the
   flags or from `release.toml` (`repo = "…"`, `contact = "…"`); flags win. Without both, or when
   `repo` is not on a host the Marketplace accepts or `contact` is not an email, nothing is built.
   The project has no public URL yet, so none is written anywhere by default.
2. Version rule: CHANGELOG.md must have an entry `## <version> — unreleased` for the manifest's
   version. An entry with a date (released) or a git tag `v<version>` means the version was already
   published, and the Marketplace refuses an existing version: bump `version` in manifest.yaml.
3. Stage a copy of the package files and stamp it: `repo` and `contact` into manifest.yaml, the
   repository URL into the READMEs' "Source" line, and requirements.txt replaced by a lock: the exact
   versions installed in the dev venv that ran the tests, for the runtime closure of requirements.txt.
4. Build it (scripts/build_pkg.py: the daemon's and the SDK's rules) and review it
   (scripts/marketplace.py: the Marketplace's rules). Any blocking finding, any undeclared outbound
   domain and any credential-like warning without a reviewed explanation (scripts/release_review.yaml)
   stops the release.
5. Move the package to the output directory (default dist/release/), write its release notes next to
   it, and sign it if a key is given.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    """The sibling scripts, importable whether this file runs as a script or is loaded by tests."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bp = _load("build_pkg")
mp = _load("marketplace")

REVIEW_FILE = Path(__file__).resolve().parent / "release_review.yaml"
SOURCE_LINES = {  # README file → the label of its "Source" line
    "README.md": "**Source:**",
    "readme/README_zh_Hans.md": "**源代码：**",
}


class ReleaseError(Exception):
    """The release cannot be built; the message says what to do."""

    def __init__(self, message: str, problems: Iterable[str] = ()):
        self.problems = list(problems)
        super().__init__(message + "".join(f"\n  {p}" for p in self.problems))


# ---- settings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    repo: str
    contact: str


MISSING_SETTINGS = (
    "A release needs the public source repository and a contact email, written into manifest.yaml "
    "(`repo`, `contact`) and the README's Source line. Pass --repo https://github.com/OWNER/NAME "
    "--contact you@example.com, or put repo = \"…\" and contact = \"…\" in release.toml. "
    "Nothing was built.")


def read_settings(repo: str | None, contact: str | None, config: Path | None) -> Settings:
    """Flags win over the config file; both values are checked against the Marketplace's rules."""
    values: dict[str, str] = {}
    if config is not None and config.is_file():
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ReleaseError(f"{config} is not valid TOML: {exc}") from None
        values = {k: str(data[k]).strip() for k in ("repo", "contact") if isinstance(data.get(k), str)}
    repo = (repo or values.get("repo") or "").strip()
    contact = (contact or values.get("contact") or "").strip()
    if not repo or not contact:
        missing = [name for name, value in (("repo", repo), ("contact", contact)) if not value]
        raise ReleaseError(f"missing {' and '.join(missing)}. {MISSING_SETTINGS}")
    problems = []
    if not mp.SOURCE_URL_RE.match(repo):
        problems.append(f"repo '{repo}' must be the repository's https URL on one of the hosts the Marketplace "
                        f"accepts: {', '.join(mp.SOURCE_HOSTS)}")
    if not mp.EMAIL_RE.match(contact):
        problems.append(f"contact '{contact}' must be an email address (the Marketplace's manifest check accepts "
                        "nothing else)")
    if problems:
        raise ReleaseError("invalid release settings; nothing was built.", problems)
    return Settings(repo=repo, contact=contact)


# ---- version rule (CHANGELOG.md) -----------------------------------------------------------------

CHANGELOG_HEADING = re.compile(r"^## +(\S+) +[—–-] +(.+?)\s*$", re.M)


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    status: str          # "unreleased" or the release date
    body: str

    @property
    def released(self) -> bool:
        return self.status.lower() != "unreleased"


def changelog_entries(text: str) -> list[ChangelogEntry]:
    heads = list(CHANGELOG_HEADING.finditer(text))
    out = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.append(ChangelogEntry(head.group(1), head.group(2), text[head.end():end].strip()))
    return out


def git_tags(src: Path, version: str) -> list[str]:
    """The tags `v<version>` / `<version>` that exist in src's git repository (none when it is not one)."""
    git = shutil.which("git")
    if git is None:
        return []
    proc = subprocess.run([git, "-C", str(src), "tag", "--list", f"v{version}", version],  # noqa: S603
                          capture_output=True, text=True, timeout=30, check=False)
    return proc.stdout.split() if proc.returncode == 0 else []


def check_version_rule(src: Path, version: str) -> ChangelogEntry:
    """The entry to release, or why this version cannot be released."""
    path = src / "CHANGELOG.md"
    entries = changelog_entries(path.read_text(encoding="utf-8")) if path.is_file() else []
    entry = next((e for e in entries if e.version == version), None)
    bump = ("The Marketplace refuses a version it already has: raise `version` in manifest.yaml and add "
            "`## <new version> — unreleased` to CHANGELOG.md.")
    if entry is None:
        raise ReleaseError(f"CHANGELOG.md has no entry for version {version}. Add `## {version} — unreleased` "
                           "with what changed, then run the release again.")
    if entry.released:
        raise ReleaseError(f"version {version} was already released ({entry.status} in CHANGELOG.md). {bump}")
    tags = git_tags(src, version)
    if tags:
        raise ReleaseError(f"version {version} is already tagged ({', '.join(tags)}). {bump}")
    if not entry.body:
        raise ReleaseError(f"the CHANGELOG.md entry for {version} is empty; say what changed.")
    return entry


# ---- dependency lock -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Pin:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def _requirements(path: Path) -> list[Requirement]:
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise ReleaseError(f"{path.name}:{number}: cannot lock '{line}': {exc}") from None
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(req)
    return out


def runtime_lock(requirements: Path, dists: Iterable[metadata.Distribution] | None = None) -> list[Pin]:
    """`name==version` for every distribution the requirements need at run time (their closure,
    extras and environment markers evaluated for this interpreter), as installed in `dists`
    (default: the running environment, i.e. the dev venv the tests ran in)."""
    index = {canonicalize_name(d.metadata["Name"]): d for d in (metadata.distributions() if dists is None else dists)}
    pins: dict[str, Pin] = {}
    done: set[tuple[str, str]] = set()
    queue: list[tuple[Requirement, str]] = [(r, requirements.name) for r in _requirements(requirements)]
    problems: list[str] = []
    while queue:
        req, needed_by = queue.pop()
        name = canonicalize_name(req.name)
        dist = index.get(name)
        if dist is None:
            problems.append(f"{req} (needed by {needed_by}) is not installed in this environment")
            continue
        if not req.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{dist.metadata['Name']} {dist.version} is installed but {needed_by} needs {req}")
        pins[name] = Pin(dist.metadata["Name"], dist.version)
        for extra in {""} | set(req.extras):
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for raw in dist.requires or []:
                dep = Requirement(raw)
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    queue.append((dep, f"{dist.metadata['Name']} {dist.version}"))
    if problems:
        raise ReleaseError("the dev venv does not match requirements.txt; rebuild it (delete .venv and run "
                           "`scripts/dev test`) and release from the venv the tests ran in:", sorted(set(problems)))
    return [pins[k] for k in sorted(pins)]


def lock_text(pins: list[Pin]) -> str:
    header = ("# Pinned by scripts/release.py: the versions installed in the dev venv that ran the tests\n"
              "# (the runtime closure of the repository's requirements.txt, CPython "
              f"{sys.version_info.major}.{sys.version_info.minor} on {sys.platform}).\n")
    return header + "".join(f"{p}\n" for p in pins)


# ---- staging and stamping ------------------------------------------------------------------------

def stage(src: Path, dest: Path) -> None:
    """The files `dify plugin package` would pack, plus the ignore file, copied to dest."""
    for rel in bp.collect_files(src) + [name for name in (".difyignore",) if (src / name).is_file()]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)


def stamp_manifest(text: str, settings: Settings) -> str:
    """Sets the top-level `repo` and `contact` (replacing any), right after `privacy:` when there is one."""
    lines = [ln for ln in text.split("\n") if not re.match(r"^(repo|contact):", ln)]
    new = [f"repo: {json.dumps(settings.repo)}", f"contact: {json.dumps(settings.contact)}"]
    at = next((i + 1 for i, ln in enumerate(lines) if ln.startswith("privacy:")), None)
    if at is None:
        at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
    lines[at:at] = new
    out = "\n".join(lines)
    doc = yaml.safe_load(out)
    if doc.get("repo") != settings.repo or doc.get("contact") != settings.contact:
        raise ReleaseError("could not write repo and contact into manifest.yaml (unexpected layout)")
    return out


def stamp_source_line(text: str, label: str, repo: str, where: str) -> str:
    pattern = re.compile(rf"^{re.escape(label)}.*$", re.M)
    found = pattern.findall(text)
    if len(found) != 1:
        raise ReleaseError(f"{where} must have exactly one line starting with '{label}' (the source repository "
                           f"line the release fills in); found {len(found)}.")
    return pattern.sub(f"{label} {repo}", text)


def stamp(stage_dir: Path, settings: Settings, pins: list[Pin]) -> None:
    manifest = stage_dir / "manifest.yaml"
    manifest.write_text(stamp_manifest(manifest.read_text(encoding="utf-8"), settings), encoding="utf-8")
    for rel, label in SOURCE_LINES.items():
        path = stage_dir / rel
        if path.is_file():
            path.write_text(stamp_source_line(path.read_text(encoding="utf-8"), label, settings.repo, rel),
                            encoding="utf-8")
    (stage_dir / "requirements.txt").write_text(lock_text(pins), encoding="utf-8")


# ---- review --------------------------------------------------------------------------------------

def reviewed_explanations(path: Path = REVIEW_FILE) -> dict[str, str]:
    """`file::function` → why its credential-like warning is not a leak."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    return {str(k): " ".join(str(v).split()) for k, v in ((data or {}).get("credential_like") or {}).items()}


@dataclass
class Outcome:
    review: Any                                   # marketplace.Review
    explained: list[tuple[Any, str]] = field(default_factory=list)   # (SafetyFinding, why)


def judge(review: Any, explanations: dict[str, str]) -> Outcome:
    """Stops the release on blocking findings, undeclared domains and unexplained credential warnings."""
    problems = list(review.blocking_errors)
    undeclared = [h for h in review.detected_domains if not mp.is_declared(h, review.declared_domains)]
    if undeclared:
        problems.append("outbound domains found in the code but not declared in manifest.yaml network.domains: "
                        + ", ".join(undeclared) + " (declare them, or use reserved example names in texts)")
    outcome = Outcome(review)
    for finding in review.safety:
        if "credential-like" not in finding.message:
            problems.append(f"python_safety: {finding} (every call needs a timeout)")
        elif finding.key in explanations:
            outcome.explained.append((finding, explanations[finding.key]))
        else:
            problems.append(f"python_safety: {finding} — not reviewed: check that no secret can leave through it, "
                            f"then explain it under credential_like: '{finding.key}' in {REVIEW_FILE.name}")
    if problems:
        raise ReleaseError("the package does not pass the Marketplace review; nothing was written:", problems)
    return outcome


# ---- the release ---------------------------------------------------------------------------------

@dataclass
class ReleaseResult:
    path: Path
    signed: Path | None
    notes: Path
    identifier: str
    pins: list[Pin]
    outcome: Outcome


def release(src: Path, settings: Settings, out_dir: Path | None = None, *, sign_key: Path | None = None,
            category: str = "community", dists: Iterable[metadata.Distribution] | None = None) -> ReleaseResult:
    src = Path(src).resolve()
    out_dir = Path(out_dir) if out_dir else src / "dist" / "release"
    manifest = yaml.safe_load((src / "manifest.yaml").read_text(encoding="utf-8"))
    entry = check_version_rule(src, str(manifest.get("version")))
    pins = runtime_lock(src / "requirements.txt", dists)
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        staged = Path(tmp) / "plugin"
        stage(src, staged)
        stamp(staged, settings, pins)
        try:
            built = bp.build(staged, Path(tmp) / "out")
        except bp.PackageError as exc:
            raise ReleaseError("the stamped package does not build:", exc.problems) from None
        outcome = judge(mp.review_package(built.path), reviewed_explanations())
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / built.path.name
        shutil.copyfile(built.path, final)
    signed = bp.sign(final, sign_key, category=category) if sign_key else None
    notes = out_dir / f"{final.stem}.release-notes.md"
    notes.write_text(release_notes(manifest, settings, entry, built.identifier, pins, outcome), encoding="utf-8")
    return ReleaseResult(final, signed, notes, built.identifier, pins, outcome)


def release_notes(manifest: dict, settings: Settings, entry: ChangelogEntry, identifier: str, pins: list[Pin],
                  outcome: Outcome) -> str:
    review = outcome.review
    lines = [f"# {manifest['name']} {manifest['version']}", "",
             f"- Identifier: `{identifier}`", f"- Source: {settings.repo}", f"- Contact: {settings.contact}",
             f"- Built: {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}", "",
             "## Changes", "", entry.body, "",
             "## Marketplace review (scripts/marketplace.py)", "", mp.summary(review), "",
             "## Values that look like credentials", "",
             "The Marketplace warns wherever a name such as `secret` or `token` reaches a return, a raise or a log "
             "call. Each place was reviewed:", ""]
    lines += [f"- `{f.path}:{f.line}` ({f.function}): {f.message}. {why}" for f, why in outcome.explained]
    declared = ", ".join(f"`{d}`" for d in review.declared_domains) or "none"
    lines += ["", "## Outbound domains", "",
              f"Declared in manifest.yaml `network.domains`: {declared}. Found in the code by the static scan: "
              f"{', '.join(f'`{d}`' for d in review.detected_domains) or 'none beyond the declared ones'}.",
              "Addresses the user configures are contacted too and cannot be declared ahead: the ComfyUI servers "
              "(`comfyui_base_url`), the COS endpoint override and custom domain, and Dify's own files URL.", "",
              "## Dependencies", "",
              f"requirements.txt pins {len(pins)} distributions (the versions the tests ran with):", "",
              *[f"- `{p}`" for p in pins], ""]
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scripts/dev release", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", help="public source repository URL (github.com, gitlab.com, gitee.com, …)")
    ap.add_argument("--contact", help="contact email address")
    ap.add_argument("--config", default=None, help="TOML file with repo and contact (default: <src>/release.toml)")
    ap.add_argument("--src", default=str(ROOT), help="plugin directory (default: the repository)")
    ap.add_argument("--out", default=None, help="output directory (default: <src>/dist/release)")
    ap.add_argument("--sign-key", default=None, help="sign the package with this PEM private key")
    ap.add_argument("--category", default="community", choices=bp.AUTHORIZED_CATEGORIES)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    src = Path(args.src).resolve()
    try:
        settings = read_settings(args.repo, args.contact, Path(args.config) if args.config else src / "release.toml")
        result = release(src, settings, Path(args.out) if args.out else None,
                         sign_key=Path(args.sign_key) if args.sign_key else None, category=args.category)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    for r in result.outcome.review.results:
        if r.name != "python_safety":   # those are all reviewed (judge): listed in the release notes
            for text in r.warnings:
                print(f"warning: {r.name}: {text}", file=sys.stderr)
    print(f"{len(result.outcome.explained)} credential-like warning(s), each explained in the release notes",
          file=sys.stderr)
    print(result.path)
    if result.signed:
        print(result.signed)
    print(f"identifier: {result.identifier}")
    print(f"release notes: {result.notes}")
    print(f"pinned: {len(result.pins)} runtime dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main())

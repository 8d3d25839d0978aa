#!/usr/bin/env python3
"""The Dify Marketplace's package review, re-implemented from its documented rules.

    python scripts/marketplace.py PKG.difypkg

A package reaches the Marketplace through a pull request to langgenius/dify-plugins, whose CI
(.github/workflows/pre-check-plugin.yaml) runs the checks of langgenius/dify-marketplace-toolkit;
its local validator (validator/validate-difypkg.py, check order in toolkit/registry.py) runs seven
blocking checks and a set of warnings. This module implements the same rules, read from these
files of the toolkit, at its root or in its copy under skill/local-difypkg-validator/ (commit in
brackets):

    blocking  package_contents      toolkit/checks/contents.py        [f93a7297]
              package_secrets       toolkit/checks/secrets.py         [9b618f84]
              package_binaries      toolkit/checks/binaries.py        [f93a7297]
              manifest_metadata     toolkit/checks/manifest.py        [a9c59ca5]
                                    toolkit/checks/source_hosts.py    [9b618f84]
              readme_metadata       toolkit/checks/readme.py          [9b618f84]
              package_dependencies  toolkit/checks/dependencies.py    [04f98f82]
              python_compile        validator/validate-difypkg.py     (compileall)
    warnings  python_safety         toolkit/checks/safety.py          [f93a7297]
              access_domains        toolkit/checks/domains.py, scan/hosts.py, walk.py [f93a7297]
              pinned dependencies   toolkit/checks/vulns.py, scan/deps.py [82bc038f]

plus the pull-request pre-check of langgenius/dify-plugins (author must not contain "langgenius"
or "dify", icon present and not the template icon). Not implemented: the financial-activity
keyword sweep, the OSV vulnerability lookup (needs the network; we only report which
dependencies are pinned, which is what makes the lookup possible) and the checks that need the
pull request itself (PR body, Marketplace duplicate-version lookup).

Every rule is an own implementation: no toolkit code is copied or run.
"""

from __future__ import annotations

import ast
import ipaddress
import math
import os
import re
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# ---- shared helpers ----------------------------------------------------------------------------

MAX_PACKAGE_BYTES = 50 * 1024 * 1024
MAX_TEXT_BYTES = 1024 * 1024


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return ""


def rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


@dataclass
class CheckResult:
    name: str
    blocking: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class SafetyFinding:
    """One python_safety warning, with the function it sits in (for the release notes)."""

    path: str
    line: int
    function: str
    message: str
    snippet: str

    @property
    def key(self) -> str:
        return f"{self.path}::{self.function}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}: {self.snippet}"


@dataclass
class Review:
    results: list[CheckResult]
    safety: list[SafetyFinding]
    detected_domains: list[str]
    declared_domains: list[str]

    @property
    def blocking_errors(self) -> list[str]:
        return [f"{r.name}: {e}" for r in self.results if r.blocking for e in r.errors]

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)


# ---- package_contents (blocking) -----------------------------------------------------------------

BLOCKED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "__pycache__", ".pytest_cache", ".ruff_cache",
                ".mypy_cache", ".tox", ".nox", ".idea", ".vscode", "node_modules", "pycache"}
REVIEW_DIRS = {"build", "dist"}
BLOCKED_FILES = {".DS_Store", ".gitconfig", "Thumbs.db", "desktop.ini", "id_rsa"}
ALLOWED_ENV_FILES = {".env.example", ".env.sample", ".env.template"}
BLOCKED_SUFFIXES = {".key", ".pem", ".p12", ".pfx", ".pyc", ".pyo", ".log", ".tmp", ".swp", ".swo", ".bak"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
MAX_FILES = 5000


def _blocked_env(name: str) -> bool:
    return name not in ALLOWED_ENV_FILES and (name == ".env" or name.startswith(".env."))


def check_contents(root: Path, package_file: Path | None) -> CheckResult:
    result = CheckResult("package_contents", blocking=True)
    if package_file is not None and package_file.stat().st_size > MAX_PACKAGE_BYTES:
        result.errors.append(f"package file size exceeds 50 MB: {package_file.stat().st_size} bytes")
    count = total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in list(dirnames):
            if name in BLOCKED_DIRS:
                result.errors.append(f"blocked directory: {rel(here / name, root)}/")
                dirnames.remove(name)
            elif name in REVIEW_DIRS:
                result.warnings.append(f"review directory: {rel(here / name, root)}/")
        for name in filenames:
            path = here / name
            count += 1
            total += path.stat().st_size
            suffix = path.suffix.lower()
            if name in BLOCKED_FILES or _blocked_env(name):
                result.errors.append(f"blocked file: {rel(path, root)}")
            elif suffix in BLOCKED_SUFFIXES:
                result.errors.append(f"blocked file suffix: {rel(path, root)}")
            elif suffix in ARCHIVE_SUFFIXES:
                result.warnings.append(f"review archive file: {rel(path, root)}")
    if total > MAX_PACKAGE_BYTES:
        result.errors.append(f"package contents size exceeds 50 MB: {total} bytes")
    if count > MAX_FILES:
        result.errors.append(f"package contains too many files: {count} files")
    return result


# ---- package_secrets (blocking) ------------------------------------------------------------------

NOT_TEXT_SUFFIXES = {".7z", ".avif", ".bmp", ".bz2", ".dylib", ".eot", ".exe", ".gif", ".gz", ".ico", ".jpeg",
                     ".jpg", ".mov", ".mp3", ".mp4", ".otf", ".pdf", ".png", ".rar", ".so", ".tar", ".tgz",
                     ".ttf", ".webm", ".webp", ".woff", ".woff2", ".xz", ".zip"}
SECRET_WORDS = ("api_key", "apikey", "access_key", "access_token", "auth_token", "client_secret", "password",
                "private_key", "secret", "token")
PLACEHOLDERS = {"", "changeme", "dummy", "example", "fake", "none", "null", "placeholder", "test", "todo", "xxx",
                "xxxx", "your-api-key", "your_api_key", "your-key", "your-secret", "your-token"}
PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
ASSIGNMENT_RE = re.compile(
    r"(?ix)(?P<key>[A-Z0-9_.-]*(?:api[_-]?key|access[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret"
    r"|password|private[_-]?key|secret|token)[A-Z0-9_.-]*)\s*[:=]\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\"',\s#}]+)")
# An unquoted right-hand side in these files is an expression (code reading a credential), not a literal.
CODE_SUFFIXES = {".c", ".cc", ".cpp", ".cs", ".go", ".h", ".hpp", ".java", ".js", ".jsx", ".kt", ".m", ".mjs", ".mm",
                 ".php", ".py", ".pyi", ".rb", ".rs", ".scala", ".swift", ".ts", ".tsx"}
NON_SECRET_VALUES = {"true", "false", "yes", "no", "on", "off"}
NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
TOKEN_CHARS_RE = re.compile(r"^[A-Za-z0-9+/=_.-]+$")
TOKEN_PATTERNS = (
    ("OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{20,}\b")),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b")),
    ("AWS access key id", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("JWT token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),
)
SECRET_SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules"}


def _is_binary(path: Path) -> bool:
    if path.suffix.lower() in NOT_TEXT_SUFFIXES:
        return True
    with path.open("rb") as fh:
        return b"\0" in fh.read(4096)


def _is_placeholder(value: str) -> bool:
    low = value.strip().strip("\"'").strip().lower()
    return (low in PLACEHOLDERS or (low.startswith("<") and low.endswith(">")) or low.startswith("${")
            or ("your" in low and any(w in low for w in ("key", "secret", "token", "password")))
            or set(low) <= {"x", "*", "-", "_"})


def _entropy(value: str) -> float:
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in Counter(value).values()) if value else 0.0


def _looks_secret(value: str) -> bool:
    """Token-shaped and with the entropy of secret material (detect-secrets' floors: 3.0 hex, 4.5 base64-ish)."""
    if len(value) < 12 or value.startswith(("http://", "https://", "./", "../", "/")):
        return False
    if HEX_RE.match(value):
        return _entropy(value) >= 3.0
    return bool(TOKEN_CHARS_RE.match(value)) and _entropy(value) >= 4.5


def _mask(value: str) -> str:
    clean = value.strip().strip("\"'")
    return "***" if len(clean) <= 8 else f"{clean[:4]}...{clean[-4:]}"


def scan_secrets_text(where: str, text: str, result: CheckResult) -> None:
    code = Path(where).suffix.lower() in CODE_SUFFIXES
    for number, line in enumerate(text.splitlines(), start=1):
        if PRIVATE_KEY_RE.search(line):
            result.errors.append(f"{where}:{number} matched private key block")
        vendor = False
        for label, pattern in TOKEN_PATTERNS:
            match = pattern.search(line)
            if match:
                vendor = True
                result.errors.append(f"{where}:{number} matched {label}: {_mask(match.group(0))}")
        if vendor:
            continue
        for match in ASSIGNMENT_RE.finditer(line):
            key, value = match.group("key"), match.group("value")
            quoted = len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]
            clean = value.strip().strip("\"'")
            if (not any(word in key.lower() for word in SECRET_WORDS) or not clean or _is_placeholder(clean)
                    or NUMBER_RE.match(clean) or clean.lower() in NON_SECRET_VALUES or (code and not quoted)):
                continue
            if _looks_secret(clean):
                result.errors.append(f"{where}:{number} matched secret assignment `{key}`: {_mask(clean)}")
            else:
                result.warnings.append(f"{where}:{number} review possible secret field `{key}`")


def check_secrets(root: Path) -> CheckResult:
    result = CheckResult("package_secrets", blocking=True)
    for path in _walk_files(root, SECRET_SKIP_DIRS):
        if path.stat().st_size > MAX_TEXT_BYTES:
            result.warnings.append(f"{rel(path, root)} skipped because it is larger than 1 MiB")
        elif not _is_binary(path):
            scan_secrets_text(rel(path, root), read_text(path), result)
    return result


def _walk_files(root: Path, skip_dirs: set[str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in sorted(filenames):
            yield Path(dirpath) / name


# ---- package_binaries (blocking) -----------------------------------------------------------------

MAGIC = {b"\x7fELF": "ELF executable or shared object", b"MZ": "Windows PE executable or DLL",
         b"\xfe\xed\xfa\xce": "Mach-O binary", b"\xfe\xed\xfa\xcf": "Mach-O 64-bit binary",
         b"\xce\xfa\xed\xfe": "Mach-O binary", b"\xcf\xfa\xed\xfe": "Mach-O 64-bit binary",
         b"\xca\xfe\xba\xbe": "Mach-O universal binary", b"\xca\xfe\xba\xbf": "Mach-O universal binary"}
NATIVE_SUFFIXES = {".dll", ".dylib", ".exe", ".node", ".pyd", ".so"}
REVIEW_SUFFIXES = {".app", ".bin", ".command", ".run", ".sh"}
DAEMON_BINARY_RE = re.compile(r"^(?:dify-plugin-linux-.+|dify-plugin-darwin-.+|dify-plugin-windows-.+\.exe)$", re.I)


def check_binaries(root: Path) -> CheckResult:
    result = CheckResult("package_binaries", blocking=True)
    for path in _walk_files(root, {"__pycache__", ".git", ".hg", ".svn"}):
        where = rel(path, root)
        in_wheel = any(part.endswith(".whl") for part in path.parts)
        target = result.warnings if in_wheel else result.errors
        if DAEMON_BINARY_RE.match(path.name):
            result.errors.append(f"{where}: platform plugin daemon binary filename is not allowed")
        with path.open("rb") as fh:
            head = fh.read(8)
        for magic, what in MAGIC.items():
            if head.startswith(magic):
                target.append(f"{where}: {what}")
        suffix = path.suffix.lower()
        if suffix in NATIVE_SUFFIXES:
            target.append(f"{where}: native binary suffix {suffix}")
        elif suffix in REVIEW_SUFFIXES:
            result.warnings.append(f"{where}: review suffix {suffix}")
        if os.access(path, os.X_OK):
            result.warnings.append(f"{where}: has executable permission")
    return result


# ---- manifest_metadata (blocking) + the pull-request pre-check -----------------------------------

REQUIRED_MANIFEST_FIELDS = ("author", "name", "version", "type", "icon", "plugins", "privacy", "repo", "contact",
                            "label.en_US", "description.en_US", "meta.version", "meta.arch", "meta.runner.language",
                            "meta.runner.version", "meta.runner.entrypoint")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
# source_hosts.py: the hosts a plugin's source repository may live on.
SOURCE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "gitee.com", "codeberg.org", "git.sr.ht",
                "gitlab.anchnet.com")
_HOSTS = "|".join(re.escape(h) for h in SOURCE_HOSTS)
SOURCE_URL_RE = re.compile(rf"^https?://(?:www\.)?(?:{_HOSTS})/[^\s)>\"]+$", re.I)
SOURCE_LINK_RE = re.compile(rf"https?://(?:www\.)?(?:{_HOSTS})/[^\s)>\"]+", re.I)
PRIVACY_TEMPLATE = "please fill in the privacy policy"
PRIVACY_WORDS = ("collect", "collection", "personal data", "user data", "data collected", "store", "storage",
                 "retain", "retention", "persist", "log", "logging", "third party", "third-party", "share", "send",
                 "transmit", "external service", "no user data collected", "does not collect", "do not collect",
                 "not collect any user data")
TEMPLATE_ICON_MARKER = "DIFY_MARKETPLACE_TEMPLATE_ICON_DO_NOT_USE"


def _field(doc, dotted: str) -> str:
    """The value as the toolkit reads it (`yq -r '.a.b // ""'`): null, false and blanks are missing."""
    value = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or value is False:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def _required_file(root: Path, name: str, result: CheckResult) -> Path | None:
    """root/name, or None with "missing required file" in `result`."""
    path = root / name
    if path.is_file():
        return path
    result.errors.append(f"missing required file: {name}")
    return None


def check_manifest(root: Path) -> CheckResult:
    result = CheckResult("manifest_metadata", blocking=True)
    path = _required_file(root, "manifest.yaml", result)
    if path is None:
        return result
    try:
        doc = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        result.errors.append(f"failed to parse manifest.yaml: {exc}")
        return result
    values = {name: _field(doc, name) for name in REQUIRED_MANIFEST_FIELDS}
    result.errors += [f"missing required field: {name}" for name, value in values.items() if not value]
    if not _field(doc, "meta.minimum_dify_version"):
        result.warnings.append("missing recommended field: meta.minimum_dify_version")
    author = values["author"]
    for word in ("langgenius", "dify"):
        if word in author:
            result.errors.append(f"author must not contain '{word}'")
    if values["type"] and values["type"] != "plugin":
        result.errors.append("type must be 'plugin'")
    if values["repo"] and not SOURCE_URL_RE.search(values["repo"]):
        result.errors.append(f"repo '{values['repo']}' is not on an allowed source host ({', '.join(SOURCE_HOSTS)})")
    if values["contact"] and not EMAIL_RE.match(values["contact"]):
        result.errors.append("contact must be a valid email address")
    _required_file(root, "PRIVACY.md", result)
    _check_privacy(root, values["privacy"], result)
    _check_icon(root, values["icon"], result)
    return result


def _check_privacy(root: Path, privacy: str, result: CheckResult) -> None:
    if not privacy or privacy.startswith(("http://", "https://")):
        return
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", privacy):
        result.errors.append("privacy URL must start with http:// or https://")
        return
    ref = privacy[2:] if privacy.startswith("./") else privacy
    target = (root / ref).resolve()
    if Path(ref).is_absolute() or not target.is_relative_to(root.resolve()):
        result.errors.append(f"privacy must reference a file inside the package: {privacy}")
    elif not target.is_file():
        result.errors.append(f"privacy references missing file: {privacy}")
    else:
        text = read_text(target).lower()
        if not text.strip():
            result.errors.append(f"privacy policy file is empty: {target.name}")
        elif PRIVACY_TEMPLATE in text:
            result.errors.append(f"privacy policy file still contains template placeholder text: {target.name}")
        elif not any(word in text for word in PRIVACY_WORDS):
            result.warnings.append("privacy policy may be missing data collection, storage, logging, third-party "
                                   "sharing, or no-user-data-collected disclosure")


def _check_icon(root: Path, icon: str, result: CheckResult) -> None:
    # dify-plugins pre-check-plugin.yaml, "Check Plugin Icon".
    path = root / "_assets" / icon
    if not icon or not path.is_file():
        result.errors.append(f"plugin icon file not found: _assets/{icon}")
    elif TEMPLATE_ICON_MARKER in read_text(path):
        result.errors.append("plugin icon is the Marketplace template icon")


# ---- readme_metadata (blocking) ------------------------------------------------------------------

FENCED_RE = re.compile(r"```.*?```", re.S)
CJK_RE = re.compile(r"[\u3400-\u4DBF\u4E00-\u9FFF]")
LOCALIZED_RE = re.compile(r"^README[._-][A-Za-z]{2,3}(?:[_-][A-Za-z0-9]+)?\.md$")
EXPECTED_LOCALIZED_RE = re.compile(r"^README\.[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]+)?\.md$")
README_SECTIONS = {
    "setup instructions": ("setup", "install", "installation", "configure", "configuration", "getting started"),
    "usage instructions": ("usage", "use", "example", "examples", "workflow", "chatflow"),
    "required APIs or credentials": ("api key", "apikey", "credential", "credentials", "token", "secret", "auth",
                                     "authentication", "authorization"),
    "connection requirements": ("connection", "connect", "endpoint", "base url", "host", "proxy", "network"),
}


def check_readme(root: Path) -> CheckResult:
    result = CheckResult("readme_metadata", blocking=True)
    path = _required_file(root, "README.md", result)
    if path is None:
        return result
    text = read_text(path)
    if not text.strip():
        result.errors.append("README.md is empty")
        return result
    if not SOURCE_LINK_RE.search(text):
        result.errors.append("README.md must link the source repository on an allowed host "
                             f"({', '.join(SOURCE_HOSTS)})")
    cjk = CJK_RE.findall(FENCED_RE.sub("", text))
    if cjk:
        result.errors.append("README.md primary content must be English; move localized content to README.<locale>.md "
                             f"(found {len(cjk)} CJK characters, e.g. {''.join(cjk[:8])!r})")
    for other in sorted(root.glob("README*.md")):
        if other.name != "README.md" and LOCALIZED_RE.match(other.name) and not EXPECTED_LOCALIZED_RE.match(other.name):
            result.warnings.append(f"localized README should use README.<locale>.md naming: {other.name}")
    low = text.lower()
    for section, words in README_SECTIONS.items():
        if not any(word in low for word in words):
            result.warnings.append(f"README.md may be missing {section}")
    return result


# ---- package_dependencies (blocking) + pinned dependencies (warning) ------------------------------

VERSION_OP_RE = re.compile(r"(===|==|~=|!=|<=|>=|<|>|\^)")
DIRECT_URL_RE = re.compile(r"(^|\s@)\s*(?:https?|ftp|file)://", re.I)
GIT_RE = re.compile(r"git\+", re.I)
LOCAL_PATH_RE = re.compile(r"(^|\s@)\s*(?:\./|\.\./|/)")
LOWER_BOUND_ONLY_RE = re.compile(r"^([^<>=!~]+)?(>=|>)\s*[^,]+$", re.I)
NAME_RE = re.compile(r"^\s*([A-Za-z0-9_.-]+)")
PIN_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#,]+)")
OPTION_PREFIXES = ("-c ", "--constraint ", "--extra-index-url ", "--find-links ", "--index-url ", "--no-binary ",
                   "--only-binary ", "--trusted-host ", "--use-pep517", "--use-feature ")
LARGE_DEPENDENCIES = {"chromadb", "faiss-cpu", "faiss-gpu", "jax", "llama-cpp-python", "opencv-contrib-python",
                      "opencv-python", "opencv-python-headless", "paddlepaddle", "playwright", "pyppeteer", "selenium",
                      "spacy", "tensorflow", "tensorflow-cpu", "torch", "torchaudio", "torchvision", "transformers"}


def _requirement_lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            yield number, line


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in re.split(r"[.+-]", text):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def check_requirement(line: str, where: str, result: CheckResult) -> None:
    if GIT_RE.search(line):
        result.errors.append(f"{where}: git-based install is not allowed: {line}")
    elif DIRECT_URL_RE.search(line):
        result.errors.append(f"{where}: direct URL install is not allowed: {line}")
    elif line.startswith(("-e ", "--editable ")):
        result.warnings.append(f"{where}: editable install requires reviewer approval: {line}")
    elif LOCAL_PATH_RE.search(line):
        result.warnings.append(f"{where}: local path dependency requires reviewer approval: {line}")
    elif not line.startswith(OPTION_PREFIXES + ("-r ", "--requirement ")):
        match = NAME_RE.match(line.split(" @ ", 1)[0])
        name = match.group(1).lower().replace("_", "-") if match else ""
        if name in LARGE_DEPENDENCIES:
            result.warnings.append(f"{where}: large runtime dependency requires reviewer approval: {name}")
        if name == "dify-plugin":
            floor = re.search(r"(?:>=|==)\s*([0-9][0-9A-Za-z.+-]*)", line)
            if floor is None or _version_tuple(floor.group(1)) < (0, 9, 0):
                result.errors.append(f"{where}: dify_plugin dependency must be >= 0.9.0: {line}")
                return
        if not VERSION_OP_RE.search(line):
            result.errors.append(f"{where}: dependency has no version constraint: {line}")
        elif LOWER_BOUND_ONLY_RE.match(line):
            result.warnings.append(f"{where}: dependency has only a lower-bound version constraint: {line}")


def _read_requirements(path: Path, root: Path, seen: set[Path], result: CheckResult) -> None:
    if path.resolve() in seen:
        return
    seen.add(path.resolve())
    for number, line in _requirement_lines(path):
        where = f"{rel(path, root)}:{number}"
        if line.startswith(("-r ", "--requirement ")):
            target = (path.parent / line.split(None, 1)[1].strip()).resolve()
            if not target.is_relative_to(root.resolve()):
                result.warnings.append(f"{where}: referenced requirements file is outside the package")
            elif not target.is_file():
                result.warnings.append(f"{where}: referenced requirements file is missing")
            else:
                _read_requirements(target, root, seen, result)
            continue
        check_requirement(line, where, result)


def check_dependencies(root: Path) -> CheckResult:
    result = CheckResult("package_dependencies", blocking=True)
    if (root / "requirements.txt").is_file():
        _read_requirements(root / "requirements.txt", root, set(), result)
    if (root / "pyproject.toml").is_file():
        import tomllib

        try:
            data = tomllib.loads(read_text(root / "pyproject.toml"))
        except tomllib.TOMLDecodeError as exc:
            result.errors.append(f"pyproject.toml: failed to parse pyproject.toml: {exc}")
            return result
        for dep in (data.get("project") or {}).get("dependencies") or []:
            check_requirement(str(dep), "pyproject.toml:project.dependencies", result)
    return result


def check_pinning(root: Path) -> CheckResult:
    """What the vulnerability lookup can see: it only looks up `name==version` pins."""
    result = CheckResult("dependency_pinning", blocking=False)
    path = root / "requirements.txt"
    if not path.is_file():
        result.warnings.append("no requirements.txt; nothing the vulnerability lookup can check")
        return result
    pinned: list[str] = []
    unpinned: list[str] = []
    for _, line in _requirement_lines(path):
        match = PIN_RE.match(line)
        if match:
            pinned.append(match.group(1))
        elif not line.startswith("-"):
            unpinned.append(line)
    if unpinned:
        result.warnings.append(f"{len(unpinned)} dependency(ies) have no exact version and cannot be looked up: "
                               + ", ".join(unpinned))
    result.warnings.insert(0, f"dependency source: requirements.txt ({len(pinned)} pinned, {len(unpinned)} unpinned)")
    return result


# ---- python_compile (blocking) -------------------------------------------------------------------

def check_compile(root: Path) -> CheckResult:
    result = CheckResult("python_compile", blocking=True)
    for path in _walk_files(root, set()):
        if path.suffix == ".py":
            try:
                compile(read_text(path), rel(path, root), "exec")
            except (SyntaxError, ValueError) as exc:
                result.errors.append(f"{rel(path, root)}: does not compile: {exc}")
    return result


# ---- python_safety (warning) ---------------------------------------------------------------------

REQUEST_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "request"}
LEAK_WORDS = ("credential", "api_key", "apikey", "secret", "token", "password", "passwd")
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
SAFETY_SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "__pycache__", ".pytest_cache", ".ruff_cache",
                    ".mypy_cache", ".tox", ".nox", "node_modules"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _mentions_secret(node: ast.AST) -> bool:
    """The toolkit's name test: a Name or Attribute mentioning a credential word. A call counts only
    through its arguments (not the function it calls); values are never looked at."""
    if isinstance(node, ast.Name):
        return _leaky(node.id)
    if isinstance(node, ast.Attribute):
        return _leaky(node.attr) or _mentions_secret(node.value)
    if isinstance(node, ast.Call):
        return any(_mentions_secret(a) for a in node.args) or any(_mentions_secret(k.value) for k in node.keywords)
    if isinstance(node, ast.keyword):
        return _mentions_secret(node.value)
    return any(_mentions_secret(child) for child in ast.iter_child_nodes(node))


def _leaky(name: str) -> bool:
    return any(word in name.lower() for word in LEAK_WORDS)


class _SafetyVisitor(ast.NodeVisitor):
    def __init__(self, source: str, where: str):
        self.source, self.where = source, where
        self.findings: list[SafetyFinding] = []
        self.scope: list[str] = []
        self.request_modules = {"requests"}
        self.request_functions: set[str] = set()

    def _add(self, node: ast.AST, message: str) -> None:
        snippet = " ".join((ast.get_source_segment(self.source, node) or "").split())[:180]
        function = ".".join(self.scope) or "<module>"
        self.findings.append(SafetyFinding(self.where, getattr(node, "lineno", 0), function, message, snippet))

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped  # noqa: N815

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802
        self.request_modules |= {a.asname or a.name for a in node.names if a.name == "requests"}
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        if node.module == "requests":
            self.request_functions |= {a.asname or a.name for a in node.names if a.name in REQUEST_METHODS}
        self.generic_visit(node)

    def _is_request(self, node: ast.Call) -> bool:
        if isinstance(node.func, ast.Attribute):
            return _dotted(node.func.value) in self.request_modules and node.func.attr in REQUEST_METHODS
        return isinstance(node.func, ast.Name) and node.func.id in self.request_functions

    def _is_log(self, node: ast.Call) -> bool:
        if not isinstance(node.func, ast.Attribute) or node.func.attr not in LOG_METHODS:
            return False
        target = _dotted(node.func.value).lower()
        return target in {"logging", "logger", "log"} or target.endswith((".logger", ".log"))

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        if self._is_request(node) and not any(k.arg == "timeout" for k in node.keywords):
            self._add(node, "requests call may be missing timeout")
        if self._is_log(node) and _mentions_secret(node):
            self._add(node, "log call may expose credential-like values")
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:  # noqa: N802
        if node.exc is not None and _mentions_secret(node):
            self._add(node, "raised exception may expose credential-like values")
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:  # noqa: N802
        if node.value is not None and _mentions_secret(node.value):
            self._add(node, "return value may expose credential-like values")
        self.generic_visit(node)

    def visit_Yield(self, node: ast.Yield) -> None:  # noqa: N802
        if node.value is not None and _mentions_secret(node.value):
            self._add(node, "yield value may expose credential-like values")
        self.generic_visit(node)


def scan_safety(root: Path) -> list[SafetyFinding]:
    findings: list[SafetyFinding] = []
    for path in _walk_files(root, SAFETY_SKIP_DIRS):
        if path.suffix != ".py" or path.stat().st_size > MAX_TEXT_BYTES:
            continue
        source, where = read_text(path), rel(path, root)
        try:
            tree = ast.parse(source, filename=where)
        except SyntaxError as exc:
            findings.append(SafetyFinding(where, exc.lineno or 1, "<module>", "could not parse Python file", ""))
            continue
        visitor = _SafetyVisitor(source, where)
        visitor.visit(tree)
        findings += visitor.findings
    return findings


# ---- access_domains (warning) --------------------------------------------------------------------

URL_RE = re.compile(r"""(?i)\bhttps?://([^\s/?#"'`<>)\]}\\,;*]+|\*\.[^\s/?#"'`<>)\]}\\,;]+)""")
HOST_RE = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
EXCLUDED_HOSTS = {"github.com", "www.github.com", "gist.github.com", "api.github.com", "raw.githubusercontent.com",
                  "objects.githubusercontent.com", "codeload.github.com", "gitlab.com", "bitbucket.org", "www.w3.org",
                  "w3.org", "json-schema.org", "schema.org", "spdx.org", "opensource.org", "www.apache.org",
                  "apache.org", "www.gnu.org", "creativecommons.org", "purl.org", "xmlns.com",
                  "schemas.openxmlformats.org", "pypi.org", "files.pythonhosted.org", "registry.npmjs.org",
                  "cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com", "fonts.googleapis.com",
                  "fonts.gstatic.com", "localhost", "host.docker.internal", "0.0.0.0", "broadcasthost",  # noqa: S104
                  "stackoverflow.com", "www.stackoverflow.com", "en.wikipedia.org", "wikipedia.org",
                  "example.com", "example.org", "example.net"}
EXCLUDED_SUFFIXES = (".readthedocs.io", ".readthedocs.org", ".github.io", ".gitlab.io", ".example.com",
                     ".example.org", ".example.net", ".example", ".test", ".invalid", ".localhost", ".local")
DOC_LABELS = {"docs", "doc", "developer", "learn"}
DOC_KEYS = {"url", "help", "privacy", "repo", "documentation", "doc_url", "document_url", "docs", "icon", "website",
            "homepage", "source"}
DOC_ANCESTORS = {"help", "oauth_schema"}
LOCALE_KEYS = {"en_us", "zh_hans", "zh_hant", "ja_jp", "ko_kr", "pt_br", "fr_fr", "de_de", "es_es", "ru_ru", "it_it",
               "vi_vn", "th_th", "tr_tr", "pl_pl", "uk_ua", "id_id", "hi_in", "ar_sa", "ro_ro", "sl_si", "fa_ir",
               "he_il", "nl_nl"}
YAML_KEY_RE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_$][\w .$-]*)\s*:")
SCHEMA_REF_RE = re.compile(r"""(^|[\s"'{,])\$?(?:ref|schema)\s*[:=]""", re.I)
SCAN_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".toml", ".js", ".ts"}
DOMAIN_SKIP_DIRS = {"venv", "env", "node_modules", "vendor", "__pycache__", "site-packages", "dist-packages"}
DEPENDENCY_FILES = {"requirements.txt", "pyproject.toml", "uv.lock"}
MAX_HOSTS_PER_FILE = 20


def _host(raw: str) -> str | None:
    host = raw.strip().strip(".").lower().rsplit("@", 1)[-1]
    if host.startswith("["):
        return None
    return host.split(":", 1)[0] or None


def _keep_host(host: str) -> bool:
    """Loopback, junk and documentation/reserved names are never access domains."""
    if host.startswith("*."):
        return bool(HOST_RE.match(host))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return not address.is_loopback
    if not HOST_RE.match(host) or host in EXCLUDED_HOSTS or host.endswith(EXCLUDED_SUFFIXES):
        return False
    return host.split(".")[0] not in DOC_LABELS


def _hosts(text: str) -> list[str]:
    return [h for h in (_host(m.group(1)) for m in URL_RE.finditer(text)) if h]


def _yaml_hosts(text: str) -> list[tuple[int, str]]:
    stack: list[tuple[int, str]] = []
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = YAML_KEY_RE.match(line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
        keys = [k.lower() for _, k in stack if k.lower() not in LOCALE_KEYS]
        if keys and (keys[-1] in DOC_KEYS or DOC_ANCESTORS & set(keys)) or SCHEMA_REF_RE.search(line):
            continue
        found += [(number, h) for h in _hosts(line)]
    return found


def _plain_hosts(text: str) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not SCHEMA_REF_RE.search(stripped):
            found += [(number, h) for h in _hosts(line)]
    return found


def _python_hosts(text: str) -> list[tuple[int, str]]:
    """String constants only: comments never reach the AST, docstrings are skipped."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return _plain_hosts(text)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    return [(node.lineno, h) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            for h in _hosts(node.value)]


def detect_domains(root: Path) -> dict[str, list[str]]:
    """host → evidence (file:line), as the Marketplace's "Access Domain" scan finds them."""
    found: dict[str, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() not in DOMAIN_SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if (name.startswith(".") or path.suffix.lower() not in SCAN_SUFFIXES or name in DEPENDENCY_FILES
                    or path.stat().st_size > MAX_TEXT_BYTES):
                continue
            text = read_text(path)
            suffix = path.suffix.lower()
            hits = (_python_hosts(text) if suffix == ".py" else _yaml_hosts(text) if suffix in (".yaml", ".yml")
                    else _plain_hosts(text))
            per_file: dict[str, list[str]] = {}
            for number, host in hits:
                if _keep_host(host):
                    per_file.setdefault(host, []).append(f"{rel(path, root)}:{number}")
            if len(per_file) > MAX_HOSTS_PER_FILE:  # a data payload, not an access declaration
                continue
            for host, where in per_file.items():
                found.setdefault(host, []).extend(where)
    return dict(sorted(found.items()))


def declared_domains(root: Path) -> list[str]:
    """manifest.yaml `network.domains`, read the way the toolkit reads it (a flat list of host names)."""
    path = root / "manifest.yaml"
    if not path.is_file():
        return []
    try:
        doc = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError:
        return []
    network = doc.get("network") if isinstance(doc, dict) else None
    raw = network.get("domains") if isinstance(network, dict) else None
    out: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", str(item or "").strip().strip("\"'"), flags=re.I)
        host = _host(value.split("/", 1)[0]) if value else None
        if host and host not in out:
            out.append(host)
    return out


def is_declared(host: str, declared: list[str]) -> bool:
    for entry in declared:
        if entry == host or (entry.startswith("*.") and (host.endswith(entry[1:]) or host == entry[2:])):
            return True
    return False


def check_domains(root: Path) -> tuple[CheckResult, dict[str, list[str]], list[str]]:
    result = CheckResult("access_domains", blocking=False)
    detected = detect_domains(root)
    declared = declared_domains(root)
    for host, where in detected.items():
        result.warnings.append(f"detected outbound domain {host} ({', '.join(where[:3])})")
    undeclared = [h for h in detected if not is_declared(h, declared)]
    if undeclared:
        result.warnings.append("domains reached by this plugin are missing from manifest.yaml network.domains: "
                               + ", ".join(undeclared))
    return result, detected, declared


# ---- the whole review ----------------------------------------------------------------------------

def review_directory(root: Path, package_file: Path | None = None) -> Review:
    root = Path(root)
    domains, detected, declared = check_domains(root)
    safety = scan_safety(root)
    safety_result = CheckResult("python_safety", blocking=False, warnings=[str(f) for f in safety])
    results = [check_contents(root, package_file), check_secrets(root), check_binaries(root), check_manifest(root),
               check_readme(root), check_dependencies(root), check_compile(root), safety_result, domains,
               check_pinning(root)]
    return Review(results, safety, list(detected), declared)


def unpack(package: Path, target: Path) -> None:
    """Extracts like the validator does: refuses absolute paths and '..'."""
    with zipfile.ZipFile(package) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if Path(info.filename).is_absolute() or ".." in parts:
                raise ValueError(f"unsafe path in package: {info.filename}")
        zf.extractall(target)  # noqa: S202 - every member was checked above


def review_package(package: Path) -> Review:
    with tempfile.TemporaryDirectory(prefix="marketplace-review-") as tmp:
        unpack(Path(package), Path(tmp))
        return review_directory(Path(tmp), Path(package))


def summary(review: Review) -> str:
    lines = ["| check | kind | result | first finding |", "|---|---|---|---|"]
    for r in review.results:
        first = (r.errors or r.warnings or ["no findings"])[0].replace("|", "\\|")
        status = "PASS" if r.ok else "FAIL"
        lines.append(f"| `{r.name}` | {'blocking' if r.blocking else 'warning'} | {status} | {first[:160]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    review = review_package(Path(args[0]))
    print(summary(review))
    for r in review.results:
        for text in r.errors:
            print(f"error: {r.name}: {text}", file=sys.stderr)
        for text in r.warnings:
            print(f"warning: {r.name}: {text}", file=sys.stderr)
    return 1 if review.blocking_errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""The English README and its Simplified Chinese twin stay in step with the plugin and with CI.

Dify shows readme/README_<lang>.md to users whose UI is in that language, so the translation must
name the same credentials and parameters, keep the same commands and code, and its links must work.
CI (.ci/run) runs whatever test command the README's set-up section shows.
"""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / "README.md"
ZH = ROOT / "readme" / "README_zh_Hans.md"
READMES = [pytest.param(EN, id="en"), pytest.param(ZH, id="zh_Hans")]

SETUP_COMMANDS = ["scripts/dev package", "scripts/dev test"]


# ---- a small markdown reader: just enough structure for these checks -------------------------

def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def _blocks_and_prose(path: Path) -> tuple[list[str], list[str]]:
    """(code blocks in order, prose lines). Fenced blocks keep their fences; an indented block is
    4+ spaces after a blank line that follows a paragraph, not a list item's continuation."""
    blocks: list[str] = []
    prose: list[str] = []
    lines = _lines(path)
    i = 0
    last_text = ""
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append("\n".join(lines[i:end + 1]))
            i = end + 1
            continue
        after_blank = i > 0 and not lines[i - 1].strip()
        in_list = bool(re.match(r"\s|\*\s|\d+\.\s", last_text))
        if line.startswith("    ") and after_blank and not in_list:
            end = i
            while end < len(lines) and lines[end].startswith("    "):
                end += 1
            blocks.append("\n".join(lines[i:end]))
            i = end
            continue
        prose.append(line)
        if line.strip():
            last_text = line
        i += 1
    return blocks, prose


def _prose_without_code_spans(path: Path) -> str:
    return re.sub(r"`[^`\n]*`", "", "\n".join(_blocks_and_prose(path)[1]))


def _setup_commands(path: Path) -> list[str]:
    """Commands of the set-up block: the first indented code block, before the first section."""
    text = path.read_text(encoding="utf-8")
    first_block = _blocks_and_prose(path)[0][0]
    assert not first_block.startswith("```"), f"{path.name}: the set-up block must be indented"
    assert text.index(first_block) < text.index("\n## "), f"{path.name}: set-up block is not at the top"
    return [line.split("#", 1)[0].strip() for line in first_block.split("\n")]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _headings(path: Path) -> list[tuple[int, str]]:
    out = []
    for line in _blocks_and_prose(path)[1]:
        m = re.match(r"(#{1,6})\s+(.*)", line)
        if m:
            out.append((len(m.group(1)), m.group(2)))
    return out


def _anchors(path: Path) -> set[str]:
    return {_slug(text) for _, text in _headings(path)}


def _links(path: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _prose_without_code_spans(path))


def _tables(path: Path) -> list[tuple[int, int]]:
    """(columns, body rows) of every table, in order."""
    shapes, rows = [], []
    for line in _blocks_and_prose(path)[1] + [""]:
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            columns = len(re.findall(r"-{3,}", rows[1]))
            shapes.append((columns, len(rows) - 2))
            rows = []
    return shapes


# ---- the checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", READMES)
def test_setup_section_starts_with_package_then_test(path):
    assert _setup_commands(path)[:2] == SETUP_COMMANDS


def test_both_readmes_show_the_same_setup_commands():
    assert _setup_commands(ZH) == _setup_commands(EN)


def test_ci_runs_the_readme_test_command():
    """Run .ci/run's own extraction line against the README, not a copy of its regex."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extract = next(line for line in ci.split("\n") if line.startswith("test_cmd=$("))
    out = subprocess.run(["bash", "-c", f'set -euo pipefail; {extract}; printf "%s" "$test_cmd"'],
                         cwd=ROOT, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.strip() == "scripts/dev test"
    assert out.strip() in _setup_commands(EN)
    assert "eval \"$test_cmd\"" in ci


def _credential_names() -> list[str]:
    provider = yaml.safe_load((ROOT / "provider" / "comfyui_bizyair.yaml").read_text(encoding="utf-8"))
    return list(provider["credentials_for_provider"])


def _parameter_names() -> list[str]:
    tool = yaml.safe_load((ROOT / "tools" / "comfyui_workflow.yaml").read_text(encoding="utf-8"))
    return [p["name"] for p in tool["parameters"]]


@pytest.mark.parametrize("path", READMES)
def test_every_credential_is_documented(path):
    names = _credential_names()
    assert len(names) >= 14
    text = path.read_text(encoding="utf-8")
    assert [n for n in names if f"`{n}`" not in text] == []


@pytest.mark.parametrize("path", READMES)
def test_every_workflow_tool_parameter_is_documented(path):
    names = _parameter_names()
    assert "prompt" in names and "timeout" in names
    text = path.read_text(encoding="utf-8")
    assert [n for n in names if f"`{n}`" not in text] == []


@pytest.mark.parametrize("path", READMES)
def test_relative_links_point_at_existing_files(path):
    broken = []
    for link in _links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):       # https:, mailto: ...
            continue
        target = link.split("#", 1)[0]
        if target and not (path.parent / target).resolve().is_file():
            broken.append(link)
    assert broken == []


@pytest.mark.parametrize("path", READMES)
def test_in_page_anchors_match_a_heading(path):
    anchors = _anchors(path)
    fragments = [link[1:] for link in _links(path) if link.startswith("#")]
    assert fragments, "expected a table of contents"
    assert [f for f in fragments if f not in anchors] == []


def test_translation_keeps_code_blocks_verbatim_and_in_order():
    assert _blocks_and_prose(ZH)[0] == _blocks_and_prose(EN)[0]


def test_translation_keeps_section_and_table_structure():
    assert [level for level, _ in _headings(ZH)] == [level for level, _ in _headings(EN)]
    assert _tables(ZH) == _tables(EN)


def test_readmes_link_to_each_other():
    assert "(readme/README_zh_Hans.md)" in EN.read_text(encoding="utf-8")
    assert "(../README.md)" in "\n".join(_lines(ZH)[:5])

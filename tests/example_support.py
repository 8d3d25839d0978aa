"""What the tests of examples/ share: reading the DSL and our YAML, and the generator script."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_REF = re.compile(r"\{\{#([^.#}]+)\.([^#}]+)#\}\}")
BUILTIN_TOOL_OUTPUTS = {"text", "files", "json"}   # every Dify tool node has these
REGENERATE = "scripts/dev py scripts/make_example_dsl.py"


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))

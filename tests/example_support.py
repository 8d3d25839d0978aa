"""What the tests of examples/ share: reading the DSL and our YAML, and the generator script."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_REF = re.compile(r"\{\{#([^.#}]+)\.([^#}]+)#\}\}")
BUILTIN_TOOL_OUTPUTS = {"text", "files", "json"}   # every Dify tool node has these
REGENERATE = "scripts/dev py scripts/make_example_dsl.py"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))

"""The repository's scripts (scripts/*.py, bench/*.py) as modules for tests and benchmarks: loaded
once per process under their file name, so every caller (and scripts/release.py, which loads its
siblings the same way) shares one module object."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str, folder: str = "scripts") -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"{folder}/{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module

#!/usr/bin/env python3
"""Refresh everything derived from the plugin package, in one command:

    scripts/dev py tests/contract/record.py

1. regenerate examples/ (scripts/make_example_dsl.py builds the package and writes its
   identifier into every example);
2. run the live contract test (tests/contract/test_contract_live.py: the built package over
   stdio, the ComfyUI and COS test servers, graphon running each example) with CONTRACT_RECORD=1,
   which saves what the plugin said in each case under tests/contract/recordings/;
3. run the replay contract test against the new recordings.

Exits non-zero when a step fails. A run that fails the contract is still recorded (the replay
then fails the same way, with the same message), so fix the plugin or the example and re-run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def run(*args: str, env: dict[str, str] | None = None) -> int:
    print("record:", " ".join(args), flush=True)
    # Our own interpreter and fixed arguments.
    return subprocess.run(list(args), cwd=ROOT, env={**os.environ, **(env or {})}, check=False).returncode  # noqa: S603


def main() -> int:
    if run(sys.executable, "scripts/make_example_dsl.py") != 0:
        return 1
    for old in (HERE / "recordings").glob("*.json"):
        old.unlink()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    live = run(*pytest, "-s", str(HERE / "test_contract_live.py"), env={"CONTRACT_RECORD": "1"})
    replay = run(*pytest, str(HERE / "test_contract_replay.py"))
    return 1 if live or replay else 0


if __name__ == "__main__":
    sys.exit(main())

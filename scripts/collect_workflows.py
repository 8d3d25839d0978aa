#!/usr/bin/env python3
"""Collect candidate API-format workflows from git snapshots of public repositories (the selection step of
building tests/fixtures/corpus_labelled; labelling is done by hand afterwards).

    python scripts/collect_workflows.py OUT_DIR MIRROR/*/repo      # MIRROR: a folder of <owner>+<name>/repo snapshots

Every `.json` file (under 600 KB, outside node_modules) in the newest commit of each git directory is read
with `git show`; API graphs and the bodies that wrap them ({"prompt": ...}, {"workflow": ...},
{"input": {"workflow": ...}}, workflow_json objects or strings) are kept, identical graphs once. Then a
sample is drawn: one file per repository, up to three more from larger ones (four from the largest),
always the file bringing the most node classes not yet in the sample first. Writes OUT_DIR/pool/*.json
(copies of the candidates, to read and label), OUT_DIR/index.json (repo, path, commit, classes) and
OUT_DIR/selected.json.

OUT_DIR is a scratch directory and must lie outside this repository (the script refuses otherwise): the
pool holds files taken out of the snapshots, and those are never committed. The corpus files themselves are
obtained through the search index's stored text of each selected repo/path (see
tests/fixtures/corpus_labelled/README.md); this script only chooses which ones.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FILE = 600_000
WRAPPERS = (("prompt",), ("workflow",), ("input", "workflow"), ("input", "prompt"), ("input", "workflow_json"),
            ("workflow_json",))


def git(gitdir: Path, *args: str) -> bytes:
    # Reads the given git directory only; nothing from the repository is executed.
    return subprocess.run(["git", "--git-dir", str(gitdir), *args],  # noqa: S603, S607
                          check=True, capture_output=True).stdout


def is_graph(x: object) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(v, dict) and "class_type" in v for v in x.values())


def graph_of(data: object) -> tuple[dict | None, str]:
    if is_graph(data):
        return data, ""  # type: ignore[return-value]
    for path in WRAPPERS:
        inner: object = data
        for key in path:
            inner = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except ValueError:
                inner = None
        if is_graph(inner):
            return inner, "/".join(path)  # type: ignore[return-value]
    return None, ""


def repo_name(gitdir: Path) -> str:
    where = gitdir.resolve()
    while where.name in ("repo", ".git") and where.parent != where:
        where = where.parent
    return where.name.replace("+", "/", 1)


def collect(gitdirs: list[Path], out: Path) -> dict:
    pool = out / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    seen: set[str] = set()
    for gd in gitdirs:
        repo = repo_name(gd)
        try:
            commit = git(gd, "rev-parse", "HEAD").decode().strip()
            listing = git(gd, "ls-tree", "-r", "-l", "HEAD").decode("utf-8", "replace").splitlines()
        except subprocess.CalledProcessError:
            continue
        for line in listing:
            meta, path = line.split("\t", 1)
            size = meta.split()[3]
            if not path.endswith(".json") or not size.isdigit() or int(size) > MAX_FILE or "node_modules" in path:
                continue
            try:
                raw = git(gd, "show", f"HEAD:{path}")
                graph, wrapper = graph_of(json.loads(raw.decode("utf-8-sig")))
            except (subprocess.CalledProcessError, ValueError):
                continue
            if graph is None:
                continue
            digest = hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()[:16]
            if digest in seen:
                continue
            seen.add(digest)
            key = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{repo.replace('/', '__')}__{Path(path).stem}")[:120]
            while key in index:
                key += "_"
            (pool / f"{key}.json").write_bytes(raw)
            index[key] = {"repo": repo, "path": path, "commit": commit, "wrapper": wrapper,
                          "classes": sorted({str(v.get("class_type")) for v in graph.values()})}
    return index


def sample(index: dict) -> list[str]:
    by_repo: dict[str, list[str]] = collections.defaultdict(list)
    for key, meta in index.items():
        by_repo[meta["repo"]].append(key)
    covered: collections.Counter = collections.Counter()
    chosen: list[str] = []
    for rnd in range(4):
        for repo in sorted(by_repo):
            keys = [k for k in by_repo[repo] if k not in chosen]
            limit = 4 if len(by_repo[repo]) >= 20 else 3 if len(by_repo[repo]) >= 5 else 2
            if rnd >= limit or not keys:
                continue

            def novelty(k: str) -> float:
                return sum(1 for c in index[k]["classes"] if not covered[c]) + 0.01 * len(index[k]["classes"])

            keys.sort(key=lambda k: (-novelty(k), k))
            if rnd > 0 and novelty(keys[0]) < 1:
                continue
            chosen.append(keys[0])
            covered.update(index[keys[0]]["classes"])
    return chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("gitdirs", nargs="+", type=Path)
    args = ap.parse_args()
    if args.out.resolve().is_relative_to(ROOT):
        ap.error(f"OUT_DIR {args.out} is inside the repository; use a scratch directory outside it")
    index = collect(args.gitdirs, args.out)
    chosen = sample(index)
    (args.out / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    (args.out / "selected.json").write_text(json.dumps(chosen, indent=0), encoding="utf-8")
    print(f"{len(index)} workflows from {len({m['repo'] for m in index.values()})} repositories; "
          f"{len(chosen)} selected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Score prompt-target detection against the hand-labelled corpus.

    python bench/score_targeting.py                 # table + every refusal + every miss
    python bench/score_targeting.py --json out.json
    python bench/score_targeting.py --labels other/labels.json

Uses the bundled node definitions only (no server), the way `python -m comfyui_bridge inspect FILE` does.
For each file and role (positive, negative) the code's answer is one of: targets (a set of node inputs),
"none" (no target, with a reason) or "refused" (an InputError listing candidates). Against the label:

* correct    — targets equal to the label's, "none" for a "none" label, a refusal for an "ambiguous" one;
* refused    — a refusal where the label has an answer: not correct, but nothing is guessed;
* silent wrong — any other answer: targets where the label says none or ambiguous, other targets than the
  labelled ones, or "none" where the label has a target. The prompt would be written somewhere wrong, or
  dropped, without asking.

Seeds: every labelled seed input must be found (missed seeds are listed); found inputs that are not
labelled are listed as extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfyui_bridge.errors import BridgeError  # noqa: E402
from comfyui_bridge.nodeinfo import NodeInfo  # noqa: E402
from comfyui_bridge.seeds import find_seed_slots  # noqa: E402
from comfyui_bridge.targeting import Resolution, find_targets  # noqa: E402
from comfyui_bridge.workflow import parse_workflow  # noqa: E402

LABELS = ROOT / "tests/fixtures/corpus_labelled/labels.json"
ROLES = ("positive", "negative")


@dataclass
class Answer:
    kind: str                      # targets | none | refused | error
    inputs: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    reason: str = ""


@dataclass
class RoleResult:
    label: dict
    answer: Answer
    verdict: str                   # correct | refused | silent_wrong


@dataclass
class FileResult:
    name: str
    roles: dict
    seeds_missed: list
    seeds_extra: list
    seeds_total: int


def answer_of(res: Resolution) -> Answer:
    if res.error is not None:
        cands = (res.error.detail or {}).get("candidates") or []
        return Answer("refused", candidates=[[str(n), list(f)] for n, f in cands], reason=res.error.message)
    if res.targets:
        return Answer("targets", inputs=sorted([str(n), i] for n, i in res.pairs()))
    return Answer("none", reason=res.reason)


def verdict(label: dict, ans: Answer) -> str:
    kind = label["kind"]
    if ans.kind == "refused":
        return "correct" if kind == "ambiguous" else "refused"
    if kind == "target" and ans.kind == "targets" and ans.inputs == sorted(label["inputs"]):
        return "correct"
    if kind == "none" and ans.kind == "none":
        return "correct"
    return "silent_wrong"


def score_file(path: Path, label: dict, info: NodeInfo) -> FileResult:
    try:
        graph = parse_workflow(path.read_bytes(), info).graph
        analysis = find_targets(graph, info)
        answers = {"positive": answer_of(analysis.positive), "negative": answer_of(analysis.negative)}
        found = {(s.node_id, s.input) for s in find_seed_slots(graph, info)}
    except BridgeError as exc:      # the file did not load: every role is wrong
        answers = {r: Answer("error", reason=exc.message) for r in ROLES}
        found = set()
    roles = {r: RoleResult(label[r], answers[r], verdict(label[r], answers[r])) for r in ROLES}
    want = {(n, i) for n, i in label["seeds"]}
    return FileResult(path.name, roles, sorted(map(list, want - found)), sorted(map(list, found - want)), len(want))


@dataclass
class Report:
    files: list
    table: dict

    def refusals(self) -> list[tuple[str, str, RoleResult]]:
        return [(f.name, r, f.roles[r]) for f in self.files for r in ROLES if f.roles[r].answer.kind == "refused"]


def score(labels_path: Path = LABELS, info: NodeInfo | None = None) -> Report:
    info = info or NodeInfo()
    doc = json.loads(labels_path.read_text(encoding="utf-8"))
    base = labels_path.parent / "files"
    files = [score_file(base / name, label, info) for name, label in doc["files"].items()]
    table: dict = {"files": len(files), "repositories": len({lab["source"]["repo"] for lab in doc["files"].values()})}
    for r in ROLES:
        verdicts = [f.roles[r].verdict for f in files]
        table[r] = {"correct": verdicts.count("correct"), "refused": verdicts.count("refused"),
                    "silent_wrong": verdicts.count("silent_wrong"), "total": len(files),
                    "accuracy": round(100 * verdicts.count("correct") / len(files), 1)}
    total = sum(f.seeds_total for f in files)
    missed = sum(len(f.seeds_missed) for f in files)
    table["seeds"] = {"found": total - missed, "total": total, "missed": missed,
                      "extra": sum(len(f.seeds_extra) for f in files)}
    table["silent_wrong"] = table["positive"]["silent_wrong"] + table["negative"]["silent_wrong"]
    refusals = Report(files, {}).refusals()
    table["refusals_without_candidates"] = sum(1 for _, _, rr in refusals if not rr.answer.candidates)
    return Report(files, table)


def _fmt_inputs(pairs: list) -> str:
    return ", ".join(f"{n}.{'/'.join(i) if isinstance(i, list) else i}" for n, i in pairs) or "-"


def _fmt_label(label: dict) -> str:
    if label["kind"] == "target":
        return _fmt_inputs(label["inputs"])
    if label["kind"] == "ambiguous":
        return "ambiguous (" + _fmt_inputs(label["candidates"]) + ")"
    return "none"


def _fmt_answer(a: Answer) -> str:
    if a.kind == "targets":
        return _fmt_inputs(a.inputs)
    if a.kind == "refused":
        return "refused: " + _fmt_inputs(a.candidates)
    return f"{a.kind}: {a.reason[:140]}"


def render(report: Report) -> str:
    t = report.table
    lines = [f"{t['files']} files from {t['repositories']} repositories (bundled definitions only)", "",
             "| role | correct | accuracy | refused (not guessed) | silent wrong |", "|---|---|---|---|---|"]
    for r in ROLES:
        x = t[r]
        lines.append(f"| {r} | {x['correct']}/{x['total']} | {x['accuracy']} % | {x['refused']} "
                     f"| {x['silent_wrong']} |")
    s = t["seeds"]
    lines += ["", f"seeds found: {s['found']}/{s['total']} (missed {s['missed']}, extra {s['extra']})",
              f"silent wrong guesses: {t['silent_wrong']}; refusals without candidates: "
              f"{t['refusals_without_candidates']}", "", "Refusals (role: candidates):"]
    for name, role, rr in report.refusals():
        lines.append(f"  {name} {role}: {_fmt_inputs(rr.answer.candidates)}"
                     f"{'' if rr.verdict == 'correct' else '   [label: ' + _fmt_label(rr.label) + ']'}")
    wrong = [(f.name, r, f.roles[r]) for f in report.files for r in ROLES if f.roles[r].verdict == "silent_wrong"]
    if wrong:
        lines += ["", "Silent wrong:"]
        lines += [f"  {n} {r}: got {_fmt_answer(rr.answer)}   [label: {_fmt_label(rr.label)}]" for n, r, rr in wrong]
    seeds = [(f.name, f.seeds_missed, f.seeds_extra) for f in report.files if f.seeds_missed or f.seeds_extra]
    if seeds:
        lines += ["", "Seeds (missed / extra):"]
        lines += [f"  {n}: missed {_fmt_inputs(m)}; extra {_fmt_inputs(e)}" for n, m, e in seeds]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--json", type=Path, help="also write the full results here")
    args = ap.parse_args(argv)
    report = score(args.labels)
    sys.stdout.write(render(report) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"table": report.table, "files": [asdict(f) for f in report.files]},
                                        indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

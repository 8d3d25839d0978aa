"""Prompt-target detection on real public workflows (tests/fixtures/corpus/expected.json).

Each entry records the expected positive/negative targets ("ambiguous" when detection must refuse
to guess) and a one-line WHY. A failure message lists every file whose result changed, plus the
ambiguous ones and their reasons, so a regression reads as a report.
"""

import json
from pathlib import Path

import pytest

from comfyui_bridge.errors import WorkflowFormatError
from comfyui_bridge.nodeinfo import NodeInfo
from comfyui_bridge.targeting import find_targets
from comfyui_bridge.workflow import parse_workflow

FIX = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIX / "corpus/expected.json").read_text(encoding="utf-8"))["files"]
INFO = NodeInfo()


def detect(rel: str) -> dict:
    raw = (FIX / rel).read_bytes()
    try:
        graph = parse_workflow(raw, INFO).graph
    except WorkflowFormatError as exc:
        return {"load": "refused", "reason": exc.detail.get("reason", exc.message)}
    a = find_targets(graph, INFO)

    def one(res):
        return "ambiguous" if res.error else (res.pairs() or None)

    return {"positive": one(a.positive), "negative": one(a.negative),
            "reason": (a.positive.error.message if a.positive.error else a.positive.reason)}


RESULTS = {rel: detect(rel) for rel in EXPECTED}


def report() -> str:
    lines = []
    for rel, got in RESULTS.items():
        if got.get("positive") == "ambiguous" or got.get("load"):
            lines.append(f"  {rel}: {got.get('load') or 'ambiguous'}: {got['reason'][:200]}")
    return "ambiguous or refused:\n" + "\n".join(lines)


def test_corpus_is_wide_enough():
    assert len(EXPECTED) >= 30
    families = " ".join(e["family"] for e in EXPECTED.values())
    for fam in ("sd15", "sdxl_refiner", "flux", "sd3", "kolors", "controlnet", "combine", "string_nodes", "bizyair",
                "video_wan", "video_ltx", "video_hunyuan", "audio", "no_prompt", "two_independent"):
        assert fam in families, fam
    assert all(e["source"]["repo"] for e in EXPECTED.values())


@pytest.mark.parametrize("rel", list(EXPECTED), ids=lambda r: r.rsplit("/", 1)[-1])
def test_expected_targets(rel):
    want, got = EXPECTED[rel], RESULTS[rel]
    if want.get("load") == "refused":
        assert got.get("load") == "refused" and want["refusal_contains"] in got["reason"], report()
        return
    assert got.get("load") is None, f"{rel} did not load: {got['reason']}\n{report()}"
    assert (got["positive"], got["negative"]) == (want["positive"], want["negative"]), (
        f"{rel}\n  expected positive={want['positive']} negative={want['negative']}\n"
        f"  got      positive={got['positive']} negative={got['negative']}\n  why: {want['why']}\n{report()}")


def test_summary_counts():
    detected = [r for r in RESULTS.values() if isinstance(r.get("positive"), list)]
    ambiguous = [r for r in RESULTS.values() if r.get("positive") == "ambiguous"]
    none = [r for r in RESULTS.values() if r.get("positive") is None and not r.get("load")]
    refused = [r for r in RESULTS.values() if r.get("load")]
    assert len(detected) + len(ambiguous) + len(none) + len(refused) == len(RESULTS)
    # Most real workflows must be handled without asking the user.
    assert len(detected) >= 0.8 * len(RESULTS), report()

"""Small statistics helpers: everything is kept in seconds and reported in milliseconds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile (an observed value, no interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """{n, median, p90, min, max} in ms of values given in seconds."""
    if not values:
        return {"n": 0}
    ms = [v * 1000.0 for v in values]
    return {"n": len(ms), "median": round(statistics.median(ms), 2), "p90": round(p90(ms), 2),
            "min": round(min(ms), 2), "max": round(max(ms), 2)}


def paired(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """b[i] - a[i]: run i of both systems came from the same round, so drift cancels."""
    return [y - x for x, y in zip(a, b, strict=True)]


def fmt(stat: dict[str, float] | None, key: str = "median") -> str:
    if not stat or not stat.get("n"):
        return "–"
    return f"{stat[key]:.1f}"


def med_p90(stat: dict[str, float] | None) -> str:
    if not stat or not stat.get("n"):
        return "–"
    return f"{stat['median']:.1f} / {stat['p90']:.1f}"


def mib(kib: int) -> float:
    return kib / 1024.0

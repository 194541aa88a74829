"""A sweep's numbers per grid point: mean and 95% CI over seeds per head, paired tests between heads.

A *grid point* is a combination of the varied settings other than ``head``; at each point
every head's seeds are summarised with :func:`~qtransfer.stats.mean_ci`, and the heads
are tested against the reference head (``quantum`` when present) with
:func:`~qtransfer.stats.compare_heads` on the seeds every head finished (the per-image
results are paired: same split, same evaluation images).

Example:
    >>> from qtransfer.results import SweepResults, TrialRecord
    >>> def rec(head, seed, correct):
    ...     return TrialRecord(f"{head}{seed}", {"head": head, "seed": seed}, {"head": head}, 0, "ok",
    ...                        sum(correct) / len(correct), "val", correct, 10, 1, 0.1, 0.1, 1)
    >>> results = SweepResults({}, {"head": ("quantum", "linear")}, (0, 1),
    ...     (rec("quantum", 0, (1, 1, 0, 1)), rec("quantum", 1, (1, 1, 1, 1)), rec("linear", 0, (1, 0, 0, 1)),
    ...      rec("linear", 1, (1, 1, 0, 1))))
    >>> [p] = summarize(results, n_boot=200)
    >>> p.heads["quantum"].mean, p.heads["linear"].mean, p.comparisons[0].head
    (0.875, 0.625, 'linear')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qtransfer.results import SweepResults, TrialRecord
from qtransfer.stats import Comparison, compare_heads, mean_ci

__all__ = ["HeadSummary", "PointSummary", "summarize", "varied_settings"]


@dataclass(frozen=True)
class HeadSummary:
    """One head at one grid point: accuracy per finished seed, mean, std, 95% CI, mean training time."""

    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    mean: float
    std: float
    lo: float
    hi: float
    train_seconds: float
    n_params: int
    n_failed: int


@dataclass(frozen=True)
class PointSummary:
    """A grid point (the varied settings but ``head``), its heads, and the paired tests between them."""

    point: tuple[tuple[str, Any], ...]
    heads: dict[str, HeadSummary]
    reference: str | None
    comparisons: tuple[Comparison, ...]
    n_eval: int

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.point) or "all"


def varied_settings(results: SweepResults) -> list[str]:
    """The grid's settings other than ``head`` that take more than one value."""
    return [k for k, v in results.grid.items() if k != "head" and len(v) > 1]


def summarize(results: SweepResults, *, n_boot: int = 10000) -> list[PointSummary]:
    """One :class:`PointSummary` per grid point, in grid order."""
    points: dict[tuple, dict[str, list[TrialRecord]]] = {}
    for record in results.trials:
        key = tuple((k, v) for k, v in record.point.items() if k != "head")
        points.setdefault(key, {}).setdefault(str(record.settings["head"]), []).append(record)
    return [_point(key, heads, n_boot) for key, heads in points.items()]


def _point(key: tuple, heads: dict[str, list[TrialRecord]], n_boot: int) -> PointSummary:
    summaries = {name: _head(records) for name, records in heads.items()}
    n_eval = next((len(r.correct) for rs in heads.values() for r in rs if r.ok), 0)
    if len(heads) < 2:
        return PointSummary(key, summaries, None, (), n_eval)
    reference = "quantum" if "quantum" in heads else next(iter(heads))
    ok = {name: {r.settings["seed"]: r.correct for r in records if r.ok} for name, records in heads.items()}
    common = sorted(set.intersection(*(set(s) for s in ok.values())))
    comparisons: tuple[Comparison, ...] = ()
    if common:
        correct = {name: [ok[name][s] for s in common] for name in heads}
        comparisons = tuple(compare_heads(correct, reference=reference, n_boot=n_boot))
    return PointSummary(key, summaries, reference, comparisons, n_eval)


def _head(records: list[TrialRecord]) -> HeadSummary:
    ok = [r for r in records if r.ok]
    accs = tuple(r.accuracy for r in ok)
    mean, std, lo, hi = mean_ci(accs, bounds=(0.0, 1.0)) if accs else (math.nan,) * 4
    secs = sum(r.train_seconds for r in ok) / len(ok) if ok else math.nan
    return HeadSummary(tuple(int(r.settings["seed"]) for r in ok), accs, mean, std, lo, hi, secs,
                       ok[0].n_params if ok else 0, len(records) - len(ok))

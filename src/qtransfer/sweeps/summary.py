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

import itertools
import math
from dataclasses import dataclass
from typing import Any

from qtransfer.results import SweepResults, TrialRecord
from qtransfer.stats import Comparison, compare_heads, mean_ci

__all__ = ["HeadSummary", "PointSummary", "conclusion", "summarize", "varied_settings"]


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
    ignores: tuple[str, ...] = ()  # varied settings this head ignores: the same trials at every value


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
    """One :class:`PointSummary` per grid point, in grid order.

    A head's trials that leave a setting out of their point (the head ignores it: ``linear``
    and ``depth``) stand at every value of that setting.
    """
    names = [k for k in results.grid if k != "head"]
    points: dict[tuple, dict[str, list[TrialRecord]]] = {}
    for values in itertools.product(*(results.grid[k] for k in names)):
        key = tuple(zip(names, values))
        for record in results.trials:
            if all(record.point.get(k, v) == v for k, v in key):
                points.setdefault(key, {}).setdefault(str(record.settings["head"]), []).append(record)
    varied = set(varied_settings(results))
    return [_point(key, heads, n_boot, varied) for key, heads in points.items()]


def _point(key: tuple, heads: dict[str, list[TrialRecord]], n_boot: int, varied: set[str]) -> PointSummary:
    summaries = {name: _head(records, tuple(k for k, _ in key if k in varied and k not in records[0].point))
                 for name, records in heads.items()}
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


def _head(records: list[TrialRecord], ignores: tuple[str, ...]) -> HeadSummary:
    ok = [r for r in records if r.ok]
    accs = tuple(r.accuracy for r in ok)
    mean, std, lo, hi = mean_ci(accs, bounds=(0.0, 1.0)) if accs else (math.nan,) * 4
    secs = sum(r.train_seconds for r in ok) / len(ok) if ok else math.nan
    return HeadSummary(tuple(int(r.settings["seed"]) for r in ok), accs, mean, std, lo, hi, secs,
                       ok[0].n_params if ok else 0, len(records) - len(ok), ignores)


def conclusion(points: list[PointSummary], varied: list[str]) -> str:
    """A sweep's finding in one plain sentence: the best cell, and which paired tests are significant.

    Example:
        >>> h = lambda m: HeadSummary((0, 1), (m, m), m, 0.0, m, m, 0.1, 10, 0)
        >>> p = PointSummary((("depth", 2),), {"quantum": h(0.9), "linear": h(0.95)}, "quantum", (), 49)
        >>> conclusion([p], ["depth"])
        'In plain words: the highest mean accuracy is 95.0% (linear at depth=2); no paired test was possible.'
    """
    cells = [(h.mean, name, p) for p in points for name, h in p.heads.items() if h.accuracies and math.isfinite(h.mean)]
    if not cells:
        return "In plain words: no trial finished, so the sweep found nothing."
    mean, name, best = max(cells, key=lambda c: c[0])
    ignored = best.heads[name].ignores
    label = ", ".join(f"{k}={v}" for k, v in best.point if k not in ignored)
    where = f" at {label}" if varied and label else ""
    where += f", which ignores {', '.join(ignored)}" if ignored else ""
    sentence = f"In plain words: the highest mean accuracy is {100 * mean:.1f}% ({name}{where})"
    tests = [(p, c) for p in points for c in p.comparisons]
    if not tests:
        return sentence + "; no paired test was possible."
    reference = tests[0][1].reference
    significant = [(p, c) for p, c in tests if c.significant]
    scope = f"at any of the {len(points)} grid points" if len(points) > 1 else "here"
    if not significant:
        return (sentence + f"; no head differs significantly from {reference} {scope} "
                f"(smallest adjusted p = {min(c.p_adjusted for _, c in tests):.2g}).")
    listed = ", ".join(f"{c.head} {c.diff_points:+.1f} points" + (f" at {p.label()}" if len(points) > 1 else "")
                       for p, c in significant)
    return sentence + f"; {len(significant)} of {len(tests)} paired comparisons with {reference} are significant ({listed})."

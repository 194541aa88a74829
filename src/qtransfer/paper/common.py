"""What every paper experiment shares: typed results, seeds, timing.

An experiment returns one or more :class:`PaperRow`: the paper's model on one data set
(:class:`Series` of per-seed accuracies beside the published value) and the models it is
compared with (classical baselines, ablations). :class:`PaperResults` gathers the rows of
one ``qtransfer paper`` call, and the experiments that could not run with the reason and
the fix (``skipped``), and is what ``results.json`` holds (schema + version).

Example:
    >>> s = Series("dressed quantum", (0.9, 0.95, 1.0), published=0.97)
    >>> round(s.mean, 3), round(s.ci[0], 3), round(s.ci[1], 3)
    (0.95, 0.826, 1.0)
    >>> row = PaperRow("spirals", "spirals-1.52", "Spirals, 1.52 turns", s, (), (0, 1, 2), 1.5)
    >>> PaperRow.from_json(row.to_json()) == row
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from qtransfer.atomic import atomic_write_json
from qtransfer.errors import CheckpointError, UsageError
from qtransfer.results import read_json
from qtransfer.stats import mean_ci

__all__ = ["EXPERIMENTS", "OFFLINE_EXPERIMENTS", "PAPER_SCHEMA", "PAPER_SCHEMA_VERSION", "PaperResults", "PaperRow",
           "Series", "check_seeds"]

#: every experiment of ``qtransfer paper``, in the order ``all`` runs them
EXPERIMENTS = ("spirals", "qc", "qq", "cq", "cifar", "qpu")
#: the ones that need no download
OFFLINE_EXPERIMENTS = ("spirals", "qc", "qq")
PAPER_SCHEMA = "qtransfer-paper-results"
PAPER_SCHEMA_VERSION = 1


def check_seeds(seeds: int) -> tuple[int, ...]:
    """``(0, 1, ..., seeds - 1)``, or a UsageError naming the bad value.

    Example:
        >>> check_seeds(3)
        (0, 1, 2)
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {seeds!r}")
    return tuple(range(seeds))


def _num(x: float | None) -> float | None:
    """JSON has no NaN: ``None`` stands for it."""
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class Series:
    """One model's accuracy per seed (test accuracy, as the paper measures it), with the published value if any."""

    name: str
    values: tuple[float, ...]
    published: float | None = None
    n_params: int | None = None

    @property
    def mean(self) -> float:
        return mean_ci(self.values)[0]

    @property
    def std(self) -> float:
        return mean_ci(self.values)[1]

    @property
    def ci(self) -> tuple[float, float]:
        """95% Student-t interval of the mean, clipped to [0, 1] (NaN with one seed)."""
        _, _, lo, hi = mean_ci(self.values, bounds=(0.0, 1.0))
        return lo, hi

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {"name": self.name, "published": self.published, "n_params": self.n_params,
                "values": [float(v) for v in self.values], "mean": self.mean, "std": _num(self.std),
                "ci95": [_num(lo), _num(hi)]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Series":
        pub, n = data.get("published"), data.get("n_params")
        return cls(str(data["name"]), tuple(float(v) for v in data["values"]),
                   None if pub is None else float(pub), None if n is None else int(n))


@dataclass(frozen=True)
class PaperRow:
    """The paper's ``model`` on one data set, the models it is compared with, and how it ran.

    ``baselines[0]`` is the matched classical baseline where one makes sense (else the
    tuple is empty or holds ablations only, named as such). ``figures`` is plain data the
    report draws (decision regions, feature images, photon-number distributions).
    """

    experiment: str
    key: str
    title: str
    model: Series
    baselines: tuple[Series, ...]
    seeds: tuple[int, ...]
    wall_seconds: float
    notes: str = ""
    settings: dict[str, Any] = field(default_factory=dict, compare=False)
    figures: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def delta(self) -> float | None:
        """Our mean minus the published value (``None`` when nothing was published)."""
        return None if self.model.published is None else self.model.mean - self.model.published

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "key": self.key, "title": self.title, "model": self.model.to_json(),
                "baselines": [b.to_json() for b in self.baselines], "seeds": list(self.seeds),
                "wall_seconds": round(float(self.wall_seconds), 3), "notes": self.notes,
                "settings": dict(self.settings), "figures": dict(self.figures)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PaperRow":
        return cls(str(data["experiment"]), str(data["key"]), str(data["title"]), Series.from_json(data["model"]),
                   tuple(Series.from_json(b) for b in data["baselines"]), tuple(int(s) for s in data["seeds"]),
                   float(data["wall_seconds"]), str(data.get("notes", "")), dict(data.get("settings", {})),
                   dict(data.get("figures", {})))


@dataclass(frozen=True)
class PaperResults:
    """What ``qtransfer paper`` measured: ``OUT/results.json``.

    ``skipped`` maps an experiment that could not run (data not downloadable here) to the
    message that says what to download and where to put it.
    """

    rows: tuple[PaperRow, ...]
    skipped: dict[str, str]
    seeds: tuple[int, ...]
    wall_seconds: float
    command: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"schema": PAPER_SCHEMA, "version": PAPER_SCHEMA_VERSION, "command": self.command,
                "seeds": list(self.seeds), "wall_seconds": round(float(self.wall_seconds), 3),
                "rows": [r.to_json() for r in self.rows], "skipped": dict(self.skipped)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "results") -> "PaperResults":
        try:
            if data.get("schema") != PAPER_SCHEMA:
                raise ValueError(f"its schema is {data.get('schema')!r}, not {PAPER_SCHEMA!r}")
            if data.get("version") != PAPER_SCHEMA_VERSION:
                raise ValueError(f"it has version {data.get('version')!r}; this qtransfer reads {PAPER_SCHEMA_VERSION}")
            return cls(tuple(PaperRow.from_json(r) for r in data["rows"]),
                       {str(k): str(v) for k, v in data["skipped"].items()}, tuple(int(s) for s in data["seeds"]),
                       float(data["wall_seconds"]), str(data.get("command", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{source} is not the results of `qtransfer paper`: {e}") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "PaperResults":
        return cls.from_json(read_json(Path(path)), source=str(path))

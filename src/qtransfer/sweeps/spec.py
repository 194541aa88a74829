"""The sweep file and the trials it stands for (no torch).

A sweep file (TOML, YAML or JSON) holds ``seeds`` (a count, counted from ``[base]``'s
``seed``, or a list), ``[base]`` (any :class:`~qtransfer.config.TrainConfig` setting) and
``[grid]`` (lists of values; the trials are their cross product, times the seeds).
Command-line flags override ``[base]``; a flag for a setting the grid varies is refused.

A trial is one resolved :class:`~qtransfer.config.TrainConfig` (its ``seed`` the trial's
seed) plus the split seed: the base seed, which draws the validation / selection split
and never changes with the trial's seed, so every trial of a data set sees the same
images and their per-image results are paired. Its id is a digest of both.

A head that ignores a varied setting (``linear`` and ``depth``) is trained once, not once per
value: its trials' points leave that setting out.

Example:
    >>> spec = SweepSpec.from_dict({"seeds": 2, "base": {"epochs": 3}, "grid": {"head": ["quantum", "linear"]}})
    >>> [(t.config.head, t.config.seed) for t in spec.trials()]
    [('quantum', 0), ('quantum', 1), ('linear', 0), ('linear', 1)]
    >>> len({t.id for t in spec.trials()})
    4
    >>> spec = SweepSpec.from_dict({"grid": {"head": ["quantum", "linear"], "depth": [2, 4]}})
    >>> [dict(t.point) for t in spec.trials()]
    [{'head': 'quantum', 'depth': 2}, {'head': 'quantum', 'depth': 4}, {'head': 'linear'}]
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from qtransfer.config import TrainConfig, load_config_file
from qtransfer.errors import UsageError
from qtransfer.heads.registry import HEADS

__all__ = ["DATA_SETTINGS", "SweepSpec", "Trial", "load_sweep_file", "trial_id"]

#: settings that decide the features and the split: trials sharing them share one prepared data set
DATA_SETTINGS = ("data", "features", "label_column", "name_column", "split_column", "backbone", "weights", "transform",
                 "augment", "augment_seed", "val_fraction", "device", "strict")

_KNOWN = {f.name for f in fields(TrainConfig)}
_ALIASES = {"qubits": "n_qubits"}


def trial_id(config: TrainConfig, split_seed: int) -> str:
    """16 hex digits of the SHA-256 of the trial's resolved settings and its split seed.

    Example:
        >>> trial_id(TrainConfig(), 0) == trial_id(TrainConfig(), 0) != trial_id(TrainConfig(seed=1), 0)
        True
    """
    payload = json.dumps({"config": config.to_dict(), "split_seed": split_seed}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Trial:
    """One training of a sweep: the resolved ``config``, the grid values that made it, the split seed."""

    config: TrainConfig
    point: tuple[tuple[str, Any], ...]
    split_seed: int

    @property
    def id(self) -> str:
        return trial_id(self.config, self.split_seed)

    @property
    def data_key(self) -> tuple:
        """Trials with the same key train and are evaluated on the same features and split."""
        return tuple(getattr(self.config, k) for k in DATA_SETTINGS) + (self.split_seed,)


@dataclass(frozen=True)
class SweepSpec:
    """A base configuration, a grid of settings and the seeds; :meth:`trials` is their product."""

    base: Mapping[str, Any]
    grid: Mapping[str, tuple]
    seeds: tuple[int, ...]
    source: str = "sweep"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "sweep file") -> "SweepSpec":
        """Check and normalise ``{"seeds": ..., "base": {...}, "grid": {...}}`` (unknown keys refused)."""
        extra = sorted(set(values) - {"seeds", "base", "grid"})
        if extra:
            raise UsageError(f"{source}: unknown top-level key(s) {', '.join(extra)}; a sweep file has seeds, "
                             f"[base] and [grid]")
        base = _settings(values.get("base", {}), f"{source} [base]")
        if "grid" in values and not values["grid"]:
            raise UsageError(f"{source}: [grid] is empty; list the settings to vary (e.g. head = [\"quantum\", "
                             f"\"linear\"]), or drop [grid] to run [base] over the seeds only")
        grid = _grid(values.get("grid", {}), source)
        split_seed = base.get("seed", TrainConfig.seed)
        seeds = _seeds(values.get("seeds", 1), split_seed, source)
        spec = cls(base, grid, seeds, source)
        spec.trials()  # every combination must be a valid configuration
        return spec

    @property
    def split_seed(self) -> int:
        return int(self.base.get("seed", TrainConfig.seed))

    def with_overrides(self, overrides: Mapping[str, Any]) -> "SweepSpec":
        """The spec with ``overrides`` (command-line flags) applied to its base."""
        clean = _settings(overrides, "command line")
        varied = sorted(set(clean) & set(self.grid))
        if varied:
            raise UsageError(f"{self.source} varies {', '.join(varied)} in its [grid]; drop the flag(s) or the "
                             f"grid entry")
        return SweepSpec.from_dict({"seeds": list(self.seeds), "base": {**self.base, **clean},
                                    "grid": {k: list(v) for k, v in self.grid.items()}}, source=self.source)

    def trials(self) -> list[Trial]:
        """Every grid combination (first grid key slowest) for every seed, seeds innermost.

        A setting the combination's head ignores (:attr:`~qtransfer.heads.registry.HeadInfo.ignores`:
        ``linear`` and ``depth``) is left out of its point, and only the first of its values is
        trained (its configuration keeps that value), so that head is trained once, not once per value.
        """
        names = list(self.grid)
        out, seen = [], set()
        for values in itertools.product(*(self.grid[n] for n in names)):
            full = dict(zip(names, values))
            head = full.get("head", self.base.get("head", TrainConfig.head))
            ignored = HEADS[head].ignores if head in HEADS else ()
            point = tuple((k, v) for k, v in zip(names, values) if k not in ignored)
            if point in seen:
                continue
            seen.add(point)
            for seed in self.seeds:
                try:
                    config = TrainConfig.from_dict({**self.base, **full, "seed": seed}, source=self.source)
                except UsageError as e:
                    raise UsageError(f"{e} (grid point {dict(point)})") from None
                out.append(Trial(config, point, self.split_seed))
        return out


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep file (``.toml``, ``.yaml``/``.yml`` or ``.json``); an empty one is refused."""
    values = load_config_file(path)
    if not values:
        raise UsageError(f"sweep file {path} is empty; it needs at least a [grid] (see qtransfer sweep --help)")
    return SweepSpec.from_dict(values, source=str(path))


def _settings(values: Any, source: str) -> dict[str, Any]:
    """TrainConfig settings with canonical names; data and weights files made absolute."""
    if not isinstance(values, Mapping):
        raise UsageError(f"{source} must be a table of settings, got {type(values).__name__}")
    out = {}
    for key, value in values.items():
        name = _ALIASES.get(str(key).replace("-", "_"), str(key).replace("-", "_"))
        if name not in _KNOWN:
            raise UsageError(f"{source}: unknown setting {key!r}; known settings: {', '.join(sorted(_KNOWN))}")
        out[name] = _absolute(name, value)
    return out


def _absolute(name: str, value: Any) -> Any:
    """Paths as absolute paths (trial ids must not depend on the working directory)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if name == "data" and isinstance(value, str) and value != "hymenoptera":
        return str(Path(value).expanduser().resolve())
    if name == "weights" and isinstance(value, str) and value.lower() != "none" and Path(value).expanduser().is_file():
        return str(Path(value).expanduser().resolve())
    return value


def _grid(values: Any, source: str) -> dict[str, tuple]:
    grid = _settings(values, f"{source} [grid]")
    if "seed" in grid:
        raise UsageError(f"{source}: put the seeds in the top-level 'seeds' (a count or a list), not in [grid]")
    for name, options in grid.items():
        if not isinstance(options, list) or not options:
            raise UsageError(f"{source} [grid] {name}: give a non-empty list of values, e.g. {name} = [...], "
                             f"got {options!r}")
        if len(set(map(json.dumps, options))) != len(options):
            raise UsageError(f"{source} [grid] {name} lists a value twice: {options!r}")
        grid[name] = tuple(_absolute(name, v) for v in options)
    return grid


def _seeds(value: Any, first: int, source: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise UsageError(f"{source}: seeds must be a positive count or a list of seeds, got {value!r}")
        return tuple(range(first, first + value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                 for s in value):
        if len(set(value)) != len(value):
            raise UsageError(f"{source}: seeds lists a seed twice: {value!r}")
        return tuple(value)
    raise UsageError(f"{source}: seeds must be a positive count or a non-empty list of integers >= 0, got {value!r}")

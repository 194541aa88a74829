"""Typed results: what a training run measured (``metrics.json``) and what a comparison found (``results.json``).

Frozen dataclasses with a schema name and version, written and read by ``to_json`` /
``from_json`` (and ``save`` / ``load``). :mod:`qtransfer.stats` computes, the pipeline and
``compare`` fill these, :mod:`qtransfer.report` formats them; nothing reads the JSON back
as loose dicts. A file that is not of the expected schema, or misses a field, is refused
with a :class:`~qtransfer.errors.CheckpointError` that names the file and the field.

Example:
    >>> m = SplitMetrics(accuracy=0.5, loss=0.69, n_images=2, per_class_accuracy={"a": 1.0, "b": 0.0},
    ...                  confusion_matrix=((1, 0), (1, 0)))
    >>> SplitMetrics.from_json(m.to_json()) == m
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from qtransfer.atomic import atomic_write_json
from qtransfer.errors import CheckpointError
from qtransfer.stats import Comparison, compare_heads

__all__ = ["SCHEMA_VERSION", "SplitMetrics", "EpochRecord", "Timing", "RunMetrics", "Evaluation", "HeadResults",
           "CompareResults", "TrialRecord", "SweepResults", "read_json"]

#: bumped when a field changes meaning or disappears (new optional fields keep it)
SCHEMA_VERSION = 1


class _Invalid(Exception):
    """A field is missing or of the wrong type (turned into a CheckpointError naming the file)."""


def _need(data: Mapping[str, Any], key: str) -> Any:
    if not isinstance(data, Mapping):
        raise _Invalid(f"expected an object, got {type(data).__name__}")
    if key not in data:
        raise _Invalid(f"missing field {key!r}")
    return data[key]


def _float(x: Any) -> float:
    """A number from JSON (NaN stays NaN; ``None`` means NaN)."""
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class SplitMetrics:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix (rows: true class) of one split."""

    accuracy: float
    loss: float
    n_images: int
    per_class_accuracy: dict[str, float | None]
    confusion_matrix: tuple[tuple[int, ...], ...]

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "loss": self.loss, "n_images": self.n_images,
                "per_class_accuracy": dict(self.per_class_accuracy),
                "confusion_matrix": [list(row) for row in self.confusion_matrix]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SplitMetrics":
        return cls(_float(_need(data, "accuracy")), _float(_need(data, "loss")), int(_need(data, "n_images")),
                   {str(k): (None if v is None else float(v)) for k, v in _need(data, "per_class_accuracy").items()},
                   tuple(tuple(int(v) for v in row) for row in _need(data, "confusion_matrix")))


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training: losses and accuracies (fractions), the learning rate used, wall seconds."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EpochRecord":
        return cls(int(_need(data, "epoch")), *(_float(_need(data, f.name)) for f in fields(cls)[1:]))


@dataclass(frozen=True)
class Timing:
    """Seconds spent getting features (cached or computed), training, and in all, in one ``train`` call (to 0.1 ms)."""

    extract_s: float
    train_s: float
    total_s: float

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, round(float(getattr(self, f.name)), 4))

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Timing":
        return cls(*(float(_need(data, f.name)) for f in fields(cls)))


@dataclass(frozen=True)
class RunMetrics:
    """Everything a training run measured: ``RUN_DIR/metrics.json``.

    ``final`` holds the selected model's metrics on every split but train (``val``, and
    ``test`` when there is one); ``best_val_acc`` is NaN when there was nothing to select on.
    """

    classes: tuple[str, ...]
    history: tuple[EpochRecord, ...]
    best_epoch: int
    best_val_acc: float
    final: dict[str, SplitMetrics]
    n_images: dict[str, int]
    n_skipped: int
    val_from_train: bool
    n_params: int
    backbone: dict[str, str]
    n_cached: int
    n_computed: int
    num_features: int
    timing: Timing
    device: dict[str, Any] | None = None  # a calibrated device's name, calibration date, layout, shots

    SCHEMA = "qtransfer-run-metrics"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA, "version": SCHEMA_VERSION,
            "classes": list(self.classes), "history": [r.to_json() for r in self.history],
            "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc,
            "final": {k: v.to_json() for k, v in self.final.items()},
            "n_images": dict(self.n_images), "n_skipped": self.n_skipped, "val_from_train": self.val_from_train,
            "n_params": {"head": self.n_params}, "backbone": dict(self.backbone),
            "features": {"n_cached": self.n_cached, "n_computed": self.n_computed, "num_features": self.num_features},
            "timing": self.timing.to_json(), "device": self.device,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "metrics") -> "RunMetrics":
        try:
            _check_schema(data, cls.SCHEMA)
            features = _need(data, "features")
            return cls(
                classes=tuple(str(c) for c in _need(data, "classes")),
                history=tuple(EpochRecord.from_json(r) for r in _need(data, "history")),
                best_epoch=int(_need(data, "best_epoch")), best_val_acc=_float(_need(data, "best_val_acc")),
                final={str(k): SplitMetrics.from_json(v) for k, v in _need(data, "final").items()},
                n_images={str(k): int(v) for k, v in _need(data, "n_images").items()},
                n_skipped=int(_need(data, "n_skipped")), val_from_train=bool(_need(data, "val_from_train")),
                n_params=int(_need(_need(data, "n_params"), "head")),
                backbone={str(k): str(v) for k, v in _need(data, "backbone").items()},
                n_cached=int(_need(features, "n_cached")), n_computed=int(_need(features, "n_computed")),
                num_features=int(_need(features, "num_features")),
                timing=Timing.from_json(_need(data, "timing")),
                device=data.get("device"),
            )
        except (_Invalid, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{source} is not the metrics of a qtransfer run: {e}") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "RunMetrics":
        return cls.from_json(read_json(Path(path)), source=str(path))


@dataclass(frozen=True)
class Evaluation:
    """``qtransfer evaluate``: a trained run's metrics on one split of a data folder, and the files left out."""

    metrics: SplitMetrics
    split: str
    data: str
    skipped: tuple[tuple[str, str], ...]  # (path, reason)
    noise: str | None = None  # the noise model the circuit ran under (None: ideal)
    shots: int | None = None  # measurement shots (None: exact expectation values)
    device: dict[str, Any] | None = None  # a calibrated device's name, calibration date, layout, shots

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics.to_json(), "split": self.split, "data": self.data, "noise": self.noise,
                "shots": self.shots, "device": self.device,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


@dataclass(frozen=True)
class HeadResults:
    """One head of a comparison: its size, and per seed its accuracy, training time and per-image correctness."""

    n_params: int
    accuracies: tuple[float, ...]
    train_seconds: tuple[float, ...]
    correct: tuple[tuple[int, ...], ...]  # (seeds, evaluation images), 1 where the head was right
    predicted: tuple[tuple[int, ...], ...] = ()  # (seeds, evaluation images), the predicted class index
    history: tuple[tuple[EpochRecord, ...], ...] = ()  # per seed, per epoch (val_*: the selection split)


@dataclass(frozen=True)
class CompareResults:
    """What ``qtransfer compare`` found: ``COMPARE_DIR/results.json``.

    Every head was trained for every seed (``seeds``) on ``n_train`` images, its epoch
    selected on ``n_select`` others, and evaluated on the ``n_eval`` images of
    ``eval_split`` (``eval_paths``), which never chose a model. ``comparisons`` test every
    head against ``reference`` (:func:`qtransfer.stats.compare_heads`).
    """

    heads: dict[str, HeadResults]
    classes: tuple[str, ...]
    eval_split: str
    n_train: int
    n_select: int
    n_eval: int
    eval_paths: tuple[str, ...]
    seeds: tuple[int, ...]
    reference: str
    comparisons: tuple[Comparison, ...]
    config: dict[str, Any]
    backbone: dict[str, str]
    timing: dict[str, float] = field(default_factory=dict)
    eval_labels: tuple[int, ...] = ()  # the true class index of each evaluation image (empty in older files)

    SCHEMA = "qtransfer-compare-results"

    def to_json(self, *, summary_markdown: str | None = None) -> dict[str, Any]:
        out = {
            "schema": self.SCHEMA, "version": SCHEMA_VERSION,
            "heads": {h: {"n_params": r.n_params, "accuracies": list(r.accuracies), "train_seconds": list(r.train_seconds)}
                      for h, r in self.heads.items()},
            "correct": {h: [list(row) for row in r.correct] for h, r in self.heads.items()},
            "classes": list(self.classes), "eval_split": self.eval_split,
            "n_train": self.n_train, "n_select": self.n_select, "n_eval": self.n_eval,
            "eval_paths": list(self.eval_paths), "seeds": list(self.seeds), "reference": self.reference,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "config": dict(self.config), "backbone": dict(self.backbone), "timing": dict(self.timing),
            "eval_labels": list(self.eval_labels),
            "predicted": {h: [list(row) for row in r.predicted] for h, r in self.heads.items()},
            "history": {h: [[_strict(e.to_json()) for e in seed] for seed in r.history] for h, r in self.heads.items()},
        }
        if summary_markdown is not None:
            out["summary_markdown"] = summary_markdown
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "results") -> "CompareResults":
        """Read ``results.json``; comparisons absent from it are computed from the per-image results."""
        try:
            _check_schema(data, cls.SCHEMA)
            correct = _need(data, "correct")
            predicted, history = data.get("predicted") or {}, data.get("history") or {}
            heads = {str(h): HeadResults(int(_need(r, "n_params")), tuple(_float(a) for a in _need(r, "accuracies")),
                                         tuple(float(t) for t in _need(r, "train_seconds")),
                                         tuple(tuple(int(v) for v in row) for row in _need(correct, h)),
                                         tuple(tuple(int(v) for v in row) for row in predicted.get(h, ())),
                                         tuple(tuple(EpochRecord.from_json(e) for e in seed) for seed in history.get(h, ())))
                     for h, r in _need(data, "heads").items()}
            if not heads:
                raise _Invalid("no heads")
            reference = str(_need(data, "reference"))
            stored = data.get("comparisons")
            comparisons = (tuple(Comparison.from_dict(c) for c in stored) if stored
                           else tuple(compare_heads({h: r.correct for h, r in heads.items()}, reference=reference))
                           if len(heads) > 1 else ())
            return cls(
                heads=heads, classes=tuple(str(c) for c in _need(data, "classes")),
                eval_split=str(_need(data, "eval_split")), n_train=int(_need(data, "n_train")),
                n_select=int(_need(data, "n_select")), n_eval=int(_need(data, "n_eval")),
                eval_paths=tuple(str(p) for p in _need(data, "eval_paths")),
                seeds=tuple(int(s) for s in _need(data, "seeds")), reference=reference, comparisons=comparisons,
                config=dict(_need(data, "config")), backbone={str(k): str(v) for k, v in data.get("backbone", {}).items()},
                timing={str(k): float(v) for k, v in data.get("timing", {}).items()},
                eval_labels=tuple(int(v) for v in data.get("eval_labels", ())),
            )
        except (_Invalid, TypeError, ValueError, AttributeError, KeyError) as e:
            raise CheckpointError(f"{source} is not the results of a qtransfer comparison: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "CompareResults":
        return cls.from_json(read_json(Path(path)), source=str(path))


def _strict(record: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities as ``null`` (strict JSON); :func:`_float` reads them back as NaN."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def _check_schema(data: Mapping[str, Any], schema: str) -> None:
    if isinstance(data, Mapping) and "schema" not in data and "version" not in data:
        return  # written by qtransfer 0.1 before the schema field: the same layout as version 1
    found = _need(data, "schema")
    if found != schema:
        raise _Invalid(f"its schema is {found!r}, not {schema!r}")
    version = _need(data, "version")
    if version != SCHEMA_VERSION:
        raise _Invalid(f"it has schema version {version!r}; this qtransfer reads version {SCHEMA_VERSION}")


def read_json(path: Path, *, required: bool = True) -> Any:
    """The JSON in ``path`` (``None`` for a missing optional file); a CheckpointError names a missing or cut-off file."""
    if not path.is_file():
        if not required:
            return None
        raise CheckpointError(f"{path}: missing; the directory is incomplete (rerun the step that writes it)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path}: not valid JSON ({e}); it was probably cut off by an interrupted run: "
            f"rerun the step that writes it" + ("" if required else ", or delete it to leave it out")
        ) from None


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a sweep: ``DIR/trials/<trial_id>.json`` and one line of ``DIR/results.jsonl``.

    ``settings`` is the trial's resolved configuration (its ``seed`` the trial's seed), ``point``
    the grid values that made it, ``split_seed`` the seed of the (shared) split. ``status`` is
    ``"ok"`` or ``"failed"`` (then ``error`` says why, ``accuracy`` is NaN and ``correct`` empty);
    ``correct`` holds 1 per image of ``eval_split`` the head got right, for paired tests.

    Example:
        >>> r = TrialRecord("ab12", {"head": "linear", "seed": 0}, {"head": "linear"}, 0, "ok", 0.5, "val", (1, 0),
        ...                 10, 3, 0.2, 0.25, 1)
        >>> TrialRecord.from_json(r.to_json()) == r
        True
    """

    trial_id: str
    settings: dict[str, Any]
    point: dict[str, Any]
    split_seed: int
    status: str
    accuracy: float
    eval_split: str
    correct: tuple[int, ...]
    n_params: int
    best_epoch: int
    train_seconds: float
    seconds: float
    attempts: int
    error: str | None = None
    predicted: tuple[int, ...] = ()  # the predicted class index of each evaluation image
    history: tuple[EpochRecord, ...] = ()  # per epoch (val_*: the selection split)

    SCHEMA = "qtransfer-sweep-trial"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        out = {"schema": self.SCHEMA, "version": SCHEMA_VERSION, **asdict(self)}
        out["correct"] = list(self.correct)
        out["predicted"] = list(self.predicted)
        out["history"] = [_strict(e.to_json()) for e in self.history]
        for name in ("accuracy", "train_seconds", "seconds"):  # NaN (a failed trial) as null: strict JSON
            out[name] = None if not math.isfinite(out[name]) else out[name]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "trial") -> "TrialRecord":
        try:
            _check_schema(data, cls.SCHEMA)
            status = str(_need(data, "status"))
            if status not in ("ok", "failed"):
                raise _Invalid(f"status is {status!r}, not 'ok' or 'failed'")
            return cls(str(_need(data, "trial_id")), dict(_need(data, "settings")), dict(_need(data, "point")),
                       int(_need(data, "split_seed")), status, _float(_need(data, "accuracy")),
                       str(_need(data, "eval_split")), tuple(int(v) for v in _need(data, "correct")),
                       int(_need(data, "n_params")), int(_need(data, "best_epoch")),
                       _float(_need(data, "train_seconds")), _float(_need(data, "seconds")), int(_need(data, "attempts")),
                       None if data.get("error") is None else str(data["error"]),
                       tuple(int(v) for v in data.get("predicted", ())),
                       tuple(EpochRecord.from_json(e) for e in data.get("history", ())))
        except (_Invalid, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{source} is not a qtransfer sweep trial: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "TrialRecord":
        return cls.from_json(read_json(Path(path)), source=str(path))


@dataclass(frozen=True)
class SweepResults:
    """What ``qtransfer sweep`` found: ``DIR/sweep.json``.

    ``base`` is the sweep file's base configuration (flags applied), ``grid`` the varied
    settings and their values (in the file's order), ``seeds`` the trial seeds, ``trials``
    every trial in grid order (failed ones included, with their error).
    """

    base: dict[str, Any]
    grid: dict[str, tuple]
    seeds: tuple[int, ...]
    trials: tuple[TrialRecord, ...]
    classes: tuple[str, ...] = ()
    timing: dict[str, float] = field(default_factory=dict)

    SCHEMA = "qtransfer-sweep-results"

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, "version": SCHEMA_VERSION, "base": dict(self.base),
                "grid": {k: list(v) for k, v in self.grid.items()}, "seeds": list(self.seeds),
                "classes": list(self.classes), "timing": dict(self.timing), "trials": [t.to_json() for t in self.trials]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "sweep results") -> "SweepResults":
        try:
            _check_schema(data, cls.SCHEMA)
            trials = tuple(TrialRecord.from_json(t, source=f"{source} trial {i}")
                           for i, t in enumerate(_need(data, "trials")))
            return cls(dict(_need(data, "base")), {str(k): tuple(v) for k, v in _need(data, "grid").items()},
                       tuple(int(s) for s in _need(data, "seeds")), trials,
                       tuple(str(c) for c in data.get("classes", ())),
                       {str(k): float(v) for k, v in data.get("timing", {}).items()})
        except (_Invalid, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{source} is not the results of a qtransfer sweep: {e}") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "SweepResults":
        return cls.from_json(read_json(Path(path)), source=str(path))

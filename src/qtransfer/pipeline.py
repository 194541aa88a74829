"""The pipeline, top to bottom: images -> cached backbone features -> trained head -> metrics.

:func:`prepare_features` finds the images, runs the frozen backbone once per image (or
reads its cached output) and splits the features; :func:`train_run` trains a head on
them and writes the run directory; :func:`evaluate_run` and :func:`predict_paths`
rebuild everything from a run directory alone.

A run directory holds::

    config.json       the resolved configuration
    state.pt          the training state after the last completed epoch (for --resume)
    model.pt          the selected head + config + classes + backbone identity
    metrics.json      per-epoch history, final metrics, timing
    predictions.json  per-image predictions on the validation (or test) split
    pipeline.json     that split's first image through every block of the head (the report's drawing)
    manifest.json     size and SHA-256 of the five files above, written last (qtransfer.manifest)
    skipped.txt       files that were not used, with the reason
    report.html       the report (unless --no-report)
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from qtransfer.atomic import atomic_write_json, atomic_write_text, remove_temporaries
from qtransfer.config import TrainConfig
from qtransfer.errors import CheckpointError, DataError, UsageError
from qtransfer.manifest import remove_manifest, write_manifest
from qtransfer.paths import cache_dir as resolve_cache_dir
from qtransfer.results import EpochRecord, Evaluation, RunMetrics, Timing

__all__ = [
    "SplitFeatures", "FeatureSet", "ExtractedFeatures", "split_features", "extract_data_features", "prepare_features", "train_run", "evaluate_run", "predict_paths",
    "load_run_config", "load_for_inference", "backbone_for",
]


@dataclass
class SplitFeatures:
    """The features, labels and files of one split; ``views`` (``(K, N, F)``, train with ``augment=K``) are
    the split's augmented views, view ``v`` of every image (``x`` keeps the centre crops)."""

    x: torch.Tensor
    y: torch.Tensor
    paths: list[Path]
    views: torch.Tensor | None = None

    @property
    def train_x(self) -> torch.Tensor:
        """What a head trains on: the views if there are any (``train_head`` takes view ``(epoch - 1) % K``)."""
        return self.views if self.views is not None else self.x

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class FeatureSet:
    """Everything training needs, without the images."""

    classes: tuple[str, ...]
    splits: dict[str, SplitFeatures]
    skipped: list[tuple[Path, str]]
    backbone: dict[str, str]
    num_features: int
    root: Path
    val_from_train: bool
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0


def split_features(features: torch.Tensor, samples: Sequence, row: dict[Path, int],
                   views: torch.Tensor | None = None) -> SplitFeatures:
    """The rows of ``features`` (``row[path]``) and the labels of ``samples``, on the features' device
    (and the same rows of ``views``, ``(K, N, F)``, when given)."""
    index = torch.tensor([row[s.path] for s in samples], dtype=torch.long, device=features.device)
    labels = torch.tensor([s.label for s in samples], dtype=torch.long, device=features.device)
    return SplitFeatures(features[index], labels, [s.path for s in samples],
                         views[:, index] if views is not None else None)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _extract(paths: Sequence[Path], ref, config: TrainConfig, cache_dir: str | Path | None, progress: bool,
             augment=None, built=None):
    """Features of ``paths`` from the backbone ``ref`` (a BackboneRef): cached ones read, the rest computed;
    ``augment`` (an AugmentViews): its views instead; ``built``: ``ref`` built by an earlier call, if it was.

    The backbone is built only if some image is not cached (no torchvision import otherwise).
    """
    from qtransfer.features.cache import FeatureCache
    from qtransfer.features.extract import extract_features

    cache = FeatureCache(resolve_cache_dir(cache_dir) / "features")
    return extract_features(paths, ref, cache=cache, device=config.device, progress=progress, augment=augment,
                            built=built)


def _extract_views(samples: Sequence, ref, built, config: TrainConfig, cache_dir: str | Path | None, progress: bool):
    """``(K, len(samples), F)``: the ``config.augment`` seeded views of each sample's image (and the extraction)."""
    from qtransfer.features.augment import AugmentViews

    views = AugmentViews(config.augment, config.augment_seed)
    extraction = _extract([s.path for s in samples], ref, config, cache_dir, progress, views, built)
    if extraction.failures:  # decoded a moment ago for the centre crop: changed on disk meanwhile
        path, reason = extraction.failures[0]
        raise DataError(f"{path}: its augmented views could not be made ({reason}); did it change during the run?")
    return extraction.features.transpose(0, 1).to(config.device), extraction


def _discover_and_extract(config: TrainConfig, cache_dir: str | Path | None, progress: bool):
    """Find ``config.data``'s images and get the features of each (cached or computed).

    Returns ``(data, ordered, backbone, extraction, skipped)``: the discovered
    :class:`~qtransfer.data.discover.ImageData`, its ``(split, sample)`` pairs in the order
    extracted (train, val, test), the backbone's reference, the
    :class:`~qtransfer.features.extract.Extraction` (rows ``extraction.ok`` index ``ordered``), and
    every file not used with its reason (each also warned; ``config.strict`` makes any but a
    known placeholder a :class:`DataError`).
    """
    from qtransfer.data.discover import discover
    from qtransfer.features.backbones import resolve_backbone

    data = discover(config.data, cache_dir=resolve_cache_dir(cache_dir))
    ordered = [(name, s) for name in ("train", "val", "test") for s in data.splits.get(name, [])]
    backbone = resolve_backbone(config.backbone, config.weights, transform=config.transform)
    extraction = _extract([s.path for _, s in ordered], backbone, config, cache_dir, progress)
    skipped = [(s.path, s.reason) for s in data.skipped] + [(Path(p), r) for p, r in extraction.failures]
    if skipped:
        for path, reason in skipped:
            warnings.warn(f"skipped {path}: {reason}", stacklevel=3)
        refused = [(p, r) for p, r in skipped if not r.startswith("placeholder")]  # known non-photos are no fault
        if config.strict and refused:
            listing = "\n  ".join(f"{p}: {r}" for p, r in refused[:20])
            raise DataError(f"--strict: {len(refused)} file(s) in {data.root} cannot be used:\n  {listing}")
    return data, ordered, backbone, extraction, skipped


@dataclass(frozen=True)
class ExtractedFeatures:
    """The backbone features of a data set, one row per usable image (what ``train`` trains on).

    ``features`` (N x F float32) and ``labels`` (N, indices into ``classes``) are tensors on the CPU;
    ``paths`` and ``splits`` (``"train"``, ``"val"`` or ``"test"``: the data's own split folders;
    ``train`` draws its validation split from ``"train"`` rows) have one entry per row;
    ``skipped`` lists the files not used with the reason. ``backbone`` is the backbone's identity.
    With ``augment=K``, ``views`` (K x N x F) holds K seeded augmented views of every image (``train
    --augment K`` trains on the ``"train"`` rows' views, the same cache entries); else ``None``.
    """

    features: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    paths: tuple[Path, ...]
    splits: tuple[str, ...]
    skipped: tuple[tuple[Path, str], ...]
    backbone: dict[str, str]
    n_cached: int
    n_computed: int
    views: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    def to_numpy(self):
        """``(X, y)``: the features (N x F float32) and labels (N int64) as numpy arrays, e.g. for scikit-learn."""
        return self.features.numpy(), self.labels.numpy()


def extract_data_features(config: TrainConfig, *, cache_dir: str | Path | None = None,
                          progress: bool = True) -> ExtractedFeatures:
    """Every usable image of ``config.data`` through ``config``'s backbone, from the same cache entries as ``train``."""
    data, ordered, backbone, extraction, skipped = _discover_and_extract(config, cache_dir, progress)
    samples = [ordered[i] for i in extraction.ok]
    n_cached, n_computed, views = extraction.n_cached, extraction.n_computed, None
    if config.augment:
        views, made = _extract_views([s for _, s in samples], backbone, extraction.backbone, config, cache_dir, progress)
        views, n_cached, n_computed = views.cpu(), n_cached + made.n_cached, n_computed + made.n_computed
    return ExtractedFeatures(
        features=extraction.features, labels=torch.tensor([s.label for _, s in samples], dtype=torch.long),
        classes=tuple(data.classes), paths=tuple(s.path for _, s in samples), splits=tuple(name for name, _ in samples),
        skipped=tuple(skipped), backbone=dict(backbone.identity), n_cached=n_cached, n_computed=n_computed, views=views,
    )


def prepare_features(config: TrainConfig, *, cache_dir: str | Path | None = None, progress: bool = True,
                     val_fraction: float | None = None, split_seed: int | None = None) -> FeatureSet:
    """Find the images of ``config.data``, get their features, and split them (train / val [/ test]).

    Without a ``val/`` folder, a stratified validation split of ``val_fraction`` (default
    ``config.val_fraction``) is drawn from train with ``split_seed`` (default ``config.seed``).
    """
    from qtransfer.data.discover import check_splits

    t0 = time.perf_counter()
    if config.features is not None:
        return _prepare_from_file(config, t0, val_fraction, split_seed)
    data, ordered, backbone, extraction, skipped = _discover_and_extract(config, cache_dir, progress)
    row = {ordered[i][1].path: k for k, i in enumerate(extraction.ok)}
    usable = {name: [s for s in data.splits.get(name, []) if s.path in row] for name in ("train", "val", "test") if name in data.splits}
    val_from_train = _draw_val(usable, config, val_fraction, split_seed)
    check_splits(data.classes, usable, data.root)

    features = extraction.features.to(config.device)
    splits = {name: split_features(features, s, row) for name, s in usable.items()}
    n_cached, n_computed = extraction.n_cached, extraction.n_computed
    if config.augment:  # the train images' views (only theirs), with the backbone the centre crops built, if any
        splits["train"].views, views = _extract_views(usable["train"], backbone, extraction.backbone, config,
                                                      cache_dir, progress)
        n_cached, n_computed = n_cached + views.n_cached, n_computed + views.n_computed

    return FeatureSet(
        classes=data.classes, splits=splits, skipped=skipped,
        backbone=dict(backbone.identity), num_features=backbone.num_features, root=data.root,
        val_from_train=val_from_train, n_cached=n_cached, n_computed=n_computed,
        seconds=time.perf_counter() - t0,
    )


def _draw_val(usable: dict[str, list], config: TrainConfig, val_fraction: float | None, split_seed: int | None) -> bool:
    """Without a ``val`` split, draw a stratified one from ``usable["train"]`` (in place); True if drawn."""
    from qtransfer.data.discover import stratified_split

    if "val" in usable:
        return False
    usable["train"], usable["val"] = stratified_split(
        usable["train"], config.val_fraction if val_fraction is None else val_fraction,
        config.seed if split_seed is None else split_seed,
    )
    return True


def file_identity(table) -> dict[str, str]:
    """What stands for the backbone of features read from a file: the file's name and content digest."""
    return {"backbone": "features-file", "weights": f"sha256:{table.sha256}", "transform": "", "file": str(table.path)}


def read_feature_file(config: TrainConfig, path: str | Path | None = None, *, require_labels: bool = True):
    """The :class:`~qtransfer.data.feature_files.FeatureTable` of ``path`` (default ``config.features``),
    read with ``config``'s column names."""
    from qtransfer.data.feature_files import load_feature_file

    return load_feature_file(config.features if path is None else path, label_column=config.label_column,
                             name_column=config.name_column, split_column=config.split_column,
                             require_labels=require_labels)


def _prepare_from_file(config: TrainConfig, t0: float, val_fraction: float | None, split_seed: int | None) -> FeatureSet:
    """:func:`prepare_features` for ``config.features``: the file's rows, split as image folders are."""
    from qtransfer.data.discover import Sample, check_splits

    table = read_feature_file(config)
    paths = [Path(name) for name in table.names]
    if len(set(paths)) != len(paths):
        raise DataError(f"features file {table.path}: two names are the same path once normalised (e.g. 'a//b' and "
                        f"'a/b'); names must be unique")
    usable: dict[str, list] = {}
    for i, (path, label) in enumerate(zip(paths, table.labels.tolist())):
        usable.setdefault(table.split[i] if table.split else "train", []).append(Sample(path, label))
    val_from_train = _draw_val(usable, config, val_fraction, split_seed)
    check_splits(table.classes, usable, table.path)
    features = torch.from_numpy(table.features).to(config.device)
    row = {p: i for i, p in enumerate(paths)}
    return FeatureSet(
        classes=table.classes, splits={name: split_features(features, s, row) for name, s in usable.items()}, skipped=[],
        backbone=file_identity(table), num_features=table.num_features, root=table.path, val_from_train=val_from_train,
        seconds=time.perf_counter() - t0,
    )


def load_run_config(run_dir: Path) -> TrainConfig:
    """The resolved configuration stored in ``run_dir/config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: {run_dir} is not a qtransfer run directory")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))
    except (json.JSONDecodeError, UsageError) as e:
        raise CheckpointError(f"{path} is not a valid run configuration: {e}") from None


def train_run(config: TrainConfig, out_dir: str | Path, *, cache_dir: str | Path | None = None, resume: bool = False,
              progress: bool = True, report: bool = True, log: Callable[[str], None] = _log) -> RunMetrics:
    """Train ``config`` end to end and write the run directory; returns the metrics.

    Example:
        >>> metrics = train_run(TrainConfig(data="data/ants_bees", epochs=5), "runs/demo")  # doctest: +SKIP
        >>> metrics.final["val"].accuracy                                                 # doctest: +SKIP
    """
    t_start = time.perf_counter()
    out = _open_run_dir(Path(out_dir), config, resume)
    features = prepare_features(config, cache_dir=cache_dir, progress=progress)
    atomic_write_text(out / "skipped.txt", "".join(f"{p}\t{r}\n" for p, r in features.skipped))
    log(_data_summary(features, config, out))
    t_train = time.perf_counter()
    head, result = _train(config, features, out, resume, progress)
    train_s = time.perf_counter() - t_train
    metrics = _evaluate_and_save(config, features, head, result, out, extract_s=features.seconds, train_s=train_s,
                                 t_start=t_start)
    write_manifest(out)  # last: the run is complete
    final = metrics.final
    log(f"best epoch {result.best_epoch}: val accuracy {final['val'].accuracy:.3f}"
        + (f", test accuracy {final['test'].accuracy:.3f}" if "test" in final else "")
        + f"; extract {features.seconds:.1f} s, train {train_s:.1f} s; wrote {out}")
    if report:
        _write_report(out, log)
    return metrics


def _open_run_dir(out: Path, config: TrainConfig, resume: bool) -> Path:
    """Check that ``out`` may be (re)used, clean what an interrupted process left, write ``config.json``."""
    if resume:
        if not (out / "state.pt").is_file():
            raise CheckpointError(f"{out}/state.pt does not exist: nothing to resume. Start a new run without --resume.")
        remove_temporaries(out)  # half-written files of the interrupted process (the complete ones were renamed)
    elif (out / "state.pt").exists() or (out / "model.pt").exists():  # a run that trained at least one epoch
        raise UsageError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    remove_manifest(out)  # the run's files change from here on; a new manifest is written when it ends
    atomic_write_json(out / "config.json", config.to_dict())
    return out


def _data_summary(features: FeatureSet, config: TrainConfig, out: Path) -> str:
    train, val = features.splits["train"], features.splits["val"]
    return (f"{len(features.classes)} classes ({', '.join(features.classes)}); train {len(train)}, val {len(val)}"
            + (f" (split off train, {config.val_fraction:.0%})" if features.val_from_train else "")
            + (f", test {len(features.splits['test'])}" if "test" in features.splits else "")
            + (f"; features read from {config.features}" if config.features is not None else
               f"; features: {features.n_cached} cached, {features.n_computed} computed in {features.seconds:.1f} s")
            + (f"; {len(features.skipped)} file(s) skipped, see {out / 'skipped.txt'}" if features.skipped else ""))


def _train(config: TrainConfig, features: FeatureSet, out: Path, resume: bool, progress: bool):
    """Build the head and train it (resumable through ``out/state.pt``); the head holds the selected weights."""
    from qtransfer.heads import build_head
    from qtransfer.training.loop import train_head

    try:
        head = build_head(config.head, features.num_features, len(features.classes), device=config.device,
                          **config.head_settings())
    except (ValueError, ImportError) as e:  # e.g. a PennyLane device that is not installed
        raise UsageError(str(e)) from None
    train, val = features.splits["train"], features.splits["val"]
    result = train_head(
        head, (train.train_x, train.y), (val.x, val.y), epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        step_size=config.step_size, gamma=config.gamma, seed=config.seed, state_path=out / "state.pt", resume=resume,
        progress=progress,
    )
    head.load_state_dict(result.best_state)
    return head, result


def _evaluate_and_save(config: TrainConfig, features: FeatureSet, head, result, out: Path, *, extract_s: float,
                       train_s: float, t_start: float) -> RunMetrics:
    """Write ``model.pt``, ``predictions.json``, ``pipeline.json`` and ``metrics.json`` for the selected head."""
    from qtransfer.evaluation import evaluate_features, prediction_records
    from qtransfer.heads import count_parameters, device_record
    from qtransfer.training.checkpoint import MODEL_FILE, save_model

    save_model(out / MODEL_FILE, head, config, features.classes, features.backbone, features.num_features, result.best_epoch)
    final = {name: evaluate_features(head, split.x, split.y, features.classes)
             for name, split in features.splits.items() if name != "train"}
    shown = "test" if "test" in features.splits else "val"
    split = features.splits[shown]
    atomic_write_json(out / "predictions.json", {
        "split": shown, "items": prediction_records(head, split.x, split.paths, features.classes, split.y)})
    if len(split) and not config.backend.startswith("pennylane:qiskit.remote"):  # no extra job on real hardware
        from qtransfer.heads.trace import pipeline_record

        atomic_write_json(out / "pipeline.json", pipeline_record(
            head, config.head, split.x[0], split.paths[0], shown, features.classes[int(split.y[0])], features.classes,
            dict(features.backbone), features.n_cached, features.n_computed))
    metrics = RunMetrics(
        classes=features.classes, history=tuple(EpochRecord(**r) for r in result.history), best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc, final=final, n_images={name: len(s) for name, s in features.splits.items()},
        n_skipped=len(features.skipped), val_from_train=features.val_from_train, n_params=count_parameters(head),
        backbone=dict(features.backbone), n_cached=features.n_cached, n_computed=features.n_computed,
        num_features=features.num_features,
        timing=Timing(extract_s=extract_s, train_s=train_s, total_s=time.perf_counter() - t_start),
        device=device_record(head),
    )
    metrics.save(out / "metrics.json")
    return metrics


def _write_report(out: Path, log: Callable[[str], None]) -> None:
    """``report.html``; a missing plotting library skips it with one line instead of failing the run."""
    from qtransfer.report import write_report

    try:
        log(f"report: {write_report(out)}")
    except ImportError as e:
        log(f"report skipped ({e}); everything else is written. Then: qtransfer report {out}")


def load_for_inference(run_dir: Path, device: str | None, *, noise: str | None = None, shots: int | None = None):
    """The saved head and its config, set to run on ``device`` (default: the CPU); ``noise``/``shots``, when
    given, replace the ones it was trained with (``noise="none"``: the ideal circuit)."""
    from qtransfer.training.checkpoint import load_model

    overrides = {k: v for k, v in (("noise", noise), ("shots", shots)) if v is not None}
    saved = load_model(Path(run_dir), device=device or "cpu", overrides=overrides)
    return saved, saved.config.replace(device=device or "cpu")


def backbone_for(saved, config: TrainConfig, weights: str | None = None):
    """The :class:`~qtransfer.features.backbones.BackboneRef` a saved model was trained on (``weights``: a moved
    weights file); refuses any other backbone, weights or preprocessing."""
    from qtransfer.features.backbones import looks_like_file, resolve_backbone
    from qtransfer.training.checkpoint import check_compatible

    if config.features is not None:
        raise UsageError(f"this model was trained on precomputed features ({config.features}), not on images; "
                         f"give it features of the same kind with --features FILE")

    if weights is None and config.weights and looks_like_file(config.weights) and not Path(config.weights).expanduser().is_file():
        raise UsageError(
            f"the weights file this model was trained with, {config.weights}, does not exist (moved or deleted?); "
            f"pass its new location with --weights FILE (accepted if its content is the same)"
        )
    ref = resolve_backbone(config.backbone, weights if weights is not None else config.weights, transform=config.transform)
    check_compatible(saved, backbone=ref.identity, num_features=ref.num_features,
                     source=f" (--weights {weights or config.weights})")
    return ref


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, *, features: str | Path | None = None,
                 split: str | None = None, cache_dir: str | Path | None = None,
                 weights: str | None = None, device: str | None = None, progress: bool = True,
                 noise: str | None = None, shots: int | None = None) -> Evaluation:
    """Accuracy, loss, per-class accuracy and confusion matrix of a trained run on ``data``.

    ``data`` is a folder of class folders (every image is used) or a root with split
    folders (``split``, default ``test`` if present, else ``val``, else ``train``).
    ``noise``/``shots`` run the trained circuit under another noise model or shot count
    (e.g. a model trained ideally, evaluated on a noisy device).
    """
    from qtransfer.training.checkpoint import check_compatible
    from qtransfer.data.discover import discover
    from qtransfer.evaluation import evaluate_features
    from qtransfer.heads import device_record

    saved, config = load_for_inference(Path(run_dir), device, noise=noise, shots=shots)
    if features is not None:
        return _evaluate_file(saved, config, features, split)
    if data is None:
        raise UsageError("evaluate needs --data DIR or --features FILE")
    found = discover(data, cache_dir=resolve_cache_dir(cache_dir))
    if split is None:
        split = next(s for s in ("test", "val", "train") if s in found.splits)
    if split not in found.splits:
        raise UsageError(f"{found.root} has no {split!r} split; it has: {', '.join(found.splits)}")
    check_compatible(saved, classes=found.classes, source=f" in {found.root}")
    samples = found.splits[split]
    extraction = _extract([s.path for s in samples], backbone_for(saved, config, weights), config, cache_dir, progress)
    to_model = {name: saved.classes.index(name) for name in found.classes}
    labels = torch.tensor([to_model[found.classes[samples[i].label]] for i in extraction.ok], dtype=torch.long)
    skipped = [(str(s.path), s.reason) for s in found.skipped] + [(str(p), r) for p, r in extraction.failures]
    return Evaluation(evaluate_features(saved.head, extraction.features, labels, saved.classes), split, str(found.root),
                      tuple(skipped), noise=config.noise, shots=config.shots, device=device_record(saved.head))


def _file_features(saved, config: TrainConfig, path: str | Path, *, require_labels: bool):
    """A feature file's table, refused (one line, exit 3) if its width is not the saved model's."""
    table = read_feature_file(config, path, require_labels=require_labels)
    if table.num_features != saved.in_features:
        raise DataError(f"features file {table.path} has {table.num_features} features per row; the model was trained "
                        f"on {saved.in_features}")
    return table


def _evaluate_file(saved, config: TrainConfig, path: str | Path, split: str | None) -> Evaluation:
    """:func:`evaluate_run` on a feature file (its ``split`` rows, default test, else val, else every row)."""
    from qtransfer.evaluation import evaluate_features
    from qtransfer.heads import device_record

    table = _file_features(saved, config, path, require_labels=True)
    rows = list(range(len(table.names)))
    shown = "all"
    if table.split is not None:
        present = set(table.split)
        shown = split or next(s for s in ("test", "val", "train") if s in present)
        if shown not in present:
            raise UsageError(f"{table.path} has no {shown!r} rows; it has: {', '.join(sorted(present))}")
        rows = [i for i in rows if table.split[i] == shown]
    elif split is not None:
        raise UsageError(f"{table.path} has no split column {config.split_column!r}; leave out --split")
    unknown = sorted(set(table.classes) - set(saved.classes))
    if unknown:
        raise DataError(f"features file {table.path}: label(s) {', '.join(unknown)} are not classes of this model "
                        f"({', '.join(saved.classes)})")
    to_model = [saved.classes.index(name) for name in table.classes]
    labels = torch.tensor([to_model[int(table.labels[i])] for i in rows], dtype=torch.long)
    features = torch.from_numpy(table.features[rows])
    return Evaluation(evaluate_features(saved.head, features, labels, saved.classes), shown, str(table.path), (),
                      noise=config.noise, shots=config.shots, device=device_record(saved.head))


def predict_paths(run_dir: str | Path, inputs: Sequence[str | Path] = (), *, features: str | Path | None = None,
                  cache_dir: str | Path | None = None, weights: str | None = None, device: str | None = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Predicted class and probability for each image (folders are searched recursively), in input order, or
    for each row of a ``features`` file (its names as ``path``).

    An image ``train`` would skip (a known placeholder, an empty or undecodable file) gets a record with
    ``error`` (its reason) in its place; a :class:`DataError` if no image could be classified.
    """
    from qtransfer.data.discover import image_inputs
    from qtransfer.evaluation import input_records, prediction_records

    saved, config = load_for_inference(Path(run_dir), device)
    if features is not None:
        if inputs:
            raise UsageError("give images or --features FILE, not both")
        table = _file_features(saved, config, features, require_labels=False)
        return prediction_records(saved.head, torch.from_numpy(table.features), table.names, saved.classes)
    found = image_inputs(inputs)
    ref = backbone_for(saved, config, weights)
    return input_records(saved.head, found, saved.classes, lambda paths: _extract(paths, ref, config, cache_dir, progress))

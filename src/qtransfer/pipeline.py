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
from qtransfer.paths import cache_dir as resolve_cache_dir
from qtransfer.results import EpochRecord, Evaluation, RunMetrics, Timing

__all__ = [
    "SplitFeatures", "FeatureSet", "split_features", "prepare_features", "train_run", "evaluate_run", "predict_paths",
    "load_run_config", "load_for_inference", "backbone_for", "image_paths",
]


@dataclass
class SplitFeatures:
    """The features, labels and files of one split."""

    x: torch.Tensor
    y: torch.Tensor
    paths: list[Path]

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


def split_features(features: torch.Tensor, samples: Sequence, row: dict[Path, int]) -> SplitFeatures:
    """The rows of ``features`` (``row[path]``) and the labels of ``samples``, on the features' device."""
    index = torch.tensor([row[s.path] for s in samples], dtype=torch.long, device=features.device)
    labels = torch.tensor([s.label for s in samples], dtype=torch.long, device=features.device)
    return SplitFeatures(features[index], labels, [s.path for s in samples])


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _extract(paths: Sequence[Path], ref, config: TrainConfig, cache_dir: str | Path | None, progress: bool):
    """Features of ``paths`` from the backbone ``ref`` (a BackboneRef): cached ones read, the rest computed.

    The backbone is built only if some image is not cached (no torchvision import otherwise).
    """
    from qtransfer.features.cache import FeatureCache
    from qtransfer.features.extract import extract_features

    cache = FeatureCache(resolve_cache_dir(cache_dir) / "features")
    return extract_features(paths, ref, cache=cache, device=config.device, progress=progress)


def prepare_features(config: TrainConfig, *, cache_dir: str | Path | None = None, progress: bool = True,
                     val_fraction: float | None = None, split_seed: int | None = None) -> FeatureSet:
    """Find the images of ``config.data``, get their features, and split them (train / val [/ test]).

    Without a ``val/`` folder, a stratified validation split of ``val_fraction`` (default
    ``config.val_fraction``) is drawn from train with ``split_seed`` (default ``config.seed``).
    """
    from qtransfer.data.discover import check_splits, discover, stratified_split
    from qtransfer.features.backbones import resolve_backbone

    t0 = time.perf_counter()
    data = discover(config.data, cache_dir=resolve_cache_dir(cache_dir))
    ordered = [(name, s) for name in ("train", "val", "test") for s in data.splits.get(name, [])]
    backbone = resolve_backbone(config.backbone, config.weights, transform=config.transform)
    extraction = _extract([s.path for _, s in ordered], backbone, config, cache_dir, progress)
    skipped = [(s.path, s.reason) for s in data.skipped] + [(Path(p), r) for p, r in extraction.failures]
    if skipped:
        for path, reason in skipped:
            warnings.warn(f"skipped {path}: {reason}", stacklevel=2)
        refused = [(p, r) for p, r in skipped if not r.startswith("placeholder")]  # known non-photos are no fault
        if config.strict and refused:
            listing = "\n  ".join(f"{p}: {r}" for p, r in refused[:20])
            raise DataError(f"--strict: {len(refused)} file(s) in {data.root} cannot be used:\n  {listing}")
    row = {ordered[i][1].path: k for k, i in enumerate(extraction.ok)}
    usable = {name: [s for s in data.splits.get(name, []) if s.path in row] for name in ("train", "val", "test") if name in data.splits}
    val_from_train = "val" not in usable
    if val_from_train:
        usable["train"], usable["val"] = stratified_split(
            usable["train"], config.val_fraction if val_fraction is None else val_fraction,
            config.seed if split_seed is None else split_seed,
        )
    check_splits(data.classes, usable, data.root)

    features = extraction.features.to(config.device)

    return FeatureSet(
        classes=data.classes, splits={name: split_features(features, s, row) for name, s in usable.items()}, skipped=skipped,
        backbone=dict(backbone.identity), num_features=backbone.num_features, root=data.root,
        val_from_train=val_from_train, n_cached=extraction.n_cached, n_computed=extraction.n_computed,
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
    atomic_write_json(out / "config.json", config.to_dict())
    return out


def _data_summary(features: FeatureSet, config: TrainConfig, out: Path) -> str:
    train, val = features.splits["train"], features.splits["val"]
    return (f"{len(features.classes)} classes ({', '.join(features.classes)}); train {len(train)}, val {len(val)}"
            + (f" (split off train, {config.val_fraction:.0%})" if features.val_from_train else "")
            + (f", test {len(features.splits['test'])}" if "test" in features.splits else "")
            + f"; features: {features.n_cached} cached, {features.n_computed} computed in {features.seconds:.1f} s"
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
        head, (train.x, train.y), (val.x, val.y), epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
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

    if weights is None and config.weights and looks_like_file(config.weights) and not Path(config.weights).expanduser().is_file():
        raise UsageError(
            f"the weights file this model was trained with, {config.weights}, does not exist (moved or deleted?); "
            f"pass its new location with --weights FILE (accepted if its content is the same)"
        )
    ref = resolve_backbone(config.backbone, weights if weights is not None else config.weights, transform=config.transform)
    check_compatible(saved, backbone=ref.identity, num_features=ref.num_features,
                     source=f" (--weights {weights or config.weights})")
    return ref


def evaluate_run(run_dir: str | Path, data: str | Path, *, split: str | None = None, cache_dir: str | Path | None = None,
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


def image_paths(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files given directly or found in folders (recursively, sorted); a missing input is a DataError."""
    from qtransfer.data.images import IMAGE_EXTENSIONS

    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.exists():
            paths.append(p)
        else:
            raise DataError(f"{p} does not exist; pass image files or folders of images")
    if not paths:
        raise DataError(f"no image files found in {', '.join(map(str, inputs))} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return paths


def predict_paths(run_dir: str | Path, inputs: Sequence[str | Path], *, cache_dir: str | Path | None = None,
                  weights: str | None = None, device: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Predicted class and probability for each image (folders are searched recursively)."""
    from qtransfer.evaluation import extraction_records

    saved, config = load_for_inference(Path(run_dir), device)
    paths = image_paths(inputs)
    extraction = _extract(paths, backbone_for(saved, config, weights), config, cache_dir, progress)
    return extraction_records(saved.head, extraction, paths, saved.classes)

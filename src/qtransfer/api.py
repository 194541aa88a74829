"""The Python API: what the command line does, as functions that return typed results.

``import qtransfer`` exposes these lazily (nothing heavy is imported until one is called):

* :func:`train` -- train a head, write a run directory, return its :class:`~qtransfer.results.RunMetrics`;
* :func:`extract_features` -- the cached backbone features ``train`` uses, for a model of your own;
* :func:`evaluate` / :func:`predict` -- a trained run on labelled / unlabelled images;
* :func:`compare` -- several heads over several seeds with paired tests (:class:`~qtransfer.results.CompareResults`);
* :func:`sweep` -- a grid of settings x seeds on a process pool or Ray, resumable (:class:`~qtransfer.results.SweepResults`);
* :func:`load_run` -- the trained model (backbone + head) as one ``nn.Module``: ``model(images)``
  or ``model.predict_paths(paths)``.

Settings are :class:`~qtransfer.config.TrainConfig`'s fields, given as keywords (``epochs=5``)
or as a whole ``config=``; keywords win. ``docs/python-api.md`` has a worked example.

Example:
    >>> import qtransfer
    >>> metrics = qtransfer.train("../shared/data/hymenoptera_train", out="runs/demo",        # doctest: +SKIP
    ...                           backbone="mobilenet_v2", weights="mobilenet_v2-b0353104.pth")
    >>> metrics.final["val"].accuracy                                                         # doctest: +SKIP
    0.98
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from qtransfer.config import TrainConfig
from qtransfer.errors import UsageError
from qtransfer.outdir import check_cache_writable, writing_to

if TYPE_CHECKING:  # pragma: no cover
    from qtransfer.paper.common import PaperResults
    from qtransfer.pipeline import ExtractedFeatures
    from qtransfer.results import CompareResults, Evaluation, RunMetrics, SweepResults
    from qtransfer.sweeps import SweepSpec

__all__ = ["train", "extract_features", "evaluate", "predict", "compare", "sweep", "load_run", "resolve_config", "run_paper"]

PathLike = str | os.PathLike


def resolve_config(data: PathLike | None = None, config: TrainConfig | None = None, **settings: Any) -> TrainConfig:
    """``config`` (default: the published settings) with ``data`` and ``settings`` applied.

    Keys are :class:`~qtransfer.config.TrainConfig` fields; an unknown key is a
    :class:`~qtransfer.errors.UsageError` that lists the known ones.

    Example:
        >>> resolve_config("images", epochs=5).epochs
        5
        >>> resolve_config(epochs=5, qubits=2).n_qubits
        2
        >>> resolve_config(weights=Path("w.pth")).weights     # paths may be given as Path objects
        'w.pth'
    """
    values = (config or TrainConfig()).to_dict()
    if data is not None:
        values["data"] = os.fspath(data)
    settings = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in settings.items()}  # features=Path(...)
    return TrainConfig.from_dict({**values, **settings}, source="settings")


def train(data: PathLike | None = None, *, out: PathLike, config: TrainConfig | None = None, resume: bool = False,
          cache_dir: PathLike | None = None, progress: bool = True, report: bool = True, **settings: Any) -> "RunMetrics":
    """Train a head on ``data`` and write the run directory ``out``; returns the run's metrics.

    ``head`` is a registered name (``"quantum"``, ...), or your own ``nn.Module`` or factory
    ``f(in_features, n_classes, **settings) -> nn.Module``, registered under its name (see
    :func:`qtransfer.heads.register_head`); ``circuit`` runs any circuit in the quantum head.

    ``resume=True`` continues the interrupted run in ``out`` with its saved configuration
    (no other settings may be given).
    """
    from qtransfer.pipeline import load_run_config, train_run

    if resume:
        if data is not None or config is not None or settings:
            raise UsageError(f"resume continues {out} with its saved configuration; give no data, config or settings")
    else:
        if "head" in settings and not isinstance(settings["head"], str):
            settings["head"] = _register_python_head(settings["head"])
        config = resolve_config(data, config, **settings)
    with writing_to(out, cache_dir=cache_dir, flag="--resume" if resume else "--out"):
        if resume:
            from qtransfer.manifest import verify_run_files

            verify_run_files(out, ("config.json", "state.pt"), notice=False)  # an unfinished run has no manifest
            config = load_run_config(Path(out))
        return train_run(config, out, cache_dir=cache_dir, resume=resume, progress=progress, report=report)


def extract_features(data: PathLike | None = None, *, backbone: str = "resnet18", weights: str | None = "DEFAULT",
                     transform: str | None = None, augment: int = 0, augment_seed: int = 0,
                     cache_dir: PathLike | None = None, device: str = "cpu", progress: bool = True,
                     strict: bool = False) -> "ExtractedFeatures":
    """The frozen backbone's features of every usable image of ``data`` (a folder, as ``train``'s ``data``),
    from the same cache entries ``train`` reads and writes; returns an
    :class:`~qtransfer.pipeline.ExtractedFeatures` (``.features``, ``.labels``, ``.classes``, ``.paths``,
    ``.splits``, ``.to_numpy()``). ``docs/python-api.md`` fits scikit-learn on them.
    ``augment=K`` adds ``.views``: K seeded augmented views of each image (``augment_seed``), those
    ``train --augment K`` trains on.
    """
    from qtransfer.pipeline import extract_data_features

    config = resolve_config(data, None, backbone=backbone, weights=weights, transform=transform, device=device,
                            strict=strict, augment=augment, augment_seed=augment_seed)
    return extract_data_features(config, cache_dir=cache_dir, progress=progress)


def _register_python_head(head: Any) -> str:
    """Register a head given to :func:`train` as a module or a factory; returns its name.

    A module is copied for every training (its own weights stay as they are, every seed starts
    from them); a factory ``f(in_features, n_classes, **settings)`` builds a fresh one each time.
    Its name is the factory's or the module class's name; ``load_run`` in another process needs
    it registered there too (:func:`qtransfer.heads.register_head`).
    """
    import copy

    from qtransfer.heads.registry import HEADS, register_head

    if hasattr(head, "state_dict") and hasattr(head, "forward"):  # an nn.Module
        module = head

        def builder(in_features: int, n_classes: int) -> Any:
            return copy.deepcopy(module)

        name = type(module).__name__
        builder.__qualname__ = f"{name} (a module given to train)"
    elif callable(head):
        builder, name = head, getattr(head, "__name__", type(head).__name__)
    else:
        raise UsageError(f"head must be a registered name, an nn.Module or a factory f(in_features, n_classes), got {head!r}")
    existing = HEADS.get(name)
    if existing is not None and existing.is_builtin:
        raise UsageError(f"a custom head cannot take the built-in name {name!r}; rename its class or factory, "
                         "or register it under another name with qtransfer.heads.register_head")
    if existing is None or existing.builder is not builder:
        register_head(name, builder, replace=True)
    return name


def evaluate(run_dir: PathLike, data: PathLike | None = None, *, features: PathLike | None = None,
             split: str | None = None, cache_dir: PathLike | None = None,
             weights: str | None = None, device: str | None = None, progress: bool = True,
             noise: str | None = None, shots: int | None = None) -> "Evaluation":
    """Accuracy, loss, per-class accuracy and confusion matrix of a trained run on a labelled folder, or on the
    labelled rows of a ``features`` file (for a run trained on precomputed features);
    ``noise``/``shots`` run its circuit under another noise model or shot count than it was trained with."""
    from qtransfer.pipeline import evaluate_run

    if (data is None) == (features is None):
        raise UsageError("evaluate needs a data folder or a features file (one of them)")
    if features is None:
        check_cache_writable(cache_dir)
    return evaluate_run(run_dir, data, features=features, split=split, cache_dir=cache_dir, weights=weights, device=device,
                        progress=progress, noise=noise, shots=shots)


def predict(run_dir: PathLike, images: PathLike | Sequence[PathLike] = (), *, features: PathLike | None = None,
            cache_dir: PathLike | None = None, weights: str | None = None, device: str | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    """Class and probability of each image (folders are searched recursively), or of each row of a
    ``features`` file (for a run trained on precomputed features; its names stand in ``path``)."""
    from qtransfer.pipeline import predict_paths

    inputs = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    if features is None:
        check_cache_writable(cache_dir)
    return predict_paths(run_dir, inputs, features=features, cache_dir=cache_dir, weights=weights, device=device, progress=progress)


def compare(data: PathLike | None = None, *, out: PathLike, heads: Sequence[str] = ("quantum", "linear", "classical", "product"),
            seeds: int = 10, config: TrainConfig | None = None, cache_dir: PathLike | None = None, progress: bool = True,
            report: bool = True, **settings: Any) -> "CompareResults":
    """Train every head for every seed on the same split and features, test them against ``quantum``."""
    from qtransfer.compare import run_compare

    config = resolve_config(data, config, **settings)
    with writing_to(out, cache_dir=cache_dir):
        return run_compare(config, heads=list(heads), n_seeds=seeds, out_dir=Path(out), cache_dir=cache_dir,
                           progress=progress, report=report)


def sweep(sweep: "PathLike | SweepSpec | dict[str, Any]", *, out: PathLike, workers: int | None = None,
          ray: str | None = None, cache_dir: PathLike | None = None, progress: bool = True, report: bool = True,
          **settings: Any) -> "SweepResults":
    """Run a sweep (a sweep file, a :class:`~qtransfer.sweeps.SweepSpec` or its dict) into ``out``.

    ``settings`` override the sweep's ``[base]``; ``workers`` sizes the local process pool
    (default: every core), ``ray`` (``"local"``, ``"auto"`` or an address) runs on Ray instead.
    Rerunning with the same ``out`` skips the finished trials.

    Example:
        >>> results = qtransfer.sweep({"seeds": 3, "grid": {"head": ["quantum", "linear"], "depth": [2, 4]}},  # doctest: +SKIP
        ...                           out="runs/sweep", data="images", epochs=5)
    """
    from qtransfer.sweeps import SweepSpec, load_sweep_file
    from qtransfer.sweeps.run import run_sweep

    if isinstance(sweep, SweepSpec):
        spec = sweep
    elif isinstance(sweep, dict):
        spec = SweepSpec.from_dict(sweep, source="sweep")
    else:
        spec = load_sweep_file(sweep)
    if settings:
        spec = spec.with_overrides(settings)
    with writing_to(out, cache_dir=cache_dir):
        return run_sweep(spec, out, workers=workers, ray=ray, cache_dir=cache_dir, progress=progress, report=report)


def run_paper(experiments: str | Sequence[str] = "all", *, seeds: int = 10, out: PathLike,
              cache_dir: PathLike | None = None, progress: bool = True, report: bool = True,
              command: str = "", **options: Any) -> "PaperResults":
    """Reproduce the paper's experiments (``"spirals"``, ``"qc"``, ``"qq"``, ``"cq"``, ``"cifar"``, ``"qpu"``
    or ``"all"``) over ``seeds`` seeds with the published settings; writes ``out/results.json`` and
    ``out/report.html``.

    ``options`` reach the experiments that take them: ``data``, ``backbone``, ``weights`` (cq
    and qpu: another data set or backbone than the published ones), ``devices`` (qpu: names
    of calibrated devices, a list or ``"a,b"``), ``shots`` (qpu, default 1024) and
    ``noise_aware`` (qpu: the device to train noise-aware on, ``"none"`` to skip).

    Example:
        >>> results = qtransfer.run_paper("qc", seeds=5, out="runs/paper")    # doctest: +SKIP
        >>> round(results.rows[0].model.mean, 2)                          # doctest: +SKIP
        0.8
        >>> qtransfer.run_paper("qpu", seeds=10, data="images", backbone="mobilenet_v2",   # doctest: +SKIP
        ...                     devices="fake_yorktown,fake_manila")
    """
    from qtransfer.paper import runner

    with writing_to(out, cache_dir=cache_dir):
        return runner.run_paper(experiments, seeds=seeds, out=out, cache_dir=cache_dir, progress=progress,
                                report=report, command=command, options=options)


def load_run(run_dir: PathLike, *, device: str = "cpu", weights: str | None = None):
    """The trained model of a run directory, backbone included, ready for inference.

    ``weights`` gives the backbone weights file's new place if it moved since training
    (accepted only with the same content). Returns a
    :class:`~qtransfer.model.TrainedModel`.
    """
    from qtransfer.model import TrainedModel

    return TrainedModel.load(run_dir, device=device, weights=weights)

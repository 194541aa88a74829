"""One trial on prepared features: the data a trial needs, and the training + evaluation it does.

:func:`prepare_trial_data` extracts (or reads from the cache) the features of one data set
once and splits them the way ``compare`` always has (images used to report accuracy never
choose the model):

* with a ``test/`` split: train on train, select the epoch on val, report on test;
* without one: the validation split is the evaluation set, and the epoch is selected on
  a stratified part of train (``val_fraction`` of it) that is held out from training.

:func:`run_trial` is a pure function of a :class:`~qtransfer.config.TrainConfig` and a
:class:`TrialData`: seeded, on one intra-op thread, it gives the same numbers in this
process, in a pool worker and on a Ray worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtransfer.config import TrainConfig

__all__ = ["TrialData", "fit_trial_head", "prepare_trial_data", "run_trial", "selection_split"]


@dataclass(frozen=True)
class TrialData:
    """The features of one data set, split into train / select / evaluate, and what describes them."""

    train: tuple[Any, Any]  # (x, y) tensors; x is (K, N, F) with K augmented views
    select: tuple[Any, Any]
    evaluate: tuple[Any, Any]
    eval_split: str
    eval_paths: tuple[str, ...]
    classes: tuple[str, ...]
    num_features: int
    backbone: dict[str, str]
    extract_s: float

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(n_train, n_select, n_eval)."""
        return tuple(int(part[1].shape[0]) for part in (self.train, self.select, self.evaluate))  # type: ignore


def selection_split(split, val_fraction: float, seed: int):
    """Hold out a stratified ``val_fraction`` of a :class:`~qtransfer.pipeline.SplitFeatures` for model selection."""
    from qtransfer.data.discover import Sample, stratified_split
    from qtransfer.pipeline import split_features

    samples = [Sample(path=p, label=int(y)) for p, y in zip(split.paths, split.y.tolist())]
    position = {p: i for i, p in enumerate(split.paths)}
    train, select = stratified_split(samples, val_fraction, seed)
    return split_features(split.x, train, position, split.views), split_features(split.x, select, position)


def prepare_trial_data(config: TrainConfig, split_seed: int, *, cache_dir: str | Path | None = None,
                       progress: bool = True) -> TrialData:
    """Features of ``config``'s data and backbone (extracted once, then cached), split with ``split_seed``."""
    from qtransfer.pipeline import prepare_features

    config = config.replace(seed=split_seed)
    features = prepare_features(config, cache_dir=cache_dir, progress=progress)
    if "test" in features.splits:
        train, select, evaluate, eval_split = (features.splits["train"], features.splits["val"],
                                               features.splits["test"], "test")
    else:
        train, select = selection_split(features.splits["train"], config.val_fraction, split_seed)
        evaluate, eval_split = features.splits["val"], "val"
    return TrialData(
        train=(train.train_x, train.y), select=(select.x, select.y), evaluate=(evaluate.x, evaluate.y), eval_split=eval_split,
        eval_paths=tuple(str(p) for p in evaluate.paths), classes=tuple(features.classes),
        num_features=features.num_features, backbone=dict(features.backbone), extract_s=features.seconds,
    )


def fit_trial_head(config: TrainConfig, data: TrialData):
    """Build ``config``'s head and train it with ``config.seed`` (epoch selected on ``data.select``).

    Returns ``(head, result)``: the head holds the selected epoch's weights; ``result`` is
    :func:`~qtransfer.training.loop.train_head`'s. Call it inside ``one_intra_op_thread()``.
    """
    from qtransfer.errors import UsageError
    from qtransfer.heads import build_head
    from qtransfer.training.loop import train_head

    try:
        head = build_head(config.head, data.num_features, len(data.classes), device=config.device,
                          **config.head_settings())
    except (ValueError, ImportError) as e:  # e.g. a PennyLane device that is not installed
        raise UsageError(str(e)) from None
    result = train_head(head, data.train, data.select, epochs=config.epochs, batch_size=config.batch_size,
                        lr=config.lr, step_size=config.step_size, gamma=config.gamma, seed=config.seed,
                        progress=False)
    head.load_state_dict(result.best_state)
    return head, result


def run_trial(config: TrainConfig, data: TrialData) -> dict[str, Any]:
    """Train ``config``'s head with ``config.seed`` (epoch selected on ``data.select``) and evaluate it.

    Returns ``accuracy``, ``correct`` (1 per evaluation image the head got right),
    ``predicted`` (the class index per evaluation image), ``history`` (per epoch; ``val_*`` on
    the selection split), ``n_params``, ``best_epoch`` and ``train_seconds``.
    """
    from qtransfer.heads import count_parameters
    from qtransfer.training.loop import infer, one_intra_op_thread

    t0 = time.perf_counter()
    with one_intra_op_thread():
        head, result = fit_trial_head(config, data)
        x, y = data.evaluate
        predicted = infer(head, x).argmax(-1)
        right = (predicted == y).cpu().numpy()
    return {"accuracy": float(right.mean()), "correct": tuple(int(v) for v in right),
            "predicted": tuple(int(v) for v in predicted.cpu().tolist()), "history": list(result.history),
            "n_params": count_parameters(head), "best_epoch": int(result.best_epoch),
            "train_seconds": round(result.seconds, 4), "seconds": round(time.perf_counter() - t0, 4)}

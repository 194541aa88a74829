"""CQ: the published ants/bees run (Example 2) through qtransfer's ``train`` pipeline, over seeds.

``qtransfer.api.train`` with ``--data hymenoptera`` and the published settings (ResNet18
ImageNet features, the dressed quantum circuit of 4 qubits and depth 6, Adam 4e-4, batch 4,
StepLR(10, 0.1), 30 epochs, the best epoch on the official val split, whose accuracy is
reported, as in the notebook), on centre crops as the notebooks trained: their ``RandomResizedCrop(224)`` and
``RandomHorizontalFlip()`` lines are commented out ("uncomment for data augmentation"), so the published
runs saw one Resize(256) + CenterCrop(224) view per image (``augment=0``, :data:`CQ_AUGMENT`);
``augment=K`` runs the uncommented variant with K cached views per image. Beside it, on the same cached features: the published
classical baseline ``Linear(512 -> 2)`` (0.9542) and the matched classical head of
``qtransfer compare``. It needs the data set and the ResNet18 weights: offline, ``train``
raises its :class:`~qtransfer.errors.DownloadError` that says where to put the zip.

Example:
    >>> CQ_PUBLISHED["quantum"], list(CQ_HEADS)
    (0.9673, ['quantum', 'classical', 'linear'])
    >>> row, = run_cq((0,), out="runs/paper/cq")     # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from .common import PaperRow, Series

__all__ = ["CQ_AUGMENT", "CQ_PUBLISHED", "CQ_HEADS", "run_cq"]

#: head -> published val accuracy (notebooks c2q_transfer_learning_ants_bees, transfer_learning_ants_bees_classical)
CQ_PUBLISHED = {"quantum": 0.9673, "linear": 0.9542}
#: augmented views per training image as published: none (the notebooks' augmentation lines are commented out)
CQ_AUGMENT = 0
#: head -> label in the report; the first is the paper's model, the second the matched classical baseline
CQ_HEADS = {"quantum": "dressed quantum circuit (4 qubits, depth 6)", "classical": "matched classical head",
            "linear": "paper's classical Linear(512->2)"}


def run_cq(seeds: tuple[int, ...], *, out: str | os.PathLike, data: str | os.PathLike = "hymenoptera",
           cache_dir: str | os.PathLike | None = None, progress: Callable[[str], None] | None = None,
           **settings: Any) -> tuple[PaperRow]:
    """Every head of :data:`CQ_HEADS` for every seed; run directories under ``out/<head>-seed<N>``.

    ``settings`` are :class:`~qtransfer.config.TrainConfig` fields that override the published ones
    (``augment=K``: the notebooks' commented-out augmentation, K views per image).
    """
    settings = {"augment": CQ_AUGMENT, **{k: v for k, v in settings.items() if v is not None}}
    from qtransfer.api import train

    started = time.perf_counter()
    acc: dict[str, list[float]] = {h: [] for h in CQ_HEADS}
    n_params: dict[str, int] = {}
    for seed in seeds:
        for head in CQ_HEADS:
            if progress:
                progress(f"cq: {head}, seed {seed}")
            metrics = train(data, out=Path(out) / f"{head}-seed{seed}", cache_dir=cache_dir, progress=False,
                            report=False, **{"head": head, "seed": seed, **settings})
            acc[head].append(metrics.final["val"].accuracy)
            n_params[head] = metrics.n_params
    series = {h: Series(CQ_HEADS[h], tuple(v), CQ_PUBLISHED.get(h), n_params[h]) for h, v in acc.items()}
    return (PaperRow(
        "cq", "cq", "CQ: ants vs bees, ResNet18 features (Example 2)", series["quantum"],
        (series["classical"], series["linear"]), tuple(seeds), time.perf_counter() - started,
        notes="Accuracy on the official val split at the best epoch on that split (the notebook's protocol); "
              + ("centre crops, as the notebooks trained (their augmentation lines are commented out)."
                 if not settings["augment"] else
                 f"trained on {settings['augment']} augmented views per image (the notebooks' commented-out "
                 f"RandomResizedCrop(224) + RandomHorizontalFlip), which the published runs did not use."),
        settings={"data": str(data), **{k: str(v) for k, v in settings.items()}}),)

"""CQ on CIFAR-10 pairs (Example 3): cats vs dogs, planes vs cars, through qtransfer's ``train`` pipeline.

CIFAR-10 comes from ``torchvision.datasets.CIFAR10`` (its download and md5 checks) into
``<cache>/datasets/cifar10/``. The two classes of a pair are written once as PNG files in
class folders, ``<cache>/datasets/cifar10-pairs/<a>_<b>/{train,val}/<class>/`` (val is
CIFAR's test batch, as in the notebook, which selects the best epoch on it and reports it),
and the pair then trains like any folder: frozen ResNet18 features (cached), the dressed
quantum circuit as the head. Settings per pair are the notebook's
(``c2q_transfer_learning_cifar.ipynb``, :data:`PAIRS`): batch 8, 3 epochs, 4 qubits; cats/dogs
depth 5, rate 0.001, no decay; planes/cars depth 4, rate 0.0007, rate x0.1 for the third
epoch (the notebook steps its StepLR(3) before each epoch, so the third one is decayed:
here ``step_size=2``). The baseline is the notebook's classical option ``Linear(512 -> 2)``.

Offline, :func:`ensure_cifar10` raises a :class:`~qtransfer.errors.DownloadError` naming
the file to place: ``<cache>/datasets/cifar10/cifar-10-python.tar.gz``.

Example:
    >>> PAIRS["cats_dogs"].classes
    ('cat', 'dog')
    >>> rows = run_cifar((0,), out="runs/paper/cifar")     # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from qtransfer.errors import DownloadError

from .common import PaperRow, Series

__all__ = ["CIFAR_CLASSES", "PAIRS", "CifarPair", "cifar_root", "ensure_cifar10", "export_pair", "run_cifar"]

CIFAR_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"


@dataclass(frozen=True)
class CifarPair:
    """One pair of CIFAR-10 classes with the notebook's training settings (``TrainConfig`` fields)."""

    classes: tuple[str, str]
    depth: int
    lr: float
    gamma: float
    step_size: int
    published: float | None
    epochs: int = 3
    batch_size: int = 8
    n_qubits: int = 4

    def settings(self) -> dict[str, Any]:
        return {"depth": self.depth, "lr": self.lr, "gamma": self.gamma, "step_size": self.step_size,
                "epochs": self.epochs, "batch_size": self.batch_size, "n_qubits": self.n_qubits}


PAIRS = {
    "cats_dogs": CifarPair(("cat", "dog"), depth=5, lr=0.001, gamma=1.0, step_size=3, published=0.8270),
    "planes_cars": CifarPair(("plane", "car"), depth=4, lr=0.0007, gamma=0.1, step_size=2, published=None),
}


def cifar_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/datasets/cifar10``, where torchvision's CIFAR10 keeps the archive and its batches."""
    from qtransfer.paths import cache_dir as _cache

    return _cache(cache_dir) / "datasets" / "cifar10"


def _offline_message(root: Path, reason: str) -> str:
    from torchvision.datasets import CIFAR10

    return (f"could not get CIFAR-10 from {CIFAR10.url} ({reason}).\n"
            f"To work offline, place {CIFAR_ARCHIVE} (md5 {CIFAR10.tgz_md5}) at {root / CIFAR_ARCHIVE}; "
            f"qtransfer checks and extracts it there. The cache folder is --cache-dir or $QTRANSFER_CACHE.")


def ensure_cifar10(cache_dir: str | os.PathLike | None = None, *, download: bool = True):
    """``(train, test)`` ``torchvision.datasets.CIFAR10`` sets, downloaded and md5-checked by torchvision.

    Raises :class:`~qtransfer.errors.DownloadError` with what to place where when that fails.
    """
    from torchvision.datasets import CIFAR10

    root = cifar_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        return CIFAR10(str(root), train=True, download=download), CIFAR10(str(root), train=False, download=download)
    except RuntimeError as e:  # "Dataset not found or corrupted", or torchvision's md5 mismatch
        raise DownloadError(_offline_message(root, str(e) if download else "downloading is disabled")) from None
    except OSError as e:  # URLError, HTTPError, connection reset: all OSError subclasses
        raise DownloadError(_offline_message(root, f"network error: {getattr(e, 'reason', None) or e}")) from None


def export_pair(train_set, test_set, classes: tuple[str, str], folder: Path, *, max_per_class: int | None = None) -> Path:
    """Write the two classes as ``folder/{train,val}/<class>/<index>.png`` (once; complete or absent)."""
    from PIL import Image

    if (folder / ".complete").is_file():
        return folder
    unknown = [c for c in classes if c not in CIFAR_CLASSES]
    if unknown:
        raise ValueError(f"unknown CIFAR-10 class {unknown[0]!r}; choose among {', '.join(CIFAR_CLASSES)}")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for split, ds in (("train", train_set), ("val", test_set)):
        for name in classes:
            label = CIFAR_CLASSES.index(name)
            index = [i for i, t in enumerate(ds.targets) if t == label][:max_per_class]
            (tmp / split / name).mkdir(parents=True)
            for i in index:
                Image.fromarray(ds.data[i]).save(tmp / split / name / f"{i:05d}.png")
    (tmp / ".complete").write_text("")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def run_cifar(seeds: tuple[int, ...], *, out: str | os.PathLike, pairs: tuple[str, ...] = tuple(PAIRS),
              cache_dir: str | os.PathLike | None = None, max_per_class: int | None = None,
              progress: Callable[[str], None] | None = None, **settings: Any) -> tuple[PaperRow, ...]:
    """Each pair with the quantum head and the linear baseline for every seed; one :class:`PaperRow` per pair.

    ``max_per_class`` keeps the first images of each class only (quick runs); ``settings``
    (``TrainConfig`` fields, e.g. ``weights="none"``) override the notebook's.
    """
    from qtransfer.config import resolve_config
    from qtransfer.pipeline import train_to

    train_set, test_set = ensure_cifar10(cache_dir)
    rows = []
    for key in pairs:
        pair = PAIRS[key]
        started = time.perf_counter()
        suffix = "" if max_per_class is None else f"-first{max_per_class}"
        folder = export_pair(train_set, test_set, pair.classes,
                             cifar_root(cache_dir).with_name("cifar10-pairs") / f"{key}{suffix}", max_per_class=max_per_class)
        acc: dict[str, list[float]] = {"quantum": [], "linear": []}
        n_params: dict[str, int] = {}
        for seed in seeds:
            for head in acc:
                if progress:
                    progress(f"cifar {key}: {head}, seed {seed}")
                config = resolve_config(folder, **{**pair.settings(), "head": head, "seed": seed, **settings})
                metrics = train_to(Path(out) / key / f"{head}-seed{seed}", config, cache_dir=cache_dir,
                                   progress=False, report=False)
                acc[head].append(metrics.final["val"].accuracy)
                n_params[head] = metrics.n_params
        a, b = pair.classes
        rows.append(PaperRow(
            "cifar", f"cifar-{key}", f"CQ: CIFAR-10 {a}s vs {b}s (Example 3)",
            Series(f"dressed quantum circuit (depth {pair.depth})", tuple(acc["quantum"]), pair.published,
                   n_params["quantum"]),
            (Series("classical Linear(512->2)", tuple(acc["linear"]), None, n_params["linear"]),), tuple(seeds),
            time.perf_counter() - started,
            notes="Accuracy on CIFAR's test images of the pair at the best epoch on them (the notebook's protocol)."
                  + ("" if pair.published is not None else " No published value in the notebook's outputs."),
            settings={**pair.settings(), "max_per_class": max_per_class, **{k: str(v) for k, v in settings.items()}}))
    return tuple(rows)

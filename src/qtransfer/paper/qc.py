"""QC: a frozen pre-trained photonic network A, a classical head trained on its features.

Settings are the notebook's (``q2c_transfer_learning.ipynb``), in
:data:`qtransfer.photonic.paper.QC`. Network A is the continuous-variable network of
Killoran et al. pre-trained on tetromino images, cut after 15 of its 25 layers
(:func:`~qtransfer.photonic.paper.qc_network_a`). The data are seven classes of noisy
two-mode coherent states ``|alpha_k + n1, beta_k + n2>``: the seven amplitude pairs of
:func:`~qtransfer.photonic.paper.qc_amplitudes` plus complex Gaussian noise (real and
imaginary parts each of std 0.6). A batch holds the seven classes once; per batch the
notebook draws seven real parts of the alpha noise, then seven imaginary parts, then the
same for beta, from ``numpy.random.RandomState(100)``: 1000 training batches, then 1000
test batches from the same stream. The features are the moduli of A's output amplitudes
on at most 3 photons per mode, renormalised (16 numbers,
:func:`~qtransfer.photonic.paper.qc_features`); the head is one ``Linear(16 -> 7)``
(Glorot-uniform weights, zero bias, as TensorFlow's ``fully_connected``), trained by Adam
(rate 0.01) with one step per batch. The accuracy is the mean over the test batches.

A is fixed, so every state's features are computed once, for all batches together, with
no gradient; only the head trains. A seed sets the head's initial weights and the noise
stream (``RandomState(100 + seed)``: seed 0 is the notebook's stream).

Baselines: the same head on the *classical* description of each state (the four noisy
real numbers ``Re/Im alpha, Re/Im beta``): what a classical network B gets when the
state's preparation is known; and the same head on the features of the input states
themselves (A cut after 0 layers): does the pre-trained part help?

Example:
    >>> from dataclasses import replace
    >>> from qtransfer.photonic.paper import QC
    >>> row, = run_qc((0,), replace(QC, epochs=100, test_batches=20))
    >>> row.key, 0.3 < row.model.values[0] <= 1.0
    ('qc', True)
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from qtransfer.photonic.paper import QC, QCSettings, qc_amplitudes

from .common import PaperRow, Series

__all__ = ["qc_noisy_amplitudes", "qc_dataset", "train_linear", "run_qc"]


def qc_noisy_amplitudes(batches: int, rng: np.random.RandomState, settings: QCSettings = QC) -> np.ndarray:
    """``(batches, 7, 2)`` complex amplitudes, drawn from ``rng`` in the notebook's order.

    Example:
        >>> a = qc_noisy_amplitudes(2, np.random.RandomState(100))
        >>> a.shape, a.dtype
        ((2, 7, 2), dtype('complex128'))
    """
    k = settings.n_classes
    noise = rng.normal(scale=settings.noise_scale, size=(batches, 4, k))  # per batch: Re a, Im a, Re b, Im b
    alpha = noise[:, 0] + 1j * noise[:, 1]
    beta = noise[:, 2] + 1j * noise[:, 3]
    return qc_amplitudes(settings.alpha)[None] + np.stack([alpha, beta], axis=-1)


def qc_dataset(batches: int, rng: np.random.RandomState, settings: QCSettings = QC, *, depth: int | None = None):
    """``(features, amplitudes_as_reals, labels)`` of ``batches`` batches, flattened to ``batches * 7`` rows.

    Features are A's (``depth`` layers, default the published 15), computed in one pass with no gradient.

    Example:
        >>> f, raw, y = qc_dataset(3, np.random.RandomState(100))
        >>> f.shape, raw.shape, y[:8].tolist()
        (torch.Size([21, 16]), torch.Size([21, 4]), [0, 1, 2, 3, 4, 5, 6, 0])
    """
    import torch

    from qtransfer.photonic.paper import qc_features, qc_state

    amps = torch.as_tensor(qc_noisy_amplitudes(batches, rng, settings).reshape(-1, 2))
    with torch.no_grad():
        state = qc_state(amps, depth=settings.depth if depth is None else depth, cutoff=settings.cutoff)
        features = qc_features(state, settings.image_dim)  # float64, as the head trains
    raw = torch.stack([amps.real, amps.imag], -1).flatten(1)  # Re a, Im a, Re b, Im b
    labels = torch.arange(settings.n_classes).repeat(batches)
    return features, raw, labels


def train_linear(x_train, y_train, x_test, y_test, *, seed: int, batch: int, lr: float) -> float:
    """A ``Linear`` head trained by Adam, one step per consecutive batch of ``batch`` rows; mean test accuracy."""
    import torch
    from torch import nn

    from qtransfer.training.loop import one_intra_op_thread
    from qtransfer.seeding import init_xavier_uniform_
    from qtransfer.training.optimizer import Adam

    torch.manual_seed(seed)
    head = init_xavier_uniform_(nn.Linear(x_train.shape[1], int(y_train.max()) + 1, dtype=x_train.dtype))
    optimizer = Adam(head.parameters(), lr=lr)
    with one_intra_op_thread():
        for start in range(0, x_train.shape[0], batch):
            loss = nn.functional.cross_entropy(head(x_train[start:start + batch]), y_train[start:start + batch])
            optimizer.step(list(torch.autograd.grad(loss, optimizer.params)))
        with torch.no_grad():
            return (head(x_test).argmax(-1) == y_test).double().mean().item()


def _feature_images(settings: QCSettings) -> list:
    """A's features of the seven noiseless states, as ``|psi|^2`` images (the notebook's picture)."""
    import torch

    from qtransfer.photonic.paper import qc_features, qc_state

    with torch.no_grad():
        f = qc_features(qc_state(torch.as_tensor(qc_amplitudes(settings.alpha)), depth=settings.depth,
                                 cutoff=settings.cutoff), settings.image_dim)
    d = settings.image_dim
    return np.round(f.square().reshape(-1, d, d).numpy(), 4).tolist()


def run_qc(seeds: tuple[int, ...], settings: QCSettings = QC, progress: Callable[[str], None] | None = None
           ) -> tuple[PaperRow]:
    """QC as published, with its two baselines, for every seed."""
    started = time.perf_counter()
    acc: dict[str, list[float]] = {"qc": [], "classical": [], "no_a": []}
    k = settings.n_classes
    for seed in seeds:
        if progress:
            progress(f"qc: seed {seed}")
        rng = np.random.RandomState(settings.data_seed + seed)
        f_train, raw_train, y_train = qc_dataset(settings.epochs, rng, settings)
        f_test, raw_test, y_test = qc_dataset(settings.test_batches, rng, settings)
        acc["qc"].append(train_linear(f_train, y_train, f_test, y_test, seed=seed, batch=k, lr=settings.lr))
        acc["classical"].append(train_linear(raw_train, y_train, raw_test, y_test, seed=seed, batch=k, lr=settings.lr))
        rng = np.random.RandomState(settings.data_seed + seed)
        g_train, _, _ = qc_dataset(settings.epochs, rng, settings, depth=0)
        g_test, _, _ = qc_dataset(settings.test_batches, rng, settings, depth=0)
        acc["no_a"].append(train_linear(g_train, y_train, g_test, y_test, seed=seed, batch=k, lr=settings.lr))
    model = Series("A (15 pre-trained layers) + Linear(16->7)", tuple(acc["qc"]), settings.published_accuracy, 16 * k + k)
    baselines = (Series("classical: Linear(4->7) on the noisy amplitudes", tuple(acc["classical"]), None, 4 * k + k),
                 Series("ablation: no pre-trained layers (A cut at 0)", tuple(acc["no_a"]), None, 16 * k + k))
    return (PaperRow(
        "qc", "qc", "QC: noisy coherent states, 7 classes", model, baselines, tuple(seeds), time.perf_counter() - started,
        notes="Mean accuracy over the test batches; the published value is one run (TensorFlow seed 1, data seed 100).",
        settings={"cutoff": settings.cutoff, "depth": settings.depth, "noise_scale": settings.noise_scale,
                  "train_batches": settings.epochs, "test_batches": settings.test_batches, "lr": settings.lr},
        figures={"feature_images": _feature_images(settings)}),)

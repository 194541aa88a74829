"""The paper's two pre-trained photonic networks, built from the shipped parameter files.

Mari et al., Quantum 4, 340 (2020), examples QC and QQ. The parameters ship in
``qtransfer/photonic/data/`` (Apache-2.0, from XanaduAI/quantum-transfer-learning; see
the README there). Settings are the notebooks' (``q2c_transfer_learning.ipynb``,
``q2q_transfer_learning.ipynb``), collected in :data:`QC` and :data:`QQ`.

**QC** (two modes, cutoff 11): the CV neural network of Killoran et al., pre-trained to
encode seven tetromino images, cut after its first 15 of 25 layers (:func:`qc_network_a`).
Each layer is ``BS(theta1, phi1); R(r1) on 0; S(sqr1, sqphi1) on 0; S(sqr2, sqphi2) on 1;
BS(theta2, phi2); R(r2) on 0; D(dr1, dphi1) on 0; D(dr2, dphi2) on 1; K(kappa1) on 0;
K(kappa2) on 1``, with squeezing, displacement and Kerr magnitudes clipped to [-1, 1] as in
the notebook. Its inputs are two-mode coherent states ``|alpha, beta>`` (the notebook
writes ``Dgate(alpha)`` with a complex amplitude, the Strawberry Fields 0.1x signature;
here that is ``D(|alpha|, arg alpha)`` on the vacuum). Its features
(:func:`qc_features`) are the notebook's: the ket projected on at most 3 photons per mode
(4 x 4), renormalised, and the *moduli of the amplitudes* ``|psi_{n1 n2}|`` (not their
squares), flattened to 16 numbers.

**QQ** (one mode, cutoff 15): circuit A is one layer ``R(r1); S(sq, 0); R(r2); D(d, 0);
R(r3); V(gamma)`` (magnitudes of sq, d, gamma clipped to [-1, 1]). The published notebook
writes the squeezing as ``Sgate(...)`` without ``| qmode``, so it is never applied:
``variant="published"`` (what produced the published numbers) leaves it out,
``variant="intended"`` applies it. The notebook's trainable circuit B repeats the same
layer with fresh parameters (:func:`qq_layer`), and its input states are
``|label>`` followed by ``D(1 - label, 0); R(r1); S(sq, 0); R(r2)`` (:func:`qq_input_circuit`).

Example:
    >>> a = qc_network_a()
    >>> a.n_modes, len(a.ops), QC.cutoff
    (2, 150, 11)
    >>> [op.gate for op in qq_circuit_a("published").ops], [op.gate for op in qq_circuit_a("intended").ops]
    (['R', 'R', 'D', 'R', 'V'], ['R', 'S', 'R', 'D', 'R', 'V'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from .circuit import Op, PhotonicCircuit

if TYPE_CHECKING:  # torch loads only when a function that returns tensors runs
    import torch

__all__ = [
    "QC",
    "QQ",
    "QCSettings",
    "QQSettings",
    "qc_amplitudes",
    "qc_features",
    "qc_network_a",
    "qc_parameters",
    "qc_state",
    "qq_circuit",
    "qq_circuit_a",
    "qq_input_circuit",
    "qq_input_state",
    "qq_layer",
    "qq_parameters",
]

VARIANTS = ("published", "intended")


@dataclass(frozen=True)
class QCSettings:
    """The QC notebook's settings (``q2c_transfer_learning.ipynb``)."""

    cutoff: int = 11
    depth: int = 15  # pre-trained layers kept (of 25)
    image_dim: int = 4  # features: photon numbers 0..3 per mode
    alpha: float = 1.4  # amplitude of the seven coherent input states
    noise_scale: float = 0.6  # std of the Gaussian noise on each real/imaginary part
    n_classes: int = 7
    disp_clip: float = 1.0
    sq_clip: float = 1.0
    kerr_clip: float = 1.0
    epochs: int = 1000  # training batches (each: the 7 states, one noise draw)
    test_batches: int = 1000
    lr: float = 0.01
    data_seed: int = 100  # numpy RandomState of the noise
    published_accuracy: float = 0.8067


@dataclass(frozen=True)
class QQSettings:
    """The QQ notebook's settings (``q2q_transfer_learning.ipynb``)."""

    cutoff: int = 15
    batch_size: int = 8
    batches: int = 500  # training steps; also the number of test batches
    pre_depth: int = 1  # layers of circuit A
    q_depth: int = 3  # trainable layers of circuit B
    rot_sd: float = 2 * math.pi  # input rotations uniform in [-rot_sd, rot_sd]
    sq_sd: float = 0.5  # input squeezing uniform in [-sq_sd, sq_sd]
    clip: float = 1.0
    active_sd: float = 0.001  # initial std of B's sq, d, gamma
    passive_sd: float = 0.001  # initial std of B's rotations
    lr: float = 0.01
    data_seed: int = 1
    published_accuracy: float = 0.8755


QC = QCSettings()
QQ = QQSettings()


def _load(name: str) -> np.ndarray:
    path = resources.files(__package__).joinpath("data", name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: this qtransfer install lacks the photonic parameter files; install from a "
            "checkout with `pip install -e .`, or add photonic/data/*.npy to the package data of pyproject.toml"
        )
    with path.open("rb") as f:
        return np.load(f)


def qc_parameters() -> np.ndarray:
    """The pre-trained QC network, ``(16, 25)`` float32 (rows as in ``data/README.md``).

    Example:
        >>> qc_parameters().shape
        (16, 25)
    """
    return _load("trained_params.npy")


def qq_parameters() -> np.ndarray:
    """The pre-trained QQ circuit A, ``(6, 1)`` float32: sq, d, r1, r2, r3, gamma.

    Example:
        >>> qq_parameters().shape
        (6, 1)
    """
    return _load("circuit_A.npy")


def _clip(value: np.floating, bound: float) -> float:
    return float(np.clip(value, -bound, bound))


@lru_cache(maxsize=64)
def qc_network_a(depth: int = QC.depth, settings: QCSettings = QC) -> PhotonicCircuit:
    """Network A of the QC example: the first ``depth`` pre-trained layers (fixed numbers; cached).

    Example:
        >>> len(qc_network_a(2).ops)
        20
        >>> qc_network_a(26)
        Traceback (most recent call last):
        ...
        ValueError: depth must be an integer in 0..25 (the pre-trained network has 25 layers), got 26
    """
    p = qc_parameters()
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= p.shape[1]:
        raise ValueError(
            f"depth must be an integer in 0..{p.shape[1]} (the pre-trained network has {p.shape[1]} layers), got {depth!r}"
        )
    ops: list[Op] = []
    for i in range(depth):
        r1, r2, t1, f1, t2, f2, s1, sf1, s2, sf2, d1, df1, d2, df2, k1, k2 = p[:, i]
        ops += [
            Op("BS", (0, 1), (float(t1), float(f1))),
            Op("R", (0,), (float(r1),)),
            Op("S", (0,), (_clip(s1, settings.sq_clip), float(sf1))),
            Op("S", (1,), (_clip(s2, settings.sq_clip), float(sf2))),
            Op("BS", (0, 1), (float(t2), float(f2))),
            Op("R", (0,), (float(r2),)),
            Op("D", (0,), (_clip(d1, settings.disp_clip), float(df1))),
            Op("D", (1,), (_clip(d2, settings.disp_clip), float(df2))),
            Op("K", (0,), (_clip(k1, settings.kerr_clip),)),
            Op("K", (1,), (_clip(k2, settings.kerr_clip),)),
        ]
    return PhotonicCircuit(2, tuple(ops))


def qc_amplitudes(alpha: float = QC.alpha) -> np.ndarray:
    """The seven noiseless input states of QC (one per class): ``(7, 2)`` complex amplitudes.

    Example:
        >>> qc_amplitudes()[4]
        array([0.+1.4j, 0.+1.4j])
    """
    a = np.array([alpha, -alpha, alpha, -alpha, 1j * alpha, -1j * alpha, 1j * alpha])
    b = np.array([alpha, alpha, -alpha, -alpha, 1j * alpha, 1j * alpha, -1j * alpha])
    return np.stack([a, b], axis=1).astype(np.complex128)


def qc_state(amplitudes: torch.Tensor, *, depth: int = QC.depth, cutoff: int = QC.cutoff) -> torch.Tensor:
    """Network A on the coherent states ``|alpha, beta>``: ``(batch, 2)`` complex amplitudes ->
    ``(batch, cutoff, cutoff)`` kets (complex64 for complex64 amplitudes, else complex128).

    A is fixed, so :func:`~qtransfer.photonic.simulator.simulate` joins it into one
    ``cutoff**2`` square matrix, computed once per depth, cutoff, dtype and device.

    Example:
        >>> import torch
        >>> psi = qc_state(torch.tensor(qc_amplitudes()))
        >>> psi.shape
        torch.Size([7, 11, 11])
    """
    import torch

    from . import simulator, states

    if not isinstance(amplitudes, torch.Tensor) or not amplitudes.is_complex():
        raise ValueError("amplitudes must be a complex tensor of shape (batch, 2), e.g. torch.tensor(qc_amplitudes())")
    if amplitudes.dim() != 2 or amplitudes.shape[1] != 2:
        raise ValueError(
            f"amplitudes must have shape (batch, 2), one complex amplitude per mode; got {tuple(amplitudes.shape)}"
        )
    r, phi = amplitudes.abs(), amplitudes.angle()
    ket = states.product(states.coherent(r[:, 0], phi[:, 0], cutoff), states.coherent(r[:, 1], phi[:, 1], cutoff))
    return simulator.simulate(qc_network_a(depth), ket)


def qc_features(state: torch.Tensor, image_dim: int = QC.image_dim) -> torch.Tensor:
    """The notebook's features of a QC output ket: ``|psi|`` on ``n1, n2 < image_dim``,
    renormalised on that subspace, flattened: ``(batch, image_dim**2)`` real.

    Example:
        >>> import torch
        >>> qc_features(qc_state(torch.tensor(qc_amplitudes()))).shape
        torch.Size([7, 16])
    """
    if state.dim() != 3 or state.shape[1] < image_dim or image_dim < 1:
        raise ValueError(
            f"state must be (batch, cutoff, cutoff) with cutoff >= image_dim={image_dim}; got {tuple(state.shape)}"
        )
    sub = state[:, :image_dim, :image_dim].abs()
    sub = sub / sub.square().sum((1, 2), keepdim=True).sqrt()
    return sub.flatten(1)


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return variant


@lru_cache(maxsize=16)
def qq_circuit_a(variant: str = "published", settings: QQSettings = QQ) -> PhotonicCircuit:
    """Circuit A of the QQ example (fixed numbers); ``"published"`` omits the squeezing.

    Example:
        >>> qq_circuit_a("intended").ops[1]
        Op(gate='S', modes=(0,), params=(0.7160148024559021, 0.0))
    """
    _check_variant(variant)
    sq, d, r1, r2, r3, gamma = qq_parameters()[:, 0]
    ops = [Op("R", (0,), (float(r1),))]
    if variant == "intended":
        ops.append(Op("S", (0,), (_clip(sq, settings.clip), 0.0)))
    ops += [
        Op("R", (0,), (float(r2),)),
        Op("D", (0,), (_clip(d, settings.clip), 0.0)),
        Op("R", (0,), (float(r3),)),
        Op("V", (0,), (_clip(gamma, settings.clip),)),
    ]
    return PhotonicCircuit(1, tuple(ops))


def qq_layer(index: int) -> tuple[Op, ...]:
    """One trainable layer of circuit B; parameters ``r1_i, sq_i, r2_i, d_i, r3_i, gamma_i``.

    The notebook clips ``sq``, ``d`` and ``gamma`` to ``[-QQ.clip, QQ.clip]``; clamp them
    before passing them in.

    Example:
        >>> [op.params for op in qq_layer(0)][:2]
        [('r1_0',), ('sq_0', 0.0)]
    """
    i = index
    return (
        Op("R", (0,), (f"r1_{i}",)),
        Op("S", (0,), (f"sq_{i}", 0.0)),
        Op("R", (0,), (f"r2_{i}",)),
        Op("D", (0,), (f"d_{i}", 0.0)),
        Op("R", (0,), (f"r3_{i}",)),
        Op("V", (0,), (f"gamma_{i}",)),
    )


def qq_input_circuit() -> PhotonicCircuit:
    """The QQ data generator after ``|label>``: ``D(gen_d, 0); R(gen_r1); S(gen_sq, 0); R(gen_r2)``
    with ``gen_d = 1 - label`` (label 0: coherent state, Gaussian; label 1: ``|1>``, non-Gaussian).

    Example:
        >>> qq_input_circuit().parameter_names
        ('gen_d', 'gen_r1', 'gen_sq', 'gen_r2')
    """
    return PhotonicCircuit(
        1,
        (
            Op("D", (0,), ("gen_d", 0.0)),
            Op("R", (0,), ("gen_r1",)),
            Op("S", (0,), ("gen_sq", 0.0)),
            Op("R", (0,), ("gen_r2",)),
        ),
    )


def qq_input_state(labels: torch.Tensor, cutoff: int = QQ.cutoff, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``|label>`` for each label (0 or 1): ``(batch, cutoff)`` kets.

    Example:
        >>> import torch
        >>> qq_input_state(torch.tensor([0, 1]), 3).real
        tensor([[1., 0., 0.],
                [0., 1., 0.]], dtype=torch.float64)
    """
    import torch

    from .gates import check_cutoff, complex_dtype

    check_cutoff(cutoff)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"labels must be a 1-d tensor of 0 (Gaussian) and 1 (non-Gaussian), got {labels.tolist()!r}")
    out = torch.nn.functional.one_hot(labels.long(), cutoff).to(complex_dtype(dtype or torch.float64))
    return out.to(labels.device)


@lru_cache(maxsize=16)
def qq_circuit(variant: str = "published", q_depth: int = QQ.q_depth) -> PhotonicCircuit:
    """The whole QQ network after ``|label>``: data generator, circuit A, ``q_depth`` layers of B.

    Example:
        >>> len(qq_circuit().parameter_names)   # 4 generator + 3 x 6 trainable
        22
    """
    ops = qq_input_circuit().ops + qq_circuit_a(variant).ops
    for i in range(q_depth):
        ops += qq_layer(i)
    return PhotonicCircuit(1, ops)

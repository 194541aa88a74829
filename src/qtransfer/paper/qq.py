"""QQ: a frozen photonic circuit A, trainable photonic layers B after it, Gaussian vs non-Gaussian states.

Settings are the notebook's (``q2q_transfer_learning.ipynb``), in
:data:`qtransfer.photonic.paper.QQ`. A state of label 0 is the coherent state ``D(1)|0>``
(Gaussian), of label 1 the Fock state ``|1>`` (non-Gaussian); either then goes through a
random Gaussian ``R(r1) S(s) R(r2)`` with ``r1, r2`` uniform in ``[-2 pi, 2 pi]`` and ``s``
uniform in ``[-0.5, 0.5]`` (:func:`~qtransfer.photonic.paper.qq_input_circuit`). Per batch
of 8 the notebook draws from ``numpy.random.RandomState(1)``: the labels, ``s``, ``r1``,
``r2`` and a third rotation it never uses (drawn here too, so the stream is the same).
Circuit A is fixed; B is three layers ``R S R D R V`` whose squeezing, displacement and
cubic-phase strengths are clipped to ``[-1, 1]``, all starting as ``0.001 * randn``. The
output is ``p0``, the probability of the vacuum: the loss is the cross-entropy of ``p0``
against the label (label 1 <-> vacuum), the prediction ``p0 > 0.5``. Adam (rate 0.01),
500 training batches, then the mean accuracy over 500 test batches from the same stream.
Everything runs at cutoff 15 and trains through the simulator.

Two variants of A (:func:`~qtransfer.photonic.paper.qq_circuit_a`): ``published``, what
the notebook ran (its squeezing gate is written without a mode and never applied), and
``intended``, with the squeezing applied. A seed sets B's initial weights and the data
stream (``RandomState(1 + seed)``: seed 0 is the notebook's stream).

Example:
    >>> from dataclasses import replace
    >>> from qtransfer.photonic.paper import QQ
    >>> rows = run_qq((0,), replace(QQ, batches=30), variants=("published",))
    >>> rows[0].key, 0.0 <= rows[0].model.values[0] <= 1.0
    ('qq-published', True)
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from qtransfer.photonic.paper import QQ, QQSettings

from .common import PaperRow, Series

__all__ = ["VARIANT_TITLES", "qq_batches", "QQModel", "train_qq", "run_qq"]

VARIANT_TITLES = {"published": "A as the notebook ran it (no squeezing)", "intended": "A as intended (with squeezing)"}
_ACTIVE = ("sq", "d", "gamma")  # clipped to [-clip, clip]
_NAMES = ("r1", "sq", "r2", "d", "r3", "gamma")


def qq_batches(batches: int, rng: np.random.RandomState, settings: QQSettings = QQ) -> dict[str, np.ndarray]:
    """``batches`` batches drawn in the notebook's order: ``labels`` ``(batches, batch_size)`` and the
    generator's ``gen_sq``, ``gen_r1``, ``gen_r2`` of the same shape.

    Example:
        >>> b = qq_batches(2, np.random.RandomState(1))
        >>> b["labels"].shape, sorted(b)
        ((2, 8), ['gen_r1', 'gen_r2', 'gen_sq', 'labels'])
    """
    n = settings.batch_size
    out: dict[str, list] = {"labels": [], "gen_sq": [], "gen_r1": [], "gen_r2": []}
    for _ in range(batches):
        out["labels"].append(rng.randint(2, size=n))
        out["gen_sq"].append(rng.uniform(-settings.sq_sd, settings.sq_sd, size=n))
        out["gen_r1"].append(rng.uniform(-settings.rot_sd, settings.rot_sd, size=n))
        out["gen_r2"].append(rng.uniform(-settings.rot_sd, settings.rot_sd, size=n))
        rng.uniform(-settings.rot_sd, settings.rot_sd, size=n)  # the notebook's unused third rotation
    return {k: np.stack(v) for k, v in out.items()}


class QQModel:
    """Circuit B's trainable parameters (``(q_depth,)`` each) and the whole network's ``p0``."""

    def __init__(self, variant: str, settings: QQSettings = QQ) -> None:
        import torch

        from qtransfer.photonic.paper import qq_circuit

        self.settings = settings
        self.circuit = qq_circuit(variant, settings.q_depth)
        self.weights = {name: (settings.active_sd if name in _ACTIVE else settings.passive_sd)
                        * torch.randn(settings.q_depth, dtype=torch.float64) for name in _NAMES}
        for w in self.weights.values():
            w.requires_grad_(True)

    def p0(self, labels, gen: dict):
        """The vacuum probability of each output state: ``(batch,)``."""
        import torch

        from qtransfer.photonic import measure, simulate
        from qtransfer.photonic.paper import qq_input_state

        labels = torch.as_tensor(labels)
        params = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in gen.items()}
        params["gen_d"] = (1 - labels).to(torch.float64)
        c = self.settings.clip
        for name, w in self.weights.items():
            w = w.clamp(-c, c) if name in _ACTIVE else w
            for i in range(self.settings.q_depth):
                params[f"{name}_{i}"] = w[i]
        psi = simulate(self.circuit, qq_input_state(labels, self.settings.cutoff), params)
        return measure.fock_probabilities(psi)[:, 0]


def _loss(p0, labels):
    import torch

    y = torch.as_tensor(labels, dtype=torch.float64)
    eps = 1e-7
    return (-y * torch.log(p0 + eps) - (1 - y) * torch.log(1 - p0 + eps)).mean()


def _accuracy(p0, labels) -> float:
    return float(((p0.detach().numpy() > 0.5).astype(int) == np.asarray(labels).ravel()).mean())


def train_qq(variant: str, seed: int, settings: QQSettings = QQ) -> tuple[QQModel, float]:
    """Train B after A (``variant``) with the published protocol; returns ``(model, test accuracy)``."""
    import torch

    from qtransfer.training.loop import one_intra_op_thread
    from qtransfer.training.optimizer import Adam

    torch.manual_seed(seed)
    model = QQModel(variant, settings)
    rng = np.random.RandomState(settings.data_seed + seed)
    train, test = qq_batches(settings.batches, rng, settings), qq_batches(settings.batches, rng, settings)
    params = list(model.weights.values())
    optimizer = Adam(params, lr=settings.lr)
    gen_keys = ("gen_sq", "gen_r1", "gen_r2")
    with one_intra_op_thread():
        for b in range(settings.batches):
            loss = _loss(model.p0(train["labels"][b], {k: train[k][b] for k in gen_keys}), train["labels"][b])
            optimizer.step(list(torch.autograd.grad(loss, params)))
        with torch.no_grad():  # all test batches at once: the mean of equal-size batch accuracies
            p0 = model.p0(test["labels"].ravel(), {k: test[k].ravel() for k in gen_keys})
    return model, _accuracy(p0, test["labels"])


def _distributions(settings: QQSettings, n_each: int = 3) -> dict[str, list]:
    """Photon-number distributions of a few input states of each class (seeded), for the report."""
    import torch

    from qtransfer.photonic import PhotonicCircuit, measure, simulate
    from qtransfer.photonic.paper import qq_input_circuit, qq_input_state

    b = qq_batches(4, np.random.RandomState(settings.data_seed), settings)
    labels = np.array([0] * n_each + [1] * n_each)
    gen = {k: torch.as_tensor(b[k].ravel()[: 2 * n_each]) for k in ("gen_sq", "gen_r1", "gen_r2")}
    gen["gen_d"] = torch.as_tensor(1.0 - labels)
    circuit: PhotonicCircuit = qq_input_circuit()
    with torch.no_grad():
        p = measure.fock_probabilities(simulate(circuit, qq_input_state(torch.as_tensor(labels), settings.cutoff), gen))
    return {"labels": labels.tolist(), "squeezing": np.round(gen["gen_sq"].numpy(), 3).tolist(),
            "probabilities": np.round(p.numpy(), 4).tolist()}


def run_qq(seeds: tuple[int, ...], settings: QQSettings = QQ, variants: tuple[str, ...] = ("published", "intended"),
           progress: Callable[[str], None] | None = None) -> tuple[PaperRow, ...]:
    """QQ for each variant of circuit A and every seed: one :class:`PaperRow` per variant."""
    rows = []
    for variant in variants:
        started = time.perf_counter()
        values = []
        for seed in seeds:
            if progress:
                progress(f"qq ({variant}): seed {seed}")
            values.append(train_qq(variant, seed, settings)[1])
        published = settings.published_accuracy if variant == "published" else None
        n_params = len(_NAMES) * settings.q_depth
        rows.append(PaperRow(
            "qq", f"qq-{variant}", f"QQ: Gaussian vs non-Gaussian, {VARIANT_TITLES[variant]}",
            Series(f"A ({variant}) + {settings.q_depth} trainable CV layers", tuple(values), published, n_params), (),
            tuple(seeds), time.perf_counter() - started,
            notes=("The published value is one run of the notebook, whose circuit A never applied its squeezing gate."
                   if variant == "published" else "The paper's circuit A with its squeezing applied: not published."),
            settings={"variant": variant, "cutoff": settings.cutoff, "q_depth": settings.q_depth,
                      "batches": settings.batches, "batch_size": settings.batch_size, "lr": settings.lr},
            figures={"distributions": _distributions(settings)} if variant == variants[0] else {}))
    return tuple(rows)

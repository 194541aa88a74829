"""Measurement: exact ``<Z_i>`` of every wire, or its finite-shot estimate."""

from __future__ import annotations

from functools import lru_cache

import torch

from .states import bit_table

__all__ = ["expval_z", "probabilities", "sample_expval_z", "shot_estimate", "z_signs"]


@lru_cache(maxsize=64)
def z_signs(n_qubits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(2**n, n)`` matrix of Z eigenvalues: +1 where wire i's bit is 0, -1 where it is 1."""
    return (1 - 2 * bit_table(n_qubits, device).T).to(dtype)


def probabilities(state: torch.Tensor) -> torch.Tensor:
    return state.abs().square() if state.is_complex() else state.square()


def expval_z(state: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Exact ``<Z_i>`` for every wire: ``(B, 2**n)`` states -> ``(B, n)``.

    Up to 12 qubits one product with the ``(2**n, n)`` sign matrix; beyond, two passes
    over the probabilities (marginals of the first and of the last half of the wires),
    then small sign matrices.
    """
    probs = probabilities(state)
    if n_qubits <= 12:
        return probs @ z_signs(n_qubits, probs.device, probs.dtype)
    head = n_qubits // 2
    tail = n_qubits - head
    grid = probs.view(-1, 2**head, 2**tail)
    first = grid.sum(2) @ z_signs(head, probs.device, probs.dtype)
    last = grid.sum(1) @ z_signs(tail, probs.device, probs.dtype)
    return torch.cat([first, last], -1)


def sample_expval_z(
    state: torch.Tensor, n_qubits: int, shots: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Finite-shot estimate of ``<Z_i>`` from ``shots`` measurements in the computational basis.

    The returned tensor carries the exact expectation's gradient (a straight-through
    estimator): the forward value is the shot estimate, the backward pass is analytic.
    """
    return shot_estimate(probabilities(state), expval_z(state, n_qubits), shots, generator)


def shot_estimate(
    probs: torch.Tensor, exact: torch.Tensor, shots: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``exact`` ``(B, n)`` with its forward value replaced by the mean ``(-1)**bit`` of ``shots``
    bit strings drawn from ``probs`` ``(B, 2**n)`` (wire 0 the most significant bit); the
    gradient stays the exact one (straight through)."""
    n_qubits = exact.shape[-1]
    samples = torch.multinomial(probs.detach().clamp_min(0), shots, replacement=True, generator=generator)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=samples.device)
    bits = (samples[..., None] >> shifts) & 1
    estimate = (1 - 2 * bits).to(exact.dtype).mean(dim=1)
    return exact + (estimate - exact).detach()

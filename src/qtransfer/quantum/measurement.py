"""Measurement: exact ``<Z_i>`` of every wire, or its finite-shot estimate."""

from __future__ import annotations

from functools import lru_cache

import torch

from .states import bit_table

__all__ = ["MAX_SHOTS", "expval_z", "probabilities", "sample_counts", "sample_expval_z", "shot_estimate", "z_signs"]


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
    gradient stays the exact one (straight through).

    Only the counts of each bit string are drawn (:func:`sample_counts`), never the ``shots``
    samples themselves: memory and time do not grow with ``shots``.
    """
    n_qubits = exact.shape[-1]
    counts = sample_counts(probs.detach(), shots, generator)
    estimate = (counts @ z_signs(n_qubits, counts.device, counts.dtype)) / shots
    return exact + (estimate.to(exact.dtype) - exact).detach()


#: the most shots whose counts float64 holds exactly
MAX_SHOTS = 2**53


def sample_counts(probs: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Multinomial counts ``(B, 2**n)`` (float64) of ``shots`` draws from each row of ``probs``, wire by wire:
    each bit string's count is split between its two extensions by one binomial draw, so ``n``
    batched draws give the counts for any number of shots. Same distribution as counting
    ``torch.multinomial(probs, shots, replacement=True)``.

    Example:
        >>> sample_counts(torch.tensor([[0.5, 0.0, 0.0, 0.5]]), 10**12, torch.Generator().manual_seed(0)).sum().item()
        1000000000000.0
    """
    if not 1 <= shots <= MAX_SHOTS:
        raise ValueError(f"shots must be between 1 and 2**53, got {shots}")
    p = probs.to(torch.float64).clamp_min(0)
    levels = [p]  # the probability of each prefix of the bit string, longest first
    while levels[-1].shape[-1] > 1:
        levels.append(levels[-1].unflatten(-1, (-1, 2)).sum(-1))
    counts = torch.full((p.shape[0], 1), float(shots), dtype=torch.float64, device=p.device)
    for parent, children in zip(levels[:0:-1], levels[-2::-1]):
        pairs = children.unflatten(-1, (-1, 2))
        first = torch.where(parent > 0, pairs[..., 0] / parent.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
        left = torch.binomial(counts, first.clamp(0, 1), generator=generator)
        counts = torch.stack([left, counts - left], -1).flatten(-2)
    return counts

"""Outputs of a batch of states: Fock probabilities, the norm inside the cutoff, ``<n>``, ``<x>``, ``<p>``.

Expectation values are those of the truncated state as it is, ``<psi|O|psi>`` with the
truncated operator, *not* divided by the norm: this is what Strawberry Fields' ``fock``
backend reports, and it makes the weight lost to the truncation visible. Divide by
:func:`norm` for the value conditioned on staying inside the cutoff. ``hbar = 2`` by
default: ``x = sqrt(hbar/2)(a + a^dagger)``, ``p = -i sqrt(hbar/2)(a - a^dagger)``.

Example:
    >>> import torch
    >>> from qtransfer.photonic import states
    >>> psi = states.coherent(torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64), 4)
    >>> round(norm(psi).item(), 6)   # 1 - P(n >= 4) for |alpha|^2 = 1
    0.981012
"""

from __future__ import annotations

import math

import torch

from .gates import HBAR
from .simulator import _check_mode, _check_state

__all__ = ["fock_probabilities", "mean_p", "mean_photon", "mean_x", "norm"]


def fock_probabilities(state: torch.Tensor) -> torch.Tensor:
    """``|<n_1, ..., n_k|psi>|^2``: real, same shape as the state.

    Example:
        >>> from qtransfer.photonic import states
        >>> fock_probabilities(states.fock([1], 3))
        tensor([[0., 1., 0.]], dtype=torch.float64)
    """
    _check_state(state)
    return state.real.square() + state.imag.square()


def norm(state: torch.Tensor) -> torch.Tensor:
    """The probability kept inside the cutoff, ``sum |psi|^2`` (Strawberry Fields' ``trace``): ``(batch,)``.

    Example:
        >>> from qtransfer.photonic import states
        >>> norm(states.vacuum(2, 3, batch=2))
        tensor([1., 1.], dtype=torch.float64)
    """
    return fock_probabilities(state).flatten(1).sum(-1)


def mean_photon(state: torch.Tensor, mode: int) -> torch.Tensor:
    """``<psi| n_mode |psi>``: ``(batch,)``.

    Example:
        >>> from qtransfer.photonic import states
        >>> mean_photon(states.fock([0, 2], 3), 1)
        tensor([2.], dtype=torch.float64)
    """
    n_modes, cutoff = _check_state(state)
    _check_mode(mode, n_modes)
    probs = fock_probabilities(state).movedim(1 + mode, -1).reshape(state.shape[0], -1, cutoff).sum(1)
    return probs @ torch.arange(cutoff, dtype=probs.dtype, device=probs.device)


def _mean_a(state: torch.Tensor, mode: int) -> torch.Tensor:
    """``<psi| a_mode |psi> = sum_n sqrt(n+1) conj(psi_n) psi_{n+1}`` (other modes summed)."""
    n_modes, cutoff = _check_state(state)
    _check_mode(mode, n_modes)
    moved = state.movedim(1 + mode, -1).reshape(state.shape[0], -1, cutoff)
    root = torch.sqrt(torch.arange(1, cutoff, dtype=state.real.dtype, device=state.device))
    return (moved[..., :-1].conj() * moved[..., 1:] * root).sum((1, 2))


def mean_x(state: torch.Tensor, mode: int, hbar: float = HBAR) -> torch.Tensor:
    """``<x> = sqrt(2 hbar) Re <a>``: ``(batch,)``.

    Example:
        >>> import torch
        >>> from qtransfer.photonic import states
        >>> psi = states.coherent(torch.tensor([0.5], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64), 20)
        >>> round(mean_x(psi, 0).item(), 6)   # sqrt(2 hbar) * 0.5 with hbar = 2
        1.0
    """
    return math.sqrt(2 * hbar) * _mean_a(state, mode).real


def mean_p(state: torch.Tensor, mode: int, hbar: float = HBAR) -> torch.Tensor:
    """``<p> = sqrt(2 hbar) Im <a>``: ``(batch,)``.

    Example:
        >>> import torch
        >>> from qtransfer.photonic import states
        >>> psi = states.coherent(torch.tensor([0.5], dtype=torch.float64), torch.tensor([torch.pi / 2], dtype=torch.float64), 20)
        >>> round(mean_p(psi, 0).item(), 6)
        1.0
    """
    return math.sqrt(2 * hbar) * _mean_a(state, mode).imag

"""State preparation: batched kets in the truncated Fock basis.

A state of ``n_modes`` modes is a complex tensor of shape ``(batch,) + (cutoff,) * n_modes``
(axis ``1 + k`` is mode ``k``); complex64 or complex128. Preparations are exact and
*not* renormalised: a coherent state keeps the amplitudes ``e^{-|alpha|^2/2} alpha^n / sqrt(n!)``
for ``n < cutoff``, so the weight lost to the truncation shows in
:func:`qtransfer.photonic.measure.norm` (as in Strawberry Fields' ``fock`` backend).

Example:
    >>> import torch
    >>> alpha = coherent(torch.tensor([0.5]), torch.tensor([0.0]), 6)   # float32 -> complex64
    >>> psi = product(alpha, fock([1], 6, dtype=torch.float32))
    >>> psi.shape, psi.dtype
    (torch.Size([1, 6, 6]), torch.complex64)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .gates import _pair, check_cutoff, complex_dtype

__all__ = ["coherent", "fock", "from_ket", "product", "vacuum"]


def _complex(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.complex64, torch.complex128) else complex_dtype(dtype)


def vacuum(
    n_modes: int,
    cutoff: int,
    *,
    batch: int = 1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``|0, ..., 0>`` repeated ``batch`` times; ``dtype`` is the real (or complex) precision.

    Example:
        >>> vacuum(2, 3, batch=4).shape
        torch.Size([4, 3, 3])
    """
    return fock([0] * n_modes, cutoff, batch=batch, dtype=dtype, device=device, n_modes=n_modes)


def fock(
    photons: Sequence[int],
    cutoff: int,
    *,
    n_modes: int | None = None,
    batch: int = 1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The Fock state ``|photons[0], photons[1], ...>`` repeated ``batch`` times.

    Example:
        >>> fock([2], 4)[0].real
        tensor([0., 0., 1., 0.], dtype=torch.float64)
        >>> fock([4], 4)
        Traceback (most recent call last):
        ...
        ValueError: photon number 4 of mode 0 is outside the cutoff 4 (levels 0..3); raise the cutoff
    """
    cutoff = check_cutoff(cutoff)
    photons = list(photons)
    if n_modes is not None and len(photons) != n_modes:
        raise ValueError(f"photons {photons!r} gives {len(photons)} modes but n_modes={n_modes}")
    if not photons:
        raise ValueError("photons must name at least one mode, e.g. [0]")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    for k, n in enumerate(photons):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"photon number of mode {k} must be an integer >= 0, got {n!r}")
        if n >= cutoff:
            raise ValueError(
                f"photon number {n} of mode {k} is outside the cutoff {cutoff} (levels 0..{cutoff - 1}); raise the cutoff"
            )
    state = torch.zeros((batch,) + (cutoff,) * len(photons), dtype=_complex(dtype), device=device)
    state[(slice(None), *photons)] = 1
    return state


def coherent(r: torch.Tensor | float, phi: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """Single-mode coherent states ``|r e^{i phi}>``, one per entry: ``shape + (cutoff,)``.

    Amplitudes ``e^{-r^2/2} (r e^{i phi})^n / sqrt(n!)``, the first column of
    :func:`~qtransfer.photonic.gates.displacement`; differentiable in ``r`` and ``phi``.

    Example:
        >>> import torch
        >>> c = coherent(torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64), 3)
        >>> [round(v, 6) for v in c.real.tolist()]
        [0.606531, 0.606531, 0.428882]
    """
    cutoff = check_cutoff(cutoff)
    r, phi, out = _pair(r, phi, ("r", "phi"))
    n = torch.arange(cutoff, dtype=r.dtype, device=r.device)
    log_fact = 0.5 * torch.lgamma(n + 1)
    mag = torch.exp(-0.5 * r.unsqueeze(-1) ** 2 - log_fact) * torch.pow(r.unsqueeze(-1), n)
    angle = phi.unsqueeze(-1) * n
    return torch.polar(torch.ones_like(angle), angle).to(out) * mag.to(out)


def product(*kets: torch.Tensor) -> torch.Tensor:
    """Join single-mode kets ``(batch, cutoff)`` (or ``(cutoff,)``) into ``(batch, cutoff, ..., cutoff)``.

    Example:
        >>> import torch
        >>> product(fock([1], 3), fock([0], 3))[0, 1, 0].item()
        (1+0j)
    """
    if not kets:
        raise ValueError("product needs at least one single-mode ket")
    kets = tuple(k.unsqueeze(0) if k.dim() == 1 else k for k in kets)
    for i, k in enumerate(kets):
        if k.dim() != 2:
            raise ValueError(f"ket {i} must have shape (batch, cutoff) or (cutoff,), got {tuple(k.shape)}")
        if k.shape[-1] != kets[0].shape[-1]:
            raise ValueError(f"ket {i} has cutoff {k.shape[-1]} but ket 0 has {kets[0].shape[-1]}; use one cutoff")
    batch = max(k.shape[0] for k in kets)
    state = kets[0].expand(batch, -1)
    for k in kets[1:]:
        state = state.unsqueeze(-1) * k.reshape((k.shape[0],) + (1,) * (state.dim() - 1) + (k.shape[-1],))
    return state


def from_ket(ket: torch.Tensor, n_modes: int) -> torch.Tensor:
    """An arbitrary ket as a batched state: ``(cutoff,)*n_modes`` or ``(batch,) + (cutoff,)*n_modes``.

    Real float tensors become complex of the same precision; the ket is used as given
    (not normalised).

    Example:
        >>> import torch
        >>> from_ket(torch.tensor([0.6, 0.8]), 1)
        tensor([[0.6000+0.j, 0.8000+0.j]])
        >>> from_ket(torch.ones(2, 3), 2)
        Traceback (most recent call last):
        ...
        ValueError: a ket of 2 modes has every mode axis the same length (the cutoff); got shape (2, 3)
    """
    if not isinstance(ket, torch.Tensor):
        raise TypeError(f"ket must be a torch.Tensor, got {type(ket).__name__}")
    shape = tuple(ket.shape)
    if ket.dim() == n_modes:
        ket = ket.unsqueeze(0)
    if ket.dim() != n_modes + 1:
        raise ValueError(
            f"a ket of {n_modes} mode(s) has shape (cutoff,)*{n_modes} or (batch,)+(cutoff,)*{n_modes}; got {shape}"
        )
    dims = set(ket.shape[1:])
    if len(dims) != 1:
        raise ValueError(
            f"a ket of {n_modes} modes has every mode axis the same length (the cutoff); got shape {shape}"
        )
    check_cutoff(ket.shape[1])
    if not ket.is_complex():
        ket = ket.to(complex_dtype(ket.dtype))
    return ket

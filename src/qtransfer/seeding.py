"""Initial weights that every CPU draws alike.

A seeded run must give the same numbers on any machine. Torch's own initialisers do not:
``torch.randn`` in float32 (16 values or more) takes a vectorised Box-Muller path only in
the AVX2/AVX-512 builds of its kernels, and ``uniform_(a, b)`` scales with a fused
multiply-add there, so ``ATEN_CPU_CAPABILITY=default`` and ``avx2`` draw different initial
weights from the same seed (measured: ``nn.Linear(1280, 4)`` and ``randn(24)`` differ in
their last bits; the chaotic spirals training then ends at 0.745 or 0.595). The draws here
are float64 on the CPU (``torch.randn`` and ``torch.rand`` in float64 take the same path on
every capability), scaled by separate float64 operations (one rounding each, no fused
multiply-add possible), then cast to the parameter's dtype and device: the same bits on
every CPU, and on CUDA too. ``tests/test_cpu_independence.py`` holds that.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> w = normal((2, 3), 0.01, dtype=torch.float32)
    >>> w.shape, w.dtype
    (torch.Size([2, 3]), torch.float32)
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["normal", "uniform", "init_linear_", "init_xavier_uniform_"]


def normal(shape, std: float, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
           ) -> torch.Tensor:
    """``std * randn(shape)`` drawn in float64 on the CPU (torch's global generator), then cast."""
    draw = torch.randn(tuple(shape), dtype=torch.float64) * std
    return draw.to(dtype=dtype or torch.get_default_dtype(), device=device)


def uniform(shape, low: float, high: float, *, dtype: torch.dtype | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """``U(low, high)`` drawn in float64 on the CPU (torch's global generator), then cast."""
    draw = torch.rand(tuple(shape), dtype=torch.float64) * (high - low) + low
    return draw.to(dtype=dtype or torch.get_default_dtype(), device=device)


@torch.no_grad()
def init_linear_(linear: nn.Linear) -> nn.Linear:
    """PyTorch's default initialisation of ``nn.Linear`` (weight and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
    what ``kaiming_uniform_(a=sqrt(5))`` gives) drawn with :func:`uniform`; returns ``linear``."""
    bound = 1.0 / math.sqrt(linear.in_features) if linear.in_features > 0 else 0.0
    for p in (linear.weight, linear.bias):
        if p is not None:
            p.copy_(uniform(p.shape, -bound, bound, dtype=p.dtype, device=p.device))
    return linear


@torch.no_grad()
def init_xavier_uniform_(linear: nn.Linear) -> nn.Linear:
    """Glorot-uniform weight (``nn.init.xavier_uniform_``'s distribution) and zero bias, drawn with :func:`uniform`."""
    bound = math.sqrt(6.0 / (linear.in_features + linear.out_features))
    linear.weight.copy_(uniform(linear.weight.shape, -bound, bound, dtype=linear.weight.dtype,
                                device=linear.weight.device))
    if linear.bias is not None:
        linear.bias.zero_()
    return linear

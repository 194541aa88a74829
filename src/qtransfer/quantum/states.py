"""States of the embedding: every wire's single-qubit state and their Kronecker product.

Every embedding prepares a *product* state, so it is built as one 2-vector per wire
(one ``cos`` of the angles with phase offsets: ``sin a = cos(a - pi/2)``) joined by
Kronecker products instead of ``2n`` gate applications. The gate matrices, the CNOT
permutation and the bit tables that the dense and statevector modes share live here too.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .circuit import CircuitSpec

__all__ = [
    "angle_offsets", "bit_table", "cnot_permutation", "common_dtype", "complex_dtype", "embed", "kron_matrices",
    "kron_vectors", "product_state", "rotation_matrices", "rx_phases", "wire_states", "zero_state",
]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def zero_state(batch: int, dim: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(batch, dim)``: the first basis vector (``|0...0>``) for every sample."""
    state = torch.zeros(batch, dim, dtype=dtype, device=device)
    state[:, 0] = 1
    return state


@lru_cache(maxsize=64)
def angle_offsets(kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Phase offsets turning one ``cos`` into several entries: ``sin a = cos(a - pi/2)``."""
    q = math.pi / 4
    values = {
        "ry": (0.0, -2 * q),  # RY(x)|0> = (cos x/2, sin x/2)
        "hadamard_ry": (q, -q),  # RY(x)|+> = (cos(x/2 + pi/4), sin(x/2 + pi/4))
        "ry_matrix": (0.0, 2 * q, -2 * q, 0.0),  # RY = [[c, -s], [s, c]] row-major
    }[kind]
    return torch.tensor(values, device=device, dtype=dtype)


def ry_matrices(theta: torch.Tensor) -> torch.Tensor:
    """RY matrices, shape ``theta.shape + (2, 2)``, in two torch operations."""
    off = angle_offsets("ry_matrix", theta.device, theta.dtype)
    return torch.cos(torch.add(off, theta.unsqueeze(-1), alpha=0.5)).unflatten(-1, (2, 2))


def rot_matrices(phi: torch.Tensor, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), shape ``phi.shape + (2, 2)``."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    plus, minus = (phi + omega) / 2, (phi - omega) / 2
    e = lambda a: torch.polar(torch.ones_like(a), a)
    return torch.stack(
        [
            torch.stack([e(-plus) * c, -e(minus) * s], -1),
            torch.stack([e(-minus) * s, e(plus) * c], -1),
        ],
        -2,
    )


def wire_states(spec: CircuitSpec, x: torch.Tensor) -> torch.Tensor:
    """Single-qubit state of every wire after the embedding, shape ``x.shape + (2,)``."""
    if spec.embedding in ("hadamard_ry", "ry"):
        off = angle_offsets(spec.embedding, x.device, x.dtype)
        return torch.cos(torch.add(off, x.unsqueeze(-1), alpha=0.5))
    # RX(x)|0> = cos(x/2)|0> - i sin(x/2)|1>
    c, s = torch.cos(x / 2), torch.sin(x / 2)
    zero = torch.zeros_like(c)
    return torch.complex(torch.stack([c, zero], -1), torch.stack([zero, -s], -1))


def common_dtype(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both real, or both complex (an RX embedding is complex, RY layers are real)."""
    if a.is_complex() and not b.is_complex():
        return a, b.to(a.dtype)
    if b.is_complex() and not a.is_complex():
        return a.to(b.dtype), b
    return a, b


def kron_vectors(v: torch.Tensor) -> torch.Tensor:
    """Kronecker product over axis -2 of ``(..., n, 2)``: ``(..., 2**n)``, wire 0 most significant."""
    state = v[..., 0, :]
    for i in range(1, v.shape[-2]):
        state = (state.unsqueeze(-1) * v[..., i, None, :]).flatten(-2)
    return state


def kron_matrices(m: torch.Tensor) -> torch.Tensor:
    """Kronecker product over axis -3 of ``(..., k, 2, 2)``: ``(..., 2**k, 2**k)``."""
    out = m[..., 0, :, :]
    for i in range(1, m.shape[-3]):
        r = m[..., i, :, :]
        d = out.shape[-1] * 2
        out = (out[..., :, None, :, None] * r[..., None, :, None, :]).reshape(*out.shape[:-2], d, d)
    return out


@lru_cache(maxsize=64)
def bit_table(n_qubits: int, device: torch.device) -> torch.Tensor:
    """``(n, 2**n)`` table of bit values: ``bits[q, k]`` is wire q's bit in basis state k."""
    index = torch.arange(2**n_qubits, device=device)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=device)
    return (index[None, :] >> shifts[:, None]) & 1


@lru_cache(maxsize=64)
def _wire_index(n_qubits: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n_qubits, device=device)[:, None]


def product_state_gather(v: torch.Tensor) -> torch.Tensor:
    """``(B, n, 2)`` wire states -> ``(B, 2**n)`` with one gather and one product (small n)."""
    n = v.shape[-2]
    return v[:, _wire_index(n, v.device), bit_table(n, v.device)].prod(dim=1)


def product_state(v: torch.Tensor) -> torch.Tensor:
    """Kronecker product of ``(N, n, 2)`` wire states: one gather + product for small outputs
    (fewer operations), a chain of outer products for large ones (cheaper backward).
    Forward+backward of the n=4 circuit: 0.35 vs 0.39 ms at batch 4, 0.66 vs 0.58 at 256."""
    if v.shape[0] * 2 ** v.shape[-2] <= 2048:
        return product_state_gather(v)
    return kron_vectors(v)


def embed(spec: CircuitSpec, x: torch.Tensor) -> torch.Tensor:
    """The embedded state of a batch of inputs: ``(B, n_qubits)`` angles -> ``(B, 2**n_qubits)``."""
    return product_state(wire_states(spec, x))


def rotation_matrices(spec: CircuitSpec, weights: torch.Tensor) -> torch.Tensor:
    """The trainable single-qubit gate of every layer and wire: ``(depth, n, 2, 2)``."""
    if spec.rotation_gate == "Rot":
        return rot_matrices(weights[..., 0], weights[..., 1], weights[..., 2])
    return ry_matrices(weights)


@lru_cache(maxsize=64)
def cnot_permutation(
    n_qubits: int, pairs: tuple[tuple[int, int], ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(gather, inverse)``: ``new = state[..., gather]`` applies the CNOTs ``pairs`` in order,
    ``state = new[..., inverse]`` undoes them."""
    if not pairs:
        return None
    index = torch.arange(2**n_qubits, dtype=torch.long, device=device)
    image = index.clone()  # image[b] = basis state that b is sent to
    for control, target in pairs:
        c_bit, t_bit = 1 << (n_qubits - 1 - control), 1 << (n_qubits - 1 - target)
        image = torch.where(image & c_bit != 0, image ^ t_bit, image)
    gather = torch.empty_like(image)
    gather[image] = index  # new[image[b]] = old[b]
    return gather, image  # image is gather's inverse


@lru_cache(maxsize=64)
def rx_phases(n_qubits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(-i)**popcount(k)``: ``RX(x)|0> = phase * RY(x)|0>`` wire by wire."""
    popcount = bit_table(n_qubits, device).sum(0)
    phases = torch.tensor([1, -1j, -1, 1j], device=device, dtype=complex_dtype(dtype))
    return phases[popcount % 4]

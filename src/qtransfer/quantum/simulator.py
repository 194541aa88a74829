"""A batched, differentiable statevector simulator in PyTorch for :class:`CircuitSpec` circuits.

Plain functions, one per stage, like PennyLane's ``devices/qubit``:
:func:`embed` (input angles -> product state), :func:`apply_layers` (the variational
layers), :func:`expval_z` (or :func:`sample_expval_z` for finite shots), and
:func:`simulate`, which chains them.

Why not PennyLane's own simulators for training? The circuits we train have structure
a general-purpose device cannot assume, and exploiting it is what makes training take
seconds (see ``benchmarks/quantum.py`` for the measurements):

* every embedding prepares a *product* state: one 2-vector per wire, joined by
  Kronecker products (``n - 1`` batched outer products instead of ``2n`` gate applications);
* the variational part does not depend on the input. For small registers
  (``2**n`` at most ``max(64, batch)``) it is built once per call as a ``2**n x 2**n``
  matrix by running the layers on the identity, and applied to the whole batch as one
  matrix product ("dense" mode); for larger registers the layers act on the batch of
  states directly ("statevector" mode);
* a layer's CNOTs together form one fixed permutation of the basis (one gather), and its
  single-qubit rotations are applied a few wires at a time as small Kronecker blocks;
* the published circuit has only real gates (H, RY, CNOT), so its amplitudes are kept
  real: half the memory and a quarter of the arithmetic of complex amplitudes.

Gradients flow through autograd. All tensors keep the device and dtype of the inputs:
``float32`` or ``float64`` (complex64/complex128 internally when a gate is complex).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .circuit import CircuitSpec

__all__ = ["embed", "apply_layers", "expval_z", "sample_expval_z", "simulate", "use_dense"]

#: wires per Kronecker block when rotations act on a batch of states (statevector mode)
_BLOCK_WIRES = 4


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _ry(theta: torch.Tensor) -> torch.Tensor:
    """RY matrices, shape ``theta.shape + (2, 2)``."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _rot(phi: torch.Tensor, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), shape ``phi.shape + (2, 2)``."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    plus, minus = (phi + omega) / 2, (phi - omega) / 2
    e = lambda a: torch.polar(torch.ones_like(a), a)  # noqa: E731  e^{i a}
    return torch.stack(
        [
            torch.stack([e(-plus) * c, -e(minus) * s], -1),
            torch.stack([e(-minus) * s, e(plus) * c], -1),
        ],
        -2,
    )


def _wire_states(spec: CircuitSpec, x: torch.Tensor) -> torch.Tensor:
    """Single-qubit state of every wire after the embedding, shape ``x.shape + (2,)``."""
    c, s = torch.cos(x / 2), torch.sin(x / 2)
    if spec.embedding == "hadamard_ry":  # RY(x) H|0> = RY(x)|+>
        return torch.stack([c - s, s + c], -1) * (1 / math.sqrt(2))
    if spec.embedding == "ry":
        return torch.stack([c, s], -1)
    # RX(x)|0> = cos(x/2)|0> - i sin(x/2)|1>
    return torch.complex(torch.stack([c, torch.zeros_like(s)], -1), torch.stack([torch.zeros_like(c), -s], -1))


def _kron_vectors(v: torch.Tensor) -> torch.Tensor:
    """Kronecker product over axis -2 of ``(..., n, 2)``: ``(..., 2**n)``, wire 0 most significant."""
    state = v[..., 0, :]
    for i in range(1, v.shape[-2]):
        state = (state.unsqueeze(-1) * v[..., i, None, :]).flatten(-2)
    return state


def _kron_matrices(m: torch.Tensor) -> torch.Tensor:
    """Kronecker product over axis -3 of ``(..., k, 2, 2)``: ``(..., 2**k, 2**k)``."""
    out = m[..., 0, :, :]
    for i in range(1, m.shape[-3]):
        r = m[..., i, :, :]
        d = out.shape[-1] * 2
        out = (out[..., :, None, :, None] * r[..., None, :, None, :]).reshape(*out.shape[:-2], d, d)
    return out


def embed(spec: CircuitSpec, x: torch.Tensor) -> torch.Tensor:
    """The embedded state of a batch of inputs: ``(B, n_qubits)`` angles -> ``(B, 2**n_qubits)``."""
    return _kron_vectors(_wire_states(spec, x))


def _rotation_matrices(spec: CircuitSpec, weights: torch.Tensor) -> torch.Tensor:
    """The trainable single-qubit gate of every layer and wire: ``(depth, n, 2, 2)``."""
    if spec.rotation_gate == "Rot":
        return _rot(weights[..., 0], weights[..., 1], weights[..., 2])
    return _ry(weights)


@lru_cache(maxsize=64)
def _gather_index(n_qubits: int, pairs: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor | None:
    """Index ``g`` with ``new_state = state[..., g]`` for the CNOTs ``pairs`` applied in order."""
    if not pairs:
        return None
    index = torch.arange(2**n_qubits, dtype=torch.long)
    image = index.clone()  # image[b] = basis state that b is sent to
    for control, target in pairs:
        c_bit, t_bit = 1 << (n_qubits - 1 - control), 1 << (n_qubits - 1 - target)
        image = torch.where(image & c_bit != 0, image ^ t_bit, image)
    gather = torch.empty_like(image)
    gather[image] = index  # new[image[b]] = old[b]
    return gather.to(device)


def _apply_blocks(state: torch.Tensor, blocks: list[tuple[int, torch.Tensor]], n_qubits: int) -> torch.Tensor:
    """Apply ``(first_wire, matrix)`` Kronecker blocks to ``(B, 2**n)`` states."""
    batch = state.shape[0]
    for first, matrix in blocks:
        width = matrix.shape[-1]
        left = 2**first
        right = 2**n_qubits // (left * width)
        if left == right == 1:  # the block spans every wire: one matrix product
            state = state @ matrix.T
        else:
            state = torch.matmul(matrix, state.reshape(batch, left, width, right)).reshape(batch, -1)
    return state


def apply_layers(spec: CircuitSpec, state: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Apply the ``depth`` variational layers to a batch of states ``(B, 2**n)``."""
    n = spec.n_qubits
    if spec.depth == 0:
        return state
    rotations = _rotation_matrices(spec, weights)  # (depth, n, 2, 2)
    if rotations.is_complex() and not state.is_complex():
        state = state.to(rotations.dtype)
    block = n if state.shape[0] >= 2**n else min(n, _BLOCK_WIRES)
    starts = list(range(0, n, block))
    kron = [_kron_matrices(rotations[:, s : s + block]) for s in starts]  # each (depth, 2^b, 2^b)
    gather = _gather_index(n, spec.entangling_pairs(), state.device)
    for layer in range(spec.depth):
        blocks = [(s, k[layer]) for s, k in zip(starts, kron)]
        if spec.entangles_before_rotation:
            state = state if gather is None else state[:, gather]
            state = _apply_blocks(state, blocks, n)
        else:
            state = _apply_blocks(state, blocks, n)
            state = state if gather is None else state[:, gather]
    return state


@lru_cache(maxsize=64)
def _z_signs(n_qubits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(2**n, n)`` matrix of Z eigenvalues: +1 where wire i's bit is 0, -1 where it is 1."""
    index = torch.arange(2**n_qubits)
    bits = (index[:, None] >> torch.arange(n_qubits - 1, -1, -1)) & 1
    return (1 - 2 * bits).to(device=device, dtype=dtype)


def _probabilities(state: torch.Tensor) -> torch.Tensor:
    return state.abs().square() if state.is_complex() else state.square()


def expval_z(state: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Exact ``<Z_i>`` for every wire: ``(B, 2**n)`` states -> ``(B, n)``."""
    probs = _probabilities(state)
    if n_qubits <= 12:
        return probs @ _z_signs(n_qubits, probs.device, probs.dtype)
    batch = probs.shape[0]
    out = []
    for wire in range(n_qubits):
        marginal = probs.reshape(batch, 2**wire, 2, -1).sum(dim=(1, 3))
        out.append(marginal[:, 0] - marginal[:, 1])
    return torch.stack(out, -1)


def sample_expval_z(state: torch.Tensor, n_qubits: int, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Finite-shot estimate of ``<Z_i>`` from ``shots`` measurements in the computational basis.

    The returned tensor carries the exact expectation's gradient (a straight-through
    estimator): the forward value is the shot estimate, the backward pass is analytic.
    """
    exact = expval_z(state, n_qubits)
    probs = _probabilities(state).detach()
    samples = torch.multinomial(probs, shots, replacement=True, generator=generator)  # (B, shots)
    bits = (samples[..., None] >> torch.arange(n_qubits - 1, -1, -1, device=samples.device)) & 1
    estimate = (1 - 2 * bits).to(exact.dtype).mean(dim=1)
    return exact + (estimate - exact).detach()


def use_dense(n_qubits: int, batch: int) -> bool:
    """Dense mode (build the variational unitary, one matmul per batch) when it is cheaper."""
    return 2**n_qubits <= max(64, batch)


@lru_cache(maxsize=64)
def _bit_table(n_qubits: int, device: torch.device) -> torch.Tensor:
    """``(n, 2**n)`` table of bit values: ``bits[q, k]`` is wire q's bit in basis state k."""
    index = torch.arange(2**n_qubits)
    return ((index[None, :] >> torch.arange(n_qubits - 1, -1, -1)[:, None]) & 1).to(device)


def _product_state(v: torch.Tensor) -> torch.Tensor:
    """``(B, n, 2)`` wire states -> ``(B, 2**n)`` with one gather and one product (small n)."""
    n = v.shape[-2]
    bits = _bit_table(n, v.device)  # (n, D)
    wires = torch.arange(n, device=v.device)[:, None]
    return v[:, wires, bits].prod(dim=1)


def _dense_transfer_matrix(spec: CircuitSpec, weights: torch.Tensor) -> torch.Tensor:
    """``M`` with ``final_state = embedded_state @ M`` (row vectors), built in a few batched ops."""
    n, dim = spec.n_qubits, 2**spec.n_qubits
    rot = _rotation_matrices(spec, weights).flatten(-2)  # (depth, n, 4): entries (row, col) -> 2*row+col
    bits = _bit_table(n, weights.device)
    pair_index = 2 * bits[:, :, None] + bits[:, None, :]  # (n, D, D)
    wires = torch.arange(n, device=weights.device)[:, None, None]
    kron = rot[:, wires, pair_index].prod(dim=1)  # (depth, D, D): kron over wires of each layer's rotations
    step = kron.transpose(1, 2)  # row convention: s -> s @ K^T
    gather = _gather_index(n, spec.entangling_pairs(), weights.device)
    if gather is not None:
        if spec.entangles_before_rotation:  # s[:, g] @ A  ==  s @ A[g^-1, :]
            inverse = torch.empty_like(gather)
            inverse[gather] = torch.arange(dim, device=gather.device)
            step = step[:, inverse, :]
        else:  # (s @ A)[:, g]  ==  s @ A[:, g]
            step = step[:, :, gather]
    while step.shape[0] > 1:  # multiply the layers pairwise: log2(depth) batched products
        if step.shape[0] % 2:
            last = step[-1:]
            step = torch.cat([torch.bmm(step[:-1:2], step[1:-1:2]), last])
        else:
            step = torch.bmm(step[0::2], step[1::2])
    return step[0]


def simulate(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    *,
    shots: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``<Z_i>`` of the circuit for inputs ``x`` of shape ``(..., n_qubits)``; returns ``(..., n_qubits)``.

    Example:
        >>> spec = CircuitSpec(n_qubits=1, depth=0, embedding="ry")
        >>> simulate(spec, torch.tensor([[0.3]]), torch.zeros(0, 1))  # cos(0.3)
        tensor([[0.9553]])
    """
    n = spec.n_qubits
    lead = x.shape[:-1]
    x = x.reshape(-1, n)
    batch = x.shape[0]
    if use_dense(n, batch):
        state = _product_state(_wire_states(spec, x))
        if spec.depth > 0:
            transfer = _dense_transfer_matrix(spec, weights)
            if transfer.is_complex() and not state.is_complex():
                state = state.to(transfer.dtype)
            state = state @ transfer
    else:
        state = apply_layers(spec, embed(spec, x), weights)
    if shots is None:
        out = expval_z(state, n)
    else:
        out = sample_expval_z(state, n, shots, generator)
    return out.reshape(*lead, n)

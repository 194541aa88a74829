"""Dense mode: each variational layer one ``2**n x 2**n`` matrix (small registers).

The variational part does not depend on the input, so for up to :data:`DENSE_MAX_QUBITS`
qubits each layer is built as one matrix, CNOT permutation folded in, and applied with one
matrix product: a handful of torch operations in all, which is what matters when a training
step takes under a millisecond. For RY layers (the published circuit) the layer matrices are
one product of the layers' ``(cos, sin)`` product states with :func:`layer_basis`; the fused
training step (:mod:`qtransfer.heads.fused_step`) builds on the same basis.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .circuit import CircuitSpec
from .states import (
    angle_offsets,
    bit_table,
    cnot_permutation,
    common_dtype,
    product_state,
    rotation_matrices,
    rx_phases,
)

__all__ = ["DENSE_MAX_QUBITS", "apply_dense", "dense_layers", "dense_ry_circuit", "layer_basis", "use_dense"]

#: dense mode up to this many qubits (see :func:`use_dense` and docs/quantum.md)
DENSE_MAX_QUBITS = 6


def use_dense(n_qubits: int, batch: int) -> bool:
    """Dense mode (one ``2**n x 2**n`` matrix per layer) for registers of at most
    :data:`DENSE_MAX_QUBITS` qubits, where it is fastest at every batch size measured."""
    return n_qubits <= DENSE_MAX_QUBITS


@lru_cache(maxsize=64)
def dense_index(spec: CircuitSpec, device: torch.device) -> torch.Tensor:
    """Index into ``(depth, n * 4)`` rotation entries giving ``(depth, n, D, D)`` factors of each
    layer's row-convention matrix ``A`` (``state -> state @ A``), CNOT permutation included.

    ``A = K^T`` with ``K`` the Kronecker product of the layer's rotations, so
    ``A[i, j] = prod_q R_q[bit_q(j), bit_q(i)]``; the permutation ``g`` (``s -> s[:, g]``) is
    folded in as ``A[g^-1, :]`` before the rotations or ``A[:, g]`` after them.
    """
    n = spec.n_qubits
    bits = bit_table(n, device)  # (n, D)
    entry = 2 * bits[:, None, :] + bits[:, :, None]  # (n, D_i, D_j): R[bit(j), bit(i)]
    entry = entry + 4 * torch.arange(n, device=device)[:, None, None]
    perm = cnot_permutation(n, spec.entangling_pairs(), device)
    if perm is not None:
        gather, inverse = perm
        entry = entry[:, inverse, :] if spec.entangles_before_rotation else entry[:, :, gather]
    return entry


@lru_cache(maxsize=64)
def layer_basis(spec: CircuitSpec, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(D, D * D)`` basis ``P`` with ``layer_matrix = coefficients @ P`` for RY layers.

    ``RY(w) = cos(w/2) I + sin(w/2) T`` with ``T = [[0, -1], [1, 0]]``, so the Kronecker
    product of a layer's rotations is ``sum_k c_k P_k``: ``c`` is the product "state" of the
    wires' ``(cos, sin)`` pairs (the same Kronecker product as the embedding) and ``P_k`` the
    Kronecker product of ``I`` / ``T`` chosen by the bits of ``k``. ``P_k`` is stored in the row
    convention (``state -> state @ A``) with the layer's CNOT permutation folded in.
    """
    n, dim = spec.n_qubits, 2**spec.n_qubits
    factors = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, -1.0], [1.0, 0.0]]], device=device, dtype=dtype)
    bits = bit_table(n, device)  # (n, D)
    # P[k, i, j] = prod_q T_{bit_q(k)}[bit_q(j), bit_q(i)]  (transposed: row convention)
    k, i, j = bits[:, :, None, None], bits[:, None, :, None], bits[:, None, None, :]
    basis = factors[k, j, i].prod(dim=0)  # (D, D, D)
    perm = cnot_permutation(n, spec.entangling_pairs(), device)
    if perm is not None:
        gather, inverse = perm
        basis = basis[:, inverse, :] if spec.entangles_before_rotation else basis[:, :, gather]
    return basis.reshape(dim, dim * dim).contiguous()


def dense_ry_circuit(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Dense mode for RY layers (the published circuit): final states ``(B, D)`` in ~20 operations.

    The embedding's wire states and the layers' ``(cos, sin)`` pairs are one ``cos`` of one
    tensor of angles, their Kronecker products one product state, and each layer's matrix
    a single matrix product with :func:`layer_basis`.
    """
    batch, n, dim = x.shape[0], spec.n_qubits, 2**spec.n_qubits
    inputs = x + math.pi / 2 if spec.embedding == "hadamard_ry" else x  # RY(x)|+> = RY(x + pi/2)|0>
    angles = torch.cat([inputs, weights]) if spec.depth else inputs
    pairs = torch.cos(torch.add(angle_offsets("ry", x.device, x.dtype), angles.unsqueeze(-1), alpha=0.5))
    products = product_state(pairs)  # (B + depth, D)
    state = products[:batch]
    if spec.embedding == "rx":
        state = state * rx_phases(n, x.device, x.dtype)
    if spec.depth == 0:
        return state
    layers = (products[batch:] @ layer_basis(spec, x.device, x.dtype)).view(spec.depth, dim, dim)
    return apply_dense(state, layers)


def apply_dense(state: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """``state @ layers[0] @ layers[1] @ ...`` in the cheaper order."""
    state, layers = common_dtype(state, layers)
    if state.shape[0] <= state.shape[1]:  # few samples: apply layer by layer
        for matrix in layers.unbind(0):
            state = state @ matrix
        return state
    while layers.shape[0] > 1:  # many samples: multiply the layers first, pairwise
        if layers.shape[0] % 2:
            layers = torch.cat([torch.bmm(layers[:-1:2], layers[1::2]), layers[-1:]])
        else:
            layers = torch.bmm(layers[0::2], layers[1::2])
    return state @ layers[0]


def dense_layers(spec: CircuitSpec, state: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Dense mode: each layer one ``(D, D)`` matrix built by one gather + one product."""
    rot = rotation_matrices(spec, weights).flatten(1)  # (depth, n * 4)
    layers = rot[:, dense_index(spec, weights.device)].prod(dim=1)  # (depth, D, D)
    return apply_dense(state, layers)

"""Statevector mode: the variational layers act on the batch of states (larger registers).

A layer's CNOTs together are one fixed permutation of the basis (one gather), and its
rotations are applied :data:`BLOCK_WIRES` wires at a time as Kronecker blocks, each one
batched matrix product that also moves the block's wires to the end of the index (after a
full layer the order is back where it started), so every product is a large, contiguous
GEMM whatever the block's position. Gradients by autograd, or by the adjoint method
(:class:`_AdjointLayers`) once autograd's stored states would be large.
"""

from __future__ import annotations

import torch

from .circuit import CircuitSpec
from .states import cnot_permutation, common_dtype, kron_matrices, rotation_matrices

__all__ = ["ADJOINT_MIN_BYTES", "BLOCK_WIRES", "apply_layers"]

#: wires per Kronecker block in statevector mode (16x16 matrices; see docs/quantum.md)
BLOCK_WIRES = 4
#: statevector mode uses the adjoint gradient once autograd would store this many bytes of states
ADJOINT_MIN_BYTES = 1 << 30


def _blocks(n_qubits: int, block_wires: int) -> list[tuple[int, int]]:
    """``(first_wire, width)`` of the Kronecker blocks covering the register."""
    return [(s, min(block_wires, n_qubits - s)) for s in range(0, n_qubits, block_wires)]


def _apply_block(state: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply ``matrix`` to the leading ``log2(W)`` wires of ``(B, D)`` states and move them last.

    ``state[b]`` viewed as ``(W, R)`` becomes ``(matrix @ state[b]).T``, i.e. ``(R, W)``: one
    batched GEMM with a transposed operand, no copy, whatever the block's position.
    """
    batch, dim = state.shape
    width = matrix.shape[-1]
    if width == dim:
        return state @ matrix.transpose(0, 1)
    view = state.view(batch, width, dim // width).transpose(1, 2)
    return torch.bmm(view, matrix.transpose(0, 1).expand(batch, width, width)).view(batch, dim)


def _run_layers(
    state: torch.Tensor, mats: tuple[torch.Tensor, ...], gather: torch.Tensor | None, entangle_first: bool
) -> torch.Tensor:
    """The layers on ``(B, D)`` states; ``mats[k][layer]`` is block k's matrix of that layer."""
    for layer in range(mats[0].shape[0]):
        if entangle_first and gather is not None:
            state = state.index_select(1, gather)
        for m in mats:
            state = _apply_block(state, m[layer])
        if not entangle_first and gather is not None:
            state = state.index_select(1, gather)
    return state


class _AdjointLayers(torch.autograd.Function):
    """The variational layers, differentiated by the adjoint method.

    Forward keeps only the final state. Backward carries ``[state; grad]`` (stacked, so
    every step is one operation for both) from the last gate to the first: a block
    ``Y = X M^T`` (rows are batch x other wires) gives ``dL/dM = (dY^T conj(Y)) M`` and
    ``X = Y conj(M)``, ``dL/dX = dY conj(M)`` (PyTorch's convention for complex tensors);
    the CNOT permutation is undone by its inverse gather.
    """

    @staticmethod
    def forward(ctx, state, gather, inverse, entangle_first, *mats):  # type: ignore[override]
        out = _run_layers(state, mats, gather, entangle_first)
        ctx.save_for_backward(out, inverse, *mats)
        ctx.entangle_first = entangle_first
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        out, inverse, *mats = ctx.saved_tensors
        batch, dim = out.shape
        need_mats = any(ctx.needs_input_grad[4:])
        grads = [torch.empty_like(m) for m in mats] if need_mats else [None] * len(mats)
        both = torch.cat([out, grad_out.to(out.dtype)])  # (2B, D): state rows, then gradient rows
        for layer in reversed(range(mats[0].shape[0])):
            if not ctx.entangle_first and inverse.numel():
                both = both.index_select(1, inverse)
            for k in reversed(range(len(mats))):
                matrix = mats[k][layer]
                width = matrix.shape[-1]
                if need_mats:
                    rows = both.view(2, -1, width)  # (state | grad, B * R, W)
                    grads[k][layer] = (rows[1].transpose(0, 1) @ rows[0].conj()) @ matrix
                if width == dim:
                    both = both @ matrix.conj()
                else:
                    both = torch.bmm(
                        matrix.mH.expand(2 * batch, width, width), both.view(2 * batch, -1, width).transpose(1, 2)
                    ).view(2 * batch, dim)
            if ctx.entangle_first and inverse.numel():
                both = both.index_select(1, inverse)
        grad_state = both[batch:] if ctx.needs_input_grad[0] else None
        return (grad_state, None, None, None, *grads)


def apply_layers(
    spec: CircuitSpec,
    state: torch.Tensor,
    weights: torch.Tensor,
    *,
    adjoint: bool | None = None,
    block_wires: int = BLOCK_WIRES,
) -> torch.Tensor:
    """Apply the ``depth`` variational layers to a batch of states ``(B, 2**n)``.

    ``adjoint=True`` differentiates by the adjoint method (a few stored states);
    ``adjoint=False`` records every operation for autograd (one state per gate block:
    faster while that fits in caches, see :data:`ADJOINT_MIN_BYTES`); ``None`` chooses.
    """
    n = spec.n_qubits
    if spec.depth == 0:
        return state
    rotations = rotation_matrices(spec, weights)  # (depth, n, 2, 2)
    state, rotations = common_dtype(state, rotations)
    mats = tuple(kron_matrices(rotations[:, s : s + w]) for s, w in _blocks(n, block_wires))
    perm = cnot_permutation(n, spec.entangling_pairs(), state.device)
    gather, inverse = perm if perm is not None else (None, None)
    state = state.contiguous()
    if adjoint is None:
        stored = state.numel() * state.element_size() * spec.depth * (len(mats) + (gather is not None))
        adjoint = stored >= ADJOINT_MIN_BYTES
    if not adjoint:
        return _run_layers(state, mats, gather, spec.entangles_before_rotation)
    if inverse is None:
        inverse = torch.empty(0, dtype=torch.long, device=state.device)
    return _AdjointLayers.apply(state, gather, inverse, spec.entangles_before_rotation, *mats)

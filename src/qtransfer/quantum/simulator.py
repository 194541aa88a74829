"""A batched, differentiable statevector simulator in PyTorch for :class:`CircuitSpec` circuits.

Plain functions, one module per stage, like PennyLane's ``devices/qubit``:
:mod:`~qtransfer.quantum.states` (``embed``: input angles -> product state),
:mod:`~qtransfer.quantum.dense` and :mod:`~qtransfer.quantum.statevector` (the variational
layers, two ways), :mod:`~qtransfer.quantum.measurement` (``expval_z``, or
``sample_expval_z`` for finite shots), and :func:`simulate` here, which chains them.

Why not PennyLane's own simulators for training? The circuits we train have structure
a general-purpose device cannot assume, and exploiting it is what makes training take
seconds (``docs/quantum.md`` has the measurements, ``benchmarks/quantum.py`` makes them):

* every embedding prepares a *product* state: one 2-vector per wire, joined by
  Kronecker products instead of ``2n`` gate applications;
* the variational part does not depend on the input. For small registers
  (:func:`use_dense`) each layer is one ``2**n x 2**n`` matrix, built by a single gather
  and product from the layer's rotations with the CNOT permutation folded in ("dense"
  mode, a handful of torch operations in all: what matters when a training step takes
  under a millisecond);
* for larger registers the layers act on the batch of states ("statevector" mode):
  a layer's CNOTs together are one fixed permutation of the basis (one gather), and its
  rotations are applied :data:`BLOCK_WIRES` wires at a time as Kronecker blocks, each one
  batched matrix product that also moves the block's wires to the end of the index
  (after a full layer the order is back where it started), so every product is a large,
  contiguous GEMM whatever the block's position;
* statevector mode differentiates with the adjoint method (:class:`_AdjointLayers`): the
  forward pass keeps only the final state; the backward pass walks the gates in reverse,
  *uncomputing* the state (every gate is unitary) next to the gradient. Memory is a few
  states instead of one per gate block. It does a third more arithmetic than autograd
  (1.35x slower at 16 qubits, as fast at 20 where memory traffic dominates), so it is used
  only once autograd's stored states would be large (:data:`ADJOINT_MIN_BYTES`): at 20 qubits,
  batch 16 it cuts the peak memory from 2.9 to 1.2 GB;
* the published circuit has only real gates (H, RY, CNOT), so its amplitudes are kept
  real: half the memory and a quarter of the arithmetic of complex amplitudes.

All tensors keep the device and dtype of the inputs: ``float32`` or ``float64``
(complex64/complex128 internally when a gate is complex).
"""

from __future__ import annotations

import torch

from .circuit import CircuitSpec
from .dense import DENSE_MAX_QUBITS, dense_layers, dense_ry_circuit, use_dense
from .measurement import expval_z, sample_expval_z
from .memory import check_simulation_memory
from .states import embed
from .statevector import apply_layers

__all__ = ["simulate"]


def simulate(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    *,
    shots: int | None = None,
    generator: torch.Generator | None = None,
    mode: str | None = None,
    adjoint: bool | None = None,
) -> torch.Tensor:
    """``<Z_i>`` of the circuit for inputs ``x`` of shape ``(..., n_qubits)``; returns ``(..., n_qubits)``.

    ``mode`` forces ``"dense"`` or ``"statevector"`` (default: :func:`use_dense`);
    ``adjoint`` picks the statevector gradient (default: by memory, see :func:`apply_layers`).

    Example:
        >>> spec = CircuitSpec(n_qubits=1, depth=0, embedding="ry")
        >>> simulate(spec, torch.tensor([[0.3]]), torch.zeros(0, 1))  # cos(0.3)
        tensor([[0.9553]])
    """
    n = spec.n_qubits
    if x.ndim == 0 or x.shape[-1] != n:
        raise ValueError(f"simulate expects inputs of shape (..., {n}), got {tuple(x.shape)}")
    if tuple(weights.shape) != spec.weight_shape:
        raise ValueError(f"simulate expects weights of shape {spec.weight_shape}, got {tuple(weights.shape)}")
    lead = x.shape[:-1]
    x = x.reshape(-1, n)
    check_simulation_memory(n, x.shape[0], itemsize=x.element_size() * (1 if spec.is_real else 2), device=x.device)
    if mode is None:
        mode = "dense" if use_dense(n, x.shape[0]) else "statevector"
    if mode == "dense" and spec.rotation_gate == "RY" and n <= DENSE_MAX_QUBITS:  # (2**n)**3 basis
        state = dense_ry_circuit(spec, x, weights)
    elif mode == "dense":
        state = embed(spec, x)
        if spec.depth > 0:
            state = dense_layers(spec, state, weights)
    elif mode == "statevector":
        state = apply_layers(spec, embed(spec, x), weights, adjoint=adjoint)
    else:
        raise ValueError(f"unknown simulation mode {mode!r}; use 'dense', 'statevector' or None (automatic)")
    if shots is None:
        out = expval_z(state, n)
    else:
        out = sample_expval_z(state, n, shots, generator)
    return out.reshape(*lead, n)

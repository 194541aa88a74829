"""A batched, differentiable statevector simulator in PyTorch for :class:`CircuitSpec` circuits.

Plain functions, one per stage, like PennyLane's ``devices/qubit``:
:func:`embed` (input angles -> product state), :func:`apply_layers` (the variational
layers), :func:`expval_z` (or :func:`sample_expval_z` for finite shots), and
:func:`simulate`, which chains them.

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

import math
from functools import lru_cache

import torch

from .circuit import CircuitSpec

__all__ = [
    "BLOCK_WIRES",
    "embed",
    "apply_layers",
    "expval_z",
    "sample_expval_z",
    "simulate",
    "use_dense",
]

#: wires per Kronecker block in statevector mode (16x16 matrices; see docs/quantum.md)
BLOCK_WIRES = 4
#: statevector mode uses the adjoint gradient once autograd would store this many bytes of states
ADJOINT_MIN_BYTES = 1 << 30
#: dense mode up to this many qubits (see :func:`use_dense` and docs/quantum.md)
DENSE_MAX_QUBITS = 6


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


@lru_cache(maxsize=64)
def _offsets(kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Phase offsets turning one ``cos`` into several entries: ``sin a = cos(a - pi/2)``."""
    q = math.pi / 4
    values = {
        "ry": (0.0, -2 * q),  # RY(x)|0> = (cos x/2, sin x/2)
        "hadamard_ry": (q, -q),  # RY(x)|+> = (cos(x/2 + pi/4), sin(x/2 + pi/4))
        "ry_matrix": (0.0, 2 * q, -2 * q, 0.0),  # RY = [[c, -s], [s, c]] row-major
    }[kind]
    return torch.tensor(values, device=device, dtype=dtype)


def _ry(theta: torch.Tensor) -> torch.Tensor:
    """RY matrices, shape ``theta.shape + (2, 2)``, in two torch operations."""
    off = _offsets("ry_matrix", theta.device, theta.dtype)
    return torch.cos(torch.add(off, theta.unsqueeze(-1), alpha=0.5)).unflatten(-1, (2, 2))


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
    if spec.embedding in ("hadamard_ry", "ry"):
        off = _offsets(spec.embedding, x.device, x.dtype)
        return torch.cos(torch.add(off, x.unsqueeze(-1), alpha=0.5))
    # RX(x)|0> = cos(x/2)|0> - i sin(x/2)|1>
    c, s = torch.cos(x / 2), torch.sin(x / 2)
    zero = torch.zeros_like(c)
    return torch.complex(torch.stack([c, zero], -1), torch.stack([zero, -s], -1))


def _common_dtype(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both real, or both complex (an RX embedding is complex, RY layers are real)."""
    if a.is_complex() and not b.is_complex():
        return a, b.to(a.dtype)
    if b.is_complex() and not a.is_complex():
        return a.to(b.dtype), b
    return a, b


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


@lru_cache(maxsize=64)
def _bit_table(n_qubits: int, device: torch.device) -> torch.Tensor:
    """``(n, 2**n)`` table of bit values: ``bits[q, k]`` is wire q's bit in basis state k."""
    index = torch.arange(2**n_qubits, device=device)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=device)
    return (index[None, :] >> shifts[:, None]) & 1


@lru_cache(maxsize=64)
def _wire_index(n_qubits: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n_qubits, device=device)[:, None]


def _product_state(v: torch.Tensor) -> torch.Tensor:
    """``(B, n, 2)`` wire states -> ``(B, 2**n)`` with one gather and one product (small n)."""
    n = v.shape[-2]
    return v[:, _wire_index(n, v.device), _bit_table(n, v.device)].prod(dim=1)


def _product(v: torch.Tensor) -> torch.Tensor:
    """Kronecker product of ``(N, n, 2)`` wire states: one gather + product for small outputs
    (fewer operations), a chain of outer products for large ones (cheaper backward).
    Forward+backward of the n=4 circuit: 0.35 vs 0.39 ms at batch 4, 0.66 vs 0.58 at 256."""
    if v.shape[0] * 2 ** v.shape[-2] <= 2048:
        return _product_state(v)
    return _kron_vectors(v)


def embed(spec: CircuitSpec, x: torch.Tensor) -> torch.Tensor:
    """The embedded state of a batch of inputs: ``(B, n_qubits)`` angles -> ``(B, 2**n_qubits)``."""
    return _product(_wire_states(spec, x))


def _rotation_matrices(spec: CircuitSpec, weights: torch.Tensor) -> torch.Tensor:
    """The trainable single-qubit gate of every layer and wire: ``(depth, n, 2, 2)``."""
    if spec.rotation_gate == "Rot":
        return _rot(weights[..., 0], weights[..., 1], weights[..., 2])
    return _ry(weights)


@lru_cache(maxsize=64)
def _permutation(
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
    rotations = _rotation_matrices(spec, weights)  # (depth, n, 2, 2)
    state, rotations = _common_dtype(state, rotations)
    mats = tuple(_kron_matrices(rotations[:, s : s + w]) for s, w in _blocks(n, block_wires))
    perm = _permutation(n, spec.entangling_pairs(), state.device)
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


@lru_cache(maxsize=64)
def _z_signs(n_qubits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(2**n, n)`` matrix of Z eigenvalues: +1 where wire i's bit is 0, -1 where it is 1."""
    return (1 - 2 * _bit_table(n_qubits, device).T).to(dtype)


def _probabilities(state: torch.Tensor) -> torch.Tensor:
    return state.abs().square() if state.is_complex() else state.square()


def expval_z(state: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Exact ``<Z_i>`` for every wire: ``(B, 2**n)`` states -> ``(B, n)``.

    Up to 12 qubits one product with the ``(2**n, n)`` sign matrix; beyond, two passes
    over the probabilities (marginals of the first and of the last half of the wires),
    then small sign matrices.
    """
    probs = _probabilities(state)
    if n_qubits <= 12:
        return probs @ _z_signs(n_qubits, probs.device, probs.dtype)
    head = n_qubits // 2
    tail = n_qubits - head
    grid = probs.view(-1, 2**head, 2**tail)
    first = grid.sum(2) @ _z_signs(head, probs.device, probs.dtype)
    last = grid.sum(1) @ _z_signs(tail, probs.device, probs.dtype)
    return torch.cat([first, last], -1)


def sample_expval_z(
    state: torch.Tensor, n_qubits: int, shots: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Finite-shot estimate of ``<Z_i>`` from ``shots`` measurements in the computational basis.

    The returned tensor carries the exact expectation's gradient (a straight-through
    estimator): the forward value is the shot estimate, the backward pass is analytic.
    """
    exact = expval_z(state, n_qubits)
    probs = _probabilities(state).detach()
    samples = torch.multinomial(probs, shots, replacement=True, generator=generator)  # (B, shots)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=samples.device)
    bits = (samples[..., None] >> shifts) & 1
    estimate = (1 - 2 * bits).to(exact.dtype).mean(dim=1)
    return exact + (estimate - exact).detach()


def use_dense(n_qubits: int, batch: int) -> bool:
    """Dense mode (one ``2**n x 2**n`` matrix per layer) for registers of at most
    :data:`DENSE_MAX_QUBITS` qubits, where it is fastest at every batch size measured."""
    return n_qubits <= DENSE_MAX_QUBITS


@lru_cache(maxsize=64)
def _dense_index(spec: CircuitSpec, device: torch.device) -> torch.Tensor:
    """Index into ``(depth, n * 4)`` rotation entries giving ``(depth, n, D, D)`` factors of each
    layer's row-convention matrix ``A`` (``state -> state @ A``), CNOT permutation included.

    ``A = K^T`` with ``K`` the Kronecker product of the layer's rotations, so
    ``A[i, j] = prod_q R_q[bit_q(j), bit_q(i)]``; the permutation ``g`` (``s -> s[:, g]``) is
    folded in as ``A[g^-1, :]`` before the rotations or ``A[:, g]`` after them.
    """
    n = spec.n_qubits
    bits = _bit_table(n, device)  # (n, D)
    entry = 2 * bits[:, None, :] + bits[:, :, None]  # (n, D_i, D_j): R[bit(j), bit(i)]
    entry = entry + 4 * torch.arange(n, device=device)[:, None, None]
    perm = _permutation(n, spec.entangling_pairs(), device)
    if perm is not None:
        gather, inverse = perm
        entry = entry[:, inverse, :] if spec.entangles_before_rotation else entry[:, :, gather]
    return entry


@lru_cache(maxsize=64)
def _ry_expansion(spec: CircuitSpec, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(D, D * D)`` basis ``P`` with ``layer_matrix = coefficients @ P`` for RY layers.

    ``RY(w) = cos(w/2) I + sin(w/2) T`` with ``T = [[0, -1], [1, 0]]``, so the Kronecker
    product of a layer's rotations is ``sum_k c_k P_k``: ``c`` is the product "state" of the
    wires' ``(cos, sin)`` pairs (the same Kronecker product as the embedding) and ``P_k`` the
    Kronecker product of ``I`` / ``T`` chosen by the bits of ``k``. ``P_k`` is stored in the row
    convention (``state -> state @ A``) with the layer's CNOT permutation folded in.
    """
    n, dim = spec.n_qubits, 2**spec.n_qubits
    factors = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, -1.0], [1.0, 0.0]]], device=device, dtype=dtype)
    bits = _bit_table(n, device)  # (n, D)
    # P[k, i, j] = prod_q T_{bit_q(k)}[bit_q(j), bit_q(i)]  (transposed: row convention)
    k, i, j = bits[:, :, None, None], bits[:, None, :, None], bits[:, None, None, :]
    basis = factors[k, j, i].prod(dim=0)  # (D, D, D)
    perm = _permutation(n, spec.entangling_pairs(), device)
    if perm is not None:
        gather, inverse = perm
        basis = basis[:, inverse, :] if spec.entangles_before_rotation else basis[:, :, gather]
    return basis.reshape(dim, dim * dim).contiguous()


@lru_cache(maxsize=64)
def _rx_phases(n_qubits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(-i)**popcount(k)``: ``RX(x)|0> = phase * RY(x)|0>`` wire by wire."""
    popcount = _bit_table(n_qubits, device).sum(0)
    phases = torch.tensor([1, -1j, -1, 1j], device=device, dtype=_complex_dtype(dtype))
    return phases[popcount % 4]


def _dense_ry_circuit(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Dense mode for RY layers (the published circuit): final states ``(B, D)`` in ~20 operations.

    The embedding's wire states and the layers' ``(cos, sin)`` pairs are one ``cos`` of one
    tensor of angles, their Kronecker products one product state, and each layer's matrix
    a single matrix product with :func:`_ry_expansion`.
    """
    batch, n, dim = x.shape[0], spec.n_qubits, 2**spec.n_qubits
    inputs = x + math.pi / 2 if spec.embedding == "hadamard_ry" else x  # RY(x)|+> = RY(x + pi/2)|0>
    angles = torch.cat([inputs, weights]) if spec.depth else inputs
    pairs = torch.cos(torch.add(_offsets("ry", x.device, x.dtype), angles.unsqueeze(-1), alpha=0.5))
    products = _product(pairs)  # (B + depth, D)
    state = products[:batch]
    if spec.embedding == "rx":
        state = state * _rx_phases(n, x.device, x.dtype)
    if spec.depth == 0:
        return state
    layers = (products[batch:] @ _ry_expansion(spec, x.device, x.dtype)).view(spec.depth, dim, dim)
    return _apply_dense(state, layers)


def _apply_dense(state: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """``state @ layers[0] @ layers[1] @ ...`` in the cheaper order."""
    state, layers = _common_dtype(state, layers)
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


def _dense_layers(spec: CircuitSpec, state: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Dense mode: each layer one ``(D, D)`` matrix built by one gather + one product."""
    rot = _rotation_matrices(spec, weights).flatten(1)  # (depth, n * 4)
    layers = rot[:, _dense_index(spec, weights.device)].prod(dim=1)  # (depth, D, D)
    return _apply_dense(state, layers)


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
    if mode is None:
        mode = "dense" if use_dense(n, x.shape[0]) else "statevector"
    if mode == "dense" and spec.rotation_gate == "RY" and n <= DENSE_MAX_QUBITS:  # (2**n)**3 basis
        state = _dense_ry_circuit(spec, x, weights)
    elif mode == "dense":
        state = embed(spec, x)
        if spec.depth > 0:
            state = _dense_layers(spec, state, weights)
    elif mode == "statevector":
        state = apply_layers(spec, embed(spec, x), weights, adjoint=adjoint)
    else:
        raise ValueError(f"unknown simulation mode {mode!r}; use 'dense', 'statevector' or None (automatic)")
    if shots is None:
        out = expval_z(state, n)
    else:
        out = sample_expval_z(state, n, shots, generator)
    return out.reshape(*lead, n)

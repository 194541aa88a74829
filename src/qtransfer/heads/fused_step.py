"""A hand-derived training step for the dressed quantum head: forward and backward in 40 tensor operations.

Why: on the published problem one training step is a few thousand floating-point
operations (batch 4, 4 qubits, 16 amplitudes), so its time is the fixed cost of each tensor
operation, not arithmetic. Autograd dispatches 161 of them for the forward and backward
pass; this module writes the whole gradient out by hand in 40, each writing into a buffer
allocated once per batch size (0.19 against 1.2 ms per step with the optimizer,
``benchmarks/training_step.py``), and gives the same numbers as autograd to float
rounding (``tests/test_fused_step.py``: float64 to 1e-12 and against finite differences;
whole training runs in float32).

It applies to :class:`~qtransfer.heads.dressed.DressedQuantumHead` with the built-in simulator,
exact expectation values, a real embedding (``hadamard_ry`` or ``ry``), RY layers
(``cnot_ry`` or ``ry``) and at most :data:`~qtransfer.quantum.dense.DENSE_MAX_QUBITS`
qubits: the published head and its product ablation. :func:`fused_step_for` returns
``None`` for anything else, and training uses autograd.

The model, row convention (``B`` samples, ``n`` wires, ``D = 2**n``, ``L`` layers)::

    z = x W1^T + b1,  t = tanh z                 (B, n)
    wire states  cos(h + o), cos(h + o - pi/2)   h = t pi/4 (+ pi/4 after a Hadamard)
    s_0 = product state of the wire states        (B, D)
    M_l = c_l P                                   c_l = product state of (cos w_l/2, sin w_l/2)
    s_l = s_{l-1} M_l,  e = s_L^2 Z               Z: (D, n) signs of <Z_i>
    logits = e W2^T + b2, loss = mean cross-entropy

Every product state ``prod_q v_q[bit_q(k)]`` is differentiated by the same trick: the
derivative of ``cos(h + o)`` in ``h`` is ``cos(h + o + pi/2)``, so the derivative of a
product state in wire ``q``'s half-angle is the product state with that wire's half-angle
shifted by ``pi/2``. One ``cos`` and one chain of outer products over ``(1 + n)`` copies of
every angle row (unshifted, then shifted on each wire in turn) give all product states and
all their derivatives at once. The backward pass through the layers keeps every ``s_l``:
``g_L = 2 s_L * (de Z^T)``, ``g_{l-1} = g_l M_l^T``, ``dM_l = s_{l-1}^T g_l``,
``dc_l = dM_l P^T``; then ``dh`` for every row is one batched product of the shifted
product states with ``(g_0; dc)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qtransfer.heads.dressed import DressedQuantumHead
from qtransfer.quantum.dense import DENSE_MAX_QUBITS, layer_basis
from qtransfer.quantum.measurement import z_signs

__all__ = ["FusedQuantumHeadStep", "fused_step_for"]


def fused_step_for(head: nn.Module) -> FusedQuantumHeadStep | None:
    """The fused step for ``head``, or ``None`` where it does not apply (autograd is then used)."""
    if type(head) is not DressedQuantumHead:
        return None
    layer = head.quantum
    spec = layer.spec
    if spec is None:  # a general circuit: autograd through the general executor
        return None
    if not layer.is_builtin or layer.shots is not None:  # PennyLane backend, or shot sampling
        return None
    if layer.noise is not None:  # density-matrix simulation: autograd
        return None
    if spec.embedding not in ("hadamard_ry", "ry") or spec.rotation_gate != "RY" or spec.n_qubits > DENSE_MAX_QUBITS:
        return None
    params = list(head.parameters())
    first = params[0]
    if not first.dtype.is_floating_point or any(p.dtype != first.dtype or p.device != first.device for p in params):
        return None
    if not all(p.requires_grad for p in params):
        return None
    return FusedQuantumHeadStep(head)


class _Workspace:
    """Every buffer and view one step needs at batch size ``b``, allocated once."""

    def __init__(self, step: FusedQuantumHeadStep, b: int) -> None:
        n, dim, depth = step.n, step.dim, step.depth
        rows = b + depth  # one angle row per sample, then one per layer
        kw = {"device": step.device, "dtype": step.dtype}
        self.b = b
        # Row values: tanh(z) for the samples, the weights for the layers. Half-angle h = scale * value;
        # offsets: (cos, sin) of h, pi/4 more after a Hadamard on the input rows, and copy 1 + q of
        # every row shifts wire q by pi/2 (the derivative).
        self.values = torch.empty(rows, n, **kw)
        self.values_in, self.values_w = self.values[:b], self.values[b:]
        self.values_view = self.values[:, None, :, None]
        scale = torch.full((rows, 1, 1, 1), 0.5, **kw)
        scale[:b] = math.pi / 4  # h = (pi/2 * tanh z) / 2
        self.scale = scale
        offsets = torch.zeros(rows, 1 + n, n, 2, **kw)
        offsets[..., 1] -= math.pi / 2
        if step.hadamard:
            offsets[:b] += math.pi / 4
        for q in range(n):
            offsets[:, 1 + q, q, :] += math.pi / 2
        self.offsets = offsets
        self.wires = torch.empty(rows, 1 + n, n, 2, **kw)  # cos(h + offsets): every wire's 2-vector
        # The product states as a chain of outer products, wire 0 most significant.
        self.products = torch.empty(rows, 1 + n, dim, **kw)
        partial = [torch.empty(rows, 1 + n, 2**k, **kw) for k in range(2, n)] + [self.products]
        self.kron = [
            (prev[..., :, None], self.wires[..., k, None, :], out.view(rows, 1 + n, 2 ** k, 2))
            for k, prev, out in zip(range(1, n), [self.wires[..., 0, :]] + partial[:-1], partial)
        ]
        self.base = self.products[:, 0]  # the product states themselves
        self.shifted = self.products[:, 1:]  # their derivatives, one per wire: (rows, n, dim)
        self.s0, self.coefficients = self.base[:b], self.base[b:]
        self.layer_flat = torch.empty(depth, dim * dim, **kw)
        self.layers = [m.view(dim, dim) for m in self.layer_flat.unbind(0)]
        self.layers_t = [m.t() for m in self.layers]
        self.states = torch.empty(depth + 1, b, dim, **kw)  # s_0 .. s_L
        self.state = list(self.states.unbind(0))
        self.states_before_t = self.states[:depth].transpose(1, 2)  # s_{l-1}^T, (L, dim, b)
        self.probs = torch.empty(b, dim, **kw)
        self.e = torch.empty(b, n, **kw)
        self.d_logits = torch.empty(b, step.n_classes, **kw)
        self.d_logits_t = self.d_logits.t()
        self.ones = torch.ones(b, **kw)
        self.d_e = torch.empty(b, n, **kw)
        self.d_rows = torch.empty(rows, dim, **kw)  # dloss / d(product state) of every row
        self.d_rows_col = self.d_rows.unsqueeze(2)
        self.d_layer_states = torch.empty(depth, b, dim, **kw)  # g_1 .. g_L
        self.g = [self.d_rows[:b]] + list(self.d_layer_states.unbind(0))
        self.d_layers = torch.empty(depth, dim, dim, **kw)
        self.d_layers_flat = self.d_layers.view(depth, dim * dim)
        self.d_coefficients = self.d_rows[b:]
        self.d_half = torch.empty(rows, n, 1, **kw)  # dloss / dh
        self.d_half_in, self.d_half_w = self.d_half[:b, :, 0], self.d_half[b:, :, 0]
        self.half = torch.full((), 0.5, **kw)
        self.quarter_pi = torch.full((), math.pi / 4, **kw)
        self.slope = torch.empty(b, n, **kw)  # dh / dz = pi/4 (1 - tanh^2 z)
        self.d_z = torch.empty(b, n, **kw)
        self.d_z_t = self.d_z.t()


class FusedQuantumHeadStep:
    """Loss gradient of a :class:`~qtransfer.heads.dressed.DressedQuantumHead` on a mini-batch, by hand.

    ``step(x, neg_target, logits_out)`` runs the forward pass, writes the logits into
    ``logits_out`` and the gradient of the mean cross-entropy into :attr:`grads` (aligned
    with ``head.parameters()``). ``neg_target`` is ``-one_hot(y) / len(y)``. Call it under
    ``torch.no_grad()``; it does not touch ``p.grad``.

    Example:
        >>> from qtransfer.heads import build_head
        >>> head = build_head("quantum", 8, 2, seed=0)
        >>> step = fused_step_for(head)
        >>> x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
        >>> y, logits = torch.tensor([0, 1, 1, 0]), torch.empty(4, 2)
        >>> with torch.no_grad():
        ...     _ = step(x, -nn.functional.one_hot(y, 2) / len(y), logits)
        >>> torch.allclose(logits, head(x), rtol=0, atol=1e-6), [g.shape for g in step.grads][2]
        (True, torch.Size([6, 4]))
    """

    def __init__(self, head: DressedQuantumHead) -> None:
        spec = head.quantum.spec
        self.n, self.depth, self.dim = spec.n_qubits, spec.depth, 2**spec.n_qubits
        self.n_classes = head.post.out_features
        self.hadamard = spec.embedding == "hadamard_ry"
        weight = head.pre.weight
        self.device, self.dtype = weight.device, weight.dtype
        self.basis = layer_basis(spec, self.device, self.dtype)  # (D, D * D)
        self.basis_t = self.basis.t()
        self.signs = z_signs(self.n, self.device, self.dtype)  # (D, n)
        self.signs_2t = (2 * self.signs.t()).contiguous()
        # Views of the parameters stay valid: optimizers and load_state_dict update them in place.
        self.w1_t, self.b1 = head.pre.weight.t(), head.pre.bias
        self.weights = head.quantum.weights
        self.w2, self.w2_t, self.b2 = head.post.weight, head.post.weight.t(), head.post.bias
        self.params = list(head.parameters())
        self.grads = [torch.zeros_like(p) for p in self.params]
        by_param = dict(zip(map(id, self.params), self.grads))
        self.g_w1, self.g_b1 = by_param[id(head.pre.weight)], by_param[id(head.pre.bias)]
        self.g_weights = by_param[id(self.weights)].view(self.depth, self.n)
        self.g_w2, self.g_b2 = by_param[id(head.post.weight)], by_param[id(head.post.bias)]
        self._workspaces: dict[int, _Workspace] = {}

    def __call__(self, x: torch.Tensor, neg_target: torch.Tensor, logits_out: torch.Tensor) -> torch.Tensor:
        ws = self._workspaces.get(x.shape[0])
        if ws is None:
            ws = self._workspaces[x.shape[0]] = _Workspace(self, x.shape[0])
        b = ws.b
        # Forward: angles -> product states (and their derivatives) -> layers -> <Z> -> logits.
        torch.addmm(self.b1, x, self.w1_t, out=ws.values_in)
        ws.values_in.tanh_()
        ws.values_w.copy_(self.weights)
        torch.addcmul(ws.offsets, ws.values_view, ws.scale, out=ws.wires).cos_()
        if self.n == 1:
            ws.products.copy_(ws.wires[..., 0, :])
        for previous, wire, out in ws.kron:
            torch.mul(previous, wire, out=out)
        if self.depth:
            torch.mm(ws.coefficients, self.basis, out=ws.layer_flat)
        ws.state[0].copy_(ws.s0)
        for layer in range(self.depth):
            torch.mm(ws.state[layer], ws.layers[layer], out=ws.state[layer + 1])
        final = ws.state[self.depth]
        torch.mul(final, final, out=ws.probs)
        torch.mm(ws.probs, self.signs, out=ws.e)
        torch.addmm(self.b2, ws.e, self.w2_t, out=logits_out)
        # Backward: mean cross-entropy -> post -> <Z> -> layers -> product states -> angles -> pre.
        torch.add(neg_target, torch.softmax(logits_out, 1), alpha=1.0 / b, out=ws.d_logits)
        torch.mm(ws.d_logits_t, ws.e, out=self.g_w2)
        torch.mv(ws.d_logits_t, ws.ones, out=self.g_b2)
        torch.mm(ws.d_logits, self.w2, out=ws.d_e)
        g_final = ws.g[self.depth]
        torch.mm(ws.d_e, self.signs_2t, out=g_final).mul_(final)
        for layer in range(self.depth, 0, -1):
            torch.mm(ws.g[layer], ws.layers_t[layer - 1], out=ws.g[layer - 1])
        if self.depth:
            torch.bmm(ws.states_before_t, ws.d_layer_states, out=ws.d_layers)
            torch.mm(ws.d_layers_flat, self.basis_t, out=ws.d_coefficients)
        torch.bmm(ws.shifted, ws.d_rows_col, out=ws.d_half)
        torch.mul(ws.d_half_w, ws.half, out=self.g_weights)
        t = ws.values_in
        torch.addcmul(ws.quarter_pi, t, t, value=-math.pi / 4, out=ws.slope)
        torch.mul(ws.d_half_in, ws.slope, out=ws.d_z)
        torch.mm(ws.d_z_t, x, out=self.g_w1)
        torch.mv(ws.d_z_t, ws.ones, out=self.g_b1)
        return logits_out

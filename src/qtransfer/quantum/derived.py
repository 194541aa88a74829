"""The general executor's kernels and their gradients, written out by hand: one autograd node per run.

Recorded by autograd, a circuit run is about ten graph nodes per layer, each costing the backward
engine some 15 µs: most of a training step at a few qubits, where the states are a few hundred
numbers. This module runs a :class:`~qtransfer.quantum.compile.Plan` under ``no_grad``, keeps
the state before each kernel, and writes every vector-Jacobian product out, as the published
family's hand-derived step does for its own circuit, so that a whole run is one node:

* angles: ``a = scale * prod_k (e[i_k] - c_k) + shift`` over ``e = [x, w, 1]``; every
  parameterised gate has one angle (``Rot`` and ``U3`` are split into their three rotations:
  ``Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)``, ``U3(theta, phi, lam) = P(phi) RY(theta) P(lam)``);
* matrices: ``C0 + cos(h a) C1 + sin(h a) C2`` (:mod:`~qtransfer.quantum.matrices`), all gates of a
  size and batchedness at once; ``dL/da = h (cos(h a) <G, C2> - sin(h a) <G, C1>)`` with
  ``<G, C> = Re sum conj(G) C``;
* a layer's runs of one-qubit gates: one product of 2x2 matrices per wire (padded with the
  identity, all runs at once), then Kronecker blocks (all blocks of all layers at once): the
  whole register up to 6 wires, else 4 wires at a time, each block one batched matrix product
  that also moves its wires last; for ``y = v K^T``, ``dv = dy conj(K)`` and ``dK = (v^H dy)^T``
  (for a block shared by the batch ``conj(dy^H y) K`` from its output: one product over the
  batch). A sparse layer goes wire by wire. Up to 8 wires, a layer's gates that read inputs (a
  matrix per sample) and the rest (one matrix for the batch) are two passes, the former wire by
  wire (a sweep of moving 2x2 products when most wires have one); up to 5 wires, consecutive
  whole-register kernels shared by the batch are first multiplied into one ``2**n x 2**n`` matrix;
* from ``|0...0>`` (``state=None``), a leading sweep of per-sample blocks over the register is the
  Kronecker product of their first columns; its gradient contracts the incoming one with the
  partial products, last block first;
* Z words and probabilities (a ``readout`` matrix) in the same node: ``|Re|^2`` and ``|Im|^2``
  side by side times the readout's rows, each repeated;
* a permutation (CNOT, SWAP, Toffoli runs) is one gather, its gradient the inverse gather; a
  diagonal gate one product, ``dx = dy conj(d)``; any other gate one matrix product each way.

Every kernel is unitary, so the backward can also recompute each kernel's input from its output
instead of keeping it (adjoint mode: two states in memory, one more pass per kernel), which the
executor picks for large runs. Gradients follow torch's convention for complex tensors
(``dL/dRe z + i dL/dIm z``). ``tests/test_quantum_derived.py`` holds this to a gate-by-gate run
recorded by autograd, and ``tests/test_quantum_executor.py`` to PennyLane, values and gradients.

Example:
    >>> from qtransfer.quantum.templates import angle_embedding
    >>> from qtransfer.quantum.compile import compile_circuit
    >>> plan = compile_circuit(angle_embedding(2, rotation="Y"))
    >>> x = torch.tensor([[0.3, 0.0]])
    >>> zero = torch.tensor([[1.0, 0.0, 0.0, 0.0]])       # |00>; the circuit is real, so is the state
    >>> state = run_plan(plan, zero, x, torch.zeros(0))
    >>> state, state.square().sum().item()
    (tensor([[0.9888, 0.0000, 0.1494, 0.0000]]), 1.0)
    >>> torch.equal(run_plan(plan, None, x, torch.zeros(0)), state)  # from |00>: the product of columns
    True
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .compile import BLOCK_SHARE, BLOCK_WIRES, ONE_BLOCK_MAX, Diagonal, Layer, Permutation, Plan
from .matrices import FIXED, ROTATION
from .description import Const, Input, Operation
from .states import complex_dtype, zero_state

__all__ = ["local_index", "permutation_index", "probabilities", "run_plan"]

#: gates of three angles, as their rotations in the order they act
_SPLIT = {"Rot": (("RZ", 0), ("RY", 1), ("RZ", 2)), "U3": (("PhaseShift", 2), ("RY", 0), ("PhaseShift", 1))}

#: up to this many wires consecutive shared whole-register kernels are multiplied into one matrix first
UNITARY_MAX = 5
#: up to this many wires a layer's input gates and shared gates are applied as two passes
SPLIT_MAX = 8
#: a layer's per-sample gates on at least this share of the wires go as a sweep (each wire moved last)
SWEEP_SHARE = 0.5


def _elementary(op: Operation) -> list[tuple[str, object]]:
    """``(name, angle or None)`` of the one-angle or fixed gates making ``op``, in the order they act."""
    if op.name in _SPLIT:
        return [(name, op.params[i]) for name, i in _SPLIT[op.name]]
    return [(op.name, op.params[0] if op.params else None)]


class _Gates:
    """Gate slots of one matrix size, all batched (an angle reads an input: rows index ``e = [x, w, 1]``
    per sample) or none (rows index ``e = [w, 1]``): ``C0 + cos(h a) C1 + sin(h a) C2`` for all at once,
    ``a = scale * prod_k (e[i_k] - c_k) + shift`` (one factor but for products of inputs; unused factors
    read the 1). A fixed gate is a slot with ``C0`` its matrix; the identity pads runs."""

    def __init__(self, slots: list[tuple[str | None, object]], batched: bool, n_in: int, n_w: int, size: int,
                 device: torch.device, real: torch.dtype, dtype: torch.dtype) -> None:
        one = n_in + n_w if batched else n_w
        width = max((len(a.index) for _, a in slots if isinstance(a, Input)), default=1)
        rows, consts, halves = [], [], []
        eye = tuple(tuple(float(i == j) for j in range(size)) for i in range(size))
        zero = ((0,) * size,) * size

        def row(indices: tuple, center: float, scale: float, shift: float) -> tuple:
            pad = width - len(indices)
            return tuple(indices) + (one,) * pad, (center,) * len(indices) + (0.0,) * pad, scale, shift

        for name, angle in slots:
            if name is None or name in FIXED:
                rows.append(row((), 0.0, 0.0, 0.0))
                consts.append((FIXED[name] if name else eye, zero, zero))
                halves.append(1.0)
                continue
            if isinstance(angle, Const):
                rows.append(row((), 0.0, 0.0, angle.value))
            elif isinstance(angle, Input):
                rows.append(row(angle.index, angle.center, angle.scale, angle.shift))
            else:
                rows.append(row(((n_in if batched else 0) + angle.index,), 0.0, angle.scale, angle.shift))
            consts.append(ROTATION[name][:3])
            halves.append(ROTATION[name][3])
        self.index = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)  # (G, K)
        self.center = torch.tensor([r[1] for r in rows], dtype=real, device=device)
        # h a = (h scale) u + h shift, exactly as h (scale u + shift): every h is 1/2 or 1
        self.h_scale = torch.tensor([h * r[2] for h, r in zip(halves, rows)], dtype=real, device=device)
        self.h_shift = torch.tensor([h * r[3] for h, r in zip(halves, rows)], dtype=real, device=device)
        c = torch.tensor(consts, dtype=torch.complex128)
        c = (c if dtype.is_complex else c.real).to(device=device, dtype=dtype)  # (G, 3, d, d)
        self.c0, self.c1, self.c2 = (c[:, i].contiguous() for i in range(3))

    def matrices(self, ext: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        u = ext[..., self.index] - self.center  # (..., G, K)
        ha = torch.addcmul(self.h_shift, u.prod(-1) if u.shape[-1] > 1 else u[..., 0], self.h_scale)
        cos, sin = torch.cos(ha)[..., None, None], torch.sin(ha)[..., None, None]
        return torch.addcmul(torch.addcmul(self.c0, cos, self.c1), sin, self.c2), (u, cos, sin)

    def backward(self, grad: torch.Tensor, saved: tuple, g_ext: torch.Tensor) -> None:
        """Adds ``dL/de`` to ``g_ext`` given ``grad`` ``= dL/dM`` of every slot."""
        u, cos, sin = saved
        prod = grad.conj() * (cos * self.c2 - sin * self.c1)
        ga = (prod.real if prod.is_complex() else prod).sum((-2, -1)) * self.h_scale
        width = u.shape[-1]
        if width == 1:
            g_ext.index_add_(-1, self.index[:, 0], ga)
            return
        if width == 2:
            others = u.flip(-1)
        else:  # the product of the other factors, without dividing (a factor may be 0)
            ones = torch.ones_like(u[..., :1])
            before = torch.cumprod(torch.cat([ones, u[..., :-1]], -1), -1)
            after = torch.cumprod(torch.cat([ones, u.flip(-1)[..., :-1]], -1), -1).flip(-1)
            others = before * after
        g_ext.index_add_(-1, self.index.flatten(), (ga[..., None] * others).flatten(-2))


class _Blocks:
    """All Kronecker blocks of ``k`` wires of one batchedness: each block's wires carry a run of
    one-qubit gates (the identity where a layer has none), ``R = P k`` runs padded to length ``L``."""

    def __init__(self, k: int, gates: _Gates, length: int, count: int, device: torch.device) -> None:
        self.k, self.gates, self.length, self.count = k, gates, length, count
        index = _kron_index(k)
        self.index = index.flatten().to(device)
        width = 2**k
        select = torch.zeros(k * width * width, 4 * k, dtype=torch.float64)
        select[torch.arange(k * width * width), index.flatten()] = 1
        self.select = select.to(device=device, dtype=gates.c0.dtype)  # gathered entries -> their factor


class _Tables:
    """Everything of a plan that does not depend on the numbers, on one device, in one dtype."""

    def __init__(self, plan: Plan, device: torch.device, real: torch.dtype, dtype: torch.dtype) -> None:
        circuit = plan.circuit
        n = self.n = circuit.n_qubits
        n_in, n_w = self.n_in, self.n_w = circuit.n_inputs, circuit.n_weights
        self.dtype = dtype
        runs: dict[tuple[int, bool], list[list[list]]] = {}  # (k, batched) -> blocks -> wires -> gates
        pairs: dict[bool, list] = {}  # batched -> two-qubit slots
        self.kernels: list[tuple] = []

        def pair(op: Operation) -> tuple:
            (name, angle), = _elementary(op)
            batched = isinstance(angle, Input)
            slots = pairs.setdefault(batched, [])
            slots.append((name, angle))
            return batched, len(slots) - 1

        for step in plan.steps:
            if isinstance(step, Layer):
                if len(step.runs) < BLOCK_SHARE * n:
                    spans = [(wire, 1) for wire, _ in step.runs]
                else:
                    width = n if n <= ONE_BLOCK_MAX else BLOCK_WIRES
                    spans = [(s, min(width, n - s)) for s in range(0, n, width)]
                # small registers: each wire's run up to its last input gate (matrices per sample), then the
                # rest (shared matrices); larger ones: one pass per block, whatever it holds
                lead, rest = {}, {}
                for wire, ops in step.runs:
                    gates = [g for op in ops for g in _elementary(op)]
                    inputs = [i + 1 for i, (_, a) in enumerate(gates) if isinstance(a, Input)]
                    cut = (max(inputs) if n <= SPLIT_MAX else len(gates)) if inputs else 0
                    lead[wire], rest[wire] = gates[:cut], gates[cut:]
                for part, batched in ((lead, True), (rest, False)):
                    if not any(part.values()):
                        continue
                    # small registers: per-sample gates wire by wire (a Kronecker product per sample costs more)
                    part_spans, sweep = spans, len(spans) > 1 and spans[0][1] > 1  # blocks that each move their wires last
                    if batched and n <= SPLIT_MAX:
                        wires = [w for w in sorted(part) if part[w]]
                        sweep = SWEEP_SHARE * n <= len(wires) > 1  # most wires: a sweep, one moving product per wire
                        part_spans = [(w, 1) for w in (range(n) if sweep else wires)]
                    for start, k in part_spans:
                        members = [part.get(w, []) for w in range(start, start + k)]
                        if not any(members):
                            if sweep:
                                self.kernels.append(("move", 2**k))
                            continue
                        bucket = runs.setdefault((k, batched), [])
                        self.kernels.append(("block", (k, batched), len(bucket), None if sweep else start))
                        bucket.append(members)
            elif isinstance(step, Permutation):
                gather = permutation_index(n, step.ops, device)
                inverse = torch.empty_like(gather)
                inverse[gather] = torch.arange(2**n, device=device)
                self.kernels.append(("perm", gather, inverse))
            elif isinstance(step, Diagonal):
                self.kernels.append(("diag", pair(step.op), local_index(n, step.op.wires).to(device), step.op.wires))
            else:
                self.kernels.append(("dense", pair(step.op), step.op.wires))
        self.blocks = {}
        for (k, batched), blocks in runs.items():
            length = max(len(m) for members in blocks for m in members)
            slots = [g for members in blocks for m in members for g in m + [(None, None)] * (length - len(m))]
            gates = _Gates(slots, batched, n_in, n_w, 2, device, real, dtype)
            self.blocks[k, batched] = _Blocks(k, gates, length, len(blocks), device)
        self.pairs = {b: _Gates(slots, b, n_in, n_w, 4, device, real, dtype) for b, slots in pairs.items()}
        #: from |0...0>: a leading sweep of per-sample blocks over the whole register builds the product
        #: of their first columns instead (see _Run.product)
        self.zero_kernels = _product_start(self.kernels, n)
        if n <= UNITARY_MAX:
            self.kernels = _merge_shared(self.kernels, n)
            self.zero_kernels = _merge_shared(self.zero_kernels, n)


def _product_start(kernels: list[tuple], n: int) -> list[tuple]:
    """``kernels`` for a run from ``|0...0>``: when they start with a sweep of per-sample blocks (each
    moving its wires last) that covers the register, those become one ``("product", members)``:
    ``(key, index, width)`` of each block in order (``key`` None for wires the sweep only moves)."""
    members, wires = [], 0
    for kernel in kernels:
        if kernel[0] == "block" and kernel[1][1] and kernel[3] is None:
            members.append((kernel[1], kernel[2], 2 ** kernel[1][0]))
            wires += kernel[1][0]
        elif kernel[0] == "move" and members:
            members.append((None, None, kernel[1]))
            wires += kernel[1].bit_length() - 1
        else:
            break
        if wires == n:
            return [("product", tuple(members))] + kernels[len(members):]
    return kernels


def _merge_shared(kernels: list[tuple], n: int) -> list[tuple]:
    """Runs of two or more kernels that act on the whole register with one matrix for the batch
    (blocks of all ``n`` wires, permutations) become one ``("unitary", run)``: their product is
    built on ``2**n x 2**n`` matrices, and the batch sees one matrix product."""
    merged, run = [], []

    def flush() -> None:
        if len(run) > 1:
            merged.append(("unitary", tuple(run), sum(k[0] == "unitary" for k in merged)))
        else:
            merged.extend(run)
        run.clear()

    for kernel in kernels:
        shared = kernel[0] == "perm" or kernel[0] == "block" and not kernel[1][1] and kernel[1][0] == n
        if shared:
            run.append(kernel)
        else:
            flush()
            merged.append(kernel)
    flush()
    return merged


@lru_cache(maxsize=256)
def permutation_index(n: int, ops: tuple[Operation, ...], device: torch.device) -> torch.Tensor:
    """``new = state[:, index]`` applies the permutation gates ``ops`` (CNOT, SWAP, Toffoli) in order."""
    index = torch.arange(2**n, dtype=torch.long, device=device)
    image = index.clone()
    bit = lambda w: 1 << (n - 1 - w)  # noqa: E731
    for op in ops:
        if op.name == "CNOT":
            c, t = map(bit, op.wires)
            image = torch.where(image & c != 0, image ^ t, image)
        elif op.name == "Toffoli":
            c1, c2, t = map(bit, op.wires)
            image = torch.where((image & c1 != 0) & (image & c2 != 0), image ^ t, image)
        else:  # SWAP
            a, b = map(bit, op.wires)
            image = torch.where((image & a != 0) != (image & b != 0), image ^ (a | b), image)
    gather = torch.empty_like(image)
    gather[image] = index
    return gather


def local_index(n: int, wires: tuple[int, ...]) -> torch.Tensor:
    """``(2**n,)``: the basis index of ``wires`` (first wire most significant) in every basis state."""
    index = torch.arange(2**n)
    local = torch.zeros(2**n, dtype=torch.long)
    for w in wires:
        local = 2 * local + ((index >> (n - 1 - w)) & 1)
    return local


def _kron_index(k: int) -> torch.Tensor:
    """``(k, W, W)`` into ``k`` flattened 2x2 matrices: ``K[i, j] = prod_q m_q[bit_q(i), bit_q(j)]``."""
    index = torch.arange(2**k)
    bits = torch.stack([(index >> (k - 1 - q)) & 1 for q in range(k)])  # (k, W)
    return 2 * bits[:, :, None] + bits[:, None, :] + 4 * torch.arange(k)[:, None, None]


@lru_cache(maxsize=128)
def _tables(plan: Plan, device: torch.device, real: torch.dtype, dtype: torch.dtype) -> _Tables:
    return _Tables(plan, device, real, dtype)


def _mh(m: torch.Tensor) -> torch.Tensor:
    return m.transpose(-1, -2).conj()


class _Run:
    """One forward pass and what its backward needs."""

    def __init__(self, t: _Tables, x: torch.Tensor, w: torch.Tensor) -> None:
        self.t = t
        batch = self.batch = x.shape[0]
        self.device = x.device
        one = torch.ones(1, dtype=x.dtype, device=x.device)
        self.ext = {False: torch.cat([w, one])}
        if any(b for _, b in t.blocks) or True in t.pairs:
            self.ext[True] = torch.cat([x, w.expand(batch, -1), one.expand(batch, 1)], 1)
        self.krons, self.saved_blocks = {}, {}
        for key, blocks in t.blocks.items():
            m, saved = blocks.gates.matrices(self.ext[key[1]])
            m = m.unflatten(-3, (blocks.count * blocks.k, blocks.length))  # (..., R, L, 2, 2)
            prefix = [m[..., 0, :, :]]
            for j in range(1, blocks.length):
                prefix.append(m[..., j, :, :] @ prefix[-1])
            if blocks.k == 1:
                self.krons[key] = prefix[-1]
                self.saved_blocks[key] = (m, prefix, (prefix[-1],), saved)
                continue
            fused = prefix[-1].unflatten(-3, (blocks.count, blocks.k)).flatten(-3)  # (..., P, 4k)
            parts = fused[..., blocks.index].unflatten(-1, (blocks.k, 2**blocks.k, 2**blocks.k)).unbind(-3)
            kron = parts[0]
            for part in parts[1:]:
                kron = kron * part
            self.krons[key] = kron
            self.saved_blocks[key] = (m, prefix, parts, saved)
        self.products = {}
        self.pair_mats, self.saved_pairs = {}, {}
        for b, gates in t.pairs.items():
            self.pair_mats[b], self.saved_pairs[b] = gates.matrices(self.ext[b])

    def unitary(self, run: tuple, index: int) -> torch.Tensor:
        """The product of a run of shared whole-register kernels; the partial products kept."""
        u = None
        products = []
        for kernel in run:
            if kernel[0] == "perm":
                u = torch.eye(kernel[1].numel(), dtype=self.t.dtype, device=kernel[1].device)[kernel[1]] if u is None \
                    else u[kernel[1]]
            else:
                k = self.krons[kernel[1]][kernel[2]]
                u = k if u is None else k @ u
            products.append(u)
        self.products[index] = products
        return u

    def product(self, members: tuple) -> torch.Tensor:
        """``|0...0>`` through a sweep of per-sample blocks: the Kronecker product of their first columns
        (the identity's where a wire has no gate); the partial products kept for the backward."""
        columns = [zero_state(self.batch, width, self.t.dtype, self.device) if key is None
                   else self.krons[key][:, index, :, 0] for key, index, width in members]
        state, partial = columns[0], []
        for column in columns[1:]:
            partial.append(state)
            state = (state[:, :, None] * column[:, None, :]).flatten(1)
        self.columns, self.partial = columns, partial
        return state

    def product_grad(self, members: tuple, grad: torch.Tensor, g_krons: dict) -> None:
        """The gradients of the blocks' first columns in :meth:`product` (the other columns get none):
        the last column's from the partial product before it, then that column contracted away."""
        for p in range(len(members) - 1, -1, -1):
            key, index, width = members[p]
            view = grad.view(self.batch, -1, width)
            if p:
                g_column = (self.partial[p - 1].conj()[:, None, :] @ view)[:, 0]
                grad = (view @ self.columns[p].conj()[:, :, None])[..., 0]
            else:
                g_column = grad
            if key is not None:
                g = torch.zeros(self.batch, width, width, dtype=grad.dtype, device=grad.device)
                g[:, :, 0] = g_column
                g_krons[key][index] = g
        self.columns = self.partial = None

    def pair(self, item: tuple) -> torch.Tensor:
        return self.pair_mats[item[0]][..., item[1], :, :]

    def forward(self, state: torch.Tensor | None, keep: bool) -> torch.Tensor:
        """The final state from ``state`` (None: ``|0...0>``); ``keep``: the state before every kernel, for
        the backward (else the backward recomputes them from the final state: adjoint mode, two states in
        memory instead of one per kernel)."""
        self.states = []
        self.kernels = self.t.kernels
        if state is None:
            self.kernels = self.t.zero_kernels
            if self.kernels[0][0] != "product":
                state = zero_state(self.batch, 2**self.t.n, self.t.dtype, self.device)
        for kernel in self.kernels:
            if keep:
                self.states.append(state)
            kind = kernel[0]
            if kind == "product":
                state = self.product(kernel[1])
            elif kind == "block":
                state = _block(state, self.krons[kernel[1]][..., kernel[2], :, :], kernel[3])
            elif kind == "move":
                state = state.view(state.shape[0], kernel[1], -1).transpose(1, 2).reshape(state.shape)
            elif kind == "perm":
                state = torch.gather(state, 1, kernel[1].expand_as(state))
            elif kind == "unitary":
                state = state @ self.unitary(kernel[1], kernel[2]).transpose(0, 1)
            elif kind == "diag":
                state = state * self.pair(kernel[1]).diagonal(dim1=-2, dim2=-1)[..., kernel[2]]
            else:
                state = _dense(state, self.pair(kernel[1]), kernel[2], self.t.n)
        self.final = state
        return state

    def _back(self, kernel: tuple, y: torch.Tensor) -> torch.Tensor:
        """``y`` through the kernel's adjoint: the gradient of its input from that of its output, and
        (every kernel being unitary) its input from its output."""
        kind = kernel[0]
        if kind == "block":
            return _block_back(y, self.krons[kernel[1]][..., kernel[2], :, :], kernel[3])
        if kind == "move":
            return y.view(y.shape[0], -1, kernel[1]).transpose(1, 2).reshape(y.shape)
        if kind == "perm":
            return torch.gather(y, 1, kernel[2].expand_as(y))
        if kind == "unitary":
            return y @ self.products[kernel[2]][-1].conj()
        if kind == "diag":
            return y * self.pair(kernel[1]).diagonal(dim1=-2, dim2=-1)[..., kernel[2]].conj()
        return _from_front(_mh(self.pair(kernel[1])) @ _to_front(y, kernel[2], self.t.n), kernel[2], self.t.n)

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(dL/dstate, dL/dx or None, dL/dw)`` from ``grad = dL/d(final state)``. Without kept states
        (adjoint mode) each kernel's input is recomputed from its output by the kernel's adjoint."""
        t = self.t
        g_krons: dict = {key: [None] * blocks.count for key, blocks in t.blocks.items()}
        g_pairs = {b: torch.zeros_like(m) for b, m in self.pair_mats.items()}
        current = self.final
        for kernel in reversed(self.kernels):
            kind = kernel[0]
            if kind == "product":  # always the first kernel; from |0...0>, which has no gradient
                self.product_grad(kernel[1], grad, g_krons)
                grad = None
                break
            state = self.states.pop() if self.states else self._back(kernel, current)  # the kernel's input
            if kind == "block":
                m = self.krons[kernel[1]][..., kernel[2], :, :]
                g_krons[kernel[1]][kernel[2]] = _block_grad(state, current, grad, m, kernel[3], kernel[1][1])
            elif kind == "unitary":
                products = self.products[kernel[2]]
                g_u = grad.transpose(0, 1) @ state.conj()  # y = v U^T: dU = dy^T conj(v)
                for j in range(len(kernel[1]) - 1, -1, -1):
                    sub = kernel[1][j]
                    if sub[0] == "perm":
                        g_u = g_u[sub[2]]
                    elif j:
                        g_krons[sub[1]][sub[2]] = g_u @ _mh(products[j - 1])
                        g_u = _mh(self.krons[sub[1]][sub[2]]) @ g_u
                    else:
                        g_krons[sub[1]][sub[2]] = g_u
            elif kind == "diag":
                (b, pos), local = kernel[1], kernel[2]
                g_d = grad * state.conj()
                g_d = g_d if b else g_d.sum(0)
                g_local = torch.zeros(*g_d.shape[:-1], 2 ** len(kernel[3]), dtype=g_d.dtype, device=g_d.device)
                g_pairs[b][..., pos, :, :] += torch.diag_embed(g_local.index_add_(-1, local, g_d))
            elif kind == "dense":
                v, g = _to_front(state, kernel[2], t.n), _to_front(grad, kernel[2], t.n)
                g_m = g @ _mh(v)
                g_pairs[kernel[1][0]][..., kernel[1][1], :, :] += g_m if kernel[1][0] else g_m.sum(0)
            grad = self._back(kernel, grad)
            current = state
        self.final = None
        g_ext = {b: torch.zeros_like(e) for b, e in self.ext.items()}
        for key, blocks in t.blocks.items():
            m, prefix, parts, saved = self.saved_blocks[key]
            g_kron = torch.stack(g_krons[key], -3)  # (..., P, W, W)
            k = blocks.k
            if k == 1:
                g_fused = g_kron
            else:
                before = [None] * k  # products of the parts before and after each part
                after = [None] * k
                for q in range(1, k):
                    before[q] = parts[0] if q == 1 else before[q - 1] * parts[q - 1]
                    after[k - 1 - q] = parts[k - 1] if q == 1 else after[k - q] * parts[k - q]
                g_parts = []
                for q in range(k):
                    other = before[q] if after[q] is None else after[q] if before[q] is None else before[q] * after[q]
                    g_parts.append(g_kron * other.conj())
                g_parts = torch.stack(g_parts, -3).flatten(-3)  # (..., P, k W W) -> each 2x2 factor by one product
                g_fused = (g_parts @ blocks.select).unflatten(-1, (k, 2, 2)).flatten(-4, -3)
            g_m = [None] * blocks.length  # (..., R, 2, 2) each
            for j in range(blocks.length - 1, 0, -1):
                g_m[j] = g_fused @ _mh(prefix[j - 1])
                g_fused = _mh(m[..., j, :, :]) @ g_fused
            g_m[0] = g_fused
            blocks.gates.backward(torch.stack(g_m, -3).flatten(-4, -3), saved, g_ext[key[1]])
        for b, gates in t.pairs.items():
            gates.backward(g_pairs[b], self.saved_pairs[b], g_ext[b])
        g_w = g_ext[False][: t.n_w]
        g_x = None
        if True in g_ext:
            g_x = g_ext[True][:, : t.n_in]
            g_w = g_w + g_ext[True][:, t.n_in : t.n_in + t.n_w].sum(0)
        return grad, g_x, g_w


def _block(state: torch.Tensor, m: torch.Tensor, start: int | None) -> torch.Tensor:
    """``m`` (``(W, W)`` or per sample ``(B, W, W)``) on wires ``start ... start + log2 W - 1`` in place,
    or (``start`` None) on the leading wires, which then move last (as the executor's sweeps do)."""
    batch, width = state.shape[0], m.shape[-1]
    if start is None:  # y = v m^T on the (B, R, W) view: one batched product, no copy
        v = state.view(batch, width, -1).transpose(1, 2)
        return torch.bmm(v, m.transpose(-1, -2).expand(batch, width, width)).view(batch, -1)
    lead = 2**start
    rest = state.shape[1] // (width * lead)
    if rest == 1:
        if m.ndim == 2:
            return (state.view(batch * lead, width) @ m.transpose(0, 1)).view(batch, -1)
        return (state.view(batch, lead, width) @ m.transpose(1, 2)).view(batch, -1)
    view = state.view(batch, lead, width, rest)
    return (m @ view if m.ndim == 2 else m[:, None] @ view).view(batch, -1)


def _block_back(grad: torch.Tensor, m: torch.Tensor, start: int | None) -> torch.Tensor:
    """``dL/dstate`` of :func:`_block` from ``grad = dL/dy``: for ``y = v m^T``, ``dv = dy conj(m)``
    (``dv^T = m^H dy^T`` for the moving block: transposed views, no copy); for ``y = m v``, ``dv = m^H dy``."""
    batch, width = grad.shape[0], m.shape[-1]
    if start is None:
        g = grad.view(batch, -1, width).transpose(1, 2)
        return torch.bmm(m.mH.expand(batch, width, width), g).view(batch, -1)
    lead = 2**start
    rest = grad.shape[1] // (width * lead)
    if rest == 1:
        return (grad.view(batch * lead, width) @ m.conj()).view(batch, -1) if m.ndim == 2 else \
            (grad.view(batch, lead, width) @ m.conj()).view(batch, -1)
    g = grad.view(batch, lead, width, rest)
    return (m.mH @ g if m.ndim == 2 else m.mH[:, None] @ g).view(batch, -1)


def _block_grad(state: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, start: int | None,
                batched: bool) -> torch.Tensor:
    """``dL/dm`` of :func:`_block` (input ``state``, output ``out``) for a ``W x W`` matrix ``m``,
    summed over the batch unless it is per sample: ``dm = dy^T conj(v)`` for ``y = v m^T``,
    ``sum dy v^H`` for ``y = m v`` (conjugate transposes are views, which BLAS reads as they are).
    A moving block shared by the batch reads its output instead, laid out ``(B R, W)`` as its gradient
    is: ``m`` being unitary, ``conj(v) = conj(y) m``, so ``dm = conj(dy^H y) m``, one product that also
    sums over the batch (the batched product reading the input copies its conjugate view first)."""
    batch, width = state.shape[0], m.shape[-1]
    if start is None:
        if not batched:
            return (grad.view(-1, width).mH @ out.view(-1, width)).conj() @ m
        return torch.bmm(grad.view(batch, -1, width).transpose(1, 2), state.view(batch, width, -1).mH)
    lead = 2**start
    rest = state.shape[1] // (width * lead)
    if rest == 1:
        if not batched:
            return (state.view(batch * lead, width).mH @ grad.view(batch * lead, width)).transpose(0, 1)
        return (state.view(batch, lead, width).mH @ grad.view(batch, lead, width)).transpose(1, 2)
    v, g = state.view(batch, lead, width, rest), grad.view(batch, lead, width, rest)
    if not batched:
        return (g.view(-1, width, rest) @ v.view(-1, width, rest).mH).sum(0)
    return (g @ v.mH).sum(1)


def _to_front(state: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    batch = state.shape[0]
    grid = state.view(batch, *([2] * n)).movedim([1 + w for w in wires], list(range(1, 1 + len(wires))))
    return grid.reshape(batch, 2 ** len(wires), -1)


def _from_front(view: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    batch, k = view.shape[0], len(wires)
    grid = view.reshape(batch, *([2] * n)).movedim(list(range(1, 1 + k)), [1 + w for w in wires])
    return grid.reshape(batch, -1)


def _dense(state: torch.Tensor, m: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    return _from_front(m @ _to_front(state, wires, n), wires, n)


class _PlanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tables, readout, adjoint, state, x, w):
        ctx.run = _Run(tables, x, w)
        final = ctx.run.forward(state, keep=not adjoint)
        ctx.readout = readout
        if readout is None:
            return final
        ctx.final = final
        return _read(final, readout)

    @staticmethod
    def backward(ctx, grad):
        if ctx.readout is not None:  # out = |psi|^2 R: dpsi = 2 psi (dout R^T), on the real view
            final, ctx.final = ctx.final, None
            grad = 2 * _real_view(final) * (grad @ ctx.readout.transpose(0, 1))
            grad = torch.view_as_complex(grad.view(*final.shape, 2)) if final.is_complex() else grad
        g_state, g_x, g_w = ctx.run.backward(grad.contiguous())
        ctx.run = None
        want = ctx.needs_input_grad
        return None, None, None, g_state if want[3] else None, g_x if want[4] else None, g_w if want[5] else None


def _real_view(state: torch.Tensor) -> torch.Tensor:
    """A complex ``(B, D)`` state as ``(B, 2 D)`` real and imaginary parts (no copy); a real one as it is."""
    return torch.view_as_real(state).flatten(-2) if state.is_complex() else state


def _read(state: torch.Tensor, readout: torch.Tensor) -> torch.Tensor:
    """``|psi|^2 R`` as one product: the squared real view of the state times the readout rows (for a
    complex state each row of ``R`` twice, for the real and imaginary parts), not a sum over pairs first."""
    return _real_view(state).square() @ readout


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """``|psi|^2`` (for a complex state: the squares of its real and imaginary parts, which autograd
    differentiates without the ``abs`` kink)."""
    return torch.view_as_real(state).square().sum(-1) if state.is_complex() else state.square()


def run_plan(plan: Plan, state: torch.Tensor | None, x: torch.Tensor, w: torch.Tensor,
             readout: torch.Tensor | None = None, *, adjoint: bool = False) -> torch.Tensor:
    """The final state of ``plan`` from ``state`` ``(B, 2**n)`` for inputs ``x`` ``(B, n_inputs)`` and flat
    weights ``w`` (``x``'s dtype and device); differentiable in all three, as one autograd node.
    ``state`` None: ``|0...0>`` (in the circuit's dtype: real while every gate is, else complex), where
    a leading sweep of per-sample gates becomes the product of their first columns.
    With ``readout`` ``R`` ``(2**n, E)``: the outputs ``|psi|^2 @ R`` instead of the state (measurements
    linear in the probabilities, in the same node); for a complex state ``R`` comes with each row
    repeated, ``(2 * 2**n, E)``, one for the real and one for the imaginary part of each amplitude. ``adjoint``: keep no states for the backward, which
    recomputes each kernel's input from its output (two states in memory instead of one per kernel)."""
    dtype = state.dtype if state is not None else x.dtype if plan.circuit.is_real else complex_dtype(x.dtype)
    tables = _tables(plan, x.device, x.dtype, dtype)
    grads = x.requires_grad or w.requires_grad or state is not None and state.requires_grad
    if torch.is_grad_enabled() and grads:
        return _PlanFunction.apply(tables, readout, adjoint, state, x, w)
    with torch.no_grad():
        final = _Run(tables, x, w).forward(state, keep=False)
        return final if readout is None else _read(final, readout)

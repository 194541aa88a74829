"""Runs a :class:`~qtransfer.quantum.devices.DeviceProgram`: batched over samples, differentiable, CPU or CUDA.

The state is kept as Pauli coordinates ``r_P = Tr(rho P)`` over the ``m`` simulated qubits
(``4**m`` real numbers, qubit 0 most significant): every channel is then a real matrix (its
Pauli transfer matrix), whatever its gates. As in :mod:`qtransfer.quantum.density`, the
circuit runs in the Heisenberg picture: the measured functionals (the circuit's Z words,
weighted sums of Pauli words and probabilities, each with the device's readout error; X and Y
words through the basis change a device appends before reading out) are pulled back through
the steps that read no input once per forward pass, whatever the batch.

One forward pass:

1. every single-qubit chain ``G_c R_c ... R_1 G_0`` (fixed PTMs ``G``, rotations ``R`` by
   functions of the inputs or weights) is multiplied out, chains with the same number of
   rotations together in one batched product;
2. each chain between two-qubit gates is folded into the two-qubit step that follows it
   (``T @ kron(S_a, S_b)``, one batched product for all of them);
3. the functionals are pulled back through the steps after the last one that reads an input
   (one ``16 x 16`` product on a view each);
4. each sample's embedded product state (``prefix``: one ``4``-vector per qubit) is carried
   forward through the steps up to that one, with its own matrices where a step reads an
   input (re-uploading, IQP; none for an embedding-first circuit), and meets the pulled-back
   functionals in one matrix product.
"""

from __future__ import annotations

import torch

from .density import apply_local
from .description import Expval, Probs
from .devices import DeviceProgram, Factor, rotation_basis
from .measurement import sample_counts, shot_estimate, z_signs
from .states import kron_vectors

__all__ = ["DeviceCircuit"]


def _canonical(factors: tuple[Factor, ...]) -> tuple[list, list[Factor]]:
    """``G_0, R_1, G_1, ..., R_c, G_c``: the fixed matrices (None: identity) and the ``c`` rotations."""
    fixed: list = [None]
    rotations: list[Factor] = []
    for f in factors:
        if f.kind == "fixed":
            fixed[-1] = f.matrix if fixed[-1] is None else f.matrix @ fixed[-1]
        else:
            rotations.append(f)
            fixed.append(None)
    return fixed, rotations


class _Chains:
    """Single-qubit chains with ``c`` rotations each, multiplied out together: fixed matrices
    ``(S, c + 1, 4, 4)``, and per rotation its parameter index, scale, offset and ``(A, C, S)`` basis.
    Where some rotation's angle is a polynomial (``Factor.terms``), every angle of the group is
    one: ``monomials`` ``(S, c, T, D)`` index ``theta`` with a trailing 1 (padding), ``scale``
    ``(S, c, T)`` their coefficients."""

    def __init__(self, fixed: torch.Tensor, param: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
                 basis: torch.Tensor, monomials: torch.Tensor | None = None) -> None:
        self.fixed, self.param, self.scale, self.offset, self.basis = fixed, param, scale, offset, basis
        self.monomials = monomials
        self.n_rotations = param.shape[1]

    @classmethod
    def build(cls, chains: list[tuple[list, list[Factor]]], n_params: int) -> _Chains:
        eye = torch.eye(4, dtype=torch.float64)
        fixed = torch.stack([torch.stack([eye if g is None else torch.as_tensor(g, dtype=torch.float64) for g in f])
                             for f, _ in chains])
        rotations = [r for _, rots in chains for r in rots]
        shape = (len(chains), len(chains[0][1]))
        basis = [torch.as_tensor(rotation_basis(r.kind)) for r in rotations]
        basis = torch.stack(basis).reshape(*shape, 3, 4, 4) if basis else torch.zeros(*shape, 3, 4, 4, dtype=torch.float64)
        offset = torch.tensor([r.offset for r in rotations], dtype=torch.float64).reshape(shape)
        param = torch.tensor([r.param for r in rotations], dtype=torch.long).reshape(shape)
        if not any(r.terms for r in rotations):
            scale = torch.tensor([r.scale for r in rotations], dtype=torch.float64).reshape(shape)
            return cls(fixed, param, scale, offset, basis)
        terms = [r.terms or ((r.scale, (r.param,)),) for r in rotations]
        n_terms = max(len(t) for t in terms)
        degree = max(len(mono) for t in terms for _, mono in t)
        one = n_params  # theta's trailing 1
        monomials = torch.tensor([[list(mono) + [one] * (degree - len(mono)) for _, mono in t]
                                  + [[one] * degree] * (n_terms - len(t)) for t in terms], dtype=torch.long)
        coefs = torch.tensor([[c for c, _ in t] + [0.0] * (n_terms - len(t)) for t in terms], dtype=torch.float64)
        return cls(fixed, param, coefs.reshape(*shape, n_terms), offset, basis,
                   monomials.reshape(*shape, n_terms, degree))

    def to(self, device: torch.device, dtype: torch.dtype) -> _Chains:
        return _Chains(self.fixed.to(device, dtype), self.param.to(device), self.scale.to(device, dtype),
                       self.offset.to(device, dtype), self.basis.to(device, dtype),
                       None if self.monomials is None else self.monomials.to(device))

    def _angles(self, theta: torch.Tensor) -> torch.Tensor:
        """``(..., S, c)`` rotation angles."""
        if self.monomials is None:
            return theta[..., self.param] * self.scale + self.offset
        theta1 = torch.cat([theta, theta.new_ones(*theta.shape[:-1], 1)], -1)
        return (theta1[..., self.monomials].prod(-1) * self.scale).sum(-1) + self.offset

    def matrices(self, theta: torch.Tensor) -> torch.Tensor:
        """``(..., S, 4, 4)`` chain matrices for parameters ``theta`` ``(..., P)``."""
        m = self.fixed[:, 0]
        if self.n_rotations == 0:
            return m.expand(*theta.shape[:-1], *m.shape)
        angle = self._angles(theta)  # (..., S, c)
        cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
        rot = self.basis[:, :, 0] + cos * self.basis[:, :, 1] + sin * self.basis[:, :, 2]  # (..., S, c, 4, 4)
        for k in range(self.n_rotations):
            m = self.fixed[:, k + 1] @ (rot[..., k, :, :] @ m)
        return m


class _ChainSet:
    """Chains in their original order, multiplied out group by group (same number of rotations)."""

    def __init__(self, groups: list[_Chains], inverse: torch.Tensor) -> None:
        self.groups, self.inverse = groups, inverse

    @classmethod
    def build(cls, chains: list[tuple[list, list[Factor]]], n_params: int) -> _ChainSet:
        by_count: dict[tuple[int, bool], list[int]] = {}
        for i, (_, rotations) in enumerate(chains):  # polynomial angles in groups of their own
            by_count.setdefault((len(rotations), any(r.terms for r in rotations)), []).append(i)
        order = [i for idx in by_count.values() for i in idx]
        inverse = torch.empty(len(chains), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(chains))
        return cls([_Chains.build([chains[i] for i in idx], n_params) for idx in by_count.values()], inverse)

    def to(self, device: torch.device, dtype: torch.dtype) -> _ChainSet:
        return _ChainSet([g.to(device, dtype) for g in self.groups], self.inverse.to(device))

    def matrices(self, theta: torch.Tensor) -> torch.Tensor:
        """``(..., chains, 4, 4)`` for parameters ``theta`` ``(..., P)``."""
        parts = [g.matrices(theta) for g in self.groups]
        stacked = parts[0] if len(parts) == 1 else torch.cat(parts, -3)
        return stacked.index_select(-3, self.inverse)


def _apply_batched(state: torch.Tensor, op: torch.Tensor, sites: tuple[int, ...], m: int) -> torch.Tensor:
    """``op`` (``(B, 4**k, 4**k)``, one per sample, or ``(4**k, 4**k)``) on ``sites`` of states ``(B, 4**m)``."""
    b, k = state.shape[0], len(sites)
    axes, front = [1 + s for s in sites], list(range(1, k + 1))
    t = state.reshape(b, *[4] * m).movedim(axes, front)
    shape = t.shape
    t = torch.matmul(op, t.reshape(b, 4**k, -1)).reshape(shape)
    return t.movedim(front, axes).reshape(b, 4**m)


class DeviceCircuit:
    """A :class:`DeviceProgram` ready to run: ``(B, n)`` inputs and weights -> the noisy
    measurements as read out (:meth:`expval_z`: ``<Z_i>``; :meth:`outputs`: the circuit's own).

    Example:
        >>> from qtransfer.quantum.devices import compile_for_device  # doctest: +SKIP
        >>> from qtransfer.quantum.circuit import CircuitSpec  # doctest: +SKIP
        >>> run = DeviceCircuit(compile_for_device(CircuitSpec(4, 6), "fake_manila"))  # doctest: +SKIP
        >>> run.expval_z(torch.zeros(2, 4), torch.zeros(6, 4)).shape  # doctest: +SKIP
        torch.Size([2, 4])
    """

    def __init__(self, program: DeviceProgram) -> None:
        self.program = program
        self.n_sites = len(program.sites)
        n_params = program.n_inputs + program.n_weights
        self._prefix = _ChainSet.build([_canonical(f) for f in program.prefix], n_params)
        steps, segments = self._plan(program)
        # each chain is folded into the two-qubit step after it; index len(segments) is the identity
        segments.append(([None], []))
        self._segments = _ChainSet.build(segments, n_params)
        none = len(segments) - 1
        two = [step for step in steps if step[1] is not None]
        trailing = [step for step in steps if step[1] is None]
        self._left = torch.tensor([none if i < 0 else i for _, _, (i, _) in two], dtype=torch.long)
        self._right = torch.tensor([none if j < 0 else j for _, _, (_, j) in two], dtype=torch.long)
        self._trailing = torch.tensor([step[2][0] for step in trailing], dtype=torch.long)
        self._sites = [s[0] for s in two] + [s[0] for s in trailing]
        self._two = torch.stack([torch.as_tensor(step[1]) for step in two]) if two else torch.zeros(0, 16, 16)
        reads = [any(i < program.n_inputs for r in rotations for i in r.reads()) for _, rotations in segments]
        uses_input = [any(reads[i] for i in step[2] if i >= 0) for step in two + trailing]
        #: the last step that reads an input (-1: none, the inputs come before every two-qubit gate)
        self._split = max((k for k, u in enumerate(uses_input) if u), default=-1)
        #: the steps each sample runs with its own matrices, those up to there with the batch's, the rest pulled back
        early = range(self._split + 1)
        self._selections = {"reading": [k for k in early if uses_input[k]],
                            "shared": [k for k in early if not uses_input[k]],
                            "after": list(range(self._split + 1, len(self._sites)))}
        self._cache: dict = {}
        self._shot_tables: tuple[list[tuple], torch.Tensor] | None = None

    @staticmethod
    def _plan(program: DeviceProgram) -> tuple[list, list]:
        """Two-qubit steps with the chains just before them folded in, then the trailing chains.

        Each step is ``(sites, ptm, segment index of each site or -1)``; a trailing chain is a
        step on one site with ``ptm`` None."""
        segments: list = []
        waiting: dict[int, int] = {}
        steps: list = []
        for kind, sites, data in program.body:
            if kind == "one":
                waiting[sites[0]] = len(segments)
                segments.append(_canonical(data))
            else:
                steps.append((sites, data, tuple(waiting.pop(s, -1) for s in sites)))
        steps.extend(((s,), None, (i,)) for s, i in sorted(waiting.items()))
        return steps, segments

    def _constants(self, device: torch.device, dtype: torch.dtype) -> dict:
        key = (device, dtype)
        if key not in self._cache:
            n_two = len(self._left)
            const = {"prefix": self._prefix.to(device, dtype), "segments": self._segments.to(device, dtype)}
            for name, steps in self._selections.items():
                two = torch.tensor([k for k in steps if k < n_two], dtype=torch.long)
                const[name] = {
                    "two": self._two[two].to(device, dtype), "left": self._left[two].to(device),
                    "right": self._right[two].to(device),
                    "trailing": self._trailing[torch.tensor([k - n_two for k in steps if k >= n_two],
                                                            dtype=torch.long)].to(device),
                }
            self._cache[key] = const
        return self._cache[key]

    @property
    def per_sample_steps(self) -> int:
        """How many steps each sample's state is carried through (up to the last step that reads
        an input after a two-qubit gate); 0 for an embedding-first circuit, whose steps are all
        pulled back once per batch."""
        return self._split + 1

    @property
    def measurements(self) -> tuple:
        """What :meth:`outputs` returns: the circuit's measurements (``<Z_i>`` of every logical qubit by default)."""
        n = len(self.program.measured)
        return self.program.measurements or tuple(Expval(((1.0, (("Z", i),)),)) for i in range(n))

    def _product(self, outcome: list[tuple[int, str, int | None]]) -> torch.Tensor:
        """``(4**m,)``: the read-out functional of ``(logical qubit, basis, bit)`` factors on distinct
        qubits (``bit`` None: ``(-1)**read``; else: the probability of reading ``bit``)."""
        program = self.program
        trace = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
        sites = [trace] * self.n_sites
        for i, basis, bit in outcome:
            a, b = program.readout[i].p1_given_0, program.readout[i].p0_given_1
            if bit is None:  # E[(-1)**read] = (b - a) + (1 - a - b) <Z>
                v = torch.tensor([b - a, 0.0, 0.0, 1 - a - b], dtype=torch.float64)
            else:  # P(read bit) = P(bit|0) (1 + <Z>)/2 + P(bit|1) (1 - <Z>)/2
                p0, p1 = (1 - a, b) if bit == 0 else (a, 1 - b)
                v = torch.tensor([(p0 + p1) / 2, 0.0, 0.0, (p0 - p1) / 2], dtype=torch.float64)
            if basis != "Z":  # the basis change before reading out, pulled back
                v = torch.as_tensor(program.basis_change[basis][i]).T @ v
            sites[program.measured[i]] = v
        return kron_vectors(torch.stack(sites))

    def _bit_strings(self, wires: tuple[int, ...]) -> list[list[tuple[int, str, int]]]:
        k = len(wires)
        return [[(w, "Z", (b >> (k - 1 - j)) & 1) for j, w in enumerate(wires)] for b in range(2**k)]

    def _output_columns(self) -> list[torch.Tensor]:
        columns = []
        for m in self.measurements:
            if isinstance(m, Probs):
                columns.extend(self._product(outcome) for outcome in self._bit_strings(m.wires))
            else:
                columns.append(sum(coeff * self._product([(i, p, None) for p, i in word]) for coeff, word in m.terms))
        return columns

    def _functionals(self, kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """``(4**m, k)``: ``<Z_i>`` as read out (``"z"``, ``k = n``), each read-out bit string's
        probability (``"probs"``, ``2**n``), the circuit's measurements (``"outputs"``), or those
        then the bit strings' probabilities in each measurement setting (``"shots"``)."""
        n = len(self.program.measured)
        if kind == "z":
            rows = [self._product([(i, "Z", None)]) for i in range(n)]
        elif kind == "probs":
            rows = [self._product(outcome) for outcome in self._bit_strings(tuple(range(n)))]
        elif kind == "outputs":
            rows = self._output_columns()
        else:
            rows = self._output_columns()
            for setting in self.settings():
                rows += [self._product([(i, setting.get(i, "Z"), bit) for i, _, bit in outcome])
                         for outcome in self._bit_strings(tuple(range(n)))]
        return torch.stack(rows, 1).to(device=device, dtype=dtype)

    def _theta(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, weights.reshape(1, -1).expand(x.shape[0], -1)], 1)

    def _step_matrices(self, theta: torch.Tensor, const: dict, which: str) -> list[torch.Tensor]:
        """The PTMs of the steps ``which`` selects (``"reading"``, ``"shared"``, ``"after"``), in order:
        ``(..., d, d)`` for parameters ``theta`` ``(..., P)``, the chains before a two-qubit step folded
        in (``T @ kron(S_a, S_b)``)."""
        sel = const[which]
        if not len(sel["left"]) and not len(sel["trailing"]):
            return []
        segs = const["segments"].matrices(theta)  # (..., chains + 1, 4, 4), the last the identity
        out: list[torch.Tensor] = []
        if len(sel["left"]):
            left, right = segs.index_select(-3, sel["left"]), segs.index_select(-3, sel["right"])
            kron = (left[..., :, :, None, :, None] * right[..., :, None, :, None, :]).reshape(*left.shape[:-2], 16, 16)
            out.extend((sel["two"] @ kron).unbind(-3))
        if len(sel["trailing"]):
            out.extend(segs.index_select(-3, sel["trailing"]).unbind(-3))
        return out

    def _theta_w(self, weights: torch.Tensor) -> torch.Tensor:
        return torch.cat([weights.new_zeros(self.program.n_inputs), weights.reshape(-1)])

    def _pull_back(self, functionals: torch.Tensor, weights: torch.Tensor, const: dict) -> torch.Tensor:
        """The functionals pulled back through the steps after the last that reads an input."""
        mats = self._step_matrices(self._theta_w(weights), const, "after")
        sites = [self._sites[k] for k in self._selections["after"]]
        h = functionals  # the trailing chains act last: they are pulled back through first
        for k in reversed(range(len(mats))):
            h = apply_local(h, mats[k].transpose(0, 1), sites[k], self.n_sites)
        return h

    def _state(self, x: torch.Tensor, weights: torch.Tensor, const: dict) -> torch.Tensor:
        """``(B, 4**m)``: each sample's embedded product state, carried through the steps up to the
        last that reads an input (with its own matrices where a step reads one, else the batch's)."""
        theta = self._theta(x, weights)
        prefix = const["prefix"].matrices(theta)  # (B, m, 4, 4)
        zero = torch.tensor([1.0, 0.0, 0.0, 1.0], device=x.device, dtype=x.dtype)  # |0><0|: <I> = <Z> = 1
        state = kron_vectors(prefix @ zero)
        if self._split >= 0:
            mats = dict(zip(self._selections["reading"], self._step_matrices(theta, const, "reading")))
            mats.update(zip(self._selections["shared"], self._step_matrices(self._theta_w(weights), const, "shared")))
            for k in range(self._split + 1):
                state = _apply_batched(state, mats[k], self._sites[k], self.n_sites)
        return state

    def _measure(self, x: torch.Tensor, weights: torch.Tensor, kind: str) -> torch.Tensor:
        self._check(x, weights)
        const = self._constants(x.device, x.dtype)
        if kind not in const:  # the bit-string functionals (4**m x 2**n) only once shots are asked for
            const[kind] = self._functionals(kind, x.device, x.dtype)
        weights = weights.to(x.dtype)
        h = self._pull_back(const[kind], weights, const)
        return self._state(x, weights, const) @ h

    def _check(self, x: torch.Tensor, weights: torch.Tensor) -> None:
        n = self.program.n_inputs
        if x.ndim != 2 or x.shape[-1] != n:
            raise ValueError(f"expected inputs of shape (B, {n}), got {tuple(x.shape)}")
        if weights.numel() != self.program.n_weights:
            raise ValueError(f"expected {self.program.n_weights} weights, got {weights.numel()}")

    def probabilities(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Probability of reading each bit string of the logical qubits (qubit 0 most significant): ``(B, 2**n)``."""
        return self._measure(x, weights, "probs")

    def expval_z(
        self, x: torch.Tensor, weights: torch.Tensor, *, shots: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noisy ``<Z_i>`` of each logical qubit as read out: ``(B, n)``; with ``shots``, the
        estimate from that many samples (seeded by ``generator``), carrying the exact gradient."""
        if shots is None:
            return self._measure(x, weights, "z")
        probs = self.probabilities(x, weights)
        signs = z_signs(len(self.program.measured), probs.device, probs.dtype)
        return shot_estimate(probs, probs @ signs, shots, generator)

    def outputs(
        self, x: torch.Tensor, weights: torch.Tensor, *, shots: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The circuit's measurements as the device reads them out: ``(B, n_outputs)``. Z words and
        probabilities from the read-out bits; X/Y words after the basis change a device appends
        (``H``, ``S^dagger H``). With ``shots``, the estimate from that many read-out bit strings
        in each measurement setting (:meth:`settings`; seeded by ``generator``), carrying the
        exact gradient."""
        if shots is None:
            return self._measure(x, weights, "outputs")
        tables = self._setting_tables()[1].to(x.device, x.dtype)  # (S, 2**n, n_outputs)
        both = self._measure(x, weights, "shots")
        n_out = tables.shape[2]
        exact, probs = both[:, :n_out], both[:, n_out:].reshape(x.shape[0], *tables.shape[:2])
        counts = sample_counts(probs.detach().flatten(0, 1), shots, generator).reshape(probs.shape)
        estimate = torch.einsum("bsj,sjk->bk", (counts / shots).to(exact.dtype), tables)
        return exact + (estimate - exact).detach()

    def settings(self) -> list[dict[int, str]]:
        """The measurement settings shots are drawn in, one run of the circuit each (as on a device):
        ``{}`` (the computational basis) for Z words and probabilities, and one per distinct set of
        X/Y factors of a word (``{0: "X", 2: "Y"}``: logical qubit -> basis, Z elsewhere)."""
        return [dict(key) for key in self._setting_tables()[0]]

    def _setting_tables(self) -> tuple[list[tuple], torch.Tensor]:
        """The settings' keys and ``(S, 2**n, n_outputs)``: the part of each output measured in each
        setting, as a function of the bit string read out there."""
        if self._shot_tables is None:
            n = len(self.program.measured)
            signs = 1 - 2 * ((torch.arange(2**n)[:, None] >> torch.arange(n - 1, -1, -1)) & 1).to(torch.float64)
            n_out = sum(m.n_outputs for m in self.measurements)
            keys: dict[tuple, torch.Tensor] = {}

            def table(key: tuple) -> torch.Tensor:
                return keys.setdefault(key, torch.zeros(2**n, n_out, dtype=torch.float64))

            col = 0
            for m in self.measurements:
                if isinstance(m, Probs):
                    k = len(m.wires)
                    index = sum(((1 - signs[:, w]) / 2).long() << (k - 1 - j) for j, w in enumerate(m.wires))
                    table(())[:, col: col + 2**k] = torch.nn.functional.one_hot(index, 2**k).to(torch.float64)
                    col += 2**k
                    continue
                for coeff, word in m.terms:
                    key = tuple((q, p) for p, q in word if p != "Z")
                    table(key)[:, col] += coeff * signs[:, [q for _, q in word]].prod(1)
                col += 1
            self._shot_tables = (list(keys), torch.stack(list(keys.values())))
        return self._shot_tables

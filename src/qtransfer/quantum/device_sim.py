"""Runs a :class:`~qtransfer.quantum.devices.DeviceProgram`: batched over samples, differentiable, CPU or CUDA.

The state is kept as Pauli coordinates ``r_P = Tr(rho P)`` over the ``m`` simulated qubits
(``4**m`` real numbers, qubit 0 most significant): every channel is then a real matrix (its
Pauli transfer matrix), whatever its gates. As in :mod:`qtransfer.quantum.density`, the
circuit runs in the Heisenberg picture: the measured functionals (``<Z_i>`` with readout
error, or the probabilities of the read-out bit strings) are pulled back through the
two-qubit steps once per forward pass, whatever the batch, and each sample contributes only
its embedded product state (``prefix``: one ``4``-vector per qubit).

One forward pass:

1. every single-qubit chain ``G_c R_c ... R_1 G_0`` (fixed PTMs ``G``, rotations ``R`` by
   affine functions of the inputs or weights) is multiplied out, chains with the same number
   of rotations together in one batched product;
2. each chain between two-qubit gates is folded into the two-qubit step that follows it
   (``T @ kron(S_a, S_b)``, one batched product for all of them);
3. the functionals are pulled back through the steps (one ``16 x 16`` product on a view each);
4. each sample's embedded state meets the pulled-back functionals in one matrix product.
"""

from __future__ import annotations

import torch

from .density import apply_local
from .devices import DeviceProgram, Factor, rotation_basis
from .measurement import shot_estimate, z_signs
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
    ``(S, c + 1, 4, 4)``, and per rotation its parameter index, scale, offset and ``(A, C, S)`` basis."""

    def __init__(self, fixed: torch.Tensor, param: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
                 basis: torch.Tensor) -> None:
        self.fixed, self.param, self.scale, self.offset, self.basis = fixed, param, scale, offset, basis
        self.n_rotations = param.shape[1]

    @classmethod
    def build(cls, chains: list[tuple[list, list[Factor]]]) -> _Chains:
        eye = torch.eye(4, dtype=torch.float64)
        fixed = torch.stack([torch.stack([eye if g is None else torch.as_tensor(g, dtype=torch.float64) for g in f])
                             for f, _ in chains])
        rotations = [r for _, rots in chains for r in rots]
        shape = (len(chains), len(chains[0][1]))
        basis = [torch.as_tensor(rotation_basis(r.kind)) for r in rotations]
        return cls(
            fixed,
            torch.tensor([r.param for r in rotations], dtype=torch.long).reshape(shape),
            torch.tensor([r.scale for r in rotations], dtype=torch.float64).reshape(shape),
            torch.tensor([r.offset for r in rotations], dtype=torch.float64).reshape(shape),
            torch.stack(basis).reshape(*shape, 3, 4, 4) if basis else torch.zeros(*shape, 3, 4, 4, dtype=torch.float64),
        )

    def to(self, device: torch.device, dtype: torch.dtype) -> _Chains:
        return _Chains(self.fixed.to(device, dtype), self.param.to(device), self.scale.to(device, dtype),
                       self.offset.to(device, dtype), self.basis.to(device, dtype))

    def matrices(self, theta: torch.Tensor) -> torch.Tensor:
        """``(..., S, 4, 4)`` chain matrices for parameters ``theta`` ``(..., P)``."""
        m = self.fixed[:, 0]
        if self.n_rotations == 0:
            return m.expand(*theta.shape[:-1], *m.shape)
        angle = theta[..., self.param] * self.scale + self.offset  # (..., S, c)
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
    def build(cls, chains: list[tuple[list, list[Factor]]]) -> _ChainSet:
        by_count: dict[int, list[int]] = {}
        for i, (_, rotations) in enumerate(chains):
            by_count.setdefault(len(rotations), []).append(i)
        order = [i for idx in by_count.values() for i in idx]
        inverse = torch.empty(len(chains), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(chains))
        return cls([_Chains.build([chains[i] for i in idx]) for idx in by_count.values()], inverse)

    def to(self, device: torch.device, dtype: torch.dtype) -> _ChainSet:
        return _ChainSet([g.to(device, dtype) for g in self.groups], self.inverse.to(device))

    def matrices(self, theta: torch.Tensor) -> torch.Tensor:
        """``(..., chains, 4, 4)`` for parameters ``theta`` ``(..., P)``."""
        parts = [g.matrices(theta) for g in self.groups]
        stacked = parts[0] if len(parts) == 1 else torch.cat(parts, -3)
        return stacked.index_select(-3, self.inverse)


class DeviceCircuit:
    """A :class:`DeviceProgram` ready to run: ``(B, n)`` inputs and weights -> noisy ``<Z_i>`` as read out.

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
        self._prefix = _ChainSet.build([_canonical(f) for f in program.prefix])
        steps, segments = self._plan(program)
        self._steps = steps
        # each chain is folded into the two-qubit step after it; index len(segments) is the identity
        segments.append(([None], []))
        self._segments = _ChainSet.build(segments)
        none = len(segments) - 1
        two = [step for step in steps if step[1] is not None]
        self._left = torch.tensor([none if i < 0 else i for _, _, (i, _) in two], dtype=torch.long)
        self._right = torch.tensor([none if j < 0 else j for _, _, (_, j) in two], dtype=torch.long)
        self._trailing = torch.tensor([step[2][0] for step in steps if step[1] is None], dtype=torch.long)
        self._sites = [s[0] for s in two] + [s[0] for s in steps if s[1] is None]
        self._cache: dict = {}

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
            two = [step[1] for step in self._steps if step[1] is not None]
            self._cache[key] = {
                "prefix": self._prefix.to(device, dtype),
                "segments": self._segments.to(device, dtype),
                "two": torch.stack([torch.as_tensor(t) for t in two]).to(device, dtype) if two else None,
                "left": self._left.to(device), "right": self._right.to(device), "trailing": self._trailing.to(device),
            }
        return self._cache[key]

    def _functionals(self, kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """``(4**m, k)``: ``<Z_i>`` as read out (``k = n``) or each read-out bit string's probability (``2**n``)."""
        program, m = self.program, self.n_sites
        n = len(program.measured)
        trace = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
        rows = []
        if kind == "z":
            outcomes = [[(i, None)] for i in range(n)]
        else:
            outcomes = [[(i, (b >> (n - 1 - i)) & 1) for i in range(n)] for b in range(2**n)]
        for outcome in outcomes:
            sites = [trace] * m
            for i, bit in outcome:
                a, b = program.readout[i].p1_given_0, program.readout[i].p0_given_1
                if bit is None:  # E[(-1)**read] = (b - a) + (1 - a - b) <Z>
                    sites[program.measured[i]] = torch.tensor([b - a, 0.0, 0.0, 1 - a - b], dtype=torch.float64)
                else:  # P(read bit) = P(bit|0) (1 + <Z>)/2 + P(bit|1) (1 - <Z>)/2
                    p0, p1 = (1 - a, b) if bit == 0 else (a, 1 - b)
                    sites[program.measured[i]] = torch.tensor([(p0 + p1) / 2, 0.0, 0.0, (p0 - p1) / 2], dtype=torch.float64)
            rows.append(kron_vectors(torch.stack(sites)))
        return torch.stack(rows, 1).to(device=device, dtype=dtype)

    def _theta(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, weights.reshape(1, -1).expand(x.shape[0], -1)], 1)

    def _step_matrices(self, theta_w: torch.Tensor, const: dict) -> list[torch.Tensor]:
        """Each step's PTM, the chains before a two-qubit step folded in (``T @ kron(S_a, S_b)``)."""
        segs = const["segments"].matrices(theta_w)  # (chains + 1, 4, 4), the last the identity
        out: list[torch.Tensor] = []
        if const["two"] is not None:
            left, right = segs.index_select(0, const["left"]), segs.index_select(0, const["right"])
            kron = (left[:, :, None, :, None] * right[:, None, :, None, :]).reshape(len(left), 16, 16)
            out.extend((const["two"] @ kron).unbind(0))
        out.extend(segs.index_select(0, const["trailing"]).unbind(0))
        return out

    def _pull_back(self, functionals: torch.Tensor, weights: torch.Tensor, const: dict) -> torch.Tensor:
        theta_w = torch.cat([weights.new_zeros(self.program.n_inputs), weights.reshape(-1)])
        mats = self._step_matrices(theta_w, const)
        h = functionals  # the trailing chains act last: they are pulled back through first
        for k in reversed(range(len(mats))):
            h = apply_local(h, mats[k].transpose(0, 1), self._sites[k], self.n_sites)
        return h

    def _embedded(self, x: torch.Tensor, weights: torch.Tensor, const: dict) -> torch.Tensor:
        theta = self._theta(x, weights)
        prefix = const["prefix"].matrices(theta)  # (B, m, 4, 4)
        zero = torch.tensor([1.0, 0.0, 0.0, 1.0], device=x.device, dtype=x.dtype)  # |0><0|: <I> = <Z> = 1
        return kron_vectors(prefix @ zero)  # (B, 4**m)

    def _measure(self, x: torch.Tensor, weights: torch.Tensor, kind: str) -> torch.Tensor:
        self._check(x, weights)
        const = self._constants(x.device, x.dtype)
        if kind not in const:  # the bit-string functionals (4**m x 2**n) only once shots are asked for
            const[kind] = self._functionals(kind, x.device, x.dtype)
        h = self._pull_back(const[kind], weights.to(x.dtype), const)
        return self._embedded(x, weights.to(x.dtype), const) @ h

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


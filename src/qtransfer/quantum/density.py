"""Density-matrix mode: :class:`CircuitSpec` circuits under a :class:`NoiseModel`, batched and differentiable.

Representation. A density matrix of ``n`` qubits is kept as a vector of ``4**n`` entries
ordered *site by site*: wire ``q`` contributes the pair ``(i_q, j_q)`` of its row and column
bits as one base-4 digit ``2 i_q + j_q``, wire 0 most significant. A channel on one wire is
then a ``4 x 4`` matrix on one digit (its superoperator ``sum_k K (x) conj(K)``), a product of
single-wire channels is a Kronecker product, and a product state is a Kronecker product of
``4``-vectors: the statevector machinery with local dimension 4 instead of 2.

Evaluation runs in the Heisenberg picture. The measured quantities (``<Z_i>`` with the
readout error folded in, or the probabilities of the ``2**n`` read-out bit strings) are
linear functionals of the final density matrix; pulled back through the layers they become
functionals ``H`` of the *embedded* density matrix, which do not depend on the inputs. So a
batch costs one product state per sample (each wire's embedded ``vec(rho)`` is
``a + (cos x, sin x) @ bc``) and one ``(B, 4**n) @ (4**n, m)`` product; the layers are applied
once, to the ``m`` functionals, whatever the batch. Each layer is a few local superoperators
on adjacent sites (one batched product on a view each): every CNOT with its noise, the
rotations (with theirs) folded into the CNOT that follows them on their wire: three
``16 x 16`` products a layer for the published circuit. docs/noise.md has the measurements.

Noise placement (see :mod:`qtransfer.quantum.noise`): after every 1-qubit gate (embedding
gates included) depolarizing then thermal relaxation on its wire; after every CNOT the
2-qubit depolarizing channel then relaxation (2-qubit gate time) on both wires; the readout
confusion at the measurement. Up to :data:`DENSITY_MAX_QUBITS` qubits.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .circuit import CircuitSpec
from .measurement import shot_estimate, z_signs
from .memory import check_simulation_memory
from .noise import NoiseModel
from .states import (
    angle_offsets,
    common_dtype,
    complex_dtype,
    kron_vectors,
    rotation_matrices,
    ry_matrices,
)

__all__ = [
    "DENSITY_MAX_QUBITS",
    "amplitude_damping",
    "apply_local",
    "density_expval_z",
    "density_matrix",
    "depolarizing",
    "kraus_superop",
    "noisy_ops",
    "noisy_probabilities",
    "pair_superop",
    "phase_damping",
    "run_layers",
    "site_layout",
    "standard_layout",
    "thermal_relaxation",
]

#: a sample's density matrix is ``4**n`` numbers and the shot distribution's functionals
#: ``4**n x 2**n`` (2 Mi entries at n = 7); beyond, the statevector modes scale and this does not
DENSITY_MAX_QUBITS = 7


# --- channels as superoperators on one site ---------------------------------------------------


def kraus_superop(kraus: torch.Tensor) -> torch.Tensor:
    """``sum_k K (x) conj(K)`` of Kraus operators ``(..., k, 2, 2)``: ``(..., 4, 4)`` acting on
    ``vec(rho) = (rho00, rho01, rho10, rho11)``.

    Example:
        >>> kraus_superop(torch.eye(2)[None]).diagonal()  # the identity channel
        tensor([1., 1., 1., 1.])
    """
    prod = kraus[..., :, None, :, None] * kraus.conj()[..., None, :, None, :]
    return prod.reshape(*kraus.shape[:-2], 4, 4).sum(-3)


def _site_vectors(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``vec(I/2)`` and the trace functional ``vec(I)``."""
    half = torch.tensor([0.5, 0.0, 0.0, 0.5], device=device, dtype=dtype)
    return half, 2 * half


def depolarizing(p: float, n_sites: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``rho -> (1 - p) rho + p Tr(rho) I/2**k`` on ``k = n_sites`` wires: ``(4**k, 4**k)``."""
    half, trace = _site_vectors(device, dtype)
    mixed, tr = half, trace
    for _ in range(n_sites - 1):
        mixed, tr = torch.kron(mixed, half), torch.kron(tr, trace)
    eye = torch.eye(4**n_sites, device=device, dtype=dtype)
    return (1 - p) * eye + p * torch.outer(mixed, tr)


def amplitude_damping(gamma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Amplitude damping: ``|1>`` decays to ``|0>`` with probability ``gamma``."""
    a, b = math.sqrt(1 - gamma), math.sqrt(gamma)
    kraus = torch.tensor([[[1.0, 0.0], [0.0, a]], [[0.0, b], [0.0, 0.0]]], device=device, dtype=dtype)
    return kraus_superop(kraus)


def phase_damping(lam: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Phase damping: coherences shrink by ``sqrt(1 - lam)``, populations stay."""
    diag = torch.tensor([1.0, math.sqrt(1 - lam), math.sqrt(1 - lam), 1.0], device=device, dtype=dtype)
    return torch.diag(diag)


def thermal_relaxation(noise: NoiseModel, duration: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Relaxation of one wire for ``duration`` (identity without :attr:`NoiseModel.relaxation`)."""
    if noise.relaxation is None:
        return torch.eye(4, device=device, dtype=dtype)
    gamma, lam = noise.relaxation.damping(duration)
    return phase_damping(lam, device, dtype) @ amplitude_damping(gamma, device, dtype)


def _interleave(superop: torch.Tensor, k: int) -> torch.Tensor:
    """A ``(4**k, 4**k)`` superoperator on ``vec(rho)`` (rows then columns) -> site-by-site order."""
    t = superop.reshape([2] * (4 * k))
    order = [a for q in range(k) for a in (q, k + q)]  # (i_0, j_0, i_1, j_1, ...)
    return t.permute(order + [2 * k + a for a in order]).reshape(4**k, 4**k)


@lru_cache(maxsize=32)
def gate_noise(noise: NoiseModel, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E1, E2)``: the channel after a 1-qubit gate ``(4, 4)`` and after a CNOT ``(16, 16)``."""
    t_1q, t_2q = (noise.relaxation.t_1q, noise.relaxation.t_2q) if noise.relaxation else (0.0, 0.0)
    e1 = thermal_relaxation(noise, t_1q, device, dtype) @ depolarizing(noise.depolarizing.p1, 1, device, dtype)
    relax = thermal_relaxation(noise, t_2q, device, dtype)
    e2 = torch.kron(relax, relax) @ depolarizing(noise.depolarizing.p2, 2, device, dtype)
    return e1, e2


def _cnot_superop(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    u = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], device=device, dtype=dtype)
    return _interleave(torch.kron(u, u), 2)


def apply_local(h: torch.Tensor, op: torch.Tensor, sites: tuple[int, ...], n: int) -> torch.Tensor:
    """``op`` (``4**k x 4**k``, on ``sites`` in that order) applied to the rows of ``h`` ``(4**n, m)``:
    one batched product on a view when the sites are adjacent and ascending."""
    k = len(sites)
    first = sites[0]
    if first == 0 and sites == tuple(range(k)):
        return (op @ h.reshape(4**k, -1)).reshape(4**n, -1)
    if sites == tuple(range(first, first + k)):
        lead = 4**first
        return torch.bmm(op.expand(lead, 4**k, 4**k), h.reshape(lead, 4**k, -1)).reshape(4**n, -1)
    t = h.reshape([4] * n + [-1]).movedim(sites, tuple(range(k)))
    shape = t.shape
    t = (op @ t.reshape(4**k, -1)).reshape(shape)
    return t.movedim(tuple(range(k)), sites).reshape(4**n, -1)


@lru_cache(maxsize=32)
def pair_superop(noise: NoiseModel, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A CNOT followed by its noise, on (control, target) sites: ``(16, 16)``."""
    return gate_noise(noise, device, dtype)[1] @ _cnot_superop(device, dtype)


def _unitary_superop(u: torch.Tensor) -> torch.Tensor:
    """``U (x) conj(U)`` of ``(..., 2, 2)`` gates: ``(..., 4, 4)``."""
    return (u[..., :, None, :, None] * u.conj()[..., None, :, None, :]).reshape(*u.shape[:-2], 4, 4)


def _input_gates(name: str, x: torch.Tensor) -> torch.Tensor:
    """``(..., 2, 2)`` matrices of the embedding's input gate."""
    if name == "RY":
        return ry_matrices(x)
    c, s = torch.cos(x / 2), torch.sin(x / 2)
    return torch.complex(torch.stack([c, 0 * s, 0 * s, c], -1), torch.stack([0 * c, -s, -s, 0 * c], -1)).unflatten(-1, (2, 2))


@lru_cache(maxsize=32)
def _fixed_embedding(spec: CircuitSpec, noise: NoiseModel, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One wire's ``vec(rho)`` after the embedding's fixed gates (a Hadamard), each with its noise."""
    e1 = gate_noise(noise, device, dtype)[0]
    v = torch.tensor([1.0, 0.0, 0.0, 0.0], device=device, dtype=dtype)
    for name in spec.embedding_gates[:-1]:
        if name != "Hadamard":
            raise ValueError(f"density-matrix mode does not know the fixed embedding gate {name!r}")
        h = torch.tensor([[1.0, 1.0], [1.0, -1.0]], device=device, dtype=dtype) / math.sqrt(2)
        v = e1 @ (_unitary_superop(h) @ v)
    return v


@lru_cache(maxsize=32)
def _embedding_coefficients(
    spec: CircuitSpec, noise: NoiseModel, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, bc)``: one wire's ``vec(rho)`` after the noisy embedding of angle ``x`` is
    ``a + (cos x, sin x) @ bc``. The input gate is ``exp(-i x P / 2)``, so every entry of
    ``G rho G^dagger`` is linear in ``1, cos x, sin x``; the three are read off at ``x = 0, pi, pi/2``."""
    angles = torch.tensor([0.0, math.pi, math.pi / 2], device=device, dtype=dtype)
    sup = _unitary_superop(_input_gates(spec.embedding_gates[-1], angles))  # (3, 4, 4)
    e1 = gate_noise(noise, device, dtype)[0]
    v = _fixed_embedding(spec, noise, device, dtype)
    sup, e1 = common_dtype(sup, e1)
    f = (sup @ v.to(sup.dtype)) @ e1.transpose(0, 1)  # (3, 4)
    a = (f[0] + f[1]) / 2
    return a, torch.stack([(f[0] - f[1]) / 2, f[2] - a])


def embedded_sites(spec: CircuitSpec, x: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """Every wire's ``vec(rho)`` after the (noisy) embedding: ``(B, n)`` angles -> ``(B, n, 4)``."""
    a, bc = _embedding_coefficients(spec, noise, x.device, x.dtype)
    cs = torch.cos(torch.add(angle_offsets("ry", x.device, x.dtype), x.unsqueeze(-1)))  # (B, n, 2): cos x, sin x
    if bc.is_complex():
        cs = cs.to(bc.dtype)
    return torch.addmm(a, cs.reshape(-1, 2), bc).reshape(*x.shape, 4)


def rotation_sites(spec: CircuitSpec, weights: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """Each layer's rotation on each wire followed by its noise: ``(depth, n, 4, 4)`` superoperators."""
    sup = _unitary_superop(rotation_matrices(spec, weights))  # (depth, n, 4, 4)
    e1 = gate_noise(noise, weights.device, weights.dtype)[0]
    sup, e1 = common_dtype(sup, e1)
    return e1 @ sup


@lru_cache(maxsize=64)
def _fold_plan(spec: CircuitSpec) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """How a layer's rotations fold into the CNOTs that follow them: for each CNOT, the wire whose
    rotation joins it on the control side and on the target side (``n``: none), and the wires
    in no CNOT (their rotations stay alone). A rotation joins the first CNOT on its wire."""
    n, pairs = spec.n_qubits, spec.entangling_pairs()
    first: dict[int, int] = {}
    for k, pair in enumerate(pairs):
        for q in pair:
            first.setdefault(q, k)
    left = tuple(c if first[c] == k else n for k, (c, _) in enumerate(pairs))
    right = tuple(t if first[t] == k else n for k, (_, t) in enumerate(pairs))
    return left, right, tuple(q for q in range(n) if q not in first)


def noisy_ops(
    spec: CircuitSpec, weights: torch.Tensor, noise: NoiseModel, *, complex_ops: bool = False, transpose: bool = False
) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
    """The noisy layers as ``(superoperator, sites)`` in application order, every rotation folded
    into the CNOT that follows it on its wire (3 products a layer instead of 7 for the published circuit).
    ``complex_ops``: complex matrices even where the circuit is real; ``transpose``: each matrix transposed."""
    n, depth, pairs = spec.n_qubits, spec.depth, spec.entangling_pairs()
    rot = rotation_sites(spec, weights, noise)  # (depth, n, 4, 4)
    pair = pair_superop(noise, weights.device, weights.dtype)
    rot, pair = common_dtype(rot, pair)
    if complex_ops and not rot.is_complex():
        rot, pair = rot.to(complex_dtype(rot.dtype)), pair.to(complex_dtype(pair.dtype))
    if transpose:
        rot, pair = rot.transpose(-1, -2), pair.transpose(-1, -2)
    left, right, alone = _fold_plan(spec)
    rots = rot.flatten(0, 1).unbind(0)  # layer l, wire q at l * n + q
    if pairs:
        ext = torch.cat([rot, torch.eye(4, device=rot.device, dtype=rot.dtype).expand(depth, 1, 4, 4)], 1)
        a, b = ext[:, list(left)], ext[:, list(right)]  # (depth, P, 4, 4)
        kron = (a[..., :, None, :, None] * b[..., None, :, None, :]).reshape(depth, len(pairs), 16, 16)
        merged = (kron @ pair if transpose else pair @ kron).flatten(0, 1).unbind(0)  # layer l, CNOT k at l * P + k
    ops: list[tuple[torch.Tensor, tuple[int, ...]]] = []

    def stage(layer: int | None) -> None:  # the rotations of ``layer`` (None: none), then the CNOTs
        if layer is None:
            ops.extend((pair, p) for p in pairs)
            return
        ops.extend((rots[layer * n + q], (q,)) for q in alone)
        ops.extend((merged[layer * len(pairs) + k], p) for k, p in enumerate(pairs))

    if spec.entangles_before_rotation:  # CNOTs of layer 0; rotations l + CNOTs l + 1; rotations of the last
        for layer in [None, *range(depth - 1)]:
            stage(layer)
        ops.extend((rots[(depth - 1) * n + q], (q,)) for q in range(n))
    else:
        for layer in range(depth):
            stage(layer)
    return ops


def run_layers(
    spec: CircuitSpec, weights: torch.Tensor, noise: NoiseModel, h: torch.Tensor, *, heisenberg: bool
) -> torch.Tensor:
    """The noisy layers on the columns of ``h`` ``(4**n, m)``: states (``heisenberg=False``), or
    functionals pulled back from the end to the start (``True``: transposes, in reverse order)."""
    ops = noisy_ops(spec, weights, noise, complex_ops=h.is_complex(), transpose=heisenberg)
    h, _ = common_dtype(h, ops[0][0])
    for op, sites in reversed(ops) if heisenberg else ops:
        h = apply_local(h, op, sites, spec.n_qubits)
    return h


@lru_cache(maxsize=8)
def readout_functionals(
    n: int, noise: NoiseModel, kind: str, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Functionals on the final ``vec(rho)``, readout error included: ``kind="z"`` gives
    ``<Z_i>`` ``(4**n, n)``; ``kind="probs"`` the probability of reading each bit string ``(4**n, 2**n)``."""
    conf = torch.tensor([noise.readout_for(q).confusion() for q in range(n)], device=device, dtype=dtype)  # (n, m, s)
    reads = torch.zeros(n, 2, 4, device=device, dtype=dtype)  # reads[q, m] = functional "wire q reads m"
    reads[..., 0], reads[..., 3] = conf[..., 0], conf[..., 1]
    if kind == "z":
        trace, z = reads.sum(1), reads[:, 0] - reads[:, 1]  # (n, 4) each
        sites = torch.where(torch.eye(n, dtype=torch.bool, device=device)[..., None], z[None], trace[None])
    elif kind == "probs":
        bits = (torch.arange(2**n, device=device)[:, None] >> torch.arange(n - 1, -1, -1, device=device)) & 1
        sites = reads[torch.arange(n, device=device), bits]  # (2**n, n, 4)
    else:
        raise ValueError(f"unknown functional kind {kind!r}; use 'z' or 'probs'")
    return kron_vectors(sites).transpose(0, 1).contiguous()


def _pull_back(spec: CircuitSpec, weights: torch.Tensor, noise: NoiseModel, functionals: torch.Tensor) -> torch.Tensor:
    """The functionals of the final state as functionals of the embedded state (Heisenberg picture)."""
    if spec.depth == 0:
        return functionals
    return run_layers(spec, weights, noise, functionals, heisenberg=True)


def _check(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor, noise: NoiseModel) -> None:
    n = spec.n_qubits
    if n > DENSITY_MAX_QUBITS:
        raise ValueError(
            f"density-matrix simulation supports up to {DENSITY_MAX_QUBITS} qubits, got {n}; "
            "use --noise none (noise=None in Python) for larger circuits"
        )
    if not isinstance(noise, NoiseModel):
        raise TypeError(f"noise must be a NoiseModel (see qtransfer.quantum.noise.parse_noise), got {noise!r}")
    if isinstance(noise.readout, tuple) and len(noise.readout) != n:
        raise ValueError(
            f"the noise model has {len(noise.readout)} readout errors for a {n}-qubit circuit; give one per wire "
            "or a single ReadoutError for all"
        )
    if x.ndim != 2 or x.shape[-1] != n:
        raise ValueError(f"expected inputs of shape (B, {n}), got {tuple(x.shape)}")
    if tuple(weights.shape) != spec.weight_shape:
        raise ValueError(f"expected weights of shape {spec.weight_shape}, got {tuple(weights.shape)}")


def _embedded(spec: CircuitSpec, x: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    return kron_vectors(embedded_sites(spec, x, noise))  # (B, 4**n)


def _measure(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor, noise: NoiseModel, kind: str) -> torch.Tensor:
    """``(B, m)`` values of the ``kind`` functionals (see :func:`readout_functionals`)."""
    g = readout_functionals(spec.n_qubits, noise, kind, x.device, x.dtype)
    h = _pull_back(spec, weights, noise, g).to(x.dtype if spec.is_real else complex_dtype(x.dtype))
    out = _embedded(spec, x, noise).to(h.dtype) @ h  # a real embedding (RY) before complex layers: promote
    return out.real if out.is_complex() else out


def noisy_probabilities(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """Probability of reading each bit string (readout error included): ``(B, n)`` -> ``(B, 2**n)``."""
    _check(spec, x, weights, noise)
    return _measure(spec, x, weights, noise, "probs")


def density_expval_z(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: NoiseModel,
    *,
    shots: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Noisy ``<Z_i>`` as read out (readout error included): ``(B, n)`` angles -> ``(B, n)``.

    ``shots``: estimate from that many samples of the noisy, readout-confused distribution
    (seeded by ``generator``), carrying the exact value's gradient (straight through).

    Example:
        >>> from qtransfer.quantum.noise import parse_noise
        >>> spec = CircuitSpec(n_qubits=1, depth=0, embedding="ry")
        >>> density_expval_z(spec, torch.zeros(1, 1), torch.zeros(0, 1), parse_noise("depolarizing:readout=0.1"))
        tensor([[0.8000]])
    """
    _check(spec, x, weights, noise)
    n = spec.n_qubits
    check_simulation_memory(n, x.shape[0], itemsize=x.element_size(), device=x.device, per_qubit=4,
                            what="density matrix")
    if shots is None:
        return _measure(spec, x, weights, noise, "z")
    probs = _measure(spec, x, weights, noise, "probs")
    return shot_estimate(probs, probs @ z_signs(n, x.device, x.dtype), shots, generator)


def standard_layout(vec: torch.Tensor, n: int) -> torch.Tensor:
    """Site-by-site ``(..., 4**n)`` vectors -> density matrices ``(..., 2**n, 2**n)`` (wire 0 most significant)."""
    lead = vec.shape[:-1]
    t = vec.reshape(*lead, *([2] * (2 * n)))
    k = len(lead)
    order = [k + 2 * q for q in range(n)] + [k + 2 * q + 1 for q in range(n)]
    return t.permute(*range(k), *order).reshape(*lead, 2**n, 2**n)


def site_layout(rho: torch.Tensor, n: int) -> torch.Tensor:
    """Density matrices ``(..., 2**n, 2**n)`` -> site-by-site vectors ``(..., 4**n)`` (inverse of :func:`standard_layout`)."""
    lead = rho.shape[:-2]
    k = len(lead)
    t = rho.reshape(*lead, *([2] * (2 * n)))
    order = [a for q in range(n) for a in (k + q, k + n + q)]
    return t.permute(*range(k), *order).reshape(*lead, 4**n)


def density_matrix(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """The final density matrices ``(B, 2**n, 2**n)`` before readout (Schroedinger picture; for tests and inspection)."""
    _check(spec, x, weights, noise)
    v = _embedded(spec, x, noise)
    if spec.depth:
        v = run_layers(spec, weights, noise, v.T, heisenberg=False).T  # columns: one per sample
    return standard_layout(v, spec.n_qubits)

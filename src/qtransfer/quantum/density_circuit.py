"""Density-matrix execution of general circuits under a :class:`~qtransfer.quantum.noise.NoiseModel`.

``rho`` is kept as ``vec(rho)``, a ``4**n`` vector indexed by (row bits, column bits): the
state of ``2n`` wires, wire ``q`` a row bit and wire ``n + q`` its column bit. A gate ``U`` on
wires ``W`` is then ``U`` on ``W`` and ``conj(U)`` on ``n + W`` (the statevector kernels of
:mod:`~qtransfer.quantum.executor`, batched and differentiable), and a channel on wire ``q`` a
``4 x 4`` superoperator on ``(q, n + q)``. Noise placement as in :mod:`~qtransfer.quantum.density`
(the published family's noisy simulator, which this one equals on those circuits): after every
one-qubit gate its depolarizing error then thermal relaxation on its wire, after every two-qubit
gate the two-qubit depolarizing error then relaxation on both wires; readout confusion on the
measured bits (``<Z>`` words and probabilities; words with X or Y are refused under readout
error, which this model defines in the computational basis only). Three-qubit gates (Toffoli)
have no noise model here and are refused. Up to :data:`~qtransfer.quantum.density.DENSITY_MAX_QUBITS` qubits.

Example:
    >>> from qtransfer.quantum.noise import parse_noise
    >>> from qtransfer.quantum.templates import angle_embedding
    >>> noisy_run_circuit(angle_embedding(1, rotation="Y"), torch.zeros(1, 1), torch.zeros(0),
    ...                   parse_noise("depolarizing:readout=0.1"))
    tensor([[0.8000]])
"""

from __future__ import annotations

import torch

from .density import DENSITY_MAX_QUBITS, gate_noise
from .description import Circuit, Const, Expval, Input, Operation
from .executor import apply_dense, apply_one, check_shots, gate_matrix, outputs_from_probabilities, shot_outputs
from .noise import NoiseModel
from .states import bit_table, complex_dtype, zero_state

__all__ = ["noisy_run_circuit"]


def _angles(op: Operation, x: torch.Tensor, w: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for p in op.params:
        if isinstance(p, Const):
            v = torch.tensor(p.value, dtype=x.dtype, device=x.device)
        elif isinstance(p, Input):
            v = x[:, p.index[0]] - p.center
            for i in p.index[1:]:
                v = v * (x[:, i] - p.center)
            v = v * p.scale + p.shift
        else:
            v = w[p.index] * p.scale + p.shift
        out.append(v)
    return list(torch.broadcast_tensors(*out)) if len(out) > 1 else out


def _check(circuit: Circuit, noise: NoiseModel) -> None:
    if not isinstance(noise, NoiseModel):
        raise ValueError(f"general circuits run under a NoiseModel (e.g. 'depolarizing:p1=0.001,p2=0.01'), "
                         f"not {noise!r}; calibrated devices (fake_*) run through QuantumLayer(noise='fake_manila')")
    if circuit.n_qubits > DENSITY_MAX_QUBITS:
        raise ValueError(f"noisy simulation supports up to {DENSITY_MAX_QUBITS} qubits, got {circuit.n_qubits}")
    if any(op.info.n_wires > 2 for op in circuit.ops):
        raise ValueError("the noise model covers one- and two-qubit gates; decompose the Toffoli gates first")
    readouts = noise.readout if isinstance(noise.readout, tuple) else (noise.readout,)
    has_readout = any(r.p1_given_0 or r.p0_given_1 for r in readouts)
    if has_readout and any(isinstance(m, Expval) and any(p != "Z" for _, w in m.terms for p, _ in w)
                           for m in circuit.measurements):
        raise ValueError("readout error is defined for computational-basis measurements: measure Z words or "
                         "probabilities, or rotate the basis with gates before measuring")
    if isinstance(noise.readout, tuple) and len(noise.readout) != circuit.n_qubits:
        raise ValueError(f"the noise model has {len(noise.readout)} readout errors for {circuit.n_qubits} qubits")


def noisy_run_circuit(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor, noise: NoiseModel, *,
                      shots: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The circuit's measurements under ``noise`` for inputs ``x`` ``(B, n_inputs)``: ``(B, n_outputs)``;
    with ``shots``, estimated from that many read-out bit strings (straight-through gradient)."""
    _check(circuit, noise)
    if shots is not None:
        check_shots(circuit)
    n, big = circuit.n_qubits, 2 * circuit.n_qubits
    dim = 2**n
    x = x.reshape(-1, circuit.n_inputs)
    w = weights.reshape(-1).to(device=x.device, dtype=x.dtype)
    batch = x.shape[0]
    cdtype = complex_dtype(x.dtype)
    if circuit.amplitude:
        amp = x[:, list(circuit.amplitude)]
        amp = torch.nn.functional.pad(amp / amp.norm(dim=1, keepdim=True), (0, dim - amp.shape[1])).to(cdtype)
        state = (amp[:, :, None] * amp.conj()[:, None, :]).reshape(batch, dim * dim)
    else:
        state = zero_state(batch, dim * dim, cdtype, x.device)
    e1, e2 = (e.to(cdtype) for e in gate_noise(noise, x.device, x.dtype))
    for op in circuit.ops:
        m = gate_matrix(op.name, _angles(op, x, w), cdtype, x.device)
        wires = op.wires
        if len(wires) == 1:
            (q,) = wires
            state = apply_one(state, m, q, big)
            state = apply_one(state, m.conj(), n + q, big)
            state = apply_dense(state, e1, (q, n + q), big)
        else:
            state = apply_dense(state, m, wires, big)
            state = apply_dense(state, m.conj(), tuple(n + q for q in wires), big)
            a, b = wires
            state = apply_dense(state, e2, (a, n + a, b, n + b), big)
    rho = state.view(batch, dim, dim)
    probs = rho.diagonal(dim1=1, dim2=2).real
    for q in range(n):  # readout confusion on each measured bit
        r = noise.readout_for(q)
        if r.p1_given_0 or r.p0_given_1:
            c = torch.tensor(r.confusion(), dtype=x.dtype, device=x.device)
            probs = apply_one(probs, c, q, n)
    out = _measure(circuit, rho, probs)
    return out if shots is None else shot_outputs(circuit, probs, out, shots, generator)


def _measure(circuit: Circuit, rho: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Z words and probabilities from the read-out ``probs``; X/Y words as ``Tr(P rho)``."""
    n = circuit.n_qubits
    expvals = [m for m in circuit.measurements if isinstance(m, Expval)]
    extra = None
    if any(p != "Z" for m in expvals for _, w in m.terms for p, _ in w):
        bits = bit_table(n, rho.device)
        index = torch.arange(2**n, device=rho.device)
        extra = torch.zeros(rho.shape[0], len(expvals), dtype=probs.dtype, device=rho.device)
        for e, m in enumerate(expvals):
            for coeff, word in m.terms:
                if all(p == "Z" for p, _ in word):
                    continue
                mask = sum(1 << (n - 1 - q) for p, q in word if p in "XY")
                coef = torch.ones(2**n, dtype=rho.dtype, device=rho.device)
                for p, q in word:
                    sign = (1 - 2 * bits[q]).to(rho.dtype)
                    coef = coef * (sign if p == "Z" else 1j * sign if p == "Y" else 1)
                # Tr(P rho) = sum_c coef(c) rho[c, c ^ mask]
                term = coeff * (rho[:, index, index ^ mask] * coef).sum(-1).real
                extra = extra + torch.nn.functional.one_hot(torch.tensor(e), len(expvals)).to(extra) * term[:, None]
    return outputs_from_probabilities(circuit, probs, extra)

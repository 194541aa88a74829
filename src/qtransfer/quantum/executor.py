"""The statevector executor of general circuits: batched, differentiable, any device and dtype.

:func:`run_circuit` runs a circuit (compiled once into a :class:`~qtransfer.quantum.compile.Plan`)
on a batch of inputs ``x`` ``(..., n_inputs)`` and the trainable ``weights``: the state is
``(B, 2**n)`` (real while every gate is real, else complex64/complex128 for float32/float64
inputs), the batch the first axis of every operation (TorchQuantum's form, which runs on CUDA
unchanged), on the inputs' device. The kernels and their hand-derived gradients are
:mod:`~qtransfer.quantum.derived` (one autograd node per run); this module prepares the initial
state, reads the measurements (Z words and probabilities inside that node on small registers,
X/Y words as ``<psi|P|psi>`` by one gather per word), draws shots, and guards memory:
:func:`check_memory` estimates the bytes a run needs before allocating and refuses a circuit too
large for the machine with the numbers (:class:`~qtransfer.errors.CircuitTooLargeError`); a
training pass whose kept states would exceed :data:`~qtransfer.quantum.compile.ADJOINT_ABOVE`
keeps none (adjoint mode). :func:`gate_matrix`, :func:`apply_one` and :func:`apply_dense` serve
the density-matrix executor.

Example:
    >>> from qtransfer.quantum.templates import angle_embedding
    >>> run_circuit(angle_embedding(2, rotation="Y"), torch.tensor([[0.3, 0.0]]), torch.zeros(0))
    tensor([[0.9553, 1.0000]])
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from qtransfer.errors import CircuitTooLargeError

from .compile import Plan, compile_circuit, estimate_bytes, uses_adjoint
from .derived import local_index, probabilities, run_plan
from .matrices import FIXED, ROTATION
from .memory import available_bytes
from .description import Circuit, Expval
from .measurement import sample_counts
from .states import bit_table, complex_dtype, zero_state

__all__ = ["CHECK_MEMORY_ABOVE", "apply_dense", "apply_one", "check_memory", "check_shots", "estimate_bytes",
           "gate_matrix", "outputs_from_probabilities", "run_circuit", "shot_outputs"]

#: a batch whose states exceed this many bytes runs in chunks of about this size (on the CPU the kernels
#: are memory-bound: in chunks of 1 MiB, batch 64, one thread, 12 qubits ran 1.2x and 16 qubits 1.8x faster)
CHUNK_BYTES = 1 << 20

#: below this many bytes per run, :func:`check_memory` does not look at the free memory
CHECK_MEMORY_ABOVE = 64 << 20


@lru_cache(maxsize=512)
def _constant(key: str, part: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A fixed matrix as a tensor; ``dtype`` real takes the real part (used only for real gates)."""
    values = FIXED[key] if part < 0 else ROTATION[key][part]
    t = torch.tensor(values, dtype=torch.complex128)
    return (t if dtype.is_complex else t.real).to(device=device, dtype=dtype)


def _rotation(name: str, angle: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    c0, c1, c2 = (_constant(name, i, angle.device, dtype) for i in range(3))
    a = angle * ROTATION[name][3]
    cos, sin = torch.cos(a)[..., None, None], torch.sin(a)[..., None, None]
    return c0 + cos * c1 + sin * c2


def gate_matrix(name: str, angles: list[torch.Tensor], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The matrix of gate ``name`` (canonical name), shape ``angle.shape + (2**k, 2**k)``, in ``dtype``.

    Example:
        >>> gate_matrix("RY", [torch.tensor(math.pi / 2)], torch.float32, torch.device("cpu"))
        tensor([[ 0.7071, -0.7071],
                [ 0.7071,  0.7071]])
    """
    if name in FIXED:
        return _constant(name, -1, device, dtype)
    if name in ROTATION:
        return _rotation(name, angles[0], dtype)
    if name == "Rot":  # RZ(omega) RY(theta) RZ(phi), written out
        phi, theta, omega = angles
        c, s = torch.cos(theta / 2), torch.sin(theta / 2)
        a, b = (phi + omega) / 2, (phi - omega) / 2
        ca, sa, cb, sb = torch.cos(a), torch.sin(a), torch.cos(b), torch.sin(b)
        re = torch.stack([c * ca, -s * cb, s * cb, c * ca], -1)
        im = torch.stack([-c * sa, -s * sb, -s * sb, c * sa], -1)
        return torch.complex(re, im).unflatten(-1, (2, 2)).to(dtype)
    if name == "U3":  # P(phi) RY(theta) P(lambda), Qiskit's and PennyLane's U3 exactly
        theta, phi, lam = angles
        return _rotation("PhaseShift", phi, dtype) @ _rotation("RY", theta, dtype) @ _rotation("PhaseShift", lam, dtype)
    if name == "Toffoli":
        eye = torch.eye(8, dtype=dtype, device=device)
        return eye[[0, 1, 2, 3, 4, 5, 7, 6]]
    raise ValueError(f"no matrix for gate {name!r}")  # pragma: no cover - description checks names


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"


def apply_one(state: torch.Tensor, m: torch.Tensor, wire: int, n: int) -> torch.Tensor:
    """One 2x2 matrix (``(2, 2)`` or per sample ``(B, 2, 2)``) on ``wire``."""
    batch = state.shape[0]
    view = state.view(batch, 2**wire, 2, 2 ** (n - wire - 1))
    if m.ndim == 3:
        out = torch.einsum("bij,bljr->blir", m, view)
    elif wire == 0:
        out = m @ view
    else:
        out = torch.einsum("ij,bljr->blir", m, view)
    return out.reshape(batch, -1)


def apply_dense(state: torch.Tensor, m: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    """A ``2**k x 2**k`` matrix (or one per sample) on ``wires`` (in that order) of ``(B, 2**n)`` states: one ``einsum``."""
    batch, k = state.shape[0], len(wires)
    idx = _LETTERS[:n]
    outs = _LETTERS[n : n + k]
    result = list(idx)
    for o, w in zip(outs, wires):
        result[w] = o
    lead = "Z" if m.ndim == 3 else ""
    spec = f"{lead}{outs}{''.join(idx[w] for w in wires)},Z{idx}->Z{''.join(result)}"
    tensor = m.reshape(*m.shape[:-2], *([2] * (2 * k)))
    return torch.einsum(spec, tensor, state.view(batch, *([2] * n))).reshape(batch, -1)


def _initial_state(circuit: Circuit, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    batch, dim = x.shape[0], 2**circuit.n_qubits
    if circuit.amplitude:
        amp = x[:, list(circuit.amplitude)]
        amp = amp / amp.norm(dim=1, keepdim=True)
        if amp.shape[1] < dim:
            amp = torch.nn.functional.pad(amp, (0, dim - amp.shape[1]))
        return amp.to(dtype)
    return zero_state(batch, dim, dtype, x.device)


@lru_cache(maxsize=128)
def _measurement_tables(circuit: Circuit, device: torch.device, dtype: torch.dtype):
    """``(z_matrix (D, E), gather (T, D), coef (T, D), assign (T, E))`` for the ``E`` expectation values:
    Z-only words through the probabilities, the others as ``<psi| P |psi>`` by gather."""
    n = circuit.n_qubits
    bits = bit_table(n, device)  # (n, D)
    real = dtype if not dtype.is_complex else (torch.float64 if dtype == torch.complex128 else torch.float32)
    expvals = [m for m in circuit.measurements if isinstance(m, Expval)]
    z_matrix = torch.zeros(2**n, len(expvals), dtype=real, device=device)
    gathers, coefs, assign = [], [], []
    for e, m in enumerate(expvals):
        for coeff, word in m.terms:
            if all(p == "Z" for p, _ in word):
                signs = torch.ones(2**n, dtype=real, device=device)
                for _, w in word:
                    signs = signs * (1 - 2 * bits[w]).to(real)
                z_matrix[:, e] += coeff * signs
                continue
            mask = sum(1 << (n - 1 - w) for p, w in word if p in "XY")
            coef = torch.ones(2**n, dtype=torch.complex128, device=device)
            for p, w in word:
                sign = (1 - 2 * bits[w]).to(torch.complex128)
                coef = coef * (sign if p == "Z" else 1j * sign if p == "Y" else 1)
            gathers.append(torch.arange(2**n, device=device) ^ mask)
            coefs.append(coef if dtype.is_complex else coef.real)
            row = torch.zeros(len(expvals), dtype=real, device=device)
            row[e] = coeff
            assign.append(row)
    if not gathers:
        return z_matrix, None, None, None
    return z_matrix, torch.stack(gathers), torch.stack(coefs).to(dtype), torch.stack(assign)


#: above this many entries the measurement is not written as one matrix
_READOUT_MAX = 1 << 24


@lru_cache(maxsize=128)
def _readout(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    """``R`` ``(2**n, outputs)`` with outputs ``= |psi|^2 R``, when every measurement is linear in the
    probabilities (Z words, probabilities) and ``R`` is not too large; else None. Its columns are
    the Z words' signs and, per probability, the one-hot marginal of the measured wires. For a
    complex state (a circuit that is not real) each row comes twice, ``(2 * 2**n, outputs)``, as
    :func:`~qtransfer.quantum.derived.run_plan` reads it: against the squared real and imaginary parts."""
    n = circuit.n_qubits
    z_matrix, gather, _, _ = _measurement_tables(circuit, device, dtype)
    if gather is not None or 2**n * circuit.n_outputs > _READOUT_MAX:
        return None
    columns, e = [], 0
    for m in circuit.measurements:
        if isinstance(m, Expval):
            columns.append(z_matrix[:, e : e + 1])
            e += 1
        else:
            local = local_index(n, m.wires).to(device)
            columns.append(torch.nn.functional.one_hot(local, 2 ** len(m.wires)).to(dtype))
    readout = torch.cat(columns, 1) if columns else z_matrix
    return readout if circuit.is_real else readout.repeat_interleave(2, 0)


def _measure(circuit: Circuit, state: torch.Tensor) -> torch.Tensor:
    probs = probabilities(state)
    _, gather, coef, assign = _measurement_tables(circuit, state.device, state.dtype)
    extra = None
    if gather is not None:  # words with X or Y: <psi| P |psi>
        flipped = state[:, gather]  # (B, T, D)
        terms = (flipped.conj() * coef * state[:, None, :]).sum(-1)
        extra = (terms.real if terms.is_complex() else terms) @ assign
    return outputs_from_probabilities(circuit, probs, extra)


def outputs_from_probabilities(circuit: Circuit, probs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
    """The circuit's measurements from basis-state probabilities ``(B, 2**n)``: Z words and
    probabilities; ``extra`` ``(B, E)`` adds the X/Y words' part of each expectation value."""
    n = circuit.n_qubits
    z_matrix = _measurement_tables(circuit, probs.device, probs.dtype)[0]
    expvals = probs @ z_matrix if z_matrix.shape[1] else None
    if extra is not None:
        expvals = expvals + extra
    if all(isinstance(m, Expval) for m in circuit.measurements):
        return expvals
    pieces, e = [], 0
    grid = probs.view(probs.shape[0], *([2] * n))
    for m in circuit.measurements:
        if isinstance(m, Expval):
            pieces.append(expvals[:, e : e + 1])
            e += 1
        else:
            rest = [w for w in range(n) if w not in m.wires]
            marginal = grid.sum(dim=[1 + w for w in rest]) if rest else grid
            kept = sorted(m.wires)  # axes of the marginal, in wire order
            marginal = marginal.permute(0, *(1 + kept.index(w) for w in m.wires))
            pieces.append(marginal.reshape(probs.shape[0], -1))
    return torch.cat(pieces, dim=1)


def check_shots(circuit: Circuit) -> None:
    """Shots read bit strings: every measurement must be Z words or probabilities."""
    if any(isinstance(m, Expval) and any(p != "Z" for _, w in m.terms for p, _ in w) for m in circuit.measurements):
        raise ValueError("shots read bit strings in the computational basis: measure Z words or probabilities "
                         "(rotate X/Y into Z with gates first), or use shots=None")


def shot_outputs(circuit: Circuit, probs: torch.Tensor, exact: torch.Tensor, shots: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``exact`` with its forward value replaced by the estimate from ``shots`` bit strings drawn
    from ``probs`` (counts only, :func:`~qtransfer.quantum.measurement.sample_counts`); the
    gradient stays the exact one (straight through)."""
    counts = sample_counts(probs.detach(), shots, generator)
    estimate = outputs_from_probabilities(circuit, (counts / shots).to(exact.dtype))
    return exact + (estimate - exact).detach()


def check_memory(circuit: Circuit, batch: int, dtype: torch.dtype, device: torch.device | str,
                 *, requires_grad: bool = True) -> int:
    """The estimated bytes of a run; a :class:`~qtransfer.errors.CircuitTooLargeError` (exit code 2)
    with the numbers when they exceed the device's free memory."""
    need = estimate_bytes(circuit, batch, double=dtype == torch.float64, requires_grad=requires_grad)
    if need > CHECK_MEMORY_ABOVE:
        device = torch.device(device)
        free = available_bytes(device)
        if free is not None and need > free:
            raise CircuitTooLargeError(
                f"a {circuit.n_qubits}-qubit circuit ({len(circuit.ops)} gates) at batch {batch} needs about "
                f"{need / 2**30:.1f} GiB on {device} ({2**circuit.n_qubits} amplitudes per sample), but only "
                f"{free / 2**30:.1f} GiB are free; use fewer qubits or a smaller batch"
            )
    return need


def run_circuit(circuit: Circuit | Plan, x: torch.Tensor, weights: torch.Tensor, *, shots: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The circuit's measurements for inputs ``x`` ``(..., n_inputs)``: ``(..., n_outputs)``.

    ``shots``: each value estimated from that many bit strings (Z words and probabilities only),
    seeded by ``generator``, carrying the exact value's gradient (straight through).

    ``weights`` has the circuit's ``weight_shape`` (or any shape with as many elements) and is
    cast to ``x``'s dtype; everything runs on ``x``'s device, in ``x``'s precision.
    """
    plan = circuit if isinstance(circuit, Plan) else compile_circuit(circuit)
    circuit = plan.circuit
    if x.ndim == 0 or x.shape[-1] != circuit.n_inputs:
        raise ValueError(f"the circuit expects inputs of shape (..., {circuit.n_inputs}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"inputs must be real floating point (float32/float64), got {x.dtype}")
    if weights.numel() != circuit.n_weights:
        raise ValueError(f"the circuit expects {circuit.n_weights} weights {circuit.weight_shape}, got {tuple(weights.shape)}")
    lead = x.shape[:-1]
    x = x.reshape(math.prod(lead), circuit.n_inputs)
    w = weights.reshape(-1).to(device=x.device, dtype=x.dtype)
    check_memory(circuit, x.shape[0], x.dtype, x.device, requires_grad=torch.is_grad_enabled())
    dtype = x.dtype if circuit.is_real else complex_dtype(x.dtype)
    adjoint = torch.is_grad_enabled() and uses_adjoint(circuit, x.shape[0], double=x.dtype == torch.float64)
    if shots is not None:
        check_shots(circuit)
        state = run_plan(plan, _initial_state(circuit, x, dtype), x, w, adjoint=adjoint)
        out = shot_outputs(circuit, probabilities(state), _measure(circuit, state), shots, generator)
        return out.reshape(*lead, out.shape[-1])
    # on the CPU, large states in chunks of the batch that stay in cache (the kernels are memory-bound)
    chunk = max(1, CHUNK_BYTES // (2**circuit.n_qubits * torch.empty(0, dtype=dtype).element_size()))
    chunk = chunk if x.device.type == "cpu" else x.shape[0]
    out = torch.cat([_exact(plan, xc, w, dtype, adjoint) for xc in x.split(chunk)]) if x.shape[0] > chunk else \
        _exact(plan, x, w, dtype, adjoint)
    return out.reshape(*lead, out.shape[-1])


def _exact(plan: Plan, x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype, adjoint: bool) -> torch.Tensor:
    circuit = plan.circuit
    state = _initial_state(circuit, x, dtype) if circuit.amplitude else None  # None: |0...0>, built by run_plan
    readout = _readout(circuit, x.device, x.dtype)
    if readout is not None:  # the measurement in the same autograd node
        return run_plan(plan, state, x, w, readout, adjoint=adjoint)
    return _measure(circuit, run_plan(plan, state, x, w, adjoint=adjoint))

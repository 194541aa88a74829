"""PennyLane and Qiskit in and out: ``from_pennylane``, ``to_pennylane``, ``from_qiskit``, ``to_qiskit``.

Both libraries are imported here only, when one of these functions is called.

* :func:`to_pennylane` returns a quantum function ``qfunc(x, weights)`` that applies the
  circuit's gates with PennyLane's operations and returns its measurements; wrap it in a
  ``qml.QNode`` on any device. :func:`from_pennylane` records a quantum function
  ``qfunc(inputs, weights)`` (templates included) and reads each gate angle off it.
* :func:`from_qiskit` follows Qiskit Machine Learning's ``EstimatorQNN``: the circuit's
  ``input_params`` are the inputs in order, its ``weight_params`` the weights in order (one flat
  weight tensor), ``observables`` ``SparsePauliOp``\\ s (default ``Z`` on every qubit, each alone;
  ``EstimatorQNN``'s own default is the one parity ``Z...Z``).
  Qiskit's qubit ``q`` is our wire ``q``; Pauli labels are read right to left (qubit 0 last), as
  Qiskit writes them. :func:`to_qiskit` returns ``(circuit, input_params, weight_params, observables)``.

Example:
    >>> from qtransfer.quantum.templates import angle_embedding, basic_entangler_layers, compose
    >>> circuit = compose(angle_embedding(2), basic_entangler_layers(2, 1))
    >>> qc, inputs, weights, observables = to_qiskit(circuit)
    >>> from_qiskit(qc, inputs, weights, observables) == circuit
    True
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .description import GATES, Circuit, Const, Expval, Input, Operation, Probs, Weight, canonical_gate

__all__ = ["from_pennylane", "from_qiskit", "to_pennylane", "to_qiskit"]


def _qml():
    try:
        import pennylane as qml
    except ImportError as e:
        raise ImportError("PennyLane interop needs PennyLane: pip install 'qtransfer[pennylane]'") from e
    return qml


def _qiskit():
    try:
        import qiskit
    except ImportError as e:
        raise ImportError("Qiskit interop needs Qiskit: pip install 'qtransfer[hardware]' (or pip install qiskit)") from e
    return qiskit


# --------------------------------------------------------------------------- PennyLane


def _pl_angle(p, x, w):
    if isinstance(p, Const):  # in x's framework and dtype: PennyLane's U3/Rot do not mix numbers and tensors
        qml = _qml()
        return qml.math.cast_like(qml.math.convert_like(p.value, x), x) if hasattr(x, "shape") else p.value
    if isinstance(p, Input):
        v = x[..., p.index[0]] - p.center
        for i in p.index[1:]:
            v = v * (x[..., i] - p.center)
        return p.scale * v + p.shift
    return p.scale * w[p.index] + p.shift


def _pl_word(qml, word):
    if not word:
        return qml.Identity(0)
    ops = [getattr(qml, "Pauli" + p)(wire) for p, wire in word]
    return ops[0] if len(ops) == 1 else qml.prod(*ops)


def to_pennylane(circuit: Circuit, *, measure: bool = True) -> Callable[[Any, Any], Any]:
    """A PennyLane quantum function ``qfunc(x, weights)`` of ``circuit`` (``x`` ``(n_inputs,)`` or
    batched ``(B, n_inputs)``: parameter broadcasting; ``weights`` any shape with ``n_weights`` entries).
    ``measure=False``: the gates only (to use inside a larger quantum function).

    Example:
        >>> import pennylane as qml
        >>> from qtransfer.quantum.templates import angle_embedding
        >>> qnode = qml.QNode(to_pennylane(angle_embedding(1)), qml.device("default.qubit", wires=1))
        >>> float(qnode([0.0], [])[0])
        1.0
    """
    qml = _qml()

    def qfunc(x, weights):
        import numpy as np

        x = x if hasattr(x, "shape") else np.asarray(x, dtype=float)
        w = (weights if hasattr(weights, "shape") else np.asarray(weights, dtype=float)).reshape(-1)
        if circuit.amplitude:
            feats = x[..., list(circuit.amplitude)]
            qml.AmplitudeEmbedding(feats, wires=range(circuit.n_qubits), normalize=True, pad_with=0.0)
        for op in circuit.ops:
            getattr(qml, op.name)(*(_pl_angle(p, x, w) for p in op.params), wires=list(op.wires))
        if not measure:
            return None
        out = []
        for m in circuit.measurements:
            if isinstance(m, Probs):
                out.append(qml.probs(wires=list(m.wires)))
            elif len(m.terms) == 1 and m.terms[0][0] == 1.0:
                out.append(qml.expval(_pl_word(qml, m.terms[0][1])))
            else:
                out.append(qml.expval(qml.Hamiltonian([c for c, _ in m.terms], [_pl_word(qml, w) for _, w in m.terms])))
        return out

    qfunc.__name__ = circuit.name or "circuit"
    return qfunc


def _word_from(qml, obs) -> tuple[tuple[str, int], ...]:
    ops = obs.operands if hasattr(obs, "operands") and obs.name in ("Prod", "Tensor") else [obs]
    word = []
    for op in ops:
        if op.name == "Identity":
            continue
        if op.name not in ("PauliX", "PauliY", "PauliZ"):
            raise ValueError(f"from_pennylane: observables are Pauli words and their sums; got {op.name}")
        word.append((op.name[-1], int(op.wires[0])))
    return tuple(word)


def _measurement_from(qml, mp):
    if type(mp).__name__ == "ProbabilityMP":
        return Probs(tuple(int(w) for w in mp.wires))
    if type(mp).__name__ != "ExpectationMP":
        raise ValueError(f"from_pennylane: measurements are qml.expval of Pauli words or qml.probs, got {mp}")
    obs = mp.obs
    if obs.name in ("Sum", "LinearCombination", "Hamiltonian"):
        coeffs, ops = obs.terms()
        return Expval(tuple((float(c), _word_from(qml, o)) for c, o in zip(coeffs, ops)))
    if obs.name == "SProd":
        return Expval(((float(obs.scalar), _word_from(qml, obs.base)),))
    return Expval(((1.0, _word_from(qml, obs)),))


def _record(qml, qfunc, x, w):
    """The gates (expanded to the supported set) and measurements ``qfunc(x, w)`` queues."""
    with qml.queuing.AnnotatedQueue() as queue:
        qfunc(x, w)
    tape = qml.tape.QuantumScript.from_queue(queue)
    ops = list(_expand(tape.operations))
    for op in ops:
        name = _ALIAS_PL.get(op.name, op.name)
        try:
            canonical_gate(name)
        except ValueError as e:
            raise ValueError(f"from_pennylane: {e}") from None
    return ops, tape.measurements


def _params(ops) -> list[float]:
    return [float(p) for op in ops for p in op.parameters]


def _structure(ops) -> list:
    return [(op.name, tuple(op.wires), len(op.parameters)) for op in ops]


def from_pennylane(qfunc_or_tape, n_inputs: int | None = None, weight_shape: tuple[int, ...] | int | None = None,
                   *, n_qubits: int | None = None) -> Circuit:
    """The circuit of a PennyLane quantum function ``qfunc(inputs, weights)`` (or of a tape: fixed angles).

    ``qfunc`` may use any gate of the supported set and any template that decomposes into them
    (``qml.AngleEmbedding``, ``qml.StronglyEntanglingLayers``, ...). It is recorded at a few
    points (every input and weight moved in turn), from which each gate angle is read as a
    constant, ``scale * inputs[i] + shift``, ``scale * weights[k] + shift`` or (IQP) a product of
    two inputs; any other dependence is refused. Measurements: ``qml.expval`` of Pauli words
    or of their weighted sums, ``qml.probs``.

    Example:
        >>> import pennylane as qml
        >>> def f(inputs, weights):
        ...     qml.RY(inputs[0], wires=0); qml.CNOT(wires=[0, 1]); qml.RX(2 * weights[0, 1], wires=1)
        ...     return [qml.expval(qml.PauliZ(1)), qml.probs(wires=[0])]
        >>> c = from_pennylane(f, n_inputs=1, weight_shape=(1, 2))
        >>> c.gate_counts(), c.n_outputs, c.ops[-1].params
        ({'RY': 1, 'CNOT': 1, 'RX': 1}, 3, (Weight(index=1, scale=2.0, shift=0.0),))
    """
    import numpy as np

    qml = _qml()
    if hasattr(qfunc_or_tape, "operations") and hasattr(qfunc_or_tape, "measurements"):
        ops = list(_expand(qfunc_or_tape.operations))
        angles = [[Const(float(p)) for p in op.parameters] for op in ops]
        measurements_pl = qfunc_or_tape.measurements
        shape: tuple[int, ...] | None = None
    else:
        if n_inputs is None or weight_shape is None:
            raise ValueError("from_pennylane(qfunc, n_inputs, weight_shape): give the inputs' width and the weights' shape")
        shape = (weight_shape,) if isinstance(weight_shape, int) else tuple(weight_shape)
        n_w = int(np.prod(shape))
        # dyadic points away from special angles: moving them by 0.5 and 1 is exact in floating point
        base = np.array([(3 + (7 * k) % 29) / 64 + 0.125 for k in range(n_inputs + n_w)])

        def at(point):
            return _record(qml, qfunc_or_tape, point[:n_inputs].copy(), point[n_inputs:].reshape(shape).copy())

        ops, measurements_pl = at(base)
        p0 = np.array(_params(ops))
        moved = {}
        for h in (0.5, 1.0):
            for k in range(n_inputs + n_w):
                point = base.copy()
                point[k] += h
                ops_k, _ = at(point)
                if _structure(ops_k) != _structure(ops):
                    raise ValueError("from_pennylane: the gates themselves depend on the inputs or weights; "
                                     "only their angles may")
                moved[k, h] = np.array(_params(ops_k)) - p0
        angles, j = [], 0
        for op in ops:
            row = []
            for _ in op.parameters:
                row.append(_angle_at(j, p0, moved, base, n_inputs, at))
                j += 1
            angles.append(row)
    out = []
    for op, row in zip(ops, angles):
        name = canonical_gate(_ALIAS_PL.get(op.name, op.name))
        out.append(Operation(name, tuple(int(w) for w in op.wires), tuple(row)))
    measurements = tuple(_measurement_from(qml, mp) for mp in measurements_pl)
    wires = [w for op in out for w in op.wires] + [w for m in measurements for w in m.wires]
    n = n_qubits or (max(wires) + 1 if wires else 1)
    return Circuit(n, tuple(out), measurements, n_inputs=n_inputs, weight_shape=shape,
                   name=getattr(qfunc_or_tape, "__name__", ""))


def _angle_at(j: int, p0, moved: dict, base, n_inputs: int, at):
    """The angle of parameter ``j`` from its values at the base point and with each variable moved."""
    deps = [k for k in range(len(base)) if abs(moved[k, 0.5][j]) > 1e-10 or abs(moved[k, 1.0][j]) > 1e-10]
    f0 = p0[j]
    if not deps:
        return Const(float(f0))
    if len(deps) == 1:
        k = deps[0]
        scale = moved[k, 0.5][j] / 0.5
        if abs(moved[k, 1.0][j] - scale) > 1e-9 * max(1.0, abs(scale)):
            raise ValueError(f"from_pennylane: a gate angle depends on {_var(k, n_inputs)} non-linearly; "
                             "write it as scale * entry + shift")
        shift = f0 - scale * base[k]
        if k < n_inputs:
            return Input(k, _snap(scale), _snap(shift))
        return Weight(k - n_inputs, _snap(scale), _snap(shift))
    if len(deps) == 2 and all(k < n_inputs for k in deps):
        a, b = deps
        point = base.copy()
        point[a] += 0.5
        point[b] += 0.5
        f11 = _params(at(point)[0])[j]
        f10, f01 = f0 + moved[a, 0.5][j], f0 + moved[b, 0.5][j]
        s = (f11 - f10 - f01 + f0) / 0.25
        if abs(s) > 1e-12:
            c = base[b] - (f10 - f0) / (0.5 * s)
            c_other = base[a] - (f01 - f0) / (0.5 * s)
            t = f0 - s * (base[a] - c) * (base[b] - c)
            if abs(c - c_other) < 1e-7 and abs(f0 + moved[a, 1.0][j] - (s * (base[a] + 1 - c) * (base[b] - c) + t)) < 1e-7:
                return Input((a, b), _snap(s), _snap(t), _snap(c))
    names = ", ".join(_var(k, n_inputs) for k in deps)
    raise ValueError(f"from_pennylane: a gate angle depends on {names}; supported: one entry (scale * entry + shift) "
                     "or the product of two inputs")


def _snap(v: float) -> float:
    """``v`` without finite-difference rounding: its shortest decimal form within 1e-14 (relative)."""
    for digits in range(1, 17):
        short = float(f"{v:.{digits}g}")
        if abs(short - v) <= 1e-14 * max(1.0, abs(v)):
            return short
    return float(v)


def _var(k: int, n_inputs: int) -> str:
    return f"inputs[{k}]" if k < n_inputs else f"weights (flat index {k - n_inputs})"


_ALIAS_PL = {"MultiRZ": "IsingZZ"}


def _expand(operations, depth: int = 0):
    """Templates and other composite operations, decomposed until every gate is in the supported set."""
    for op in operations:
        if op.name in GATES or (op.name == "MultiRZ" and len(op.wires) == 2) or depth >= 8:
            yield op
        elif op.has_decomposition:
            yield from _expand(op.decomposition(), depth + 1)
        else:
            yield op  # refused below with its name


# --------------------------------------------------------------------------- Qiskit

#: our gate -> (Qiskit method name, parameter order from ours)
_TO_QISKIT = {
    "Hadamard": "h", "PauliX": "x", "PauliY": "y", "PauliZ": "z", "S": "s", "T": "t", "SX": "sx",
    "RX": "rx", "RY": "ry", "RZ": "rz", "PhaseShift": "p", "U3": "u", "CNOT": "cx", "CY": "cy", "CZ": "cz",
    "SWAP": "swap", "CRX": "crx", "CRY": "cry", "CRZ": "crz", "IsingXX": "rxx", "IsingYY": "ryy", "IsingZZ": "rzz",
    "Toffoli": "ccx",
}
_FROM_QISKIT = {v: k for k, v in _TO_QISKIT.items()} | {"cnot": "CNOT", "u3": "U3", "toffoli": "Toffoli"}


def _qiskit_angle(p, inputs, weights):
    if isinstance(p, Const):
        return p.value
    if isinstance(p, Input):
        v = inputs[p.index[0]] - p.center
        for i in p.index[1:]:
            v = v * (inputs[i] - p.center)
        return p.scale * v + p.shift
    return p.scale * weights[p.index] + p.shift


def to_qiskit(circuit: Circuit):
    """``(QuantumCircuit, input_params, weight_params, observables)``: the arguments of Qiskit Machine
    Learning's ``EstimatorQNN(circuit=..., input_params=..., weight_params=..., observables=...)``.

    Probabilities have no ``EstimatorQNN`` counterpart and are refused, as is ``AmplitudeEmbedding``.
    ``Rot(phi, theta, omega)`` becomes ``rz(phi)``, ``ry(theta)``, ``rz(omega)``.
    """
    _qiskit()
    from qiskit.circuit import ParameterVector, QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    if circuit.amplitude:
        raise ValueError("to_qiskit: AmplitudeEmbedding has no parameterised Qiskit counterpart")
    if any(isinstance(m, Probs) for m in circuit.measurements):
        raise ValueError("to_qiskit: EstimatorQNN measures expectation values; drop the probabilities")
    inputs = ParameterVector("x", circuit.n_inputs)
    weights = ParameterVector("w", circuit.n_weights)
    qc = QuantumCircuit(circuit.n_qubits)
    for op in circuit.ops:
        angles = [_qiskit_angle(p, inputs, weights) for p in op.params]
        if op.name == "Rot":
            phi, theta, omega = angles
            qc.rz(phi, op.wires[0])
            qc.ry(theta, op.wires[0])
            qc.rz(omega, op.wires[0])
            continue
        getattr(qc, _TO_QISKIT[op.name])(*angles, *op.wires)
    n = circuit.n_qubits
    observables = []
    for m in circuit.measurements:
        labels = []
        for coeff, word in m.terms:
            label = ["I"] * n
            for p, w in word:
                label[n - 1 - w] = p
            labels.append(("".join(label), coeff))
        observables.append(SparsePauliOp.from_list(labels))
    return qc, list(inputs), list(weights), observables


def _affine_of(expr, params: dict, what: str):
    """``(index, scale, shift)`` of ``expr = scale * p + shift`` for one parameter ``p`` of ``params``."""
    found = [p for p in expr.parameters]
    if len(found) != 1 or found[0] not in params:
        raise ValueError(
            f"from_qiskit: the angle {expr} must depend on exactly one input or weight parameter "
            f"(scale * p + shift); it depends on {sorted(str(p) for p in found)}"
        )
    p = found[0]
    shift = float(expr.bind({p: 0.0}).numeric())
    scale = float(expr.bind({p: 1.0}).numeric()) - shift
    check = float(expr.bind({p: 2.0}).numeric())
    if not math.isclose(check, 2 * scale + shift, rel_tol=1e-9, abs_tol=1e-9):
        raise ValueError(f"from_qiskit: the angle {expr} is not of the form scale * {p} + shift")
    return params[p], scale, shift


def _qiskit_param(value, inputs: dict, weights: dict):
    from qiskit.circuit import ParameterExpression

    if not isinstance(value, ParameterExpression):
        return Const(float(value))
    if not value.parameters:
        return Const(float(value.numeric()))
    if all(p in inputs for p in value.parameters) and len(value.parameters) == 2:
        return _product_of(value, inputs)
    names = [p for p in value.parameters if p in weights]
    if names:
        index, scale, shift = _affine_of(value, weights, "weight")
        return Weight(index, scale, shift)
    index, scale, shift = _affine_of(value, inputs, "input")
    return Input(index, scale, shift)


def _product_of(expr, inputs: dict):
    """``scale * (x_i - c) * (x_j - c) + shift`` (Qiskit's ZZFeatureMap writes ``2*(pi - x_i)*(pi - x_j)``)."""
    a, b = sorted(expr.parameters, key=lambda p: inputs[p])
    f = lambda u, v: float(expr.bind({a: u, b: v}).numeric())  # noqa: E731
    # f = s (u - c)(v - c) + t = s uv - s c (u + v) + s c^2 + t
    s = f(1, 1) - f(1, 0) - f(0, 1) + f(0, 0)
    if abs(s) < 1e-12:
        raise ValueError(f"from_qiskit: the angle {expr} is not a product of two inputs")
    c = -(f(1, 0) - f(0, 0)) / s
    t = f(0, 0) - s * c * c
    if not math.isclose(f(2, 3), s * (2 - c) * (3 - c) + t, rel_tol=1e-9, abs_tol=1e-9) or not math.isclose(
        f(0, 1) - f(0, 0), -s * c, rel_tol=1e-9, abs_tol=1e-9
    ):
        raise ValueError(f"from_qiskit: the angle {expr} is not of the form scale * (x_i - c) * (x_j - c) + shift")
    return Input((inputs[a], inputs[b]), s, t, c)


def from_qiskit(circuit, input_params=(), weight_params=(), observables=None) -> Circuit:
    """The circuit of a Qiskit ``QuantumCircuit`` under ``EstimatorQNN``'s convention.

    ``input_params`` / ``weight_params``: the circuit's ``Parameter``\\ s (or ``ParameterVector``\\ s)
    in the order of the inputs and of the one flat weight tensor; every gate angle must be a
    number or ``scale * p + shift`` of one of them (``ZZFeatureMap``'s product of two inputs is
    read too). ``observables``: one or a list of ``SparsePauliOp``\\ s, ``Pauli``\\ s or Pauli labels
    (qubit 0 rightmost), what ``EstimatorQNN`` on a V2 estimator takes;
    ``None`` measures ``Z`` on every qubit separately (``EstimatorQNN``'s own ``None`` is the one
    parity ``Z...Z``: pass ``SparsePauliOp("Z" * n)`` for that). Values and gradients equal
    ``TorchConnector(EstimatorQNN(...))``'s (``tests/test_quantum_interop_estimatorqnn.py``).
    Gates outside the supported set (after ``decompose()`` of Qiskit's library blocks) are
    refused with their name.
    """
    _qiskit()
    from qiskit.quantum_info.operators.base_operator import BaseOperator

    inputs = {p: i for i, p in enumerate(_flatten(input_params))}
    weights = {p: i for i, p in enumerate(_flatten(weight_params))}
    unknown = [p for p in circuit.parameters if p not in inputs and p not in weights]
    if unknown:
        raise ValueError(f"from_qiskit: parameters {sorted(str(p) for p in unknown)} are neither input_params nor weight_params")
    qc = circuit
    for _ in range(5):  # library blocks (ZZFeatureMap, RealAmplitudes, ...) decompose into gates
        if all(inst.operation.name in _FROM_QISKIT or inst.operation.name == "barrier" for inst in qc.data):
            break
        qc = qc.decompose()
    ops = []
    for inst in qc.data:
        name = inst.operation.name
        if name == "barrier":
            continue
        if name not in _FROM_QISKIT:
            raise ValueError(f"from_qiskit: unsupported gate {name!r}; supported: {', '.join(sorted(_FROM_QISKIT))}")
        wires = tuple(qc.find_bit(q).index for q in inst.qubits)
        params = tuple(_qiskit_param(v, inputs, weights) for v in inst.operation.params)
        ops.append(Operation(_FROM_QISKIT[name], wires, params))
    n = qc.num_qubits
    if observables is None:
        measurements = ()
    else:
        if isinstance(observables, (str, BaseOperator)):
            observables = [observables]
        measurements = tuple(_expval_from_sparse(_sparse_pauli_op(o), n) for o in observables)
    return Circuit(n, tuple(ops), measurements, n_inputs=len(inputs), weight_shape=(len(weights),), name=circuit.name)


def _flatten(params) -> list:
    """Parameters in order; ``ParameterVector``\\ s (alone or in a list) give their elements."""
    from qiskit.circuit import Parameter, ParameterVector

    if isinstance(params, (Parameter, ParameterVector)):
        params = [params]
    out = []
    for p in params:
        out.extend(list(p) if isinstance(p, (ParameterVector, list, tuple)) else [p])
    return out


def _sparse_pauli_op(observable):
    """``observable`` (a ``SparsePauliOp``, a ``Pauli`` or a label string) as a ``SparsePauliOp``."""
    from qiskit.quantum_info import Pauli, SparsePauliOp

    if isinstance(observable, SparsePauliOp):
        return observable
    if isinstance(observable, (str, Pauli)):
        return SparsePauliOp(observable)
    raise ValueError(f"from_qiskit: an observable is a SparsePauliOp, a Pauli or a Pauli label, got "
                     f"{type(observable).__name__}; convert it with SparsePauliOp.from_operator(...)")


def _expval_from_sparse(op, n: int) -> Expval:
    if op.num_qubits != n:
        raise ValueError(f"from_qiskit: observable on {op.num_qubits} qubits for a {n}-qubit circuit")
    terms = []
    for label, coeff in op.to_list():
        if abs(complex(coeff).imag) > 1e-12:
            raise ValueError(f"from_qiskit: observable coefficients must be real, got {coeff} for {label}")
        word = tuple((p, n - 1 - i) for i, p in enumerate(label) if p != "I")
        terms.append((float(complex(coeff).real), word))
    return Expval(tuple(terms))

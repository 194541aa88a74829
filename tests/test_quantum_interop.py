"""PennyLane and Qiskit in and out: values equal to their own simulators, round trips exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qtransfer.quantum import Circuit, from_pennylane, from_qiskit, templates, to_pennylane, to_qiskit
from qtransfer.quantum.executor import run_circuit

qml = pytest.importorskip("pennylane")
qiskit = pytest.importorskip("qiskit")
from qiskit.circuit import ParameterVector, QuantumCircuit  # noqa: E402
from qiskit.quantum_info import SparsePauliOp, Statevector  # noqa: E402


def _ours(circuit: Circuit, x, w) -> np.ndarray:
    return run_circuit(circuit, torch.tensor(np.atleast_2d(x), dtype=torch.float64),
                       torch.tensor(np.asarray(w, dtype=float).reshape(-1))).numpy()[0]


def _qiskit_values(qc, x, w, observables):
    bound = qc.assign_parameters({**dict(zip(_params(qc, "x"), x)), **dict(zip(_params(qc, "w"), w))})
    state = Statevector(bound)
    return np.array([state.expectation_value(o).real for o in observables])


def _params(qc, prefix):
    return sorted((p for p in qc.parameters if p.name.startswith(prefix + "[")), key=lambda p: p.index)


def _every_gate_circuit():
    x, w = ParameterVector("x", 3), ParameterVector("w", 6)
    qc = QuantumCircuit(3)
    qc.h(0); qc.x(1); qc.y(2); qc.z(0); qc.s(1); qc.t(2); qc.sx(0)
    qc.rx(2 * x[0] + 0.1, 0); qc.ry(x[1], 1); qc.rz(w[0], 2); qc.p(-x[2], 0); qc.u(w[1], x[0], 0.3, 1)
    qc.cx(0, 1); qc.cy(1, 2); qc.cz(2, 0); qc.swap(0, 2); qc.crx(w[2], 0, 1); qc.cry(x[2] - 1, 1, 2)
    qc.crz(w[3], 2, 0); qc.rxx(w[4], 0, 1); qc.ryy(0.7 * x[1], 1, 2); qc.rzz(w[5], 0, 2); qc.ccx(0, 1, 2)
    return qc, x, w


def test_from_qiskit_every_gate_equals_statevector(tol64):
    qc, x, w = _every_gate_circuit()
    observables = [SparsePauliOp("IZZ"), SparsePauliOp.from_list([("XIY", 0.5), ("ZII", -1.0)]), SparsePauliOp("YXZ")]
    c = from_qiskit(qc, x, w, observables)
    assert c.n_inputs == 3 and c.weight_shape == (6,) and c.n_outputs == 3
    rng = np.random.default_rng(3)
    for _ in range(5):
        xv, wv = rng.uniform(-3, 3, 3), rng.uniform(-3, 3, 6)
        np.testing.assert_allclose(_ours(c, xv, wv), _qiskit_values(qc, xv, wv, observables), **tol64)


def test_from_qiskit_default_measures_z_on_every_qubit_in_qiskit_order(tol64):
    qc, x, w = _every_gate_circuit()
    c = from_qiskit(qc, x, w)
    xv, wv = np.linspace(0.1, 0.9, 3), np.linspace(-1, 1, 6)
    z = [SparsePauliOp("I" * (2 - q) + "Z" + "I" * q) for q in range(3)]  # qubit q: label position n-1-q
    np.testing.assert_allclose(_ours(c, xv, wv), _qiskit_values(qc, xv, wv, z), **tol64)


def test_from_qiskit_library_feature_map_and_ansatz(tol64):
    from qiskit.circuit.library import real_amplitudes, zz_feature_map

    fm, ansatz = zz_feature_map(3, reps=2), real_amplitudes(3, reps=2)
    qc = fm.compose(ansatz)
    c = from_qiskit(qc, fm.parameters, ansatz.parameters)
    xv, wv = np.array([0.3, -1.2, 2.0]), np.linspace(-2, 2, ansatz.num_parameters)
    bound = qc.assign_parameters({**dict(zip(fm.parameters, xv)), **dict(zip(ansatz.parameters, wv))})
    state = Statevector(bound)
    expect = [state.expectation_value(SparsePauliOp("I" * (2 - q) + "Z" + "I" * q)).real for q in range(3)]
    np.testing.assert_allclose(_ours(c, xv, wv), expect, **tol64)
    # the same circuit as our templates
    np.testing.assert_allclose(_ours(templates.compose(templates.zz_feature_map(3), templates.real_amplitudes(3, reps=2)), xv, wv),
                               expect, **tol64)


def test_to_qiskit_round_trip_and_values(tol64):
    circuit = templates.compose(templates.angle_embedding(3, rotation="Y"), templates.strongly_entangling_layers(3, 2),
                                measurements=("Z0 Z1", "0.5*X2 - Y0"))
    qc, x, w, observables = to_qiskit(circuit)
    rng = np.random.default_rng(4)
    xv, wv = rng.uniform(-2, 2, 3), rng.uniform(-3, 3, circuit.n_weights)
    np.testing.assert_allclose(_ours(circuit, xv, wv), _qiskit_values(qc, xv, wv, observables), **tol64)
    back = from_qiskit(qc, x, w, observables)
    np.testing.assert_allclose(_ours(back, xv, wv), _ours(circuit, xv, wv), **tol64)
    qc2, *_ = to_qiskit(from_qiskit(*_every_gate_circuit()))
    assert sum(qc2.count_ops().values()) == len(_every_gate_circuit()[0].data)


def test_from_qiskit_refuses_what_it_cannot_express():
    x = ParameterVector("x", 2)
    qc = QuantumCircuit(2)
    qc.rx(x[0] * x[0] + 1, 0)
    with pytest.raises(ValueError, match="not of the form"):
        from_qiskit(qc, x, [])
    qc = QuantumCircuit(2)
    qc.ch(0, 1)  # Qiskit's decompose() gives supported gates
    assert from_qiskit(qc).n_qubits == 2
    qc.reset(0)
    with pytest.raises(ValueError, match="unsupported gate 'reset'"):
        from_qiskit(qc)
    qc = QuantumCircuit(1)
    qc.rx(x[0], 0)
    with pytest.raises(ValueError, match=r"parameters \['x\[0\]'\] are neither"):
        from_qiskit(qc)


def test_from_pennylane_with_templates_and_round_trip(tol64):
    def qfunc(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(3), rotation="Y")
        qml.IQPEmbedding(inputs, wires=range(3))
        qml.StronglyEntanglingLayers(weights, wires=range(3))
        qml.CRX(0.5 * inputs[1] - 0.2, wires=[2, 0])
        qml.U3(weights[0, 0, 0], 0.3, inputs[2], wires=1)
        return [qml.expval(qml.PauliZ(0) @ qml.PauliX(1)), qml.expval(0.5 * qml.PauliY(2) + qml.PauliZ(0)),
                qml.probs(wires=[1, 2])]

    shape = qml.StronglyEntanglingLayers.shape(2, 3)
    c = from_pennylane(qfunc, n_inputs=3, weight_shape=shape)
    assert c.weight_shape == shape and c.n_outputs == 6
    rng = np.random.default_rng(6)
    xv, wv = rng.uniform(-2, 2, 3), rng.uniform(-3, 3, shape)
    node = qml.QNode(qfunc, qml.device("default.qubit", wires=3))
    a, b, p = node(xv, wv)
    np.testing.assert_allclose(_ours(c, xv, wv), np.concatenate([[a, b], p]), **tol64)
    again = qml.QNode(to_pennylane(c), qml.device("default.qubit", wires=3))(xv, wv)
    np.testing.assert_allclose(np.concatenate([[again[0], again[1]], again[2]]), np.concatenate([[a, b], p]), **tol64)
    assert from_pennylane(to_pennylane(c), n_inputs=3, weight_shape=shape) == c


def test_from_pennylane_refuses_nonlinear_angles_and_unknown_gates():
    def nonlinear(inputs, weights):
        qml.RX(np.sin(inputs[0]), wires=0)
        return [qml.expval(qml.PauliZ(0))]

    with pytest.raises(ValueError, match=r"depends on inputs\[0\] non-linearly"):
        from_pennylane(nonlinear, n_inputs=1, weight_shape=(0,))

    def unknown(inputs, weights):
        qml.measure(0)
        return [qml.expval(qml.PauliZ(0))]

    with pytest.raises(ValueError, match="unsupported gate 'MidMeasureMP'"):
        from_pennylane(unknown, n_inputs=1, weight_shape=(0,))


def test_quantum_layer_from_qiskit_has_one_weight_tensor_in_weight_params_order():
    from qtransfer.quantum import QuantumLayer

    qc, x, w = _every_gate_circuit()
    layer = QuantumLayer(circuit=from_qiskit(qc, x, w), dtype=torch.float64)
    assert [n for n, _ in layer.named_parameters()] == ["weights"] and layer.weights.shape == (6,)
    with torch.no_grad():
        layer.weights.copy_(torch.linspace(-1, 1, 6, dtype=torch.float64))
    xv = np.array([0.2, 0.4, 0.6])
    expect = _qiskit_values(qc, xv, np.linspace(-1, 1, 6), [SparsePauliOp("I" * (2 - q) + "Z" + "I" * q) for q in range(3)])
    np.testing.assert_allclose(layer(torch.tensor(xv)[None]).detach().numpy()[0], expect, atol=1e-6, rtol=0)

"""``from_qiskit`` / ``to_qiskit`` against Qiskit Machine Learning's ``EstimatorQNN`` + ``TorchConnector``.

Random parameterised ``QuantumCircuit``\\ s (every gate of the set across the seeds, inputs and
weights re-used, weighted Pauli-sum observables with X/Y words) give the same values and the
same gradients w.r.t. inputs and weights in ``QuantumLayer(circuit=from_qiskit(...))`` as in
``TorchConnector(EstimatorQNN(...))`` on the exact ``StatevectorEstimator``.

``TorchConnector`` casts to ``torch.float`` (float32): its weights are drawn as float32 numbers
(exact in both) and its outputs carry float32 rounding, hence ``rtol=1e-6`` beside ``atol=1e-6``.
``EstimatorQNN.forward/backward`` themselves are float64 and are held to ``atol=1e-6`` alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_machine_learning",
                    reason="qiskit-machine-learning is absent: pip install 'qtransfer[qiskit-ml]'")
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit  # noqa: E402
from qiskit.primitives import StatevectorEstimator  # noqa: E402
from qiskit.quantum_info import Operator, Pauli, SparsePauliOp  # noqa: E402
from qiskit_machine_learning.connectors import TorchConnector  # noqa: E402
from qiskit_machine_learning.neural_networks import EstimatorQNN  # noqa: E402

from qtransfer.quantum import QuantumLayer, from_qiskit, to_qiskit  # noqa: E402

#: the gate set of issue 17 under Qiskit's names: (method, qubits, angles)
GATES = [("h", 1, 0), ("x", 1, 0), ("y", 1, 0), ("z", 1, 0), ("s", 1, 0), ("t", 1, 0), ("sx", 1, 0),
         ("rx", 1, 1), ("ry", 1, 1), ("rz", 1, 1), ("p", 1, 1), ("u", 1, 3),
         ("cx", 2, 0), ("cy", 2, 0), ("cz", 2, 0), ("swap", 2, 0), ("crx", 2, 1), ("cry", 2, 1), ("crz", 2, 1),
         ("rxx", 2, 1), ("ryy", 2, 1), ("rzz", 2, 1), ("ccx", 3, 0)]
SEEDS = range(12)
BATCH = 3


def _angle(rng, x, w):
    """A constant, ``a * x_i + b``, ``a * w_k + b`` or (ZZFeatureMap's) ``(pi - x_i) * (pi - x_j)``."""
    kinds = ["const", "input", "weight", "weight"] + (["product"] if len(x) > 1 else [])  # weights twice as often
    kind = rng.choice(kinds)
    a, b = round(rng.uniform(-1.5, 1.5), 3), round(rng.uniform(-1, 1), 3)
    if kind == "const":
        return float(rng.uniform(-math.pi, math.pi))
    if kind == "input":
        return a * x[int(rng.integers(len(x)))] + b
    if kind == "weight":
        return a * w[int(rng.integers(len(w)))] + b
    i, j = rng.choice(len(x), 2, replace=False)
    return (math.pi - x[int(i)]) * (math.pi - x[int(j)])


def random_circuit(seed: int):
    """``(qc, inputs, weights, observables)``: 2-4 qubits, 8-18 gates, every parameter used."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    x, w = ParameterVector("x", int(rng.integers(1, n + 2))), ParameterVector("w", int(rng.integers(1, 7)))
    gates = [g for g in GATES if g[1] <= n]
    ops = []
    for _ in range(int(rng.integers(8, 19))):
        name, k, n_angles = gates[int(rng.integers(len(gates)))]
        qubits = [int(q) for q in rng.choice(n, k, replace=False)]
        ops.append((name, [_angle(rng, x, w) for _ in range(n_angles)], qubits))
    used = {p for _, angles, _ in ops for a in angles if not isinstance(a, float) for p in a.parameters}
    for p in [*x, *w]:  # EstimatorQNN binds every parameter it is given: each must be in the circuit
        if p not in used:
            gate = (str(rng.choice(["rx", "ry", "rz"])), [p], [int(rng.integers(n))])
            ops.insert(int(rng.integers(len(ops) + 1)), gate)
    qc = QuantumCircuit(n)
    for name, angles, qubits in ops:
        getattr(qc, name)(*angles, *qubits)
    if seed % 3 == 0:
        observables = None
    else:
        observables = []
        for _ in range(int(rng.integers(1, 4))):
            terms = [("".join(rng.choice(list("IXYZ"), n)), float(rng.uniform(-1, 1)))
                     for _ in range(int(rng.integers(1, 4)))]
            observables.append(SparsePauliOp.from_list(terms) if seed % 3 == 2 else SparsePauliOp(terms[0][0]))
    return qc, x, w, observables


def _z_each(n: int) -> list:
    """``<Z_q>`` for q = 0..n-1: what ``from_qiskit`` measures when ``observables`` is None."""
    return [SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], num_qubits=n) for q in range(n)]


def _qnn(qc, inputs, weights, observables) -> EstimatorQNN:
    """``EstimatorQNN`` on the exact estimator (``default_precision=0``: no shot noise added)."""
    return EstimatorQNN(circuit=qc, input_params=inputs, weight_params=weights, observables=observables,
                        estimator=StatevectorEstimator(), input_gradients=True, default_precision=0.0)


def _values(seed: int, n_inputs: int, n_weights: int, n_outputs: int):
    """Inputs, weights and a cotangent, all float32 numbers (TorchConnector holds float32 weights)."""
    rng = np.random.default_rng(1000 + seed)
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    return (f32(rng.uniform(-math.pi, math.pi, (BATCH, n_inputs))), f32(rng.uniform(-math.pi, math.pi, n_weights)),
            f32(rng.uniform(-1, 1, (BATCH, n_outputs))))


def _ours(circuit, x, w, cotangent):
    """Values and gradients w.r.t. inputs and the one weight tensor of ``QuantumLayer(circuit=...)``, float64."""
    layer = QuantumLayer(circuit=circuit, dtype=torch.float64)
    assert [name for name, _ in layer.named_parameters()] == ["weights"] and layer.weights.shape == w.shape
    with torch.no_grad():
        layer.weights.copy_(torch.from_numpy(w))
    xt = torch.tensor(x, requires_grad=True)
    out = layer(xt)
    (out * torch.from_numpy(cotangent)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), layer.weights.grad.numpy()


@pytest.mark.parametrize("seed", SEEDS)
def test_quantum_layer_from_qiskit_equals_torch_connector_estimator_qnn(seed, tol64):
    qc, inputs, weights, observables = random_circuit(seed)
    reference = _z_each(qc.num_qubits) if observables is None else observables
    circuit = from_qiskit(qc, inputs, weights, observables)
    assert circuit.n_inputs == len(inputs) and circuit.weight_shape == (len(weights),)
    assert circuit.n_outputs == len(reference)
    x, w, cotangent = _values(seed, len(inputs), len(weights), len(reference))
    values, grad_x, grad_w = _ours(circuit, x, w, cotangent)

    qnn = _qnn(qc, inputs, weights, reference)
    connector = TorchConnector(qnn, initial_weights=w)
    xt = torch.tensor(x, requires_grad=True)
    out = connector(xt)
    (out * torch.from_numpy(cotangent).float()).sum().backward()
    float32 = dict(atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(values, out.detach().double().numpy(), **float32)
    np.testing.assert_allclose(grad_x, xt.grad.double().numpy(), **float32)
    np.testing.assert_allclose(grad_w, connector.weight.grad.double().numpy(), **float32)

    # EstimatorQNN itself is float64: the Jacobians, output by output, to 1e-6 absolute
    jac_x, jac_w = qnn.backward(x, w)
    np.testing.assert_allclose(values, qnn.forward(x, w), **tol64)
    np.testing.assert_allclose(grad_x, np.einsum("bo,boi->bi", cotangent, jac_x), **tol64)
    np.testing.assert_allclose(grad_w, np.einsum("bo,bok->k", cotangent, jac_w), **tol64)

    # round trip: to_qiskit's circuit, parameters and observables in EstimatorQNN give the same numbers
    back = _qnn(*to_qiskit(circuit))
    np.testing.assert_allclose(back.forward(x, w), qnn.forward(x, w), **tol64)
    for got, expect in zip(back.backward(x, w), (jac_x, jac_w)):
        np.testing.assert_allclose(got, expect, **tol64)


def test_random_circuits_cover_the_gate_set_and_observable_kinds():
    drawn = [random_circuit(seed) for seed in SEEDS]
    assert {inst.operation.name for qc, *_ in drawn for inst in qc.data} == {name for name, _, _ in GATES}
    assert {qc.num_qubits for qc, *_ in drawn} == {2, 3, 4}
    labels = [label for *_, obs in drawn if obs for o in obs for label in o.paulis.to_labels()]
    assert any("X" in label for label in labels) and any("Y" in label for label in labels)
    assert any(obs is None for *_, obs in drawn) and any(obs and len(o) > 1 for *_, obs in drawn for o in obs or ())


def test_parameter_order_is_the_order_given_not_the_circuits():
    """Inputs and weights follow ``input_params`` / ``weight_params`` as listed, as in EstimatorQNN."""
    qc, inputs, weights, _ = random_circuit(4)
    inputs, weights = list(inputs)[::-1], [*list(weights)[1:], weights[0]]
    observables = [SparsePauliOp("Z" * qc.num_qubits), SparsePauliOp("X" + "I" * (qc.num_qubits - 1))]
    x, w, cotangent = _values(4, len(inputs), len(weights), len(observables))
    values, _, grad_w = _ours(from_qiskit(qc, inputs, weights, observables), x, w, cotangent)
    qnn = _qnn(qc, inputs, weights, observables)
    np.testing.assert_allclose(values, qnn.forward(x, w), atol=1e-6, rtol=0)
    np.testing.assert_allclose(grad_w, np.einsum("bo,bok->k", cotangent, qnn.backward(x, w)[1]), atol=1e-6, rtol=0)


def test_observables_none_is_z_on_each_qubit_not_estimator_qnns_parity():
    """Where we differ, on purpose (issue 17): ``observables=None`` is ``<Z_i>`` on every qubit, as the
    dressed head needs; ``EstimatorQNN``'s own ``None`` is the one parity ``Z...Z``, which
    ``from_qiskit`` gives when that observable is passed."""
    qc, inputs, weights, _ = random_circuit(0)
    n = qc.num_qubits
    x, w, _ = _values(0, len(inputs), len(weights), 1)
    parity = _qnn(qc, inputs, weights, None)
    assert parity.output_shape == (1,)
    ours = QuantumLayer(circuit=from_qiskit(qc, inputs, weights, SparsePauliOp("Z" * n)), dtype=torch.float64)
    with torch.no_grad():
        ours.weights.copy_(torch.from_numpy(w))
        np.testing.assert_allclose(ours(torch.from_numpy(x)).numpy(), parity.forward(x, w), atol=1e-6, rtol=0)
    assert from_qiskit(qc, inputs, weights).n_outputs == n


def test_from_qiskit_takes_the_observables_estimator_qnn_takes():
    """``SparsePauliOp``, ``Pauli`` (with its sign) and label strings, as EstimatorQNN on a V2 estimator."""
    theta = Parameter("theta")
    qc = QuantumCircuit(2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.rx(0.3, 1)
    observables = [Pauli("-ZI"), "IX", SparsePauliOp.from_list([("XZ", 0.5), ("YY", -0.25)])]
    x = np.array([[0.7]])
    values = QuantumLayer(circuit=from_qiskit(qc, [theta], [], observables), dtype=torch.float64)(torch.from_numpy(x))
    expect = _qnn(qc, [theta], [], observables).forward(x, [])
    np.testing.assert_allclose(values.detach().numpy(), expect, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"got Operator; convert it with SparsePauliOp.from_operator"):
        from_qiskit(qc, [theta], [], [Operator(np.eye(4))])
    with pytest.raises(ValueError, match="coefficients must be real"):
        from_qiskit(qc, [theta], [], SparsePauliOp("ZZ", 1j))

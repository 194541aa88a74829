"""Every template against PennyLane's or Qiskit's own, on the same inputs and weights (float64, 1e-6)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from qtransfer.quantum import templates as T
from qtransfer.quantum.description import Circuit, Expval, Probs
from qtransfer.quantum.executor import run_circuit

qml = pytest.importorskip("pennylane")


def _ours(circuit: Circuit, x, w) -> np.ndarray:
    x = torch.as_tensor(np.atleast_2d(x), dtype=torch.float64)
    return run_circuit(circuit, x, torch.as_tensor(w, dtype=torch.float64).reshape(-1)).numpy()[0]


def _pl_z(n: int, qfunc) -> np.ndarray:
    @qml.qnode(qml.device("default.qubit", wires=n))
    def node():
        qfunc()
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    return np.array([float(v) for v in node()])


def _qiskit_z(qc, values) -> np.ndarray:
    from qiskit.quantum_info import SparsePauliOp, Statevector

    n = qc.num_qubits
    state = Statevector(qc.assign_parameters(list(values)))
    return np.array([state.expectation_value(SparsePauliOp("I" * (n - 1 - i) + "Z" + "I" * i)).real for i in range(n)])


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.mark.parametrize("rotation", ["X", "Y", "Z"])
def test_angle_embedding(rotation, rng, tol64):
    n = 3
    x = rng.uniform(-3, 3, n)
    c = T.compose(T.hadamard_ry_embedding(n), T.angle_embedding(n, rotation=rotation))  # H first: RZ shows
    expect = _pl_z(n, lambda: ([qml.Hadamard(i) for i in range(n)], qml.RY(x[0], 0), qml.RY(x[1], 1), qml.RY(x[2], 2),
                               qml.AngleEmbedding(x, wires=range(n), rotation=rotation),
                               [qml.CNOT([i, (i + 1) % n]) for i in range(n)]))
    c = T.compose(c, Circuit(n, tuple(T.basic_entangler_layers(n, 1).ops[n:])))  # the same ring of CNOTs
    np.testing.assert_allclose(_ours(c, x, []), expect, **tol64)


def test_published_is_hadamard_ry_then_cnot_ry(rng, tol64):
    n, depth = 4, 3
    x, w = rng.uniform(-1, 1, n), rng.uniform(-3, 3, (depth, n))

    def published():
        for i in range(n):
            qml.Hadamard(i)
            qml.RY(x[i], i)
        for layer in range(depth):
            for i in list(range(0, n - 1, 2)) + list(range(1, n - 1, 2)):
                qml.CNOT([i, i + 1])
            for i in range(n):
                qml.RY(w[layer, i], i)

    np.testing.assert_allclose(_ours(T.published(n, depth), x, w), _pl_z(n, published), **tol64)


def test_iqp_embedding(rng, tol64):
    n = 4
    x = rng.uniform(-2, 2, n)
    c = T.iqp_embedding(n, n_repeats=2)
    measured = Circuit(n, c.ops, measurements=(Expval.parse("X0 X1"), Expval.parse("Y2 Z3"), Probs((0, 2))))

    @qml.qnode(qml.device("default.qubit", wires=n))
    def node():
        qml.IQPEmbedding(x, wires=range(n), n_repeats=2)
        return qml.expval(qml.PauliX(0) @ qml.PauliX(1)), qml.expval(qml.PauliY(2) @ qml.PauliZ(3)), qml.probs(wires=[0, 2])

    a, b, p = node()
    np.testing.assert_allclose(_ours(measured, x, []), np.concatenate([[a, b], p]), **tol64)


def test_zz_feature_map_matches_qiskit(rng, tol64):
    qiskit = pytest.importorskip("qiskit")
    from qiskit.circuit.library import zz_feature_map

    n = 3
    x = rng.uniform(-2, 2, n)
    for reps, entanglement in ((2, "full"), (1, "linear"), (2, "circular")):
        qc = zz_feature_map(n, reps=reps, entanglement=entanglement)
        np.testing.assert_allclose(_ours(T.zz_feature_map(n, reps=reps, entanglement=entanglement), x, []),
                                   _qiskit_z(qc, x), **tol64)


def test_amplitude_embedding_normalises_and_pads(rng, tol64):
    n = 3
    x = rng.uniform(-1, 1, 5)  # padded to 8 amplitudes
    c = T.compose(T.amplitude_embedding(n, n_features=5), T.strongly_entangling_layers(n, 1))
    w = rng.uniform(-3, 3, (1, n, 3))
    expect = _pl_z(n, lambda: (qml.AmplitudeEmbedding(x, wires=range(n), normalize=True, pad_with=0.0),
                               qml.StronglyEntanglingLayers(w, wires=range(n))))
    np.testing.assert_allclose(_ours(c, x, w), expect, **tol64)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("rotation", ["X", "Y"])
def test_basic_entangler_layers(n, rotation, rng, tol64):
    x, w = rng.uniform(-2, 2, n), rng.uniform(-3, 3, (2, n))
    c = T.compose(T.angle_embedding(n, rotation="Y"), T.basic_entangler_layers(n, 2, rotation=rotation))
    rot = getattr(qml, "R" + rotation)
    expect = _pl_z(n, lambda: (qml.AngleEmbedding(x, wires=range(n), rotation="Y"),
                               qml.BasicEntanglerLayers(w, wires=range(n), rotation=rot)))
    np.testing.assert_allclose(_ours(c, x, w), expect, **tol64)
    assert qml.BasicEntanglerLayers.shape(2, n) == T.basic_entangler_layers(n, 2).weight_shape


@pytest.mark.parametrize("n,ranges", [(1, None), (2, None), (4, None), (4, [3, 2, 1]), (5, [2, 4, 1])])
def test_strongly_entangling_layers(n, ranges, rng, tol64):
    x, w = rng.uniform(-2, 2, n), rng.uniform(-3, 3, (3, n, 3))
    c = T.compose(T.angle_embedding(n), T.strongly_entangling_layers(n, 3, ranges=ranges))
    expect = _pl_z(n, lambda: (qml.AngleEmbedding(x, wires=range(n)),
                               qml.StronglyEntanglingLayers(w, wires=range(n), ranges=ranges)))
    np.testing.assert_allclose(_ours(c, x, w), expect, **tol64)
    assert qml.StronglyEntanglingLayers.shape(3, n) == T.strongly_entangling_layers(n, 3).weight_shape


@pytest.mark.parametrize("entanglement", ["reverse_linear", "full", "circular"])
def test_real_amplitudes_and_efficient_su2_match_qiskit(entanglement, rng, tol64):
    pytest.importorskip("qiskit")
    from qiskit.circuit.library import efficient_su2, real_amplitudes

    n, reps = 4, 2
    for ours, theirs in ((T.real_amplitudes, real_amplitudes), (T.efficient_su2, efficient_su2)):
        c = ours(n, reps=reps, entanglement=entanglement)
        qc = theirs(n, reps=reps, entanglement=entanglement)
        assert c.n_weights == qc.num_parameters
        w = rng.uniform(-3, 3, c.n_weights)
        np.testing.assert_allclose(_ours(c, np.zeros((1, 0)), w), _qiskit_z(qc, w), **tol64)


def test_reuploading(rng, tol64):
    n, depth = 3, 3
    x, w = rng.uniform(-2, 2, n), rng.uniform(-3, 3, (depth, 1, n, 3))
    c = T.reuploading(T.angle_embedding(n), [T.strongly_entangling_layers(n, 1) for _ in range(depth)])
    assert c.n_inputs == n and c.weight_shape == (depth * n * 3,)

    def expect():
        for layer in range(depth):
            qml.AngleEmbedding(x, wires=range(n))
            qml.StronglyEntanglingLayers(w[layer], wires=range(n))

    np.testing.assert_allclose(_ours(c, x, w), _pl_z(n, expect), **tol64)
    assert c.gate_counts()["RX"] == depth * n


def test_template_arguments_are_checked():
    with pytest.raises(ValueError, match="rotation is 'X', 'Y' or 'Z'"):
        T.angle_embedding(2, rotation="W")
    with pytest.raises(ValueError, match="one range per layer"):
        T.strongly_entangling_layers(3, 2, ranges=[1])
    with pytest.raises(ValueError, match="unknown entanglement"):
        T.real_amplitudes(3, entanglement="star")
    with pytest.raises(ValueError, match="only come first"):
        T.compose(T.angle_embedding(2), T.amplitude_embedding(2))


def test_a_circuit_sent_to_another_process_hashes_as_one_built_there():
    """A circuit caches its hash (executors look plans up by it on every call); the hash mixes string
    hashes, which differ between processes, so a pickled circuit (a sweep worker's) leaves it behind:
    in another process it finds the plans of the same circuit built there."""
    import pickle
    import subprocess
    import sys

    c = T.compose(T.angle_embedding(3, rotation="Y"), T.strongly_entangling_layers(3, 2))
    hash(c), c.is_real  # noqa: B018 -- both computed and kept
    code = ("import pickle, sys; from qtransfer.quantum import templates as T; c = pickle.loads(sys.stdin.buffer.read()); "
            "d = T.compose(T.angle_embedding(3, rotation='Y'), T.strongly_entangling_layers(3, 2)); "
            "print(hash(c) == hash(d), c == d, {c: 1}.get(d))")
    env = {**__import__("os").environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(c), capture_output=True, env=env, check=True)
    assert out.stdout.decode().split() == ["True", "True", "1"]

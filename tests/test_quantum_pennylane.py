"""The built-in simulator against PennyLane on identical weights: values and gradients."""

from __future__ import annotations

import itertools

import pytest
import torch

qml = pytest.importorskip("pennylane")

from qtransfer.quantum import QuantumLayer  # noqa: E402
from qtransfer.quantum.circuit import EMBEDDINGS, LAYERS, CircuitSpec  # noqa: E402
from qtransfer.quantum.pennylane_backend import build_qnode, plugin_hint  # noqa: E402

F64 = torch.float64


def _pair(n, depth, embedding="hadamard_ry", layer="cnot_ry", backend="pennylane:default.qubit", **kwargs):
    """A builtin layer and a PennyLane layer holding the same weights."""
    builtin = QuantumLayer(n, depth, embedding=embedding, layer=layer, q_delta=1.0, dtype=F64)
    other = QuantumLayer(n, depth, backend, embedding=embedding, layer=layer, dtype=F64, **kwargs)
    other.load_state_dict(builtin.state_dict())
    return builtin, other


def _values_and_grads(layer, x):
    x = x.clone().requires_grad_()
    layer.zero_grad()
    out = layer(x)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=F64)).sum().backward()
    return out.detach(), x.grad, layer.weights.grad.clone()


CASES = [(n, d, e, lay) for (n, d), e, lay in itertools.product([(1, 2), (3, 2), (4, 1)], EMBEDDINGS, LAYERS)]
CASES += [(2, 3, "hadamard_ry", "cnot_ry"), (5, 2, "hadamard_ry", "cnot_ry"), (6, 1, "rx", "rot_ring"), (7, 2, "ry", "cnot_ry")]


@pytest.mark.parametrize("n, depth, embedding, layer", CASES)
def test_builtin_matches_default_qubit(n, depth, embedding, layer, tol64):
    builtin, pl = _pair(n, depth, embedding, layer)
    x = (torch.rand(3, n, dtype=F64) - 0.5) * 6
    for a, b in zip(_values_and_grads(builtin, x), _values_and_grads(pl, x)):
        torch.testing.assert_close(a, b, **tol64)


def test_single_sample_matches_default_qubit(tol64):
    builtin, pl = _pair(3, 2)
    x = torch.rand(3, dtype=F64)
    torch.testing.assert_close(builtin(x), pl(x), **tol64)


def test_builtin_matches_lightning_adjoint(tol64):
    builtin, pl = _pair(4, 3, backend="pennylane:lightning.qubit", diff_method="adjoint")
    x = torch.rand(2, 4, dtype=F64) * 3
    for a, b in zip(_values_and_grads(builtin, x), _values_and_grads(pl, x)):
        torch.testing.assert_close(a, b, **tol64)


@pytest.mark.parametrize("n, depth", [(2, 2), (3, 3), (4, 2)])  # PennyLane refuses range 1 on one wire
def test_rot_ring_is_strongly_entangling_layers(n, depth, tol64):
    spec = CircuitSpec(n, depth, embedding="rx", layer="rot_ring")
    builtin = QuantumLayer(n, depth, embedding="rx", layer="rot_ring", q_delta=1.0, dtype=F64)
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="torch")
    def reference(x, w):
        for wire in range(n):
            qml.RX(x[wire], wires=wire)
        qml.StronglyEntanglingLayers(w, wires=range(n), ranges=[1] * depth)
        return [qml.expval(qml.PauliZ(wire)) for wire in range(n)]

    x = torch.rand(n, dtype=F64) * 3
    assert builtin.weights.shape == spec.weight_shape
    expected = torch.stack(list(reference(x, builtin.weights.detach())))
    torch.testing.assert_close(builtin(x).detach(), expected, **tol64)


def test_state_dict_keys_are_the_same_across_backends():
    builtin, pl = _pair(3, 2)
    assert builtin.state_dict().keys() == pl.state_dict().keys()
    torch.testing.assert_close(builtin.weights, pl.weights, atol=0, rtol=0)


def test_missing_device_names_the_package_to_install():
    with pytest.raises(ValueError, match="pip install pennylane-lightning-gpu"):
        QuantumLayer(4, 2, backend="pennylane:lightning.gpu")
    assert plugin_hint("qiskit.aer") == "pennylane-qiskit"
    assert plugin_hint("foo.bar") == "pennylane-foo"


def test_pennylane_shots_estimate_near_exact():
    builtin, pl = _pair(2, 1, shots=4000, seed=5)
    x = torch.rand(2, 2, dtype=F64)
    assert (builtin(x) - pl(x)).abs().max() < 0.1


def test_build_qnode_broadcasts_over_a_batch(tol64):
    spec = CircuitSpec(3, 2)
    run = build_qnode(spec)
    w = torch.rand(spec.weight_shape, dtype=F64)
    x = torch.rand(4, 3, dtype=F64)
    batched = run(x, w)
    assert batched.shape == (4, 3)
    torch.testing.assert_close(batched[1], run(x[1], w), **tol64)

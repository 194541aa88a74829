"""CircuitSpec: validation, weight shapes, gate order."""

from __future__ import annotations

import pytest

from qtransfer.quantum.circuit import EMBEDDINGS, LAYERS, CircuitSpec, Gate


def test_published_circuit_defaults():
    spec = CircuitSpec()
    assert (spec.n_qubits, spec.depth, spec.embedding, spec.layer) == (4, 6, "hadamard_ry", "cnot_ry")
    assert spec.weight_shape == (6, 4)
    assert spec.n_weights == 24
    assert spec.is_real


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_qubits=0), "n_qubits must be an integer >= 1"),
        (dict(n_qubits=2.0), "n_qubits must be an integer >= 1"),
        (dict(n_qubits=True), "n_qubits must be an integer >= 1"),
        (dict(depth=-1), "depth must be an integer >= 0"),
        (dict(embedding="amplitude"), "unknown embedding 'amplitude'; choose one of hadamard_ry"),
        (dict(layer="cz"), "unknown layer 'cz'; choose one of cnot_ry"),
    ],
)
def test_invalid_specs_say_what_to_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CircuitSpec(**kwargs)


@pytest.mark.parametrize(
    "n, layer, pairs",
    [
        (1, "cnot_ry", ()),
        (4, "cnot_ry", ((0, 1), (2, 3), (1, 2))),
        (5, "cnot_ry", ((0, 1), (2, 3), (1, 2), (3, 4))),
        (4, "ry", ()),
        (1, "rot_ring", ()),
        (2, "rot_ring", ((0, 1), (1, 0))),
        (3, "rot_ring", ((0, 1), (1, 2), (2, 0))),
    ],
)
def test_entangling_pairs(n, layer, pairs):
    assert CircuitSpec(n_qubits=n, depth=1, layer=layer).entangling_pairs() == pairs


def test_weight_shapes_and_realness():
    assert CircuitSpec(3, 2, layer="rot_ring").weight_shape == (2, 3, 3)
    assert CircuitSpec(3, 2, layer="ry").weight_shape == (2, 3)
    assert not CircuitSpec(3, 2, embedding="rx").is_real
    assert not CircuitSpec(3, 2, layer="rot_ring").is_real
    assert CircuitSpec(3, 0, embedding="ry", layer="ry").is_real


def test_gate_order_of_the_published_layer():
    gates = list(CircuitSpec(n_qubits=3, depth=1).gates())
    assert gates[:2] == [Gate("Hadamard", (0,)), Gate("RY", (0,), ("x", 0))]
    assert [g.name for g in gates[6:]] == ["CNOT", "CNOT", "RY", "RY", "RY"]
    assert gates[6].wires == (0, 1) and gates[7].wires == (1, 2)
    assert gates[-1].param == ("w", 0, 2)


def test_rot_ring_rotates_before_entangling():
    spec = CircuitSpec(n_qubits=2, depth=1, embedding="rx", layer="rot_ring")
    assert not spec.entangles_before_rotation
    assert [g.name for g in spec.gates()] == ["RX", "RX", "Rot", "Rot", "CNOT", "CNOT"]


@pytest.mark.parametrize("embedding", EMBEDDINGS)
@pytest.mark.parametrize("layer", LAYERS)
def test_gate_count(embedding, layer):
    spec = CircuitSpec(n_qubits=4, depth=2, embedding=embedding, layer=layer)
    gates = list(spec.gates())
    n_embedding = 4 * len(spec.embedding_gates)
    assert len(gates) == n_embedding + 2 * (len(spec.entangling_pairs()) + 4)
    assert sum(g.param is not None and g.param[0] == "w" for g in gates) == 8

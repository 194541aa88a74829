"""General circuits under noise: equal to the published family's noisy simulator and to PennyLane's default.mixed."""

from __future__ import annotations

import math
import random

import pytest
import torch

from qtransfer.quantum.circuit import CircuitSpec
from qtransfer.quantum.density import density_expval_z
from qtransfer.quantum.density_circuit import noisy_run_circuit
from qtransfer.quantum.description import GATES, Circuit, Expval, Operation, Probs
from qtransfer.quantum.noise import Depolarizing, NoiseModel, parse_noise

from test_quantum_executor import random_circuit

FULL = "depolarizing:p1=0.02,p2=0.05,readout_1g0=0.03,readout_0g1=0.06,t1=50e-6,t2=70e-6,t_1q=35e-9,t_2q=300e-9"


@pytest.mark.parametrize("embedding,layer", [("hadamard_ry", "cnot_ry"), ("rx", "rot_ring"), ("rx", "ry"),
                                             ("ry", "rot_ring"), ("hadamard_ry", "rot_ring")])
def test_published_family_equals_its_noisy_simulator(embedding, layer, tol64):
    spec = CircuitSpec(n_qubits=3, depth=2, embedding=embedding, layer=layer)
    noise = parse_noise(FULL)
    x = torch.rand(4, 3, dtype=torch.float64) * 3
    w = torch.rand(spec.weight_shape, dtype=torch.float64) * 3
    torch.testing.assert_close(noisy_run_circuit(spec.to_circuit(), x, w, noise), density_expval_z(spec, x, w, noise), **tol64)


def _pennylane_noisy(qml, circuit: Circuit, p1: float, p2: float):
    """The circuit on default.mixed with Qiskit-convention depolarizing after every gate."""
    from itertools import product

    paulis = [qml.Identity, qml.PauliX, qml.PauliY, qml.PauliZ]
    q1 = 3 * p1 / 4  # PennyLane's DepolarizingChannel(q) is Qiskit's p = 4q/3
    kraus2 = []
    for a, b in product(range(4), repeat=2):
        m = qml.math.kron(qml.matrix(paulis[a](0)), qml.matrix(paulis[b](0)))
        weight = 1 - 15 * p2 / 16 if a == b == 0 else p2 / 16
        kraus2.append(math.sqrt(weight) * m)
    from qtransfer.quantum.interop import to_pennylane

    base = to_pennylane(Circuit(circuit.n_qubits, (), circuit.measurements))

    def qfunc(x, w):
        if circuit.amplitude:
            qml.AmplitudeEmbedding(x[list(circuit.amplitude)], wires=range(circuit.n_qubits), normalize=True, pad_with=0.0)
        for op in circuit.ops:
            single = Circuit(circuit.n_qubits, (op,), n_inputs=circuit.n_inputs, weight_shape=circuit.weight_shape)
            to_pennylane(single, measure=False)(x, w)
            if len(op.wires) == 1:
                qml.DepolarizingChannel(q1, wires=op.wires[0])
            else:
                qml.QubitChannel(kraus2, wires=list(op.wires))
        return base(x, w)

    return qfunc


def test_random_circuits_with_depolarizing_noise_match_default_mixed(tol64):
    qml = pytest.importorskip("pennylane")
    rng = random.Random(99)
    p1, p2 = 0.03, 0.08
    noise = NoiseModel(depolarizing=Depolarizing(p1=p1, p2=p2))
    for k in range(25):
        n = 1 + k % 4
        c = random_circuit(rng, n)
        c = Circuit(n, tuple(op for op in c.ops if len(op.wires) <= 2), c.measurements, c.n_inputs, c.weight_shape,
                    c.amplitude)
        x = torch.rand(2, c.n_inputs, dtype=torch.float64, requires_grad=True)
        w = torch.rand(c.n_weights, dtype=torch.float64, requires_grad=True)
        ours = noisy_run_circuit(c, x, w, noise)
        node = qml.QNode(_pennylane_noisy(qml, c, p1, p2), qml.device("default.mixed", wires=n), interface="torch",
                         diff_method="backprop")
        rows = []
        for i in range(2):
            out = node(x[i], w)
            rows.append(torch.cat([o.reshape(-1) for o in out]))
        theirs = torch.stack(rows)
        torch.testing.assert_close(ours, theirs.to(ours.dtype), **tol64)
        probe = torch.randn_like(ours)
        for a, b in zip(_grads(ours, probe, x, w), _grads(theirs, probe, x, w)):
            assert not a.isnan().any(), f"circuit {k}: NaN gradient"
            if c.amplitude and b.isnan().any():  # default.mixed's AmplitudeEmbedding gradient can be NaN
                continue
            torch.testing.assert_close(a, b.to(a.dtype), **tol64, msg=f"circuit {k}: {a} vs {b}")


def _grads(out, probe, x, w):
    if not out.requires_grad:
        return torch.zeros_like(x), torch.zeros_like(w)
    gx, gw = torch.autograd.grad((out * probe.to(out.dtype)).sum(), (x, w), allow_unused=True, retain_graph=True)
    return (torch.zeros_like(x) if gx is None else gx), (torch.zeros_like(w) if gw is None else gw)


def test_noise_refusals():
    noise = parse_noise("depolarizing:p1=0.01,readout=0.02")
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="decompose the Toffoli"):
        noisy_run_circuit(Circuit(3, (Operation("Toffoli", (0, 1, 2)), Operation("RY", (0,), ("x[0]",)))), x,
                          torch.zeros(0), noise)
    with pytest.raises(ValueError, match="readout error is defined for computational-basis measurements"):
        noisy_run_circuit(Circuit(1, (Operation("RY", (0,), ("x[0]",)),), ("X0",)), x, torch.zeros(0), noise)
    with pytest.raises(ValueError, match="up to 7 qubits"):
        noisy_run_circuit(Circuit(8, (Operation("RY", (0,), ("x[0]",)),)), x, torch.zeros(0), noise)


def test_quantum_layer_runs_a_general_circuit_under_noise():
    from qtransfer.quantum import QuantumLayer, templates

    c = templates.compose(templates.angle_embedding(2), templates.strongly_entangling_layers(2, 1),
                          measurements=("Z0 Z1", "Z1"))
    ideal = QuantumLayer(circuit=c)
    noisy = QuantumLayer(circuit=c, noise="depolarizing:p1=0.2,p2=0.3")
    noisy.load_state_dict(ideal.state_dict())
    x = torch.rand(3, 2)
    assert (noisy(x).abs() < ideal(x).abs() + 1e-6).all()  # depolarizing shrinks every <Z> towards 0


def test_noisy_shots_are_seeded_and_converge():
    c = Circuit(2, (Operation("RY", (0,), ("x[0]",)), Operation("CNOT", (0, 1))), ("Z0 Z1", "Z1"),
                n_inputs=1)
    noise = parse_noise("depolarizing:p1=0.05,p2=0.1,readout=0.03")
    x = torch.tensor([[0.4]], dtype=torch.float64)
    exact = noisy_run_circuit(c, x, torch.zeros(0), noise)
    est = noisy_run_circuit(c, x, torch.zeros(0), noise, shots=40_000, generator=torch.Generator().manual_seed(1))
    again = noisy_run_circuit(c, x, torch.zeros(0), noise, shots=40_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(est, again) and (est - exact).abs().max() < 5 / math.sqrt(40_000)

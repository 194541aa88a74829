"""The general-circuit statevector executor against PennyLane's default.qubit and closed forms.

The property test draws 500 random circuits (every gate of the set, random wires, re-uploaded
and multiplied inputs, Pauli-word sums and probabilities, amplitude embedding, 1-10 qubits)
and holds values and gradients (inputs and weights) to PennyLane within 1e-6 in float64.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from qtransfer.errors import CircuitTooLargeError
from qtransfer.quantum.circuit import CircuitSpec
from qtransfer.quantum.description import GATES, Circuit, Const, Expval, Input, Operation, Probs, Weight
from qtransfer.quantum.executor import check_memory, estimate_bytes, run_circuit
from qtransfer.quantum.simulator import simulate

qml = pytest.importorskip("pennylane")
from qtransfer.quantum.interop import to_pennylane  # noqa: E402

N_CIRCUITS = 500


def _random_angle(rng: random.Random, n_inputs: int, n_weights: int):
    kind = rng.random()
    if kind < 0.15:
        return Const(rng.uniform(-math.pi, math.pi))
    if kind < 0.55:
        if rng.random() < 0.15 and n_inputs > 1:
            i, j = rng.sample(range(n_inputs), 2)
            return Input((i, j), scale=rng.uniform(-2, 2), shift=rng.uniform(-1, 1), center=rng.uniform(-1, 1))
        return Input(rng.randrange(n_inputs), scale=rng.choice([1.0, rng.uniform(-2, 2)]), shift=rng.choice([0.0, rng.uniform(-1, 1)]))
    return Weight(rng.randrange(n_weights), scale=rng.choice([1.0, rng.uniform(-2, 2)]), shift=rng.choice([0.0, 0.3]))


def _random_word(rng: random.Random, n: int):
    wires = rng.sample(range(n), rng.randint(1, min(n, 3)))
    return tuple((rng.choice("XYZ"), w) for w in wires)


def random_circuit(rng: random.Random, n: int) -> Circuit:
    n_inputs, n_weights = rng.randint(1, 4), rng.randint(1, 6)
    names = [g for g, info in GATES.items() if info.n_wires <= n]
    ops = []
    for _ in range(rng.randint(1, 14 if n <= 6 else 8)):
        name = rng.choice(names)
        info = GATES[name]
        ops.append(Operation(name, tuple(rng.sample(range(n), info.n_wires)),
                             tuple(_random_angle(rng, n_inputs, n_weights) for _ in range(info.n_params))))
    measurements = []
    for _ in range(rng.randint(0, 3)):
        r = rng.random()
        if r < 0.4:
            measurements.append(Expval(((1.0, _random_word(rng, n)),)))
        elif r < 0.7:
            measurements.append(Expval(tuple((rng.uniform(-1, 1), _random_word(rng, n)) for _ in range(rng.randint(1, 3)))))
        else:
            measurements.append(Probs(tuple(rng.sample(range(n), rng.randint(1, min(n, 3))))))
    amplitude = ()
    if rng.random() < 0.1:
        k = rng.randint(1, min(2**n, 6))
        amplitude = tuple(rng.randrange(n_inputs + 2) for _ in range(k))
        n_inputs = max(n_inputs, max(amplitude) + 1)
    return Circuit(n, tuple(ops), tuple(measurements), n_inputs=n_inputs, weight_shape=(n_weights,), amplitude=amplitude)


def _pennylane(circuit: Circuit, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    device = qml.device("default.qubit", wires=circuit.n_qubits)
    out = qml.QNode(to_pennylane(circuit), device, interface="torch", diff_method="backprop")(x, w)
    batch, parts = x.shape[0], []
    for o, m in zip(out, circuit.measurements):  # unbroadcast when no gate reads an input
        if isinstance(m, Probs):
            parts.append(o if o.ndim == 2 else o.expand(batch, -1))
        else:
            parts.append(o[:, None] if o.ndim == 1 else o.reshape(1, 1).expand(batch, 1))
    return torch.cat(parts, dim=1)


def _values_and_grads(fn, circuit, x, w, probe):
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    out = fn(circuit, x, w)
    if not out.requires_grad:  # only fixed gates
        return out.detach(), torch.zeros_like(x), torch.zeros_like(w)
    gx, gw = torch.autograd.grad((out * probe).sum(), (x, w), allow_unused=True)
    return out.detach(), gx if gx is not None else torch.zeros_like(x), gw if gw is not None else torch.zeros_like(w)


def test_random_circuits_match_pennylane(tol64):
    rng = random.Random(1234)
    gates_seen: set[str] = set()
    kinds = {"probs": 0, "word": 0, "product_input": 0, "amplitude": 0}
    for k in range(N_CIRCUITS):
        n = 1 + (k % 10) if k < 100 else rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8])
        circuit = random_circuit(rng, n)
        gates_seen |= set(circuit.gate_counts())
        kinds["probs"] += any(isinstance(m, Probs) for m in circuit.measurements)
        kinds["word"] += any(isinstance(m, Expval) and any(p != "Z" for _, w in m.terms for p, _ in w) for m in circuit.measurements)
        kinds["product_input"] += any(isinstance(p, Input) and len(p.index) > 1 for op in circuit.ops for p in op.params)
        kinds["amplitude"] += bool(circuit.amplitude)
        x = torch.empty(3, circuit.n_inputs, dtype=torch.float64).uniform_(-math.pi, math.pi)
        w = torch.empty(circuit.n_weights, dtype=torch.float64).uniform_(-math.pi, math.pi)
        probe = torch.randn(3, circuit.n_outputs, dtype=torch.float64)
        ours = _values_and_grads(run_circuit, circuit, x, w, probe)
        theirs = _values_and_grads(_pennylane, circuit, x, w, probe)
        for name, a, b in zip(("values", "d/dx", "d/dw"), ours, theirs):
            assert torch.allclose(a, b, **tol64), f"circuit {k} ({n} qubits, {circuit}): {name} differ by {(a - b).abs().max()}"
    assert gates_seen == set(GATES)
    assert all(count >= 20 for count in kinds.values()), kinds


def test_closed_form_gradient():
    """d<Z>/dphi = -sin(phi) for RY(phi)|0>, in float32 and float64."""
    c = Circuit(1, (Operation("RY", (0,), (Input(0),)),))
    for dtype in (torch.float32, torch.float64):
        phi = torch.linspace(-3, 3, 7, dtype=dtype)[:, None].requires_grad_(True)
        out = run_circuit(c, phi, torch.zeros(0))
        (grad,) = torch.autograd.grad(out.sum(), phi)
        assert out.dtype == dtype
        torch.testing.assert_close(out[:, 0], torch.cos(phi[:, 0]).detach())
        torch.testing.assert_close(grad[:, 0], -torch.sin(phi[:, 0]).detach())


@pytest.mark.parametrize("layer", ["cnot_ry", "ry", "rot_ring"])
@pytest.mark.parametrize("embedding", ["hadamard_ry", "ry", "rx"])
def test_spec_shorthand_equals_fast_path(embedding, layer, tol64):
    spec = CircuitSpec(n_qubits=3, depth=2, embedding=embedding, layer=layer)
    x = torch.rand(5, 3, dtype=torch.float64)
    w = torch.rand(spec.weight_shape, dtype=torch.float64)
    torch.testing.assert_close(run_circuit(spec.to_circuit(), x, w), simulate(spec, x, w), **tol64)


def test_leading_batch_shape_and_float32():
    c = CircuitSpec(n_qubits=2, depth=1).to_circuit()
    x = torch.rand(2, 3, 2)
    out = run_circuit(c, x, torch.rand(1, 2))
    assert out.shape == (2, 3, 2) and out.dtype == torch.float32


def test_memory_is_checked_before_allocating():
    c = Circuit(30, (Operation("H", (0,)),))
    assert estimate_bytes(c, 1) >= 2**30 * 4
    with pytest.raises(CircuitTooLargeError, match=r"30-qubit circuit .* needs about .* GiB .* free"):
        run_circuit(c, torch.zeros(4, 0), torch.zeros(0))
    assert check_memory(Circuit(2), 4, torch.float64, "cpu") > 0


def test_bad_inputs_are_refused():
    c = CircuitSpec(n_qubits=2, depth=1).to_circuit()
    with pytest.raises(ValueError, match=r"inputs of shape \(\.\.\., 2\)"):
        run_circuit(c, torch.zeros(3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="expects 2 weights"):
        run_circuit(c, torch.zeros(3, 2), torch.zeros(5))
    with pytest.raises(ValueError, match="unsupported gate 'CCZ'; supported: Hadamard"):
        Operation("CCZ", (0, 1, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tol64):
    rng = random.Random(7)
    for _ in range(20):
        c = random_circuit(rng, rng.randint(1, 6))
        x = torch.rand(4, c.n_inputs, dtype=torch.float64)
        w = torch.rand(c.n_weights, dtype=torch.float64)
        torch.testing.assert_close(run_circuit(c, x.cuda(), w.cuda()).cpu(), run_circuit(c, x, w), **tol64)


def test_adjoint_mode_gives_the_same_values_and_gradients(monkeypatch, tol64):
    """Above ADJOINT_ABOVE of kept states a training pass keeps none (derived.py recomputes them)."""
    from qtransfer.quantum import compile as compile_module

    rng = random.Random(21)
    circuits = [random_circuit(rng, n) for n in (3, 5, 7, 9)]
    results = []
    for threshold in (1 << 60, 0):  # never, always
        monkeypatch.setattr(compile_module, "ADJOINT_ABOVE", threshold)
        row = []
        for c in circuits:
            x = torch.linspace(-1, 1, 2 * c.n_inputs, dtype=torch.float64).reshape(2, -1)
            w = torch.linspace(-2, 2, c.n_weights, dtype=torch.float64)
            probe = torch.linspace(-1, 1, 2 * c.n_outputs, dtype=torch.float64).reshape(2, -1)
            row.append(_values_and_grads(run_circuit, c, x, w, probe))
        results.append(row)
        assert compile_module.uses_adjoint(circuits[0], 2) is (threshold == 0)
    for never, always in zip(*results):
        for a, b in zip(never, always):
            torch.testing.assert_close(a, b, **tol64)


def test_shots_estimate_z_words_and_probabilities_with_the_exact_gradient():
    c = Circuit(3, (Operation("RY", (0,), (Input(0),)), Operation("CRX", (0, 1), (Weight(0),)),
                    Operation("H", (2,)), Operation("CZ", (1, 2))),
                measurements=(Expval.parse("Z0 Z1 - 0.5*Z2"), Probs((1, 0))), n_inputs=1, weight_shape=(1,))
    x = torch.tensor([[0.7], [2.1]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    exact = run_circuit(c, x, w)
    shots = 20_000
    a = run_circuit(c, x, w, shots=shots, generator=torch.Generator().manual_seed(5))
    b = run_circuit(c, x, w, shots=shots, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, exact)
    assert (a - exact).abs().max() < 5 * 1.5 / math.sqrt(shots)  # |value| <= 1.5: standard error <= 1.5/sqrt(shots)
    assert torch.allclose(a[:, 1:].sum(-1), torch.ones(2, dtype=torch.float64))  # probabilities still sum to 1
    g_exact = torch.autograd.grad(exact.sum(), (x, w))
    g_shots = torch.autograd.grad(a.sum(), (x, w))
    for u, v in zip(g_exact, g_shots):
        torch.testing.assert_close(u, v)
    with pytest.raises(ValueError, match="shots read bit strings in the computational basis"):
        run_circuit(Circuit(1, (), ("X0",)), torch.zeros(1, 0), torch.zeros(0), shots=10)

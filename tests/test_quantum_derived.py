"""The hand-derived training step of any circuit (``quantum/derived.py``: fused, blocked, one autograd
node) against the plainest simulation there is, recorded by autograd: every gate in order as its
own matrix (``gate_matrix`` + ``apply_dense``). Values and gradients for inputs, weights and the
initial state, on random circuits of every gate and on the templates users pick; and adjoint mode
against keeping the states."""

from __future__ import annotations

import math
import random

import pytest
import torch

from qtransfer.quantum import templates
from qtransfer.quantum.compile import compile_circuit
from qtransfer.quantum.derived import run_plan
from qtransfer.quantum.description import Const, Input
from qtransfer.quantum.executor import _initial_state, _measure, apply_dense, gate_matrix, run_circuit
from qtransfer.quantum.states import complex_dtype

from test_quantum_executor import random_circuit


def _gate_by_gate(plan, state, x, w):
    """Every gate of the circuit in order, each one ``einsum`` on the state; autograd records it."""
    circuit = plan.circuit
    for op in circuit.ops:
        angles = []
        for p in op.params:
            if isinstance(p, Const):
                angles.append(torch.tensor(p.value, dtype=x.dtype))
            elif isinstance(p, Input):
                value = x[:, p.index[0]] - p.center
                for i in p.index[1:]:
                    value = value * (x[:, i] - p.center)
                angles.append(p.scale * value + p.shift)
            else:
                angles.append(p.scale * w[p.index] + p.shift)
        if any(a.ndim for a in angles):
            angles = [a.expand(x.shape[0]) for a in angles]
        m = gate_matrix(op.name, angles, state.dtype, x.device)
        state = apply_dense(state, m.to(state.dtype), op.wires, circuit.n_qubits)
    return state


def _both(circuit, x, w, seed, *, zero=True):
    """``(outputs, dL/dx, dL/dw)`` of the derived and of the gate-by-gate run, for a random linear loss.
    ``zero``: the derived run starts from None (``|0...0>``, where a leading sweep of per-sample gates
    becomes a product state) unless the circuit embeds amplitudes; else from the explicit state."""
    plan = compile_circuit(circuit)
    dtype = x.dtype if circuit.is_real else complex_dtype(x.dtype)
    results = []
    for run in (run_plan, _gate_by_gate):
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        start = None if run is run_plan and zero and not circuit.amplitude else _initial_state(circuit, xr, dtype)
        out = _measure(circuit, run(plan, start, xr, wr))
        probe = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
        if out.requires_grad:
            (out * probe).sum().backward()
        zero = lambda t, like: torch.zeros_like(like) if t is None else t  # noqa: E731
        results.append((out.detach(), zero(xr.grad, x), zero(wr.grad, w)))
    return results


@pytest.mark.parametrize("zero", [True, False], ids=["from-zero", "from-state"])
def test_random_circuits_equal_the_gate_by_gate_run(zero):
    rng = random.Random(17)
    for i in range(300):
        circuit = random_circuit(rng, rng.randint(1, 8))
        g = torch.Generator().manual_seed(i)
        x = torch.rand(rng.randint(1, 5), circuit.n_inputs, dtype=torch.float64, generator=g) * 3
        w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=g)
        derived, reference = _both(circuit, x, w, i, zero=zero)
        for a, b in zip(derived, reference):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_an_angle_may_multiply_three_inputs():
    from qtransfer.quantum.description import Circuit, Operation, Weight

    circuit = Circuit(2, (Operation("RY", (0,), (Input((0, 1, 2), scale=0.7, shift=0.1, center=0.2),)),
                          Operation("CRX", (0, 1), (Input((2, 0, 1)),)), Operation("RZ", (1,), (Weight(0),)),
                          Operation("H", (1,))), n_inputs=3, weight_shape=(1,))
    x = torch.tensor([[0.5, 0.6, 0.7], [1.5, -0.3, 0.0]], dtype=torch.float64)
    derived, reference = _both(circuit, x, torch.tensor([0.4], dtype=torch.float64), 0)
    assert abs(derived[0][0, 0].item() - math.cos(0.7 * 0.3 * 0.4 * 0.5 + 0.1)) < 1e-12
    for a, b in zip(derived, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [3, 5, 7, 10])
@pytest.mark.parametrize("kind", ["sel", "published", "iqp", "reuploading", "zz_su2"])
def test_templates_equal_the_gate_by_gate_run(kind, n):
    circuit = {
        "sel": lambda: templates.compose(templates.angle_embedding(n, rotation="Y"),
                                         templates.strongly_entangling_layers(n, 3)),
        "published": lambda: templates.published(n, 3),
        "iqp": lambda: templates.compose(templates.iqp_embedding(n, n_repeats=2), templates.basic_entangler_layers(n, 2)),
        "reuploading": lambda: templates.reuploading(templates.angle_embedding(n, rotation="X"),
                                                     [templates.strongly_entangling_layers(n, 1)] * 3),
        "zz_su2": lambda: templates.compose(templates.zz_feature_map(n, reps=2), templates.efficient_su2(n, reps=2)),
    }[kind]()
    g = torch.Generator().manual_seed(n)
    x = torch.rand(4, circuit.n_inputs, dtype=torch.float64, generator=g) * 3
    w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=g)
    derived, reference = _both(circuit, x, w, n)
    for a, b in zip(derived, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_float32_agrees_with_float64():
    circuit = templates.compose(templates.angle_embedding(6, rotation="Y"), templates.strongly_entangling_layers(6, 4))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 6, dtype=torch.float64, generator=g) * 3
    w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=g)
    out64 = run_circuit(circuit, x, w)
    out32 = run_circuit(circuit, x.float(), w.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=0, atol=2e-6)


def test_the_initial_state_gets_its_gradient():
    """Amplitude embedding: the state itself depends on the inputs."""
    circuit = templates.compose(templates.amplitude_embedding(3), templates.strongly_entangling_layers(3, 2))
    x = torch.rand(3, circuit.n_inputs, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.1
    w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    derived, reference = _both(circuit, x, w, 3)
    assert derived[1].abs().sum() > 0
    for a, b in zip(derived, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_a_training_pass_is_one_autograd_node_and_inference_records_none():
    circuit = templates.compose(templates.angle_embedding(4, rotation="Y"), templates.strongly_entangling_layers(4, 6))
    plan = compile_circuit(circuit)
    x = torch.rand(5, 4, requires_grad=True)
    w = torch.randn(circuit.n_weights, requires_grad=True)
    state = _initial_state(circuit, x, complex_dtype(x.dtype))
    out = run_plan(plan, state, x, w)
    assert type(out.grad_fn).__name__ == "_PlanFunctionBackward"
    with torch.no_grad():
        same = run_plan(plan, state, x, w)
    assert same.grad_fn is None
    torch.testing.assert_close(same, out.detach(), rtol=0, atol=0)


def test_measurements_in_the_same_node_equal_the_gate_by_gate_run():
    """Z words and probabilities are read inside the derived node (``run_circuit``); the same as
    measuring the gate-by-gate run's state, values and gradients."""
    from qtransfer.quantum.description import Expval, Probs

    base = templates.compose(templates.angle_embedding(3, rotation="X"), templates.strongly_entangling_layers(3, 2))
    circuit = type(base)(3, base.ops, (Expval.parse("0.5*Z0 Z1 - Z2"), Probs((2, 0))), n_inputs=base.n_inputs,
                         weight_shape=base.weight_shape)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 3, dtype=torch.float64, generator=g)
    w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=g)
    x1, w1 = x.clone().requires_grad_(), w.clone().requires_grad_()
    out = run_circuit(circuit, x1, w1)
    assert type(out.grad_fn.next_functions[0][0]).__name__ == "_PlanFunctionBackward"  # through a reshape
    (out * torch.arange(out.shape[1])).sum().backward()
    x2, w2 = x.clone().requires_grad_(), w.clone().requires_grad_()
    ref = _measure(circuit, _gate_by_gate(compile_circuit(circuit), _initial_state(circuit, x2, torch.complex128), x2, w2))
    (ref * torch.arange(ref.shape[1])).sum().backward()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["sel", "iqp_dense"])
def test_adjoint_mode_recomputes_the_states_it_did_not_keep(kind):
    """Adjoint mode (large registers) keeps no states: each kernel's input is its output through the
    kernel's adjoint. Same values and gradients as keeping them."""
    n = 7
    if kind == "sel":
        circuit = templates.compose(templates.angle_embedding(n, rotation="Y"), templates.strongly_entangling_layers(n, 3))
    else:
        body = templates.compose(templates.iqp_embedding(n, n_repeats=1), templates.basic_entangler_layers(n, 1))
        from qtransfer.quantum.description import Operation, Weight
        extra = (Operation("CRX", (0, 3), (Weight(0),)), Operation("IsingYY", (2, 5), (Weight(1),)),
                 Operation("CZ", (1, 6)), Operation("PauliY", (4,)))
        circuit = type(body)(n, body.ops + extra, n_inputs=body.n_inputs, weight_shape=(max(body.n_weights, 2),))
    plan = compile_circuit(circuit)
    g = torch.Generator().manual_seed(9)
    x = torch.rand(3, circuit.n_inputs, dtype=torch.float64, generator=g) * 3
    w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=g)
    probe = torch.randn(3, 2**n, dtype=torch.float64, generator=g)
    grads = []
    for adjoint in (False, True):
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        out = run_plan(plan, _initial_state(circuit, xr, torch.complex128), xr, wr, adjoint=adjoint)
        (out.abs().square() * probe).sum().backward()
        grads.append((out.detach(), xr.grad, wr.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_a_batch_in_chunks_equals_it_whole(monkeypatch):
    """Large states run in chunks of the batch (``executor.CHUNK_BYTES``): same values and gradients."""
    from qtransfer.quantum import executor

    circuit = templates.compose(templates.angle_embedding(5, rotation="Y"), templates.strongly_entangling_layers(5, 2))
    g = torch.Generator().manual_seed(4)
    x = torch.rand(7, 5, dtype=torch.float64, generator=g)
    w = torch.randn(circuit.n_weights, dtype=torch.float64, generator=g)
    results = []
    for chunk_bytes in (1 << 40, 3 * 2**5 * 16):  # whole, chunks of 3 samples
        monkeypatch.setattr(executor, "CHUNK_BYTES", chunk_bytes)
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        out = run_circuit(circuit, xr, wr)
        (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append((out.detach(), xr.grad, wr.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)

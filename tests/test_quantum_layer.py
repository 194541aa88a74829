"""QuantumLayer: a torch module around the circuit; arguments checked up front."""

from __future__ import annotations

import pytest
import torch

from qtransfer.quantum import QuantumLayer, parse_backend
from qtransfer.quantum.simulator import simulate


def test_published_defaults_and_initial_weights():
    layer = QuantumLayer()
    assert layer.n_qubits == 4 and layer.weights.shape == (6, 4)
    assert layer.weights.abs().max() < 0.1  # q_delta = 0.01
    assert "n_qubits=4, depth=6" in repr(layer)
    assert list(layer.state_dict()) == ["weights"]


def test_forward_is_the_simulator_with_the_layers_weights(tol64):
    layer = QuantumLayer(3, 2, dtype=torch.float64)
    x = torch.rand(5, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), simulate(layer.spec, x, layer.weights.detach()), **tol64)


def test_any_leading_batch_shape():
    layer = QuantumLayer(3, 2)
    assert layer(torch.rand(2, 3, 3)).shape == (2, 3, 3)
    assert layer(torch.rand(3)).shape == (3,)


def test_backward_reaches_inputs_and_weights():
    layer = QuantumLayer(4, 2, q_delta=0.5)
    x = torch.rand(8, 4, requires_grad=True)
    layer(x).pow(2).sum().backward()
    assert x.grad.abs().sum() > 0 and layer.weights.grad.abs().sum() > 0
    assert torch.isfinite(layer.weights.grad).all()


def test_float32_input_runs_float64_weights_in_float32():
    layer = QuantumLayer(3, 2, dtype=torch.float64)
    assert layer(torch.rand(2, 3)).dtype == torch.float32


def test_wrong_input_width_names_the_expected_shape():
    layer = QuantumLayer(4, 2)
    with pytest.raises(ValueError, match=r"expects input of shape \(\.\.\., 4\).*got \(8, 3\).*Linear\(features, 4\)"):
        layer(torch.zeros(8, 3))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        layer(torch.tensor(1.0))
    with pytest.raises(TypeError, match="real floating-point angles"):
        layer(torch.zeros(8, 4, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(backend="qiskit"), ValueError, "unknown quantum backend 'qiskit'; use 'builtin' or 'pennylane:DEVICE'"),
        (dict(backend="pennylane:"), ValueError, "unknown quantum backend"),
        (dict(shots=0), ValueError, "shots must be a positive integer or None, got 0"),
        (dict(shots=10.5), ValueError, "shots must be a positive integer"),
        (dict(shots=True), ValueError, "shots must be a positive integer"),
        (dict(n_qubits=0), ValueError, "n_qubits must be an integer >= 1"),
        (dict(depth=-2), ValueError, "depth must be an integer >= 0"),
        (dict(embedding="angle"), ValueError, "unknown embedding 'angle'"),
        (dict(layer="cz"), ValueError, "unknown layer 'cz'"),
        (dict(dtype=torch.int64), ValueError, "dtype must be a real floating type"),
    ],
)
def test_bad_arguments_say_what_to_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        QuantumLayer(**kwargs)


def test_parse_backend():
    assert parse_backend("builtin") == ("builtin", None)
    assert parse_backend("pennylane") == ("pennylane", "default.qubit")
    assert parse_backend("pennylane:lightning.qubit") == ("pennylane", "lightning.qubit")


def test_seeded_shots_are_reproducible_and_differ_from_exact():
    x = torch.rand(4, 3, dtype=torch.float64)
    a, b = (QuantumLayer(3, 2, shots=50, seed=11, q_delta=1.0, dtype=torch.float64) for _ in range(2))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x), atol=0, rtol=0)
    exact = simulate(a.spec, x, a.weights.detach())
    assert not torch.equal(a(x), exact)
    assert (a(x) - exact).abs().max() < 1.0


def test_weights_follow_the_module_to_another_dtype():
    layer = QuantumLayer(3, 2).double()
    assert layer.weights.dtype == torch.float64
    assert layer(torch.rand(2, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_cuda_layer(tol32):
    layer = QuantumLayer(4, 3)
    x = torch.rand(6, 4)
    cpu = layer(x)
    layer = layer.cuda()
    out = layer(x.cuda())
    out.sum().backward()
    assert out.device.type == "cuda" and layer.weights.grad.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), cpu, **tol32)

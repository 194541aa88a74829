"""The built-in simulator: closed forms, gradients, batching, modes, dtypes, shots, devices."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from qtransfer.quantum import dense, measurement, states
from qtransfer.quantum.circuit import EMBEDDINGS, LAYERS, CircuitSpec
from qtransfer.quantum.measurement import expval_z
from qtransfer.quantum.simulator import simulate
from qtransfer.quantum.states import embed
from qtransfer.quantum.statevector import apply_layers

F64 = torch.float64
MODES = ("dense", "statevector")


def _inputs(spec: CircuitSpec, batch: int = 3, dtype=F64, device="cpu"):
    x = torch.rand(batch, spec.n_qubits, dtype=dtype, device=device) * 2 * math.pi - math.pi
    w = torch.rand(spec.weight_shape, dtype=dtype, device=device) * 2 * math.pi - math.pi
    return x, w


# --- closed forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "embedding, value, slope",
    [
        ("ry", math.cos, lambda a: -math.sin(a)),
        ("rx", math.cos, lambda a: -math.sin(a)),
        ("hadamard_ry", lambda a: -math.sin(a), lambda a: -math.cos(a)),  # RY(a) H|0>: <Z> = -sin a
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_one_qubit_embedding_closed_form(embedding, value, slope, mode, tol64):
    spec = CircuitSpec(n_qubits=1, depth=0, embedding=embedding)
    a = torch.linspace(-3, 3, 7, dtype=F64).reshape(-1, 1).requires_grad_()
    out = simulate(spec, a, torch.zeros(0, 1, dtype=F64), mode=mode)
    (grad,) = torch.autograd.grad(out.sum(), a)
    torch.testing.assert_close(out, a.detach().clone().apply_(value), **tol64)
    torch.testing.assert_close(grad, a.detach().clone().apply_(slope), **tol64)


@pytest.mark.parametrize("mode", MODES)
def test_one_qubit_weight_derivative_is_minus_sine(mode, tol64):
    spec = CircuitSpec(n_qubits=1, depth=1, embedding="ry", layer="ry")
    x = torch.tensor([[0.4]], dtype=F64)
    w = torch.tensor([[0.7]], dtype=F64, requires_grad=True)
    out = simulate(spec, x, w, mode=mode)
    out.sum().backward()
    torch.testing.assert_close(out, torch.tensor([[math.cos(1.1)]], dtype=F64), **tol64)
    torch.testing.assert_close(w.grad, torch.tensor([[-math.sin(1.1)]], dtype=F64), **tol64)


@pytest.mark.parametrize("embedding, phase", [("ry", math.cos), ("hadamard_ry", lambda a: -math.sin(a))])
@pytest.mark.parametrize("mode", MODES)
def test_product_ablation_closed_form(embedding, phase, mode, tol64):
    # layer "ry": no entanglement, each wire is RY(x_i + sum_l w_li) on its own
    spec = CircuitSpec(n_qubits=3, depth=4, embedding=embedding, layer="ry")
    x, w = _inputs(spec, batch=5)
    expected = (x + w.sum(0)).apply_(phase)
    torch.testing.assert_close(simulate(spec, x, w, mode=mode), expected, **tol64)


@pytest.mark.parametrize("mode", MODES)
def test_two_qubit_cnot_closed_form(mode, tol64):
    # RY(x0) x RY(x1), CNOT(0, 1), RY(w0) x RY(w1):
    # <Z0> = cos w0 cos x0 - sin w0 sin x0 sin x1,  <Z1> = cos w1 cos x0 cos x1 - sin w1 sin x1
    spec = CircuitSpec(n_qubits=2, depth=1, embedding="ry", layer="cnot_ry")
    x, w = _inputs(spec, batch=6)
    x0, x1, w0, w1 = x[:, 0], x[:, 1], w[0, 0], w[0, 1]
    z0 = torch.cos(w0) * torch.cos(x0) - torch.sin(w0) * torch.sin(x0) * torch.sin(x1)
    z1 = torch.cos(w1) * torch.cos(x0) * torch.cos(x1) - torch.sin(w1) * torch.sin(x1)
    torch.testing.assert_close(simulate(spec, x, w, mode=mode), torch.stack([z0, z1], -1), **tol64)


def test_zero_weights_leave_the_published_circuit_a_product_of_cnot_parities(tol64):
    # with w = 0 only CNOTs act: <Z1> = <Z0 Z1> of the embedded state = sin x0 sin x1 (for H, RY)
    spec = CircuitSpec(n_qubits=2, depth=1)
    x = torch.tensor([[0.3, -1.2]], dtype=F64)
    out = simulate(spec, x, torch.zeros(1, 2, dtype=F64))
    expected = torch.tensor([[-math.sin(0.3), math.sin(0.3) * math.sin(-1.2)]], dtype=F64)
    torch.testing.assert_close(out, expected, **tol64)


# --- gradients ----------------------------------------------------------------------------

GRADCHECK_SPECS = [
    CircuitSpec(3, 2),
    CircuitSpec(3, 2, embedding="rx", layer="rot_ring"),
    CircuitSpec(2, 2, embedding="rx", layer="cnot_ry"),
    CircuitSpec(3, 1, embedding="ry", layer="rot_ring"),
    CircuitSpec(5, 2, embedding="hadamard_ry", layer="ry"),
]


@pytest.mark.parametrize("spec", GRADCHECK_SPECS, ids=str)
@pytest.mark.parametrize("mode, adjoint", [("dense", True), ("statevector", True), ("statevector", False)])
def test_gradcheck(spec, mode, adjoint):
    x, w = _inputs(spec, batch=2)
    x.requires_grad_()
    w.requires_grad_()
    fn = lambda a, b: simulate(spec, a, b, mode=mode, adjoint=adjoint)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w))


@pytest.mark.parametrize("block_wires", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("spec", [CircuitSpec(7, 2), CircuitSpec(5, 2, embedding="rx", layer="rot_ring")], ids=str)
def test_adjoint_matches_autograd_for_every_block_width(spec, block_wires, tol64):
    x, w = _inputs(spec, batch=4)
    results = []
    for adjoint in (True, False):
        xa, wa = x.clone().requires_grad_(), w.clone().requires_grad_()
        state = apply_layers(spec, embed(spec, xa), wa, adjoint=adjoint, block_wires=block_wires)
        out = expval_z(state, spec.n_qubits)
        (out * torch.arange(1, spec.n_qubits + 1)).sum().backward()
        results.append((out, xa.grad, wa.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tol64)


def test_adjoint_gradient_only_for_the_weights(tol64):
    spec = CircuitSpec(8, 2)
    x, w = _inputs(spec, batch=2)
    w.requires_grad_()
    simulate(spec, x, w, mode="statevector", adjoint=True).sum().backward()
    w_ref = w.detach().clone().requires_grad_()
    simulate(spec, x, w_ref, mode="statevector", adjoint=False).sum().backward()
    torch.testing.assert_close(w.grad, w_ref.grad, **tol64)


# --- batching, modes, dtypes --------------------------------------------------------------

ALL_SPECS = [CircuitSpec(n, 2, e, lay) for n, e, lay in itertools.product((1, 3, 4), EMBEDDINGS, LAYERS)]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=str)
def test_dense_equals_statevector_and_batched_equals_looped(spec, tol64):
    x, w = _inputs(spec, batch=5)
    dense = simulate(spec, x, w, mode="dense")
    torch.testing.assert_close(dense, simulate(spec, x, w, mode="statevector"), **tol64)
    looped = torch.cat([simulate(spec, x[i : i + 1], w) for i in range(5)])
    torch.testing.assert_close(dense, looped, **tol64)


@pytest.mark.parametrize("batch", [1, 4, 80])  # below and above 2**n: both dense orders
def test_dense_mode_at_every_batch_size(batch, tol64):
    spec = CircuitSpec(6, 3)
    x, w = _inputs(spec, batch=batch)
    torch.testing.assert_close(
        simulate(spec, x, w, mode="dense"), simulate(spec, x, w, mode="statevector"), **tol64
    )


@pytest.mark.parametrize("mode", MODES)
def test_any_leading_batch_shape(mode, tol64):
    spec = CircuitSpec(3, 2)
    x = torch.rand(2, 3, 3, dtype=F64)
    w = torch.rand(spec.weight_shape, dtype=F64)
    out = simulate(spec, x, w, mode=mode)
    assert out.shape == (2, 3, 3)
    torch.testing.assert_close(out.reshape(6, 3), simulate(spec, x.reshape(6, 3), w, mode=mode), **tol64)
    single = simulate(spec, x[0, 0], w, mode=mode)
    assert single.shape == (3,)
    torch.testing.assert_close(single, out[0, 0], **tol64)


def test_automatic_mode_switches_at_dense_max_qubits():
    assert dense.use_dense(dense.DENSE_MAX_QUBITS, 1)
    assert not dense.use_dense(dense.DENSE_MAX_QUBITS + 1, 10_000)


@pytest.mark.parametrize("spec", [CircuitSpec(4, 6), CircuitSpec(8, 3), CircuitSpec(3, 2, "rx", "rot_ring")], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_float32_agrees_with_float64(spec, mode, tol32):
    x, w = _inputs(spec, batch=4)
    out64 = simulate(spec, x, w, mode=mode)
    out32 = simulate(spec, x.float(), w.float(), mode=mode)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, **tol32)


def test_expval_two_pass_marginals_match_the_sign_matrix(tol64):
    n = 13  # above the sign-matrix limit of 12
    state = torch.randn(3, 2**n, dtype=F64)
    state = state / state.norm(dim=1, keepdim=True)
    probs = state.square()
    expected = probs @ (1 - 2 * states.bit_table(n, state.device).T).to(F64)
    torch.testing.assert_close(expval_z(state, n), expected, **tol64)


def test_fourteen_qubits_statevector_runs_and_matches_autograd(tol64):
    spec = CircuitSpec(14, 2)
    x, w = _inputs(spec, batch=2)
    w.requires_grad_()
    out = simulate(spec, x, w, adjoint=True)
    out.sum().backward()
    w_ref = w.detach().clone().requires_grad_()
    ref = simulate(spec, x, w_ref, adjoint=False)
    ref.sum().backward()
    torch.testing.assert_close(out, ref, **tol64)
    torch.testing.assert_close(w.grad, w_ref.grad, **tol64)


# --- shots --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_shot_estimates_converge_and_are_reproducible(mode):
    spec = CircuitSpec(3, 2)
    x, w = _inputs(spec, batch=2)
    shots = 20_000
    exact = simulate(spec, x, w, mode=mode)
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    estimate = simulate(spec, x, w, shots=shots, generator=gen(), mode=mode)
    stderr = torch.sqrt((1 - exact.square()).clamp_min(1e-12) / shots)
    assert ((estimate - exact).abs() <= 5 * stderr + 1e-12).all()
    assert (estimate != exact).any()
    torch.testing.assert_close(estimate, simulate(spec, x, w, shots=shots, generator=gen(), mode=mode), atol=0, rtol=0)


def test_shots_carry_the_exact_gradient(tol64):
    spec = CircuitSpec(2, 1)
    x, w = _inputs(spec, batch=2)
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    simulate(spec, x, w1, shots=100, generator=torch.Generator().manual_seed(0)).sum().backward()
    simulate(spec, x, w2).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad, **tol64)


# --- errors -------------------------------------------------------------------------------


def test_simulate_rejects_wrong_shapes_and_modes():
    spec = CircuitSpec(3, 2)
    with pytest.raises(ValueError, match=r"inputs of shape \(\.\.\., 3\), got \(4, 2\)"):
        simulate(spec, torch.zeros(4, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"weights of shape \(2, 3\), got \(3, 2\)"):
        simulate(spec, torch.zeros(4, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="unknown simulation mode 'sparse'"):
        simulate(spec, torch.zeros(4, 3), torch.zeros(2, 3), mode="sparse")


# --- devices ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [CircuitSpec(4, 2), CircuitSpec(7, 2), CircuitSpec(3, 1, "rx", "rot_ring")], ids=str)
def test_no_tensor_is_created_on_the_default_device(spec):
    """Every constant takes its device from the inputs: with the default device set to
    'meta', any tensor created without ``device=`` would be 'meta' and fail to mix."""
    for cached in (states.angle_offsets, states.bit_table, states._wire_index, states.cnot_permutation,
                   measurement.z_signs, dense.dense_index, dense.layer_basis, states.rx_phases):
        cached.cache_clear()
    x, w = _inputs(spec, batch=3)
    w.requires_grad_()
    with torch.device("meta"):
        for mode in MODES:
            out = simulate(spec, x, w, mode=mode)
            out.sum().backward()
            simulate(spec, x, w, shots=10, generator=torch.Generator().manual_seed(0), mode=mode)
    assert out.device.type == "cpu" and w.grad.device.type == "cpu"


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


@needs_cuda
@pytest.mark.parametrize("spec", [CircuitSpec(4, 3), CircuitSpec(9, 2), CircuitSpec(3, 2, "rx", "rot_ring")], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_cuda_matches_cpu(spec, mode, tol64):
    x, w = _inputs(spec, batch=5)
    results = []
    for device in ("cpu", "cuda"):
        xd, wd = x.to(device).requires_grad_(), w.to(device).requires_grad_()
        out = simulate(spec, xd, wd, mode=mode)
        out.sum().backward()
        assert out.device.type == device and wd.grad.device.type == device
        results.append((out.cpu(), xd.grad.cpu(), wd.grad.cpu()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tol64)


@needs_cuda
def test_cuda_shots_use_a_cuda_generator():
    spec = CircuitSpec(3, 2)
    x, w = _inputs(spec, batch=2, device="cuda")
    out = simulate(spec, x, w, shots=1000, generator=torch.Generator(device="cuda").manual_seed(1))
    assert out.device.type == "cuda"

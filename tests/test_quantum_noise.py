"""Noise: descriptions and their string form, each channel against its closed form, the
density-matrix simulator against the statevector simulator and PennyLane's default.mixed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qtransfer.quantum import QuantumLayer, density
from qtransfer.quantum.circuit import CircuitSpec
from qtransfer.quantum.density import (
    density_expval_z,
    density_matrix,
    noisy_probabilities,
)
from qtransfer.quantum.measurement import z_signs
from qtransfer.quantum.noise import (
    Depolarizing,
    NoiseModel,
    ReadoutError,
    ThermalRelaxation,
    parse_noise,
)
from qtransfer.quantum.simulator import simulate

# --- descriptions and parse_noise ---------------------------------------------------------


def test_parse_noise_reads_every_key():
    m = parse_noise("depolarizing:p1=0.001,p2=0.01,readout=0.02,t1=50e-6,t2=70e-6,t_1q=35e-9,t_2q=300e-9")
    assert m.depolarizing == Depolarizing(0.001, 0.01)
    assert m.relaxation == ThermalRelaxation(50e-6, 70e-6, 35e-9, 300e-9)
    assert m.readout == ReadoutError(0.02, 0.02)
    asym = parse_noise("depolarizing:readout_1g0=0.01,readout_0g1=0.03")
    assert asym.readout == ReadoutError(0.01, 0.03) and asym.relaxation is None
    assert parse_noise("none") is None and parse_noise("ideal") is None
    assert not m.is_ideal and parse_noise("depolarizing:p1=0").is_ideal


@pytest.mark.parametrize(
    "text, words",
    [
        ("depolarizing:p3=0.1", ["unknown key 'p3'", "p1, p2"]),
        ("depolarizing:p1=abc", ["p1='abc' is not a number"]),
        ("depolarizing:p1", ["'p1' is not KEY=VALUE"]),
        ("depolarizing:p1=0.1,p1=0.2", ["'p1' given twice"]),
        ("depolarizing:p1=2", ["p1 (1-qubit depolarizing parameter) must be a number in [0, 1.33333]", "2.0"]),
        ("depolarizing:readout=-0.1", ["p1_given_0 (readout) must be a number in [0, 1]"]),
        ("depolarizing:t1=50e-6,t2=70e-6", ["needs t1, t2, t_1q and t_2q", "missing t_1q, t_2q"]),
        ("thermal:p1=0.1", ["needs t1, t2, t_1q and t_2q"]),
        ("depolarizing:t1=50e-6,t2=101e-6,t_1q=1e-8,t_2q=1e-7", ["exceeds 2 T1", "t2 <= 2 * t1"]),
        ("depolarizing:readout=0.1,readout_1g0=0.2", ["not both"]),
        ("bitflip:p=0.1", ["unknown noise 'bitflip:p=0.1'", "depolarizing:p1=0.001"]),
        ("depolarizing:", ["unknown noise"]),
        ("fake_nowhere", ["unknown device 'fake_nowhere'", "fake_manila", "qtransfer devices"]),
        ("fake_manila:p1=0.1", ["unknown noise"]),
    ],
)
def test_parse_noise_errors_name_the_value_and_the_form(text, words):
    with pytest.raises(ValueError) as e:
        parse_noise(text)
    for word in words:
        assert word in str(e.value)


def test_a_device_without_the_hardware_extra_says_what_to_install(monkeypatch):
    import sys

    from qtransfer.quantum.devices import compile_for_device

    compile_for_device.cache_clear()  # a program compiled by an earlier test (with the extra) is cached
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'qtransfer\[hardware\]'"):
        QuantumLayer(4, 6, noise="fake_manila")


def test_relaxation_checks_its_times():
    with pytest.raises(ValueError, match="T2 = 0.3 exceeds 2 T1 = 0.2"):
        ThermalRelaxation(t1=0.1, t2=0.3, t_1q=0.01, t_2q=0.02)
    with pytest.raises(ValueError, match="t1 must be a positive time, got 0"):
        ThermalRelaxation(t1=0, t2=0.1, t_1q=0.01, t_2q=0.02)
    gamma, lam = ThermalRelaxation(t1=2.0, t2=3.0, t_1q=0.5, t_2q=1.0).damping(0.5)
    assert gamma == pytest.approx(1 - math.exp(-0.25))
    assert math.sqrt(1 - gamma) * math.sqrt(1 - lam) == pytest.approx(math.exp(-0.5 / 3.0))


def test_per_wire_readout():
    m = NoiseModel(readout=(ReadoutError(0.1, 0.2), ReadoutError(0.0, 0.3)))
    assert m.readout_for(1) == ReadoutError(0.0, 0.3)
    with pytest.raises(ValueError, match="readout errors for 2 wires, not for wire 2"):
        m.readout_for(2)


# --- channels against their closed forms ----------------------------------------------------

F64 = torch.float64
CPU = torch.device("cpu")
PAULIS = [
    torch.eye(2, dtype=torch.complex128),
    torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
    torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128),
    torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128),
]
FULL = "depolarizing:p1=0.02,p2=0.05,readout=0.03,t1=50e-6,t2=70e-6,t_1q=2e-6,t_2q=5e-6"


def _bloch_rho(r):
    """``(I + r . sigma) / 2`` as site vector ``(rho00, rho01, rho10, rho11)``."""
    rho = 0.5 * (PAULIS[0] + sum(c * p for c, p in zip(r, PAULIS[1:])))
    return rho.reshape(4)


def _bloch(vec):
    rho = vec.reshape(2, 2)
    return [torch.trace(rho @ p).real.item() for p in PAULIS[1:]]


def test_kraus_superop_acts_as_the_kraus_sum():
    kraus = torch.randn(3, 2, 2, dtype=torch.complex128)
    rho = torch.randn(2, 2, dtype=torch.complex128)
    expected = sum(k @ rho @ k.conj().T for k in kraus)
    torch.testing.assert_close(density.kraus_superop(kraus) @ rho.reshape(4), expected.reshape(4))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.75, 4 / 3])
def test_depolarizing_shrinks_the_bloch_vector_by_one_minus_p(p):
    channel = density.depolarizing(p, 1, CPU, torch.complex128)
    r = [0.3, -0.5, 0.6]
    assert _bloch(channel @ _bloch_rho(r)) == pytest.approx([(1 - p) * c for c in r], abs=1e-12)
    zero = channel @ _bloch_rho([0, 0, 1])  # |0><0| -> populations (1 - p/2, p/2)
    assert zero.real.tolist() == pytest.approx([1 - p / 2, 0, 0, p / 2], abs=1e-12)


def test_depolarizing_matches_the_pauli_kraus_form():
    """Qiskit's convention: p = 4q/3 with q the probability of one of X, Y, Z (each q/3)."""
    p = 0.09
    q = 3 * p / 4
    kraus = torch.stack([math.sqrt(1 - q) * PAULIS[0]] + [math.sqrt(q / 3) * s for s in PAULIS[1:]])
    torch.testing.assert_close(density.depolarizing(p, 1, CPU, torch.complex128), density.kraus_superop(kraus))
    two = torch.stack([torch.kron(a, b) for a in PAULIS for b in PAULIS])  # 16 Paulis, identity first
    weights = torch.tensor([1 - 15 * p / 16] + [p / 16] * 15, dtype=F64)
    rho = torch.randn(4, 4, dtype=torch.complex128)
    rho = rho @ rho.conj().T
    expected = sum(w * (k @ rho @ k.conj().T) for w, k in zip(weights, two))
    site = density.site_layout(rho, 2)
    out = density.standard_layout(density.depolarizing(p, 2, CPU, torch.complex128) @ site, 2)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("t", [0.0, 1e-6, 40e-6])
def test_thermal_relaxation_decays_populations_with_t1_and_coherences_with_t2(t):
    noise = parse_noise(f"thermal:t1=50e-6,t2=70e-6,t_1q={t},t_2q={t}")
    channel = density.thermal_relaxation(noise, t, CPU, torch.complex128)
    out = channel @ _bloch_rho([0.6, 0.0, -0.8])  # rho11 = 0.9, rho01 = 0.3
    assert out[3].real.item() == pytest.approx(0.9 * math.exp(-t / 50e-6), abs=1e-12)
    assert out[1].real.item() == pytest.approx(0.3 * math.exp(-t / 70e-6), abs=1e-12)
    assert out[0].real.item() + out[3].real.item() == pytest.approx(1.0, abs=1e-12)


def test_amplitude_and_phase_damping_closed_forms():
    gamma, lam = 0.3, 0.2
    ad = density.amplitude_damping(gamma, CPU, F64)
    pd = density.phase_damping(lam, CPU, F64)
    rho = torch.tensor([0.4, 0.2, 0.2, 0.6], dtype=F64)
    torch.testing.assert_close(ad @ rho, torch.tensor([0.4 + 0.3 * 0.6, 0.2 * math.sqrt(0.7), 0.2 * math.sqrt(0.7), 0.42], dtype=F64))
    torch.testing.assert_close(pd @ rho, torch.tensor([0.4, 0.2 * math.sqrt(0.8), 0.2 * math.sqrt(0.8), 0.6], dtype=F64))


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (0.02, 0.02), (0.01, 0.07), (0.3, 0.1)])
def test_readout_maps_expval_affinely(a, b):
    """P(read 0) = P0 (1 - a) + P1 b, P(read 1) = P0 a + P1 (1 - b)  =>  <Z>' = (1 - a - b) <Z> + (b - a)."""
    spec = CircuitSpec(n_qubits=2, depth=2)
    x, w = torch.rand(5, 2, dtype=F64) * 3, torch.rand(2, 2, dtype=F64) * 3
    clean = simulate(spec, x, w)
    noisy = density_expval_z(spec, x, w, NoiseModel(readout=ReadoutError(a, b)))
    torch.testing.assert_close(noisy, (1 - a - b) * clean + (b - a), atol=1e-12, rtol=0)


def test_per_wire_readout_applies_to_its_wire():
    spec = CircuitSpec(n_qubits=2, depth=1)
    x, w = torch.rand(3, 2, dtype=F64), torch.rand(1, 2, dtype=F64)
    clean = simulate(spec, x, w)
    noise = NoiseModel(readout=(ReadoutError(0.1, 0.0), ReadoutError(0.0, 0.2)))
    expected = torch.stack([0.9 * clean[:, 0] - 0.1, 0.8 * clean[:, 1] + 0.2], -1)
    torch.testing.assert_close(density_expval_z(spec, x, w, noise), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("sites", [(0,), (2,), (0, 1), (1, 2), (2, 0), (0, 2)])
def test_apply_local_acts_on_its_sites(sites):
    """Against the explicit operator: identity elsewhere, sites permuted into place."""
    n = 3
    op = torch.randn(4 ** len(sites), 4 ** len(sites), dtype=torch.complex128)
    h = torch.randn(4**n, 2, dtype=torch.complex128)
    full = torch.zeros(4**n, 4**n, dtype=torch.complex128)
    digits = lambda k: [(k // 4 ** (n - 1 - q)) % 4 for q in range(n)]
    for i in range(4**n):
        for j in range(4**n):
            di, dj = digits(i), digits(j)
            if all(di[q] == dj[q] for q in range(n) if q not in sites):
                local = lambda d: sum(d[s] * 4 ** (len(sites) - 1 - k) for k, s in enumerate(sites))
                full[i, j] = op[local(di), local(dj)]
    torch.testing.assert_close(density.apply_local(h, op, sites, n), full @ h)


# --- the simulator -------------------------------------------------------------------------

CASES = [(1, 2, "ry", "ry"), (2, 2, "hadamard_ry", "cnot_ry"), (3, 2, "rx", "rot_ring"), (4, 3, "hadamard_ry", "cnot_ry"),
         (4, 2, "rx", "cnot_ry"), (5, 1, "ry", "cnot_ry"), (7, 2, "hadamard_ry", "cnot_ry"), (6, 1, "rx", "rot_ring"),
         # a real embedding before complex layers (these crashed: real state times complex functionals)
         (3, 2, "ry", "rot_ring"), (2, 1, "hadamard_ry", "rot_ring")]


def _inputs(spec, batch=4, dtype=F64):
    x = torch.rand(batch, spec.n_qubits, dtype=dtype) * 2 * math.pi - math.pi
    w = torch.rand(spec.weight_shape, dtype=dtype) * 2 * math.pi - math.pi
    return x, w


@pytest.mark.parametrize("n, depth, embedding, layer", CASES)
def test_zero_noise_equals_the_statevector_simulator(n, depth, embedding, layer):
    spec = CircuitSpec(n, depth, embedding, layer)
    x, w = _inputs(spec)
    torch.testing.assert_close(density_expval_z(spec, x, w, NoiseModel()), simulate(spec, x, w), atol=1e-12, rtol=0)
    rho = density_matrix(spec, x, w, NoiseModel())
    psi = simulate_state(spec, x, w)
    torch.testing.assert_close(rho.to(torch.complex128), psi[:, :, None] * psi[:, None, :].conj(), atol=1e-12, rtol=0)


def simulate_state(spec, x, w):
    from qtransfer.quantum.states import embed
    from qtransfer.quantum.statevector import apply_layers

    return apply_layers(spec, embed(spec, x), w).to(torch.complex128)


@pytest.mark.parametrize("n, depth, embedding, layer", CASES)
def test_noisy_state_is_a_density_matrix_and_expval_is_its_trace(n, depth, embedding, layer):
    spec = CircuitSpec(n, depth, embedding, layer)
    x, w = _inputs(spec)
    noise = parse_noise(FULL.replace("readout=0.03", "readout=0"))
    rho = density_matrix(spec, x, w, noise).to(torch.complex128)
    torch.testing.assert_close(rho, rho.mH, atol=1e-12, rtol=0)
    assert torch.linalg.eigvalsh(rho).min() > -1e-12
    torch.testing.assert_close(rho.diagonal(dim1=1, dim2=2).sum(-1).real, torch.ones(4, dtype=F64))
    z = rho.diagonal(dim1=1, dim2=2).real @ z_signs(n, CPU, F64)
    torch.testing.assert_close(density_expval_z(spec, x, w, noise), z, atol=1e-12, rtol=0)
    assert (density_expval_z(spec, x, w, noise) - simulate(spec, x, w)).abs().max() > 1e-3  # the noise does act


# --- against PennyLane's default.mixed ------------------------------------------------------


def _mixed_qnode(spec, noise):
    pytest.importorskip("pennylane")
    from qtransfer.quantum.pennylane_backend import build_noisy_qnode

    return build_noisy_qnode(spec, noise)


MIXED_CASES = [(2, 2, "hadamard_ry", "cnot_ry"), (4, 2, "hadamard_ry", "cnot_ry"), (3, 2, "rx", "rot_ring")]


@pytest.mark.parametrize("n, depth, embedding, layer", MIXED_CASES)
@pytest.mark.parametrize(
    "text",
    [
        FULL,
        "depolarizing:p1=0.05,p2=0.1,readout_1g0=0.01,readout_0g1=0.04",
        "depolarizing:p1=0.05",
        "depolarizing:p2=0.1",
        "depolarizing:readout_1g0=0.05,readout_0g1=0.1",
        "thermal:t1=30e-6,t2=20e-6,t_1q=1e-6,t_2q=4e-6",
    ],
)
def test_matches_default_mixed(n, depth, embedding, layer, text, tol64):
    spec = CircuitSpec(n, depth, embedding, layer)
    noise = parse_noise(text)
    x, w = _inputs(spec, batch=2)
    ref = _mixed_qnode(spec, noise)
    ours = density_expval_z(spec, x, w, noise)
    torch.testing.assert_close(ours, torch.stack([ref(xi, w) for xi in x]), **tol64)
    torch.testing.assert_close(ours, ref(x, w), **tol64)  # broadcast


def test_default_mixed_gradients_match(tol64):
    spec = CircuitSpec(3, 2)
    noise = parse_noise(FULL)
    x, w = _inputs(spec, batch=2)
    grads = []
    for run in (lambda a, b: density_expval_z(spec, a, b, noise), _mixed_qnode(spec, noise)):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        (run(xi, wi) * torch.tensor([0.3, -1.0, 0.7], dtype=F64)).sum().backward()
        grads.append((xi.grad, wi.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **tol64)


def test_thermal_relaxation_matches_pennylane_thermal_relaxation_error():
    """Our amplitude-then-phase damping is PennyLane's ThermalRelaxationError with pe = 0, both T2 regimes."""
    qml = pytest.importorskip("pennylane")
    for t1, t2 in [(50e-6, 70e-6), (50e-6, 30e-6)]:
        noise = parse_noise(f"thermal:t1={t1},t2={t2},t_1q=3e-6,t_2q=3e-6")
        ours = density.thermal_relaxation(noise, 3e-6, CPU, torch.complex128)
        kraus = torch.as_tensor(np.array(qml.ThermalRelaxationError(0.0, t1, t2, 3e-6, wires=0).kraus_matrices()))
        torch.testing.assert_close(ours, density.kraus_superop(kraus.to(torch.complex128)), atol=1e-12, rtol=0)


# --- gradients, batching, dtypes, shots -----------------------------------------------------


@pytest.mark.parametrize("n, depth, embedding, layer", [(3, 2, "hadamard_ry", "cnot_ry"), (2, 2, "rx", "rot_ring")])
def test_gradients_match_finite_differences(n, depth, embedding, layer):
    spec = CircuitSpec(n, depth, embedding, layer)
    noise = parse_noise(FULL)
    x, w = _inputs(spec, batch=2)
    x.requires_grad_(), w.requires_grad_()
    f = lambda a, b: (density_expval_z(spec, a, b, noise) * torch.linspace(-1, 1, n, dtype=F64)).sum()
    assert torch.autograd.gradcheck(f, (x, w), eps=1e-6, atol=1e-7)


def test_batched_equals_looped():
    spec = CircuitSpec(4, 6)
    noise = parse_noise(FULL)
    x, w = _inputs(spec, batch=7)
    batched = density_expval_z(spec, x, w, noise)
    looped = torch.cat([density_expval_z(spec, xi[None], w, noise) for xi in x])
    torch.testing.assert_close(batched, looped, atol=1e-14, rtol=0)


def test_float32_agrees_with_float64(tol32):
    spec = CircuitSpec(4, 6)
    noise = parse_noise(FULL)
    x, w = _inputs(spec, batch=5)
    out32 = density_expval_z(spec, x.float(), w.float(), noise)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), density_expval_z(spec, x, w, noise), **tol32)


def test_probabilities_are_a_distribution_with_the_right_expval():
    spec = CircuitSpec(3, 2)
    noise = parse_noise("depolarizing:p1=0.01,p2=0.03,readout_1g0=0.02,readout_0g1=0.05")
    x, w = _inputs(spec, batch=3)
    probs = noisy_probabilities(spec, x, w, noise)
    assert probs.min() >= 0
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, dtype=F64))
    torch.testing.assert_close(probs @ z_signs(3, CPU, F64), density_expval_z(spec, x, w, noise))


def test_shots_converge_at_the_inverse_sqrt_rate_and_repeat_with_a_seed():
    spec = CircuitSpec(4, 6)
    noise = parse_noise(FULL)
    x, w = _inputs(spec, batch=64)
    exact = density_expval_z(spec, x, w, noise)

    def error(shots, seed):
        g = torch.Generator().manual_seed(seed)
        return (density_expval_z(spec, x, w, noise, shots=shots, generator=g) - exact).square().mean().sqrt().item()

    small, large = error(100, 1), error(10000, 2)
    bound = math.sqrt(((1 - exact.square()).mean()).item())  # RMS standard deviation of one shot
    assert small == pytest.approx(bound / 10, rel=0.15)
    assert large == pytest.approx(bound / 100, rel=0.15)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(
        density_expval_z(spec, x, w, noise, shots=50, generator=g1), density_expval_z(spec, x, w, noise, shots=50, generator=g2)
    )


def test_shot_estimate_carries_the_exact_gradient():
    spec = CircuitSpec(3, 2)
    noise = parse_noise(FULL)
    x, w = _inputs(spec, batch=2)
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    density_expval_z(spec, x, w1, noise, shots=20, generator=torch.Generator().manual_seed(0)).sum().backward()
    density_expval_z(spec, x, w2, noise).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad)


def test_errors_name_the_problem():
    spec = CircuitSpec(8, 1)
    with pytest.raises(ValueError, match="up to 7 qubits, got 8; use --noise none"):
        density_expval_z(spec, torch.zeros(1, 8), torch.zeros(1, 8), NoiseModel())
    with pytest.raises(TypeError, match="noise must be a NoiseModel"):
        density_expval_z(CircuitSpec(2, 1), torch.zeros(1, 2), torch.zeros(1, 2), "depolarizing:p1=0.1")
    with pytest.raises(ValueError, match="1 readout errors for a 2-qubit circuit"):
        density_expval_z(CircuitSpec(2, 1), torch.zeros(1, 2), torch.zeros(1, 2), NoiseModel(readout=(ReadoutError(),)))


# --- QuantumLayer and the fused step --------------------------------------------------------


def test_noisy_layer_returns_noisy_expvals_and_gradients_flow():
    layer = QuantumLayer(4, 6, noise=FULL, q_delta=1.0, dtype=F64)
    assert layer.noise == parse_noise(FULL) and "noise=NoiseModel(" in repr(layer)
    x = torch.rand(2, 3, 4, dtype=F64, requires_grad=True)
    out = layer(x)
    assert out.shape == (2, 3, 4)
    expected = density_expval_z(layer.spec, x.detach().reshape(-1, 4), layer.weights.detach(), layer.noise)
    torch.testing.assert_close(out.detach().reshape(-1, 4), expected, atol=1e-14, rtol=0)
    out.sum().backward()
    assert x.grad.abs().sum() > 0 and layer.weights.grad.abs().sum() > 0


def test_noiseless_layer_is_unchanged_and_state_dict_keys_agree():
    plain = QuantumLayer(4, 2, q_delta=1.0, dtype=F64)
    noisy = QuantumLayer(4, 2, noise=NoiseModel(), dtype=F64)
    noisy.load_state_dict(plain.state_dict())
    assert plain.noise is None and list(plain.state_dict()) == list(noisy.state_dict()) == ["weights"]
    x = torch.rand(5, 4, dtype=F64)
    torch.testing.assert_close(plain(x), simulate(plain.spec, x, plain.weights), atol=0, rtol=0)
    torch.testing.assert_close(noisy(x), plain(x), atol=1e-12, rtol=0)


def test_noisy_layer_shots_repeat_with_its_seed():
    a = QuantumLayer(3, 2, noise=FULL, shots=100, seed=7)
    b = QuantumLayer(3, 2, noise=FULL, shots=100, seed=7)
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 3)
    out = a(x)
    torch.testing.assert_close(out, b(x))
    assert ((out * 50) - (out * 50).round()).abs().max() < 1e-4  # (n0 - n1) / 100: multiples of 2/100
    assert not torch.equal(a(x), out)  # the sampler moves on


def test_noisy_layer_errors():
    with pytest.raises(ValueError, match="built-in simulator only"):
        QuantumLayer(2, 1, "pennylane:default.qubit", noise="depolarizing:p1=0.1")
    with pytest.raises(ValueError, match="up to 7 qubits, got 8; use --noise none"):
        QuantumLayer(8, 1, noise="depolarizing:p1=0.1")
    with pytest.raises(ValueError, match="unknown key 'q'"):
        QuantumLayer(2, 1, noise="depolarizing:q=0.1")
    with pytest.raises(TypeError, match="noise must be a NoiseModel"):
        QuantumLayer(2, 1, noise=0.1)
    with pytest.raises(ValueError, match="3 readout errors for 2 qubits"):
        QuantumLayer(2, 1, noise=NoiseModel(readout=(ReadoutError(0.1, 0.1),) * 3))


def test_a_noisy_dressed_head_learns_separable_features():
    """Noise-aware training: autograd through the density-matrix simulator, seeded shots included."""
    from helpers import separable_features

    from qtransfer.heads.dressed import DressedQuantumHead
    from qtransfer.training.loop import loss_and_accuracy, train_head

    x, y = separable_features(16, 2, dim=8, seed=0)
    xv, yv = separable_features(10, 2, dim=8, seed=1)
    for shots in (None, 256):
        layer = QuantumLayer(2, 2, noise="depolarizing:p1=0.01,p2=0.03,readout=0.02", shots=shots, seed=0)
        head = DressedQuantumHead(8, 2, quantum=layer)
        before = head.quantum.weights.detach().clone()
        result = train_head(head, (x, y), (xv, yv), epochs=8, lr=0.03, step_size=5, progress=False)
        head.load_state_dict(result.best_state)
        assert not torch.equal(before, head.quantum.weights)
        assert loss_and_accuracy(head, xv, yv)[1] > 0.9


def test_fused_step_applies_only_to_noiseless_heads():
    from qtransfer.heads.dressed import DressedQuantumHead
    from qtransfer.heads.fused_step import fused_step_for

    ideal = DressedQuantumHead(8, 2, quantum=QuantumLayer(4, 2))
    noisy = DressedQuantumHead(8, 2, quantum=QuantumLayer(4, 2, noise="depolarizing:p1=0.01"))
    assert fused_step_for(ideal) is not None
    assert fused_step_for(noisy) is None


# --- devices ----------------------------------------------------------------------------------

_CACHED = ("gate_noise", "pair_superop", "_fixed_embedding", "_embedding_coefficients", "readout_functionals", "_fold_plan")


@pytest.mark.parametrize("spec", [CircuitSpec(4, 2), CircuitSpec(3, 1, "rx", "rot_ring")], ids=str)
def test_no_tensor_is_created_on_the_default_device(spec):
    """Every constant takes its device from the inputs: with the default device set to
    'meta', any tensor created without ``device=`` would be 'meta' and fail to mix."""
    from qtransfer.quantum import measurement, states

    for cached in [getattr(density, name) for name in _CACHED] + [states.angle_offsets, measurement.z_signs]:
        cached.cache_clear()
    x, w = _inputs(spec, batch=3)
    w.requires_grad_()
    noise = parse_noise(FULL)
    with torch.device("meta"):
        out = density_expval_z(spec, x, w, noise)
        out.sum().backward()
        density_expval_z(spec, x, w, noise, shots=10, generator=torch.Generator().manual_seed(0))
        density_matrix(spec, x, w, noise)
    assert out.device.type == "cpu" and w.grad.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_cuda_matches_cpu(dtype, tol32):
    layer = QuantumLayer(4, 6, noise=FULL, q_delta=1.0, dtype=dtype)
    x = torch.rand(9, 4, dtype=dtype)
    expected = layer(x)
    expected.sum().backward()
    grad = layer.weights.grad.clone()
    layer.zero_grad()
    layer = layer.cuda()
    out = layer(x.cuda())
    out.sum().backward()
    assert out.device.type == "cuda" and out.dtype == dtype
    torch.testing.assert_close(out.cpu(), expected, **tol32)
    torch.testing.assert_close(layer.weights.grad.cpu(), grad, **tol32)
    shots = QuantumLayer(4, 6, noise=FULL, shots=64, seed=3).cuda()
    assert shots(x.float().cuda()).device.type == "cuda"

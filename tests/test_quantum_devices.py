"""Calibrated device models: the built-in simulation of a transpiled circuit under a fake
backend's noise against Qiskit Aer's density-matrix simulation of the same circuit under
``NoiseModel.from_backend`` (readout included), gradients, shots, and the layer."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_aer", reason="needs the hardware extra: pip install 'qtransfer[hardware]'")

from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel as AerNoiseModel

from qtransfer.quantum import QuantumLayer
from qtransfer.quantum.circuit import CircuitSpec
from qtransfer.quantum.device_sim import DeviceCircuit
from qtransfer.quantum.devices import (
    FAKE_DEVICES,
    compile_for_device,
    device_summary,
    fake_backend,
    kraus_to_ptm,
    theta_index,
    transpile_for,
)
from qtransfer.quantum.noise import DeviceNoise, parse_noise
from qtransfer.quantum.simulator import simulate


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _inputs(spec: CircuitSpec, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, spec.n_qubits, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    w = torch.randn(spec.weight_shape, generator=g, dtype=torch.float64)
    return x, w


def _aer_final_states(spec: CircuitSpec, device: str, x: torch.Tensor, w: torch.Tensor):
    """Aer's density matrices of the transpiled circuit under NoiseModel.from_backend, and the model."""
    backend = fake_backend(device)
    transpiled = transpile_for(spec, backend)
    model = AerNoiseModel.from_backend(backend)
    sim = AerSimulator(method="density_matrix", noise_model=model)
    flat = w.reshape(-1)
    states = []
    for b in range(x.shape[0]):
        theta = torch.cat([x[b], flat])
        values = {p: float(theta[i]) for p, i in theta_index(transpiled, spec.n_qubits).items()}
        circuit = transpiled.assign_parameters(values)
        circuit.save_density_matrix()
        states.append(np.asarray(sim.run(circuit).result().data()["density_matrix"]))
    return states, model, transpiled


def _aer_read_probabilities(rho: np.ndarray, qubits: list[int], model) -> np.ndarray:
    """Probabilities of reading each bit string of ``qubits`` (first most significant), Aer's readout errors applied."""
    n_all = int(round(math.log2(rho.shape[0])))
    diag = np.real(np.diag(rho))
    index = np.arange(2**n_all)
    out = np.zeros(2 ** len(qubits))
    for outcome in range(2 ** len(qubits)):
        weight = np.ones(2**n_all)
        for i, q in enumerate(qubits):
            read = (outcome >> (len(qubits) - 1 - i)) & 1
            true = (index >> q) & 1  # Qiskit: qubit q is bit q of the index
            error = model._local_readout_errors.get((q,))
            conf = np.eye(2) if error is None else np.asarray(error.probabilities)  # [true][read]
            weight = weight * conf[true, read]
        out[outcome] = (weight * diag).sum()
    return out


def test_device_list_is_every_small_fake_backend():
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    small = {b.name for b in FakeProviderForBackendV2().backends() if 5 <= b.num_qubits <= 7}
    assert set(FAKE_DEVICES) == small - {"fake_fractional"}  # a demo of fractional gates, not a device


@pytest.mark.parametrize(
    "device,spec",
    [
        ("fake_manila", CircuitSpec(4, 6)),
        ("fake_belem", CircuitSpec(4, 6)),  # T-shaped coupling: a non-trivial layout
        ("fake_yorktown", CircuitSpec(4, 6)),  # the stand-in for the paper's ibmqx4
        ("fake_jakarta", CircuitSpec(4, 3)),  # 7 qubits
        ("fake_london", CircuitSpec(4, 2)),  # u1/u2/u3 native gates
        ("fake_lima", CircuitSpec(3, 2, embedding="rx", layer="rot_ring")),  # a ring: routing inserts swaps
        ("fake_quito", CircuitSpec(5, 2)),  # every qubit of the device
    ],
)
def test_noisy_expectations_equal_aer_density_matrix_with_readout(device, spec):
    x, w = _inputs(spec, 3, seed=sum(map(ord, device)))
    program = compile_for_device(spec, device)
    ours = DeviceCircuit(program).expval_z(x, w).numpy()
    probs = DeviceCircuit(program).probabilities(x, w).numpy()
    states, model, _ = _aer_final_states(spec, device, x, w)
    signs = 1 - 2 * ((np.arange(2**spec.n_qubits)[:, None] >> np.arange(spec.n_qubits - 1, -1, -1)) & 1)
    for b, rho in enumerate(states):
        read = _aer_read_probabilities(rho, list(program.layout), model)
        np.testing.assert_allclose(probs[b], read, atol=1e-6, rtol=0)
        np.testing.assert_allclose(ours[b], read @ signs, atol=1e-6, rtol=0)
    ideal = simulate(spec, x, w)
    assert np.abs(ours - ideal.numpy()).max() > 1e-3  # the device's noise does change the values


def test_readout_error_as_aer_samples_it():
    """Aer's own readout sampling (measure under the noise model) agrees with our exact read-out distribution."""
    spec = CircuitSpec(2, 1)
    x, w = _inputs(spec, 1, seed=3)
    program = compile_for_device(spec, "fake_manila")
    ours = DeviceCircuit(program).probabilities(x, w)[0].numpy()
    backend = fake_backend("fake_manila")
    transpiled = transpile_for(spec, backend)
    theta = torch.cat([x[0], w.reshape(-1)])
    values = {p: float(theta[i]) for p, i in theta_index(transpiled, spec.n_qubits).items()}
    circuit = transpiled.assign_parameters(values)
    from qiskit import ClassicalRegister

    creg = ClassicalRegister(2)
    circuit.add_register(creg)
    for i, q in enumerate(program.layout):
        circuit.measure(q, creg[i])
    shots = 40000
    counts = AerSimulator(method="density_matrix", noise_model=AerNoiseModel.from_backend(backend), seed_simulator=7).run(
        circuit, shots=shots
    ).result().get_counts()
    freq = np.zeros(4)
    for key, c in counts.items():  # Qiskit prints clbit 0 last
        freq[int(key[::-1], 2)] += c / shots
    assert np.all(np.abs(freq - ours) < 5 * np.sqrt(ours * (1 - ours) / shots) + 1e-9)


def test_only_the_used_qubits_are_simulated():
    program = compile_for_device(CircuitSpec(2, 2), "fake_nairobi")  # 7 device qubits
    assert len(program.sites) == 2 and len(program.layout) == 2
    assert program.calibration[:4].isdigit() and program.describe()["device"] == "fake_nairobi"


def test_gradients_match_finite_differences():
    spec = CircuitSpec(3, 2)
    run = DeviceCircuit(compile_for_device(spec, "fake_belem"))
    x, w = _inputs(spec, 2, seed=5)
    assert torch.autograd.gradcheck(lambda a, b: run.expval_z(a, b), (x.requires_grad_(), w.requires_grad_()))


def test_batched_equals_looped_and_float32_is_close():
    spec = CircuitSpec(4, 6)
    run = DeviceCircuit(compile_for_device(spec, "fake_manila"))
    x, w = _inputs(spec, 5, seed=2)
    batched = run.expval_z(x, w)
    looped = torch.cat([run.expval_z(x[i : i + 1], w) for i in range(5)])
    torch.testing.assert_close(batched, looped, atol=1e-13, rtol=0)
    single = run.expval_z(x.float(), w.float())
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), batched, atol=1e-5, rtol=0)


def test_shots_converge_at_the_inverse_square_root_rate_and_are_seeded():
    spec = CircuitSpec(4, 6)
    run = DeviceCircuit(compile_for_device(spec, "fake_manila"))
    x, w = _inputs(spec, 64, seed=9)
    exact = run.expval_z(x, w)
    errors = {}
    for shots in (100, 1600, 25600):
        est = run.expval_z(x, w, shots=shots, generator=torch.Generator().manual_seed(0))
        errors[shots] = (est - exact).pow(2).mean().sqrt().item()
        rms_expected = (1 - exact.pow(2)).mean().sqrt().item() / math.sqrt(shots)
        assert 0.7 * rms_expected < errors[shots] < 1.3 * rms_expected
    assert 3 < errors[100] / errors[1600] < 5.5 and 3 < errors[1600] / errors[25600] < 5.5  # sqrt(16) = 4
    again = run.expval_z(x, w, shots=100, generator=torch.Generator().manual_seed(0))
    first = run.expval_z(x, w, shots=100, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, first, atol=0, rtol=0)


def test_pauli_transfer_matrices_of_known_channels():
    p = 0.1
    paulis = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])]
    depol = [math.sqrt(1 - 3 * p / 4) * paulis[0]] + [math.sqrt(p / 4) * s for s in paulis[1:]]
    np.testing.assert_allclose(kraus_to_ptm(depol), np.diag([1, 1 - p, 1 - p, 1 - p]), atol=1e-15)
    g = 0.3  # amplitude damping: <X>,<Y> shrink by sqrt(1-g); <Z> -> g + (1-g) <Z>
    amp = [np.array([[1, 0], [0, math.sqrt(1 - g)]]), np.array([[0, math.sqrt(g)], [0, 0]])]
    expected = np.diag([1, math.sqrt(1 - g), math.sqrt(1 - g), 1 - g])
    expected[3, 0] = g
    np.testing.assert_allclose(kraus_to_ptm(amp), expected, atol=1e-15)
    cnot = np.eye(4)[[0, 1, 3, 2]]  # control = first qubit: X on the control spreads to the target
    ptm = kraus_to_ptm([cnot])
    assert ptm[1 * 4 + 1, 1 * 4 + 0] == pytest.approx(1.0)  # X(x)I -> X(x)X
    assert ptm[3 * 4 + 3, 0 * 4 + 3] == pytest.approx(1.0)  # I(x)Z -> Z(x)Z


def test_layer_runs_a_device_and_shares_weights_with_the_ideal_layer():
    assert parse_noise("fake_manila") == DeviceNoise("fake_manila")
    noisy = QuantumLayer(4, 6, noise="fake_manila", dtype=torch.float64)
    ideal = QuantumLayer(4, 6, dtype=torch.float64)
    ideal.load_state_dict(noisy.state_dict())
    x = torch.rand(3, 2, 4, dtype=torch.float64)
    out = noisy(x)
    assert out.shape == (3, 2, 4)
    assert (out - ideal(x)).abs().max() > 1e-3 and out.abs().max() < ideal(x).abs().max() + 0.1
    out.sum().backward()
    assert noisy.weights.grad is not None and noisy.weights.grad.abs().sum() > 0
    desc = noisy.device_description()
    assert desc["device"] == "fake_manila" and len(desc["layout"]) == 4 and desc["calibration"]
    assert ideal.device_description() is None


def test_device_summary_has_median_errors():
    s = device_summary("fake_manila")
    assert s["qubits"] == 5 and s["two_qubit_gate"] == "cx"
    assert 0 < s["median_2q_error"] < 0.1 and 0 < s["median_readout_error"] < 0.2 and s["median_t1_us"] > 1


def test_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match="fake_manila"):
        parse_noise("fake_nowhere")
    with pytest.raises(ValueError, match="has 5 qubits"):
        compile_for_device(CircuitSpec(6, 1), "fake_manila")


def test_the_transpiled_circuit_is_the_same_on_every_call():
    """Qiskit's VF2Layout alone picks either of two mirror-image layouts on fake_jakarta; ours is fixed."""
    from qiskit import qasm3

    spec = CircuitSpec(4, 3)
    texts = {qasm3.dumps(transpile_for(spec, fake_backend("fake_jakarta"))) for _ in range(12)}
    assert len(texts) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_on_cuda_equals_cpu():
    spec = CircuitSpec(4, 6)
    run = DeviceCircuit(compile_for_device(spec, "fake_manila"))
    x, w = _inputs(spec, 8, seed=4)
    cpu = run.expval_z(x, w)
    gpu = run.expval_z(x.cuda(), w.cuda().requires_grad_())
    gpu.sum().backward()
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-12, rtol=0)
    shots = run.expval_z(x.cuda(), w.cuda(), shots=64, generator=torch.Generator(device="cuda").manual_seed(0))
    assert shots.device.type == "cuda" and shots.shape == (8, 4)

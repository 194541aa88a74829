"""General circuits on the calibrated fake devices: equal to Aer's density matrix under NoiseModel.from_backend.

Inputs anywhere (embedding first, re-uploaded after two-qubit gates, IQP's products of inputs),
and every measurement a device reads out: Z words, weighted sums of Pauli words, probabilities,
X/Y words after the basis change a device appends (H, S^dagger H), each bit through the readout error.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_aer")
pytest.importorskip("qiskit_ibm_runtime")
from qiskit import transpile  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_aer.noise import NoiseModel as AerNoiseModel  # noqa: E402

from helpers import REPO, call_cli, make_image_folder  # noqa: E402
from qtransfer.quantum import Circuit, Operation, QuantumLayer, templates as T  # noqa: E402
from qtransfer.quantum.circuit import CircuitSpec  # noqa: E402
from qtransfer.quantum.circuit_file import load_circuit_file  # noqa: E402
from qtransfer.quantum.description import GATES, Input, Probs  # noqa: E402
from qtransfer.quantum.device_sim import DeviceCircuit  # noqa: E402
from qtransfer.quantum.devices import compile_for_device, fake_backend, theta_index, transpile_for  # noqa: E402
from qtransfer.quantum.executor import run_circuit  # noqa: E402

from test_quantum_devices import _aer_read_probabilities  # noqa: E402

_DRAWN = ["RX", "RY", "RZ", "PhaseShift", "Rot", "U3", "CNOT", "CZ", "CY", "SWAP", "CRX", "CRY", "CRZ",
                      "IsingXX", "IsingYY", "IsingZZ", "S", "T", "SX", "PauliX", "PauliY", "PauliZ", "Hadamard", "Toffoli"]


def _random_circuit(n: int, seed: int, *, inputs_anywhere: bool = False, measurements: tuple = ()) -> Circuit:
    """An embedding, then 12 random gates of every kind (Toffoli on 3 wires or more). With ``inputs_anywhere``
    the embedding is IQP's (products of inputs after two-qubit gates) and a third of the later
    angles read an input again (``s * x[i] + t`` or ``s * (x[i] - c)(x[j] - c) + t``): re-uploading."""
    rng = np.random.default_rng(seed)
    if inputs_anywhere:
        ops = list(T.iqp_embedding(n).ops)
    else:
        ops = [*T.angle_embedding(n, rotation="Y").ops, Operation("H", (0,)), Operation("RX", (1,), ("0.5*x[1] + 0.2",))]
    names = [g for g in _DRAWN if GATES[g].n_wires <= n]
    k = 0
    for _ in range(12):
        name = names[rng.integers(len(names))]
        info = GATES[name]
        wires = tuple(int(w) for w in rng.choice(n, info.n_wires, replace=False))
        params = []
        for _ in range(info.n_params):
            draw = rng.random() if inputs_anywhere else 1.0
            if draw < 0.15:
                params.append(Input(int(rng.integers(n)), float(rng.uniform(0.5, 2)), float(rng.uniform(-1, 1))))
            elif draw < 0.3:
                i, j = (int(v) for v in rng.choice(n, 2, replace=False))
                params.append(Input((i, j), float(rng.uniform(0.5, 2)), float(rng.uniform(-1, 1)), 0.3))
            else:
                params.append(f"w[{k}]")
                k += 1
        ops.append(Operation(name, wires, tuple(params)))
    return Circuit(n, tuple(ops), measurements, n_inputs=n, weight_shape=(k,))


def _aer_outputs(circuit: Circuit, device: str, x: torch.Tensor, w: torch.Tensor) -> np.ndarray:
    """Each sample's measurements from Aer's density matrix (NoiseModel.from_backend) of the transpiled
    circuit, with H (X) or S^dagger H (Y) appended on the measured qubits and translated to the
    device's gates, read out through Aer's readout errors."""
    backend = fake_backend(device)
    transpiled = transpile_for(circuit, backend)
    layout = list(transpiled.layout.final_index_layout()[: circuit.n_qubits])
    model = AerNoiseModel.from_backend(backend)
    sim = AerSimulator(method="density_matrix", noise_model=model)
    n = circuit.n_qubits
    bits = (np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1
    rows = []
    for b in range(x.shape[0]):
        theta = torch.cat([x[b], w])
        bound = transpiled.assign_parameters({p: float(theta[i]) for p, i in theta_index(transpiled, n).items()})
        read: dict = {}

        def read_out(setting: tuple) -> np.ndarray:
            if setting not in read:
                qc = bound.copy()
                for pauli, q in setting:
                    if pauli == "Y":
                        qc.sdg(layout[q])
                    qc.h(layout[q])
                qc = transpile(qc, basis_gates=list(backend.operation_names), optimization_level=0)
                qc.save_density_matrix()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rho = np.asarray(sim.run(qc).result().data()["density_matrix"])
                read[setting] = _aer_read_probabilities(rho, layout, model)
            return read[setting]

        row = []
        for m in circuit.measurements:
            if isinstance(m, Probs):
                probs = read_out(()).reshape([2] * n)
                rest = tuple(q for q in range(n) if q not in m.wires)
                marginal = probs.sum(axis=rest) if rest else probs
                row.extend(np.transpose(marginal, [sorted(m.wires).index(q) for q in m.wires]).reshape(-1))
                continue
            value = 0.0
            for coeff, word in m.terms:
                probs = read_out(tuple((p, q) for p, q in word if p != "Z"))
                value += coeff * (probs * np.prod(1 - 2 * bits[:, [q for _, q in word]], axis=1)).sum()
            row.append(value)
        rows.append(row)
    return np.asarray(rows)


def _inputs(n: int, n_weights: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(2, n, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    return x, torch.randn(n_weights, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("device,n,seed", [("fake_manila", 4, 1), ("fake_belem", 3, 2), ("fake_lima", 5, 3)])
def test_embedding_first_circuit_on_a_device_equals_aer(device, n, seed):
    circuit = _random_circuit(n, seed)
    x, w = _inputs(n, circuit.n_weights, seed)
    run = DeviceCircuit(compile_for_device(circuit, device))
    assert run.per_sample_steps == 0  # the fast path: every step pulled back once per batch
    ours = run.outputs(x, w).numpy()
    np.testing.assert_allclose(ours, _aer_outputs(circuit, device, x, w), atol=1e-6, rtol=0)
    np.testing.assert_allclose(run.expval_z(x, w).numpy(), ours, atol=1e-12, rtol=0)
    ideal = run_circuit(circuit, x, w).numpy()
    assert np.abs(ours - ideal).max() > 1e-3  # the device's noise does change the values


_MEASURE = ("Z0", "Z0 Z1", "0.5*Z1 Z2 - 0.25*Z0", "X0", "Y1 Z2", "0.3*X0 Y1 + Z2 - 0.2*Y2", Probs((2, 0)))


@pytest.mark.parametrize("device,n,seed", [("fake_manila", 4, 11), ("fake_belem", 3, 12), ("fake_lima", 5, 13)])
def test_inputs_anywhere_and_any_measurement_on_a_device_equal_aer(device, n, seed):
    circuit = _random_circuit(n, seed, inputs_anywhere=True, measurements=_MEASURE)
    x, w = _inputs(n, circuit.n_weights, seed)
    run = DeviceCircuit(compile_for_device(circuit, device))
    assert run.per_sample_steps > 0  # inputs after two-qubit gates: the per-sample path is what is tested
    ours = run.outputs(x, w)
    assert ours.shape == (2, circuit.n_outputs)
    np.testing.assert_allclose(ours.numpy(), _aer_outputs(circuit, device, x, w), atol=1e-6, rtol=0)
    ideal = run_circuit(circuit, x, w).numpy()
    assert np.abs(ours.numpy() - ideal).max() > 1e-3


def test_device_gradients_match_finite_differences():
    circuit = _random_circuit(3, 21, inputs_anywhere=True, measurements=_MEASURE)
    x, w = _inputs(3, circuit.n_weights, 21)
    run = DeviceCircuit(compile_for_device(circuit, "fake_belem"))
    assert torch.autograd.gradcheck(lambda a, b: run.outputs(a, b), (x.requires_grad_(), w.requires_grad_()),
                                    eps=1e-6, atol=1e-6, rtol=0)


def test_shots_on_a_device_are_drawn_in_each_measurement_setting():
    measure = ("Z0 Z1", "0.5*Z2 - Z0", "X0", "0.3*X0 Y1 + Z2", Probs((1,)))
    circuit = _random_circuit(3, 31, inputs_anywhere=True, measurements=measure)
    x, w = _inputs(3, circuit.n_weights, 31)
    run = DeviceCircuit(compile_for_device(circuit, "fake_manila"))
    assert run.settings() == [{}, {0: "X"}, {0: "X", 1: "Y"}]
    exact = run.outputs(x, w)
    a = run.outputs(x, w, shots=200_000, generator=torch.Generator().manual_seed(5))
    b = run.outputs(x, w, shots=200_000, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, exact)
    torch.testing.assert_close(a, exact, atol=0.01, rtol=0)
    one = run.outputs(x, w, shots=1, generator=torch.Generator().manual_seed(6))  # one bit string per setting
    for column, values in ((2, (-1, 1)), (3, (-1.3, -0.7, 0.7, 1.3)), (4, (0, 1)), (5, (0, 1))):
        assert all(min(abs(v - t) for t in values) < 1e-12 for v in one[:, column].tolist()), (column, one)
    w.requires_grad_()
    run.outputs(x, w, shots=100, generator=torch.Generator().manual_seed(5)).sum().backward()
    grad = w.grad.clone()
    w.grad = None
    run.outputs(x, w).sum().backward()
    torch.testing.assert_close(grad, w.grad)  # straight through: the exact gradient


def test_published_circuit_keeps_the_batch_independent_path():
    run = DeviceCircuit(compile_for_device(CircuitSpec(4, 6), "fake_manila"))
    assert run.per_sample_steps == 0


def test_quantum_layer_runs_the_reuploading_and_iqp_examples_on_a_device():
    for name in ("reuploading", "iqp"):
        circuit = load_circuit_file(REPO / "examples" / "circuits" / f"{name}.toml")
        layer = QuantumLayer(circuit=circuit, noise="fake_manila", dtype=torch.float64)
        x = torch.rand(3, circuit.n_inputs, dtype=torch.float64, requires_grad=True)
        out = layer(x)
        out.sum().backward()
        assert out.shape == (3, circuit.n_outputs) and layer.device_description()["device"] == "fake_manila"
        assert x.grad.abs().sum() > 0 and layer.weights.grad.abs().sum() > 0
    layer = QuantumLayer(circuit=_random_circuit(2, 1, measurements=("X0", "Y1")), noise="fake_manila", shots=10, seed=1)
    assert all(min(abs(v - t / 10) for t in range(-10, 11, 2)) < 1e-6 for v in layer(torch.rand(4, 2)).flatten().tolist())
    with pytest.raises(ValueError, match="fake_manila: amplitude embedding has no gates for a device"):
        QuantumLayer(circuit=T.amplitude_embedding(2), noise="fake_manila")


def test_cli_evaluates_and_trains_reuploading_and_iqp_circuits_on_a_device(tmp_path):
    data = make_image_folder(tmp_path / "data", n_per_class=4)
    base = ["--backbone", "resnet18", "--weights", "none", "--no-progress", "--cache-dir", tmp_path / "cache"]
    reuploading, iqp = (REPO / "examples" / "circuits" / f"{name}.toml" for name in ("reuploading", "iqp"))
    code, _, err = call_cli(["train", "--data", data, "--out", tmp_path / "ideal", "--epochs", "1", "--circuit",
                             reuploading, "--no-report", *base])
    assert code == 0, err
    evaluate = ["evaluate", tmp_path / "ideal", "--data", data, "--json", "--no-progress",
                "--cache-dir", tmp_path / "cache"]
    code, ideal, err = call_cli(evaluate)
    assert code == 0, err
    code, noisy, err = call_cli([*evaluate, "--noise", "fake_manila"])
    assert code == 0, err
    ideal, noisy = json.loads(ideal), json.loads(noisy)
    assert noisy["noise"] == "fake_manila" and noisy["loss"] != pytest.approx(ideal["loss"], abs=1e-6)
    code, _, err = call_cli(["train", "--data", data, "--out", tmp_path / "iqp", "--epochs", "1", "--circuit", iqp,
                             "--noise", "fake_manila", "--no-report", *base])
    assert code == 0, err
    device = json.loads((tmp_path / "iqp" / "metrics.json").read_text())["device"]
    assert device["device"] == "fake_manila" and len(device["layout"]) == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_inputs_anywhere_on_cuda_equal_cpu():
    circuit = _random_circuit(3, 31, inputs_anywhere=True, measurements=("Z0 Z1", "X0", Probs((2,))))
    x, w = _inputs(3, circuit.n_weights, 31)
    run = DeviceCircuit(compile_for_device(circuit, "fake_manila"))
    gpu = run.outputs(x.cuda(), w.cuda().requires_grad_())
    gpu.sum().backward()
    torch.testing.assert_close(gpu.cpu(), run.outputs(x, w), atol=1e-12, rtol=0)
    shots = DeviceCircuit(compile_for_device(_random_circuit(3, 31, inputs_anywhere=True), "fake_manila")).outputs(
        x.cuda(), w.cuda(), shots=64, generator=torch.Generator(device="cuda").manual_seed(0))
    assert shots.device.type == "cuda" and shots.shape == (2, 3)

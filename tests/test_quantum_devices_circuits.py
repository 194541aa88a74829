"""General circuits on the calibrated fake devices: equal to Aer's density matrix under NoiseModel.from_backend."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_aer")
pytest.importorskip("qiskit_ibm_runtime")
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_aer.noise import NoiseModel as AerNoiseModel  # noqa: E402

from qtransfer.quantum import Circuit, Operation, QuantumLayer, templates as T  # noqa: E402
from qtransfer.quantum.device_sim import DeviceCircuit  # noqa: E402
from qtransfer.quantum.devices import compile_for_device, fake_backend, theta_index, transpile_for  # noqa: E402
from qtransfer.quantum.executor import run_circuit  # noqa: E402

from test_quantum_devices import _aer_read_probabilities  # noqa: E402


def _random_circuit(n: int, seed: int) -> Circuit:
    """An embedding (inputs first, as the device simulator needs), then random weight gates of every kind."""
    rng = np.random.default_rng(seed)
    ops = list(T.angle_embedding(n, rotation="Y").ops) + [Operation("H", (0,)), Operation("RX", (1,), ("0.5*x[1] + 0.2",))]
    names = ["RX", "RY", "RZ", "PhaseShift", "Rot", "U3", "CNOT", "CZ", "CY", "SWAP", "CRX", "CRY", "CRZ", "IsingXX",
             "IsingYY", "IsingZZ", "S", "T", "SX", "PauliY"]
    k = 0
    for _ in range(12):
        name = names[rng.integers(len(names))]
        from qtransfer.quantum.description import GATES

        info = GATES[name]
        wires = tuple(int(w) for w in rng.choice(n, info.n_wires, replace=False))
        params = []
        for _ in range(info.n_params):
            params.append(f"w[{k}]")
            k += 1
        ops.append(Operation(name, wires, tuple(params)))
    return Circuit(n, tuple(ops), n_inputs=n, weight_shape=(k,))


@pytest.mark.parametrize("device,n,seed", [("fake_manila", 4, 1), ("fake_belem", 3, 2), ("fake_lima", 5, 3)])
def test_general_circuit_on_a_device_equals_aer(device, n, seed):
    circuit = _random_circuit(n, seed)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(2, n, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    w = torch.randn(circuit.n_weights, generator=g, dtype=torch.float64)
    program = compile_for_device(circuit, device)
    probs = DeviceCircuit(program).probabilities(x, w).numpy()
    ours = DeviceCircuit(program).expval_z(x, w).numpy()
    backend = fake_backend(device)
    transpiled = transpile_for(circuit, backend)
    model = AerNoiseModel.from_backend(backend)
    sim = AerSimulator(method="density_matrix", noise_model=model)
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1)
    for b in range(x.shape[0]):
        theta = torch.cat([x[b], w])
        bound = transpiled.assign_parameters({p: float(theta[i]) for p, i in theta_index(transpiled, n).items()})
        bound.save_density_matrix()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = np.asarray(sim.run(bound).result().data()["density_matrix"])
        read = _aer_read_probabilities(rho, list(program.layout), model)
        np.testing.assert_allclose(probs[b], read, atol=1e-6, rtol=0)
        np.testing.assert_allclose(ours[b], read @ signs, atol=1e-6, rtol=0)
    ideal = run_circuit(circuit, x, w).numpy()
    assert np.abs(ours - ideal).max() > 1e-3  # the device's noise does change the values


def test_layer_runs_a_general_circuit_on_a_device_and_refuses_reuploading():
    circuit = T.compose(T.angle_embedding(3, rotation="Y"), T.strongly_entangling_layers(3, 1))
    layer = QuantumLayer(circuit=circuit, noise="fake_manila", dtype=torch.float64, shots=256, seed=3)
    out = layer(torch.rand(4, 3, dtype=torch.float64))
    assert out.shape == (4, 3) and layer.device_description()["device"] == "fake_manila"
    reupload = T.reuploading(T.angle_embedding(2), [T.basic_entangler_layers(2, 1)] * 2)
    with pytest.raises(ValueError, match="needs the embedding first on every qubit"):
        QuantumLayer(circuit=reupload, noise="fake_manila")

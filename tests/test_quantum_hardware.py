"""PennyLane's Qiskit devices under calibrated device noise: qiskit.aer (Aer's own density-matrix
simulation, exact and sampled) against the built-in DeviceCircuit, gradients, qiskit.remote on a
fake backend, the configuration rules, and credentials never reaching a run directory."""

from __future__ import annotations

import json
import math
import sys
import warnings

import pytest
import torch

pytest.importorskip("pennylane_qiskit", reason="needs the hardware extra: pip install 'qtransfer[hardware]'")

from helpers import call_cli, make_image_folder, tiny_train_args

from qtransfer.config import TrainConfig
from qtransfer.errors import UsageError
from qtransfer.quantum import QuantumLayer


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _pair(device: str, n: int = 4, depth: int = 6, **kwargs) -> tuple[QuantumLayer, QuantumLayer]:
    """(built-in, PennyLane Qiskit) layers on ``device`` with the same float64 weights."""
    torch.manual_seed(sum(map(ord, device)))
    ref = QuantumLayer(n, depth, noise=device, q_delta=1.0, dtype=torch.float64)
    other = QuantumLayer(n, depth, noise=device, dtype=torch.float64, **kwargs)
    other.load_state_dict(ref.state_dict())
    return ref, other


def _angles(batch: int, n: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, n, generator=g, dtype=torch.float64) * 2 - 1) * math.pi


@pytest.mark.parametrize("device", ["fake_manila", "fake_belem"])  # a line and a T (layout [2, 1, 3, 4])
def test_aer_exact_equals_builtin(device):
    ref, aer = _pair(device, backend="pennylane:qiskit.aer")
    x = _angles(3)
    with torch.no_grad():
        torch.testing.assert_close(aer(x), ref(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("device", ["fake_manila", "fake_belem"])
def test_aer_shots_within_standard_errors(device):
    shots = 4000
    ref, aer = _pair(device, backend="pennylane:qiskit.aer", shots=shots, seed=1)
    x = _angles(3, seed=1)
    with torch.no_grad():
        exact, sampled = ref(x), aer(x)
    se = torch.sqrt((1 - exact**2) / shots)
    assert ((sampled - exact).abs() <= 5 * se + 1e-9).all()
    assert not torch.equal(sampled, exact)


def test_aer_gradient_equals_builtin_autograd():
    ref, aer = _pair("fake_manila", 4, 2, backend="pennylane:qiskit.aer", diff_method="parameter-shift")
    x = _angles(1, seed=2)
    ref(x).sum().backward()
    aer(x).sum().backward()
    torch.testing.assert_close(aer.weights.grad, ref.weights.grad, atol=1e-5, rtol=0)
    assert ref.weights.grad.abs().max() > 1e-2


def test_remote_on_a_fake_backend_runs_locally():
    """Runs the fake backend's own simulator, which also relaxes idle qubits (docs/noise.md): close, not equal."""
    ref, remote = _pair("fake_manila", 4, 2, backend="pennylane:qiskit.remote", shots=2000, seed=1)
    x = _angles(2, seed=3)
    with torch.no_grad():
        assert (remote(x) - ref(x)).abs().max() < 0.15


def test_remote_needs_shots_and_a_backend():
    with pytest.raises(ValueError, match="--shots"):
        QuantumLayer(2, 1, backend="pennylane:qiskit.remote", noise="fake_manila")
    with pytest.raises(ValueError, match="name the IBM backend"):
        QuantumLayer(2, 1, backend="pennylane:qiskit.remote", shots=100)
    with pytest.raises(ValueError, match="drop --noise"):
        QuantumLayer(2, 1, backend="pennylane:qiskit.remote:ibm_brisbane", noise="fake_manila", shots=100)


def test_remote_without_credentials_says_where_they_come_from(monkeypatch):
    import qiskit_ibm_runtime

    class NoAccount:
        def __init__(self, *args, **kwargs):
            raise qiskit_ibm_runtime.accounts.AccountNotFoundError("Unable to find account.")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", NoAccount)
    with pytest.raises(ValueError, match="QISKIT_IBM_TOKEN.*save_account"):
        QuantumLayer(2, 1, backend="pennylane:qiskit.remote:ibm_brisbane", shots=100)


@pytest.mark.parametrize(
    "backend,noise,shots,message",
    [
        ("pennylane:qiskit.aer", "depolarizing:p1=0.01", None, "depolarizing/thermal noise applies to the built-in"),
        ("pennylane:default.mixed", "fake_manila", None, "not on pennylane:default.mixed"),
        ("pennylane:qiskit.remote", "fake_manila", None, "--shots"),
        ("pennylane:qiskit.remote", None, 100, "name the IBM backend"),
        ("pennylane:qiskit.remote:ibm_brisbane", "fake_belem", 100, "drop --noise"),
    ],
)
def test_config_rejects(backend, noise, shots, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(backend=backend, noise=noise, shots=shots)


def test_config_accepts():
    TrainConfig(backend="pennylane:qiskit.aer", noise="fake_manila")
    TrainConfig(backend="pennylane:qiskit.aer", noise="fake_belem", shots=1024)
    TrainConfig(backend="pennylane:qiskit.remote", noise="fake_manila", shots=1024)
    TrainConfig(backend="pennylane:qiskit.remote:ibm_brisbane", shots=1024)


def test_missing_plugin_names_the_hardware_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pennylane_qiskit", None)
    with pytest.raises(ImportError, match=r"qtransfer\[hardware\]"):
        QuantumLayer(2, 1, backend="pennylane:qiskit.aer", noise="fake_manila")


@pytest.mark.parametrize(
    "backend,extra",
    [("pennylane:qiskit.aer", []), ("pennylane:qiskit.remote", ["--shots", "256"])],
)
def test_cli_trains_on_qiskit_devices_and_stores_no_token(tmp_path, monkeypatch, backend, extra):
    token = "qtransfer-test-token-0123456789abcdef"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)
    monkeypatch.setenv("QISKIT_IBM_INSTANCE", "crn:v1:test-instance")
    monkeypatch.setenv("QTRANSFER_CACHE", str(tmp_path / "cache"))
    data = make_image_folder(tmp_path / "data", n_per_class=3)
    run = tmp_path / "run"
    args = tiny_train_args(data, run, epochs=1, extra=["--depth", "1", "--backend", backend, "--noise", "fake_manila",
                                                        "--batch-size", "8", *extra])
    code, _, err = call_cli(args)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["backend"] == backend and config["noise"] == "fake_manila"
    for path in run.rglob("*"):
        if path.is_file():
            data_bytes = path.read_bytes()
            assert token.encode() not in data_bytes and b"test-instance" not in data_bytes, path

"""Sizes checked before allocating (issue 20, case 6): shot counts without a shots-sized tensor, and a
simulation too large for the machine refused with the numbers and the flag."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import call_cli, one_torch_thread, session_cache, session_data, tiny_train_args  # noqa: F401
from qtransfer.errors import UsageError
from qtransfer.quantum import memory
from qtransfer.quantum.measurement import sample_counts, shot_estimate, z_signs


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_counts_have_the_multinomial_mean_and_covariance():
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.0, 0.0, 0.3]], dtype=torch.float64)
    shots, reps = 50, 4000
    g = torch.Generator().manual_seed(0)
    counts = torch.stack([sample_counts(probs, shots, g) for _ in range(reps)])  # (reps, 2, 4)
    assert torch.all(counts.sum(-1) == shots) and torch.all(counts[:, 1, 1:3] == 0)
    mean, var = counts.mean(0), counts.var(0)
    se = (shots * probs * (1 - probs) / reps).sqrt()
    assert torch.all((mean - shots * probs).abs() <= 5 * se + 1e-12)
    assert torch.allclose(var, shots * probs * (1 - probs), rtol=0.15, atol=1e-9)
    cov = ((counts[:, 0, 0] - mean[0, 0]) * (counts[:, 0, 3] - mean[0, 3])).mean()
    assert cov.item() == pytest.approx(-shots * 0.1 * 0.4, rel=0.2)  # multinomial, not independent binomials


def test_a_hundred_billion_shots_need_no_shots_sized_tensor():
    probs = torch.softmax(torch.randn(3, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64), -1)
    exact = probs @ z_signs(4, probs.device, probs.dtype)
    estimate = shot_estimate(probs, exact, 100_000_000_000, torch.Generator().manual_seed(2))
    assert torch.allclose(estimate, exact, atol=1e-4)  # standard error ~3e-6


def test_a_simulation_larger_than_the_memory_is_refused_with_the_numbers(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 8 * 2**30)
    memory.check_simulation_memory(20, 16, itemsize=4)  # 192 MiB: fits
    with pytest.raises(UsageError) as info:
        memory.check_simulation_memory(30, 4, itemsize=4)
    assert str(info.value) == ("simulating 30 qubits (statevector) for a batch of 4 needs at least 48.0 GiB "
                               "(3 x 4 x 2^30 x 4 bytes), but cpu has 8.0 GiB free; use fewer --qubits")


def test_available_memory_is_known_here():
    free = memory.available_bytes("cpu")
    assert free is None or 0 < free < 2**50


def test_train_with_too_many_qubits_is_exit_2_before_allocating(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    argv = tiny_train_args(data, tmp_path / "run", epochs=1, extra=["--cache-dir", session_cache(tmp_path_factory)])
    argv[argv.index("--qubits") + 1] = "36"  # 3 TiB: more than any machine this runs on
    code, _, err = call_cli(argv)
    assert code == 2, err
    line, = err.strip().splitlines()  # refused with the configuration, before the run folder or any feature
    assert line.startswith("qtransfer train: error: a 36-qubit circuit at batch size 4 needs about ")
    assert "GiB" in line and "use fewer --qubits" in line and not (tmp_path / "run").exists()


def test_the_simulator_checks_the_batch_it_is_given(monkeypatch):
    """The configuration's check sees --batch-size; the simulator's sees every batch (evaluation runs all images)."""
    from qtransfer.quantum.circuit import CircuitSpec
    from qtransfer.quantum.simulator import simulate

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 2**30)
    spec = CircuitSpec(n_qubits=22, depth=1)
    with pytest.raises(UsageError, match=r"simulating 22 qubits \(statevector\) for a batch of 64 needs at least "
                                         r"3.0 GiB .* but cpu has 1.0 GiB free; use fewer --qubits"):
        simulate(spec, torch.zeros(64, 22), torch.zeros(spec.weight_shape))


def test_evaluate_with_a_hundred_billion_shots(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    cache = session_cache(tmp_path_factory)
    run = tmp_path / "run"
    assert call_cli(tiny_train_args(data, run, epochs=1, extra=["--cache-dir", cache]))[0] == 0
    exact = call_cli(["evaluate", run, "--data", data, "--cache-dir", cache, "--no-progress", "--json"])
    code, out, err = call_cli(["evaluate", run, "--data", data, "--cache-dir", cache, "--no-progress", "--json",
                               "--shots", "100000000000"])
    assert code == 0, err
    import json

    sampled, exact = json.loads(out), json.loads(exact[1])
    assert sampled["shots"] == 100_000_000_000
    assert math.isclose(sampled["loss"], exact["loss"], abs_tol=1e-3)

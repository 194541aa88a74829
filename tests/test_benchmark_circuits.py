"""``benchmarks/circuits.py``: its peers run the circuit qtransfer runs (values and gradients
against the general executor in float64, from the same seeded weights and inputs), one thread
binds every thread pool of a worker, and the table's bookkeeping (cells cut off by time or
memory, larger sizes not run after them) says why a cell is empty."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from conftest import REPO

N, DEPTH, BATCH = 3, 2, 5


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_circuits", REPO / "benchmarks" / "circuits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _outputs(bench, option: str):
    """Values, input gradients and weight gradients (flat, ``(depth, n, 3)`` order) of one step whose
    backward pass weighs output i by i + 1 (so a wire mix-up shows)."""
    step = bench.build_step(option, "sel", N, DEPTH)
    x = bench.inputs(BATCH, N, step.dtype).requires_grad_(step.backward)
    out = step.run(x)
    assert out.shape == (BATCH, N)
    if not step.backward:
        return out.detach().double(), None, None
    (out * torch.arange(1, N + 1, dtype=out.dtype)).sum().backward()
    return out.detach().double(), x.grad.double(), step.weights.grad.double().reshape(-1)


@pytest.fixture(scope="module")
def reference(bench):
    values, x_grad, w_grad = _outputs(bench, "qtransfer f64")
    assert values.abs().max() > 0.1 and w_grad.abs().max() > 0.01  # not a trivial circuit
    return values, x_grad, w_grad


def test_qulacs_forward_equals_qtransfer(bench, reference, tol64):
    pytest.importorskip("qulacs", reason="needs qulacs: pip install 'qtransfer[bench]'")
    values, _, _ = _outputs(bench, "qulacs")
    torch.testing.assert_close(values, reference[0], **tol64)


def test_qulacs_backprop_equals_qtransfer_values_and_gradients(bench, reference, tol64):
    pytest.importorskip("qulacs", reason="needs qulacs: pip install 'qtransfer[bench]'")
    for ours, theirs in zip(_outputs(bench, "qulacs (backprop)"), reference):
        torch.testing.assert_close(ours, theirs, **tol64)


def test_qulacs_circuit_is_built_once_and_reused_across_steps(bench, reference, tol64):
    """Two calls with other inputs give other values, and the first inputs again give the first values."""
    pytest.importorskip("qulacs", reason="needs qulacs: pip install 'qtransfer[bench]'")
    step = bench.build_step("qulacs", "sel", N, DEPTH)
    x = bench.inputs(BATCH, N, torch.float64)
    first, other, again = step.run(x), step.run(x.flip(0)), step.run(x)
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    torch.testing.assert_close(other, reference[0].flip(0), **tol64)


def test_torchquantum_equals_qtransfer_values_and_gradients(bench, reference, tol32):
    pytest.importorskip("torchquantum", reason="needs torchquantum: pip install 'qtransfer[bench]'")
    for ours, theirs in zip(_outputs(bench, "torchquantum"), reference):
        torch.testing.assert_close(ours, theirs, **tol32)  # complex64 state


@pytest.mark.parametrize("option", ["qtransfer f32", "qtransfer fast f32", "default.qubit", "lightning.qubit"])
def test_every_other_option_starts_from_the_same_weights(bench, reference, option, tol32):
    if option.endswith(".qubit"):
        pytest.importorskip("pennylane", reason="needs pennylane")
    for ours, theirs in zip(_outputs(bench, option), reference):
        torch.testing.assert_close(ours, theirs, **tol32)


def test_qtransfer_forward_only_equals_the_training_values_and_records_no_graph(bench, reference, tol32):
    step = bench.build_step("qtransfer f32 (forward)", "sel", N, DEPTH)
    assert not step.backward and step.weights is None
    out = step.run(bench.inputs(BATCH, N, step.dtype).requires_grad_())
    assert out.grad_fn is None and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference[0], **tol32)


def test_ratios_compare_like_with_like(bench):
    """Gradients against the fastest peer computing gradients, forward against forward-only peers;
    a peer with no rate (skipped) is left out, and a size without qtransfer gives no line."""
    def rec(option, n, rate=None):
        return {"option": option, "n": n, **({"samples_per_s": rate} if rate else {"skipped": "memory"})}

    records = [rec("qtransfer f32", 4, 600.0), rec("torchquantum", 4, 100.0), rec("qulacs (backprop)", 4, 120.0),
               rec("default.qubit", 4), rec("qtransfer f32 (forward)", 4, 2000.0), rec("qulacs", 4, 400.0),
               rec("qulacs", 8, 50.0)]
    assert bench.ratios(records) == [
        "- n = 4: qtransfer f32 / fastest gradient peer (qulacs (backprop)) = 5.00x; "
        "qtransfer f32 (forward) / fastest forward-only peer (qulacs) = 5.00x; "
        "qtransfer f32 (forward+backward) / fastest forward-only peer (qulacs) = 1.50x"]


def test_one_thread_caps_every_pool_and_zero_leaves_the_environment(bench):
    user = {"PATH": "/bin", "OMP_NUM_THREADS": "7"}
    one = bench.worker_env(1, user)
    assert {name: one[name] for name in bench.THREAD_VARIABLES} == dict.fromkeys(bench.THREAD_VARIABLES, "1")
    assert set(bench.THREAD_VARIABLES) >= {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "QULACS_NUM_THREADS"}
    assert bench.worker_env(0, user) == user
    assert user == {"PATH": "/bin", "OMP_NUM_THREADS": "7"}  # not changed in place


def test_a_worker_runs_with_one_thread_in_its_environment(bench, monkeypatch):
    """A real worker subprocess (qtransfer f32, 3 qubits): it reports a rate, and the environment
    it was started with has the caps."""
    seen = {}
    real = bench.subprocess.run

    def spy(cmd, **kwargs):
        seen.update(kwargs["env"])
        return real(cmd, **kwargs)

    monkeypatch.setattr(bench.subprocess, "run", spy)
    record = bench._run("qtransfer f32", "sel", N, 4, DEPTH, 1, 0.05, 120)
    assert record.get("samples_per_s", 0) > 0, record
    assert all(seen[name] == "1" for name in bench.THREAD_VARIABLES)


def test_a_worker_over_its_memory_cap_fails_fast_and_says_so(bench):
    """21 qubits at batch 64 need 1 GiB per state: under a 4 GiB cap (torch itself loads) the worker
    stops within seconds (uncapped it would run for tens of seconds and report a rate)."""
    record = bench._run("qtransfer f32", "sel", 21, 64, DEPTH, 1, 0.0, 60, memory_gb=4)
    assert record == {"skipped": "memory: over the 4 GiB cap", "cut": "memory"}


def test_a_step_longer_than_the_budget_is_timed_once(bench):
    record = bench._worker("qtransfer f64", "sel", N, 4, DEPTH, 0, 0.0)
    assert record["steps"] == 1 and record["samples_per_s"] > 0


def test_failed_cells_say_why(bench):
    oom = "RuntimeError: [enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried"
    assert bench._reason(oom, 1, 12) == "memory: over the 12 GiB cap"
    refused = ("qtransfer.errors.CircuitTooLargeError: a 20-qubit circuit (260 gates) at batch 64 needs about "
               "22.0 GiB on cpu (1048576 amplitudes per sample), but only 21.3 GiB are free; use fewer qubits")
    assert bench._reason(refused, 1, 12) == "memory: needs about 22.0 GiB, 21.3 GiB free"
    import_oom = "OSError: [Errno 12] Cannot allocate memory: '/venv/torch/cuda'"
    assert bench._reason(import_oom, 1, 2) == "memory: over the 2 GiB cap"
    unmapped = "ImportError: libtorch_cpu.so: failed to map segment from shared object"
    assert bench._reason(unmapped, 1, 2) == "memory: over the 2 GiB cap"
    assert bench._reason("", -9, 12) == "killed by signal 9 (out of memory?)"
    missing = "ModuleNotFoundError: No module named 'torchquantum'"
    assert bench._reason(missing, 1, 12) == "torchquantum not installed (pip install torchquantum-ng)"
    assert bench._reason("Traceback\nValueError: bad", 1, 12) == "ValueError: bad"


def test_an_option_cut_off_at_some_n_is_not_run_at_larger_n(bench, monkeypatch, capsys):
    calls = []

    def fake_run(option, kind, n, batch, depth, threads, budget, timeout, **kwargs):
        calls.append((option, kind, n))
        if option == "default.qubit" and n >= 12:
            return {"skipped": f"over {timeout:.0f} s", "cut": "timeout"}
        return {"samples_per_s": 1.0, "median_s": 1.0, "steps": 1}

    monkeypatch.setattr(bench, "_run", fake_run)
    assert bench.main(["--n", "16", "4", "12", "--threads", "1", "--options", "default.qubit", "qulacs",
                       "--timeout", "9999"]) == 0
    sel = [c for c in calls if c[1] == "sel"]
    assert sel == [("default.qubit", "sel", 4), ("qulacs", "sel", 4), ("default.qubit", "sel", 12),
                   ("qulacs", "sel", 12), ("qulacs", "sel", 16)]
    assert ("qulacs", "published", 4) not in calls  # sel only: no worker started
    table = capsys.readouterr().out
    assert "| sel | 16 | 64 | — (not run: over 9999 s at n = 12) | 1 |" in table
    assert "— (sel circuit only)" in table


def test_a_size_whose_step_cannot_fit_the_timeout_is_not_started(bench, monkeypatch, capsys):
    """One step of 30 s at n = 12 is at least 30 * 2**4 = 480 s at n = 16: over a 300 s timeout."""
    calls = []

    def fake_run(option, kind, n, batch, depth, threads, budget, timeout, **kwargs):
        calls.append((option, n))
        seconds = {"lightning.qubit": 30.0, "qulacs": 10.0}[option] * 2 ** (n - 12)
        return {"samples_per_s": batch / seconds, "median_s": seconds, "steps": 1}

    monkeypatch.setattr(bench, "_run", fake_run)
    bench.main(["--n", "12", "16", "20", "--threads", "1", "--options", "lightning.qubit", "qulacs",
                "--timeout", "300"])
    assert [n for option, n in calls if option == "lightning.qubit"] == [12, 4, 4]  # + the published cells
    assert ("qulacs", 16) in calls and ("qulacs", 20) not in calls  # 160 s at 16, so >= 2560 s at 20
    table = capsys.readouterr().out
    assert "over 300 s: one step took 30 s at n = 12, at least 480 s at n = 16" in table
    assert "not run: over 300 s: one step took 30 s at n = 12, at least 480 s at n = 16" in table  # n = 20
    assert "| sel | 16 | 64 | — (over 300 s: one step took 30 s at n = 12, at least 480 s at n = 16) | 0.4 |" in table


def test_rates_keep_three_digits_below_a_hundred(bench):
    assert [bench._rate(r) for r in (582983.2, 1356.4, 99.94, 35.62, 0.8299)] == ["582,983", "1,356", "99.9", "35.6",
                                                                                   "0.83"]


def test_torchquantum_runs_with_the_interpreter_given(bench, monkeypatch):
    pythons = []

    def fake_run(option, *args, python=None, **kwargs):
        pythons.append((option, python))
        return {"skipped": "not run here"}

    monkeypatch.setattr(bench, "_run", fake_run)
    common = ["--n", "4", "--threads", "1", "--options", "torchquantum", "qulacs"]
    bench.main(common + ["--torchquantum-python", "/opt/tq/bin/python"])
    assert ("torchquantum", "/opt/tq/bin/python") in pythons and ("qulacs", None) in pythons
    pythons.clear()
    bench.main(common)
    assert ("torchquantum", sys.executable) in pythons


def test_an_unwritable_json_is_refused_before_any_cell_runs(bench, monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(bench, "_run", lambda *a, **k: calls.append(a) or {"skipped": "not run here"})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert bench.main(["--n", "4", "--threads", "1", "--options", "qulacs", "--json", str(blocker / "out.json")]) == 2
    assert calls == []
    err = capsys.readouterr().err
    assert err.startswith("circuits.py: error: cannot write to") and "--json" in err and err.count("\n") == 1


def test_ctrl_c_keeps_the_rows_finished_in_the_json(bench, monkeypatch, tmp_path, capsys):
    """Each row is written (atomically) as it finishes; Ctrl-C in the next one exits 130 and says where."""
    import json

    def fake_run(option, kind, n, *args, **kwargs):
        if n == 8:
            raise KeyboardInterrupt
        return {"samples_per_s": 10.0, "median_s": 0.1, "steps": 3}

    monkeypatch.setattr(bench, "_run", fake_run)
    out = tmp_path / "runs" / "circuits.json"
    assert bench.main(["--n", "4", "8", "--threads", "1", "--options", "qulacs", "--json", str(out)]) == 130
    assert [(r["option"], r["n"]) for r in json.loads(out.read_text())] == [("qulacs", 4)]
    assert f"interrupted; the rows finished are in {out}" in capsys.readouterr().err

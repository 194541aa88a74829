"""qtransfer compare on tiny data: every head x every seed, paired on one split, results in three formats."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from helpers import one_torch_thread, session_cache, session_data  # noqa: F401 - fixture
from qtransfer.compare import run_compare
from qtransfer.config import TrainConfig
from qtransfer.errors import UsageError

HEADS = ["quantum", "linear", "classical"]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _config(data: Path) -> TrainConfig:
    return TrainConfig(data=str(data), weights="none", n_qubits=2, depth=1, epochs=2, lr=1e-3)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    data = session_data(tmp_path_factory, "splits", layout="splits")
    out = tmp_path_factory.mktemp("compare")
    results = run_compare(_config(data), heads=HEADS, n_seeds=2, out_dir=out,
                          cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    return out, results


def test_results_json_has_every_head_and_seed(compared):
    out, results = compared
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds"] == [0, 1]
    assert list(saved["heads"]) == HEADS
    for head in HEADS:
        h = saved["heads"][head]
        assert len(h["accuracies"]) == 2 and all(0.0 <= a <= 1.0 for a in h["accuracies"])
        assert len(h["train_seconds"]) == 2 and h["n_params"] > 0
        assert len(saved["correct"][head]) == 2 and all(len(c) == saved["n_eval"] for c in saved["correct"][head])
        # accuracy is the mean of the per-image results the tests are run on
        for acc, right in zip(h["accuracies"], saved["correct"][head]):
            assert acc == pytest.approx(sum(right) / len(right), abs=1e-12)
        # what the report's per-head confusion matrices and curves are drawn from
        for predicted, right in zip(saved["predicted"][head], saved["correct"][head]):
            assert [int(p == y) for p, y in zip(predicted, saved["eval_labels"])] == right
        assert [[e["epoch"] for e in seed] for seed in saved["history"][head]] == [[1, 2]] * 2
    assert saved["heads"]["quantum"]["n_params"] == saved["heads"]["classical"]["n_params"]
    assert saved["reference"] == "quantum"
    assert isinstance(saved["comparisons"], list) and len(saved["comparisons"]) >= 1
    assert isinstance(saved["summary_markdown"], str) and "quantum" in saved["summary_markdown"]
    assert saved["config"]["epochs"] == 2 and saved["backbone"]["weights"] == "none"
    assert set(saved["timing"]) >= {"extract_s", "total_s"}


def test_test_split_is_the_evaluation_set(compared):
    _, results = compared
    assert results.eval_split == "test"
    assert (results.n_train, results.n_select, results.n_eval) == (12, 6, 6)
    assert all("/test/" in p for p in results.eval_paths)


def test_results_csv_has_heads_times_seeds_rows(compared):
    out, results = compared
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert len(rows) == len(HEADS) * 2
    assert [(r["head"], int(r["seed"])) for r in rows] == [(h, s) for h in HEADS for s in (0, 1)]
    for r in rows:
        assert float(r["accuracy"]) == pytest.approx(results.heads[r["head"]].accuracies[int(r["seed"])], abs=1e-6)
        assert int(r["n_eval"]) == 6


def test_results_md_is_the_summary(compared):
    out, results = compared
    from qtransfer.report.tables import markdown_summary

    saved = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text() == saved["summary_markdown"] == markdown_summary(results)


def test_seeds_are_reproducible_and_heads_are_independent(tmp_path_factory, compared):
    """The linear head alone, same seeds: exactly the accuracies it had next to the other heads."""
    _, results = compared
    data = session_data(tmp_path_factory, "splits", layout="splits")
    again = run_compare(_config(data), heads=["linear"], n_seeds=2, out_dir=tmp_path_factory.mktemp("again"),
                        cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    mine, theirs = again.heads["linear"], results.heads["linear"]
    assert (mine.accuracies, mine.correct, mine.n_params) == (theirs.accuracies, theirs.correct, theirs.n_params)
    assert again.comparisons == ()  # nothing to compare a single head with


def test_without_test_split_selection_is_held_out_of_train(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    results = run_compare(_config(data), heads=["quantum", "linear"], n_seeds=1, out_dir=tmp_path,
                          cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    assert results.eval_split == "val"
    assert results.n_train + results.n_select + results.n_eval == 12
    assert results.n_select >= 2 and results.n_eval >= 2


@pytest.mark.parametrize(
    "heads, n_seeds, message",
    [
        (["quantum", "quantum"], 2, "lists a head twice"),
        (["quantum", "mlp"], 2, "unknown head"),
        ([], 2, "unknown head"),
        (["quantum"], 0, "--seeds must be a positive integer"),
    ],
)
def test_bad_arguments(tmp_path, heads, n_seeds, message):
    with pytest.raises(UsageError, match=message):
        run_compare(TrainConfig(data=str(tmp_path)), heads=heads, n_seeds=n_seeds, out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_compare_command_line_writes_the_report(tmp_path_factory, tmp_path):
    from qtransfer.cli import main

    data = session_data(tmp_path_factory, "splits", layout="splits")
    out = tmp_path / "cmp"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main(["compare", "--out", str(out), "--heads", "quantum,product", "--seeds", "2", "--data", str(data),
                     "--weights", "none", "--qubits", "2", "--depth", "1", "--epochs", "1",
                     "--cache-dir", str(session_cache(tmp_path_factory)), "--no-progress"])
    assert code == 0
    assert "quantum" in stdout.getvalue() and "product" in stdout.getvalue()
    for name in ("results.json", "results.csv", "results.md", "report.html"):
        assert (out / name).is_file(), name
    assert len((out / "results.csv").read_text().strip().splitlines()) == 1 + 2 * 2


def test_compare_under_a_calibrated_device(tmp_path_factory, tmp_path):
    """compare --noise fake_*: every quantum head trains and is evaluated on the emulated device."""
    pytest.importorskip("qiskit_aer", reason="needs the hardware extra")
    from qtransfer.cli import main

    data = session_data(tmp_path_factory, "splits", layout="splits")
    args = ["compare", "--heads", "quantum,linear", "--seeds", "1", "--data", str(data), "--weights", "none",
            "--qubits", "2", "--depth", "1", "--epochs", "1", "--cache-dir", str(session_cache(tmp_path_factory)),
            "--no-progress", "--no-report"]
    results = {}
    for noise in ("none", "fake_yorktown"):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            assert main([*args, "--out", str(tmp_path / noise), "--noise", noise]) == 0
        results[noise] = json.loads((tmp_path / noise / "results.json").read_text())
    ideal, device = results["none"]["heads"], results["fake_yorktown"]["heads"]
    assert device["linear"]["accuracies"] == ideal["linear"]["accuracies"]  # classical heads ignore the device
    assert device["quantum"]["n_params"] == ideal["quantum"]["n_params"]

"""qtransfer.paper: the paper's data as the notebooks define them, each experiment end to end, typed results,
the command line, and the data sets that must be downloaded (offline messages, CIFAR from a local server)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from helpers import call_cli, serve_tiny_cifar
from qtransfer.errors import CheckpointError, DownloadError, UsageError
from qtransfer.paper.common import PaperResults, PaperRow, Series, check_seeds
from qtransfer.photonic.paper import QC, QQ, qc_amplitudes

CLOSED_URL = "http://127.0.0.1:9/nothing-here"  # port 9 (discard): connection refused, no network needed


# ------------------------------------------------------------------------------------------- data
def test_spiral_points_follow_the_notebook_definition():
    from qtransfer.paper.spirals import spiral_points

    x, y = spiral_points(500, turns=1.52, seed=21)
    assert x.shape == (1000, 2) and y.tolist() == [0] * 500 + [1] * 500
    np.testing.assert_array_equal(x[500:], -x[:500])  # the second spiral is the first through the origin
    rng = np.random.RandomState(21)  # first draw: the angle; then one-sided uniform noise on x, then on y
    t = np.sqrt(rng.rand(500, 1)) * 1.52 * 2 * np.pi
    np.testing.assert_allclose(x[:500, 0], (-np.cos(t) * t + rng.rand(500, 1) * 0.7)[:, 0])
    x2, _ = spiral_points(500, turns=1.52, seed=21)
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, spiral_points(500, turns=1.52, seed=22)[0])


def test_spirals_data_is_the_published_split():
    from qtransfer.paper.spirals import SPIRALS, spirals_data

    d = spirals_data(2.0)
    assert d["x_train"].shape == (SPIRALS.n_train, 2) and d["x_test"].shape == (SPIRALS.n_test, 2)
    np.testing.assert_allclose(d["x_all"].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(d["x_all"].std(0), 1, atol=1e-12)
    order = np.random.RandomState(42).permutation(len(d["x_all"]))  # scikit-learn's ShuffleSplit order
    np.testing.assert_array_equal(d["x_test"], d["x_all"][order[:200]])
    assert abs(d["y_test"].mean() - 0.5) < 0.1 and abs(d["y_train"].mean() - 0.5) < 0.05
    train_rows = {tuple(r) for r in d["x_train"]}
    assert not any(tuple(r) in train_rows for r in d["x_test"])


def test_qc_noise_is_drawn_in_the_notebook_order():
    from qtransfer.paper.qc import qc_dataset, qc_noisy_amplitudes

    a = qc_noisy_amplitudes(2, np.random.RandomState(100))
    rng = np.random.RandomState(100)
    draws = [rng.normal(scale=QC.noise_scale, size=7) for _ in range(4)]  # Re a, Im a, Re b, Im b
    np.testing.assert_allclose(a[0, :, 0], qc_amplitudes()[:, 0] + draws[0] + 1j * draws[1])
    np.testing.assert_allclose(a[0, :, 1], qc_amplitudes()[:, 1] + draws[2] + 1j * draws[3])
    big = qc_noisy_amplitudes(400, np.random.RandomState(0)) - qc_amplitudes()[None]
    assert abs(big.real.std() - QC.noise_scale) < 0.02 and abs(big.mean()) < 0.02
    f, raw, y = qc_dataset(5, np.random.RandomState(100))
    assert f.shape == (35, 16) and raw.shape == (35, 4) and np.bincount(y.numpy()).tolist() == [5] * 7
    np.testing.assert_allclose(f.square().sum(1).numpy(), 1, atol=1e-5)  # renormalised on the 4x4 subspace


def test_qq_batches_are_drawn_in_the_notebook_order():
    from qtransfer.paper.qq import qq_batches

    b = qq_batches(3, np.random.RandomState(1))
    rng = np.random.RandomState(1)
    for i in range(3):  # labels, sq, r1, r2, and a third rotation the notebook never uses
        labels, sq = rng.randint(2, size=8), rng.uniform(-0.5, 0.5, size=8)
        r1, r2, _ = (rng.uniform(-2 * np.pi, 2 * np.pi, size=8) for _ in range(3))
        np.testing.assert_array_equal(b["labels"][i], labels)
        np.testing.assert_array_equal(b["gen_sq"][i], sq)
        np.testing.assert_array_equal(b["gen_r2"][i], r2)
    many = qq_batches(200, np.random.RandomState(5))["labels"]
    assert abs(many.mean() - 0.5) < 0.05


# ------------------------------------------------------------------------------------ experiments
def test_spirals_quantum_circuit_learns_the_spirals():
    from qtransfer.paper.spirals import SPIRALS, build_model, run_spirals

    row, = run_spirals((0,), replace(SPIRALS, turns=(1.52,), grid_points=8))
    assert row.model.n_params == 52 and [b.n_params for b in row.baselines] == [52, 57, 52]
    assert row.model.values[0] > 0.8 and row.baselines[1].values[0] > 0.6  # chance is 0.5
    assert row.model.published == 0.970 and row.baselines[1].published == 0.855
    assert np.asarray(row.figures["quantum"]["p1"]).shape == (8, 8)
    with pytest.raises(ValueError, match="unknown spirals model 'bogus'"):
        build_model("bogus")


def test_qc_head_learns_from_frozen_features():
    from qtransfer.paper.qc import run_qc

    row, = run_qc((0,), replace(QC, epochs=200, test_batches=50))
    assert row.model.values[0] > 0.6  # chance is 1/7
    assert row.baselines[1].values[0] < 0.3  # photon-number moduli of coherent states do not see the phase
    assert np.asarray(row.figures["feature_images"]).shape == (7, 4, 4)


def test_qq_reproduces_the_published_run_on_the_notebook_data_stream():
    from qtransfer.paper.qq import train_qq

    model, acc = train_qq("published", 0)  # seed 0: the notebook's numpy stream RandomState(1)
    assert abs(acc - QQ.published_accuracy) < 0.02
    _, intended = train_qq("intended", 1)
    assert intended > 0.9
    assert all(w.abs().max() > 0.01 for w in model.weights.values())  # trained: moved from 0.001 * randn


# ---------------------------------------------------------------------------------- typed results
def _results() -> PaperResults:
    a = PaperRow("qc", "qc", "QC", Series("A + head", (0.8, 0.81), 0.8067, 119), (Series("classical", (0.95, 0.96)),),
                 (0, 1), 2.5, "notes", {"cutoff": 11}, {"feature_images": [[[0.5]]]})
    b = PaperRow("qq", "qq-intended", "QQ", Series("B", (0.97,)), (), (0,), 1.0)
    return PaperResults((a, b), {"cq": "place the zip at X"}, (0, 1), 3.5, "qtransfer paper all")


def test_results_round_trip_through_json(tmp_path):
    r = _results()
    again = PaperResults.from_json(json.loads(json.dumps(r.to_json())))
    assert again == r and again.rows[0].figures == r.rows[0].figures and again.rows[0].settings == {"cutoff": 11}
    r.save(tmp_path / "results.json")
    assert PaperResults.load(tmp_path / "results.json") == r
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["rows"][1]["model"]["ci95"] == [None, None]  # one seed: no interval, no NaN in the JSON
    assert data["rows"][0]["model"]["mean"] == pytest.approx(0.805)
    with pytest.raises(CheckpointError, match="not the results of `qtransfer paper`"):
        PaperResults.from_json({**data, "schema": "qtransfer-compare-results"}, source="x.json")
    with pytest.raises(UsageError, match="--seeds must be a positive integer, got 0"):
        check_seeds(0)


def test_report_has_the_table_and_pictures(tmp_path):
    from qtransfer.paper.report import write_paper_report

    _results().save(tmp_path / "results.json")
    page = write_paper_report(tmp_path).read_text()
    assert "0.807" in page and "0.805 [" in page and "place the zip at X" in page
    assert (tmp_path / "figures" / "qc.png").is_file() and "data:image/png;base64," in page
    assert "| QC | 0.807 |" in (tmp_path / "results.md").read_text()


# ------------------------------------------------------------------------------------ command line
def test_cli_paper_all_runs_offline_and_says_what_to_download(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    monkeypatch.setenv("QTRANSFER_HYMENOPTERA_URL", CLOSED_URL)
    monkeypatch.setattr(CIFAR10, "url", CLOSED_URL)
    code, out, err = call_cli(["paper", "all", "--seeds", "1", "--out", tmp_path / "p", "--cache-dir", tmp_path / "c",
                               "--no-progress", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert [r["key"] for r in data["rows"]] == ["spirals-1.52", "spirals-2", "qc", "qq-published", "qq-intended"]
    assert "hymenoptera_data.zip" in data["skipped"]["cq"]
    assert str(tmp_path / "c" / "datasets" / "cifar10" / "cifar-10-python.tar.gz") in data["skipped"]["cifar"]
    assert "hymenoptera_data.zip" in data["skipped"]["qpu"]
    assert PaperResults.load(tmp_path / "p" / "results.json").rows[2].model.published == QC.published_accuracy
    assert (tmp_path / "p" / "report.html").is_file()


def test_cli_paper_cq_offline_exits_with_the_download_message(tmp_path, monkeypatch):
    monkeypatch.setenv("QTRANSFER_HYMENOPTERA_URL", CLOSED_URL)
    code, _, err = call_cli(["paper", "cq", "--seeds", "1", "--out", tmp_path / "p", "--cache-dir", tmp_path / "c"])
    assert code == DownloadError.exit_code
    assert "place the zip (hymenoptera_data.zip" in err and str(tmp_path / "c" / "datasets") in err


def test_cli_paper_rejects_bad_seeds(tmp_path):
    code, _, err = call_cli(["paper", "qc", "--seeds", "0", "--out", tmp_path])
    assert code == UsageError.exit_code and "--seeds must be a positive integer, got 0" in err


# ------------------------------------------------------------------------------------------ CIFAR
@pytest.fixture
def cifar_server(monkeypatch):
    """A local HTTP server serving a tiny CIFAR-10 archive; torchvision's URL and md5s point at it."""
    with serve_tiny_cifar(monkeypatch.setattr):
        yield


def test_cifar_pair_downloads_checks_and_trains_end_to_end(tmp_path, cifar_server):
    from qtransfer.paper.cifar import run_cifar

    row, = run_cifar((0,), out=tmp_path / "runs", pairs=("cats_dogs",), cache_dir=tmp_path / "c", weights="none",
                     backbone="mobilenet_v2", epochs=2, progress=None)
    folder = tmp_path / "c" / "datasets" / "cifar10-pairs" / "cats_dogs"
    assert len(list((folder / "train" / "cat").glob("*.png"))) == 10 and len(list((folder / "val" / "dog").iterdir())) == 2
    assert not (folder / "train" / "plane").exists()
    assert row.key == "cifar-cats_dogs" and row.model.published == 0.8270 and len(row.baselines[0].values) == 1
    assert 0.0 <= row.model.values[0] <= 1.0
    assert (tmp_path / "runs" / "cats_dogs" / "quantum-seed0" / "metrics.json").is_file()


def test_cifar_offline_names_the_archive_to_place(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    from qtransfer.paper.cifar import ensure_cifar10

    monkeypatch.setattr(CIFAR10, "url", CLOSED_URL)
    with pytest.raises(DownloadError) as e:
        ensure_cifar10(tmp_path / "c")
    assert f"place cifar-10-python.tar.gz (md5 {CIFAR10.tgz_md5}) at {tmp_path / 'c' / 'datasets' / 'cifar10'}" in str(e.value)


def test_paper_help_and_import_load_no_torch():
    import subprocess
    import sys

    from helpers import REPO, cli_env

    code = ("import sys, contextlib, io\nimport qtransfer.paper\nfrom qtransfer.cli import main\n"
            "buf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    try:\n        main(['paper', '--help'])\n"
            "    except SystemExit as e:\n        assert e.code == 0\nassert 'spirals,qc,qq,cq,cifar,qpu,all' in buf.getvalue()\n"
            "import qtransfer\nassert callable(qtransfer.run_paper)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=cli_env(Path("/nonexistent-cache")), capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""qtransfer paper qpu: the trained ants/bees model on calibrated device emulations (ideal, exact noisy,
with shots), noise-aware training, the paired statistics, typed results, report and command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers import call_cli, make_image_folder
from qtransfer.errors import UsageError
from qtransfer.stats import PairedT, paired_t, t_sf_two_sided

TINY = {"backbone": "resnet18", "weights": "none"}  # random-weights backbone on 32x32 images: fast, offline


# ------------------------------------------------------------------------------------ statistics
def test_paired_t_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a = rng.uniform(0.8, 1.0, size=10)
    b = a - rng.normal(0.03, 0.02, size=10)
    r = paired_t(a, b)
    ref = scipy_stats.ttest_rel(a, b)
    d = a - b
    half = scipy_stats.t.ppf(0.975, 9) * d.std(ddof=1) / math.sqrt(10)
    assert r.n == 10 and r.diff == pytest.approx(d.mean(), abs=1e-12) and r.std == pytest.approx(d.std(ddof=1))
    assert r.t == pytest.approx(ref.statistic, rel=1e-9) and r.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert r.ci95 == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-6)
    for t, df in ((0.0, 3), (1.3, 4), (-2.5, 9), (8.0, 1), (40.0, 20)):
        assert t_sf_two_sided(t, df) == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-6, abs=1e-15)


def test_paired_t_edge_cases_and_json():
    one = paired_t([0.9], [0.8])
    assert one.diff == pytest.approx(0.1) and math.isnan(one.p_value) and math.isnan(one.ci95[0])
    same = paired_t([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert same.diff == 0 and same.p_value == 1.0 and same.ci95 == (0.0, 0.0)
    shift = paired_t([0.9, 0.8], [0.85, 0.75])
    assert shift.p_value == 0.0 and shift.ci95 == pytest.approx((0.05, 0.05)) and shift.t == math.inf
    with pytest.raises(ValueError, match="matched values"):
        paired_t([0.9, 0.8], [0.9])
    data = json.loads(json.dumps(one.to_dict()))
    assert data["p_value"] is None and data["ci95"] == [None, None]  # JSON has no NaN
    again = PairedT.from_dict(data)
    assert again.diff == one.diff and math.isnan(again.p_value)
    r = paired_t([0.9, 0.95, 0.92], [0.88, 0.9, 0.92])
    assert PairedT.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_z_calibration_undoes_a_per_qubit_affine_distortion():
    import torch

    from qtransfer.paper.qpu import fit_z_calibration

    g = torch.Generator().manual_seed(0)
    z = torch.rand(50, 4, generator=g, dtype=torch.float64) * 2 - 1
    z[:, 3] = 1.0  # a qubit that never varies
    scale, offset = torch.tensor([0.8, 0.5, 0.7, 0.9], dtype=torch.float64), torch.tensor([0.05, -0.1, 0.0, 0.0])
    noisy = scale * z + offset.to(torch.float64)
    a, b = fit_z_calibration(noisy, z)
    torch.testing.assert_close(a * noisy + b, z)
    assert a[3] == 0 and b[3] == 1  # the constant qubit is mapped to its ideal mean
    a32, _ = fit_z_calibration(noisy.float(), z.float())
    assert a32.dtype == torch.float32


def test_devices_and_options_are_checked():
    from qtransfer.paper.qpu import check_devices
    from qtransfer.paper.runner import check_options

    assert check_devices("fake_lima,fake_lima, fake_belem") == ("fake_lima", "fake_belem")
    with pytest.raises(UsageError, match="unknown device 'ibmqx4' for --devices; choose among fake_athens"):
        check_devices("ibmqx4")
    with pytest.raises(UsageError, match="unknown paper option 'depth'"):
        check_options({"depth": 3})


# ------------------------------------------------------------------------------------ the experiment
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("qpu")
    return make_image_folder(root / "data", n_per_class=10), root / "cache"


@pytest.fixture(scope="module")
def qpu_rows(tiny):
    pytest.importorskip("qiskit_aer", reason="needs the hardware extra")
    from qtransfer.paper.qpu import run_qpu

    data, cache = tiny
    return run_qpu((0, 1), data=data, devices=("fake_yorktown", "fake_lima"), shots=256, noise_aware="fake_lima",
                   cache_dir=cache, epochs=3, **TINY)


def test_qpu_rows_hold_every_device_and_the_noise_aware_comparison(qpu_rows):
    from qtransfer.paper.qpu import DeviceAccuracy, NoiseAwareGain

    assert [r.key for r in qpu_rows] == ["qpu-fake_yorktown", "qpu-fake_lima", "qpu-aware-fake_lima"]
    york = DeviceAccuracy.from_row(qpu_rows[0])
    assert york.device == "fake_yorktown" and york.calibration.startswith("20") and len(york.layout) == 4
    assert york.gate_counts["cx"] > 0 and york.shots == 256
    for s in (york.ideal, york.exact, york.sampled, york.calibrated):
        assert len(s.values) == 2 and all(0 <= v <= 1 for v in s.values)
        lo, hi = s.ci
        assert 0 <= lo <= s.mean <= hi <= 1
    assert york.cost.diff == pytest.approx(york.ideal.mean - york.sampled.mean)
    assert DeviceAccuracy.from_row(qpu_rows[1]).ideal == york.ideal  # one ideal model per seed, every device
    gain = NoiseAwareGain.from_row(qpu_rows[2])
    assert gain.ideal_exact.values == DeviceAccuracy.from_row(qpu_rows[1]).exact.values
    assert gain.gain.diff == pytest.approx(gain.aware_exact.mean - gain.ideal_exact.mean)
    assert qpu_rows[2].settings["gain"] == gain.gain.to_dict()
    assert qpu_rows[0].settings["n_eval"] == 4 and qpu_rows[0].settings["eval_split"] == "val"
    z = qpu_rows[0].figures["z"]
    assert z["device"] == "fake_yorktown" and np.asarray(z["exact"]).shape == (4, 4) == np.asarray(z["ideal"]).shape


def test_ideal_evaluation_is_the_trained_head_and_noise_shrinks_z(tiny):
    pytest.importorskip("qiskit_aer", reason="needs the hardware extra")
    import torch

    from qtransfer.api import resolve_config
    from qtransfer.paper.qpu import accuracy_on, circuit_angles, device_layer
    from qtransfer.sweeps.trials import fit_trial_head, prepare_trial_data, run_trial

    data, cache = tiny
    config = resolve_config(data, epochs=3, seed=1, **TINY)
    trial = prepare_trial_data(config, 0, cache_dir=cache, progress=False)
    head, _ = fit_trial_head(config, trial)
    x, y = trial.evaluate
    angles = circuit_angles(head, x)
    acc, z = accuracy_on(head, device_layer(head, None), angles, y)
    assert acc == pytest.approx(run_trial(config, trial)["accuracy"])  # same seed, same head, same numbers
    torch.testing.assert_close(z, head.quantum(angles).detach())
    _, z_exact = accuracy_on(head, device_layer(head, "fake_yorktown"), angles, y)
    _, z_shots = accuracy_on(head, device_layer(head, "fake_yorktown", shots=4096, seed=0), angles, y)
    assert z_exact.dtype == torch.float32 and z_exact.abs().max() < 1
    assert (z_exact - z).abs().max() > 1e-3  # the device's noise changes <Z>
    assert (z_shots - z_exact).abs().max() < 5 / math.sqrt(4096)  # shots scatter around the exact value


def test_results_and_report_have_the_qpu_section(qpu_rows, tmp_path):
    from qtransfer.paper.common import PaperResults
    from qtransfer.report.paper import write_paper_report

    PaperResults(qpu_rows, {}, (0, 1), 1.0, "qtransfer paper qpu").save(tmp_path / "results.json")
    again = PaperResults.load(tmp_path / "results.json")
    assert [(r.key, r.model, r.baselines) for r in again.rows] == [(r.key, r.model, r.baselines) for r in qpu_rows]
    assert again.rows[0].figures == qpu_rows[0].figures and again.rows[2].settings == qpu_rows[2].settings
    page = write_paper_report(tmp_path).read_text()
    assert "QPU: the trained model on emulated devices" in page and "fake_yorktown" in page
    assert (tmp_path / "figures" / "qpu-fake_yorktown.png").is_file()
    md = (tmp_path / "results.md").read_text()
    assert "| device | calibration | layout | CX | ideal simulator | exact noisy ⟨Z⟩ | 256 shots |" in md
    assert "| 256 shots, ⟨Z⟩ calibrated |" in md
    assert "| fake_lima | noise-aware |" in md


def test_cli_paper_qpu_runs_on_a_folder(tiny, tmp_path):
    pytest.importorskip("qiskit_aer", reason="needs the hardware extra")
    data, cache = tiny
    code, out, err = call_cli(["paper", "qpu", "--seeds", "2", "--data", data, "--backbone", "resnet18", "--weights",
                               "none", "--devices", "fake_belem", "--shots", "128", "--noise-aware", "none",
                               "--out", tmp_path / "p", "--cache-dir", cache, "--no-progress", "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert [r["key"] for r in result["rows"]] == ["qpu-fake_belem"]
    assert "--devices fake_belem --shots 128 --noise-aware none" in result["command"]
    row = result["rows"][0]
    assert row["settings"]["shots"] == 128 and row["settings"]["backbone"] == "resnet18"
    assert all((tmp_path / "p" / f).is_file() for f in ("results.json", "results.md", "report.html"))


def test_cli_paper_qpu_refuses_an_unknown_device(tmp_path):
    code, _, err = call_cli(["paper", "qpu", "--devices", "fake_nowhere", "--out", tmp_path])
    assert code == UsageError.exit_code and "unknown device 'fake_nowhere'" in err


def test_without_the_hardware_extra_all_skips_qpu_and_naming_it_says_what_to_install(tmp_path, monkeypatch):
    from qtransfer.paper import qpu
    from qtransfer.paper.runner import run_paper

    monkeypatch.setattr(qpu, "hardware_missing", lambda: "qpu needs qiskit: pip install 'qtransfer[hardware]'")
    ran = []

    def runner(name, seeds, out, **kwargs):
        ran.append(name)
        return ()

    results = run_paper("all", seeds=1, out=tmp_path, progress=False, runner=runner)
    assert "qpu" not in ran and "cq" in ran and "qtransfer[hardware]" in results.skipped["qpu"]
    with pytest.raises(UsageError, match=r"pip install 'qtransfer\[hardware\]'"):
        run_paper("qpu", seeds=1, out=tmp_path, progress=False, runner=runner)

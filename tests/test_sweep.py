"""qtransfer sweep on tiny data: the grid and trial ids, resume after SIGKILL, failing trials, executors agree."""

from __future__ import annotations

import html
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import PYTHON, REPO, cli_env, one_torch_thread, session_cache, session_data  # noqa: F401 - fixture
from qtransfer.config import TrainConfig
from qtransfer.errors import UsageError
from qtransfer.results import SweepResults, TrialRecord
from qtransfer.sweeps import SweepSpec, load_sweep_file, trial_id
from qtransfer.sweeps.run import run_sweep


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _spec(data: Path, *, grid=None, seeds=2, **base) -> SweepSpec:
    settings = {"data": str(data), "weights": "none", "n_qubits": 2, "epochs": 2, "lr": 1e-3, **base}
    return SweepSpec.from_dict({"seeds": seeds, "base": settings,
                                "grid": grid or {"head": ["quantum", "linear"], "depth": [1, 2]}})


def _per_trial(results: SweepResults) -> list[tuple]:
    return [(t.trial_id, t.status, t.accuracy, t.correct, t.n_params, t.best_epoch) for t in results.trials]


# --------------------------------------------------------------------------- grid and ids
def test_grid_is_the_cross_product_times_the_seeds():
    spec = SweepSpec.from_dict({"seeds": 3, "base": {"seed": 5, "epochs": 4},
                                "grid": {"head": ["quantum", "linear"], "depth": [2, 4, 6]}})
    trials = spec.trials()
    assert len(trials) == 3 * 3 + 3  # linear ignores depth: trained once per seed, not once per depth
    assert [(t.config.head, t.config.depth, t.config.seed) for t in trials[:4]] == [
        ("quantum", 2, 5), ("quantum", 2, 6), ("quantum", 2, 7), ("quantum", 4, 5)]
    assert all(t.config.epochs == 4 and t.split_seed == 5 for t in trials)  # the split never follows the seed
    assert trials[0].point == (("head", "quantum"), ("depth", 2))
    assert len({t.id for t in trials}) == len(trials)
    linear = [t for t in trials if t.config.head == "linear"]
    assert [t.point for t in linear] == [(("head", "linear"),)] * 3
    assert {t.config.depth for t in linear} == {2}  # the first value: what it is does not change linear's training


def test_seed_list_and_trial_ids_are_digests_of_the_resolved_settings():
    spec = SweepSpec.from_dict({"seeds": [3, 1], "grid": {"head": ["linear"]}})
    assert [t.config.seed for t in spec.trials()] == [3, 1]
    config = TrainConfig(head="linear", seed=3)
    assert spec.trials()[0].id == trial_id(config, 0)
    assert trial_id(config, 0) != trial_id(config.replace(lr=1e-3), 0) != trial_id(config, 1)
    # the same trial spelled another way (alias, base vs grid) has the same id
    a = SweepSpec.from_dict({"seeds": [3], "base": {"qubits": 2}, "grid": {"head": ["linear"]}}).trials()[0]
    b = SweepSpec.from_dict({"seeds": [3], "base": {"head": "linear"}, "grid": {"n_qubits": [2]}}).trials()[0]
    assert a.id == b.id and len(a.id) == 16


def test_sweep_file_and_flags(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('seeds = 2\n[base]\nepochs = 3\n[grid]\nhead = ["quantum", "product"]\ndepth = [1, 2]\n')
    spec = load_sweep_file(path)
    assert (len(spec.trials()), spec.seeds, spec.base["epochs"]) == (8, (0, 1), 3)
    assert {t.config.lr for t in spec.with_overrides({"lr": 0.01}).trials()} == {0.01}
    with pytest.raises(UsageError, match="varies depth in its \\[grid\\]"):
        spec.with_overrides({"depth": 3})


@pytest.mark.parametrize("values, message", [
    ({"grid": {"detph": [1]}}, "unknown setting 'detph'"),
    ({"grid": {"seed": [1, 2]}}, "put the seeds in the top-level 'seeds'"),
    ({"grid": {"depth": []}}, "non-empty list"),
    ({"grid": {"depth": 2}}, "non-empty list"),
    ({"grid": {"depth": [2, 2]}}, "lists a value twice"),
    ({"seeds": 0}, "positive count"),
    ({"seeds": [1, 1]}, "seeds lists a seed twice"),
    ({"grid": {"epochs": [1, 0]}}, "epochs must be an integer >= 1"),
    ({"trials": 3}, "unknown top-level key"),
])
def test_bad_sweep_files_say_what_to_fix(values, message):
    with pytest.raises(UsageError, match=message):
        SweepSpec.from_dict(values)


# --------------------------------------------------------------------------- running
@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    data = session_data(tmp_path_factory, "flat")
    out = tmp_path_factory.mktemp("sweep-serial")
    return out, run_sweep(_spec(data), out, workers=1, cache_dir=session_cache(tmp_path_factory), progress=False,
                          report=True)


def test_outputs_of_a_sweep(serial):
    out, results = serial
    assert len(results.trials) == 6 and all(t.ok for t in results.trials)  # linear: once, not once per depth
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [line["trial_id"] for line in lines] == [t.trial_id for t in results.trials]
    for line, record in zip(lines, results.trials):
        assert TrialRecord.from_json(line) == record == TrialRecord.load(out / "trials" / f"{record.trial_id}.json")
        assert line["settings"]["seed"] in (0, 1) and line["point"].get("depth", 1) in (1, 2)
        assert len(line["predicted"]) == len(line["correct"]) and line["history"][0]["epoch"] == 1
        assert line["accuracy"] == pytest.approx(sum(line["correct"]) / len(line["correct"]), abs=1e-12)
        assert line["seconds"] >= line["train_seconds"] > 0
    assert SweepResults.load(out / "sweep.json") == results
    summary = (out / "summary.md").read_text()
    assert "| depth | head |" in summary and "linear vs quantum" in summary
    page = (out / "report.html").read_text()
    assert "qtransfer sweep" in page and "data:image/png" in page and "with its 95% Student-t interval" in page
    assert (out / "figures" / "sweep.png").is_file()


def test_a_head_that_ignores_the_setting_is_one_level_not_a_curve(serial):
    from qtransfer.report.figures import sweep_figure
    from qtransfer.sweeps.summary import conclusion, summarize

    out, results = serial
    points = summarize(results, n_boot=200)
    assert [p.point for p in points] == [(("depth", 1),), (("depth", 2),)]
    linear = [p.heads["linear"] for p in points]
    assert linear[0] == linear[1] and linear[0].ignores == ("depth",) and len(linear[0].accuracies) == 2
    assert all(len(p.comparisons) == 1 for p in points)  # linear vs quantum at each depth, on the same linear trials
    summary = (out / "summary.md").read_text()
    assert "| any | linear |" in summary and summary.count("| linear |") == 1
    assert "linear ignores depth: it was trained once per seed" in summary
    ax = sweep_figure(points, ["depth"], ["quantum", "linear"]).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "linear (ignores depth: trained once)" in labels
    assert not any(c.get_label() == "linear" for c in ax.containers)  # no error-bar curve for linear
    sentence = conclusion(points, ["depth"])
    assert sentence.startswith("In plain words: the highest mean accuracy is ") and sentence.endswith(".")
    assert summary.splitlines()[0] == sentence
    page = (out / "report.html").read_text()
    assert page.index(html.escape(sentence)) < page.index("Accuracy across the grid")
    assert "drawn as one level (dashed)" in page


def test_sweep_conclusion_names_the_significant_comparisons():
    from qtransfer.stats import compare_heads
    from qtransfer.sweeps.summary import HeadSummary, PointSummary, conclusion

    right, wrong = [[1] * 40] * 3, [[1] * 10 + [0] * 30] * 3
    comparisons = tuple(compare_heads({"quantum": right, "linear": wrong}, reference="quantum", n_boot=500))
    h = HeadSummary((0, 1, 2), (1.0,) * 3, 1.0, 0.0, 1.0, 1.0, 0.1, 10, 0)
    g = HeadSummary((0, 1, 2), (0.25,) * 3, 0.25, 0.0, 0.25, 0.25, 0.1, 10, 0, ("depth",))
    points = [PointSummary((("depth", d),), {"quantum": h, "linear": g}, "quantum", comparisons, 40) for d in (2, 4)]
    assert conclusion(points, ["depth"]) == (
        "In plain words: the highest mean accuracy is 100.0% (quantum at depth=2); 2 of 2 paired comparisons with "
        "quantum are significant (linear -75.0 points at depth=2, linear -75.0 points at depth=4).")
    level = HeadSummary((0, 1, 2), (1.0,) * 3, 1.0, 0.0, 1.0, 1.0, 0.1, 10, 0, ("depth",))  # the best ignores depth
    best = [PointSummary(p.point, {"quantum": g, "linear": level}, "quantum", (), 40) for p in points]
    assert conclusion(best, ["depth"]).startswith(
        "In plain words: the highest mean accuracy is 100.0% (linear, which ignores depth)")


def test_seeds_never_change_the_split_so_results_are_paired(serial, tmp_path_factory):
    """The same trials as ``compare`` runs them: equal per-image results for the same head and seed."""
    from qtransfer.compare import run_compare

    _, results = serial
    data = session_data(tmp_path_factory, "flat")
    config = TrainConfig(data=str(data), weights="none", n_qubits=2, depth=1, epochs=2, lr=1e-3)
    compared = run_compare(config, heads=["quantum", "linear"], n_seeds=2, out_dir=tmp_path_factory.mktemp("cmp"),
                           cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    for head in ("quantum", "linear"):
        mine = [t.correct for t in results.trials if t.settings["head"] == head and t.point.get("depth", 1) == 1]
        assert tuple(mine) == compared.heads[head].correct
    assert len({len(t.correct) for t in results.trials}) == 1


def test_process_pool_gives_the_same_trials_as_one_worker(serial, tmp_path_factory, tmp_path):
    _, results = serial
    data = session_data(tmp_path_factory, "flat")
    pooled = run_sweep(_spec(data), tmp_path, workers=2, cache_dir=session_cache(tmp_path_factory), progress=False,
                       report=False)
    assert _per_trial(pooled) == _per_trial(results)


def test_a_rerun_skips_finished_trials(serial, tmp_path_factory):
    out, results = serial
    before = {p.name: p.stat().st_mtime_ns for p in (out / "trials").iterdir()}
    again = run_sweep(_spec(session_data(tmp_path_factory, "flat")), out, workers=1,
                      cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "trials").iterdir()} == before
    assert again.trials == results.trials
    assert again.classes == results.classes == ("ants", "bees")


def test_a_trial_that_raises_is_reported_and_the_rest_finish(tmp_path_factory, tmp_path, capsys):
    data = session_data(tmp_path_factory, "flat")
    spec = _spec(data, grid={"head": ["quantum", "linear"], "backend": ["builtin", "pennylane:no.such.device"]})
    results = run_sweep(spec, tmp_path, workers=2, cache_dir=session_cache(tmp_path_factory), progress=False,
                        report=True)
    failed = [t for t in results.trials if not t.ok]
    assert [(t.point["head"], t.point["backend"]) for t in failed] == [("quantum", "pennylane:no.such.device")] * 2
    assert all(t.attempts == 2 and "no.such.device" in t.error and t.correct == () for t in failed)
    assert sum(t.ok for t in results.trials) == 4  # linear ignores the backend: 2 trials, not 4
    err = capsys.readouterr().err
    assert err.count("failed after 2 attempts") == 2
    assert sorted(p.name for p in (tmp_path / "trials").glob("*.failed.json")) == sorted(
        f"{t.trial_id}.failed.json" for t in failed)
    for line in (tmp_path / "results.jsonl").read_text().splitlines():  # strict JSON: a failed trial's NaN is null
        json.loads(line, parse_constant=lambda c: pytest.fail(f"results.jsonl holds {c}"))
    assert "Failed trials" in (tmp_path / "summary.md").read_text()
    assert "no.such.device" in (tmp_path / "report.html").read_text()


def test_two_varied_settings_make_a_heatmap(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    spec = _spec(data, seeds=1, epochs=1, grid={"head": ["linear"], "lr": [1e-3, 1e-2], "batch_size": [2, 4]})
    run_sweep(spec, tmp_path, workers=1, cache_dir=session_cache(tmp_path_factory), progress=False, report=True)
    from qtransfer.report import write_report

    assert write_report(tmp_path).name == "report.html"
    assert "Mean accuracy over seeds per cell" in (tmp_path / "report.html").read_text()
    assert "| lr | batch_size | head |" in (tmp_path / "summary.md").read_text()


def test_command_line_flags_override_the_base_and_failures_exit_7(tmp_path_factory, tmp_path):
    from helpers import call_cli

    data = session_data(tmp_path_factory, "flat")
    path = tmp_path / "bad.toml"
    path.write_text(f'seeds = 1\n[base]\ndata = "{data}"\nweights = "none"\nn_qubits = 2\nepochs = 3\n'
                    f'[grid]\nhead = ["quantum", "linear"]\nbackend = ["builtin", "pennylane:no.such.device"]\n')
    common = ["--cache-dir", session_cache(tmp_path_factory), "--no-progress", "--no-report", "--workers", "1"]
    code, out, err = call_cli(["sweep", path, "--out", tmp_path / "out", "--epochs", "1", *common])
    assert code == 7, err
    assert "| backend | head |" in out and "failed after 2 attempts" in err and "rerun the same command" in err
    results = SweepResults.load(tmp_path / "out" / "sweep.json")
    assert {t.settings["epochs"] for t in results.trials} == {1}  # the flag won over [base]
    code, _, err = call_cli(["sweep", path, "--out", tmp_path / "out2", "--backend", "builtin", *common])
    assert code == 2 and "varies backend in its [grid]" in err


def test_python_api_runs_a_sweep_from_a_dict(tmp_path_factory, tmp_path):
    import qtransfer

    data = session_data(tmp_path_factory, "flat")
    results = qtransfer.sweep({"seeds": [4], "grid": {"head": ["linear"], "depth": [1, 2]}}, out=tmp_path, data=data,
                              weights="none", epochs=1, workers=1, cache_dir=session_cache(tmp_path_factory),
                              progress=False, report=False)
    assert isinstance(results, qtransfer.SweepResults)
    assert [(t.point, t.settings["seed"], t.ok) for t in results.trials] == [({"head": "linear"}, 4, True)]


class _FlakyExecutor:
    """Runs trials in this process, but the first trial submitted 'loses its worker' once."""

    capacity = 2

    def __init__(self, datasets):
        from qtransfer.sweeps.executors import SerialExecutor

        self.inner, self.restarts, self.submitted = SerialExecutor(datasets), 0, []

    def submit(self, key, config):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        self.submitted.append(config.seed)
        if len(self.submitted) == 1:
            future = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future
        return self.inner.submit(key, config)

    def restart(self):
        self.restarts += 1


def test_a_dead_worker_loses_only_its_trials_which_are_retried(tmp_path_factory, tmp_path):
    from qtransfer.sweeps.engine import TrialStore, execute, prepare_datasets

    spec = _spec(session_data(tmp_path_factory, "flat"), seeds=3, grid={"head": ["linear"]})
    trials = spec.trials()
    datasets = prepare_datasets(trials, cache_dir=session_cache(tmp_path_factory), progress=False)
    executor = _FlakyExecutor(datasets)
    records = execute(trials, executor, TrialStore(tmp_path), datasets)
    assert executor.restarts == 1
    assert all(r.ok for r in records.values()) and len(records) == 3
    # the trial of the dead worker ran again; those that had finished were kept
    assert sorted(executor.submitted) == [0, 0, 1, 2]
    assert [records[t.id].attempts for t in trials] == [2, 1, 1]


def test_compare_is_resumable_too(tmp_path_factory, tmp_path):
    from qtransfer.compare import run_compare

    data = session_data(tmp_path_factory, "flat")
    config = TrainConfig(data=str(data), weights="none", n_qubits=2, depth=1, epochs=1)
    first = run_compare(config, heads=["linear", "quantum"], n_seeds=2, out_dir=tmp_path,
                        cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "trials").iterdir()}
    assert len(before) == 4
    again = run_compare(config, heads=["linear", "quantum"], n_seeds=2, out_dir=tmp_path,
                        cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "trials").iterdir()} == before
    assert again.heads == first.heads and again.comparisons == first.comparisons


# --------------------------------------------------------------------------- killed mid-way, then resumed
def _slow_sweep_file(tmp_path: Path, data: Path) -> Path:
    """9 trials (linear ignores depth) of about 0.15 s each on one core: slow enough to be killed between trials."""
    path = tmp_path / "slow.toml"
    path.write_text(f'seeds = 3\n[base]\ndata = "{data}"\nweights = "none"\nn_qubits = 2\nepochs = 300\n'
                    f'batch_size = 1\nlr = 0.001\n[grid]\nhead = ["quantum", "linear"]\ndepth = [1, 2]\n')
    return path


def _sweep_cli(path: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "qtransfer.cli", "sweep", str(path), "--out", str(out), "--no-progress", "--no-report",
            *extra]


def test_resume_after_sigkill_equals_an_uninterrupted_sweep(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    cache = session_cache(tmp_path_factory)
    path = _slow_sweep_file(tmp_path, data)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_sweep_cli(path, out, cache, "--workers", "1"), env=cli_env(cache), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list((out / "trials").glob("*.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.read_bytes() for p in (out / "trials").glob("*.json")}
    assert 3 <= len(finished) < 9, f"killed after {len(finished)} of 9 trials: the test needs slower trials"

    rerun = subprocess.run(_sweep_cli(path, out, cache, "--workers", "2"), env=cli_env(cache), cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    for name, content in finished.items():  # not run again
        assert (out / "trials" / name).read_bytes() == content
    resumed = SweepResults.load(out / "sweep.json")
    assert len((out / "results.jsonl").read_text().splitlines()) == 9

    whole = subprocess.run(_sweep_cli(path, tmp_path / "whole", cache, "--workers", "1"), env=cli_env(cache),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    assert _per_trial(resumed) == _per_trial(SweepResults.load(tmp_path / "whole" / "sweep.json"))


def test_ctrl_c_stops_cleanly_and_keeps_finished_trials(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    cache = session_cache(tmp_path_factory)
    out = tmp_path / "out"
    proc = subprocess.Popen(_sweep_cli(_slow_sweep_file(tmp_path, data), out, cache, "--workers", "2"),
                            env=cli_env(cache), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((out / "trials").glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Run the same command again" in err and "Traceback" not in err
    for p in (out / "trials").glob("*.json"):
        assert TrialRecord.load(p).ok


# --------------------------------------------------------------------------- Ray
def test_ray_local_gives_the_same_trials_as_the_pool(serial, tmp_path_factory, tmp_path):
    pytest.importorskip("ray")
    _, results = serial
    on_ray = run_sweep(_spec(session_data(tmp_path_factory, "flat")), tmp_path, ray="local",
                       cache_dir=session_cache(tmp_path_factory), progress=False, report=False)
    assert _per_trial(on_ray) == _per_trial(results)


def test_missing_ray_says_how_to_install(monkeypatch):
    import sys

    from qtransfer.sweeps.executors import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"pip install 'qtransfer\[ray\]'"):
        import_ray()

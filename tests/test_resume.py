"""Fault injection: kill `qtransfer train` mid-run, resume it, and get exactly the uninterrupted result."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from helpers import PYTHON, REPO, cli_env, make_image_folder, run_cli
from qtransfer.training.state import load_state

EPOCHS = 40


def _args(data: Path, out: Path) -> list[str]:
    # batch size 1 makes each of the 40 epochs many steps long, so there is time to interrupt
    return ["train", "--data", str(data), "--out", str(out), "--backbone", "resnet18", "--weights", "none",
            "--epochs", str(EPOCHS), "--batch-size", "1", "--qubits", "4", "--depth", "6", "--lr", "0.001",
            "--step-size", "7", "--gamma", "0.5", "--seed", "3", "--no-progress", "--no-report"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tiny data, a warm feature cache, and the uninterrupted reference run."""
    root = tmp_path_factory.mktemp("resume")
    data = make_image_folder(root / "data", n_per_class=10)
    cache = root / "cache"
    reference = root / "reference"
    result = run_cli(_args(data, reference), cache)
    assert result.returncode == 0, result.stderr
    return data, cache, reference, _metrics(reference)


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _start(data: Path, out: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "qtransfer.cli", *_args(data, out)], env=cli_env(cache), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit  # a safety bound against hanging, not a timing assertion
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"train exited ({proc.returncode}) before {path} appeared: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.002)


def _assert_same_run(run: Path, reference: Path, reference_metrics: dict) -> None:
    got = torch.load(run / "model.pt", weights_only=True)
    want = torch.load(reference / "model.pt", weights_only=True)
    assert got["head"].keys() == want["head"].keys()
    for k in want["head"]:
        assert torch.equal(got["head"][k], want["head"][k]), k
    assert got["best_epoch"] == want["best_epoch"] and got["config"] == {**want["config"]}
    m = _metrics(run)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(m["history"]) == strip(reference_metrics["history"])
    assert len(m["history"]) == EPOCHS
    assert m["final"] == reference_metrics["final"]
    assert (m["best_epoch"], m["best_val_acc"]) == (reference_metrics["best_epoch"], reference_metrics["best_val_acc"])
    preds = json.loads((run / "predictions.json").read_text())["items"]
    want_preds = json.loads((reference / "predictions.json").read_text())["items"]
    assert preds == want_preds


def test_sigkill_at_a_random_point_then_resume_is_identical(setup, tmp_path):
    data, cache, reference, reference_metrics = setup
    train_s = reference_metrics["timing"]["train_s"]
    rng = random.SystemRandom()
    for attempt in range(4):
        run = tmp_path / f"killed{attempt}"
        proc = _start(data, run, cache)
        _wait_for(run / "state.pt", proc)
        delay = rng.uniform(0.0, 0.5 * train_s / (attempt + 1))
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        killed_at = load_state(run / "state.pt")["epoch"]  # the atomic write left a complete file
        if killed_at < EPOCHS and not (run / "model.pt").exists():
            break
    else:
        pytest.fail("training always finished before the kill; make the run longer")

    result = run_cli(["train", "--resume", run, "--no-progress", "--no-report"], cache)
    assert result.returncode == 0, (killed_at, delay, result.stderr)
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())
    _assert_same_run(run, reference, reference_metrics)


def test_ctrl_c_exits_130_names_resume_and_leaves_a_loadable_state(setup, tmp_path):
    data, cache, reference, reference_metrics = setup
    run = tmp_path / "interrupted"
    proc = _start(data, run, cache)
    _wait_for(run / "state.pt", proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    state = load_state(run / "state.pt")
    if proc.returncode == 0:  # pragma: no cover - the run finished before the signal landed
        pytest.skip("training finished before SIGINT arrived")
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and str(run) in stderr and "Traceback" not in stderr
    assert 1 <= state["epoch"] <= EPOCHS and len(state["history"]) == state["epoch"]
    assert not (run / "model.pt").exists()

    result = run_cli(["train", "--resume", run, "--no-progress", "--no-report"], cache)
    assert result.returncode == 0, result.stderr
    _assert_same_run(run, reference, reference_metrics)


def test_resume_refuses_new_settings(setup):
    _, cache, reference, _ = setup
    result = run_cli(["train", "--resume", reference, "--lr", "0.1", "--no-progress"], cache)
    assert result.returncode == 2 and "drop --lr" in result.stderr

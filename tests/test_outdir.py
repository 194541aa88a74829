"""Folders a command writes (issue 20, cases 1 and 11): an unwritable --out or cache is one line before any
work and leaves nothing half-made; files are readable as the umask says."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helpers import call_cli, one_torch_thread, read_only, session_cache, tiny_train_args, train_tiny_run  # noqa: F401
from qtransfer.errors import UsageError
from qtransfer.outdir import check_writable


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished 1-epoch run (shared; tests that change it copy it)."""
    run = tmp_path_factory.mktemp("outdir") / "run"
    data, _ = train_tiny_run(tmp_path_factory, run, epochs=1)
    return data, run


def _one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qtransfer {command}: error: cannot write to"), err
    assert "Traceback" not in err
    return lines[0]


def _sweep_file(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f'seeds = 1\n[base]\ndata = "{data}"\nweights = "none"\nn_qubits = 2\nepochs = 1\n'
                    f'[grid]\nhead = ["linear"]\n')
    return path


def test_every_writing_command_refuses_a_read_only_out_at_once(trained, tmp_path_factory, tmp_path):
    data, _ = trained
    cache = ["--cache-dir", session_cache(tmp_path_factory)]
    sweep_file = _sweep_file(tmp_path, data)
    with read_only(tmp_path / "ro") as ro:
        for command, argv in {
            "train": tiny_train_args(data, ro / "run", epochs=1, extra=cache),
            "compare": ["compare", "--data", data, "--weights", "none", "--heads", "linear", "--seeds", "1",
                        "--epochs", "1", "--out", ro, "--no-progress", *cache],
            "sweep": ["sweep", sweep_file, "--out", ro / "sw", "--workers", "1", "--no-progress", *cache],
            "paper": ["paper", "spirals", "--seeds", "1", "--out", ro, "--no-progress", *cache],
        }.items():
            code, out, err = call_cli(argv)
            assert code == 2, (command, err)
            line = _one_line_error(err, command)
            assert str(ro) in line and "choose another --out" in line
        assert sorted(p.name for p in ro.iterdir()) == []  # nothing made


def test_resume_and_report_refuse_a_read_only_run_directory(trained, tmp_path):
    import shutil

    _, run = trained
    copy = tmp_path / "ro"
    shutil.copytree(run, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    with read_only(copy):
        code, _, err = call_cli(["train", "--resume", copy, "--no-progress"])
        assert code == 2 and str(copy) in _one_line_error(err, "train"), err
        code, _, err = call_cli(["report", copy])
        assert code == 2 and str(copy) in _one_line_error(err, "report")
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


def test_a_read_only_cache_is_refused_before_the_run_folder_is_made(trained, tmp_path):
    data, run = trained
    with read_only(tmp_path / "cache") as cache:
        code, _, err = call_cli(tiny_train_args(data, tmp_path / "new", epochs=1, extra=["--cache-dir", cache]))
        assert code == 2 and "--cache-dir" in _one_line_error(err, "train")
        assert not (tmp_path / "new").exists()
        code, _, err = call_cli(["evaluate", run, "--data", data, "--cache-dir", cache, "--no-progress"])
        assert code == 2 and "--cache-dir" in _one_line_error(err, "evaluate")


def test_a_file_in_the_way_is_refused_anywhere(tmp_path, trained):
    """Works without root or mounts: the parent of --out is a file."""
    data, _ = trained
    (tmp_path / "file").write_text("x")
    code, _, err = call_cli(tiny_train_args(data, tmp_path / "file" / "run", epochs=1,
                                            extra=["--cache-dir", tmp_path / "cache"]))
    assert code == 2 and "is a file, not a folder" in _one_line_error(err, "train")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(UsageError, match="--cache-dir"):
        check_writable(tmp_path / "file" / "cache", "--cache-dir")


def test_an_early_failure_leaves_no_empty_sweep_folder(tmp_path, tmp_path_factory):
    path = _sweep_file(tmp_path, tmp_path / "no-such-data")
    code, _, err = call_cli(["sweep", path, "--out", tmp_path / "a" / "b", "--workers", "1", "--no-progress",
                             "--cache-dir", session_cache(tmp_path_factory)])
    assert code == 3 and "does not exist" in err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    from qtransfer.atomic import atomic_write_text, file_mode

    old = os.umask(umask)
    try:
        assert file_mode() == mode
        path = atomic_write_text(tmp_path / "x.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_run_directory_is_readable_by_others_under_umask_022(trained, tmp_path):
    _, run = trained
    old = os.umask(0o022)
    try:
        code, _, err = call_cli(["report", run])
    finally:
        os.umask(old)
    assert code == 0, err
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in run.iterdir() if p.is_file()}
    assert "report.html" in modes and "model.pt" in modes
    assert set(modes.values()) == {"0o644"}, modes


# --------------------------------------------------------------------------- one writer per folder (case 4)
def _wait_for(predicate, proc, timeout=120.0):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_second_writer_is_refused_and_resume_works_after_the_holder_is_killed(trained, tmp_path_factory, tmp_path):
    import signal
    import subprocess

    from helpers import PYTHON, REPO, cli_env

    data, _ = trained
    cache = session_cache(tmp_path_factory)
    out = tmp_path / "same_out"
    slow = tiny_train_args(data, out, epochs=400, extra=["--cache-dir", cache, "--batch-size", "1"])
    holder = subprocess.Popen([PYTHON, "-m", "qtransfer.cli", *map(str, slow)], env=cli_env(cache), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / "state.pt").is_file(), holder)
        before = (out / "config.json").read_bytes()
        for argv in (tiny_train_args(data, out, epochs=1, extra=["--cache-dir", cache]),
                     ["train", "--resume", out, "--no-progress"],
                     ["compare", "--data", data, "--weights", "none", "--heads", "linear", "--seeds", "1",
                      "--out", out, "--no-progress", "--cache-dir", cache],
                     ["sweep", _sweep_file(tmp_path, data), "--out", out, "--no-progress", "--cache-dir", cache],
                     ["paper", "spirals", "--seeds", "1", "--out", out, "--no-progress", "--cache-dir", cache]):
            code, _, err = call_cli(argv)
            assert code == 2, err
            assert err.strip().splitlines() == [
                f"qtransfer {argv[0]}: error: {out} is being written by another qtransfer process (PID {holder.pid}); "
                f"wait for it to end" + ("" if "--resume" in argv else ", or choose another --out")]
        assert (out / "config.json").read_bytes() == before and holder.poll() is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, _, err = call_cli(["train", "--resume", out, "--no-progress", "--no-report", "--cache-dir", cache])
    assert code == 0, err
    assert (out / "model.pt").is_file() and (out / "manifest.json").is_file()


def test_precomputed_features_need_no_writable_cache(tmp_path):
    """--features reads no images: a read-only cache is no reason to refuse the run."""
    import numpy as np

    from helpers import separable_features

    x, y = separable_features(n_per_class=10, dim=8)
    np.savez(tmp_path / "f.npz", features=x.numpy(), labels=np.array(["ants", "bees"])[y.numpy()])
    with read_only(tmp_path / "cache") as cache:
        code, _, err = call_cli(["train", "--features", tmp_path / "f.npz", "--out", tmp_path / "run", "--head", "linear",
                                 "--epochs", "1", "--cache-dir", cache, "--no-progress", "--no-report"])
    assert code == 0, err

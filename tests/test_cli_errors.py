"""Errors named by their cause (issue 20, cases 7 to 10): a missing extra, a device too small, the command
line's spelling, a closed pipe, empty sweep files and grids, paper flags an experiment does not read."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import PYTHON, REPO, call_cli, cli_env, one_torch_thread, session_cache, tiny_train_args, train_tiny_run  # noqa: F401


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs = tmp_path_factory.mktemp("errors")
    for n in (2, 6):
        data, cache = train_tiny_run(tmp_path_factory, runs / f"q{n}", epochs=1, qubits=n)
    return data, cache, runs


@pytest.fixture
def without_qiskit(tmp_path, tmp_path_factory):
    """Environment of a subprocess in which ``import qiskit_aer`` fails as if the hardware extra were missing."""
    shadow = tmp_path / "shadow" / "qiskit_aer"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'qiskit_aer'\")\n")
    env = cli_env(session_cache(tmp_path_factory))
    env["PYTHONPATH"] = str(tmp_path / "shadow") + os.pathsep + env["PYTHONPATH"]
    return env


def _run(argv, env):
    return subprocess.run([PYTHON, "-m", "qtransfer.cli", *map(str, argv)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def _only_line(err: str, command: str) -> str:
    lines = [line for line in err.strip().splitlines()]
    assert len(lines) == 1 and lines[0].startswith(f"qtransfer {command}: error: ") and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- case 7
def test_a_missing_extra_is_exit_2_with_the_install_line_not_a_checkpoint_error(trained, without_qiskit):
    data, cache, runs = trained
    result = _run(["evaluate", runs / "q2", "--data", data, "--noise", "fake_manila", "--cache-dir", cache,
                   "--no-progress"], without_qiskit)
    assert result.returncode == 2, result.stderr
    line = _only_line(result.stderr, "evaluate")
    assert "pip install 'qtransfer[hardware]'" in line and "inconsistent" not in line


def test_a_device_too_small_is_exit_2_naming_noise_and_the_sizes(trained):
    pytest.importorskip("qiskit_aer")
    data, cache, runs = trained
    code, _, err = call_cli(["evaluate", runs / "q6", "--data", data, "--noise", "fake_manila", "--cache-dir", cache,
                             "--no-progress"])
    assert code == 2, err
    line = _only_line(err, "evaluate")
    assert "--noise fake_manila: the device has 5 qubits, the circuit needs 6" in line and "inconsistent" not in line


def test_messages_use_the_command_line_spelling(trained, tmp_path):
    data, cache, _ = trained
    argv = tiny_train_args(data, tmp_path / "run", epochs=1, extra=["--cache-dir", cache,
                                                                   "--noise", "depolarizing:p1=0.001"])
    argv[argv.index("--qubits") + 1] = "12"
    code, _, err = call_cli(argv)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("qtransfer train: error: noisy simulation supports up to 7 qubits, got 12; "
                                            "use --noise none (noise=None in Python) or at most 7 --qubits")


# --------------------------------------------------------------------------- case 8
def test_a_closed_pipe_ends_quietly(trained):
    data, cache, runs = trained
    proc = subprocess.Popen([PYTHON, "-m", "qtransfer.cli", "predict", str(runs / "q2"), str(data), "--cache-dir",
                             str(cache), "--no-progress"], env=cli_env(cache), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # `| head -0`: the reader is gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == ""


# --------------------------------------------------------------------------- case 9
@pytest.mark.parametrize("content, message", [
    ("", "is empty; it needs at least a [grid]"),
    ("seeds = 2\n[grid]\n", "[grid] is empty"),
])
def test_empty_sweep_files_and_grids_are_refused(tmp_path, content, message):
    path = tmp_path / "s.toml"
    path.write_text(content)
    code, _, err = call_cli(["sweep", path, "--out", tmp_path / "out", "--no-progress"])
    assert code == 2 and message in _only_line(err, "sweep")
    assert not (tmp_path / "out").exists()


def test_a_folder_given_as_the_sweep_file_is_called_a_folder(tmp_path):
    code, _, err = call_cli(["sweep", tmp_path, "--out", tmp_path / "out", "--no-progress"])
    assert code == 2 and f"{tmp_path} is a folder, not a settings file" in _only_line(err, "sweep")


# --------------------------------------------------------------------------- case 10
def test_paper_blames_the_flag_that_was_given(tmp_path):
    pytest.importorskip("qiskit_aer")
    code, _, err = call_cli(["paper", "qpu", "--noise-aware", "fake_x", "--out", tmp_path / "p", "--no-progress"])
    assert code == 2 and "unknown device 'fake_x' for --noise-aware" in _only_line(err, "paper")
    assert not (tmp_path / "p").exists()


def test_paper_refuses_a_flag_the_experiment_does_not_read(tmp_path):
    code, _, err = call_cli(["paper", "spirals", "--devices", "fake_manila", "--out", tmp_path / "p", "--no-progress"])
    assert code == 2
    assert _only_line(err, "paper").endswith("--devices is an option of paper qpu; spirals does not read it")
    code, _, err = call_cli(["paper", "qc", "--data", "x", "--out", tmp_path / "p", "--no-progress"])
    assert code == 2 and "--data is an option of paper cq and qpu; qc does not read it" in err


def test_devices_without_the_extra_prints_only_the_error(without_qiskit):
    result = _run(["devices"], without_qiskit)
    assert result.returncode == 2 and result.stdout == ""
    assert "pip install 'qtransfer[hardware]'" in _only_line(result.stderr, "devices")

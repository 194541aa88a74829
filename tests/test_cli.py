"""The command line: cheap --help, exit codes, and the small commands (cache, backbones, report)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import PYTHON, REPO, call_cli, cli_env, one_torch_thread, run_cli, session_cache, session_data, tiny_train_args  # noqa: F401
from qtransfer.cli import build_parser, main
from qtransfer.errors import EXIT_CODES

SUBCOMMANDS = ("train", "evaluate", "predict", "compare", "report", "cache", "backbones")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


call = call_cli


_HELP_PROBE = """
import contextlib, io, sys
from qtransfer.cli import main
for argv in [["--help"]] + [[c, "--help"] for c in sys.argv[1:]]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(argv)
        except SystemExit as e:
            assert e.code == 0, (argv, e.code)
    assert "usage: qtransfer" in buf.getvalue(), argv
heavy = sorted(m for m in ("torch", "torchvision", "pennylane", "matplotlib", "scipy") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def test_help_of_every_command_imports_nothing_heavy(tmp_path):
    result = subprocess.run([PYTHON, "-c", _HELP_PROBE, *SUBCOMMANDS], env=cli_env(tmp_path), capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_help_subprocess_with_importtime(tmp_path):
    result = run_cli(["--help"], tmp_path, extra=["-X", "importtime"])
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "130" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "qtransfer.errors" in imported and "qtransfer.config" in imported  # the probe sees qtransfer's imports
    assert not any(name == "torch" or name.startswith("torch.") for name in imported)


def test_subcommand_help_through_python_m(tmp_path):
    result = run_cli(["train", "--help"], tmp_path)
    assert result.returncode == 0 and "usage: qtransfer train" in result.stdout


def test_train_help_shows_the_published_defaults():
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "(default: 0.0004)" in text and "(default: 30)" in text and "(default: 4)" in text
    assert "--resume" in text and "--strict" in text


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: qtransfer" in capsys.readouterr().out


def test_exit_codes_are_documented():
    assert {0, 1, 2, 3, 4, 5, 6, 7, 130, 141} == set(EXIT_CODES)


def test_paper_needs_an_output_directory(capsys):
    """No default folder: a ``./paper/`` made in the working directory would land inside a checkout."""
    with pytest.raises(SystemExit) as info:
        main(["paper", "spirals"])
    assert info.value.code == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_unknown_flag_is_an_argparse_error():
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochz", "3"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["train", "--data", "x"], 2, "train needs --out"),
        (["train", "--out", "{tmp}/r", "--epochs", "0"], 2, "epochs must be an integer >= 1"),
        (["train", "--out", "{tmp}/r", "--head", "mlp"], 2, "unknown head 'mlp'"),
        (["train", "--out", "{tmp}/r", "--config", "{tmp}/missing.toml"], 2, "does not exist"),
        (["train", "--resume", "{tmp}/r", "--epochs", "3"], 2, "drop --epochs"),
        (["train", "--resume", "{tmp}/nothing-here"], 5, "config.json does not exist"),
        (["evaluate", "{tmp}", "--data", "{tmp}"], 5, "model.pt does not exist"),
        (["predict", "{tmp}", "{tmp}/a.png"], 5, "model.pt does not exist"),
        (["report", "{tmp}/nothing-here"], None, ""),
    ],
)
def test_user_errors_exit_with_their_code_and_no_traceback(tmp_path, args, code, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    got, _, err = call(argv + (["--no-progress"] if args[0] in ("train", "evaluate", "predict") else []))
    if code is None:  # the report command's own errors: any documented user-error code, never a crash
        assert got in (2, 3, 5), err
    else:
        assert got == code, err
    assert message in err and "Traceback" not in err
    assert err.startswith(f"qtransfer {args[0]}: error:")


def test_backbones_lists_the_registry():
    code, out, _ = call(["backbones"])
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert names[0] == "resnet18" and "mobilenet_v2" in names
    assert "resnet18" in out and "Mari" in out


def test_backbones_subprocess(tmp_path):
    result = run_cli(["backbones"], tmp_path)
    assert result.returncode == 0 and "mobilenet_v2" in result.stdout


def test_cache_list_and_clear(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    cache = tmp_path / "cache"
    code, _, err = call(tiny_train_args(data, tmp_path / "run", epochs=1, extra=["--cache-dir", cache]))
    assert code == 0, err
    code, out, _ = call(["cache", "list", "--cache-dir", cache])
    listing = json.loads(out)
    assert code == 0 and listing["features"] == 12 and listing["entries"] == 12 and listing["corrupt"] == 0
    assert listing["root"] == str(cache / "features")
    assert listing["backbones"] == {"resnet18 none": 12}
    code, out, _ = call(["cache", "clear", "--cache-dir", cache])
    assert code == 0 and "removed 12" in out
    code, out, _ = call(["cache", "list", "--cache-dir", cache])
    assert json.loads(out)["entries"] == 0


def test_cache_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QTRANSFER_CACHE", str(tmp_path / "envcache"))
    code, out, _ = call(["cache", "list"])
    assert code == 0 and json.loads(out)["root"] == str(tmp_path / "envcache" / "features")


def test_report_command_rewrites_the_report(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    run = tmp_path / "run"
    assert call(tiny_train_args(data, run, epochs=1, extra=["--cache-dir", session_cache(tmp_path_factory)]))[0] == 0
    assert not (run / "report.html").exists()
    code, out, err = call(["report", run])
    assert code == 0, err
    assert (run / "report.html").is_file() and out.strip().endswith("report.html")


def test_a_run_that_failed_before_training_can_be_retried(tmp_path_factory, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    code, _, err = call(tiny_train_args(tmp_path / "no-such-folder", out, epochs=1, extra=["--cache-dir", cache]))
    assert code == 3 and "does not exist" in err
    data = session_data(tmp_path_factory, "flat")
    code, _, err = call(tiny_train_args(data, out, epochs=1, extra=["--cache-dir", cache]))
    assert code == 0, err
    assert (out / "model.pt").is_file()


def test_console_script_waits_passively_at_openmp_barriers_unless_told_otherwise(monkeypatch):
    # spinning OpenMP threads beside busy processes made the worst cold run 21x idle (README, "Speed")
    from qtransfer.cli import configure_process

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    configure_process()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    configure_process()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"

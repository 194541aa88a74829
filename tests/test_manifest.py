"""A run directory's manifest (issue 20, cases 2 and 3): a file cut short, emptied or changed after the run
wrote it is refused by name before it is used; runs without a manifest load with a one-line notice."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import call_cli, one_torch_thread, run_cli, train_tiny_run  # noqa: F401
from qtransfer.manifest import MANIFEST_FILE, RUN_FILES
from qtransfer.paths import sha256_file


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("manifest") / "run"
    data, cache = train_tiny_run(tmp_path_factory, run, epochs=2)
    return data, cache, run


def _copy(run, tmp_path, name="run"):
    return shutil.copytree(run, tmp_path / name)


def _evaluate(run, data, cache):
    return call_cli(["evaluate", run, "--data", data, "--cache-dir", cache, "--no-progress", "--json"])


def _predict(run, data, cache):
    return call_cli(["predict", run, data, "--cache-dir", cache, "--no-progress"])


def test_the_manifest_records_every_file_of_the_run(trained):
    _, _, run = trained
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    assert sorted(manifest["files"]) == sorted(RUN_FILES)
    for name, entry in manifest["files"].items():
        assert entry == {"size": (run / name).stat().st_size, "sha256": sha256_file(run / name)}


@pytest.mark.parametrize("command", [_evaluate, _predict])
def test_an_empty_model_is_called_empty(trained, tmp_path, command):
    data, cache, run = trained
    copy = _copy(run, tmp_path)
    (copy / "model.pt").write_bytes(b"")
    code, out, err = command(copy, data, cache)
    assert code == 5 and out == "", err
    assert err.strip().splitlines() == [f"qtransfer {command.__name__[1:]}: error: {copy / 'model.pt'} is empty "
                                        f"(0 bytes; manifest.json records {(run / 'model.pt').stat().st_size} bytes): "
                                        f"restore it or retrain"]


def test_a_truncated_model_is_called_truncated_not_unsafe(trained, tmp_path):
    data, cache, run = trained
    copy = _copy(run, tmp_path)
    whole = (run / "model.pt").read_bytes()
    (copy / "model.pt").write_bytes(whole[: len(whole) // 2])
    code, _, err = _evaluate(copy, data, cache)
    assert code == 5 and "model.pt is truncated" in err and "arbitrary code" not in err and "Traceback" not in err


def test_a_corrupted_model_is_never_used(trained, tmp_path):
    data, cache, run = trained
    copy = _copy(run, tmp_path)
    raw = bytearray((run / "model.pt").read_bytes())
    start = len(raw) // 2
    raw[start:start + 64] = bytes(b ^ 0xFF for b in raw[start:start + 64])  # same size, 64 bytes flipped
    (copy / "model.pt").write_bytes(bytes(raw))
    for command in (_evaluate, _predict):
        code, out, err = command(copy, data, cache)
        assert code == 5 and out == "", err
        assert "model.pt is corrupted or changed after the run wrote it" in err and "SHA-256" in err


def test_a_run_without_a_manifest_loads_with_a_one_line_notice(trained, tmp_path):
    data, cache, run = trained
    copy = _copy(run, tmp_path)
    (copy / MANIFEST_FILE).unlink()
    result = run_cli(["evaluate", copy, "--data", data, "--cache-dir", cache, "--no-progress", "--json"], cache)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == json.loads(_evaluate(run, data, cache)[1])["accuracy"]
    assert result.stderr.strip().splitlines() == [f"qtransfer: warning: {copy} has no manifest.json (written by an "
                                                  f"older qtransfer, or not finished): its files are loaded unchecked"]
    whole = (run / "model.pt").read_bytes()
    (copy / "model.pt").write_bytes(whole[:1000])  # without a manifest, cut short is still named as such
    code, _, err = _evaluate(copy, data, cache)
    assert code == 5 and "model.pt is truncated or damaged (1000 bytes" in err and "arbitrary code" not in err
    (copy / "model.pt").write_bytes(b"")
    assert "model.pt is empty (0 bytes)" in _evaluate(copy, data, cache)[2]


def test_resume_and_report_check_the_files_they_read(trained, tmp_path):
    _, _, run = trained
    copy = _copy(run, tmp_path)
    raw = bytearray((run / "state.pt").read_bytes())
    raw[-100] ^= 0x01
    (copy / "state.pt").write_bytes(bytes(raw))
    code, _, err = call_cli(["train", "--resume", copy, "--no-progress", "--no-report"])
    assert code == 5 and "state.pt is corrupted" in err, err
    metrics = (run / "metrics.json").read_text()
    (copy / "metrics.json").write_text(metrics.replace('"best_epoch": ', '"best_epoch":  ', 1))
    code, _, err = call_cli(["report", copy])
    assert code == 5 and "metrics.json changed after the run wrote it" in err, err
    assert not (copy / "report.html").exists()


def test_a_resumed_run_writes_a_new_manifest(trained, tmp_path):
    _, cache, run = trained
    copy = _copy(run, tmp_path)
    code, _, err = call_cli(["train", "--resume", copy, "--no-progress", "--no-report", "--cache-dir", cache])
    assert code == 0, err
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    assert sorted(manifest["files"]) == sorted(RUN_FILES)
    assert {n: e["sha256"] for n, e in manifest["files"].items()} == {n: sha256_file(copy / n) for n in RUN_FILES}

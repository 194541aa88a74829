"""The pipeline end to end on tiny images: train -> run directory -> evaluate / predict from it alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import (
    PYTHON,
    call_cli,
    cli_env,
    make_image_folder,
    one_torch_thread,  # noqa: F401 - fixture
    run_cli,
    session_cache,
    session_data,
    tiny_train_args,
    write_bad_image,
)

RUN_FILES = ("config.json", "state.pt", "model.pt", "metrics.json", "predictions.json", "pipeline.json", "skipped.txt")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


call = call_cli


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return session_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def splits_data(tmp_path_factory) -> Path:
    return session_data(tmp_path_factory, "splits", layout="splits")


@pytest.fixture(scope="module")
def flat_data(tmp_path_factory) -> Path:
    return session_data(tmp_path_factory, "flat")


@pytest.fixture(scope="module")
def split_run(tmp_path_factory, splits_data, cache):
    """A quantum run on train/val/test with the report; (run dir, stdout summary)."""
    out = tmp_path_factory.mktemp("runs") / "quantum"
    args = tiny_train_args(splits_data, out, epochs=3, extra=["--cache-dir", cache, "--lr", "0.001"])
    args.remove("--no-report")
    code, stdout, stderr = call(args)
    assert code == 0, stderr
    return out, json.loads(stdout)


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory, splits_data, cache) -> Path:
    """A linear head on the same features: learns the tiny data perfectly."""
    out = tmp_path_factory.mktemp("runs") / "linear"
    code, _, stderr = call(tiny_train_args(splits_data, out, epochs=4, head="linear",
                                           extra=["--cache-dir", cache, "--lr", "0.001"]))
    assert code == 0, stderr
    return out


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_train_writes_the_run_directory(split_run):
    run, summary = split_run
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert summary["run_dir"] == str(run)
    assert {"best_epoch", "val_accuracy", "test_accuracy", "timing"} <= set(summary)


def test_report_html_is_written(split_run):
    run, _ = split_run
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html


def test_pipeline_json_traces_the_first_reported_image_through_the_trained_head(split_run):
    """pipeline.json's numbers are the saved model's, on the first image of the reported (test) split."""
    import torch

    from qtransfer import load_run

    run, _ = split_run
    trace = json.loads((run / "pipeline.json").read_text())
    predictions = json.loads((run / "predictions.json").read_text())
    first = predictions["items"][0]
    assert trace["split"] == predictions["split"] == "test" and trace["image"] == first["path"]
    assert trace["true"] == first["true"] and trace["pred"] == first["pred"] and trace["head"] == "quantum"
    assert [s["name"] for s in trace["stages"]] == ["pre-net", "angles", "measurement", "post-net", "probabilities"]
    model = load_run(run)
    features = torch.tensor(trace["features"], dtype=torch.float32)
    assert len(features) == _metrics(run)["features"]["num_features"]
    probabilities = torch.softmax(model.head(features[None]), -1)[0]
    assert trace["stages"][-1]["values"] == pytest.approx(probabilities.tolist(), abs=1e-5)
    assert max(trace["stages"][-1]["values"]) == pytest.approx(first["probability"], abs=1e-5)
    page = (run / "report.html").read_text(encoding="utf-8")
    assert page.index("The pipeline, with one image flowing through it") < page.index("Training curves")


def test_metrics_json(split_run):
    run, summary = split_run
    m = _metrics(run)
    assert m["classes"] == ["ants", "bees"]
    assert [r["epoch"] for r in m["history"]] == [1, 2, 3]
    for record in m["history"]:
        assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"} <= set(record)
    assert set(m["timing"]) >= {"extract_s", "train_s", "total_s"}
    assert all(v >= 0 for v in m["timing"].values())
    assert m["timing"]["total_s"] >= m["timing"]["train_s"]
    assert m["n_images"] == {"train": 12, "val": 6, "test": 6}
    assert m["val_from_train"] is False and m["n_skipped"] == 0
    assert {"val", "test"} <= set(m["final"])
    for split in ("val", "test"):
        final = m["final"][split]
        assert {"accuracy", "loss", "n_images", "per_class_accuracy", "confusion_matrix"} <= set(final)
        assert sum(map(sum, final["confusion_matrix"])) == m["n_images"][split]
    assert m["backbone"]["backbone"] == "resnet18" and m["backbone"]["weights"] == "none"
    assert summary["test_accuracy"] == m["final"]["test"]["accuracy"]
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 3 and config["n_qubits"] == 2 and config["weights"] == "none"


def test_model_selection_uses_val_and_test_is_reported(split_run):
    run, _ = split_run
    m = _metrics(run)
    val_accs = [r["val_acc"] for r in m["history"]]
    assert m["best_epoch"] == 1 + val_accs.index(max(val_accs))
    assert m["best_val_acc"] == pytest.approx(max(val_accs), abs=1e-12)
    predictions = json.loads((run / "predictions.json").read_text())
    assert predictions["split"] == "test" and len(predictions["items"]) == 6
    for item in predictions["items"]:
        assert "/test/" in item["path"] and item["pred"] in ("ants", "bees") and 0.5 <= item["probability"] <= 1


def test_test_labels_never_choose_the_model(tmp_path, splits_data, cache, linear_run):
    """Swap the test folders' labels: the same model is selected, and test accuracy flips."""
    swapped = tmp_path / "swapped"
    shutil.copytree(splits_data, swapped)
    (swapped / "test" / "ants").rename(swapped / "test" / "tmp")
    (swapped / "test" / "bees").rename(swapped / "test" / "ants")
    (swapped / "test" / "tmp").rename(swapped / "test" / "bees")
    out = tmp_path / "run"
    code, _, err = call(tiny_train_args(swapped, out, epochs=4, head="linear", extra=["--cache-dir", cache, "--lr", "0.001"]))
    assert code == 0, err
    a, b = _metrics(linear_run), _metrics(out)
    assert a["best_epoch"] == b["best_epoch"]
    assert [r["val_acc"] for r in a["history"]] == [r["val_acc"] for r in b["history"]]
    assert a["final"]["test"]["accuracy"] == pytest.approx(1 - b["final"]["test"]["accuracy"], abs=1e-9)
    assert (linear_run / "model.pt").read_bytes() != b""  # both saved
    import torch

    wa = torch.load(linear_run / "model.pt", weights_only=True)["head"]
    wb = torch.load(out / "model.pt", weights_only=True)["head"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_pipeline_learns_separable_images(linear_run):
    m = _metrics(linear_run)
    assert m["final"]["val"]["accuracy"] == 1.0 and m["final"]["test"]["accuracy"] == 1.0


def test_evaluate_json(linear_run, splits_data, cache):
    code, out, err = call(["evaluate", linear_run, "--data", splits_data, "--json", "--cache-dir", cache, "--no-progress"])
    assert code == 0, err
    m = json.loads(out)
    assert {"accuracy", "loss", "n_images", "per_class_accuracy", "confusion_matrix"} <= set(m)
    assert m["split"] == "test" and m["n_images"] == 6 and m["accuracy"] == 1.0
    assert m["per_class_accuracy"] == {"ants": 1.0, "bees": 1.0}
    assert m["confusion_matrix"] == [[3, 0], [0, 3]]
    assert m["accuracy"] == pytest.approx(_metrics(linear_run)["final"]["test"]["accuracy"], abs=1e-9)


def test_evaluate_table_and_split_choice(split_run, splits_data, cache):
    run, _ = split_run
    code, out, err = call(["evaluate", run, "--data", splits_data, "--split", "val", "--cache-dir", cache, "--no-progress"])
    assert code == 0, err
    assert "(val): accuracy" in out and "confusion matrix" in out and "6 images" in out
    table = out[out.index("true \\ predicted"):].splitlines()
    assert table[0].split()[-2:] == ["ants", "bees"]  # every column and row is named by its class
    assert [row.split()[0] for row in table[1:3]] == ["ants", "bees"]
    assert sum(int(v) for row in table[1:3] for v in row.split()[1:]) == 6
    # a plain folder of class folders: every image is evaluated
    code, out, _ = call(["evaluate", run, "--data", splits_data / "train", "--json", "--cache-dir", cache, "--no-progress"])
    assert code == 0 and json.loads(out)["n_images"] == 12


def test_evaluate_on_unknown_classes_is_a_checkpoint_error(split_run, tmp_path, cache):
    run, _ = split_run
    data = make_image_folder(tmp_path / "other", classes=("ants", "wasps"), n_per_class=2)
    code, _, err = call(["evaluate", run, "--data", data, "--cache-dir", cache, "--no-progress"])
    assert code == 5 and "wasps" in err and "Traceback" not in err


def test_predict_files_and_folders(linear_run, splits_data, cache, tmp_path):
    # from the run directory alone: move it away from where it was trained
    moved = tmp_path / "moved"
    shutil.copytree(linear_run, moved)
    image = splits_data / "test" / "bees" / "bees_000.png"
    code, out, err = call(["predict", moved, image, splits_data / "test" / "ants", "--cache-dir", cache, "--no-progress"])
    assert code == 0, err
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert len(lines) == 1 + 3
    assert lines[0][0] == str(image) and lines[0][1] == "bees"
    for path, cls, prob in lines:
        assert cls == Path(path).parent.name
        assert 0.5 <= float(prob) <= 1.0


def test_predict_json_and_a_bad_image(linear_run, splits_data, cache, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(splits_data / "test" / "ants", folder)
    write_bad_image(folder / "broken.png")
    code, out, err = call(["predict", linear_run, folder, "--json", "--cache-dir", cache, "--no-progress"])
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert len(records) == 4
    good = [r for r in records if "error" not in r]
    assert len(good) == 3 and all(r["pred"] == "ants" and 0.5 <= r["probability"] <= 1 for r in good)
    (bad,) = [r for r in records if "error" in r]
    assert bad["path"].endswith("broken.png")


def test_predict_skips_what_train_skips_in_input_order(linear_run, splits_data, cache, tmp_path, monkeypatch):
    """One rule: the placeholder train skips, an empty file, an undecodable one are records with their reason,
    in the place of the input, between the classified images."""
    import hashlib

    from PIL import Image

    from qtransfer.data import discover

    placeholder = tmp_path / "in" / "imageNotFound.gif"
    placeholder.parent.mkdir()
    Image.new("RGB", (20, 10), (250, 250, 250)).save(placeholder)
    data = placeholder.read_bytes()
    monkeypatch.setitem(discover._PLACEHOLDERS, len(data), {hashlib.sha256(data).hexdigest(): "placeholder image (test)"})
    empty = tmp_path / "in" / "empty.jpg"
    empty.write_bytes(b"")
    broken = write_bad_image(tmp_path / "in" / "broken.png")
    ants = splits_data / "test" / "ants" / "ants_000.png"
    bees = splits_data / "test" / "bees" / "bees_000.png"
    inputs = [ants, placeholder, bees, empty, broken, ants]
    code, out, err = call(["predict", linear_run, *inputs, "--json", "--cache-dir", cache, "--no-progress"])
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in inputs]
    assert [r.get("pred") for r in records] == ["ants", None, "bees", None, None, "ants"]
    assert records[1]["error"] == "placeholder image (test)" and records[3]["error"] == "empty file (0 bytes)"
    assert "decoded" in records[4]["error"] or "image" in records[4]["error"]
    # a folder: the same rule, sorted
    code, out, err = call(["predict", linear_run, ants, placeholder.parent, "--json", "--cache-dir", cache, "--no-progress"])
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and [Path(r["path"]).name for r in records] == ["ants_000.png", "broken.png", "empty.jpg",
                                                                    "imageNotFound.gif"]
    assert [("pred" in r) for r in records] == [True, False, False, False]
    # nothing classifiable: exit 3, one line
    code, out, err = call(["predict", linear_run, placeholder.parent, "--cache-dir", cache, "--no-progress"])
    assert code == 3 and len(err.strip().splitlines()) == 1 and "none of the 3 input(s) could be classified" in err


def test_predict_skips_the_shared_placeholder(linear_run, shared_train, cache):
    placeholder = shared_train / "ants" / "imageNotFound.gif"
    if not placeholder.exists():
        pytest.skip(f"{placeholder} is absent")
    code, out, err = call(["predict", linear_run, placeholder, "--cache-dir", cache, "--no-progress"])
    assert code == 3 and "placeholder image" in err


def test_predict_missing_input_is_a_data_error(linear_run, tmp_path, cache):
    code, _, err = call(["predict", linear_run, tmp_path / "nope.png", "--cache-dir", cache, "--no-progress"])
    assert code == 3 and "does not exist" in err


def test_flat_folder_gets_a_stratified_val_split(flat_data, cache, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = call(tiny_train_args(flat_data, out, epochs=1, extra=["--cache-dir", cache]))
    assert code == 0, err
    m = _metrics(out)
    assert m["val_from_train"] is True
    assert m["n_images"] == {"train": 10, "val": 2}  # 20 % of each class of 6
    assert "test" not in m["final"] and json.loads((out / "predictions.json").read_text())["split"] == "val"
    assert not (out / "report.html").exists()  # --no-report


def test_a_bad_image_is_skipped_with_a_warning(tmp_path, cache):
    data = make_image_folder(tmp_path / "data", n_per_class=5)
    bad = write_bad_image(data / "bees" / "zz_broken.png")
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="zz_broken.png"):
        code, _, err = call(tiny_train_args(data, out, epochs=1, extra=["--cache-dir", cache]))
    assert code == 0, err
    assert "skipped" in err
    skipped = (out / "skipped.txt").read_text().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith(str(bad) + "\t")
    m = _metrics(out)
    assert m["n_skipped"] == 1 and sum(m["n_images"].values()) == 10


def test_strict_turns_a_bad_image_into_exit_code_3(tmp_path):
    """A real subprocess: exit code and message, no traceback."""
    data = make_image_folder(tmp_path / "data", n_per_class=3)
    write_bad_image(data / "ants" / "zz_broken.png")
    result = run_cli(tiny_train_args(data, tmp_path / "run", epochs=1, extra=["--strict"]), tmp_path / "cache")
    assert result.returncode == 3, result.stderr
    assert "--strict" in result.stderr and "zz_broken.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_dir_exits_3_without_traceback(tmp_path):
    result = run_cli(tiny_train_args(tmp_path / "no-such-data", tmp_path / "run"), tmp_path / "cache")
    assert result.returncode == 3
    assert "does not exist" in result.stderr and "no-such-data" in result.stderr
    assert "Traceback" not in result.stderr


def test_out_that_holds_a_run_is_refused(split_run, splits_data, cache):
    run, _ = split_run
    before = (run / "model.pt").read_bytes()
    code, _, err = call(tiny_train_args(splits_data, run, extra=["--cache-dir", cache]))
    assert code == 2 and "--resume" in err and "already holds a run" in err
    assert (run / "model.pt").read_bytes() == before


def test_resume_a_finished_run_changes_nothing(tmp_path, flat_data, cache):
    out = tmp_path / "run"
    assert call(tiny_train_args(flat_data, out, epochs=2, extra=["--cache-dir", cache]))[0] == 0
    before = _metrics(out)
    code, _, err = call(["train", "--resume", out, "--cache-dir", cache, "--no-progress", "--no-report"])
    assert code == 0, err
    after = _metrics(out)
    strip = lambda m: [{k: v for k, v in r.items() if k != "seconds"} for r in m["history"]]  # noqa: E731
    assert strip(after) == strip(before) and after["final"] == before["final"]


def test_resume_removes_the_half_written_file_of_a_killed_write(tmp_path, flat_data, cache):
    """SIGKILL during an atomic write leaves '.state.pt.XXXX.tmp' beside the complete state.pt; resume deletes it."""
    out = tmp_path / "run"
    assert call(tiny_train_args(flat_data, out, epochs=2, extra=["--cache-dir", cache]))[0] == 0
    leftover = out / ".state.pt.abc123.tmp"
    leftover.write_bytes(b"half a state")
    unrelated = out / "notes.tmp"  # not an atomic_write temporary: kept
    unrelated.write_text("mine")
    code, _, err = call(["train", "--resume", out, "--cache-dir", cache, "--no-progress", "--no-report"])
    assert code == 0, err
    assert not leftover.exists() and unrelated.exists()
    assert _metrics(out)["history"][-1]["epoch"] == 2


@pytest.mark.slow
def test_shared_hymenoptera_end_to_end(shared_train, mobilenet_weights, tmp_path):
    """The published protocol with MobileNetV2 features on the shared train folder: >= 0.92 val accuracy."""
    cache = tmp_path / "cache"
    run = tmp_path / "run"
    result = run_cli(["train", "--data", shared_train, "--backbone", "mobilenet_v2", "--weights", mobilenet_weights,
                      "--epochs", "30", "--out", run, "--no-progress"], cache, timeout=1800)
    assert result.returncode == 0, result.stderr
    m = _metrics(run)
    assert m["final"]["val"]["accuracy"] >= 0.92
    assert m["n_images"]["train"] + m["n_images"]["val"] >= 240
    assert (run / "report.html").is_file()

    # evaluate and predict need nothing but the run directory (and the images)
    result = run_cli(["evaluate", run, "--data", shared_train, "--json", "--no-progress"], cache)
    assert result.returncode == 0, result.stderr
    ev = json.loads(result.stdout)
    assert ev["n_images"] >= 240 and ev["accuracy"] >= 0.9
    result = run_cli(["predict", run, shared_train / "bees", "--no-progress"], cache)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert len(lines) >= 100
    assert sum(cls == "bees" for _, cls, _ in lines) / len(lines) >= 0.85


def test_random_weights_backbone_is_the_same_in_every_process(flat_data, cache, tmp_path):
    """weights=none must give the same features whatever the global RNG (train, resume and predict agree)."""
    import torch

    from qtransfer.config import TrainConfig
    from qtransfer.pipeline import prepare_features

    config = TrainConfig(data=str(flat_data), weights="none")
    torch.manual_seed(1)
    a = prepare_features(config, cache_dir=tmp_path / "fresh", progress=False)
    torch.manual_seed(2)
    b = prepare_features(config, cache_dir=tmp_path / "fresh", progress=False)
    assert (a.n_computed, b.n_cached, b.n_computed) == (12, 12, 0)
    for split in ("train", "val"):
        assert torch.equal(a.splits[split].x, b.splits[split].x)


def test_a_moved_weights_file_is_named_and_found_again_by_content(flat_data, cache, tmp_path):
    """evaluate after the weights file moved: the error names it; --weights NEW works only with the same content."""
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "resnet18_random.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    run = tmp_path / "run"
    code, _, stderr = call(tiny_train_args(flat_data, run, epochs=1, extra=["--cache-dir", cache, "--weights", weights]))
    assert code == 0, stderr

    moved = tmp_path / "elsewhere" / "renamed.pth"
    moved.parent.mkdir()
    weights.rename(moved)
    code, _, stderr = call(["evaluate", run, "--data", flat_data, "--cache-dir", cache, "--no-progress"])
    assert code == 2 and str(weights) in stderr and "does not exist" in stderr and "--weights FILE" in stderr, stderr

    code, stdout, stderr = call(["evaluate", run, "--data", flat_data, "--weights", moved, "--cache-dir", cache,
                                 "--json", "--no-progress"])
    assert code == 0, stderr
    assert json.loads(stdout)["n_images"] == 12

    other = tmp_path / "other.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)  # another random draw
    code, _, stderr = call(["evaluate", run, "--data", flat_data, "--weights", other, "--cache-dir", cache,
                            "--no-progress"])
    assert code == 5 and "weights" in stderr


def test_a_warm_run_in_a_fresh_process_imports_no_torchvision(flat_data, tmp_path):
    """With every feature cached, `train` neither imports torchvision nor builds the backbone."""
    cache = tmp_path / "cache"
    probe = ("import sys, runpy\n"
             "sys.argv = ['qtransfer', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('qtransfer.cli', run_name='__main__')\n"
             "except SystemExit as e:\n    print('exit', e.code, 'torchvision' in sys.modules)\n")
    for run, expected in (("cold", "True"), ("warm", "False")):
        args = tiny_train_args(flat_data, tmp_path / run, epochs=1)
        result = subprocess.run([PYTHON, "-c", probe, *args], env=cli_env(cache), capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[-3:] == ["exit", "0", expected], result.stdout + result.stderr


def test_a_model_trained_ideally_evaluated_under_noise(split_run, splits_data, cache):
    """evaluate --noise/--shots runs the trained circuit on an emulated noisy device; the weights are the same."""
    run, _ = split_run
    base = ["evaluate", run, "--data", splits_data, "--json", "--cache-dir", cache, "--no-progress"]
    code, out, err = call(base)
    assert code == 0, err
    ideal = json.loads(out)
    assert ideal["noise"] is None and ideal["shots"] is None
    code, out, err = call([*base, "--noise", "depolarizing:p1=0.05,p2=0.2,readout=0.1"])
    assert code == 0, err
    noisy = json.loads(out)
    assert noisy["noise"] == "depolarizing:p1=0.05,p2=0.2,readout=0.1" and noisy["n_images"] == ideal["n_images"]
    assert noisy["loss"] != pytest.approx(ideal["loss"], abs=1e-6)  # the noise reaches the circuit
    code, out, err = call([*base, "--noise", "none", "--shots", "64"])
    assert code == 0, err
    assert json.loads(out)["shots"] == 64
    code, _, err = call([*base, "--noise", "depolarizing:p9=0.1"])
    assert code == 2 and "unknown key 'p9'" in err and "Traceback" not in err


def test_training_under_noise_is_recorded_and_reloaded(tmp_path, flat_data, cache):
    """train --noise: the circuit trains under noise, config.json and model.pt carry it, evaluate reproduces it."""
    out = tmp_path / "noisy"
    noise = "depolarizing:p1=0.01,p2=0.02,readout=0.05"
    code, stdout, err = call(tiny_train_args(flat_data, out, epochs=2, extra=["--cache-dir", cache, "--noise", noise]))
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["noise"] == noise
    code, ev, err = call(["evaluate", out, "--data", flat_data, "--json", "--cache-dir", cache, "--no-progress"])
    assert code == 0, err
    assert json.loads(ev)["noise"] == noise
    code, _, err = call(tiny_train_args(flat_data, tmp_path / "bad", extra=["--cache-dir", cache, "--noise", "loud"]))
    assert code == 2 and "unknown noise 'loud'" in err


def test_a_calibrated_device_in_train_and_evaluate_is_recorded(tmp_path, flat_data, split_run, splits_data, cache):
    """--noise fake_*: noise-aware training and an ideally trained model on an emulated device; metrics
    record the device, its calibration date, the layout and the shots."""
    pytest.importorskip("qiskit_aer", reason="needs the hardware extra")
    out = tmp_path / "device"
    code, _, err = call(tiny_train_args(flat_data, out, epochs=1, extra=["--cache-dir", cache, "--noise", "fake_manila"]))
    assert code == 0, err
    device = json.loads((out / "metrics.json").read_text())["device"]
    assert device["device"] == "fake_manila" and device["calibration"].startswith("2024") and device["shots"] is None
    n_qubits = json.loads((out / "config.json").read_text())["n_qubits"]
    assert len(device["layout"]) == n_qubits and device["gate_counts"]["cx"] > 0
    run, _ = split_run
    base = ["evaluate", run, "--data", splits_data, "--cache-dir", cache, "--no-progress"]
    code, out_text, err = call([*base, "--noise", "fake_belem", "--shots", "256", "--json"])
    assert code == 0, err
    ev = json.loads(out_text)
    assert ev["noise"] == "fake_belem" and ev["shots"] == 256
    assert ev["device"]["device"] == "fake_belem" and ev["device"]["shots"] == 256
    code, text, err = call([*base, "--noise", "fake_belem"])
    assert code == 0 and "calibration 2021-03-15, layout [" in text, err
    code, _, err = call([*base, "--noise", "fake_mars"])
    assert code == 2 and "unknown device 'fake_mars'" in err and "Traceback" not in err


def test_devices_lists_every_device_and_a_missing_extra_is_one_line(monkeypatch, capsys):
    pytest.importorskip("qiskit_aer", reason="needs the hardware extra")
    from qtransfer.cli import main
    from qtransfer.quantum.noise import FAKE_DEVICES

    assert main(["devices", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["device"] for r in rows] == list(FAKE_DEVICES)
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    assert main(["devices"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'qtransfer[hardware]'" in err and "Traceback" not in err

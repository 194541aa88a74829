"""``--backbone timm:NAME``: a small timm model whose random weights the test saves to a file, end to end offline;
preprocessing from the model's data config, bit for bit timm's; the offline message names the file and place."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import PYTHON, REPO, call_cli, cli_env, make_image_folder, one_torch_thread  # noqa: F401 (fixture)

timm = pytest.importorskip("timm")

MODEL = "test_convnext"  # 207k parameters, 160 px, 64 features
FAST = ["--qubits", "2", "--depth", "1", "--lr", "0.05", "--epochs", "3", "--no-progress", "--no-report"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random-weights ``test_convnext`` saved as a state dict (.pth) and as .safetensors."""
    folder = tmp_path_factory.mktemp("timm-weights")
    torch.manual_seed(1)
    model = timm.create_model(MODEL)
    torch.save(model.state_dict(), folder / "convnext.pth")
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(folder / "convnext.safetensors"))
    model.reset_classifier(0)
    return folder, model.eval()


@pytest.mark.parametrize("name", [MODEL, "test_efficientnet"])
def test_preprocessing_is_timms_data_config_bit_for_bit(name):
    from qtransfer.features.backbones import resolve_backbone

    ref = resolve_backbone(f"timm:{name}", "none")
    model = timm.create_model(name, num_classes=0)
    expected = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    prep = ref.image_preprocess()
    rng = np.random.default_rng(0)
    for size in ((311, 203), (160, 160), (90, 400)):
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        assert torch.equal(prep(image), expected(image)), size
    assert ref.num_features == model.num_features and ref.identity["backbone"] == f"timm:{name}"


def test_train_evaluate_predict_offline_on_saved_random_weights(weights, tmp_path, one_torch_thread):
    folder, model = weights
    data = make_image_folder(tmp_path / "data", n_per_class=5)
    for suffix in ("pth", "safetensors"):
        run = tmp_path / f"run-{suffix}"
        code, out, err = call_cli(["train", "--data", data, "--backbone", f"timm:{MODEL}", "--weights",
                                   folder / f"convnext.{suffix}", "--out", run, "--cache-dir", tmp_path / "cache", *FAST])
        assert code == 0, err
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["backbone"]["backbone"] == f"timm:{MODEL}" and metrics["features"]["num_features"] == 64
    # the same weights under two file formats: other identities (file digests), the same features
    first, second = (json.loads((tmp_path / f"run-{s}" / "metrics.json").read_text()) for s in ("pth", "safetensors"))
    assert first["backbone"]["weights"] != second["backbone"]["weights"] and first["features"]["n_computed"] == 10
    code, out, err = call_cli(["evaluate", tmp_path / "run-pth", "--data", data, "--json", "--cache-dir", tmp_path / "cache",
                               "--no-progress"])
    assert code == 0 and json.loads(out)["n_images"] == 10, err
    code, out, err = call_cli(["predict", tmp_path / "run-pth", data / "bees", "--json", "--no-progress",
                               "--cache-dir", tmp_path / "cache"])
    assert code == 0 and len(out.strip().splitlines()) == 5, err

    import qtransfer

    fs = qtransfer.extract_features(data, backbone=f"timm:{MODEL}", weights=str(folder / "convnext.pth"),
                                    cache_dir=tmp_path / "cache", progress=False)
    assert fs.n_cached == 10 and fs.n_computed == 0  # the entries train wrote
    prep = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.no_grad():
        direct = model(torch.stack([prep(Image.open(p).convert("RGB")) for p in fs.paths]))
    torch.testing.assert_close(fs.features, direct, atol=1e-5, rtol=1e-5)  # timm's own forward, timm's transform


def test_bad_names_and_files(weights, tmp_path):
    folder, _ = weights
    data = make_image_folder(tmp_path / "data", n_per_class=3)
    args = ["train", "--data", data, "--out", tmp_path / "r", "--cache-dir", tmp_path / "cache", *FAST]
    code, _, err = call_cli([*args, "--backbone", "timm:no_such_net", "--weights", "none"])
    assert code == 2 and "timm has no model 'no_such_net'" in err
    torch.save({"other": torch.zeros(3)}, tmp_path / "other.pth")
    code, _, err = call_cli([*args, "--backbone", f"timm:{MODEL}", "--weights", tmp_path / "other.pth"])
    assert code == 5 and "is not a state dict of timm's test_convnext" in err
    code, _, err = call_cli([*args, "--backbone", f"timm:{MODEL}", "--weights", "none", "--transform", "published"])
    assert code == 2 and "data config" in err


def test_offline_message_names_the_file_and_the_place(tmp_path):
    data = make_image_folder(tmp_path / "data", n_per_class=3)
    env = dict(cli_env(tmp_path / "cache"), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               TORCH_HOME=str(tmp_path / "torch"))
    result = subprocess.run([PYTHON, "-m", "qtransfer.cli", "train", "--data", str(data), "--backbone", f"timm:{MODEL}",
                             "--out", str(tmp_path / "r"), *FAST], env=env, capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 4, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert str(tmp_path / "hf" / "hub" / "models--timm--test_convnext.r160_in1k") in message
    assert "model.safetensors" in message and "--weights FILE" in message and "pretrained=True" in message

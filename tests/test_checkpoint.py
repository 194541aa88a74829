"""model.pt: a plain-data round trip; anything else (code, garbage, foreign or mismatched files) is refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from helpers import one_torch_thread  # noqa: F401 - fixture
from qtransfer.training.checkpoint import MODEL_FILE, SavedModel, check_compatible, load_model, save_model
from qtransfer.config import TrainConfig
from qtransfer.errors import CheckpointError
from qtransfer.heads import build_head
from qtransfer.training.loop import infer

BACKBONE = {"backbone": "resnet18", "weights": "none", "transform": "published:..."}
CLASSES = ("ants", "bees", "wasps")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _saved(tmp_path: Path, head_kind: str = "quantum") -> tuple[Path, torch.nn.Module, TrainConfig]:
    config = TrainConfig(data="somewhere", head=head_kind, n_qubits=3, depth=2, seed=4, weights="none")
    head = build_head(head_kind, 16, len(CLASSES), **config.head_settings())
    with torch.no_grad():  # weights that differ from a fresh build with the same seed
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = save_model(tmp_path / MODEL_FILE, head, config, CLASSES, BACKBONE, 16, best_epoch=7)
    return path, head, config


@pytest.mark.parametrize("kind", ["quantum", "product", "linear", "classical"])
def test_round_trip_gives_identical_predictions(tmp_path, kind):
    path, head, config = _saved(tmp_path, kind)
    saved = load_model(path)
    assert isinstance(saved, SavedModel)
    assert saved.config == config and saved.classes == CLASSES and saved.backbone == BACKBONE
    assert saved.in_features == 16 and saved.best_epoch == 7
    x = torch.randn(9, 16)
    assert torch.equal(infer(saved.head, x), infer(head, x))
    assert not saved.head.training


def test_load_from_the_run_directory(tmp_path):
    _saved(tmp_path)
    assert load_model(tmp_path).classes == CLASSES


class _MakesMarker:
    """Unpickling this calls open(marker, "w"), which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_checkpoint_that_runs_code_is_refused_before_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    payload = {"format": "qtransfer-model", "version": 1, "config": {}, "evil": _MakesMarker(marker)}
    path = tmp_path / MODEL_FILE
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))

    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert not marker.exists()
    assert "refused" in str(info.value) and str(path) in str(info.value)

    # control: the file really does run code when unpickled without weights_only
    if writer == "pickle":
        pickle.loads(path.read_bytes())["evil"].close()
        assert marker.exists()


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / MODEL_FILE
    path.write_bytes(b"\x00\x01 this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_model(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nothing")


def _rewrite(path: Path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.update(format="someone-elses-model"), "not a qtransfer model checkpoint"),
        (lambda p: p.pop("format"), "not a qtransfer model checkpoint"),
        (lambda p: p.update(version=99), "version 99"),
        (lambda p: p["head"].update({"pre.weight": torch.zeros(5, 16)}), "inconsistent"),
        (lambda p: p.update(classes=["ants", "bees"]), "inconsistent"),  # post layer has 3 outputs
        (lambda p: p.update(in_features=32), "inconsistent"),
        (lambda p: p["config"].update(head="teleport"), "not registered in this process"),
        (lambda p: p.pop("classes"), "inconsistent"),
    ],
)
def test_foreign_or_mismatched_checkpoints_are_refused(tmp_path, change, message):
    path, _, _ = _saved(tmp_path)
    _rewrite(path, change)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_a_plain_state_dict_is_not_a_model(tmp_path):
    path = tmp_path / MODEL_FILE
    torch.save(build_head("linear", 4, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a qtransfer model checkpoint"):
        load_model(path)


def test_check_compatible(tmp_path):
    path, _, _ = _saved(tmp_path)
    saved = load_model(path)
    check_compatible(saved, backbone=dict(BACKBONE), num_features=16, classes=("bees", "ants"))  # subset, any order
    with pytest.raises(CheckpointError, match="trained on backbone 'resnet18' features, not 'mobilenet_v2'"):
        check_compatible(saved, backbone={**BACKBONE, "backbone": "mobilenet_v2"})
    with pytest.raises(CheckpointError, match="weights 'none'"):
        check_compatible(saved, backbone={**BACKBONE, "weights": "IMAGENET1K_V1"})
    with pytest.raises(CheckpointError, match="transform"):
        check_compatible(saved, backbone={**BACKBONE, "transform": "weights:other"})
    with pytest.raises(CheckpointError, match="expects 16 features per image, got 1280"):
        check_compatible(saved, num_features=1280)
    with pytest.raises(CheckpointError, match="moths.*not classes of this model") as info:
        check_compatible(saved, classes=("ants", "moths"), source=" in /data/x")
    assert "/data/x" in str(info.value)


def test_save_is_atomic_and_plain_data(tmp_path):
    path, _, _ = _saved(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_FILE]  # no temporary files left behind
    payload = torch.load(path, weights_only=True)  # loads without unpickling any object
    assert payload["format"] == "qtransfer-model" and payload["classes"] == list(CLASSES)
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in payload["head"].values())


def test_noise_and_shots_can_change_after_training_and_nothing_else(tmp_path):
    from qtransfer.errors import UsageError

    path, head, _ = _saved(tmp_path)
    noisy = load_model(path, overrides={"noise": "depolarizing:p1=0.1,p2=0.2"})
    assert noisy.config.noise == "depolarizing:p1=0.1,p2=0.2" and noisy.head.quantum.noise is not None
    assert all(torch.equal(a, b) for a, b in zip(noisy.head.state_dict().values(), head.state_dict().values()))
    x = torch.randn(5, 16)
    assert not torch.allclose(infer(noisy.head, x), infer(head, x))
    with pytest.raises(UsageError, match="only noise, shots can change after training, not lr"):
        load_model(path, overrides={"lr": 0.1})
    with pytest.raises(UsageError, match="shots must be an integer >= 1"):
        load_model(path, overrides={"shots": 0})

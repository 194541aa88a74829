"""Your own head: qtransfer.train(head=<module or factory>) and register_head, through the same loop and checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from helpers import make_image_folder

import qtransfer
from qtransfer.errors import CheckpointError, UsageError
from qtransfer.heads import build_head, register_head
from qtransfer.heads.registry import HEADS


@pytest.fixture
def data(tmp_path):
    return make_image_folder(tmp_path / "data", n_per_class=6)


@pytest.fixture
def clean_registry():
    before = dict(HEADS)
    yield
    HEADS.clear()
    HEADS.update(before)


def _settings(tmp_path):
    return dict(backbone="resnet18", weights="none", epochs=3, lr=0.05, progress=False, cache_dir=tmp_path / "cache",
                report=False)


class TwoLayer(nn.Module):
    def __init__(self, in_features: int = 512, n_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, 8), nn.Tanh(), nn.Linear(8, n_classes))

    def forward(self, x):
        return self.net(x)


def test_train_with_a_module_then_reload(tmp_path, data, clean_registry):
    module = TwoLayer()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    metrics = qtransfer.train(data, out=tmp_path / "run", head=module, **_settings(tmp_path))
    assert metrics.best_epoch >= 1 and "TwoLayer" in HEADS
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())  # trained a copy
    model = qtransfer.load_run(tmp_path / "run")
    assert isinstance(model.head, TwoLayer)
    assert not torch.equal(model.head.net[0].weight, before["net.0.weight"])  # the copy learned
    trace = json.loads((tmp_path / "run" / "pipeline.json").read_text())  # the drawing's numbers: one block
    assert [s["name"] for s in trace["stages"]] == ["head", "probabilities"]
    assert trace["stages"][0]["operation"] == "TwoLayer"


def test_train_with_a_factory_receives_the_settings_it_names(tmp_path, data, clean_registry):
    seen = {}

    def small_mlp(in_features, n_classes, *, seed, depth):
        seen.update(seed=seed, depth=depth, in_features=in_features)
        return nn.Sequential(nn.Linear(in_features, depth), nn.ReLU(), nn.Linear(depth, n_classes))

    qtransfer.train(data, out=tmp_path / "run", head=small_mlp, depth=5, seed=3, **_settings(tmp_path))
    assert seen == {"seed": 3, "depth": 5, "in_features": 512}
    assert qtransfer.load_run(tmp_path / "run").head[0].out_features == 5


def test_register_head_then_compare_by_name(tmp_path, data, clean_registry):
    register_head("tiny", lambda in_features, n_classes: nn.Linear(in_features, n_classes), description="tiny")
    from qtransfer import api  # `qtransfer.compare` is the submodule once another test imported it

    results = api.compare(data, out=tmp_path / "cmp", heads=["quantum", "tiny"], seeds=2, qubits=2, depth=1,
                                **_settings(tmp_path))
    assert set(results.heads) == {"quantum", "tiny"}
    assert isinstance(build_head("tiny", 7, 3), nn.Linear)


def test_unregistered_head_in_a_checkpoint_is_named(tmp_path, data, clean_registry):
    qtransfer.train(data, out=tmp_path / "run", head=TwoLayer(), **_settings(tmp_path))
    del HEADS["TwoLayer"]
    with pytest.raises(CheckpointError, match="holds a 'TwoLayer' head, which is not registered in this process"):
        qtransfer.load_run(tmp_path / "run")


def test_registration_is_checked(clean_registry):
    with pytest.raises(ValueError, match="'quantum' is already registered"):
        register_head("quantum", lambda i, n: nn.Linear(i, n), replace=True)
    with pytest.raises(ValueError, match="non-empty word"):
        register_head("my head", lambda i, n: nn.Linear(i, n))
    with pytest.raises(UsageError, match="built-in name 'linear'"):
        def linear(i, n):
            return nn.Linear(i, n)
        from qtransfer.api import _register_python_head
        _register_python_head(linear)

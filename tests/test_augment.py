"""``--augment K``: the notebooks' augmentation (torchvision's, bit for bit), seeded views cached once each,
identical across fresh processes; epoch e trains on view (e-1) mod K; validation and test stay centre crops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from helpers import call_cli, make_image_folder, make_split_folder, one_torch_thread, run_cli  # noqa: F401 (fixture)
from qtransfer.features.augment import AugmentViews, draw
from qtransfer.features.cache import FeatureCache
from qtransfer.features.preprocess import ImagePreprocess

FAST = ["--backbone", "resnet18", "--weights", "none", "--qubits", "2", "--depth", "1", "--lr", "0.05",
        "--no-progress", "--no-report"]


def _notebook_train_transform():
    """c2q_transfer_learning_ants_bees.ipynb's data_transforms['train'] with its two augmentation lines uncommented."""
    return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.Resize(256), T.CenterCrop(224),
                      T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


@pytest.mark.parametrize("size", [(457, 301), (224, 224), (40, 31), (600, 20)])  # (600, 20): torchvision's fallback
def test_a_view_is_the_notebooks_transform_bit_for_bit(size):
    rng = np.random.default_rng(size[0])
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    prep, notebook = ImagePreprocess(256, 224), _notebook_train_transform()
    for seed in range(12):
        torch.manual_seed(seed)
        expected = notebook(image)
        top, left, h, w, flip = draw(*image.size, torch.Generator().manual_seed(seed))
        crop = image.crop((left, top, left + w, top + h)).resize((224, 224), Image.Resampling.BILINEAR)
        got = prep(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else crop)
        assert torch.equal(got, expected), (size, seed)


def test_views_are_seeded_by_seed_image_and_index():
    views = AugmentViews(4, seed=0)
    params = [views.crop_params(300, 200, "ab" * 32, v) for v in range(4)]
    assert len(set(params)) == 4  # the views differ
    assert params == [views.crop_params(300, 200, "ab" * 32, v) for v in range(4)]  # and are drawn again alike
    assert params != [AugmentViews(4, seed=1).crop_params(300, 200, "ab" * 32, v) for v in range(4)]
    assert params != [views.crop_params(300, 200, "cd" * 32, v) for v in range(4)]
    assert views.key_text(224, 0) != views.key_text(224, 1) != AugmentViews(4, seed=1).key_text(224, 1)
    with pytest.raises(ValueError, match="views must be an integer >= 1"):
        AugmentViews(0)


def _entries(cache_root):
    cache = FeatureCache(cache_root)
    return {e.key: cache.get(e.key) for e in cache.entries()}


def test_views_are_computed_once_and_bit_identical_across_fresh_runs(tmp_path):
    data = make_image_folder(tmp_path / "data", n_per_class=5)
    runs = []
    for name in ("a", "b"):
        result = run_cli(["train", "--data", data, "--out", tmp_path / f"run-{name}", "--augment", "3",
                          "--epochs", "3", *FAST], tmp_path / f"cache-{name}")
        assert result.returncode == 0, result.stderr
        runs.append(json.loads((tmp_path / f"run-{name}" / "metrics.json").read_text()))
    a, b = (_entries(tmp_path / f"cache-{n}" / "features") for n in ("a", "b"))
    n_train = runs[0]["n_images"]["train"]
    assert n_train == 8 and len(a) == 10 + 3 * n_train  # every image's centre crop, 3 views of each train image
    assert runs[0]["features"]["n_computed"] == len(a) and runs[0]["features"]["n_cached"] == 0
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # two processes, the same bits
    assert [h["train_loss"] for h in runs[0]["history"]] == [h["train_loss"] for h in runs[1]["history"]]
    again = run_cli(["train", "--data", data, "--out", tmp_path / "run-c", "--augment", "3", "--epochs", "3", *FAST],
                    tmp_path / "cache-a")
    assert again.returncode == 0, again.stderr
    warm = json.loads((tmp_path / "run-c" / "metrics.json").read_text())
    assert warm["features"] == {**runs[0]["features"], "n_cached": len(a), "n_computed": 0}
    assert len(_entries(tmp_path / "cache-a" / "features")) == len(a)  # nothing added: each view held once


def test_train_views_validation_and_test_centre_crops(tmp_path, one_torch_thread):
    from qtransfer import TrainConfig
    from qtransfer.pipeline import prepare_features

    data = make_split_folder(tmp_path / "data", n={"train": 4, "val": 2, "test": 2})
    config = TrainConfig(data=str(data), backbone="resnet18", weights="none")
    plain = prepare_features(config, cache_dir=tmp_path / "cache", progress=False)
    views = prepare_features(config.replace(augment=2), cache_dir=tmp_path / "cache", progress=False)
    assert views.n_computed == 2 * 8 and views.n_cached == 16  # only the views were new
    train = views.splits["train"]
    assert train.views.shape == (2, 8, 512) and train.train_x is train.views
    assert not torch.equal(train.views[0], train.views[1]) and not torch.equal(train.views[0], train.x)
    for name in ("train", "val", "test"):
        assert torch.equal(views.splits[name].x, plain.splits[name].x)  # centre crops, unchanged
    assert views.splits["val"].views is None and views.splits["test"].views is None

    import qtransfer

    fs = qtransfer.extract_features(data, backbone="resnet18", weights="none", augment=2, cache_dir=tmp_path / "cache",
                                    progress=False)
    assert fs.n_computed == 2 * 8  # the 8 val and test images' views; the train views came from the cache
    rows = [fs.paths.index(p) for p in train.paths]
    assert torch.equal(fs.views[:, rows], train.views)  # the very views train uses


def test_epoch_e_trains_on_view_e_minus_1_mod_k(monkeypatch):
    from qtransfer.heads import build_head
    from qtransfer.training import loop

    seen = []
    original = loop.run_epoch

    def spy(head, optimizer, x, *args, **kwargs):
        seen.append(int(x[0, 0].item()))
        return original(head, optimizer, x, *args, **kwargs)

    monkeypatch.setattr(loop, "run_epoch", spy)
    views = torch.randn(3, 8, 4)
    views[:, :, 0] = torch.arange(3.0).view(3, 1)  # the view index, readable from the batch
    y = torch.arange(8) % 2
    loop.train_head(build_head("linear", 4, 2), (views, y), (views[0], y), epochs=7, progress=False)
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_compare_and_augment_with_features_file(tmp_path, one_torch_thread):
    data = make_image_folder(tmp_path / "data", n_per_class=5)
    code, out, err = call_cli(["compare", "--data", data, "--heads", "quantum,linear", "--seeds", "2", "--augment", "2",
                               "--epochs", "2", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "cmp", *FAST])
    assert code == 0, err
    assert json.loads((tmp_path / "cmp" / "results.json").read_text())["config"]["augment"] == 2
    np.savez(tmp_path / "f.npz", features=np.eye(4, dtype=np.float32), labels=np.array([0, 1, 0, 1]))
    code, out, err = call_cli(["train", "--features", tmp_path / "f.npz", "--augment", "2", "--out", tmp_path / "r"])
    assert code == 2 and "leave augment 0" in err


def test_paper_cq_trains_on_centre_crops_as_published_and_augments_when_asked(tmp_path, one_torch_thread):
    from qtransfer.paper.cq import CQ_AUGMENT, run_cq

    data = make_image_folder(tmp_path / "data", n_per_class=5)
    tiny = dict(backbone="resnet18", weights="none", epochs=1, n_qubits=2, depth=1, cache_dir=tmp_path / "cache")
    (row,) = run_cq((0,), out=tmp_path / "cq", data=data, **tiny)
    assert CQ_AUGMENT == 0 and row.settings["augment"] == "0" and "commented out" in row.notes
    config = json.loads((tmp_path / "cq" / "quantum-seed0" / "config.json").read_text())
    assert config["augment"] == 0
    (row,) = run_cq((0,), out=tmp_path / "cq-aug", data=data, augment=2, **tiny)
    assert row.settings["augment"] == "2" and "2 augmented views" in row.notes
    metrics = json.loads((tmp_path / "cq-aug" / "linear-seed0" / "metrics.json").read_text())
    assert metrics["features"]["n_cached"] == 10 + 2 * 8  # the quantum head's run computed every view once


def test_an_image_is_decoded_once_for_its_views_and_only_missing_views_are_computed(tmp_path, monkeypatch,
                                                                                    one_torch_thread):
    from qtransfer.features import loading
    from qtransfer.features.backbones import resolve_backbone
    from qtransfer.features.extract import extract_features

    paths = sorted(make_image_folder(tmp_path / "data", n_per_class=3).rglob("*.png"))
    decoded = []
    original = loading.open_image_rgb
    monkeypatch.setattr(loading, "open_image_rgb", lambda path: decoded.append(path) or original(path))
    ref, cache = resolve_backbone("resnet18", "none"), FeatureCache(tmp_path / "cache")
    two = extract_features(paths, ref, cache=cache, augment=AugmentViews(2), progress=False)
    assert two.features.shape == (6, 2, 512) and two.n_computed == 12 and sorted(decoded) == paths
    decoded.clear()
    three = extract_features(paths, ref, cache=cache, augment=AugmentViews(3), progress=False)
    assert three.n_cached == 12 and three.n_computed == 6 and sorted(decoded) == paths
    assert torch.equal(three.features[:, :2], two.features)  # views 0 and 1 read back, view 2 new

"""The Python API: lazy exports, typed results, and the worked example of docs/python-api.md, run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import REPO, make_image_folder, one_torch_thread  # noqa: F401 (a fixture)


def test_import_qtransfer_loads_no_torch():
    code = ("import sys, qtransfer\n"
            "assert callable(qtransfer.train) and 'quantum' in qtransfer.HEADS\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib', 'pennylane') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_export_resolves():
    import qtransfer

    for name in qtransfer.__all__:
        assert getattr(qtransfer, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        qtransfer.trian


def test_train_evaluate_predict_load_run_on_tiny_images(tmp_path):
    import torch

    import qtransfer
    from qtransfer.errors import UsageError
    from qtransfer.results import Evaluation, RunMetrics

    data = make_image_folder(tmp_path / "data", n_per_class=6)
    settings = dict(backbone="resnet18", weights="none", qubits=2, depth=1, epochs=3, lr=0.05, progress=False,
                    cache_dir=tmp_path / "cache", report=False)
    metrics = qtransfer.train(data, out=tmp_path / "run", **settings)
    assert isinstance(metrics, RunMetrics) and metrics.n_computed == 12
    assert RunMetrics.load(tmp_path / "run" / "metrics.json") == metrics
    with pytest.raises(UsageError, match="unknown setting 'qbits'"):
        qtransfer.train(data, out=tmp_path / "other", qbits=2)

    ev = qtransfer.evaluate(tmp_path / "run", data, cache_dir=tmp_path / "cache", progress=False)
    assert isinstance(ev, Evaluation) and ev.metrics.n_images == 12
    preds = qtransfer.predict(tmp_path / "run", data / "bees", cache_dir=tmp_path / "cache", progress=False)
    assert [p["path"] for p in preds] == [str(p) for p in sorted((data / "bees").glob("*.png"))]

    model = qtransfer.load_run(tmp_path / "run")
    assert model.classes == ("ants", "bees") and not model.training
    direct = model.predict_paths([data / "bees"])
    assert [(d["pred"], round(d["probability"], 4)) for d in direct] == [(p["pred"], round(p["probability"], 4)) for p in preds]
    from PIL import Image

    images = torch.stack([model.transform(Image.open(p).convert("RGB")) for p in sorted((data / "bees").glob("*.png"))])
    with torch.no_grad():
        probs = torch.softmax(model(images), -1)
    assert torch.allclose(probs.max(-1).values, torch.tensor([p["probability"] for p in preds]), atol=1e-5)


@pytest.mark.slow
def test_the_worked_example_runs_as_written(shared_train, mobilenet_weights, tmp_path):
    """docs/python-api.md's code, executed from a folder beside ../shared (a link here)."""
    text = (REPO / "docs" / "python-api.md").read_text(encoding="utf-8")
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(shared_train.parents[1])
    env = dict(os.environ, QTRANSFER_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    accuracy = float(re.search(r"validation accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy >= 0.85, result.stdout
    assert sum(line.split()[0] in ("ants", "bees") for line in lines[2:5]) == 3
    assert "vs quantum" in result.stdout and (work / "runs" / "api-compare" / "results.json").is_file()


def test_the_extract_features_doctest_of_docs_python_api(one_torch_thread):
    import doctest

    result = doctest.testfile(str(REPO / "docs" / "python-api.md"), module_relative=False, verbose=False,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_extract_features_equals_what_train_used(tmp_path, one_torch_thread):
    import torch

    import qtransfer
    from qtransfer.pipeline import prepare_features

    data = make_image_folder(tmp_path / "data", n_per_class=5)
    settings = dict(backbone="resnet18", weights="none", cache_dir=tmp_path / "cache", progress=False)
    fs = qtransfer.extract_features(data, **settings)
    assert isinstance(fs, qtransfer.ExtractedFeatures) and fs.n_computed == 10 and len(fs) == 10
    again = qtransfer.extract_features(data, **settings)
    assert again.n_cached == 10 and torch.equal(again.features, fs.features)
    trained = prepare_features(qtransfer.TrainConfig(data=str(data), backbone="resnet18", weights="none"),
                               cache_dir=tmp_path / "cache", progress=False)
    assert trained.n_cached == 10 and trained.n_computed == 0
    row = {p: i for i, p in enumerate(fs.paths)}
    for split in trained.splits.values():
        index = [row[p] for p in split.paths]
        assert torch.equal(split.x, fs.features[index]) and torch.equal(split.y, fs.labels[index])
    x, y = fs.to_numpy()
    assert x.shape == (10, 512) and x.dtype == "float32" and y.tolist() == [0] * 5 + [1] * 5

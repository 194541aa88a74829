"""``--features FILE``: precomputed features (.npz, .npy, .csv, .parquet) through train, compare, sweep,
evaluate and predict, with no backbone; every bad file is one line and exit 3."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import call_cli, one_torch_thread, separable_features  # noqa: F401 (a fixture)
from qtransfer.data.feature_files import load_feature_file
from qtransfer.errors import DataError

FAST = ["--epochs", "3", "--qubits", "2", "--depth", "1", "--lr", "0.05", "--no-progress", "--no-report"]


def _arrays(n_per_class: int = 12, dim: int = 6, seed: int = 0):
    x, y = separable_features(n_per_class, 2, dim, seed=seed)
    names = np.array([f"row{i:03d}" for i in range(len(y))])
    return x.numpy(), np.where(y.numpy() == 0, "cat", "dog"), names


def _csv(path, x, labels, names=None, split=None, label="label"):
    header = ([label] + (["name"] if names is not None else []) + (["split"] if split is not None else [])
              + [f"f{j}" for j in range(x.shape[1])])
    lines = [",".join(header)]
    for i in range(len(x)):
        cells = [labels[i]] + ([names[i]] if names is not None else []) + ([split[i]] if split is not None else [])
        lines.append(",".join([*cells, *(repr(float(v)) for v in x[i])]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _parquet(path, x, labels, names=None, *, as_list=False):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    columns = {"label": pa.array(list(labels))}
    if names is not None:
        columns["name"] = pa.array(list(names))
    if as_list:
        columns["embedding"] = pa.array([list(map(float, row)) for row in x])
    else:
        columns.update({f"f{j}": pa.array(x[:, j].astype(np.float64)) for j in range(x.shape[1])})
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def npz(tmp_path):
    x, labels, names = _arrays()
    path = tmp_path / "emb.npz"
    np.savez(path, features=x, labels=labels, names=names)
    return path


# ---------------------------------------------------------------------------------------------- reading


def test_the_four_formats_read_the_same_table(tmp_path):
    x, labels, names = _arrays()
    np.savez(tmp_path / "a.npz", features=x, labels=labels, names=names)
    structured = np.zeros(len(x), dtype=[("features", "f4", (x.shape[1],)), ("labels", "U8"), ("names", "U8")])
    structured["features"], structured["labels"], structured["names"] = x, labels, names
    np.save(tmp_path / "a.npy", structured)
    _csv(tmp_path / "a.csv", x, labels, names)
    tables = [load_feature_file(tmp_path / f) for f in ("a.npz", "a.npy", "a.csv")]
    if _has_pyarrow():
        tables += [load_feature_file(_parquet(tmp_path / "a.parquet", x, labels, names)),
                   load_feature_file(_parquet(tmp_path / "b.parquet", x, labels, names, as_list=True))]
    for t in tables:
        assert t.classes == ("cat", "dog") and t.names == tuple(names)
        np.testing.assert_array_equal(t.labels, (labels == "dog").astype(int))
        np.testing.assert_allclose(t.features, x, rtol=0, atol=1e-7)
        assert t.features.dtype == np.float32 and t.split is None


def test_integer_labels_and_custom_column_names(tmp_path):
    x, labels, _ = _arrays()
    path = _csv(tmp_path / "e.csv", x, np.where(labels == "cat", "3", "7"), label="target")
    table = load_feature_file(path, label_column="target")
    assert table.classes == ("3", "7") and table.names[0] == "e.csv#0"
    with pytest.raises(DataError, match="no labels.*'label'.*--label-column"):
        load_feature_file(path)
    assert load_feature_file(path, label_column="target").num_features == x.shape[1]


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _bad_files(tmp_path):
    """(file, words its one-line error must hold) for every kind of bad file."""
    x, labels, names = _arrays()
    nan = x.copy()
    nan[3, 2] = np.nan
    inf = x.copy()
    inf[0, 0] = np.inf
    cases = []

    def npz(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    cases.append((npz("nan.npz", features=nan, labels=labels), "NaN or infinite (first at row 3, feature 2)"))
    cases.append((npz("inf.npz", features=inf, labels=labels), "NaN or infinite"))
    cases.append((_csv(tmp_path / "nan.csv", nan, labels), "NaN or infinite"))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("label,f0,f1\ncat,1,2\ndog,3\n")
    cases.append((ragged, "ragged rows: line 3 has 2 fields"))
    np.save(tmp_path / "ragged.npy", np.array([[1.0, 2.0], [3.0]], dtype=object), allow_pickle=True)
    cases.append((tmp_path / "ragged.npy", "ragged rows"))
    cases.append((npz("nolabels.npz", features=x), "has no labels"))
    cases.append((_csv(tmp_path / "nolabels.csv", x, labels, label="y"), "has no labels"))
    blank = tmp_path / "blank.csv"
    blank.write_text("label,f0\ncat,1\n,2\ndog,3\n")
    cases.append((blank, "1 row(s) have no label (first: row 1)"))
    cases.append((npz("oneclass.npz", features=x, labels=np.full(len(x), "cat")), "every row has the label 'cat'"))
    text = tmp_path / "text.csv"
    text.write_text("label,f0,colour\ncat,1,red\ndog,2,blue\n")
    cases.append((text, "column 'colour' is not numeric ('red')"))
    cases.append((npz("dup.npz", features=x, labels=labels, names=np.full(len(x), "same")), "more than one row"))
    if _has_pyarrow():
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"label": ["cat", "dog"], "e": pa.array([[1.0, 2.0], [3.0]])}), tmp_path / "r.parquet")
        cases.append((tmp_path / "r.parquet", "ragged rows"))
        cases.append((_parquet(tmp_path / "nan.parquet", nan, labels), "NaN or infinite"))
    return cases


def test_every_bad_file_is_one_line_and_exit_3(tmp_path):
    for path, words in _bad_files(tmp_path):
        code, out, err = call_cli(["train", "--features", path, "--out", tmp_path / f"run-{path.name}", *FAST])
        assert code == 3, (path, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and words in lines[0], (path, err)
        assert not (tmp_path / f"run-{path.name}" / "model.pt").exists()


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("head", ["quantum", "linear", "classical", "product"])
def test_train_evaluate_predict_on_an_npz_with_every_head(npz, tmp_path, head, one_torch_thread):
    run = tmp_path / "run"
    code, out, err = call_cli(["train", "--features", npz, "--out", run, "--head", head, *FAST, "--epochs", "8"])
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["backbone"]["backbone"] == "features-file" and metrics["features"]["num_features"] == 6
    assert metrics["n_images"] == {"train": 20, "val": 4}  # 20% of each class drawn for validation
    assert json.loads(out)["val_accuracy"] == 1.0  # the blobs are well separated
    code, out, err = call_cli(["evaluate", run, "--features", npz, "--json"])
    assert code == 0, err
    ev = json.loads(out)
    assert ev["n_images"] == 24 and ev["accuracy"] >= 0.9
    code, out, err = call_cli(["predict", run, "--features", npz, "--json"])
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["path"] for r in rows] == [f"row{i:03d}" for i in range(24)]
    assert sum(r["pred"] == ("cat" if i < 12 else "dog") for i, r in enumerate(rows)) >= 22


def test_split_column_decides_the_splits_and_evaluate_uses_test(tmp_path, one_torch_thread):
    x, labels, names = _arrays(12)
    split = np.array((["train"] * 8 + ["val"] * 2 + ["test"] * 2) * 2)
    path = _csv(tmp_path / "s.csv", x, labels, names, split)
    run = tmp_path / "run"
    code, out, err = call_cli(["train", "--features", path, "--out", run, "--head", "linear", *FAST])
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_images"] == {"train": 16, "val": 4, "test": 4} and not metrics["val_from_train"]
    code, out, err = call_cli(["evaluate", run, "--features", path, "--json"])
    assert code == 0 and json.loads(out)["split"] == "test" and json.loads(out)["n_images"] == 4


def test_parquet_and_csv_train_end_to_end(tmp_path, one_torch_thread):
    pytest.importorskip("pyarrow")
    x, labels, names = _arrays()
    for path in (_parquet(tmp_path / "p.parquet", x, labels, names, as_list=True), _csv(tmp_path / "c.csv", x, labels)):
        code, out, err = call_cli(["train", "--features", path, "--out", tmp_path / path.stem, "--head", "linear", *FAST])
        assert code == 0, err


def test_width_mismatch_with_the_saved_run_is_exit_3(npz, tmp_path, one_torch_thread):
    run = tmp_path / "run"
    assert call_cli(["train", "--features", npz, "--out", run, "--head", "linear", *FAST])[0] == 0
    x, labels, _ = _arrays(dim=5)
    wide = tmp_path / "five.npz"
    np.savez(wide, features=x, labels=labels)
    for command in (["evaluate", run, "--features", wide], ["predict", run, "--features", wide]):
        code, out, err = call_cli(command)
        assert code == 3 and len(err.strip().splitlines()) == 1
        assert f"{wide} has 5 features per row; the model was trained on 6" in err
    code, out, err = call_cli(["predict", run, npz])  # an image path for a features run
    assert code == 2 and "--features FILE" in err


def test_compare_and_sweep_on_a_features_file(npz, tmp_path, one_torch_thread):
    code, out, err = call_cli(["compare", "--features", npz, "--heads", "quantum,linear", "--seeds", "2",
                               "--out", tmp_path / "cmp", *FAST])
    assert code == 0, err
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert results["backbone"]["backbone"] == "features-file"
    assert len(results["heads"]["quantum"]["accuracies"]) == 2
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'seeds = 2\n[base]\nfeatures = "{npz}"\nepochs = 2\nn_qubits = 2\ndepth = 1\n'
                     f'[grid]\nhead = ["quantum", "linear"]\n')
    code, out, err = call_cli(["sweep", sweep, "--out", tmp_path / "sw", "--workers", "1", "--no-progress", "--no-report"])
    assert code == 0, err
    lines = (tmp_path / "sw" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["status"] == "ok" for line in lines)


def test_data_and_features_together_is_a_usage_error(npz, tmp_path):
    code, out, err = call_cli(["train", "--features", npz, "--data", tmp_path, "--out", tmp_path / "r", *FAST])
    assert code == 2 and "not both" in err


def test_python_api_takes_features_too(npz, tmp_path, one_torch_thread):
    import qtransfer

    metrics = qtransfer.train(features=npz, out=tmp_path / "run", head="linear", epochs=3, progress=False, report=False)
    assert metrics.num_features == 6
    assert qtransfer.evaluate(tmp_path / "run", features=npz).metrics.n_images == 24
    assert len(qtransfer.predict(tmp_path / "run", features=npz)) == 24


def test_no_backbone_is_built(npz, tmp_path, monkeypatch, one_torch_thread):
    from qtransfer.features import backbones

    def refuse(*args, **kwargs):
        raise AssertionError("a backbone was resolved for a features file")

    monkeypatch.setattr(backbones, "resolve_backbone", refuse)
    code, out, err = call_cli(["train", "--features", npz, "--out", tmp_path / "run", "--head", "linear", *FAST])
    assert code == 0, err

"""TrainConfig: the published defaults, validation messages, config files and their precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qtransfer.config import TrainConfig, load_config_file
from qtransfer.heads.registry import HEADS
from qtransfer.errors import UsageError


def test_defaults_are_the_published_protocol():
    c = TrainConfig()
    assert (c.lr, c.batch_size, c.epochs, c.step_size, c.gamma) == (4e-4, 4, 30, 10, 0.1)
    assert (c.head, c.n_qubits, c.depth, c.q_delta) == ("quantum", 4, 6, 0.01)
    assert (c.embedding, c.layer, c.backbone, c.shots) == ("hadamard_ry", "cnot_ry", "resnet18", None)
    assert set(HEADS) == {"quantum", "product", "linear", "classical"}


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
        (dict(batch_size=True), "batch_size must be an integer >= 1"),
        (dict(n_qubits=2.5), "n_qubits must be an integer >= 1"),
        (dict(depth=-1), "depth must be an integer >= 0"),
        (dict(seed=-3), "seed must be an integer >= 0"),
        (dict(shots=0), "shots must be an integer >= 1"),
        (dict(lr=-0.1), "lr must be a positive number"),
        (dict(lr=float("nan")), "lr must be a positive number"),
        (dict(q_delta=0), "q_delta must be a positive number"),
        (dict(gamma=1.5), "gamma must be in (0, 1]"),
        (dict(val_fraction=1.0), "val_fraction must be between 0 and 1"),
        (dict(head="mlp"), "unknown head 'mlp'; choose one of quantum, linear, classical, product"),
        (dict(device="tpu"), "device must be 'cpu' or 'cuda[:N]'"),
        (dict(embedding="amplitude"), "unknown embedding 'amplitude'"),
        (dict(layer="cz"), "unknown layer 'cz'"),
        (dict(backend="qiskit"), "unknown backend 'qiskit'"),
    ],
)
def test_validation_errors_say_what_is_wrong(changes, message):
    with pytest.raises(UsageError) as info:
        TrainConfig(**changes)
    assert message in str(info.value)


def test_valid_non_default_values_are_accepted():
    c = TrainConfig(depth=0, shots=100, device="cuda:1", backend="pennylane:default.qubit", gamma=1.0)
    assert c.depth == 0 and c.shots == 100


def test_round_trip_through_dict_and_replace():
    c = TrainConfig(epochs=3, head="linear")
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert c.replace(epochs=5).epochs == 5 and c.epochs == 3  # frozen: replace returns a copy
    with pytest.raises(UsageError, match="epochs"):
        c.replace(epochs=-1)


def test_unknown_key_is_refused_and_names_the_source():
    with pytest.raises(UsageError) as info:
        TrainConfig.from_dict({"epochs": 2, "learning_rate": 0.1}, source="exp.toml")
    text = str(info.value)
    assert "exp.toml" in text and "'learning_rate'" in text and "lr" in text  # lists the known settings


def test_qubits_alias_and_dashes():
    c = TrainConfig.from_dict({"qubits": 3, "batch-size": 2})
    assert c.n_qubits == 3 and c.batch_size == 2


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name, text",
    [
        ("exp.toml", 'epochs = 2\nhead = "linear"\nqubits = 3\nlr = 0.01\n'),
        ("exp.yaml", "epochs: 2\nhead: linear\nqubits: 3\nlr: 0.01\n"),
        ("exp.yml", "epochs: 2\nhead: linear\nqubits: 3\nlr: 0.01\n"),
        ("exp.json", json.dumps({"epochs": 2, "head": "linear", "qubits": 3, "lr": 0.01})),
        ("table.toml", '[train]\nepochs = 2\nhead = "linear"\nqubits = 3\nlr = 0.01\n'),
    ],
)
def test_config_files_of_every_format(tmp_path, name, text):
    values = load_config_file(_write(tmp_path / name, text))
    c = TrainConfig.from_dict(values, source=name)
    assert (c.epochs, c.head, c.n_qubits, c.lr) == (2, "linear", 3, 0.01)
    assert c.batch_size == 4  # untouched settings keep the published defaults


def test_unknown_key_in_a_file_is_refused(tmp_path):
    path = _write(tmp_path / "exp.toml", "epochs = 2\nepoch = 3\n")
    with pytest.raises(UsageError, match="unknown setting 'epoch'"):
        TrainConfig.from_dict(load_config_file(path), source=str(path))


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("exp.toml", "epochs = = 2\n", "could not be parsed"),
        ("exp.yaml", "epochs: [2\n", "could not be parsed"),
        ("exp.json", "{epochs: 2", "could not be parsed"),
        ("exp.yaml", "- 1\n- 2\n", "must hold a mapping"),
        ("exp.ini", "epochs=2\n", "use a .toml, .yaml, .yml or .json file"),
    ],
)
def test_bad_config_files(tmp_path, name, text, message):
    path = _write(tmp_path / name, text)
    with pytest.raises(UsageError) as info:
        load_config_file(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_config_file(tmp_path / "nope.toml")


def test_bad_value_in_a_file_is_a_usage_error(tmp_path):
    path = _write(tmp_path / "exp.json", json.dumps({"epochs": "ten"}))
    with pytest.raises(UsageError, match="epochs must be an integer"):
        TrainConfig.from_dict(load_config_file(path))


def test_cli_flags_override_the_config_file(tmp_path):
    """Defaults < --config file < flags, and the resolved value lands in config.json."""
    from helpers import make_image_folder
    from qtransfer.cli import main

    data = make_image_folder(tmp_path / "data", n_per_class=4)
    cfg = _write(tmp_path / "exp.toml", 'epochs = 2\nhead = "linear"\nqubits = 3\nbatch_size = 2\n')
    out = tmp_path / "run"
    code = main(["train", "--config", str(cfg), "--data", str(data), "--weights", "none", "--epochs", "1",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--no-report"])
    assert code == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 1  # the flag wins
    assert saved["head"] == "linear" and saved["n_qubits"] == 3 and saved["batch_size"] == 2  # the file's
    assert saved["lr"] == 4e-4  # the default
    assert Path(saved["data"]).is_absolute()


def test_cli_refuses_unknown_key_in_config(tmp_path, capsys):
    from qtransfer.cli import main

    cfg = _write(tmp_path / "exp.yaml", "epochs: 2\nbogus: 1\n")
    code = main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown setting 'bogus'" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()

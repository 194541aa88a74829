"""Circuits from files and from Python, through QuantumLayer, the dressed head, training, the checkpoint and the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from helpers import REPO, call_cli, make_image_folder

from qtransfer.errors import UsageError
from qtransfer.quantum import Circuit, QuantumLayer, templates
from qtransfer.quantum.circuit_file import circuit_from_data, circuit_to_data, load_circuit_file

EXAMPLES = sorted(p for p in (REPO / "examples" / "circuits").glob("*.toml") if p.stem != "sweep")


def test_the_examples_are_the_four_named_circuits():
    assert {p.stem for p in EXAMPLES} >= {"published", "strongly_entangling", "reuploading", "iqp"}


def test_the_example_sweep_runs_every_example_circuit_against_the_linear_head():
    from qtransfer.sweeps import load_sweep_file

    spec = load_sweep_file(REPO / "examples" / "circuits" / "sweep.toml")
    assert sorted(Path(c).stem for c in spec.grid["circuit"]) == sorted(p.stem for p in EXAMPLES)
    assert tuple(spec.grid["head"]) == ("quantum", "linear")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_files_load_and_round_trip(path):
    c = load_circuit_file(path)
    assert c.name == path.stem and c.n_inputs >= 1
    assert circuit_from_data(circuit_to_data(c)) == c


def test_published_example_is_the_published_circuit(tol64):
    from qtransfer.quantum.circuit import CircuitSpec
    from qtransfer.quantum.simulator import simulate
    from qtransfer.quantum.executor import run_circuit

    c = load_circuit_file(REPO / "examples" / "circuits" / "published.toml")
    x, w = torch.rand(3, 4, dtype=torch.float64), torch.rand(6, 4, dtype=torch.float64)
    torch.testing.assert_close(run_circuit(c, x, w), simulate(CircuitSpec(4, 6), x, w), **tol64)


def test_reuploading_example_uploads_the_inputs_before_every_layer():
    c = load_circuit_file(REPO / "examples" / "circuits" / "reuploading.toml")
    assert c.gate_counts()["RX"] == 3 * 4 and c.weight_shape == (3 * 4 * 3,) and c.n_outputs == 6


@pytest.mark.parametrize("text,message", [
    ('n_qubits = 2\n[[ops]]\ngate = "CCZ"\nwires = [0, 1]\n', "unsupported gate 'CCZ'; supported: Hadamard"),
    ('n_qubits = 2\n[[ops]]\ngate = "CNOT"\nwires = [0, 2]\n', r"wire out of range for 2 qubits"),
    ('n_qubits = 2\nweight_shape = [3]\n[[ops]]\ntemplate = "StronglyEntanglingLayers"\nn_layers = 1\n',
     r"weight_shape \(3,\) holds 3 weights but the circuit reads weight index 5"),
    ('n_qubits = 2\n[[ops]]\ntemplate = "Foo"\n', "unknown template 'Foo'; choose one of AngleEmbedding"),
    ('n_qubits = 2\n[[ops]]\ntemplate = "AngleEmbedding"\nlayers = 2\n', "AngleEmbedding takes rotation, n_features, not layers"),
    ('n_qubits = 2\n[[ops]]\ngate = "RY"\nwires = [0]\nangle = "y[0]"\n', "cannot read the angle 'y\\[0\\]'"),
    ('n_qubits = 2\nmeasure = ["Q0"]\n[[ops]]\ntemplate = "AngleEmbedding"\n', "cannot read observable 'Q0'"),
    ('qubits = 2\n', "unknown key\\(s\\) qubits"),
])
def test_bad_circuit_files_give_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        load_circuit_file(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_config_file_may_hold_the_circuit_inline(tmp_path):
    from qtransfer.config import TrainConfig, load_config_file

    path = tmp_path / "experiment.yaml"
    path.write_text("epochs: 2\ncircuit:\n  n_qubits: 2\n  measure: ['Z0 Z1']\n  ops:\n"
                    "    - {template: AngleEmbedding, rotation: Y}\n    - {gate: CRY, wires: [0, 1], angle: w}\n")
    config = TrainConfig.from_dict(load_config_file(path))
    assert config.circuit["ops"][-1] == {"gate": "CRY", "wires": [0, 1], "params": [{"w": 0}]}
    assert TrainConfig.from_dict(config.to_dict()) == config  # config.json round trip


def test_quantum_layer_runs_any_circuit_and_learns_its_weights():
    c = templates.compose(templates.angle_embedding(3), templates.strongly_entangling_layers(3, 2),
                          measurements=("Z0 Z1", "X2", "0.5*Y0 - Z2"))
    layer = QuantumLayer(circuit=c)
    assert layer.weights.shape == (18,) and layer.n_inputs == 3 and layer.n_outputs == 3
    x = torch.rand(5, 3, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert out.shape == (5, 3) and layer.weights.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"input of shape \(\.\.\., 3\)"):
        layer(torch.zeros(2, 4))
    if importlib.util.find_spec("qiskit_aer") is not None:  # a calibrated device reads the same Pauli words out
        assert QuantumLayer(circuit=c, noise="fake_manila")(x.detach()).shape == (5, 3)


def test_pennylane_backend_runs_the_same_general_circuit(tol64):
    pytest.importorskip("pennylane")
    c = Circuit(2, templates.iqp_embedding(2).ops + templates.basic_entangler_layers(2, 1).ops,
                measurements=("Z0 Z1", "X0"), weight_shape=(1, 2))
    builtin = QuantumLayer(circuit=c, dtype=torch.float64)
    pl = QuantumLayer(circuit=c, backend="pennylane:default.qubit", dtype=torch.float64)
    pl.load_state_dict(builtin.state_dict())
    x = torch.rand(4, 2, dtype=torch.float64)
    torch.testing.assert_close(pl(x), builtin(x), **tol64)


def test_dressed_head_sizes_its_linear_layers_from_the_circuit():
    from qtransfer.heads import DressedQuantumHead, build_head
    from qtransfer.heads.fused_step import fused_step_for

    c = Circuit(3, templates.angle_embedding(3, n_features=2).ops, measurements=("Z0", "Z1 Z2", "X1"))
    head = DressedQuantumHead(16, 4, circuit=c)
    assert (head.pre.out_features, head.post.in_features) == (2, 3) and head(torch.zeros(2, 16)).shape == (2, 4)
    assert fused_step_for(head) is None  # autograd through the general executor
    product = build_head("product", 16, 2, circuit=templates.compose(templates.angle_embedding(2),
                                                                     templates.basic_entangler_layers(2, 2)))
    assert "CNOT" not in product.quantum.circuit.gate_counts()
    classical = build_head("classical", 16, 2, circuit=load_circuit_file(EXAMPLES[0]))
    assert classical.mixing.weights.numel() >= load_circuit_file(EXAMPLES[0]).n_weights


def test_train_with_a_python_circuit_then_reload(tmp_path):
    import qtransfer

    data = make_image_folder(tmp_path / "data", n_per_class=6)
    circuit = templates.reuploading(templates.angle_embedding(2, rotation="Y"),
                                    [templates.strongly_entangling_layers(2, 1) for _ in range(2)],
                                    measurements=("Z0", "Z1", "Z0 Z1"))
    metrics = qtransfer.train(data, out=tmp_path / "run", backbone="resnet18", weights="none", epochs=3, lr=0.05,
                              circuit=circuit, progress=False, cache_dir=tmp_path / "cache", report=False)
    assert metrics.best_epoch >= 1
    model = qtransfer.load_run(tmp_path / "run")
    assert model.head.quantum.circuit == circuit and model.head.post.in_features == 3
    preds = qtransfer.predict(tmp_path / "run", data / "ants", cache_dir=tmp_path / "cache", progress=False)
    direct = model.predict_paths([data / "ants"])
    assert [(d["pred"], round(d["probability"], 4)) for d in direct] == [(p["pred"], round(p["probability"], 4)) for p in preds]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_cli_trains_evaluates_predicts_and_reports_each_example(tmp_path_factory, path):
    root = tmp_path_factory.getbasetemp()
    data = root / "circuit-data"
    if not data.exists():
        make_image_folder(data, n_per_class=6)
    cache, out = root / "circuit-cache", tmp_path_factory.mktemp(path.stem)
    base = ["--backbone", "resnet18", "--weights", "none", "--no-progress", "--cache-dir", cache]
    code, stdout, stderr = call_cli(["train", "--data", data, "--out", out / "run", "--epochs", "2", "--lr", "0.05",
                                     "--circuit", path, *base])
    assert code == 0, stderr
    assert (out / "run" / "figures" / "circuit.png").is_file()
    assert load_circuit_file(path).name in (out / "run" / "report.html").read_text()
    code, stdout, stderr = call_cli(["evaluate", out / "run", "--data", data, "--no-progress", "--cache-dir", cache])
    assert code == 0, stderr
    code, stdout, stderr = call_cli(["predict", out / "run", data / "bees", "--no-progress", "--cache-dir", cache])
    assert code == 0, stderr


def test_cli_refuses_a_bad_circuit_file_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_qubits: 2\nops:\n  - {gate: CCZ, wires: [0, 1]}\n")
    code, _, stderr = call_cli(["train", "--data", tmp_path, "--out", tmp_path / "run", "--circuit", bad])
    assert code == 2 and "unsupported gate 'CCZ'" in stderr and len(stderr.strip().splitlines()) == 1
    huge = tmp_path / "huge.toml"
    huge.write_text('n_qubits = 36\n[[ops]]\ntemplate = "AngleEmbedding"\n')
    code, _, stderr = call_cli(["train", "--data", tmp_path, "--out", tmp_path / "run", "--circuit", huge])
    assert code == 2 and "36-qubit circuit at batch size 4 needs about" in stderr


def test_quantum_layer_with_shots_is_seeded_and_refuses_x_words():
    c = templates.compose(templates.angle_embedding(2), templates.basic_entangler_layers(2, 1), measurements=("Z0 Z1", "Z1"))
    a, b = QuantumLayer(circuit=c, shots=100, seed=4), QuantumLayer(circuit=c, shots=100, seed=4)
    b.load_state_dict(a.state_dict())
    x = torch.rand(3, 2)
    exact = QuantumLayer(circuit=c)
    exact.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), exact(x))
    with pytest.raises(ValueError, match="shots read bit strings"):
        QuantumLayer(circuit=Circuit(2, c.ops, ("X0",), n_inputs=2, weight_shape=c.weight_shape), shots=100)

"""The trainable heads: shapes, architecture, parameter counts, seeding, and what a step changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import one_torch_thread  # noqa: F401 - fixture

from qtransfer.heads import build_head, count_parameters
from qtransfer.heads.dressed import DressedClassicalHead, DressedQuantumHead, LinearHead
from qtransfer.training.optimizer import Adam
from qtransfer.quantum import CircuitSpec
from qtransfer.training.loop import train_step

HEAD_KINDS = ("quantum", "product", "linear", "classical")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.mark.parametrize("kind", HEAD_KINDS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_output_shapes(kind, n_classes):
    head = build_head(kind, 10, n_classes, n_qubits=3, depth=2, seed=0)
    out = head(torch.randn(5, 10))
    assert out.shape == (5, n_classes)
    assert torch.isfinite(out).all()
    assert head(torch.randn(1, 10)).shape == (1, n_classes)


def test_head_types():
    assert isinstance(build_head("quantum", 8, 2, n_qubits=2, depth=1), DressedQuantumHead)
    assert isinstance(build_head("product", 8, 2, n_qubits=2, depth=1), DressedQuantumHead)
    assert isinstance(build_head("linear", 8, 2), LinearHead)
    assert isinstance(build_head("classical", 8, 2, n_qubits=2, depth=1), DressedClassicalHead)


@pytest.mark.parametrize(
    "args, message",
    [(("mlp", 8, 2), "unknown head 'mlp'"), (("quantum", 0, 2), "in_features"), (("linear", 8, 1), "at least 2 classes")],
)
def test_build_head_errors(args, message):
    with pytest.raises(ValueError, match=message):
        build_head(*args)


def test_quantum_head_is_linear_tanh_circuit_linear(tol32):
    head = build_head("quantum", 12, 3, n_qubits=3, depth=2, seed=1)
    x = torch.randn(6, 12)
    angles = torch.tanh(x @ head.pre.weight.T + head.pre.bias) * (math.pi / 2)
    expected = head.post(head.quantum(angles))
    torch.testing.assert_close(head(x), expected, rtol=0.0, atol=tol32["atol"])
    assert head.pre.out_features == 3 and head.post.in_features == 3
    assert head.quantum.spec == CircuitSpec(3, 2, embedding="hadamard_ry", layer="cnot_ry")
    # angles are confined to (-pi/2, pi/2) as in Mari et al.
    assert angles.abs().max() < math.pi / 2


def _ry(t: float) -> np.ndarray:
    c, s = math.cos(t / 2), math.sin(t / 2)
    return np.array([[c, -s], [s, c]])


def test_published_circuit_against_a_hand_written_statevector(tol32):
    """2 qubits, 1 layer: H, RY(x) on each wire, CNOT(0, 1), RY(w) on each wire, <Z_i>."""
    head = build_head("quantum", 4, 2, n_qubits=2, depth=1, q_delta=0.5, seed=3)
    angles = torch.tensor([[0.3, -1.1], [1.2, 0.4]])
    got = head.quantum(angles).detach().numpy()
    w = head.quantum.weights.detach().numpy()[0]
    h = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
    cnot = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    z0, z1 = np.kron(np.diag([1, -1]), np.eye(2)), np.kron(np.eye(2), np.diag([1, -1]))  # wire 0 = high bit
    for row, (a0, a1) in enumerate(angles.tolist()):
        state = np.kron(_ry(a0) @ h @ [1, 0], _ry(a1) @ h @ [1, 0])
        state = np.kron(_ry(w[0]), _ry(w[1])) @ (cnot @ state)
        expected = [state @ z0 @ state, state @ z1 @ state]
        np.testing.assert_allclose(got[row], expected, rtol=0, atol=tol32["atol"])


def test_product_head_has_no_entanglement_and_a_closed_form(tol32):
    head = build_head("product", 6, 2, n_qubits=3, depth=4, q_delta=0.3, seed=2)
    spec = head.quantum.spec
    assert spec.layer == "ry"
    assert spec.entangling_pairs() == ()
    assert not any(g.name.startswith("CNOT") or len(g.wires) > 1 for g in spec.gates())
    x = torch.randn(7, 6)
    angles = torch.tanh(head.pre(x)) * (math.pi / 2)
    # H then RY(a) then RY(w_1) ... RY(w_depth): <Z> = -sin(a + sum_l w_l), wire by wire
    closed = -torch.sin(angles + head.quantum.weights.sum(0))
    torch.testing.assert_close(head.quantum(angles), closed, rtol=0.0, atol=tol32["atol"])
    torch.testing.assert_close(head(x), head.post(closed), rtol=0.0, atol=tol32["atol"])


@pytest.mark.parametrize("n_qubits, depth", [(2, 1), (3, 2), (4, 6)])
def test_classical_head_matches_the_quantum_heads_parameter_count(n_qubits, depth):
    q = build_head("quantum", 32, 2, n_qubits=n_qubits, depth=depth)
    c = build_head("classical", 32, 2, n_qubits=n_qubits, depth=depth)
    assert c.mixing.weights.numel() == depth * n_qubits == q.quantum.weights.numel()
    assert c.mixing.weights.numel() == CircuitSpec(n_qubits, depth).n_weights
    assert count_parameters(c) == count_parameters(q)
    assert count_parameters(q) == (32 * n_qubits + n_qubits) + depth * n_qubits + (n_qubits * 2 + 2)


def test_linear_head_parameter_count():
    assert count_parameters(build_head("linear", 512, 2)) == 512 * 2 + 2


def test_classical_mixing_block_closed_form(tol32):
    head = build_head("classical", 5, 2, n_qubits=3, depth=2, q_delta=0.4, seed=0)
    x = torch.randn(4, 5)
    h = torch.tanh(head.pre(x))
    w = head.mixing.weights
    for layer in range(w.shape[0]):
        h = torch.cos(w[layer]) * h + torch.sin(w[layer]) * h[:, [1, 2, 0]]  # neighbour i+1 mod n
    torch.testing.assert_close(head(x), head.post(torch.tanh(h)), rtol=0.0, atol=tol32["atol"])


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_same_seed_same_init_different_seed_different(kind):
    a = build_head(kind, 16, 2, n_qubits=2, depth=2, seed=7)
    b = build_head(kind, 16, 2, n_qubits=2, depth=2, seed=7)
    c = build_head(kind, 16, 2, n_qubits=2, depth=2, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_seeded_build_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    build_head("quantum", 16, 2, n_qubits=2, depth=2, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_a_training_step_changes_every_head_parameter(kind):
    head = build_head(kind, 8, 2, n_qubits=2, depth=2, seed=0)
    before = {k: v.detach().clone() for k, v in head.named_parameters()}
    optimizer = Adam(head.parameters(), lr=1e-2)
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
    loss, correct = train_step(head, optimizer, x, y)
    assert torch.isfinite(loss) and 0 <= int(correct) <= 4
    for name, p in head.named_parameters():
        assert p.requires_grad
        assert torch.isfinite(p).all(), name
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change"


def test_frozen_backbone_does_not_change_during_training(tmp_path, monkeypatch):
    """The backbone's parameters never require grad, and train_run leaves them exactly as they were."""
    from helpers import make_image_folder

    from qtransfer.features import backbones
    from qtransfer.config import TrainConfig
    from qtransfer.pipeline import train_run

    bb = backbones.create_backbone("resnet18", weights=None)
    assert all(not p.requires_grad for p in bb.parameters())
    bb.train()
    assert not bb.training  # stays in eval mode: batch-norm statistics cannot move

    created = []
    original = backbones.BackboneRef.build

    def spy(self, *args, **kwargs):
        model = original(self, *args, **kwargs)
        created.append((model, {k: v.clone() for k, v in model.state_dict().items()}))
        return model

    monkeypatch.setattr(backbones.BackboneRef, "build", spy)
    data = make_image_folder(tmp_path / "data", n_per_class=4)
    config = TrainConfig(data=str(data), weights="none", head="quantum", n_qubits=2, depth=1, epochs=2)
    train_run(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, report=False, log=lambda m: None)
    assert len(created) == 1
    model, snapshot = created[0]
    assert all(not p.requires_grad for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(after[k], snapshot[k]) for k in snapshot)  # incl. batch-norm running stats


def test_the_registry_is_what_config_cli_and_builder_read(monkeypatch):
    """A registered head is accepted by the config, listed by --help and built by build_head."""
    from qtransfer.cli import build_parser
    from qtransfer.config import TrainConfig
    from qtransfer.errors import UsageError
    from qtransfer.heads.registry import HEADS, HeadInfo, register_head

    assert list(HEADS) == ["quantum", "linear", "classical", "product"]
    monkeypatch.setitem(HEADS, "wide", HeadInfo("wide", "a test head", "qtransfer.heads.dressed:linear_head", "#000000"))
    assert TrainConfig(head="wide").head == "wide"
    assert isinstance(build_head("wide", 8, 3), LinearHead)
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "wide (a test head)" in " ".join(help_text.split())
    with pytest.raises(ValueError, match="already registered"):
        register_head(HEADS["quantum"])
    monkeypatch.delitem(HEADS, "wide")
    with pytest.raises(UsageError, match="unknown head 'wide'; choose one of quantum, linear, classical, product"):
        TrainConfig(head="wide")

"""The hand-derived training step equals autograd: gradients, logits, finite differences, whole runs."""

from __future__ import annotations

import pytest
import torch
from helpers import one_torch_thread, separable_features  # noqa: F401 - fixture
from torch import nn

from qtransfer.heads.fused_step import fused_step_for
from qtransfer.heads import build_head
from qtransfer.training.loop import train_head

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _random_head(kind="quantum", n_features=10, n_classes=2, dtype=F64, **settings):
    head = build_head(kind, n_features, n_classes, seed=1, **settings).to(dtype)
    with torch.no_grad():  # weights far from their small initial values: every gate matters
        for p in head.parameters():
            p.copy_(torch.randn_like(p))
    return head


def _fused(head, x, y):
    """Logits and gradients of the mean cross-entropy by the fused step."""
    step = fused_step_for(head)
    assert step is not None
    b, n_classes = x.shape[0], step.n_classes
    logits = torch.full((b, n_classes), float("nan"), dtype=x.dtype)
    with torch.no_grad():
        step(x, -nn.functional.one_hot(y, n_classes).to(x.dtype) / b, logits)
    return logits, [g.clone() for g in step.grads]


def _autograd(head, x, y):
    logits = head(x)
    loss = nn.functional.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, list(head.parameters()), materialize_grads=True)
    return logits.detach(), list(grads)


CASES = [  # kind, n_qubits, depth, embedding, n_classes, batch
    ("quantum", 4, 6, "hadamard_ry", 2, 4),  # the published head
    ("quantum", 4, 6, "hadamard_ry", 2, 3),  # a partial last batch
    ("quantum", 4, 6, "hadamard_ry", 2, 40),  # more samples than amplitudes
    ("product", 3, 2, "ry", 3, 5),
    ("quantum", 2, 0, "hadamard_ry", 2, 3),  # no layers
    ("quantum", 1, 2, "ry", 2, 2),
    ("quantum", 5, 1, "ry", 4, 1),
    ("quantum", 6, 3, "hadamard_ry", 3, 7),
]


@pytest.mark.parametrize("kind, n_qubits, depth, embedding, n_classes, batch", CASES)
def test_logits_and_gradients_equal_autograd(kind, n_qubits, depth, embedding, n_classes, batch):
    head = _random_head(kind, n_classes=n_classes, n_qubits=n_qubits, depth=depth, embedding=embedding)
    x = torch.randn(batch, 10, dtype=F64)
    y = torch.randint(0, n_classes, (batch,))
    logits, grads = _fused(head, x, y)
    ref_logits, ref_grads = _autograd(head, x, y)
    torch.testing.assert_close(logits, ref_logits, atol=1e-12, rtol=0)
    for (name, _), g, ref in zip(head.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g, ref, atol=1e-12, rtol=0, msg=name)


def test_gradients_match_finite_differences():
    head = _random_head(n_qubits=3, depth=2)
    x = torch.randn(4, 10, dtype=F64)
    y = torch.tensor([0, 1, 1, 0])
    _, grads = _fused(head, x, y)
    eps = 1e-6
    for p, g in zip(head.parameters(), grads):
        for i in range(0, p.numel(), max(1, p.numel() // 5)):  # a few entries of every parameter
            flat = p.data.view(-1)
            value = flat[i].item()
            losses = []
            for shifted in (value + eps, value - eps):
                flat[i] = shifted
                with torch.no_grad():
                    losses.append(nn.functional.cross_entropy(head(x), y).item())
            flat[i] = value
            assert g.view(-1)[i].item() == pytest.approx((losses[0] - losses[1]) / (2 * eps), abs=1e-8)


def test_the_step_changes_neither_parameters_nor_their_grad():
    head = _random_head()
    before = [p.detach().clone() for p in head.parameters()]
    x, y = torch.randn(4, 10, dtype=F64), torch.tensor([0, 1, 0, 1])
    _fused(head, x, y)
    assert all(torch.equal(p, b) for p, b in zip(head.parameters(), before))
    assert all(p.grad is None for p in head.parameters())


def test_workspaces_per_batch_size_do_not_mix():
    """Alternating batch sizes reuse each size's buffers: results stay those of fresh calls."""
    head = _random_head()
    step = fused_step_for(head)
    batches = [(torch.randn(b, 10, dtype=F64), torch.randint(0, 2, (b,))) for b in (4, 3, 4, 3)]
    for x, y in batches:
        logits = torch.empty(x.shape[0], 2, dtype=F64)
        with torch.no_grad():
            step(x, -nn.functional.one_hot(y, 2).to(F64) / x.shape[0], logits)
        ref_logits, ref_grads = _autograd(head, x, y)
        torch.testing.assert_close(logits, ref_logits, atol=1e-12, rtol=0)
        for g, ref in zip(step.grads, ref_grads):
            torch.testing.assert_close(g, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "kind, settings",
    [
        ("linear", {}),
        ("classical", {}),
        ("quantum", {"embedding": "rx"}),
        ("quantum", {"layer": "rot_ring"}),
        ("quantum", {"shots": 100}),
        ("quantum", {"n_qubits": 7, "depth": 1}),
        ("quantum", {"backend": "pennylane:default.qubit", "n_qubits": 2, "depth": 1}),
    ],
)
def test_heads_it_does_not_cover_fall_back_to_autograd(kind, settings):
    assert fused_step_for(build_head(kind, 6, 2, **settings)) is None


def test_frozen_or_mixed_precision_heads_fall_back_to_autograd():
    frozen = build_head("quantum", 6, 2, n_qubits=2, depth=1)
    frozen.pre.weight.requires_grad_(False)
    assert fused_step_for(frozen) is None
    mixed = build_head("quantum", 6, 2, n_qubits=2, depth=1)
    mixed.post.double()
    assert fused_step_for(mixed) is None


def test_a_whole_training_run_matches_autograd():
    """float32, the published head's shape on separable features: same history and weights to rounding."""
    x, y = separable_features(30, 2, dim=32, seed=0)  # 60 samples, batch 4: 15 steps per epoch
    xv, yv = separable_features(8, 2, dim=32, seed=1)
    runs = {}
    for fused in (True, False):
        head = build_head("quantum", 32, 2, n_qubits=4, depth=6, seed=0)
        result = train_head(head, (x, y), (xv, yv), epochs=6, lr=0.01, step_size=3, progress=False, fused=fused)
        runs[fused] = (head, result)
    (fast, fast_result), (ref, ref_result) = runs[True], runs[False]
    assert fast_result.best_epoch == ref_result.best_epoch
    for a, b in zip(fast_result.history, ref_result.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)
        assert (a["train_acc"], a["val_acc"], a["lr"]) == (b["train_acc"], b["val_acc"], b["lr"])
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=0, msg=name)
    assert fast_result.history[-1]["train_loss"] < fast_result.history[0]["train_loss"]

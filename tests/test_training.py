"""train_head: it learns, selects on val only, resumes exactly, and stops cleanly on NaN."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from helpers import one_torch_thread, separable_features
from qtransfer.errors import CheckpointError, TrainingDivergedError
from qtransfer.heads import build_head
from qtransfer.training.loop import infer, loss_and_accuracy, train_head
from qtransfer.training.state import load_state

HEAD = dict(n_qubits=2, depth=2, seed=0)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("kind", ["quantum", "classical", "linear"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_learns_separable_features(kind, n_classes):
    x, y = separable_features(16, n_classes, dim=8, seed=0)
    xv, yv = separable_features(10, n_classes, dim=8, seed=1)
    head = build_head(kind, 8, n_classes, n_qubits=max(2, n_classes), depth=2, seed=0)
    result = train_head(head, (x, y), (xv, yv), epochs=8, lr=0.03, step_size=5, progress=False)
    head.load_state_dict(result.best_state)
    _, acc = loss_and_accuracy(head, xv, yv)
    assert acc > 0.9
    assert result.best_val_acc > 0.9
    assert len(result.history) == 8


def test_history_is_finite_and_follows_the_schedule():
    x, y = separable_features(8, 2, dim=6)
    head = build_head("quantum", 6, 2, **HEAD)
    result = train_head(head, (x, y), (x, y), epochs=5, lr=0.01, step_size=2, gamma=0.5, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    assert [r["lr"] for r in result.history] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025], rel=1e-12)
    for record in result.history:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds"):
            assert math.isfinite(record[key]), (key, record)
    assert all(torch.isfinite(p).all() for p in head.parameters())
    assert all(torch.isfinite(t).all() for t in result.best_state.values())


def test_best_epoch_is_chosen_on_val_only():
    """Same training data and seed, two validation sets: training is identical, the selection follows val."""
    x, y = separable_features(10, 2, dim=6)
    runs = {}
    for name, val_labels in (("honest", y), ("flipped", 1 - y)):
        head = build_head("quantum", 6, 2, **HEAD)
        snapshots = {}

        def keep(record, head=head, snapshots=snapshots):
            snapshots[record["epoch"]] = copy.deepcopy(head.state_dict())

        result = train_head(head, (x, y), (x, val_labels), epochs=6, lr=0.05, progress=False, on_epoch=keep)
        runs[name] = (result, snapshots)
    honest, flipped = runs["honest"][0], runs["flipped"][0]
    assert [r["train_loss"] for r in honest.history] == [r["train_loss"] for r in flipped.history]
    for result, snapshots in runs.values():
        val_accs = [r["val_acc"] for r in result.history]
        assert result.best_epoch == 1 + val_accs.index(max(val_accs))  # first best on ties
        assert result.best_val_acc == max(val_accs)
        _assert_same_state(result.best_state, snapshots[result.best_epoch])
    assert honest.best_val_acc == 1.0 and flipped.best_val_acc < 0.9
    assert flipped.best_epoch < honest.history[-1]["epoch"] or flipped.best_epoch != honest.best_epoch


def test_without_val_the_last_epoch_is_kept():
    x, y = separable_features(6, 2, dim=4)
    head = build_head("linear", 4, 2, seed=0)
    result = train_head(head, (x, y), (x[:0], y[:0]), epochs=3, lr=0.01, progress=False)
    assert result.best_epoch == 3 and math.isnan(result.best_val_acc)
    _assert_same_state(result.best_state, head.state_dict())


@pytest.mark.parametrize("kind", ["quantum", "classical"])
def test_resume_gives_the_uninterrupted_result(tmp_path, kind):
    x, y = separable_features(9, 2, dim=6)  # 18 samples, batch 4: a partial last batch
    xv, yv = separable_features(5, 2, dim=6, seed=1)
    common = dict(epochs=6, batch_size=4, lr=0.02, step_size=2, gamma=0.5, seed=3, progress=False)

    full_head = build_head(kind, 6, 2, **HEAD)
    full = train_head(full_head, (x, y), (xv, yv), state_path=tmp_path / "full.pt", **common)

    part_path = tmp_path / "part.pt"
    first = build_head(kind, 6, 2, **HEAD)
    train_head(first, (x, y), (xv, yv), state_path=part_path, **{**common, "epochs": 4})
    assert load_state(part_path)["epoch"] == 4

    resumed_head = build_head(kind, 6, 2, **HEAD)
    torch.manual_seed(1234)  # the global generator must not matter
    resumed = train_head(resumed_head, (x, y), (xv, yv), state_path=part_path, resume=True, **common)

    assert _without_seconds(resumed.history) == _without_seconds(full.history)
    assert (resumed.best_epoch, resumed.best_val_acc) == (full.best_epoch, full.best_val_acc)
    _assert_same_state(resumed.best_state, full.best_state)
    _assert_same_state(resumed_head.state_dict(), full_head.state_dict())
    assert load_state(part_path)["epoch"] == 6


def test_resume_without_state_is_a_checkpoint_error(tmp_path):
    x, y = separable_features(4, 2, dim=4)
    head = build_head("linear", 4, 2)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_head(head, (x, y), (x, y), epochs=2, state_path=tmp_path / "none.pt", resume=True, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        load_state(tmp_path / "junk.pt")


def test_a_state_from_another_version_is_refused_with_the_fix(tmp_path):
    x, y = separable_features(4, 2, dim=4)
    head = build_head("quantum", 4, 2, **HEAD)
    path = tmp_path / "state.pt"
    train_head(head, (x, y), (x, y), epochs=1, state_path=path, progress=False)
    state = torch.load(path, weights_only=True)
    state["version"] = 1  # held torch.optim's Adam and StepLR states
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="another version of qtransfer.*without --resume"):
        train_head(head, (x, y), (x, y), epochs=2, state_path=path, resume=True, progress=False)


def test_huge_learning_rate_diverges_with_a_clear_error():
    x, y = separable_features(6, 2, dim=4)
    head = build_head("quantum", 4, 2, **HEAD)
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch \d+: loss is nan.*smaller --lr \(now 1e\+30\)"):
        train_head(head, (x, y), (x, y), epochs=3, lr=1e30, progress=False)


def test_infinite_features_diverge():
    x, y = separable_features(6, 2, dim=4)
    x[3, 1] = float("inf")
    head = build_head("quantum", 4, 2, **HEAD)
    with pytest.raises(TrainingDivergedError, match="nan|inf"):
        train_head(head, (x, y), (x, y), epochs=2, lr=0.01, progress=False)


def test_divergence_keeps_the_last_good_state(tmp_path):
    """NaN appears in epoch 3: the error names epoch 2, and state.pt holds epoch 2 and still resumes."""
    x, y = separable_features(6, 2, dim=4)
    head = build_head("quantum", 4, 2, **HEAD)
    state_path = tmp_path / "state.pt"

    def poison(record):
        if record["epoch"] == 2:
            with torch.no_grad():
                head.pre.weight.fill_(float("nan"))

    with pytest.raises(TrainingDivergedError) as info:
        train_head(head, (x, y), (x, y), epochs=4, lr=0.01, state_path=state_path, progress=False, on_epoch=poison)
    assert "epoch 3" in str(info.value) and "epoch 2" in str(info.value) and str(state_path) in str(info.value)
    state = load_state(state_path)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert all(torch.isfinite(t).all() for t in state["head"].values())
    fresh = build_head("quantum", 4, 2, **HEAD)
    result = train_head(fresh, (x, y), (x, y), epochs=4, lr=0.01, state_path=state_path, resume=True, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert all(math.isfinite(r["train_loss"]) for r in result.history)


def test_infer_and_loss_and_accuracy():
    x, y = separable_features(5, 2, dim=4)
    head = build_head("linear", 4, 2, seed=0)
    logits = infer(head, x, batch_size=3)  # batched the same as unbatched
    torch.testing.assert_close(logits, head(x), rtol=0, atol=1e-6)
    assert not head.training
    loss, acc = loss_and_accuracy(head, x, y)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(head(x), y).item(), abs=1e-6)
    assert acc == pytest.approx((head(x).argmax(-1) == y).float().mean().item(), abs=1e-9)
    assert infer(head, x[:0]).shape[0] == 0


def test_no_training_samples_is_refused():
    x, y = separable_features(2, 2, dim=4)
    with pytest.raises(ValueError, match="no training samples"):
        train_head(build_head("linear", 4, 2), (x[:0], y[:0]), (x, y), epochs=1, progress=False)


def test_training_and_inference_run_on_one_thread_and_restore_the_callers():
    """A head's tensors are tiny: one intra-op thread while training and inferring, the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x, y = torch.randn(12, 6), torch.arange(12) % 2
        seen = []
        head = build_head("quantum", 6, 2, n_qubits=2, depth=1)
        train_head(head, (x, y), (x, y), epochs=2, progress=False, on_epoch=lambda r: seen.append(torch.get_num_threads()))
        assert seen == [1, 1] and torch.get_num_threads() == 2
        original = head.forward
        head.forward = lambda f: (seen.append(torch.get_num_threads()), original(f))[1]
        infer(head, x)
        assert seen[-1] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

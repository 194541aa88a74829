"""Training a head on cached features: small named steps, a per-epoch history, resumable.

The loop (published protocol): each epoch shuffles the training features with a seeded
generator, takes Adam steps on mini-batches with cross-entropy, steps the StepLR
schedule, then measures the validation split; the weights of the epoch with the best
validation accuracy (first one on ties) are kept. Model selection sees only the
validation split, never a test split.

A step's gradient comes from :mod:`qtransfer.heads.fused_step` (hand-derived, for the dressed
quantum head on the built-in simulator) or from autograd (every other head); the update
from :class:`qtransfer.training.optimizer.Adam` (PyTorch's Adam kernel, without ``torch.optim``'s
fixed costs). Both choices give the same numbers as ``loss.backward()`` and
``torch.optim.Adam`` to float rounding; they exist because a step of the published head
is so small that fixed per-operation costs are all its time.

After every completed epoch the whole training state (head, optimizer, schedule,
shuffling generator, best weights, history) is written atomically to ``state_path``;
:func:`train_head` with ``resume=True`` continues from it and ends with exactly the
weights and metrics an uninterrupted run would have.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from qtransfer.errors import TrainingDivergedError
from qtransfer.heads.fused_step import FusedQuantumHeadStep, fused_step_for
from qtransfer.training.optimizer import Adam
from qtransfer.training.state import load_state, sampler_states, save_state, set_sampler_states

__all__ = ["TrainResult", "train_head", "train_step", "run_epoch", "infer", "loss_and_accuracy", "one_intra_op_thread"]



@dataclass
class TrainResult:
    """What a training run produced: the selected weights and the per-epoch history."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_acc: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def train_step(head: nn.Module, optimizer: Adam, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Adam step on a mini-batch by autograd; returns (summed loss, number correct) as tensors (no sync)."""
    logits = head(x)
    loss = nn.functional.cross_entropy(logits, y)
    optimizer.step(list(torch.autograd.grad(loss, optimizer.params, materialize_grads=True)))
    with torch.no_grad():
        return loss.detach() * y.shape[0], (logits.argmax(-1) == y).sum()


def run_epoch(
    head: nn.Module,
    optimizer: Adam,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    *,
    step: FusedQuantumHeadStep | None = None,
) -> tuple[float, float]:
    """One pass over shuffled training data; returns (mean loss, accuracy).

    ``step``, the :func:`~qtransfer.heads.fused_step.fused_step_for` of ``head``, takes hand-derived
    gradient steps (the same numbers as autograd's to float rounding, several times faster);
    without it every step is :func:`train_step`.
    """
    head.train()
    order = torch.randperm(x.shape[0], generator=generator).to(x.device)
    if step is not None:
        return _run_fused_epoch(step, optimizer, x[order], y[order], batch_size)
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    total_correct = torch.zeros((), dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], batch_size):
        idx = order[start : start + batch_size]
        loss, correct = train_step(head, optimizer, x[idx], y[idx])
        total_loss += loss
        total_correct += correct
    n = x.shape[0]
    return total_loss.item() / n, total_correct.item() / n


@torch.no_grad()
def _run_fused_epoch(
    step: FusedQuantumHeadStep, optimizer: Adam, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    """An epoch of fused steps over already shuffled ``x``, ``y``; the logits of every step are kept
    and the epoch's loss and accuracy computed from them at the end (one synchronisation)."""
    n, n_classes = x.shape[0], step.n_classes
    starts = range(0, n, batch_size)
    sizes = torch.tensor([min(batch_size, n - s) for s in starts], device=x.device)
    neg_target = nn.functional.one_hot(y, n_classes).to(x.dtype).div_(-sizes.repeat_interleave(sizes)[:, None])
    logits = torch.empty(n, n_classes, dtype=x.dtype, device=x.device)
    for start in starts:
        end = start + batch_size
        step(x[start:end], neg_target[start:end], logits[start:end])
        optimizer.step(step.grads)
    loss = nn.functional.cross_entropy(logits, y, reduction="sum").item() / n
    return loss, (logits.argmax(-1) == y).sum().item() / n


@torch.no_grad()
def infer(head: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits for features ``x`` in evaluation mode (one intra-op thread)."""
    head.eval()
    if x.shape[0] == 0:
        return torch.empty(0, 0, device=x.device)
    with one_intra_op_thread():
        return torch.cat([head(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def loss_and_accuracy(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``head`` on features ``x`` with labels ``y``."""
    logits = infer(head, x)
    loss = nn.functional.cross_entropy(logits, y).item()
    return loss, (logits.argmax(-1) == y).float().mean().item()


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the block with one intra-op thread, then restore the caller's setting.

    A head's tensors are a few hundred elements: splitting them across threads costs more
    than it saves, and torch's thread pool spin-waits, so on a machine where another
    process keeps a core busy every operation waits for the descheduled thread
    (``benchmarks/end_to_end.py`` measures training idle and next to a busy process).
    The backbone's pass, which is large, keeps every thread.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class _Selection:
    """Model selection so far: the best epoch's weights and accuracy, and the history."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int = 0
    best_acc: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)

    def update(self, head: nn.Module, record: dict[str, float]) -> None:
        self.history.append(record)
        if math.isfinite(record["val_acc"]) and record["val_acc"] > self.best_acc:  # first best epoch on ties
            self.best_acc, self.best_epoch = record["val_acc"], int(record["epoch"])
            self.best_state = copy.deepcopy(head.state_dict())


def _resume(state_path: Path | None, head: nn.Module, optimizer: Adam, generator: torch.Generator) -> tuple[int, _Selection]:
    """Load the saved training state into ``head``, ``optimizer`` and ``generator``; (last epoch, selection)."""
    if state_path is None:
        raise ValueError("resume=True needs state_path")
    state = load_state(state_path)
    head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["shuffle_rng"])
    set_sampler_states(head, state.get("sampler_rng", []))
    best = state["best"]
    return state["epoch"], _Selection(best["head"], best["epoch"], best["val_acc"], list(state["history"]))


def _check_finite(epoch: int, train_loss: float, val_loss: float, has_val: bool, state_path: Path | None, lr: float) -> None:
    if math.isfinite(train_loss) and (not has_val or math.isfinite(val_loss)):
        return
    where = f"; the last good state (epoch {epoch - 1}) is kept in {state_path}" if state_path else ""
    raise TrainingDivergedError(
        f"training diverged at epoch {epoch}: loss is {train_loss if not math.isfinite(train_loss) else val_loss}"
        f"{where}. Try a smaller --lr (now {lr})."
    )


def train_head(
    head: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int = 30,
    batch_size: int = 4,
    lr: float = 4e-4,
    step_size: int = 10,
    gamma: float = 0.1,
    seed: int = 0,
    state_path: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    fused: bool = True,
) -> TrainResult:
    """Train ``head`` (Adam + StepLR + cross-entropy) and select the best epoch on ``val``.

    ``train``'s features are ``(N, F)``, or ``(K, N, F)``: K augmented views of each image, of
    which epoch ``e`` (from 1) trains on view ``(e - 1) % K``, shuffled like the single view.

    ``fused`` (default) takes the hand-derived step of :mod:`qtransfer.heads.fused_step` where it
    applies (the dressed quantum head on the built-in simulator); ``False`` forces autograd.
    Runs on one intra-op thread (:func:`one_intra_op_thread`).

    Example:
        >>> from qtransfer.heads import build_head
        >>> x, y = torch.randn(16, 8), torch.arange(16) % 2
        >>> result = train_head(build_head("linear", 8, 2), (x, y), (x, y), epochs=3, progress=False)
        >>> len(result.history), result.best_epoch in (1, 2, 3)
        (3, True)
    """
    x_train, y_train = train
    x_val, y_val = val
    views = x_train if x_train.dim() == 3 else x_train.unsqueeze(0)
    if views.shape[1] == 0:
        raise ValueError("no training samples")
    has_val = x_val.shape[0] > 0
    optimizer = Adam(head.parameters(), lr=lr)
    step = fused_step_for(head) if fused else None
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    last_epoch, selection = 0, _Selection(copy.deepcopy(head.state_dict()))
    started = time.perf_counter()
    with one_intra_op_thread():
        if resume:
            last_epoch, selection = _resume(state_path, head, optimizer, generator)
        bar = _progress(range(last_epoch + 1, epochs + 1), epochs, last_epoch, progress)
        for epoch in bar:
            t0 = time.perf_counter()
            lr_now = optimizer.lr
            x_epoch = views[(epoch - 1) % views.shape[0]]
            train_loss, train_acc = run_epoch(head, optimizer, x_epoch, y_train, batch_size, generator, step=step)
            optimizer.decay(epoch, step_size, gamma)  # StepLR
            val_loss, val_acc = loss_and_accuracy(head, x_val, y_val) if has_val else (math.nan, math.nan)
            _check_finite(epoch, train_loss, val_loss, has_val, state_path, lr)
            record = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                          lr=lr_now, seconds=time.perf_counter() - t0)
            selection.update(head, record)
            if state_path is not None:
                save_state(state_path, {
                    "epoch": epoch, "head": head.state_dict(), "optimizer": optimizer.state_dict(),
                    "shuffle_rng": generator.get_state(), "sampler_rng": sampler_states(head),
                    "best": {"epoch": selection.best_epoch, "val_acc": selection.best_acc, "head": selection.best_state},
                    "history": selection.history,
                })
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{train_acc:.3f}", val_acc=f"{val_acc:.3f}")
            if on_epoch is not None:
                on_epoch(record)
    if not has_val:  # nothing to select on: keep the last epoch
        selection = _Selection(copy.deepcopy(head.state_dict()), epochs, math.nan, selection.history)
    return TrainResult(selection.best_state, selection.best_epoch, selection.best_acc, selection.history,
                       time.perf_counter() - started)


def _progress(iterable, total: int, initial: int, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, initial=initial, desc="train", unit="epoch", leave=False, dynamic_ncols=True)

"""Metrics of a trained head, and ``evaluate`` / ``predict`` from a run directory alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from qtransfer.errors import DataError
from qtransfer.results import SplitMetrics
from qtransfer.training.loop import infer

__all__ = ["classification_metrics", "evaluate_features", "prediction_records", "input_records"]


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> SplitMetrics:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix (rows: true, columns: predicted).

    Example:
        >>> m = classification_metrics(torch.tensor([[2., 0.], [0., 1.]]), torch.tensor([0, 0]), ["ants", "bees"])
        >>> m.accuracy, m.confusion_matrix
        (0.5, ((1, 1), (0, 0)))
    """
    n_classes = len(classes)
    labels = labels.to(logits.device)
    n = int(labels.shape[0])
    if n == 0:
        return SplitMetrics(float("nan"), float("nan"), 0, {c: None for c in classes},
                            tuple((0,) * n_classes for _ in classes))
    pred = logits.argmax(-1)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    confusion.index_put_((labels.cpu(), pred.cpu()), torch.ones(n, dtype=torch.long), accumulate=True)
    per_class = {}
    for i, name in enumerate(classes):
        total = int(confusion[i].sum())
        per_class[name] = float(confusion[i, i]) / total if total else None
    return SplitMetrics(float((pred == labels).float().mean()), float(nn.functional.cross_entropy(logits, labels)), n,
                        per_class, tuple(tuple(row) for row in confusion.tolist()))


def evaluate_features(head: nn.Module, features: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> SplitMetrics:
    """:func:`classification_metrics` of ``head`` on a feature matrix."""
    device = next(head.parameters()).device
    return classification_metrics(infer(head, features.to(device)), labels.to(device), classes)


def input_records(head: nn.Module, inputs: Sequence[tuple[Path, str | None]], classes: Sequence[str],
                  extract: Callable[[list[Path]], Any]) -> list[dict[str, Any]]:
    """One record per input, in input order: :func:`prediction_records`'s for an image that could be
    classified, ``{"path", "error"}`` for one that could not (its reason from ``inputs``, from
    :func:`~qtransfer.data.discover.image_inputs`, or from the extraction). ``extract(paths)`` returns
    an :class:`~qtransfer.features.extract.Extraction` of ``paths``. A :class:`DataError` when none
    could be classified.
    """
    usable = [p for p, reason in inputs if reason is None]
    predicted: dict[int, dict[str, Any]] = {}
    failed: dict[int, str] = {}
    if usable:
        extraction = extract(usable)
        records = prediction_records(head, extraction.features, [usable[i] for i in extraction.ok], classes)
        predicted = dict(zip(extraction.ok, records))
        reasons = {str(p): r for p, r in extraction.failures}
        failed = {i: reasons.get(str(p), "not used") for i, p in enumerate(usable) if i not in predicted}
    out: list[dict[str, Any]] = []
    k = 0
    for path, reason in inputs:
        if reason is None:
            out.append(predicted[k] if k in predicted else {"path": os.fspath(path), "error": failed[k]})
            k += 1
        else:
            out.append({"path": os.fspath(path), "error": reason})
    if not predicted:
        first = out[0]
        raise DataError(f"none of the {len(out)} input(s) could be classified (e.g. {first['path']}: {first['error']})")
    return out


def prediction_records(head: nn.Module, features: torch.Tensor, paths: Sequence[Path], classes: Sequence[str],
                       labels: torch.Tensor | None = None) -> list[dict[str, Any]]:
    """One record per image: path, predicted class and its probability (and the true class when known)."""
    device = next(head.parameters()).device
    probs = torch.softmax(infer(head, features.to(device)), dim=-1).cpu() if len(paths) else torch.empty(0, len(classes))
    records = []
    for i, path in enumerate(paths):
        k = int(probs[i].argmax())
        record: dict[str, Any] = {"path": os.fspath(path), "pred": classes[k], "probability": round(float(probs[i, k]), 6)}
        if labels is not None:
            record["true"] = classes[int(labels[i])]
        records.append(record)
    return records

"""One image through a trained head, stage by stage: the numbers the run report's pipeline drawing shows.

:func:`trace_head` runs one feature vector through a head's own modules and returns what
comes out of each block, in order (the same arithmetic as the head's ``forward``, which a
test holds it to):

* ``quantum`` / ``product`` (:class:`~qtransfer.heads.dressed.DressedQuantumHead`): pre-net
  ``Linear(F->n)``, ``tanh * pi/2`` (the embedding angles), the circuit's measurements
  (``<Z_i>`` of the published family), post-net ``Linear(n->classes)`` (logits), softmax;
* ``classical`` (:class:`~qtransfer.heads.dressed.DressedClassicalHead`): pre-net, ``tanh``,
  the mixing block, post-net, softmax;
* ``linear`` (:class:`~qtransfer.heads.dressed.LinearHead`): ``Linear(F->classes)``, softmax;
* any other head (registered from Python): the head as one block, softmax.

:func:`pipeline_record` wraps that with the image, its classes and the backbone into the
``pipeline.json`` a run directory holds.

Example:
    >>> import torch
    >>> from qtransfer.heads import build_head
    >>> head = build_head("quantum", in_features=8, n_classes=2, n_qubits=3, depth=1, seed=0)
    >>> [(s.name, len(s.values)) for s in trace_head(head, torch.ones(8))]
    [('pre-net', 3), ('angles', 3), ('measurement', 3), ('post-net', 2), ('probabilities', 2)]
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from qtransfer.heads.dressed import DressedClassicalHead, DressedQuantumHead, LinearHead

__all__ = ["PIPELINE_SCHEMA", "Stage", "pipeline_record", "trace_head"]

PIPELINE_SCHEMA = "qtransfer-pipeline"


@dataclass(frozen=True)
class Stage:
    """A block of the head: its name, the operation it applies, and the values it hands on."""

    name: str
    operation: str
    values: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "operation": self.operation, "values": [_round(v) for v in self.values]}


def _round(v: float) -> float:
    return float(f"{v:.6g}")


def _values(t: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(v) for v in t.detach().reshape(-1).cpu().tolist())


def _linear(layer: nn.Linear) -> str:
    return f"Linear({layer.in_features}→{layer.out_features})"


@torch.no_grad()
def trace_head(head: nn.Module, features: torch.Tensor) -> list[Stage]:
    """What each block of ``head`` makes of one feature vector ``features`` (shape ``(F,)``), in order."""
    was_training = head.training
    head.eval()
    try:
        x = features.reshape(1, -1).to(next(head.parameters()).device, next(head.parameters()).dtype)
        stages: list[Stage] = []
        if isinstance(head, DressedQuantumHead):
            pre = head.pre(x)
            angles = torch.tanh(pre) * (math.pi / 2)
            z = head.quantum(angles)
            logits = head.post(z)
            stages += [Stage("pre-net", _linear(head.pre), _values(pre)),
                       Stage("angles", "tanh·π/2", _values(angles)),
                       Stage("measurement", "⟨Z_i⟩" if head.quantum.spec is not None else "measurements", _values(z)),
                       Stage("post-net", _linear(head.post), _values(logits))]
        elif isinstance(head, DressedClassicalHead):
            pre = head.pre(x)
            squashed = torch.tanh(pre)
            mixed = head.mixing(squashed)
            logits = head.post(mixed)
            stages += [Stage("pre-net", _linear(head.pre), _values(pre)),
                       Stage("tanh", "tanh", _values(squashed)),
                       Stage("mixing", f"MixingBlock({head.mixing.weights.shape[1]}, {head.mixing.weights.shape[0]})",
                             _values(mixed)),
                       Stage("post-net", _linear(head.post), _values(logits))]
        elif isinstance(head, LinearHead):
            logits = head.fc(x)
            stages.append(Stage("linear", _linear(head.fc), _values(logits)))
        else:  # a head registered from Python: one block
            logits = head(x)
            stages.append(Stage("head", type(head).__name__, _values(logits)))
        stages.append(Stage("probabilities", "softmax", _values(torch.softmax(logits, dim=-1))))
        return stages
    finally:
        head.train(was_training)


def pipeline_record(head: nn.Module, head_name: str, features: torch.Tensor, path: str | os.PathLike, split: str,
                    true: str | None, classes: Sequence[str], backbone: dict[str, str], n_cached: int,
                    n_computed: int) -> dict[str, Any]:
    """``pipeline.json``: one image of ``split`` through the backbone's features and every block of the head.

    ``backbone`` is the run's backbone record (name, weights, transform); the registry adds the
    classifier layer that was cut off. ``n_cached`` / ``n_computed`` say where this run's
    features came from.
    """
    from qtransfer.features.backbones import BACKBONES

    stages = trace_head(head, features)
    spec = BACKBONES.get(backbone.get("backbone", ""))
    probabilities = stages[-1].values
    return {
        "schema": PIPELINE_SCHEMA, "version": 1, "image": os.fspath(Path(path)), "split": split, "true": true,
        "pred": classes[max(range(len(probabilities)), key=probabilities.__getitem__)], "classes": list(classes),
        "head": head_name, "backbone": {**backbone, "removed": spec.classifier if spec else None},
        "n_cached": n_cached, "n_computed": n_computed,
        "features": [_round(v) for v in _values(features)], "stages": [s.to_json() for s in stages],
    }

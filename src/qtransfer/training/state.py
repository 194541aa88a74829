"""The resumable training state: everything needed to continue a run exactly where it stopped.

After every completed epoch :func:`save_state` writes, atomically, the head, the optimizer,
the shuffling generator, the shot samplers' generators, the best weights so far and the
history. :func:`load_state` reads it back without unpickling arbitrary objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from qtransfer.atomic import atomic_write
from qtransfer.errors import CheckpointError

__all__ = ["STATE_FORMAT", "STATE_VERSION", "save_state", "load_state", "sampler_states", "set_sampler_states"]

STATE_FORMAT = "qtransfer-train-state"
STATE_VERSION = 2  # 2: qtransfer's own Adam state (1 held torch.optim's)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format and version) to ``path`` atomically."""
    state = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    atomic_write(path, lambda f: torch.save(state, f))


def load_state(path: Path) -> dict[str, Any]:
    """Load a training state without unpickling arbitrary objects."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist: nothing to resume (start a new run without --resume)") from None
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable qtransfer training state ({e.__class__.__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a qtransfer training state")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path} was written by another version of qtransfer (training state version "
                              f"{state.get('version')}, this one reads {STATE_VERSION}): start a new run without --resume")
    return state


def _quantum_layers(head: nn.Module) -> list:
    from qtransfer.quantum.layer import QuantumLayer

    return [m for m in head.modules() if isinstance(m, QuantumLayer)]


def sampler_states(head: nn.Module) -> list[torch.Tensor]:
    """States of the seeded shot samplers of ``head``'s quantum layers (empty for exact simulation)."""
    return [state for layer in _quantum_layers(head) if (state := layer.sampler_state()) is not None]


def set_sampler_states(head: nn.Module, states: list[torch.Tensor]) -> None:
    """Restore :func:`sampler_states` into ``head``'s seeded quantum layers."""
    for layer, state in zip([m for m in _quantum_layers(head) if m.seed is not None], states):
        layer.set_sampler_state(state)

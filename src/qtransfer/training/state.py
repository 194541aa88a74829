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

__all__ = ["STATE_FORMAT", "STATE_VERSION", "save_state", "load_state", "read_torch_file", "sampler_states", "set_sampler_states"]

STATE_FORMAT = "qtransfer-train-state"
STATE_VERSION = 2  # 2: qtransfer's own Adam state (1 held torch.optim's)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format and version) to ``path`` atomically."""
    state = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    atomic_write(path, lambda f: torch.save(state, f))


def load_state(path: Path) -> dict[str, Any]:
    """Load a training state without unpickling arbitrary objects."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path} does not exist: nothing to resume (start a new run without --resume)")
    state = read_torch_file(Path(path), "qtransfer training state")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a qtransfer training state")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path} was written by another version of qtransfer (training state version "
                              f"{state.get('version')}, this one reads {STATE_VERSION}): start a new run without --resume")
    return state


def read_torch_file(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file that is empty, cut short or not
    plain data is a :class:`CheckpointError` that says which of these it is."""
    import pickle
    import zipfile

    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the {what} was never written completely; restore it or retrain")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:300]
        with open(path, "rb") as f:
            zip_start = f.read(4) == b"PK\x03\x04"  # torch.save's format is a zip archive
        if zip_start and not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is truncated or damaged ({size} bytes, not a complete archive): "
                                  f"restore it or retrain") from None
        if isinstance(e, pickle.UnpicklingError):  # weights_only refused a pickled object: its code could run
            raise CheckpointError(
                f"refused to load {path}: it is not a plain-data {what} (loading with weights_only=True failed: "
                f"{first}). Files that need full unpickling can run arbitrary code and are never loaded."
            ) from None
        raise CheckpointError(f"{path} is not a readable {what} ({e.__class__.__name__}: {first})") from None


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

"""The model checkpoint: everything ``evaluate`` and ``predict`` need, loaded without unpickling code.

``RUN_DIR/model.pt`` holds plain data only — the resolved configuration, the class
names, the backbone's identity (name, weights, transform), the feature width and the
head's tensors — and is read with ``torch.load(weights_only=True)``, which refuses any
pickled object that is not a tensor or a plain container. A file crafted to run code
on load is therefore rejected before any of its code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from qtransfer.atomic import atomic_write
from qtransfer.config import TrainConfig
from qtransfer.errors import CheckpointError, UsageError
from qtransfer.heads import build_head
from qtransfer.manifest import verify_run_files
from qtransfer.training.state import read_torch_file

__all__ = ["INFERENCE_OVERRIDES", "MODEL_FILE", "SavedModel", "save_model", "load_model", "check_compatible"]

#: settings a trained model may be run with other than those it was trained with
INFERENCE_OVERRIDES = ("noise", "shots")

MODEL_FILE = "model.pt"
_FORMAT = "qtransfer-model"
_VERSION = 1


@dataclass
class SavedModel:
    """A trained head and what it was trained on."""

    head: nn.Module
    config: TrainConfig
    classes: tuple[str, ...]
    backbone: dict[str, str]
    in_features: int
    best_epoch: int


def save_model(
    path: Path, head: nn.Module, config: TrainConfig, classes: tuple[str, ...], backbone: dict[str, str],
    in_features: int, best_epoch: int,
) -> Path:
    """Write the checkpoint atomically."""
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "config": config.to_dict(),
        "classes": list(classes),
        "backbone": dict(backbone),
        "in_features": int(in_features),
        "best_epoch": int(best_epoch),
        "head": {k: v.detach().cpu() for k, v in head.state_dict().items()},
    }
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_model(path: Path, *, device: str | torch.device = "cpu", overrides: Mapping[str, Any] | None = None) -> SavedModel:
    """Read and check a checkpoint, rebuild the head and load its weights.

    ``overrides`` changes settings that do not change the weights before the head is rebuilt
    (``noise``, ``shots``: a model trained ideally, run on an emulated device).
    Raises :class:`CheckpointError` for a missing, unsafe, foreign or inconsistent file,
    :class:`~qtransfer.errors.UsageError` for an override that is not a valid setting.

    Example:
        >>> saved = load_model(Path("runs/ants/model.pt"))  # doctest: +SKIP
        >>> saved.classes                                  # doctest: +SKIP
        ('ants', 'bees')
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: is {path.parent} a finished `qtransfer train` run directory?")
    if path.name == MODEL_FILE:
        verify_run_files(path.parent, (MODEL_FILE,))
    payload = read_torch_file(path, "qtransfer checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a qtransfer model checkpoint (no format marker {_FORMAT!r})")
    if payload.get("version") != _VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')!r}; this qtransfer reads version {_VERSION}")
    try:
        head_name = payload["config"].get("head") if isinstance(payload.get("config"), dict) else None
        from qtransfer.heads.registry import HEADS

        if isinstance(head_name, str) and head_name not in HEADS:
            raise CheckpointError(
                f"{path} holds a {head_name!r} head, which is not registered in this process; import the module that "
                f"registers it (qtransfer.heads.register_head({head_name!r}, builder)) before loading"
            )
        config = TrainConfig.from_dict(payload["config"], source=str(path))
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path} is inconsistent: {e.__class__.__name__}: {e}") from None
    unknown = sorted(set(overrides or {}) - set(INFERENCE_OVERRIDES))
    if unknown:
        raise UsageError(f"only {', '.join(INFERENCE_OVERRIDES)} can change after training, not {', '.join(unknown)}")
    config = config.replace(**(overrides or {}))
    try:
        classes = tuple(str(c) for c in payload["classes"])
        in_features = int(payload["in_features"])
        backbone = {str(k): str(v) for k, v in payload["backbone"].items()}
    except Exception as e:
        raise CheckpointError(f"{path} is inconsistent: {e.__class__.__name__}: {e}") from None
    try:
        head = build_head(config.head, in_features, len(classes), **config.head_settings())
    except ImportError:  # a missing extra (the noise's Qiskit, a PennyLane device): says what to pip install
        raise
    except ValueError as e:
        if overrides:  # the setting given for this run does not suit the model (a device too small, ...)
            raise UsageError(str(e)) from None
        raise CheckpointError(f"{path} is inconsistent: {e.__class__.__name__}: {e}") from None
    try:
        head.load_state_dict(payload["head"])
    except Exception as e:
        raise CheckpointError(f"{path} is inconsistent: {e.__class__.__name__}: {e}") from None
    head.to(device).eval()
    return SavedModel(head, config, classes, backbone, in_features, int(payload.get("best_epoch", 0)))


def check_compatible(saved: SavedModel, *, backbone: dict[str, str] | None = None, num_features: int | None = None,
                     classes: tuple[str, ...] | None = None, source: str = "") -> None:
    """Raise a clear :class:`CheckpointError` when a checkpoint is used with features or classes it was not trained on."""
    if backbone is not None:
        for key in ("backbone", "weights", "transform"):
            if saved.backbone.get(key) != backbone.get(key):
                raise CheckpointError(
                    f"the model was trained on {key} {saved.backbone.get(key)!r} features, not {backbone.get(key)!r}{source}"
                )
    if num_features is not None and num_features != saved.in_features:
        raise CheckpointError(f"the model expects {saved.in_features} features per image, got {num_features}{source}")
    if classes is not None:
        unknown = sorted(set(classes) - set(saved.classes))
        if unknown:
            raise CheckpointError(
                f"class folder(s) {', '.join(unknown)}{source} are not classes of this model ({', '.join(saved.classes)})"
            )


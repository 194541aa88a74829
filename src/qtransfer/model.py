"""A trained run as one PyTorch module: the frozen backbone and the trained head, images in, logits out.

:meth:`TrainedModel.load` rebuilds it from a run directory alone (``model.pt`` holds the
head, its configuration, the classes and the backbone's identity; the backbone is built
from the same weights, refused if they differ).

Example:
    >>> import qtransfer
    >>> model = qtransfer.load_run("runs/demo")                                 # doctest: +SKIP
    >>> model.classes                                                           # doctest: +SKIP
    ('ants', 'bees')
    >>> logits = model(torch.stack([model.transform(img) for img in images]))   # doctest: +SKIP
    >>> model.predict_paths(["bee.jpg"])[0]["pred"]                             # doctest: +SKIP
    'bees'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from qtransfer.config import TrainConfig
from qtransfer.features.backbones import Backbone

__all__ = ["TrainedModel"]


class TrainedModel(nn.Module):
    """``images (N, 3, H, W) -> logits (N, classes)``: the frozen backbone, then the trained head.

    Attributes:
        backbone: the frozen feature extractor (eval mode, no gradients).
        head: the trained head (in eval mode after :meth:`load`).
        classes: class names, in the order of the logits.
        config: the run's resolved configuration.
        transform: PIL image -> the backbone's input tensor (apply it, then stack).
    """

    def __init__(self, backbone: Backbone, head: nn.Module, classes: Sequence[str], config: TrainConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.classes = tuple(classes)
        self.config = config

    @property
    def transform(self) -> Callable:
        return self.backbone.transform

    @classmethod
    def load(cls, run_dir: str | os.PathLike, *, device: str = "cpu", weights: str | None = None) -> "TrainedModel":
        """Rebuild the model of ``run_dir`` on ``device`` (``weights``: the backbone weights file, if it moved)."""
        from qtransfer.pipeline import backbone_for, load_for_inference

        saved, config = load_for_inference(Path(run_dir), device)
        backbone = backbone_for(saved, config, weights).build(device)
        return cls(backbone, saved.head, saved.classes, config).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from qtransfer.training.loop import one_intra_op_thread

        features = self.backbone(images)
        with one_intra_op_thread():
            return self.head(features)

    @torch.no_grad()
    def predict_paths(self, paths: Sequence[str | os.PathLike], *, progress: bool = False) -> list[dict[str, Any]]:
        """Predicted class and probability of each image file (folders searched recursively), in input order;
        those ``train`` would skip get an ``error`` (:func:`qtransfer.pipeline.predict_paths`)."""
        from qtransfer.data.discover import image_inputs
        from qtransfer.evaluation import input_records
        from qtransfer.features.extract import extract_features

        device = next(self.head.parameters()).device
        return input_records(self.head, image_inputs(paths), self.classes,
                             lambda files: extract_features(files, self.backbone, cache=None, device=device,
                                                            progress=progress))

"""A registered backbone's preprocessing with PIL and torch alone: no torchvision import.

Every preprocessing of the registry (:class:`~qtransfer.features.backbones.Preprocessing`, and
the published one) is: resize the shorter side, centre crop, ToTensor, ImageNet normalisation.
:class:`ImagePreprocess` does it in two steps, so that images can be decoded while torchvision
is still being imported (:mod:`qtransfer.features.extract`):

* :meth:`~ImagePreprocess.pixels` (one image, PIL; its decoding and resizing release the GIL):
  the resized, centre-cropped pixels as ``uint8`` ``(H, W, 3)``;
* :meth:`~ImagePreprocess.batch` (a batch, torch): those pixels as a normalised float batch,
  channels-last in memory.

The result is bit for bit torchvision's (``transforms.Resize/CenterCrop/ToTensor/Normalize``
and the weights' ``ImageClassification`` preset on PIL images): the same PIL resize to the
same size (torchvision's rounding), the same crop offsets (``round`` half to even), the same
float32 division by 255, subtraction of the mean and division by the std.
``tests/test_preprocess.py`` holds it to torchvision on odd sizes and the shared photos.

Example:
    >>> from PIL import Image
    >>> prep = ImagePreprocess(resize=256, crop=224)
    >>> pixels = prep.pixels(Image.new("RGB", (400, 300), "red"))
    >>> pixels.shape, pixels.dtype
    ((224, 224, 3), dtype('uint8'))
    >>> prep.batch([pixels, pixels]).shape
    torch.Size([2, 3, 224, 224])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

__all__ = ["ImagePreprocess"]

#: torchvision's InterpolationMode names -> PIL's resampling filters (``pil_modes_mapping``)
_FILTERS = {"NEAREST": Image.Resampling.NEAREST, "BILINEAR": Image.Resampling.BILINEAR,
            "BICUBIC": Image.Resampling.BICUBIC, "BOX": Image.Resampling.BOX,
            "HAMMING": Image.Resampling.HAMMING, "LANCZOS": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize the shorter side to ``resize``, centre crop ``crop`` x ``crop``, normalise by ``mean``/``std``."""

    resize: int
    crop: int
    interpolation: str = "BILINEAR"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __post_init__(self):
        if self.interpolation not in _FILTERS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; one of {', '.join(_FILTERS)}")
        if not 0 < self.crop <= self.resize:  # the crop then never needs padding
            raise ValueError(f"crop {self.crop} must be positive and at most the resize {self.resize}")

    def _resized_size(self, width: int, height: int) -> tuple[int, int]:
        """torchvision's ``_compute_resized_output_size`` for one requested side: ``(width, height)``."""
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.resize, int(self.resize * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """The resized, centre-cropped RGB pixels of ``image``: ``uint8`` ``(crop, crop, 3)``."""
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {image.mode!r}")
        size = self._resized_size(*image.size)
        if size != image.size:
            image = image.resize(size, _FILTERS[self.interpolation])
        width, height = size
        top = int(round((height - self.crop) / 2.0))
        left = int(round((width - self.crop) / 2.0))
        return np.asarray(image.crop((left, top, left + self.crop, top + self.crop)))

    def batch(self, pixels: Sequence[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
        """``(N, 3, crop, crop)`` float32 on ``device``, normalised, channels-last in memory.

        The uint8 pixels travel to ``device`` and are converted there.
        """
        x = torch.from_numpy(np.stack(pixels)).to(device).permute(0, 3, 1, 2)
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        return x.to(torch.float32).div(255).sub_(mean).div_(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """One image as torchvision's transform gives it: ``(3, crop, crop)`` float32."""
        return self.batch([self.pixels(image)])[0].contiguous()

"""Seeded augmented views of a training image: the paper notebooks' augmentation, drawn once and cached.

The notebooks (``c2q_transfer_learning_ants_bees.ipynb``, the CIFAR notebook and the classical
baseline) carry, *commented out* ("uncomment for data augmentation"), two transforms in front
of their preprocessing::

    transforms.RandomResizedCrop(224),     # uncomment for data augmentation
    transforms.RandomHorizontalFlip(),     # uncomment for data augmentation
    transforms.Resize(256),
    transforms.CenterCrop(224), ToTensor(), Normalize(ImageNet)

:class:`AugmentViews` is that chain with the two lines uncommented, exactly: torchvision's
``RandomResizedCrop(crop)`` (scale (0.08, 1), ratio (3/4, 4/3), bilinear) and
``RandomHorizontalFlip(0.5)`` on the PIL image, then the backbone's own preprocessing
(:class:`~qtransfer.features.preprocess.ImagePreprocess`; for the published transform,
Resize(256) + CenterCrop(224)). Where torchvision draws from the global random state, view ``v``
of an image draws from its own generator, seeded by (``seed``, the image's SHA-256, ``v``):
a view is the same in every process, whatever the order, batching or threads that compute it,
so it can be cached under a key that holds the seed and the view index
(:func:`~qtransfer.features.extract.feature_key`). Given the same random numbers, the result is
torchvision's bit for bit (``tests/test_augment.py``).

Example:
    >>> from PIL import Image
    >>> from qtransfer.features.preprocess import ImagePreprocess
    >>> views = AugmentViews(views=3, seed=0)
    >>> prep = ImagePreprocess(resize=256, crop=224)
    >>> image = Image.new("RGB", (400, 300), "red")
    >>> a = views.pixels(image, prep, "ab" * 32, 1)
    >>> a.shape, bool((a == views.pixels(image, prep, "ab" * 32, 1)).all())
    ((224, 224, 3), True)
    >>> views.crop_params(400, 300, "ab" * 32, 1) != views.crop_params(400, 300, "ab" * 32, 2)
    True
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

__all__ = ["AugmentViews", "SCALE", "RATIO"]

#: torchvision's RandomResizedCrop defaults (the notebooks pass only the size)
SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)


@dataclass(frozen=True)
class AugmentViews:
    """``views`` seeded augmented views per image (RandomResizedCrop + RandomHorizontalFlip, then the
    backbone's preprocessing), drawn with ``seed``."""

    views: int
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.views, int) or isinstance(self.views, bool) or self.views < 1:
            raise ValueError(f"views must be an integer >= 1, got {self.views!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def key_text(self, crop: int, view: int) -> str:
        """What determines view ``view`` besides the image and the backbone: part of its cache key."""
        return (f"augment:RandomResizedCrop({crop},scale={SCALE},ratio={RATIO},interpolation=bilinear),"
                f"RandomHorizontalFlip(p=0.5);seed={self.seed};view={view}")

    def generator(self, image_sha256: str, view: int) -> torch.Generator:
        """The random stream of one view of one image."""
        digest = hashlib.sha256(f"qtransfer-augment/{self.seed}/{image_sha256}/{view}".encode()).digest()
        return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))

    def crop_params(self, width: int, height: int, image_sha256: str, view: int) -> tuple[int, int, int, int, bool]:
        """``(top, left, height, width, flip)`` of one view: :func:`draw` on the view's generator."""
        return draw(width, height, self.generator(image_sha256, view))

    def pixels(self, image: Image.Image, prep, image_sha256: str, view: int) -> np.ndarray:
        """View ``view`` of ``image``: crop, resize to ``prep.crop``, maybe flip, then ``prep.pixels``."""
        top, left, h, w, flip = self.crop_params(image.width, image.height, image_sha256, view)
        out = image.crop((left, top, left + w, top + h)).resize((prep.crop, prep.crop), Image.Resampling.BILINEAR)
        if flip:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return prep.pixels(out)


def draw(width: int, height: int, generator: torch.Generator) -> tuple[int, int, int, int, bool]:
    """torchvision's ``RandomResizedCrop.get_params`` (default scale and ratio) followed by
    ``RandomHorizontalFlip``'s coin, the same draws in the same order, from ``generator``."""
    area = height * width
    log_ratio = torch.log(torch.tensor(RATIO))
    params = None
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(SCALE[0], SCALE[1], generator=generator).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, size=(1,), generator=generator).item())
            j = int(torch.randint(0, width - w + 1, size=(1,), generator=generator).item())
            params = (i, j, h, w)
            break
    if params is None:  # torchvision's fallback: a central crop
        in_ratio = float(width) / float(height)
        if in_ratio < min(RATIO):
            w, h = width, int(round(width / min(RATIO)))
        elif in_ratio > max(RATIO):
            h, w = height, int(round(height * max(RATIO)))
        else:
            w, h = width, height
        params = ((height - h) // 2, (width - w) // 2, h, w)
    flip = bool(torch.rand(1, generator=generator).item() < 0.5)
    return (*params, flip)

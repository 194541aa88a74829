"""ImagePreprocess: torchvision's preprocessing bit for bit, without torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from qtransfer.data.images import BadImageError, open_image_rgb
from qtransfer.features.backbones import BACKBONES, resolve_backbone
from qtransfer.features.preprocess import ImagePreprocess

# odd sizes: portrait, landscape, square, smaller than the crop (upscaled), a side already at the
# resize, and sides whose crop offset is a half (torchvision rounds it half to even)
SIZES = [(500, 375), (333, 500), (256, 256), (40, 30), (7, 300), (256, 999), (301, 257), (1023, 255), (258, 259)]


def _torchvision_transforms():
    """(ImagePreprocess, torchvision transform) for the published one and each registered weights' preset."""
    from torchvision.models import get_model_weights

    pairs = [(resolve_backbone("resnet18", None).image_preprocess(),
              T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                         T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]))]
    seen = set()
    for spec in BACKBONES.values():
        for weights, prep in spec.weights.items():
            if prep in seen:
                continue
            seen.add(prep)
            ref = resolve_backbone(spec.name, weights, transform="weights")
            pairs.append((ref.image_preprocess(), get_model_weights(spec.name)[weights].transforms()))
    return pairs


def _images(tmp_path):
    rng = np.random.default_rng(0)
    out = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]
    # other modes, converted as the product converts them
    for mode in ("L", "RGBA", "CMYK", "P", "I;16"):
        path = tmp_path / f"{mode.replace(';', '')}.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
        arr = rng.integers(0, 256, (37, 53, 4 if mode in ("RGBA", "CMYK") else 1), dtype=np.uint8)
        img = Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr, "RGBA" if arr.shape[-1] == 4 else "L")
        img.convert(mode).save(path)
        out.append(open_image_rgb(path))
    return out


def test_equals_torchvision_bit_for_bit_on_odd_sizes_and_modes(tmp_path):
    images = _images(tmp_path)
    for prep, tv in _torchvision_transforms():
        expected = [tv(img) for img in images]
        for img, want in zip(images, expected):
            got = prep(img)
            assert got.dtype == want.dtype and got.shape == want.shape, (prep, img.size)
            assert torch.equal(got, want), (prep, img.size, img.mode)
        by_size = {}
        for img, want in zip(images, expected):
            by_size.setdefault(tuple(want.shape), []).append((img, want))
        for group in by_size.values():  # batched as extraction batches them
            batch = prep.batch([prep.pixels(img) for img, _ in group])
            assert batch.is_contiguous(memory_format=torch.channels_last)
            assert torch.equal(batch, torch.stack([want for _, want in group]))


def test_equals_torchvision_on_the_shared_photos(shared_train):
    prep = resolve_backbone("mobilenet_v2", "DEFAULT").image_preprocess()
    published = resolve_backbone("mobilenet_v2", None).image_preprocess()
    from torchvision.models import MobileNet_V2_Weights

    from qtransfer.features.backbones import published_transform

    pairs = ((prep, MobileNet_V2_Weights.DEFAULT.transforms()), (published, published_transform()))
    n = 0
    for path in sorted(p for p in shared_train.rglob("*") if p.is_file()):
        try:
            img = open_image_rgb(path)
        except BadImageError:
            continue
        n += 1
        for mine, tv in pairs:
            assert torch.equal(mine(img), tv(img)), path
    assert n > 200


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="interpolation"):
        ImagePreprocess(256, 224, "CUBIC")
    with pytest.raises(ValueError, match="crop"):
        ImagePreprocess(200, 224)
    with pytest.raises(ValueError, match="RGB"):
        ImagePreprocess(256, 224).pixels(Image.new("L", (300, 300)))

"""Opening one image file as an RGB picture, or saying exactly why it cannot be used."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["IMAGE_EXTENSIONS", "BadImageError", "open_image_rgb"]

#: file name endings treated as images when scanning a folder (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class BadImageError(Exception):
    """An image file that cannot be used; ``reason`` is a short human-readable cause."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def open_image_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully, apply its EXIF orientation and return an RGB image.

    Raises :class:`BadImageError` for anything that is not a usable image.

    Example:
        >>> img = open_image_rgb("ants/0013035.jpg")  # doctest: +SKIP
        >>> img.mode
        'RGB'
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImageError(path, f"too large to be a photo ({e})") from None
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImageError(path, f"cannot be decoded ({e})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: rescale to 8 bits instead of clipping to white.
        import numpy as np

        a = np.asarray(img, dtype=np.float64)
        hi = a.max() if a.size else 0.0
        a = (a / hi * 255.0) if hi > 0 else a
        return Image.fromarray(a.astype(np.uint8), mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")

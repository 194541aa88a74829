"""Opening one image file as an RGB picture, or saying exactly why it cannot be used."""

from __future__ import annotations

import errno
import os
import struct
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["IMAGE_EXTENSIONS", "BadImageError", "open_image_rgb"]

#: file name endings treated as images when scanning a folder (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Exceptions Pillow's decoders are known to raise on malformed files (besides OSError).
_DECODE_ERRORS = (SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error, ZeroDivisionError)


_OPEN_LOCK = threading.Lock()
_BOMB_FILTER = ("error", None, Image.DecompressionBombWarning, None, 0)  # a warnings.filters entry


class BadImageError(Exception):
    """An image file that cannot be used; ``reason`` is a short human-readable cause."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def open_image_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully, apply its EXIF orientation and return an RGB image.

    Raises :class:`BadImageError` for anything that is not a usable image: a missing or
    unreadable file, a folder, an unrecognised or truncated file, a decompression bomb
    (more than ``Image.MAX_IMAGE_PIXELS`` pixels) or an image without pixels.
    Grayscale, palette, CMYK, 16-bit and transparent images are converted to RGB
    (transparency is composited onto white).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "grey.png"
        >>> Image.new("LA", (4, 3)).save(path)          # greyscale with transparency
        >>> img = open_image_rgb(path)
        >>> img.mode, img.size
        ('RGB', (4, 3))
        >>> try:
        ...     open_image_rgb(path.with_name("missing.jpg"))
        ... except BadImageError as e:
        ...     print(e.reason)
        does not exist (or is a broken symlink)
    """
    path = Path(path)
    try:
        with _bomb_warnings_raise():
            opened = Image.open(path)
        with opened as img:
            _check_size(path, img)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImageError(path, f"too large to be a photo ({e})") from None
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image (unrecognised format)") from None
    except FileNotFoundError:
        raise BadImageError(path, "does not exist (or is a broken symlink)") from None
    except PermissionError:
        raise BadImageError(path, "cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise BadImageError(path, "is a folder, not an image file") from None
    except MemoryError:
        raise BadImageError(path, "too large to decode in memory") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadImageError(path, "symlink loop (the link points back to itself)") from None
        raise BadImageError(path, f"cannot be decoded ({e})") from None
    except _DECODE_ERRORS as e:
        raise BadImageError(path, f"cannot be decoded ({type(e).__name__}: {e})") from None


@contextmanager
def _bomb_warnings_raise() -> Iterator[None]:
    """Within: Pillow's DecompressionBombWarning is raised as an error (Image.open warns of a bomb).

    The warnings filters are process-wide, so threads decoding at once take turns for the
    (cheap) header read; decoding itself runs unlocked. One filter goes in front of the list
    and comes out again: ``warnings.catch_warnings`` would put back a copy of the whole list,
    dropping any filter another thread adds meanwhile (an import running while images
    decode, as in a cold extraction). A filter the caller already has is left where it is.
    """
    with _OPEN_LOCK:
        if _BOMB_FILTER in warnings.filters:
            yield
            return
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
        try:
            yield
        finally:
            try:
                warnings.filters.remove(_BOMB_FILTER)
            except ValueError:  # pragma: no cover - someone else removed it
                pass


def _check_size(path: Path, img: Image.Image) -> None:
    """Refuse empty images and bombs before decoding (independent of the warnings filter)."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise BadImageError(path, f"has no pixels ({width}x{height})")
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise BadImageError(
            path, f"too large to be a photo ({width}x{height} = {width * height} pixels > {limit})"
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit grayscale or float: rescale to 8 bits instead of clipping to white.
        import numpy as np

        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        a = np.clip(a, 0.0, None)
        hi = a.max() if a.size else 0.0
        a = (a / hi * 255.0) if hi > 0 else a
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")

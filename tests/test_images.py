"""open_image_rgb: every kind of image becomes RGB of the right size; bad files say why."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qtransfer.data.images import IMAGE_EXTENSIONS, BadImageError, open_image_rgb


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` pixels, with no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""))
    return path


# ------------------------------------------------------------------ usable images


@pytest.mark.parametrize(
    "mode, ext",
    [
        ("RGB", ".jpg"),
        ("RGB", ".png"),
        ("RGB", ".bmp"),
        ("RGB", ".webp"),
        ("RGB", ".tif"),
        ("RGB", ".ppm"),
        ("L", ".jpg"),
        ("L", ".pgm"),
        ("1", ".png"),
        ("P", ".gif"),
        ("P", ".png"),
        ("LA", ".png"),
        ("RGBA", ".png"),
        ("CMYK", ".jpg"),
        ("CMYK", ".tif"),
        ("I", ".tif"),
        ("F", ".tif"),
    ],
)
def test_modes_open_as_rgb_with_the_right_size(tmp_path, mode, ext):
    img = Image.new("RGB", (48, 32), (200, 100, 50)).convert(mode)
    path = _save(img, tmp_path / f"img{ext}")
    out = open_image_rgb(path)
    assert out.mode == "RGB"
    assert out.size == (48, 32)


def test_16bit_png_is_rescaled_not_clipped(tmp_path):
    a = (np.arange(32 * 64, dtype=np.uint16).reshape(32, 64) * 30).astype(np.uint16)
    path = _save(Image.fromarray(a), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I;16")
    out = np.asarray(open_image_rgb(path))
    assert out.shape == (32, 64, 3)
    assert out.min() == 0 and out.max() == 255
    assert len(np.unique(out[..., 0])) > 100  # a gradient, not a white (clipped) picture


def test_rgba_transparency_becomes_white(tmp_path):
    img = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 16, 32))
    out = open_image_rgb(_save(img, tmp_path / "alpha.png"))
    assert out.getpixel((4, 4)) == (0, 0, 255)
    assert out.getpixel((28, 4)) == (255, 255, 255)


def test_palette_with_transparency_becomes_white(tmp_path):
    img = Image.new("P", (32, 32), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (0, 0, 16, 32))
    path = _save(img, tmp_path / "pal.gif", transparency=0)
    out = open_image_rgb(path)
    assert out.getpixel((4, 4)) == (0, 255, 0)
    assert out.getpixel((28, 4)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (64, 32), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 32, 32))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(img, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    out = open_image_rgb(path)
    assert out.size == (32, 64)
    top, bottom = out.getpixel((16, 8)), out.getpixel((16, 56))
    assert top[0] > 200 and top[2] < 60  # the left half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (32, 32), c).convert("P") for c in [(255, 0, 0), (0, 255, 0)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = open_image_rgb(path)
    assert out.mode == "RGB" and out.size == (32, 32)
    assert out.getpixel((5, 5))[0] > 200


def test_symlink_to_an_image_opens(tmp_path):
    target = _save(Image.new("RGB", (32, 32)), tmp_path / "real.png")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert open_image_rgb(link).size == (32, 32)


def test_non_ascii_and_space_names(tmp_path):
    path = _save(Image.new("RGB", (40, 32)), tmp_path / "fourmi rouge é 蟻.jpg")
    assert open_image_rgb(str(path)).size == (40, 32)


def test_extensions_are_lowercase_with_a_dot():
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
    assert ".jpg" in IMAGE_EXTENSIONS and ".png" in IMAGE_EXTENSIONS


# ------------------------------------------------------------------ unusable files


def _reason(path) -> str:
    with pytest.raises(BadImageError) as info:
        open_image_rgb(path)
    assert info.value.path == Path(path)
    assert str(path) in str(info.value)
    return info.value.reason


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "not an image" in _reason(path)


def test_text_with_jpg_extension(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    assert "not an image" in _reason(path)


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = _save(noise, tmp_path / "cut.jpg", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _reason(path)


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = _save(noise, tmp_path / "cut.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "cannot be decoded" in _reason(path)


def test_png_header_claiming_huge_dimensions(tmp_path):
    path = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert "too large" in _reason(path)


def test_decompression_bomb_with_lowered_limit(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (64, 64)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert "too large" in _reason(path)


def test_header_only_png_of_normal_size_is_not_decodable(tmp_path):
    path = _png_header_only(tmp_path / "nodata.png", 32, 32)
    assert "cannot be decoded" in _reason(path)


def test_missing_file(tmp_path):
    assert "does not exist" in _reason(tmp_path / "nope.jpg")


def test_broken_symlink(tmp_path):
    link = tmp_path / "dangling.jpg"
    link.symlink_to(tmp_path / "gone.jpg")
    assert "does not exist" in _reason(link)


def test_symlink_loop(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.symlink_to(b)
    b.symlink_to(a)
    assert "symlink loop" in _reason(a)


def test_folder_with_image_name(tmp_path):
    folder = tmp_path / "album.jpg"
    folder.mkdir()
    assert "folder" in _reason(folder)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = _save(Image.new("RGB", (32, 32)), tmp_path / "secret.png")
    path.chmod(0)
    try:
        assert "permission denied" in _reason(path)
    finally:
        path.chmod(0o644)


def test_unreadable_file_even_as_root(tmp_path, monkeypatch):
    """Root ignores chmod 000, so simulate the permission error Pillow would meet."""
    import builtins

    path = _save(Image.new("RGB", (32, 32)), tmp_path / "secret.png")
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    assert "permission denied" in _reason(path)


def test_decoding_in_threads_leaves_the_warnings_filters_as_they_were(tmp_path):
    """open_image_rgb turns the bomb warning into an error only inside its own call, from many threads at once."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from qtransfer.data.images import open_image_rgb

    paths = []
    for i in range(40):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (64, 48), (i, 2 * i, 3 * i)).save(paths[-1])
    before = list(warnings.filters)
    with ThreadPoolExecutor(4) as pool:
        sizes = list(pool.map(lambda p: open_image_rgb(p).size, paths * 5))
    assert sizes == [(64, 48)] * 200
    assert warnings.filters == before


def test_bomb_warning_is_an_error_and_a_callers_filter_stays(tmp_path, monkeypatch):
    """Between the limit and twice it Pillow only warns; open_image_rgb refuses with the warning's text."""
    import warnings

    path = _save(Image.new("RGB", (64, 64)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with warnings.catch_warnings():
        assert "could be decompression bomb" in _reason(path)
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)  # the caller's own
        before = list(warnings.filters)
        assert "could be decompression bomb" in _reason(path)
        assert warnings.filters == before


def test_a_filter_added_by_another_thread_while_opening_is_kept(tmp_path, monkeypatch):
    """An import in another thread may add a warnings filter while an image opens; it must survive."""
    import warnings

    from qtransfer.data import images

    path = _save(Image.new("RGB", (32, 32)), tmp_path / "a.png")
    real_open = Image.open

    def open_while_another_thread_filters(*args, **kwargs):
        warnings.filterwarnings("once", category=FutureWarning, module="elsewhere")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(images.Image, "open", open_while_another_thread_filters)
    with warnings.catch_warnings():
        before = list(warnings.filters)
        assert images.open_image_rgb(path).size == (32, 32)
        added = [f for f in warnings.filters if f not in before]
        assert len(added) == 1 and added[0][0] == "once"
        assert len(warnings.filters) == len(before) + 1

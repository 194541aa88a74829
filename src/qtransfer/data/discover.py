"""Finding labelled images on disk and splitting them into train / val / test.

Two layouts are understood:

* a root holding ``train/`` and optionally ``val/`` and ``test/``, each holding one
  folder per class (the Hymenoptera layout), and
* a plain folder of class folders, which gives only a ``train`` split (the pipeline
  then carves a validation set out of it with :func:`stratified_split`).

Scanning is cheap: each file is ``stat``-ed and its first bytes are compared with the
known image signatures, but nothing is decoded. Files that are obviously unusable
(empty, unreadable, broken symlinks, not an image) are reported in
:attr:`ImageData.skipped` with a reason; the pipeline decodes every image once during
feature extraction, drops those :func:`qtransfer.data.images.open_image_rgb` refuses and
calls :func:`check_splits` again.

Example: see :func:`discover`.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import random
import stat
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qtransfer.errors import DataError, UsageError
from qtransfer.data.images import IMAGE_EXTENSIONS

__all__ = [
    "HYMENOPTERA",
    "SPLITS",
    "Sample",
    "Skipped",
    "ImageData",
    "discover",
    "scan_class_folders",
    "stratified_split",
    "check_splits",
    "image_inputs",
]

#: the ``--data`` value that means "the published Hymenoptera data set" (downloaded and cached).
HYMENOPTERA = "hymenoptera"

#: split folder names recognised under a data root, in this order.
SPLITS = ("train", "val", "test")

# Picture formats we do not decode: reported in ``skipped`` (so a folder of HEIC photos
# does not silently look empty) instead of being ignored like README.txt.
_UNSUPPORTED_PICTURES = (".heic", ".heif", ".avif", ".jxl", ".svg", ".ico", ".raw", ".cr2", ".nef", ".dng", ".psd")

# Known placeholder files that are not photos of their class: sha256 by file size, so
# only files of exactly that size are hashed. The official Hymenoptera train/ants holds
# Flickr's "We're sorry, this image could not be found" GIF; torchvision's ImageFolder
# skips it too (it does not list .gif), so the reference results were trained without it.
_PLACEHOLDERS = {
    5504: {
        "6b4966252973c581b521f804453c6a0649ea6a2ce7e3e5c7deeb7d80623de231": (
            "placeholder image ('this image could not be found'), not a photo"
        )
    },
}


@dataclass(frozen=True)
class Sample:
    """One image file and the index of its class in :attr:`ImageData.classes`."""

    path: Path
    label: int


@dataclass(frozen=True)
class Skipped:
    """A file rejected while scanning, with a short reason."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ImageData:
    """What :func:`discover` found: classes, samples per split and rejected files."""

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, list[Sample]]
    skipped: tuple[Skipped, ...]


def discover(data: str | Path, *, cache_dir: Path | None = None, download: bool = True) -> ImageData:
    """Find the labelled images named by ``--data``.

    ``"hymenoptera"`` (a ``str``) means the published data set: it is taken from the
    cache, or downloaded and verified (see :func:`qtransfer.data.hymenoptera.ensure_hymenoptera`).
    Anything else is a folder: either a root with ``train/`` (and optional ``val/`` and
    ``test/``) holding class folders, or a folder of class folders (only ``"train"``).
    Class names are the sorted names of the train class folders; labels index into them.

    Raises :class:`DataError` naming the folder and the fix when the data are unusable.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for name, colour in (("ants", "red"), ("bees", "blue")):
        ...     for i in range(3):
        ...         (root / name).mkdir(exist_ok=True)
        ...         Image.new("RGB", (8, 8), colour).save(root / name / f"{i}.png")
        >>> data = discover(root)
        >>> data.classes, sorted(data.splits), len(data.splits["train"])
        (('ants', 'bees'), ['train'], 6)
    """
    if isinstance(data, str) and data == HYMENOPTERA:
        from qtransfer.data.hymenoptera import ensure_hymenoptera

        root = ensure_hymenoptera(cache_dir, download=download)
    else:
        root = Path(data).expanduser()
    root = Path(os.path.abspath(root))
    if not root.exists():
        hint = f" (a broken symlink to {os.readlink(root)})" if root.is_symlink() else ""
        raise DataError(
            f"data folder {root} does not exist{hint}. Pass --data with a folder that holds one "
            f"folder per class (e.g. ants/ and bees/), or a folder with train/ (and val/), "
            f"or --data {HYMENOPTERA} for the published data set."
        )
    if not root.is_dir():
        extra = " Unzip it first and pass the extracted folder." if root.suffix.lower() == ".zip" else ""
        raise DataError(f"--data {root} is a file, not a folder.{extra} Pass a folder of class folders.")

    present = [s for s in SPLITS if (root / s).is_dir()]
    skipped: list[Skipped] = []
    splits: dict[str, list[Sample]] = {}
    if present and "train" not in present:
        raise DataError(
            f"{root} has {'/ and '.join(present)}/ but no train/ folder. Add train/ with one folder "
            f"per class, or pass a folder of class folders."
        )
    if present:
        classes, samples, bad = scan_class_folders(root / "train")
        splits["train"] = samples
        skipped += bad
        for name in present[1:]:
            _, samples, bad = scan_class_folders(root / name, classes)
            splits[name] = samples
            skipped += bad
    else:
        classes, samples, bad = scan_class_folders(root)
        splits["train"] = samples
        skipped += bad
    check_splits(classes, splits, root)
    return ImageData(root=root, classes=classes, splits=splits, skipped=tuple(sorted(skipped, key=_path_key)))


def scan_class_folders(
    folder: Path, classes: Sequence[str] | None = None
) -> tuple[tuple[str, ...], list[Sample], list[Skipped]]:
    """Scan ``folder``'s class folders (recursively) without decoding any image.

    With ``classes=None`` the classes are the sorted non-hidden sub-folder names; with
    ``classes`` given (train's classes, when scanning ``val/`` or ``test/``) every
    sub-folder must be one of them (a class may be absent). Returns
    ``(classes, samples, skipped)``; samples are sorted by label, then path.

    Hidden entries (``.name``) and files whose extension is not an image extension are
    ignored silently; empty, unreadable, non-regular and non-image files, broken
    symlinks, symlink loops and known placeholders are returned in ``skipped``.
    """
    folder = Path(folder)
    class_dirs, stray = _class_dirs(folder)
    classes, label_of = _labels(folder, class_dirs, classes)
    samples: list[Sample] = []
    skipped: list[Skipped] = list(stray)
    empty: list[tuple[str, list[Skipped]]] = []
    for name in sorted(class_dirs):
        found, rejected = _scan_class(class_dirs[name], label_of[_nfc(name)])
        samples += found
        skipped += rejected
        if not found:
            empty.append((name, rejected))
    _check_found(folder, class_dirs, samples, skipped, empty)
    samples.sort(key=lambda s: (s.label, _path_key(s)))
    skipped.sort(key=_path_key)
    return classes, samples, skipped


def _class_dirs(folder: Path) -> tuple[dict[str, Path], list[Skipped]]:
    """The non-hidden sub-folders of ``folder`` by name, and the image files lying beside them."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        raise DataError(f"folder {folder} does not exist. Check the --data path.") from None
    except NotADirectoryError:
        raise DataError(f"{folder} is not a folder. Pass a folder of class folders.") from None
    except PermissionError:
        raise DataError(f"folder {folder} cannot be read (permission denied). Fix its permissions.") from None
    class_dirs: dict[str, Path] = {}
    stray: list[Skipped] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if _is_dir(entry):
            class_dirs[entry.name] = path
        elif _is_image_name(entry.name) or _is_unsupported_picture(entry.name):
            stray.append(Skipped(path, "not inside a class folder"))
    if not class_dirs:
        found = f" It holds {len(stray)} image file(s) directly;" if stray else ""
        raise DataError(
            f"no class folders in {folder}.{found} put the images in one sub-folder per class "
            f"(e.g. {folder}/ants/ and {folder}/bees/), the folder name being the label."
        )
    return class_dirs, stray


def _labels(folder: Path, class_dirs: dict[str, Path], classes: Sequence[str] | None) -> tuple[tuple[str, ...], dict[str, int]]:
    """The classes (train's, or the sorted folder names) and each (NFC) folder name's label."""
    classes = tuple(sorted(class_dirs)) if classes is None else tuple(classes)
    label_of = {_nfc(c): i for i, c in enumerate(classes)}
    unknown = sorted(name for name in class_dirs if _nfc(name) not in label_of)
    if unknown:
        raise DataError(
            f"{folder} has class folder(s) {', '.join(map(repr, unknown))} that the train folder "
            f"does not have (train classes: {', '.join(map(repr, classes))}). Rename or remove "
            f"them, or add them to train/."
        )
    return classes, label_of


def _scan_class(folder: Path, label: int) -> tuple[list[Sample], list[Skipped]]:
    """Every file under one class folder: usable as a sample, or skipped with a reason."""
    found: list[Sample] = []
    rejected: list[Skipped] = []
    for path, reason in _walk_files(folder):
        if reason is None:
            found.append(Sample(path, label))
        else:
            rejected.append(Skipped(path, reason))
    return found, rejected


def _check_found(folder: Path, class_dirs: dict[str, Path], samples: list[Sample], skipped: list[Skipped],
                 empty: list[tuple[str, list[Skipped]]]) -> None:
    """Refuse a folder without images, or a class folder without a usable image, saying why."""
    if not samples:
        raise DataError(
            f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} in its class "
            f"folders {', '.join(map(repr, sorted(class_dirs)))}; {len(skipped)} file(s) rejected"
            + (f", e.g. {skipped[0].path.name}: {skipped[0].reason}" if skipped else "")
            + "). Add images, or check the --data path."
        )
    if empty:
        name, rejected = empty[0]
        why = f" ({len(rejected)} file(s) rejected, e.g. {rejected[0].path.name}: {rejected[0].reason})" if rejected else ""
        others = f" (also empty: {', '.join(repr(n) for n, _ in empty[1:])})" if len(empty) > 1 else ""
        raise DataError(
            f"class folder {class_dirs[name]} has no usable images{why}{others}. Add images "
            f"({', '.join(IMAGE_EXTENSIONS)}) or remove the folder."
        )


def stratified_split(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split ``samples`` into ``(train, val)``, class by class, reproducibly.

    Each class keeps ``round(n * val_fraction)`` images for val, at least 1 when it has
    2 or more images and never all of them (a class with one image stays in train).
    The result depends only on the samples' paths and labels, ``val_fraction`` and
    ``seed``, not on their order; each class is shuffled with its own seeded generator,
    so adding a class does not change how the others are split.

    Example:
        >>> samples = [Sample(Path(f"{i}.jpg"), label=i % 2) for i in range(10)]
        >>> train, val = stratified_split(samples, 0.2, seed=0)
        >>> len(train), sorted(s.label for s in val)
        (8, [0, 1])
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not (
        0.0 < float(val_fraction) < 1.0
    ):
        raise UsageError(
            f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}. "
            f"Use e.g. 0.2 to hold out 20% of each class for validation."
        )
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=_path_key)
        random.Random(f"qtransfer-split:{seed}:{label}").shuffle(group)
        n = len(group)
        n_val = math.floor(n * float(val_fraction) + 0.5)
        n_val = 0 if n < 2 else min(max(n_val, 1), n - 1)
        val += group[:n_val]
        train += group[n_val:]
    key = lambda s: (s.label, _path_key(s))  # noqa: E731
    return sorted(train, key=key), sorted(val, key=key)


def check_splits(classes: Sequence[str], splits: dict[str, list[Sample]], root: Path) -> None:
    """Raise :class:`DataError` unless the splits can train and evaluate a classifier.

    Rules (checked at scan time and again after undecodable images are dropped):

    * at least 2 classes, and a non-empty ``train`` split;
    * only ``train``, ``val`` and ``test`` splits; every label indexes into ``classes``;
    * every class has at least one train image (a class without any cannot be learnt,
      and a val/test class without train images could never be predicted);
    * ``val`` and ``test``, when present, are not empty; ``val`` holds at least 2 classes
      (accuracy on a one-class val set says nothing, and it picks the checkpoint);
    * no file is in two splits (that would leak test images into training).
    """
    root = Path(root)
    classes = tuple(classes)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise DataError(f"unknown split name(s) {unknown} for {root}; expected among {list(SPLITS)}.")
    if len(classes) < 2:
        only = f"only one class, {classes[0]!r}" if classes else "no classes"
        raise DataError(
            f"{root} has {only}; a classifier needs at least 2 class folders "
            f"(e.g. ants/ and bees/). Add another class folder."
        )
    train = splits.get("train") or []
    if not train:
        raise DataError(f"no usable train images in {root}. Add images to its class folders.")
    counts: dict[str, Counter[int]] = {}
    for name, samples in splits.items():
        counts[name] = Counter(s.label for s in samples)
        bad = sorted(label for label in counts[name] if not 0 <= label < len(classes))
        if bad:
            raise DataError(f"split {name!r} of {root} has labels {bad} outside the {len(classes)} classes.")
    missing = [c for i, c in enumerate(classes) if counts["train"][i] == 0]
    if missing:
        raise DataError(
            f"class(es) {', '.join(map(repr, missing))} of {root} have no usable train images "
            f"(all missing or undecodable). Add images to train/{missing[0]}/ (or the class folder) "
            f"or remove that class everywhere."
        )
    for name in ("val", "test"):
        if name in splits and not splits[name]:
            raise DataError(
                f"the {name} split of {root} has no usable images. Add images to {name}/, or remove "
                f"{name}/ (a validation set is then split off train)."
            )
    if "val" in splits and len(counts["val"]) < 2:
        (label,) = counts["val"]
        absent = [c for i, c in enumerate(classes) if counts["val"][i] == 0]
        raise DataError(
            f"the val split of {root} holds only class {classes[label]!r} (no images of "
            f"{', '.join(map(repr, absent))}); validation accuracy would mean nothing. Add images of "
            f"the other classes to val/ (each class with 2+ images gets one when val is split off train)."
        )
    seen: dict[Path, str] = {}
    for name in SPLITS:
        for s in splits.get(name, []):
            first = seen.setdefault(s.path, name)
            if first != name:
                raise DataError(
                    f"{s.path} is in both the {first} and the {name} split of {root}. Each file must "
                    f"be in one split only."
                )


# ---------------------------------------------------------------------------- helpers


def _nfc(name: str) -> str:
    """Class names compare in NFC, so 'café' copied from macOS (NFD) matches 'café'."""
    return unicodedata.normalize("NFC", name)


def _path_key(item: Sample | Skipped) -> str:
    return str(item.path)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _is_unsupported_picture(name: str) -> bool:
    return name.lower().endswith(_UNSUPPORTED_PICTURES)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; False for broken ones and loops
    except OSError:
        return False


# Leading bytes of the formats in IMAGE_EXTENSIONS.
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
)


def _looks_like_image(head: bytes) -> bool:
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return len(head) >= 2 and head[:1] == b"P" and head[1:2] in b"123456"  # PBM/PGM/PPM


def _walk_files(top: Path):
    """Yield ``(path, None)`` for candidate images under ``top`` and ``(path, reason)`` for rejects.

    Follows symlinked folders but never enters a folder twice (by device and inode), so
    a symlink loop ends. Sorted by name at every level.
    """
    seen: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as e:
            yield folder, _stat_reason(folder, e)
            continue
        if (st.st_dev, st.st_ino) in seen:
            yield folder, "symlink to a folder already scanned (loop), not followed"
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            yield folder, f"folder cannot be listed ({e.strerror or e})"
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if _is_dir(entry):
                subdirs.append(path)
                continue
            if _is_unsupported_picture(entry.name):
                yield path, _unsupported_reason(entry.name)
                continue
            if not _is_image_name(entry.name):
                continue  # README.txt, Thumbs.db, labels.csv ...: not ours, ignored silently
            yield path, _file_reason(path)
        stack.extend(reversed(subdirs))  # pop() then visits them in sorted order


def image_inputs(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, str | None]]:
    """The image files of ``inputs`` (files, and folders searched recursively, sorted), each with the reason
    it cannot be used or ``None``: the rule :func:`discover` applies to a data folder's files (known
    placeholders, empty files, unsupported or unrecognised formats). A missing input is a :class:`DataError`.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "empty.jpg").write_bytes(b"")
        >>> [(p.name, r) for p, r in image_inputs([folder])]
        [('empty.jpg', 'empty file (0 bytes)')]
    """
    found: list[tuple[Path, str | None]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += list(_walk_files(path))
        elif path.exists():
            found.append((path, _unsupported_reason(path.name) if _is_unsupported_picture(path.name) else _file_reason(path)))
        elif path.is_symlink():
            found.append((path, _stat_reason(path, FileNotFoundError(errno.ENOENT, "no such file"))))
        else:
            raise DataError(f"{path} does not exist; pass image files or folders of images")
    if not found:
        raise DataError(f"no image files found in {', '.join(map(str, inputs))} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return found


def _unsupported_reason(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return f"{ext} pictures are not supported; convert to JPEG or PNG"


def _stat_reason(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(e, FileNotFoundError) and path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"broken symlink (target {target} does not exist)"
    if isinstance(e, PermissionError):
        return "cannot be read (permission denied)"
    return f"cannot be read ({e.strerror or e})"


def _file_reason(path: Path) -> str | None:
    """Why ``path`` (with an image extension) is unusable, from stat and its first bytes; None if fine."""
    try:
        st = path.stat()
    except OSError as e:
        return _stat_reason(path, e)
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (device, pipe or socket)"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            known = _PLACEHOLDERS.get(st.st_size)
            if known:
                f.seek(0)
                reason = known.get(hashlib.sha256(f.read()).hexdigest())
                if reason:
                    return reason
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not _looks_like_image(head):
        return f"not an image (content starts with {head[:8]!r}, not a known image signature)"
    return None

"""Discovering labelled images on disk, rejecting bad files cheaply, and splitting them."""

from __future__ import annotations

import hashlib
import math
import os
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from qtransfer.data import discover as data_mod
from qtransfer.data.discover import (
    ImageData,
    Sample,
    Skipped,
    check_splits,
    discover,
    scan_class_folders,
    stratified_split,
)
from qtransfer.errors import DataError, UsageError
from qtransfer.data.images import BadImageError, open_image_rgb

COLORS = [(220, 30, 30), (30, 220, 30), (30, 30, 220), (220, 220, 30)]


def img(path: Path, size=(32, 32), color=(120, 60, 30), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def make_classes(folder: Path, counts: dict[str, int], ext=".jpg") -> None:
    for i, (name, n) in enumerate(counts.items()):
        for k in range(n):
            img(folder / name / f"{k:03d}{ext}", color=COLORS[i % len(COLORS)])


def reasons(data: ImageData) -> dict[str, str]:
    return {s.path.name: s.reason for s in data.skipped}


# ------------------------------------------------------------------ layouts


def test_train_val_test_root_with_three_classes(tmp_path):
    make_classes(tmp_path / "train", {"wasps": 3, "ants": 4, "bees": 5})
    make_classes(tmp_path / "val", {"ants": 2, "bees": 2, "wasps": 2})
    make_classes(tmp_path / "test", {"ants": 1, "bees": 1, "wasps": 1}, ext=".png")
    (tmp_path / "notes").mkdir()  # other folders beside the splits are ignored
    data = discover(tmp_path)
    assert data.root == tmp_path
    assert data.classes == ("ants", "bees", "wasps")  # sorted folder names
    assert sorted(data.splits) == ["test", "train", "val"]
    assert Counter(s.label for s in data.splits["train"]) == {0: 4, 1: 5, 2: 3}
    assert Counter(s.label for s in data.splits["val"]) == {0: 2, 1: 2, 2: 2}
    assert len(data.splits["test"]) == 3
    for split in data.splits.values():
        for s in split:
            assert s.path.parent.name == data.classes[s.label]
            assert s.path.is_absolute()
    assert data.skipped == ()


def test_plain_folder_of_class_folders_gives_only_train(tmp_path):
    make_classes(tmp_path, {"cats": 3, "dogs": 2})
    data = discover(str(tmp_path))
    assert list(data.splits) == ["train"]
    assert data.classes == ("cats", "dogs")
    assert [s.label for s in data.splits["train"]] == [0, 0, 0, 1, 1]


def test_val_may_lack_a_class_if_it_keeps_two(tmp_path):
    make_classes(tmp_path / "train", {"a": 2, "b": 2, "c": 2})
    make_classes(tmp_path / "val", {"a": 1, "c": 1})
    data = discover(tmp_path)
    assert [s.label for s in data.splits["val"]] == [0, 2]


def test_order_is_sorted_and_deterministic(tmp_path):
    for name in ["b10.jpg", "a.jpg", "B.jpg", "a2.jpg", "sub/z.jpg", "sub/a.jpg"]:
        img(tmp_path / "x" / name)
    make_classes(tmp_path, {"y": 2})
    first = discover(tmp_path)
    second = discover(tmp_path)
    assert first == second
    names = [str(s.path.relative_to(tmp_path)) for s in first.splits["train"]]
    assert names == sorted(names, key=lambda n: (n[0] != "x", n))  # label, then path
    assert "x/sub/z.jpg" in names  # nested folders inside a class folder count for that class


def test_non_ascii_and_space_names(tmp_path):
    img(tmp_path / "abeille à miel" / "photo 1 é.jpg")
    img(tmp_path / "abeille à miel" / "蜂.png", fmt="PNG")
    img(tmp_path / "fourmi rouge" / "фото.jpeg")
    data = discover(tmp_path)
    assert data.classes == ("abeille à miel", "fourmi rouge")
    assert len(data.splits["train"]) == 3
    for s in data.splits["train"]:
        assert open_image_rgb(s.path).size == (32, 32)


def test_val_class_in_nfd_matches_train_class_in_nfc(tmp_path):
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    make_classes(tmp_path / "train", {nfc: 2, "tea": 2})
    make_classes(tmp_path / "val", {nfd: 1, "tea": 1})
    data = discover(tmp_path)
    assert data.classes == (nfc, "tea")
    assert [s.label for s in data.splits["val"]] == [0, 1]


def test_scan_class_folders_with_given_classes(tmp_path):
    make_classes(tmp_path, {"bees": 2})
    classes, samples, skipped = scan_class_folders(tmp_path, ["ants", "bees"])
    assert classes == ("ants", "bees")
    assert [s.label for s in samples] == [1, 1]
    assert skipped == []


def test_hymenoptera_name_resolves_through_download(tmp_path, monkeypatch):
    make_classes(tmp_path / "hymenoptera_data" / "train", {"ants": 2, "bees": 2})
    make_classes(tmp_path / "hymenoptera_data" / "val", {"ants": 1, "bees": 1})
    calls = []

    def fake_ensure(cache_dir=None, *, download=True, **kw):
        calls.append((cache_dir, download))
        return tmp_path / "hymenoptera_data"

    import qtransfer.data.hymenoptera

    monkeypatch.setattr(qtransfer.data.hymenoptera, "ensure_hymenoptera", fake_ensure)
    data = discover("hymenoptera", cache_dir=tmp_path / "cache", download=False)
    assert calls == [(tmp_path / "cache", False)]
    assert sorted(data.splits) == ["train", "val"]


def test_shared_train_folder(shared_train):
    data = discover(shared_train)
    assert data.classes == ("ants", "bees")
    counts = Counter(s.label for s in data.splits["train"])
    assert counts == {0: 123, 1: 121}
    # The official set's Flickr "image could not be found" GIF is not an ant: skipped, with why.
    assert [(s.path.name, "placeholder" in s.reason) for s in data.skipped] == [("imageNotFound.gif", True)]


# ------------------------------------------------------------------ files skipped or ignored


def test_cheaply_detectable_bad_files_are_skipped_with_a_reason(tmp_path):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    ants = tmp_path / "ants"
    (ants / "empty.jpg").write_bytes(b"")
    (ants / "text.jpg").write_text("hello, not a picture")
    (ants / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (ants / "loop1.png").symlink_to(ants / "loop2.png")
    (ants / "loop2.png").symlink_to(ants / "loop1.png")
    (ants / "phone.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    os.mkfifo(ants / "pipe.jpg")
    img(tmp_path / "stray.jpg")  # beside the class folders, not in one
    data = discover(tmp_path)
    why = reasons(data)
    assert "empty" in why["empty.jpg"]
    assert "not an image" in why["text.jpg"]
    assert "broken symlink" in why["dangling.jpg"]
    assert why["loop1.png"] == why["loop2.png"] == "symlink loop"
    assert "not supported" in why["phone.HEIC"]
    assert "not a regular file" in why["pipe.jpg"]
    assert "not inside a class folder" in why["stray.jpg"]
    assert len(data.splits["train"]) == 4
    assert [s.path for s in data.skipped] == sorted(s.path for s in data.skipped)


def test_other_files_hidden_files_and_folders_are_ignored_silently(tmp_path):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    (tmp_path / "ants" / "README.txt").write_text("about ants")
    (tmp_path / "ants" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "ants" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    img(tmp_path / "ants" / "._0001.jpg")  # macOS resource fork / hidden image
    img(tmp_path / "ants" / ".hidden" / "x.jpg")
    img(tmp_path / ".cache" / "y.jpg")  # hidden "class"
    (tmp_path / "labels.csv").write_text("a,b\n")
    data = discover(tmp_path)
    assert data.classes == ("ants", "bees")
    assert len(data.splits["train"]) == 4
    assert data.skipped == ()


def test_upper_case_extensions_count(tmp_path):
    img(tmp_path / "a" / "X.JPG")
    img(tmp_path / "b" / "Y.Png", fmt="PNG")
    assert len(discover(tmp_path).splits["train"]) == 2


def test_symlinks_to_images_and_class_folders_are_followed(tmp_path):
    store = tmp_path / "store"
    make_classes(store, {"ants": 2, "bees": 2})
    root = tmp_path / "root"
    (root / "ants").mkdir(parents=True)
    (root / "ants" / "one.jpg").symlink_to(store / "ants" / "000.jpg")
    (root / "bees").symlink_to(store / "bees", target_is_directory=True)
    data = discover(root)
    assert [s.path.relative_to(root).as_posix() for s in data.splits["train"]] == [
        "ants/one.jpg",
        "bees/000.jpg",
        "bees/001.jpg",
    ]


def test_directory_symlink_loop_terminates(tmp_path):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    (tmp_path / "ants" / "again").symlink_to(tmp_path / "ants", target_is_directory=True)
    (tmp_path / "bees" / "up").symlink_to(tmp_path, target_is_directory=True)
    data = discover(tmp_path)
    why = reasons(data)
    assert "loop" in why["again"]
    # bees/up -> root: its ants/ and bees/ are scanned once more under bees (a user's choice),
    # but the walk ends: bees/up/bees is the folder already being scanned.
    assert "loop" in why["bees"]
    assert Counter(s.label for s in data.splits["train"])[0] == 2


def test_decoding_failures_are_left_for_the_pipeline(tmp_path):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    good = (tmp_path / "ants" / "000.jpg").read_bytes()
    (tmp_path / "ants" / "cut.jpg").write_bytes(good[:40])  # valid signature, truncated
    data = discover(tmp_path)
    cut = [s for s in data.splits["train"] if s.path.name == "cut.jpg"]
    assert cut, "scanning does not decode: a truncated JPEG is caught by open_image_rgb"
    with pytest.raises(BadImageError):
        open_image_rgb(cut[0].path)


def test_placeholder_is_detected_by_content_not_name(tmp_path, shared_train):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    blob = (shared_train / "ants" / "imageNotFound.gif").read_bytes()
    (tmp_path / "bees" / "renamed.gif").write_bytes(blob)
    (tmp_path / "bees" / "imageNotFound.gif").write_bytes(blob[:-1] + b"\x00")  # same size, other bytes
    data = discover(tmp_path)
    assert list(reasons(data)) == ["renamed.gif"]
    assert hashlib.sha256(blob).hexdigest() in str(data_mod._PLACEHOLDERS)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped(tmp_path):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    secret = img(tmp_path / "ants" / "secret.jpg")
    secret.chmod(0)
    try:
        assert "permission denied" in reasons(discover(tmp_path))["secret.jpg"]
    finally:
        secret.chmod(0o644)


# ------------------------------------------------------------------ errors


def _error(data, match: str) -> str:
    with pytest.raises(DataError, match=match) as info:
        discover(data)
    return str(info.value)


def test_missing_path(tmp_path):
    msg = _error(tmp_path / "nope", "does not exist")
    assert str(tmp_path / "nope") in msg and "--data" in msg


def test_file_instead_of_folder(tmp_path):
    z = tmp_path / "data.zip"
    z.write_bytes(b"PK")
    assert "Unzip it first" in _error(z, "is a file, not a folder")


def test_no_class_folders(tmp_path):
    assert str(tmp_path) in _error(tmp_path, "no class folders")


def test_images_directly_in_the_folder(tmp_path):
    img(tmp_path / "a.jpg")
    assert "one sub-folder per class" in _error(tmp_path, "holds 1 image file")


def test_no_images_at_all(tmp_path):
    (tmp_path / "ants").mkdir()
    (tmp_path / "bees").mkdir()
    (tmp_path / "bees" / "notes.txt").write_text("x")
    assert "'ants', 'bees'" in _error(tmp_path, "no images found")


def test_all_files_rejected(tmp_path):
    (tmp_path / "ants").mkdir()
    (tmp_path / "ants" / "a.jpg").write_bytes(b"")
    _error(tmp_path, "no images found.*empty file")


def test_one_empty_class_folder_is_named(tmp_path):
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    (tmp_path / "wasps").mkdir()
    msg = _error(tmp_path, "has no usable images")
    assert str(tmp_path / "wasps") in msg and "remove the folder" in msg


def test_class_folder_whose_files_are_all_bad_says_why(tmp_path):
    make_classes(tmp_path, {"ants": 2})
    (tmp_path / "bees").mkdir()
    (tmp_path / "bees" / "x.jpg").write_bytes(b"")
    assert "empty file" in _error(tmp_path, "bees has no usable images")


def test_single_class(tmp_path):
    make_classes(tmp_path, {"ants": 3})
    assert "at least 2 class folders" in _error(tmp_path, "only one class, 'ants'")


def test_val_class_not_in_train(tmp_path):
    make_classes(tmp_path / "train", {"ants": 2, "bees": 2})
    make_classes(tmp_path / "val", {"ants": 1, "bees": 1, "wasps": 1})
    msg = _error(tmp_path, "'wasps'")
    assert str(tmp_path / "val") in msg and "train" in msg


def test_test_class_not_in_train(tmp_path):
    make_classes(tmp_path / "train", {"ants": 2, "bees": 2})
    make_classes(tmp_path / "test", {"Ants": 1})
    _error(tmp_path, "'Ants'")


def test_val_without_train(tmp_path):
    make_classes(tmp_path / "val", {"ants": 2, "bees": 2})
    _error(tmp_path, "no train/ folder")


def test_val_with_a_single_class(tmp_path):
    make_classes(tmp_path / "train", {"ants": 2, "bees": 2})
    make_classes(tmp_path / "val", {"ants": 2})
    assert "'bees'" in _error(tmp_path, "val split .* holds only class 'ants'")


def test_empty_val_folder(tmp_path):
    make_classes(tmp_path / "train", {"ants": 2, "bees": 2})
    (tmp_path / "val").mkdir()
    _error(tmp_path, "no class folders in .*val")


# ------------------------------------------------------------------ stratified_split


def _samples(counts: dict[int, int]) -> list[Sample]:
    return [Sample(Path(f"/d/c{label}/{k:04d}.jpg"), label) for label, n in counts.items() for k in range(n)]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_split_is_stratified_disjoint_and_complete(fraction):
    samples = _samples({0: 40, 1: 17, 2: 3, 3: 2, 4: 1})
    train, val = stratified_split(samples, fraction, seed=0)
    assert set(train).isdisjoint(val)
    assert sorted(train + val, key=lambda s: str(s.path)) == sorted(samples, key=lambda s: str(s.path))
    tc, vc = Counter(s.label for s in train), Counter(s.label for s in val)
    for label, n in {0: 40, 1: 17, 2: 3, 3: 2, 4: 1}.items():
        assert tc[label] >= 1
        if n >= 2:
            assert vc[label] >= 1
        else:
            assert vc[label] == 0
    assert vc[0] == math.floor(40 * fraction + 0.5)


def test_split_is_seeded_and_order_independent():
    samples = _samples({0: 30, 1: 30})
    a = stratified_split(samples, 0.3, seed=7)
    b = stratified_split(list(reversed(samples)), 0.3, seed=7)
    c = stratified_split(samples, 0.3, seed=8)
    assert a == b
    assert a != c
    assert a[0] == sorted(a[0], key=lambda s: (s.label, str(s.path)))


def test_split_of_a_class_does_not_depend_on_other_classes():
    one = stratified_split(_samples({0: 20, 1: 20}), 0.25, seed=3)[1]
    two = stratified_split(_samples({0: 20, 1: 20, 2: 9}), 0.25, seed=3)[1]
    assert [s for s in one if s.label == 0] == [s for s in two if s.label == 0]


def test_split_of_nothing_is_nothing():
    assert stratified_split([], 0.2, seed=0) == ([], [])


@pytest.mark.parametrize("fraction", [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.2", None])
def test_split_fraction_must_be_in_open_interval(fraction):
    with pytest.raises(UsageError, match="between 0 and 1"):
        stratified_split(_samples({0: 4, 1: 4}), fraction, seed=0)


# ------------------------------------------------------------------ check_splits


def _s(label: int, name: str) -> Sample:
    return Sample(Path(f"/d/{name}.jpg"), label)


OK = {"train": [_s(0, "a"), _s(1, "b")], "val": [_s(0, "c"), _s(1, "d")], "test": [_s(1, "e")]}


def test_check_splits_accepts_good_splits(tmp_path):
    check_splits(("ants", "bees"), OK, tmp_path)
    check_splits(("ants", "bees"), {"train": OK["train"]}, tmp_path)


@pytest.mark.parametrize(
    "classes, splits, match",
    [
        (("ants",), {"train": [_s(0, "a")]}, "only one class"),
        ((), {"train": []}, "no classes"),
        (("ants", "bees"), {"train": []}, "no usable train images"),
        (("ants", "bees"), {"val": OK["val"]}, "no usable train images"),
        (("ants", "bees"), {"train": [_s(0, "a")], "val": OK["val"]}, "'bees' .* no usable train images"),
        (("ants", "bees"), {"train": OK["train"], "val": []}, "val split .* no usable images"),
        (("ants", "bees"), {"train": OK["train"], "test": []}, "test split .* no usable images"),
        (("ants", "bees"), {"train": OK["train"], "val": [_s(1, "c")]}, "holds only class 'bees'"),
        (("ants", "bees"), {"train": OK["train"], "val": [_s(0, "a"), _s(1, "c")]}, "both the train and the val"),
        (("ants", "bees"), {"train": OK["train"], "valid": OK["val"]}, "unknown split"),
        (("ants", "bees"), {"train": OK["train"] + [_s(2, "x")]}, "outside the 2 classes"),
    ],
)
def test_check_splits_rules(tmp_path, classes, splits, match):
    with pytest.raises(DataError, match=match) as info:
        check_splits(classes, splits, tmp_path)
    assert str(tmp_path) in str(info.value)


def test_check_splits_after_dropping_undecodable_images(tmp_path):
    """The pipeline's second call: every image of one class failed to decode."""
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    data = discover(tmp_path)
    kept = [s for s in data.splits["train"] if s.label == 0]
    with pytest.raises(DataError, match="'bees'"):
        check_splits(data.classes, {"train": kept}, data.root)


def test_dataclasses_are_frozen():
    s = Sample(Path("a.jpg"), 0)
    with pytest.raises(Exception):
        s.label = 1  # type: ignore[misc]
    assert Skipped(Path("a"), "why").reason == "why"


def test_unreadable_file_is_skipped_even_as_root(tmp_path, monkeypatch):
    """Root ignores chmod 000, so simulate the permission error the scan would meet."""
    make_classes(tmp_path, {"ants": 2, "bees": 2})
    secret = img(tmp_path / "ants" / "secret.jpg")

    def deny(path, *args, **kwargs):
        if Path(path) == secret:
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(data_mod, "open", deny, raising=False)
    assert "permission denied" in reasons(discover(tmp_path))["secret.jpg"]

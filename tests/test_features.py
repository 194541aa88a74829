"""Feature extraction and the on-disk feature cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

import qtransfer.features.loading as loading_mod
from qtransfer.features.backbones import create_backbone
from qtransfer.errors import UsageError
from qtransfer.features.extract import FeatureCache, extract_features


def _tiny_transform():
    return T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])


def _tiny_backbone():
    """resnet18 with random (fixed-seed) weights and a 32 px transform: fast, real architecture."""
    bb = create_backbone("resnet18", weights=None)
    bb.transform = _tiny_transform()
    bb.identity["transform"] = "test:Resize(32),CenterCrop(32),ToTensor,Normalize(0.5,0.25)"
    return bb


def _write_images(folder, n, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        p = folder / f"img{i:02d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def images(tmp_path):
    return _write_images(tmp_path / "imgs", 6)


@pytest.fixture
def bb():
    return _tiny_backbone()


@pytest.fixture
def cache(tmp_path):
    return FeatureCache(tmp_path / "cache" / "features")


def _run(paths, bb, cache, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("batch_size", 4)
    return extract_features(paths, bb, cache=cache, **kw)


def test_second_run_reuses_everything(images, bb, cache):
    cold = _run(images, bb, cache)
    assert (cold.n_computed, cold.n_cached) == (6, 0)
    assert cold.features.shape == (6, bb.num_features) and cold.features.dtype == torch.float32
    assert cold.ok == list(range(6)) and cold.failures == []
    assert cold.seconds > 0
    warm = _run(images, bb, cache)
    assert (warm.n_computed, warm.n_cached) == (0, 6)
    torch.testing.assert_close(warm.features, cold.features, atol=0, rtol=0)


def test_cached_features_equal_fresh_ones_and_direct_forward(images, bb, cache):
    cached = _run(images, bb, cache)
    _run(images, bb, cache)
    fresh = _run(images, bb, None)
    torch.testing.assert_close(cached.features, fresh.features, atol=1e-5, rtol=0)
    x = torch.stack([_tiny_transform()(Image.open(p).convert("RGB")) for p in images])
    with torch.inference_mode():
        direct = bb(x)
    torch.testing.assert_close(cached.features, direct, atol=1e-5, rtol=1e-5)


def test_changed_image_is_recomputed(images, bb, cache):
    before = _run(images, bb, cache)
    Image.fromarray(np.full((40, 48, 3), 7, np.uint8)).save(images[2])
    after = _run(images, bb, cache)
    assert (after.n_computed, after.n_cached) == (1, 5)
    assert not torch.allclose(after.features[2], before.features[2])
    torch.testing.assert_close(after.features[[0, 1, 3, 4, 5]], before.features[[0, 1, 3, 4, 5]])


def test_renamed_or_moved_image_is_reused(images, bb, cache, tmp_path):
    before = _run(images, bb, cache)
    moved = tmp_path / "elsewhere" / "renamed.jpg"
    moved.parent.mkdir()
    os.replace(images[0], moved)
    after = _run([moved] + images[1:], bb, cache)
    assert (after.n_computed, after.n_cached) == (0, 6)
    torch.testing.assert_close(after.features, before.features, atol=0, rtol=0)


def test_other_backbone_or_weights_do_not_share_entries(images, bb, cache):
    _run(images, bb, cache)
    other = _tiny_backbone()  # same name, weights "none", different parameters
    with torch.no_grad():
        other.model.conv1.weight.mul_(2)
    assert other.identity == bb.identity
    assert _run(images, other, cache).n_computed == 6
    bb.identity["transform"] = "test:something else"
    assert _run(images, bb, cache).n_computed == 6


def test_corrupted_and_truncated_entries_are_recomputed(images, bb, cache):
    before = _run(images, bb, cache)
    files = sorted(cache.root.rglob("*.qtf"))
    assert len(files) == 6
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # truncated
    data = bytearray(files[1].read_bytes())
    data[-3] ^= 0xFF  # one flipped bit in the floats
    files[1].write_bytes(bytes(data))
    files[2].write_bytes(b"")  # empty
    assert cache.stats()["corrupt"] == 3
    after = _run(images, bb, cache)
    assert (after.n_computed, after.n_cached) == (3, 3)
    torch.testing.assert_close(after.features, before.features, atol=1e-5, rtol=0)
    assert cache.stats()["corrupt"] == 0 and cache.stats()["features"] == 6


def test_undecodable_images_are_failures_cached_as_such(images, bb, cache, tmp_path, monkeypatch):
    broken = tmp_path / "imgs" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "imgs" / "missing.jpg"
    paths = images[:2] + [broken] + images[2:] + [missing]
    cold = _run(paths, bb, cache)
    assert cold.ok == [0, 1, 3, 4, 5, 6]
    assert cold.features.shape == (6, bb.num_features)
    failed = dict(cold.failures)
    assert set(failed) == {broken, missing}
    assert failed[broken] and "read" in failed[missing]
    assert cache.stats()["failures"] == 1  # a missing file has no content to key on

    def no_decoding(path):
        raise AssertionError(f"warm run decoded {path}")

    monkeypatch.setattr(loading_mod, "open_image_rgb", no_decoding)
    warm = _run(paths, bb, cache)
    assert warm.failures == cold.failures and warm.ok == cold.ok
    assert (warm.n_computed, warm.n_cached) == (0, 6 + 1)
    torch.testing.assert_close(warm.features, cold.features, atol=0, rtol=0)


def test_all_images_bad_gives_empty_features(tmp_path, bb, cache):
    p = tmp_path / "bad.png"
    p.write_bytes(b"nope")
    ex = _run([p], bb, cache)
    assert ex.features.shape == (0, bb.num_features) and ex.ok == [] and len(ex.failures) == 1


def test_no_cache_stores_nothing(images, bb, tmp_path):
    ex = _run(images, bb, None)
    assert ex.n_computed == 6 and not (tmp_path / "cache").exists()


def test_cache_stats_entries_and_clear(images, bb, cache, tmp_path):
    assert cache.stats()["entries"] == 0 and cache.clear() == 0  # absent root is fine
    bad = tmp_path / "bad.gif"
    bad.write_bytes(b"GIF89a broken")
    _run(images + [bad], bb, cache)
    stats = cache.stats()
    assert stats["entries"] == 7 and stats["features"] == 6 and stats["failures"] == 1
    assert stats["bytes"] > 6 * bb.num_features * 4
    assert stats["backbones"] == {"resnet18 none": 7}
    assert stats["root"] == str(cache.root)
    kinds = sorted(e.kind for e in cache.entries())
    assert kinds == ["failure"] + ["features"] * 6
    (cache.entries()[0].path.parent / ".leftover.qtf.tmp").write_bytes(b"x")
    assert cache.clear() == 7
    assert cache.stats()["entries"] == 0 and not list(cache.root.rglob("*.tmp"))
    assert _run(images, bb, cache).n_computed == 6


def test_cache_get_put_roundtrip_and_key_checks(cache):
    key = "ab" * 32
    assert cache.get(key) is None
    vec = np.arange(5, dtype=np.float64)
    cache.put(key, vec, {"backbone": "x"})
    got = cache.get(key)
    assert got.dtype == np.float32 and np.array_equal(got, vec.astype(np.float32))
    cache.put(key, "not an image (unrecognised format)")
    assert cache.get(key) == "not an image (unrecognised format)"
    with pytest.raises(UsageError):
        cache.path("../../etc/passwd")
    with pytest.raises(UsageError):
        cache.put(key, np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("workers", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 4, 6])
def test_folded_channels_last_extraction_equals_eager(images, bb, workers, batch_size):
    """The product's fast path (batch norm folded, channels-last, decoding ahead) gives eager's features."""
    with torch.inference_mode():
        eager = bb(torch.stack([bb.transform(Image.open(p).convert("RGB")) for p in images]))
    ex = _run(images, bb, None, num_workers=workers, batch_size=batch_size)
    torch.testing.assert_close(ex.features, eager, atol=1e-4, rtol=1e-4)
    assert ex.ok == list(range(len(images)))
    # the caller's backbone is left as it was
    assert bb.model.conv1.weight.is_contiguous() and not bb.training


def test_the_cpu_batch_is_the_architectures_own_unless_given(images, bb, monkeypatch):
    """``batch_size=None`` takes the registry's ``cpu_batch`` on the CPU."""
    import dataclasses

    from qtransfer.features import extract
    from qtransfer.features.backbones import BACKBONES

    assert BACKBONES["mobilenet_v2"].cpu_batch == 6 and BACKBONES["resnet18"].cpu_batch == 8
    sizes = []
    prepare = extract.prepare_forward

    def counting(backbone, device="cpu"):
        forward, convert = prepare(backbone, device)
        return (lambda x: sizes.append(len(x)) or forward(x)), convert

    monkeypatch.setattr(extract, "prepare_forward", counting)
    bb.spec = dataclasses.replace(bb.spec, cpu_batch=4)
    _run(images, bb, None, batch_size=None)
    assert sizes == [4, 2]
    sizes.clear()
    _run(images, bb, None, batch_size=5)
    assert sizes == [5, 1]


def test_bad_arguments(images, bb):
    for bad in (0, True, 2.0):
        with pytest.raises(UsageError, match="batch_size"):
            _run(images, bb, None, batch_size=bad)
    with pytest.raises(UsageError, match="num_workers"):
        _run(images, bb, None, num_workers=-1)


def test_progress_bar_goes_to_stderr_only_when_asked(images, bb, capsys):
    _run(images, bb, None, progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    _run(images, bb, None, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "features resnet18" in err


_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    from torchvision import transforms as T
    from qtransfer.features.backbones import create_backbone
    from qtransfer.features.extract import FeatureCache, extract_features

    folder, cache_root, out = sys.argv[1:4]
    torch.manual_seed(0)
    bb = create_backbone("resnet18", weights=None)
    bb.transform = T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor()])
    bb.identity["transform"] = "test:concurrent32"
    paths = sorted(Path(folder).glob("*.*"))
    ex = extract_features(paths, bb, cache=FeatureCache(cache_root), batch_size=2, progress=False)
    torch.save(ex.features, out)
    print(ex.n_computed, ex.n_cached, len(ex.failures))
    """
)


def test_two_processes_extracting_into_one_cache(tmp_path):
    folder = tmp_path / "imgs"
    _write_images(folder, 16, size=(36, 36))
    (folder / "broken.jpg").write_bytes(b"junk")
    root = tmp_path / "shared-cache"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(folder), str(root), str(tmp_path / f"out{k}.pt")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        computed, cached, failures = map(int, out.split())
        assert computed + cached == 17 and failures == 1
    a, b = (torch.load(tmp_path / f"out{k}.pt") for k in range(2))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    cache = FeatureCache(root)
    stats = cache.stats()
    assert stats["corrupt"] == 0 and stats["features"] == 16 and stats["failures"] == 1
    assert not list(root.rglob("*.tmp"))


@pytest.mark.slow
def test_shared_data_with_pretrained_mobilenet(shared_train, mobilenet_weights, tmp_path):
    paths = sorted(p for p in shared_train.rglob("*") if p.is_file())
    bb = create_backbone("mobilenet_v2", weights=mobilenet_weights)
    cache = FeatureCache(tmp_path / "features")
    cold = extract_features(paths, bb, cache=cache, progress=False)
    assert cold.n_computed == len(paths)
    assert cold.features.shape == (len(cold.ok), 1280) and torch.isfinite(cold.features).all()
    warm = extract_features(paths, bb, cache=cache, progress=False)
    assert warm.n_computed == 0  # speed is measured in benchmarks/, not asserted here
    torch.testing.assert_close(warm.features, cold.features, atol=0, rtol=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_unbuilt_backbone_decodes_ahead_and_equals_the_built_ones_features(tmp_path, workers, monkeypatch):
    """Given a BackboneRef, images are decoded while it is built, with torchvision-free preprocessing:
    the same features as the built backbone's own transform, failures included, in order."""
    from qtransfer.features import extract
    from qtransfer.features.backbones import resolve_backbone

    paths = _write_images(tmp_path / "imgs", 5, size=(300, 260)) + _write_images(tmp_path / "tall", 4, size=(90, 130))
    broken = tmp_path / "imgs" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    paths.insert(3, broken)
    ref = resolve_backbone("resnet18", weights=None)
    monkeypatch.setattr(extract, "DECODE_AHEAD_BYTES", 4 * 3 * 224 * 224)  # 4 ahead, the rest in chunks
    ahead = extract_features(paths, ref, cache=None, progress=False, num_workers=workers, batch_size=3)
    built = ahead.backbone
    with torch.inference_mode():
        eager = built(torch.stack([built.transform(Image.open(p).convert("RGB")) for i, p in enumerate(paths) if i != 3]))
    assert ahead.ok == [i for i in range(len(paths)) if i != 3]
    assert [p for p, _ in ahead.failures] == [broken]
    torch.testing.assert_close(ahead.features, eager, atol=1e-5, rtol=1e-5)
    again = extract_features(paths, built, cache=None, progress=False, num_workers=workers, batch_size=3)
    torch.testing.assert_close(ahead.features, again.features, atol=0, rtol=0)


def test_decode_ahead_hands_back_an_error_of_its_thread(tmp_path):
    from qtransfer.features.loading import DecodeAhead

    path = _write_images(tmp_path, 1)[0]

    def fails(img):
        raise RuntimeError("transform bug")

    ahead = DecodeAhead([(0, path)], fails)
    with pytest.raises(RuntimeError, match="transform bug"):
        ahead.stop()


def test_a_chunk_is_decoded_whole_before_its_first_image_is_handed_over(tmp_path, monkeypatch):
    """Decoding and the forward pass take turns: no image of a chunk is yielded while others of
    it are still being decoded (they would compete with the backbone for the cores)."""
    import time

    from qtransfer.features import loading

    monkeypatch.setattr(loading, "DECODE_CHUNK", 4)
    paths = _write_images(tmp_path, 6)
    finished = []

    def slow_after_the_first(img):
        if finished:
            time.sleep(0.05)
        finished.append(img.size)
        return img.size

    stream = loading.iter_loaded(list(enumerate(paths)), slow_after_the_first, workers=2)
    first = next(stream)
    assert first[0] == 0 and len(finished) == 4  # the whole first chunk, not just its first image
    assert [i for i, _ in stream] == [1, 2, 3, 4, 5] and len(finished) == 6


def test_decode_ahead_shortens_thread_switches_only_while_it_runs(tmp_path):
    import sys

    from qtransfer.features.loading import AHEAD_SWITCH_INTERVAL, DecodeAhead

    path = _write_images(tmp_path, 1)[0]
    before = sys.getswitchinterval()
    seen = []

    def fails(img):
        seen.append(sys.getswitchinterval())
        raise RuntimeError("transform bug")

    ahead = DecodeAhead([(0, path)], fails)
    with pytest.raises(RuntimeError):
        ahead.stop()
    assert seen == [pytest.approx(AHEAD_SWITCH_INTERVAL)] and sys.getswitchinterval() == before

"""Backbone features, computed once per image and cached on disk.

The frozen backbone is by far the most expensive part of training a quantum head, and its
output for a given image never changes. :func:`extract_features` therefore keys each image's
features (:func:`feature_key`) on *what determines them*:

* the backbone's ``identity`` (architecture, weights, preprocessing; for random weights also
  what draws them: a digest of a built backbone's parameters, or the seed and the torch and
  torchvision versions for an unbuilt one),
* :data:`~qtransfer.features.cache.FEATURE_FORMAT` (bumped when the way features are computed changes),
* the SHA-256 of the image file's bytes (so a renamed or moved image is reused, an edited
  one is recomputed).

Given a :class:`~qtransfer.features.backbones.BackboneRef`, the backbone is built only when
some image is not cached: a warm run neither imports torchvision nor loads the weights; a
cold one decodes images while it is built (:class:`~qtransfer.features.loading.DecodeAhead`,
preprocessed by :class:`~qtransfer.features.preprocess.ImagePreprocess`, bit for bit the
built backbone's transform).
Undecodable images are cached as failures with their reason, so a warm run reports the same
skips without decoding again. Entries live in a :class:`~qtransfer.features.cache.FeatureCache`.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from qtransfer.features import FeatureCache, extract_features, resolve_backbone
    >>> tmp = Path(tempfile.mkdtemp())
    >>> paths = [tmp / "red.png", tmp / "blue.png"]
    >>> for path, colour in zip(paths, ("red", "blue")):
    ...     Image.new("RGB", (40, 30), colour).save(path)
    >>> ref = resolve_backbone("resnet18", weights=None)
    >>> cache = FeatureCache(tmp / "features")
    >>> ex = extract_features(paths, ref, cache=cache, progress=False)
    >>> ex.features.shape, ex.n_computed, ex.backbone is not None
    (torch.Size([2, 512]), 2, True)
    >>> again = extract_features(paths, ref, cache=cache, progress=False)   # all cached: nothing built
    >>> again.n_cached, again.backbone is None, torch.equal(again.features, ex.features)
    (2, True, True)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from qtransfer.errors import UsageError
from qtransfer.features.augment import AugmentViews
from qtransfer.features.backbones import Backbone, BackboneRef
from qtransfer.features.cache import FEATURE_FORMAT, FeatureCache
from qtransfer.features.loading import DecodeAhead, iter_loaded
from qtransfer.paths import sha256_file

__all__ = ["DEFAULT_BATCH_SIZE", "Extraction", "extract_features", "feature_key", "prepare_forward"]

#: images per forward pass off the CPU (CUDA; not measured here: no GPU). On the CPU each
#: architecture has its own (:attr:`BackboneSpec.cpu_batch <qtransfer.features.backbones.BackboneSpec>`).
DEFAULT_BATCH_SIZE = 8
#: most bytes of pixels decoded ahead while the backbone is built (:func:`_build_decoding_ahead`)
DECODE_AHEAD_BYTES = 64 << 20


def _fingerprint(backbone: Backbone | BackboneRef) -> str:
    """Identity text for keys; random weights (``"none"``) also say what drew them."""
    ident = dict(backbone.identity)
    if ident.get("weights") != "none":
        return json.dumps(ident, sort_keys=True)
    if isinstance(backbone, BackboneRef):  # built from seed 0 by BackboneRef.build
        ident["weights"] = f"none:seed=0,torch={metadata.version('torch')},torchvision={metadata.version('torchvision')}"
    else:  # a built backbone may have been drawn otherwise: its parameters decide
        ident["weights"] = f"none:{backbone.parameter_digest()}"
    return json.dumps(ident, sort_keys=True)


def feature_key(backbone_fingerprint: str, image_sha256: str) -> str:
    """Cache key of one image's features: hash of (backbone identity, format, image bytes)."""
    h = hashlib.sha256()
    h.update(f"qtransfer-features/{FEATURE_FORMAT}\n".encode())
    h.update(backbone_fingerprint.encode())
    h.update(b"\n")
    h.update(image_sha256.encode())
    return h.hexdigest()


@dataclass
class Extraction:
    """Result of :func:`extract_features`.

    ``features[i]`` belongs to ``paths[ok[i]]``; ``failures`` lists ``(path, reason)`` for
    images that could not be used; ``n_cached + n_computed`` counts every path.
    ``backbone`` is the built backbone, or ``None`` when every image was cached. With augmented
    views, ``features`` is ``(len(ok), views, F)`` and an image fails if any of its views does.
    """

    features: torch.Tensor
    ok: list[int]
    failures: list[tuple[Path, str]] = field(default_factory=list)
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    backbone: Backbone | None = None


def prepare_forward(backbone: Backbone, device: str | torch.device = "cpu") -> tuple[Callable, Callable]:
    """``(forward, convert)``: how the backbone runs, and how a batch is laid out for it.

    On the CPU, batch norm is folded into the convolutions
    (:func:`~qtransfer.features.fold.fold_batch_norm`) and activations are channels-last. On 2026-11-27
    (``benchmarks/extraction.py``, 2 cores, median of 3 cold passes over 245 images)
    mobilenet_v2 took 5.07 s this way against 6.98 s channels-last alone and 13.9 s eager
    with inline decoding (features within 1.3e-5); resnet18 9.3 s either way. Elsewhere
    (CUDA) the module runs as it is.
    """
    if torch.device(device).type != "cpu" or not backbone.spec.fold:  # fold: torchvision's architectures only
        return backbone.model, lambda x: x
    from qtransfer.features.fold import fold_batch_norm

    fused = fold_batch_norm(backbone.model).to(memory_format=torch.channels_last)
    return fused, lambda x: x.contiguous(memory_format=torch.channels_last)


def _lookup(paths: Sequence[Path], fingerprint: str, cache: FeatureCache | None, n_feat: int,
            augment: AugmentViews | None, crop: int):
    """Hash every image; return (results so far, cache keys, images to decode, their vectors to compute,
    number cached).

    A vector is one image's (index ``i``) or, with ``augment``, one view ``v`` of it (index
    ``i * views + v``). ``todo`` holds ``(i, source)`` per image with a vector to compute, its source
    the path, or with ``augment`` ``(path, (sha256, views to compute))`` (decoded once for all of them);
    ``jobs[i]`` are the indices of those vectors.
    """
    results: dict[int, np.ndarray | str] = {}
    keys: dict[int, str] = {}
    todo: list[tuple[int, Any]] = []
    jobs: dict[int, list[int]] = {}
    n_cached = 0
    n_views = augment.views if augment is not None else 1
    for i, p in enumerate(paths):
        try:
            digest = sha256_file(p)
        except OSError as e:
            for v in range(n_views):
                results[i * n_views + v] = f"cannot be read ({e.strerror or e})"
            continue
        missing = []
        for v in range(n_views):
            job = i * n_views + v
            if cache is not None:
                extra = "" if augment is None else "\n" + augment.key_text(crop, v)
                key = keys[job] = feature_key(fingerprint + extra, digest)
                hit = cache.get(key)
                if isinstance(hit, np.ndarray) and hit.shape != (n_feat,):
                    hit = None  # cannot happen unless the key scheme is broken; recompute
                if hit is not None:
                    results[job] = hit
                    n_cached += 1
                    continue
            missing.append(v)
        if missing:
            jobs[i] = [i * n_views + v for v in missing]
            todo.append((i, p if augment is None else (p, (digest, tuple(missing)))))
    return results, keys, todo, jobs, n_cached


def extract_features(
    paths: Sequence[str | os.PathLike],
    backbone: Backbone | BackboneRef,
    *,
    cache: FeatureCache | None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    num_workers: int | None = None,
    augment: AugmentViews | None = None,
    built: Backbone | None = None,
) -> Extraction:
    """Features of every image in ``paths``, from ``cache`` where possible.

    Args:
        paths: image files; the result's ``ok`` indexes into this sequence.
        backbone: a built :class:`~qtransfer.features.backbones.Backbone`, or a
            :class:`~qtransfer.features.backbones.BackboneRef`, built only if an image is not cached.
        cache: a :class:`~qtransfer.features.cache.FeatureCache`, or ``None`` to compute
            everything and store nothing.
        batch_size: images per forward pass; ``None``: the architecture's
            ``spec.cpu_batch`` on the CPU (6 for mobilenet_v2, 8 for resnet18), else
            :data:`DEFAULT_BATCH_SIZE`.
        device: where the backbone runs (it is moved there).
        progress: show a tqdm bar on stderr.
        num_workers: decoding threads (``None``: one per torch thread; ``0``: decode inline).
        augment: instead of the backbone's preprocessing alone, ``augment.views`` seeded augmented views
            of each image (:class:`~qtransfer.features.augment.AugmentViews`), each cached under its own
            key; the result's ``features`` are then ``(len(ok), views, F)`` and ``n_cached`` /
            ``n_computed`` count views.
        built: the backbone ``backbone`` (a BackboneRef) built by an earlier call (its ``Extraction.backbone``),
            used instead of building it again; the cache keys stay the reference's.

    Every image file is hashed on each call (cheap); unreadable or undecodable images land
    in ``failures`` (and undecodable ones are cached as such).
    """
    t0 = time.perf_counter()
    if batch_size is None:
        batch_size = backbone.spec.cpu_batch if torch.device(device).type == "cpu" else DEFAULT_BATCH_SIZE
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    workers = max(1, torch.get_num_threads()) if num_workers is None else int(num_workers)
    if workers < 0:
        raise UsageError(f"num_workers must be >= 0, got {num_workers!r}")
    paths = [Path(p) for p in paths]
    n_feat = backbone.num_features
    fingerprint = _fingerprint(backbone) if cache is not None else ""
    ref = backbone if isinstance(backbone, BackboneRef) else backbone.ref
    if augment is not None and ref is None:
        raise UsageError("augmented views need a backbone built by resolve_backbone(...).build() or create_backbone()")
    prep = ref.image_preprocess() if augment is not None else None
    results, keys, todo, jobs, n_cached = _lookup(paths, fingerprint, cache, n_feat, augment, prep.crop if prep else 0)
    n_todo = sum(len(j) for j in jobs.values())

    built = backbone if isinstance(backbone, Backbone) else built
    if todo:
        early: list[tuple[int, Any]] = []
        if built is None or augment is not None:  # preprocess as the backbone would (bit for bit), without torchvision
            prep = prep or backbone.image_preprocess()
            decode = prep.pixels if augment is None else (
                lambda image, views: [augment.pixels(image, prep, views[0], v) for v in views[1]])
            collate = lambda batch: prep.batch(batch, device)  # noqa: E731
            if built is None:  # build it, decoding meanwhile
                built, early = _build_decoding_ahead(backbone, todo, device, prep, decode, workers,
                                                     augment.views if augment is not None else 1)
        else:
            decode, collate = built.transform, lambda batch: torch.stack(batch).to(device, non_blocking=True)
        loaded = itertools.chain(early, iter_loaded(todo[len(early):], decode, workers))
        meta = {"backbone": backbone.identity.get("backbone", ""), "weights": backbone.identity.get("weights", "")}
        _compute(n_todo, jobs, built, results, keys, cache, meta, batch_size, device, progress, loaded, collate)

    n_views = augment.views if augment is not None else 1
    rows = [[results.get(i * n_views + v) for v in range(n_views)] for i in range(len(paths))]
    ok = [i for i, row in enumerate(rows) if all(isinstance(r, np.ndarray) for r in row)]
    failures = [(paths[i], next(r for r in row if isinstance(r, str))) for i, row in enumerate(rows)
                if any(isinstance(r, str) for r in row)]
    shape = (n_feat,) if augment is None else (n_views, n_feat)
    if ok:
        feats = torch.from_numpy(np.stack([np.stack(rows[i]) if augment else rows[i][0] for i in ok]).astype(np.float32, copy=False))
    else:
        feats = torch.zeros((0, *shape), dtype=torch.float32)
    return Extraction(features=feats, ok=ok, failures=failures, n_cached=n_cached, n_computed=n_todo,
                      seconds=time.perf_counter() - t0, backbone=built)


def _build_decoding_ahead(ref: BackboneRef, todo: list[tuple[int, Any]], device: str | torch.device, prep,
                          decode: Callable, workers: int, per_image: int = 1) -> tuple[Backbone, list[tuple[int, Any]]]:
    """``ref.build(device)``, while one thread decodes the first images (none with ``workers=0``).

    Returns the backbone and ``(index, pixels | reason)`` of the images decoded meanwhile (a
    prefix of ``todo``, at most :data:`DECODE_AHEAD_BYTES` of pixels, ``per_image`` views each). Building imports
    torchvision, mostly Python; decoding, mostly Pillow without the GIL, fits beside it.
    """
    if workers <= 0:
        return ref.build(device), []
    ahead = DecodeAhead(todo[: max(1, DECODE_AHEAD_BYTES // (3 * prep.crop**2 * per_image))], decode)
    try:
        built = ref.build(device)
    finally:
        early = ahead.stop()
    return built, early


def _compute(
    n_todo: int,
    jobs: dict[int, list[int]],
    backbone: Backbone,
    results: dict[int, np.ndarray | str],
    keys: dict[int, str],
    cache: FeatureCache | None,
    meta: dict,
    batch_size: int,
    device: str | torch.device,
    progress: bool,
    loaded: Iterable[tuple[int, Any]],
    collate: Callable[[list], torch.Tensor],
) -> None:
    """Features of the ``(index, image | views | reason)`` in ``loaded`` into ``results`` (and ``cache``)
    at the vector indices ``jobs[index]`` (a list of views: one each); ``collate`` makes a batch of
    images into the backbone's input on ``device``."""
    if progress:
        from tqdm.auto import tqdm
    else:  # tqdm.auto warns in a notebook without ipywidgets, even for a bar that is never shown
        from tqdm import tqdm

    backbone.to(device)
    forward, convert = prepare_forward(backbone, device)
    bar = tqdm(
        total=n_todo,
        desc=f"features {backbone.identity.get('backbone', '')}",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    batch_idx: list[int] = []
    batch: list = []

    def flush() -> None:
        if not batch:
            return
        x = convert(collate(batch))
        with torch.inference_mode():
            out = forward(x)
        out = out.float().reshape(len(batch), -1).cpu().numpy()
        for j, i in enumerate(batch_idx):
            vec = np.ascontiguousarray(out[j])
            results[i] = vec
            if cache is not None:
                cache.put(keys[i], vec, meta)
        bar.update(len(batch))
        batch_idx.clear()
        batch.clear()

    try:
        for i, item in loaded:
            if isinstance(item, str):
                for job in jobs[i]:
                    results[job] = item
                    if cache is not None:
                        cache.put(keys[job], item, meta)
                bar.update(len(jobs[i]))
                continue
            for job, pixels in zip(jobs[i], item if isinstance(item, list) else [item]):
                if batch and pixels.shape != batch[0].shape:
                    flush()
                batch_idx.append(job)
                batch.append(pixels)
                if len(batch) >= batch_size:
                    flush()
        flush()
    finally:
        bar.close()

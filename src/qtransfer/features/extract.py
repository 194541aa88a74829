"""Backbone features, computed once per image and cached on disk.

The frozen backbone is by far the most expensive part of training a quantum head, and its
output for a given image never changes. :func:`extract_features` therefore keys each image's
features on *what determines them*:

* the backbone's ``identity`` (architecture, weights, preprocessing; for random weights also
  a digest of the parameters),
* :data:`FEATURE_FORMAT` (bumped when the way features are computed changes),
* the SHA-256 of the image file's bytes (so a renamed or moved image is reused, an edited
  one is recomputed).

Cache entries (:class:`FeatureCache`) carry a checksum and their length; a truncated or
corrupted entry is detected on read, deleted and recomputed. Entries are written atomically
(temporary file + rename), so concurrent runs sharing one cache never see half a file.
Undecodable images are cached as failures with their reason, so a warm run reports the same
skips without decoding again.

Example:
    >>> from qtransfer.features.backbones import create_backbone
    >>> from qtransfer.features.extract import FeatureCache, extract_features
    >>> bb = create_backbone("resnet18", weights=None)
    >>> ex = extract_features(paths, bb, cache=FeatureCache(tmp / "features"))  # doctest: +SKIP
    >>> ex.features.shape, ex.n_computed                                         # doctest: +SKIP
    (torch.Size([245, 512]), 245)
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from qtransfer.atomic import atomic_write, is_temporary
from qtransfer.features.backbones import Backbone
from qtransfer.errors import UsageError
from qtransfer.data.images import BadImageError, open_image_rgb

__all__ = [
    "FEATURE_FORMAT",
    "CacheEntry",
    "Extraction",
    "FeatureCache",
    "extract_features",
    "feature_key",
    "file_sha256",
]

#: bumped whenever the way features are computed or stored changes (invalidates old entries).
FEATURE_FORMAT = 1

_MAGIC = b"QTFC"
_KIND_FEATURES = 0
_KIND_FAILURE = 1
# magic, format, kind, reserved, meta length, payload length, sha256(meta + payload)
_HEADER = struct.Struct("<4sHBBII32s")
_SUFFIX = ".qtf"


# --------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class CacheEntry:
    """One cached item, as listed by ``qtransfer cache list``."""

    key: str
    path: Path
    kind: str  # "features" | "failure" | "corrupt"
    nbytes: int
    backbone: str  # "" when unknown (corrupt entry)
    weights: str


class FeatureCache:
    """A folder of per-image feature vectors (or failure reasons), one checksummed file each.

    Example:
        >>> cache = FeatureCache(tmp / "features")                  # doctest: +SKIP
        >>> cache.put("ab" * 32, np.zeros(4, np.float32))           # doctest: +SKIP
        >>> cache.get("ab" * 32)                                    # doctest: +SKIP
        array([0., 0., 0., 0.], dtype=float32)
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives (``root/<first 2 chars>/<key>.qtf``)."""
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise UsageError(f"feature cache key must be lowercase hex, got {key!r}")
        return self.root / key[:2] / f"{key}{_SUFFIX}"

    # -- read / write

    def get(self, key: str) -> np.ndarray | str | None:
        """Cached features (float32 vector), a recorded failure reason, or ``None``.

        ``None`` also for an entry that is truncated, corrupted or of another format; such an
        entry is deleted so that it is recomputed.
        """
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return None
        parsed = _parse(data)
        if parsed is None:
            _unlink(path)
            return None
        kind, _meta, payload = parsed
        if kind == _KIND_FAILURE:
            return payload.decode("utf-8", errors="replace")
        return np.frombuffer(payload, dtype="<f4").copy()

    def put(self, key: str, value: np.ndarray | str, meta: dict | None = None) -> None:
        """Store features or a failure reason for ``key`` atomically (temporary file + rename)."""
        if isinstance(value, str):
            kind, payload = _KIND_FAILURE, value.encode("utf-8")
        else:
            arr = np.asarray(value)
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.floating):
                raise UsageError(f"feature cache stores 1-D float vectors, got {arr.dtype} {arr.shape}")
            kind, payload = _KIND_FEATURES, arr.astype("<f4", copy=False).tobytes()
        meta_b = json.dumps(meta or {}, sort_keys=True).encode("utf-8")
        digest = hashlib.sha256(meta_b + payload).digest()
        header = _HEADER.pack(_MAGIC, FEATURE_FORMAT, kind, 0, len(meta_b), len(payload), digest)
        blob = header + meta_b + payload
        atomic_write(self.path(key), lambda f: f.write(blob))

    # -- housekeeping (``qtransfer cache list|clear``)

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                yield from sorted(sub.glob(f"*{_SUFFIX}"))

    def entries(self) -> list[CacheEntry]:
        """Every entry with its kind, size and backbone (corrupt ones listed as ``"corrupt"``)."""
        out = []
        for p in self._files():
            try:
                data = p.read_bytes()
            except OSError:
                continue
            parsed = _parse(data)
            if parsed is None:
                out.append(CacheEntry(p.stem, p, "corrupt", len(data), "", ""))
                continue
            kind, meta, _ = parsed
            out.append(
                CacheEntry(
                    p.stem,
                    p,
                    "failure" if kind == _KIND_FAILURE else "features",
                    len(data),
                    str(meta.get("backbone", "")),
                    str(meta.get("weights", "")),
                )
            )
        return out

    def stats(self) -> dict:
        """``{"root", "entries", "features", "failures", "corrupt", "bytes", "backbones"}``.

        ``backbones`` maps ``"<backbone> <weights>"`` to its number of entries.
        """
        entries = self.entries()
        by_backbone: dict[str, int] = {}
        for e in entries:
            if e.kind != "corrupt":
                label = f"{e.backbone} {e.weights}".strip()
                by_backbone[label] = by_backbone.get(label, 0) + 1
        return {
            "root": str(self.root),
            "entries": len(entries),
            "features": sum(e.kind == "features" for e in entries),
            "failures": sum(e.kind == "failure" for e in entries),
            "corrupt": sum(e.kind == "corrupt" for e in entries),
            "bytes": sum(e.nbytes for e in entries),
            "backbones": by_backbone,
        }

    def clear(self) -> int:
        """Delete every entry (and leftover temporary files); returns how many entries went."""
        n = 0
        if not self.root.is_dir():
            return 0
        for sub in list(self.root.iterdir()):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for p in list(sub.iterdir()):
                if p.name.endswith(_SUFFIX):
                    n += _unlink(p)
                elif is_temporary(p):
                    _unlink(p)
            try:
                sub.rmdir()
            except OSError:
                pass  # a concurrent run wrote into it meanwhile
        return n


def _parse(data: bytes) -> tuple[int, dict, bytes] | None:
    if len(data) < _HEADER.size:
        return None
    magic, fmt, kind, _, meta_len, payload_len, digest = _HEADER.unpack_from(data)
    if magic != _MAGIC or fmt != FEATURE_FORMAT or kind not in (_KIND_FEATURES, _KIND_FAILURE):
        return None
    body = data[_HEADER.size :]
    if len(body) != meta_len + payload_len or hashlib.sha256(body).digest() != digest:
        return None
    if kind == _KIND_FEATURES and payload_len % 4:
        return None
    try:
        meta = json.loads(body[:meta_len] or b"{}")
    except ValueError:
        return None
    return kind, meta if isinstance(meta, dict) else {}, body[meta_len:]


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------- keys


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _backbone_fingerprint(backbone: Backbone) -> str:
    """Identity text for keys; random weights (``"none"``) also hash the parameters."""
    ident = dict(backbone.identity)
    if ident.get("weights") == "none":
        cached = getattr(backbone, "_qt_param_digest", None)
        if cached is None:
            h = hashlib.sha256()
            for name, t in backbone.state_dict().items():
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
            cached = h.hexdigest()
            backbone._qt_param_digest = cached  # parameters are frozen
        ident["weights"] = f"none:{cached}"
    return json.dumps(ident, sort_keys=True)


def feature_key(backbone_fingerprint: str, image_sha256: str) -> str:
    """Cache key of one image's features: hash of (backbone identity, format, image bytes)."""
    h = hashlib.sha256()
    h.update(f"qtransfer-features/{FEATURE_FORMAT}\n".encode())
    h.update(backbone_fingerprint.encode())
    h.update(b"\n")
    h.update(image_sha256.encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- extraction


@dataclass
class Extraction:
    """Result of :func:`extract_features`.

    ``features[i]`` belongs to ``paths[ok[i]]``; ``failures`` lists ``(path, reason)`` for
    images that could not be used; ``n_cached + n_computed`` counts every path.
    """

    features: torch.Tensor
    ok: list[int]
    failures: list[tuple[Path, str]] = field(default_factory=list)
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0


def _load(path: Path, transform: Callable) -> torch.Tensor | str:
    """Decode + preprocess one image; a string is the reason it cannot be used."""
    try:
        img = open_image_rgb(path)
    except BadImageError as e:
        return e.reason
    return transform(img)


def _iter_loaded(
    items: Sequence[tuple[int, Path]], transform: Callable, workers: int
) -> Iterator[tuple[int, torch.Tensor | str]]:
    """Yield ``(index, tensor | reason)`` in order; with workers, decoding runs ahead in threads.

    PIL releases the GIL while decoding and resizing, so threads overlap decoding with the
    backbone's forward pass without a second process.
    """
    if workers <= 0:
        for i, p in items:
            yield i, _load(p, transform)
        return
    ahead = max(2 * workers, 8)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qt-decode") as pool:
        futures = []
        it = iter(items)
        for i, p in it:
            futures.append((i, pool.submit(_load, p, transform)))
            if len(futures) >= ahead:
                break
        pos = 0
        while pos < len(futures):
            i, fut = futures[pos]
            futures[pos] = None  # type: ignore[assignment] - free memory as we go
            pos += 1
            nxt = next(it, None)
            if nxt is not None:
                futures.append((nxt[0], pool.submit(_load, nxt[1], transform)))
            yield i, fut.result()


#: How extract_features runs the backbone by default, chosen with benchmarks/extraction.py on
#: 2 CPU cores (245 hymenoptera images, mobilenet_v2 and resnet18): batch-norm folded into the
#: convolutions (torch.fx's ``fuse``; every registered backbone traces) and channels_last memory
#: format, one decoding thread running ahead of the forward pass (PIL releases the GIL), batches
#: of 8 (smaller activations stay in cache). On 2026-11-27, median of 3 cold passes:
#: mobilenet_v2 5.07 s against 6.98 s without the folding and 13.9 s eager inline (features
#: within 1.3e-5); resnet18 9.3 s either way (its batch norms are a smaller share). torch.jit
#: freeze was not reliably faster; torch.compile costs ~60 s of compilation per cold run.
DEFAULT_BATCH_SIZE = 8
DEFAULT_DECODE_WORKERS = 1
DEFAULT_METHOD = "fuse_channels_last"

_METHODS = ("eager", "channels_last", "fuse", "fuse_channels_last", "jit", "compile")


def _prepare(backbone: Backbone, method: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable]:
    """(forward function, input converter) implementing one speed option."""
    model = backbone.model
    if method == "eager":
        return model, lambda x: x
    if method == "channels_last":
        return model.to(memory_format=torch.channels_last), lambda x: x.contiguous(
            memory_format=torch.channels_last
        )
    if method in ("fuse", "fuse_channels_last"):
        import copy

        from torch.fx.experimental.optimization import fuse

        fused = fuse(copy.deepcopy(model).eval())
        if method == "fuse_channels_last":
            fused = fused.to(memory_format=torch.channels_last)
            return fused, lambda x: x.contiguous(memory_format=torch.channels_last)
        return fused, lambda x: x
    if method == "jit":
        import warnings

        example = torch.zeros(1, 3, 224, 224)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still works
            traced = torch.jit.trace(model, example)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        return frozen, lambda x: x
    if method == "compile":
        return torch.compile(model), lambda x: x
    raise UsageError(f"unknown extraction method {method!r}; choose one of {', '.join(_METHODS)}")


def extract_features(
    paths: Sequence[str | os.PathLike],
    backbone: Backbone,
    *,
    cache: FeatureCache | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "cpu",
    progress: bool = True,
    num_workers: int | None = None,
    method: str | None = None,
) -> Extraction:
    """Features of every image in ``paths``, from ``cache`` where possible.

    Args:
        paths: image files; the result's ``ok`` indexes into this sequence.
        backbone: from :func:`qtransfer.features.backbones.create_backbone`.
        cache: a :class:`FeatureCache`, or ``None`` to compute everything and store nothing.
        batch_size: images per forward pass (8 measured fastest on CPU).
        device: where the backbone runs (it is moved there).
        progress: show a tqdm bar on stderr.
        num_workers: decoding threads running ahead of the forward pass (``None``: 1;
            ``0``: decode inline).
        method: how the backbone runs: ``"fuse_channels_last"`` (default: conv-bn folding and
            channels-last), ``"channels_last"``, ``"fuse"``, ``"eager"``, ``"jit"``, ``"compile"``.

    Every image file is hashed on each call (cheap); unreadable or undecodable images land
    in ``failures`` (and undecodable ones are cached as such).

    Example:
        >>> ex = extract_features(paths, bb, cache=FeatureCache(cache_dir() / "features"))  # doctest: +SKIP
        >>> ex.features.shape, len(ex.failures), ex.n_cached                               # doctest: +SKIP
        (torch.Size([245, 512]), 0, 245)
    """
    t0 = time.perf_counter()
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    workers = DEFAULT_DECODE_WORKERS if num_workers is None else int(num_workers)
    if workers < 0:
        raise UsageError(f"num_workers must be >= 0, got {num_workers!r}")
    method = DEFAULT_METHOD if method is None else method
    if method not in _METHODS:
        raise UsageError(f"unknown extraction method {method!r}; choose one of {', '.join(_METHODS)}")
    paths = [Path(p) for p in paths]
    n_feat = backbone.num_features
    fingerprint = _backbone_fingerprint(backbone) if cache is not None else ""
    meta = {"backbone": backbone.identity.get("backbone", ""), "weights": backbone.identity.get("weights", "")}

    results: dict[int, np.ndarray | str] = {}
    keys: dict[int, str] = {}
    todo: list[tuple[int, Path]] = []
    n_cached = 0
    for i, p in enumerate(paths):
        try:
            digest = file_sha256(p)
        except OSError as e:
            results[i] = f"cannot be read ({e.strerror or e})"
            continue
        if cache is None:
            todo.append((i, p))
            continue
        key = feature_key(fingerprint, digest)
        keys[i] = key
        hit = cache.get(key)
        if isinstance(hit, np.ndarray) and hit.shape != (n_feat,):
            hit = None  # cannot happen unless the key scheme is broken; recompute
        if hit is None:
            todo.append((i, p))
        else:
            results[i] = hit
            n_cached += 1

    if todo:
        _compute(todo, backbone, results, keys, cache, meta, batch_size, device, progress, workers, method)

    ok = [i for i in range(len(paths)) if isinstance(results.get(i), np.ndarray)]
    failures = [(paths[i], results[i]) for i in range(len(paths)) if isinstance(results.get(i), str)]
    if ok:
        feats = torch.from_numpy(np.stack([results[i] for i in ok]).astype(np.float32, copy=False))
    else:
        feats = torch.zeros((0, n_feat), dtype=torch.float32)
    return Extraction(
        features=feats,
        ok=ok,
        failures=failures,
        n_cached=n_cached,
        n_computed=len(todo),
        seconds=time.perf_counter() - t0,
    )


def _compute(
    todo: list[tuple[int, Path]],
    backbone: Backbone,
    results: dict[int, np.ndarray | str],
    keys: dict[int, str],
    cache: FeatureCache | None,
    meta: dict,
    batch_size: int,
    device: str | torch.device,
    progress: bool,
    workers: int,
    method: str,
) -> None:
    from tqdm.auto import tqdm

    backbone.to(device)
    device = torch.device(device)
    if device.type != "cpu" and method in ("jit", "fuse", "fuse_channels_last"):
        method = "eager"
    forward, convert = _prepare(backbone, method)
    bar = tqdm(
        total=len(todo),
        desc=f"features {backbone.identity.get('backbone', '')}",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    batch_idx: list[int] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if not batch:
            return
        x = convert(torch.stack(batch).to(device, non_blocking=True))
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
        for i, item in _iter_loaded(todo, backbone.transform, workers):
            if isinstance(item, str):
                results[i] = item
                if cache is not None:
                    cache.put(keys[i], item, meta)
                bar.update(1)
                continue
            if batch and item.shape != batch[0].shape:
                flush()
            batch_idx.append(i)
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        bar.close()
        if method == "channels_last":  # leave the caller's module as it was
            backbone.model.to(memory_format=torch.contiguous_format)

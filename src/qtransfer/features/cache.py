"""The on-disk feature cache: one checksummed file per image's features (or failure reason).

Entries carry a checksum and their length; a truncated or corrupted entry is detected on
read, deleted and recomputed. Entries are written atomically (temporary file + rename), so
concurrent runs sharing one cache never see half a file; they are not fsynced (244 fsyncs
cost 0.06-0.13 s of a cold run on ext4, 2026-11-27): the checksum catches what a power cut tears. Keys are made by
:func:`qtransfer.features.extract.feature_key`.

Example:
    >>> import tempfile
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> cache.put("ab" * 32, np.zeros(4, np.float32))
    >>> cache.get("ab" * 32)
    array([0., 0., 0., 0.], dtype=float32)
    >>> cache.get("cd" * 32) is None
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from qtransfer.atomic import atomic_write, is_temporary
from qtransfer.errors import UsageError

__all__ = ["FEATURE_FORMAT", "CacheEntry", "FeatureCache"]

#: bumped whenever the way features are computed or stored changes (invalidates old entries).
FEATURE_FORMAT = 1

_MAGIC = b"QTFC"
_KIND_FEATURES = 0
_KIND_FAILURE = 1
# magic, format, kind, reserved, meta length, payload length, sha256(meta + payload)
_HEADER = struct.Struct("<4sHBBII32s")
_SUFFIX = ".qtf"


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

    Example: see the module's.
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
        # not fsynced: an entry a power cut tore fails its checksum and is recomputed
        atomic_write(self.path(key), lambda f: f.write(blob), durable=False)

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

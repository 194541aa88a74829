"""A run directory's manifest: the size and SHA-256 of each file the run wrote, checked when it is read.

``RUN_DIR/manifest.json`` is written last (atomically), when a run has written everything
else; a run being trained or resumed has none (its files are still changing). Reading a run
(``evaluate``, ``predict``, ``report``, ``train --resume``) verifies the files it reads
against it, so a file that was cut short, emptied or changed after the run wrote it is
refused with a :class:`~qtransfer.errors.CheckpointError` naming the file and what differs,
before it is used. Runs written before manifests existed load with a one-line notice.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Iterable

from qtransfer.atomic import atomic_write_json
from qtransfer.errors import CheckpointError
from qtransfer.paths import sha256_file

__all__ = ["MANIFEST_FILE", "RUN_FILES", "write_manifest", "remove_manifest", "verify_run_files"]

MANIFEST_FILE = "manifest.json"
#: the files of a run directory the manifest records (those present when it is written)
RUN_FILES = ("model.pt", "state.pt", "metrics.json", "config.json", "predictions.json")
_FORMAT = "qtransfer-manifest"


def write_manifest(run_dir: str | os.PathLike) -> Path:
    """Record the size and SHA-256 of each of :data:`RUN_FILES` present in ``run_dir``; written atomically."""
    run_dir = Path(run_dir)
    files = {name: {"size": (run_dir / name).stat().st_size, "sha256": sha256_file(run_dir / name)}
             for name in RUN_FILES if (run_dir / name).is_file()}
    return atomic_write_json(run_dir / MANIFEST_FILE, {"format": _FORMAT, "version": 1, "files": files})


def remove_manifest(run_dir: str | os.PathLike) -> None:
    """Drop the manifest of a run whose files are about to change (a resumed or retried run)."""
    (Path(run_dir) / MANIFEST_FILE).unlink(missing_ok=True)


def _read(run_dir: Path) -> dict[str, dict] | None:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"] if manifest.get("format") == _FORMAT else None
        if not isinstance(files, dict):
            raise ValueError("not a qtransfer manifest")
        return files
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is damaged ({e}); its run cannot be checked: restore it, or delete it to "
                              f"load the run unchecked") from None


def verify_run_files(run_dir: str | os.PathLike, names: Iterable[str], *, notice: bool = True) -> None:
    """Check ``names`` (files of ``run_dir``) against its manifest; a file that differs is a
    :class:`CheckpointError` naming it and how it differs. Without a manifest (a run of an older
    qtransfer), a one-line notice (unless ``notice=False``) and nothing is checked.

    Example:
        >>> verify_run_files("runs/ants", ["model.pt"])  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    files = _read(run_dir)
    if files is None:
        if notice:
            warnings.warn(f"{run_dir} has no {MANIFEST_FILE} (written by an older qtransfer, or not finished): "
                          f"its files are loaded unchecked", stacklevel=2)
        return
    for name in names:
        if name not in files:
            continue
        path, want = run_dir / name, files[name]
        if not path.is_file():
            raise CheckpointError(f"{path} is missing (the run's {MANIFEST_FILE} records it): restore it or retrain")
        size = path.stat().st_size
        if size == 0:
            raise CheckpointError(f"{path} is empty (0 bytes; {MANIFEST_FILE} records {want['size']} bytes): "
                                  f"restore it or retrain")
        if size < want["size"]:
            raise CheckpointError(f"{path} is truncated: {size} bytes, {MANIFEST_FILE} records {want['size']}: "
                                  f"restore it or retrain")
        if size != want["size"]:
            raise CheckpointError(f"{path} changed after the run wrote it: {size} bytes, {MANIFEST_FILE} records "
                                  f"{want['size']}: restore it or retrain")
        digest = sha256_file(path)
        if digest != want["sha256"]:
            raise CheckpointError(f"{path} is corrupted or changed after the run wrote it: SHA-256 {digest[:16]}..., "
                                  f"{MANIFEST_FILE} records {want['sha256'][:16]}... (same size, {size} bytes): "
                                  f"restore it or retrain")

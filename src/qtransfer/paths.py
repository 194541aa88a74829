"""Where qtransfer keeps things on disk, and the digest that identifies a file's content."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["cache_dir", "sha256_file"]

CACHE_ENV = "QTRANSFER_CACHE"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache root: ``override`` (``--cache-dir``), else ``$QTRANSFER_CACHE``, else the user's cache dir.

    Example:
        >>> cache_dir("/tmp/qt-cache")
        PosixPath('/tmp/qt-cache')
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("qtransfer"))


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB chunks.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     sha256_file(f.name)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""Where qtransfer keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]

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

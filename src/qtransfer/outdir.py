"""The folders a command writes: checked before any work.

:func:`check_writable` is called by every command on its ``--out`` and on the cache before
it reads or computes anything: a folder it cannot write is one line naming the path, the
reason and the flag to change (:class:`~qtransfer.errors.UsageError`, exit 2), and nothing
is created.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from qtransfer.errors import UsageError

__all__ = ["check_writable", "check_cache_writable", "writing_to"]


def check_writable(path: str | os.PathLike, flag: str) -> Path:
    """Raise a one-line :class:`UsageError` unless files can be created in ``path`` (or, if it does not
    exist yet, in its nearest existing parent, where it would be made); returns ``path``.

    Tries it (a probe file, deleted at once): permissions, read-only mounts and immutable
    folders all answer the same way, also for root.

    Example:
        >>> check_writable("/proc/qtransfer-run", "--out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        qtransfer.errors.UsageError: cannot write to /proc/qtransfer-run (--out): ...; choose another --out ...
    """
    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    where = "" if existing == path else f" (it would be made in {existing})"
    other = f"choose another {flag} or " if flag.startswith("--") and flag != "--resume" else ""
    if not existing.is_dir():
        raise UsageError(f"cannot write to {path} ({flag}): {existing} is a file, not a folder; "
                         f"{other or 'choose another folder or '}move the file")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".qtransfer-probe.", suffix=".tmp")
    except OSError as e:
        raise UsageError(f"cannot write to {path} ({flag}): {e.strerror or e}{where}; {other}make {existing} "
                         f"writable") from None
    os.close(fd)
    os.unlink(probe)
    return path


def check_cache_writable(cache_dir: str | os.PathLike | None) -> Path:
    """:func:`check_writable` on the cache root that ``cache_dir`` (``--cache-dir``) resolves to."""
    from qtransfer.paths import CACHE_ENV, cache_dir as resolve

    root = resolve(cache_dir)
    return check_writable(root, "--cache-dir" if cache_dir is not None else
                          (f"--cache-dir or ${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "--cache-dir"))


@contextmanager
def writing_to(out: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None, cache: bool = True,
               flag: str = "--out") -> Iterator[Path]:
    """The block that writes ``out``: ``out`` (and the cache, if ``cache``) checked writable first; a
    failure or interrupt before anything was written into an ``out`` this block made leaves no empty folder.
    """
    out = check_writable(out, flag)
    if cache:
        check_cache_writable(cache_dir)
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        yield out
    except BaseException:
        for folder in missing:  # innermost first: only the folders this block made, and only if left empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise

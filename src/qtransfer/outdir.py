"""The folders a command writes: checked before any work, and one writer at a time.

:func:`check_writable` is called by every command on its ``--out`` and on the cache before
it reads or computes anything: a folder it cannot write is one line naming the path, the
reason and the flag to change (:class:`~qtransfer.errors.UsageError`, exit 2), and nothing
is created.

:func:`writing_to` also holds an exclusive lock on ``--out`` for the command's life
(``train``, ``compare``, ``sweep``, ``paper``): ``fcntl.flock`` on ``OUT/.qtransfer.lock``,
which holds the writer's PID. The kernel releases it when the process ends, however it
ends, so a second writer is refused at once (naming the holder) and ``--resume`` after a
``kill -9`` finds the folder free.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from qtransfer.errors import UsageError

__all__ = ["LOCK_FILE", "check_writable", "check_cache_writable", "writing_to"]

#: the lock file in a folder being written (kept afterwards: removing it could let two writers in)
LOCK_FILE = ".qtransfer.lock"


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
    """The block that writes ``out``, as its only writer: ``out`` (and the cache, if ``cache``) checked
    writable first, then ``out`` made and locked until the block ends. Another process writing ``out`` is a
    :class:`UsageError` naming its PID. A failure or interrupt before anything was written into an ``out``
    this block made leaves no folder behind.
    """
    out = check_writable(out, flag)
    if cache:
        check_cache_writable(cache_dir)
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = _lock(out, flag)
    except BaseException:
        _remove_made(missing, lock=False)
        raise
    try:
        yield out
    except BaseException:
        _remove_made(missing, lock=True)
        raise
    finally:
        os.close(fd)  # releases the lock


def _lock(out: Path, flag: str) -> int:
    """Hold an exclusive ``flock`` on ``out/LOCK_FILE`` (returns its descriptor) and write this PID into it."""
    import fcntl

    from qtransfer.atomic import file_mode

    path = out / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as e:
        raise UsageError(f"cannot write to {out} ({flag}): {e.strerror or e}; choose another {flag}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        other = "" if flag == "--resume" else f", or choose another {flag}"
        raise UsageError(f"{out} is being written by another qtransfer process (PID {holder}); wait for it to "
                         f"end{other}") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _remove_made(missing: list[Path], *, lock: bool) -> None:
    """Remove the folders of ``missing`` (innermost first) this block made, if nothing but the lock is in them."""
    if not missing:
        return
    if lock:
        (missing[0] / LOCK_FILE).unlink(missing_ok=True)
    for folder in missing:
        try:
            folder.rmdir()
        except OSError:
            break

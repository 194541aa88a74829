"""Crash-safe file writes: write a temporary file beside the target, fsync, rename.

A reader (or a resumed run) sees either the old file or the complete new one,
never a half-written file, even if the process is killed mid-write. The file gets the
mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask: 0644 under 022),
not the 0600 of the temporary file it starts as. Ctrl-C during a
write (in the main thread) is held until the write is complete, then raised: an
interrupted run keeps the file it was writing, and the interrupt is not turned into a
writer's error (torch.save's zip writer fails in its cleanup when interrupted).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, IO, Iterator

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "file_mode",
           "interrupts_deferred", "is_temporary", "remove_temporaries"]


_TMP_SUFFIX = ".tmp"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_write` (left behind if its writer was killed)."""
    return path.name.startswith(".") and path.name.endswith(_TMP_SUFFIX)


def remove_temporaries(directory: str | os.PathLike) -> int:
    """Delete the temporary files a killed writer left in ``directory``; returns how many.

    Only for a directory no live process is writing to (e.g. a run being resumed)."""
    n = 0
    for p in Path(directory).iterdir():
        if p.is_file() and is_temporary(p):
            try:
                p.unlink()
                n += 1
            except FileNotFoundError:
                pass
    return n


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) until the block ends, then deliver it as the caller's handler would.

    Only the main thread receives signals; elsewhere, and where handlers cannot be changed,
    the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except (ValueError, OSError):  # pragma: no cover - no signal handling here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *, durable: bool = True) -> Path:
    """Call ``write(fileobj)`` on a temporary file, then atomically rename it to ``path`` (Ctrl-C waits for it).

    ``durable=False`` skips the fsync before the rename: a process killed mid-write still
    leaves the old file or the new one, but after a power cut the new one may be empty or
    torn. Only for files whose reader checks them (the feature cache's checksummed entries).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_deferred():
        return _write_and_rename(path, write, durable)


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` less this process's umask.

    Read from ``/proc/self/status`` (Linux); elsewhere by setting and restoring the umask.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o22)  # pragma: no cover
    os.umask(mask)  # pragma: no cover
    return 0o666 & ~mask  # pragma: no cover


def _write_and_rename(path: Path, write: Callable[[IO[bytes]], Any], durable: bool = True) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600 files; the result is readable as the umask says
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")

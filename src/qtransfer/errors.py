"""User-facing errors and the command line's exit codes.

Every error a user can cause (bad data, a mismatched checkpoint, no network)
is a :class:`QTransferError`; the command line prints its message, without a
traceback, and exits with its ``exit_code``. Anything else is a bug.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES",
    "QTransferError",
    "UsageError",
    "CircuitTooLargeError",
    "DataError",
    "DownloadError",
    "CheckpointError",
    "TrainingDivergedError",
]


class QTransferError(Exception):
    """Base class of errors caused by input, not by a bug. Message says what to fix."""

    exit_code = 1


class UsageError(QTransferError, ValueError):
    """A bad option or value (wrong backbone name, negative epochs, ...); also a ``ValueError``."""

    exit_code = 2


class CircuitTooLargeError(UsageError):
    """A circuit whose simulation would need more memory than the machine has (checked before allocating)."""


class DataError(QTransferError):
    """A data folder that cannot be used (no images, one class, bad image in --strict mode)."""

    exit_code = 3


class DownloadError(QTransferError):
    """A download that failed, was refused or did not match its checksum."""

    exit_code = 4


class CheckpointError(QTransferError):
    """A run directory or checkpoint that is missing, unsafe or does not match."""

    exit_code = 5


class TrainingDivergedError(QTransferError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 6


#: exit code -> meaning, documented in the README and in ``qtransfer --help``.
EXIT_CODES = {
    0: "success",
    1: "internal error (a bug: please report the traceback)",
    2: "usage error: bad option or value, or an --out or cache folder that cannot be written",
    3: "data error: unusable data folder or image",
    4: "download error: no network, refused archive or checksum mismatch",
    5: "checkpoint error: missing, unsafe or mismatched run directory",
    6: "training diverged: NaN/inf loss (last good checkpoint kept)",
    7: "sweep: some trials failed twice (recorded with their error; rerun to retry them)",
    130: "interrupted (Ctrl-C): state saved, resume with --resume",
    141: "output closed early (e.g. piped into head): stopped quietly, as a Unix tool stopped by SIGPIPE",
}

#: the exit code when the reader of stdout went away (128 + SIGPIPE, what a shell shows for Unix tools)
EXIT_BROKEN_PIPE = 141

"""Python's cyclic garbage collector while a backbone is built.

The first backbone built in a process imports torchvision, and through it ``torch._dynamo``
and sympy: about 150 000 new objects the collector tracks, on top of about 185 000 already
there after ``import torch``. While they arrive, Python's collector makes full passes over the
whole heap: on 2026-11-27, on 2 cores, ``import torchvision.models`` took 0.89 s, of which
0.25 s were collections, two of them full passes of 0.10 and 0.12 s, and a third full pass
(0.17 s) came later inside the cold run, while the backbone was copied for batch-norm folding
(timed with a :data:`gc.callbacks` hook). The median cold ``qtransfer train`` took 2.87 s
instead of 3.36 s (``python benchmarks/cold_runs.py a3d6322 beda5d0``, 6 alternating rounds).
None of these passes finds garbage worth the time: imports build modules, not cycles to free.

:func:`paused` holds the collector off while a backbone is built and restores the caller's
setting. A process that runs one command and exits (the ``qtransfer`` console script, through
:func:`freeze_after_first_build`) also freezes what is alive after its first build
(:func:`gc.freeze`: moved to a permanent generation that later passes skip), so the imported
modules are never scanned again. This is off by default: in a long session (a notebook)
frozen objects that later become cyclic garbage are never collected.

Example:
    >>> import gc
    >>> with paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

__all__ = ["freeze_after_first_build", "paused"]

_freeze_pending = False


def freeze_after_first_build() -> None:
    """Freeze (:func:`gc.freeze`) every object alive when the next :func:`paused` block ends, once.

    For a process that one command owns: the console script calls it before the command runs.
    """
    global _freeze_pending
    _freeze_pending = True


@contextmanager
def paused() -> Iterator[None]:
    """Hold the cyclic collector off inside the block; afterwards it is as the caller had it.

    Reference counting still frees everything that is not in a cycle.
    """
    global _freeze_pending
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freeze_pending:
            _freeze_pending = False
            gc.freeze()
        if was_enabled:
            gc.enable()

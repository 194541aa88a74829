"""Decoding images for the backbone: in chunks between forward passes, or ahead while it is built.

:func:`iter_loaded` decodes :data:`DECODE_CHUNK` images at a time with one thread per core,
then hands them over, so decoding and the forward pass take turns on the cores.
:class:`DecodeAhead` decodes in one background thread while the main thread builds the
backbone (importing torchvision is mostly Python, holding the GIL; Pillow's decoding and
resizing release it), and is stopped before the first forward pass.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from qtransfer.data.images import BadImageError, open_image_rgb

__all__ = ["DECODE_CHUNK", "DecodeAhead", "iter_loaded", "load"]

#: images decoded before the backbone runs on them (:func:`iter_loaded`), by one thread per core
DECODE_CHUNK = 32
#: seconds between the interpreter's thread switches while :class:`DecodeAhead` runs (Python's default: 0.005)
AHEAD_SWITCH_INTERVAL = 0.0002


def load(source: Path | tuple[Path, Any], transform: Callable) -> Any:
    """Decode + preprocess one image; a string is the reason it cannot be used.

    ``source`` is a path (``transform(image)``) or ``(path, argument)`` (``transform(image, argument)``:
    which augmented view, :mod:`qtransfer.features.augment`).
    """
    path, *argument = source if isinstance(source, tuple) else (source,)
    try:
        img = open_image_rgb(path)
    except BadImageError as e:
        return e.reason
    return transform(img, *argument)


def iter_loaded(items: Sequence[tuple[int, Path]], transform: Callable, workers: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, transform(image) | reason)`` in order, decoding :data:`DECODE_CHUNK` images at a
    time with ``workers`` threads (PIL releases the GIL), or inline with ``workers=0``.

    Decoding a chunk, then running the backbone on it, keeps every core on one job at a
    time: decoding in a thread *during* the forward pass oversubscribes the cores, and torch's
    intra-op threads then wait on the descheduled one (3.24 s against 3.11 s for a cold
    MobileNetV2 pass over 244 images on 2 cores, 2026-11-27).
    """
    if workers <= 0:
        for i, p in items:
            yield i, load(p, transform)
        return
    items = list(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qt-decode") as pool:
        for start in range(0, len(items), DECODE_CHUNK):
            part = items[start : start + DECODE_CHUNK]
            decoded = list(pool.map(lambda item: load(item[1], transform), part))  # all, before any is used
            yield from zip((i for i, _ in part), decoded)


class DecodeAhead:
    """Decode ``items`` in order in one background thread, from construction until :meth:`stop`.

    ``transform`` must be safe to run beside an import of torchvision (PIL, numpy and torch
    only: torchvision's transforms are not, while torchvision is half imported).

    Until :meth:`stop`, the interpreter switches threads every :data:`AHEAD_SWITCH_INTERVAL`
    seconds instead of every 5 ms: between its GIL-free calls into Pillow the decoding thread
    needs the GIL briefly, and behind an import it otherwise waits a whole switch interval for
    it each time. On 2026-11-27 (2 cores, cold ``qtransfer train`` over 244 images) it decoded
    about 220 images instead of about 130 while torchvision was imported (counted in one traced
    run each), and the median cold run took 2.10 s instead of 2.18 s
    (``python benchmarks/cold_runs.py abaa3ed 8c3fc15``, 6 alternating rounds).

    Example:
        >>> ahead = DecodeAhead([(0, Path("missing.jpg"))], str)
        >>> ahead.stop()
        [(0, 'does not exist (or is a broken symlink)')]
    """

    def __init__(self, items: Sequence[tuple[int, Path]], transform: Callable):
        self._items = list(items)
        self._transform = transform
        self._done: list[tuple[int, Any]] = []
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qt-decode-ahead", daemon=True)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, AHEAD_SWITCH_INTERVAL))
        try:
            self._thread.start()
        except BaseException:  # no thread, no stop(): the caller's interval now
            sys.setswitchinterval(self._switch_interval)
            raise

    def _run(self) -> None:
        try:
            for i, path in self._items:
                if self._stopping.is_set():
                    return
                self._done.append((i, load(path, self._transform)))
        except BaseException as e:  # handed to the caller by stop()
            self._error = e

    def stop(self) -> list[tuple[int, Any]]:
        """Stop after the image in hand; the ``(index, pixels | reason)`` decoded so far, a prefix of ``items``.

        The interpreter's switch interval is the caller's again."""
        self._stopping.set()
        self._thread.join()
        sys.setswitchinterval(self._switch_interval)
        if self._error is not None:
            raise self._error
        return self._done

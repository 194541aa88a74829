"""Run the paper's experiments and write ``results.json`` and ``report.html``.

Example:
    >>> results = run_paper(["spirals"], seeds=2, out="runs/paper")      # doctest: +SKIP
    >>> [row.key for row in results.rows]                                # doctest: +SKIP
    ['spirals-1.52', 'spirals-2']
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from qtransfer.errors import DownloadError, UsageError

from .common import EXPERIMENTS, PaperResults, PaperRow, check_seeds

__all__ = ["EXPERIMENT_OPTIONS", "check_options", "resolve_experiments", "run_experiment", "run_paper", "unavailable"]


def resolve_experiments(names: str | Sequence[str]) -> tuple[str, ...]:
    """``"all"`` -> every experiment; else the names, checked.

    Example:
        >>> resolve_experiments("all")
        ('spirals', 'qc', 'qq', 'cq', 'cifar', 'qpu')
        >>> resolve_experiments(["qq", "qc"])
        ('qq', 'qc')
    """
    if isinstance(names, str):
        names = list(EXPERIMENTS) if names == "all" else [names]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown or not names:
        raise UsageError(f"unknown paper experiment {unknown[0] if unknown else '(none)'!r}; "
                         f"choose one of {', '.join(EXPERIMENTS)} or all")
    return tuple(names)


#: the options of the experiments that take them (``qtransfer paper --data ...``); the others ignore them
EXPERIMENT_OPTIONS = {"cq": ("data", "backbone", "weights", "augment"),
                      "qpu": ("data", "backbone", "weights", "devices", "shots", "noise_aware")}


def check_options(options: Mapping[str, Any] | None, experiments: Sequence[str] = tuple(EXPERIMENTS)) -> dict[str, Any]:
    """The options that are set (not ``None``), each read by one of ``experiments``, or a UsageError
    that names the option (as its flag) and the experiments that read it.

    Example:
        >>> check_options({"data": "images", "shots": None}, ["cq"])
        {'data': 'images'}
        >>> check_options({"devices": "fake_lima"}, ["spirals"])
        Traceback (most recent call last):
        ...
        qtransfer.errors.UsageError: --devices is an option of paper qpu; spirals does not read it
    """
    known = {k for keys in EXPERIMENT_OPTIONS.values() for k in keys}
    given = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(f"unknown paper option {unknown[0]!r}; the options are {', '.join(sorted(known))}")
    read = {k for name in experiments for k in EXPERIMENT_OPTIONS.get(name, ())}
    for key in given:
        if key not in read:
            readers = [name for name, keys in EXPERIMENT_OPTIONS.items() if key in keys]
            raise UsageError(f"--{key.replace('_', '-')} is an option of paper {' and '.join(readers)}; "
                             f"{', '.join(experiments)} {'does' if len(experiments) == 1 else 'do'} not read it")
    return given


def run_experiment(name: str, seeds: tuple[int, ...], out: Path, *, cache_dir: str | os.PathLike | None = None,
                   progress: Callable[[str], None] | None = None,
                   options: Mapping[str, Any] | None = None) -> tuple[PaperRow, ...]:
    """One experiment with its published settings; cq and cifar write their run directories under ``out``.

    ``options`` (:data:`EXPERIMENT_OPTIONS`) reach the experiments that take them.
    """
    mine = {k: v for k, v in (options or {}).items() if k in EXPERIMENT_OPTIONS.get(name, ())}
    if name == "spirals":
        from .spirals import run_spirals

        return run_spirals(seeds, progress=progress)
    if name == "qc":
        from .qc import run_qc

        return run_qc(seeds, progress=progress)
    if name == "qq":
        from .qq import run_qq

        return run_qq(seeds, progress=progress)
    if name == "cq":
        from .cq import run_cq

        return run_cq(seeds, out=out / "cq", cache_dir=cache_dir, progress=progress, **mine)
    if name == "cifar":
        from .cifar import run_cifar

        return run_cifar(seeds, out=out / "cifar", cache_dir=cache_dir, progress=progress)
    if name == "qpu":
        from .qpu import run_qpu

        return run_qpu(seeds, out=out / "qpu", cache_dir=cache_dir, progress=progress, **mine)
    raise UsageError(f"unknown paper experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")


def unavailable(name: str) -> str | None:
    """Why ``name`` cannot run in this installation (an extra that is not installed), or ``None``."""
    if name == "qpu":
        from .qpu import hardware_missing

        return hardware_missing()
    return None


def _stderr(message: str) -> None:
    print(f"[paper] {message}", file=sys.stderr, flush=True)


def run_paper(experiments: str | Sequence[str] = "all", *, seeds: int = 10, out: str | os.PathLike,
              cache_dir: str | os.PathLike | None = None, progress: bool = True, report: bool = True,
              command: str = "", runner: Callable[..., tuple[PaperRow, ...]] = run_experiment,
              options: Mapping[str, Any] | None = None) -> PaperResults:
    """Run ``experiments`` over ``seeds`` seeds; write ``out/results.json`` (and ``out/report.html``).

    With ``"all"``, an experiment whose data cannot be downloaded (cq, cifar, qpu offline) or
    whose extra is not installed (qpu without Qiskit) is recorded in
    :attr:`PaperResults.skipped` with the message that says what to download or install, and
    the others run; asked for by name, its :class:`~qtransfer.errors.DownloadError` (or a
    UsageError naming the extra) is raised.
    ``options`` (``data``, ``backbone``, ``weights``, ``devices``, ``shots``, ``noise_aware``: see
    :data:`EXPERIMENT_OPTIONS`) reach cq and qpu.
    """
    names, seed_list = resolve_experiments(experiments), check_seeds(seeds)
    given = check_options(options, names)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[PaperRow] = []
    skipped: dict[str, str] = {}
    log = _stderr if progress else None
    for name in names:
        missing = unavailable(name)
        if missing and experiments != "all":
            raise UsageError(missing)
        if missing:
            skipped[name] = missing
            if log:
                log(f"{name}: skipped: {missing}")
            continue
        try:
            rows += runner(name, seed_list, out, cache_dir=cache_dir, progress=log, **({"options": given} if given else {}))
        except DownloadError as e:
            if experiments != "all":
                raise
            skipped[name] = str(e)
            if log:
                log(f"{name}: skipped, its data are not available here:\n{e}")
    results = PaperResults(tuple(rows), skipped, seed_list, time.perf_counter() - started, command)
    results.save(out / "results.json")
    if report:
        from .report import write_paper_report

        write_paper_report(out)
    return results

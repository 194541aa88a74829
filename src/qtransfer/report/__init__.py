"""A self-contained HTML report of a training run or of a head comparison.

:func:`write_report` looks at a directory, decides what it is from the files present,
and writes ``report.html`` there, plus the PNG figures it embeds under ``figures/``:

* a **run directory** (``metrics.json``, optional ``config.json``, ``predictions.json`` and
  ``pipeline.json``): first the pipeline drawing (image -> frozen backbone A' -> the head's
  blocks, the run's own circuit among them -> probabilities) with one image's numbers at every
  arrow (:mod:`~qtransfer.report.pipeline`), then headline numbers, training curves with the
  best epoch marked, confusion matrices, a grid of sample predictions (green = right, red =
  wrong) and the resolved configuration;
* a **compare directory** (``results.json``): the answer to "does the quantum head
  help?" in plain words, accuracy by head with 95% confidence intervals and every
  seed, the paired differences, and the tables of ``results.md``;
* a **paper directory** (``results.json`` of ``qtransfer paper``): :mod:`qtransfer.paper.report`;
* a **sweep directory** (``sweep.json``): accuracy against the varied setting per head with
  95% confidence intervals (a heatmap per head when two settings vary), the tables of
  ``summary.md`` and the failed trials.

Modules: :mod:`~qtransfer.report.html` (pages), :mod:`~qtransfer.report.pipeline`, :mod:`~qtransfer.report.figures`,
:mod:`~qtransfer.report.circuit` (diagram), :mod:`~qtransfer.report.tables`. matplotlib is
imported only when a report is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from qtransfer.atomic import atomic_write_text
from qtransfer.errors import CheckpointError

__all__ = ["pipeline_snippet", "write_report"]


def write_report(path: str | os.PathLike) -> Path:
    """Write ``report.html`` (and ``figures/*.png``) into a run, compare, sweep or paper directory; returns its path.

    ``results.json`` makes it a comparison report (or, written by ``qtransfer paper``, the
    paper's report), else ``sweep.json`` a sweep report, else ``metrics.json`` a run report.
    Raises :class:`~qtransfer.errors.CheckpointError` when the directory is missing, has
    neither file, or holds one that is not valid JSON of the expected schema.

    Example:
        >>> write_report("runs/quantum-seed0").name       # doctest: +SKIP
        'report.html'
    """
    from qtransfer.report.html import compare_page, run_page, sweep_page

    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory}: no such directory; pass a run directory (with metrics.json), "
            f"a compare or paper directory (with results.json) or a sweep directory (with sweep.json)"
        )
    if (directory / "results.json").is_file() and _is_paper(directory / "results.json"):
        from qtransfer.paper.report import write_paper_report

        return write_paper_report(directory)
    if (directory / "results.json").is_file():
        page = compare_page(directory)
    elif (directory / "sweep.json").is_file():
        page = sweep_page(directory)
    elif (directory / "metrics.json").is_file():
        from qtransfer.manifest import verify_run_files

        verify_run_files(directory, ("metrics.json", "config.json", "predictions.json"))
        page = run_page(directory)
    else:
        raise CheckpointError(
            f"{directory}: neither results.json (a comparison), sweep.json (a sweep) nor metrics.json (a training run) "
            f"is here; point the report at the directory that training, comparison or sweep wrote"
        )
    return atomic_write_text(directory / "report.html", page)


def _is_paper(path: Path) -> bool:
    """Whether ``path`` is the ``results.json`` of ``qtransfer paper`` (by its schema name)."""
    from qtransfer.paper.common import PAPER_SCHEMA
    from qtransfer.results import read_json

    data = read_json(path)
    return isinstance(data, dict) and data.get("schema") == PAPER_SCHEMA


def pipeline_snippet(path: str | os.PathLike) -> str:
    """The pipeline drawing of a run directory (one image's numbers at every arrow) as HTML with its CSS.

    For a notebook: ``IPython.display.HTML(pipeline_snippet("runs/demo"))``; the run report
    opens with the same drawing.
    """
    from qtransfer.report.html import pipeline_snippet as snippet

    directory = Path(path)
    if not (directory / "metrics.json").is_file():
        raise CheckpointError(f"{directory}: no metrics.json; pass the run directory that training wrote")
    return snippet(directory)

"""``qtransfer sweep``: run a sweep file's trials and write ``DIR``.

``DIR`` holds::

    trials/<trial_id>.json   one finished trial (written atomically; a rerun skips it)
    results.jsonl            one line per trial: resolved settings, accuracy, per-image results, timing
    sweep.json               every trial, typed (:class:`~qtransfer.results.SweepResults`)
    summary.md               mean ± 95% CI per grid point and head, paired tests between heads
    report.html              the figures (unless ``report=False``)
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path

from qtransfer.results import SweepResults
from qtransfer.sweeps.engine import TrialStore, check_unique, execute, prepare_datasets, progress_bar
from qtransfer.sweeps.executors import executor_kind, joined_ray, make_executor, start_fork_server
from qtransfer.sweeps.spec import SweepSpec

__all__ = ["run_sweep"]


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, workers: int | None = None, ray: str | None = None,
              cache_dir: str | Path | None = None, progress: bool = True, report: bool = True) -> SweepResults:
    """Run every unfinished trial of ``spec`` and write ``out_dir``; returns every trial's record.

    ``workers``: processes of the local pool (default: the number of cores; 1 runs in this
    process); ``ray``: ``"local"`` or a cluster address (``"auto"``) instead of the pool.

    Example:
        >>> from qtransfer.sweeps import load_sweep_file
        >>> results = run_sweep(load_sweep_file("examples/sweep.toml"), "runs/sweep", workers=2)  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    trials = spec.trials()
    check_unique(trials)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = TrialStore(out)
    records = store.finished(trials)
    pending = [t for t in trials if t.id not in records]
    kind = executor_kind(workers, ray)[0]
    if pending and kind == "pool":
        start_fork_server()  # its torch import overlaps the data preparation
    with joined_ray(ray) if pending and kind == "ray" else nullcontext():  # a bad --ray fails before any work
        t_prepare = time.perf_counter()
        datasets = prepare_datasets(pending, cache_dir=cache_dir, progress=progress)
        prepare_s = time.perf_counter() - t_prepare
        if pending:
            records.update(_run_pending(pending, datasets, store, len(trials), len(records), workers, ray, progress))
    ordered = tuple(records[t.id] for t in trials)
    store.rewrite(ordered)
    classes = next(iter(datasets.values())).classes if datasets else _previous_classes(out)
    results = SweepResults(base=dict(spec.base), grid=dict(spec.grid), seeds=spec.seeds, trials=ordered,
                           classes=tuple(classes),
                           timing={"prepare_s": round(prepare_s, 4), "total_s": round(time.perf_counter() - t_start, 4)})
    write_sweep_outputs(results, out, report)
    return results


def _previous_classes(out: Path) -> tuple[str, ...]:
    """The class names an earlier run of this sweep recorded (a rerun with nothing left to do prepares no data)."""
    if not (out / "sweep.json").is_file():
        return ()
    return SweepResults.load(out / "sweep.json").classes


def _run_pending(pending, datasets, store, total, done, workers, ray, progress):
    """Run ``pending`` on the chosen executor; Ctrl-C stops it and keeps what finished."""
    executor = make_executor(datasets, workers=workers, ray=ray)
    bar = progress_bar(total, done, progress)
    try:
        return execute(pending, executor, store, datasets, bar=bar)
    except KeyboardInterrupt:
        finished = sum(1 for p in store.trials_dir.glob("*.json") if not p.name.endswith(".failed.json"))
        print(f"\nqtransfer sweep: interrupted; {finished} finished trial(s) are kept in {store.trials_dir}. "
              f"Run the same command again to run the others.", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
        executor.close()


def write_sweep_outputs(results: SweepResults, out: Path, report: bool) -> None:
    """``sweep.json``, ``summary.md`` and (unless told not to) ``report.html``."""
    from qtransfer.atomic import atomic_write_text
    from qtransfer.report.tables import sweep_markdown_summary

    results.save(out / "sweep.json")
    atomic_write_text(out / "summary.md", sweep_markdown_summary(results))
    if report:
        from qtransfer.report import write_report

        write_report(out)

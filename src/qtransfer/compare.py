"""``qtransfer compare``: does the quantum head help here? Several heads, several seeds, paired tests.

Every head is trained for every seed on the same split of the same cached features
(extracted once). Images used to report accuracy never choose the model:

* with a ``test/`` split: train on train, select the epoch on val, report on test;
* without one: the validation split is the evaluation set, and the epoch is selected on
  a stratified part of train (``val_fraction`` of it) that is held out from training.

The seed changes the head's initial weights and the shuffling, never the split, so the
heads' per-image results are paired and :mod:`qtransfer.stats` can test them.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Sequence

from qtransfer.atomic import atomic_write_json, atomic_write_text
from qtransfer.config import TrainConfig
from qtransfer.heads.registry import HEADS
from qtransfer.results import CompareResults, HeadResults, TrialRecord
from qtransfer.stats import compare_heads
from qtransfer.errors import UsageError
from qtransfer.sweeps.spec import SweepSpec
from qtransfer.sweeps.trials import selection_split

__all__ = ["run_compare", "selection_split", "compare_spec"]


def compare_spec(config: TrainConfig, heads: Sequence[str], n_seeds: int) -> SweepSpec:
    """The sweep a comparison is: ``heads`` x ``n_seeds`` seeds from ``config.seed``, split with ``config.seed``."""
    base = {k: v for k, v in config.to_dict().items() if k != "head"}
    return SweepSpec.from_dict({"seeds": n_seeds, "base": base, "grid": {"head": list(heads)}}, source="compare")


def run_compare(config: TrainConfig, *, heads: Sequence[str], n_seeds: int, out_dir: Path,
                cache_dir: str | Path | None = None, progress: bool = True, report: bool = True) -> CompareResults:
    """Train ``heads`` x ``n_seeds`` seeds, evaluate, test against ``quantum``; write the results.

    A sweep over heads and seeds (:mod:`qtransfer.sweeps`) run in this process: each finished
    training is kept in ``out_dir/trials/``, so rerunning an interrupted comparison skips them.
    """
    from qtransfer.sweeps.engine import TrialStore, execute, progress_bar
    from qtransfer.sweeps.executors import SerialExecutor
    from qtransfer.sweeps.trials import prepare_trial_data

    _check_arguments(heads, n_seeds)
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = compare_spec(config, heads, n_seeds).trials()
    data = prepare_trial_data(config, config.seed, cache_dir=cache_dir, progress=progress)
    store = TrialStore(out_dir)
    records = store.finished(trials)
    pending = [t for t in trials if t.id not in records]
    bar = progress_bar(len(trials), len(records), progress, desc="compare", unit="run")
    try:
        datasets = {t.data_key: data for t in trials}
        records.update(execute(pending, SerialExecutor(datasets), store, datasets, bar=bar, fail_fast=True))
    finally:
        if bar is not None:
            bar.close()
    store.rewrite([records[t.id] for t in trials])
    seeds = tuple(range(config.seed, config.seed + n_seeds))
    per_head = {name: _head_results([records[t.id] for t in trials if t.config.head == name]) for name in heads}
    reference = "quantum" if "quantum" in heads else heads[0]
    comparisons = compare_heads({h: r.correct for h, r in per_head.items()}, reference=reference) if len(heads) > 1 else []
    n_train, n_select, n_eval = data.sizes
    results = CompareResults(
        heads=per_head, classes=data.classes, eval_split=data.eval_split, n_train=n_train, n_select=n_select,
        n_eval=n_eval, eval_paths=data.eval_paths, seeds=seeds, reference=reference,
        comparisons=tuple(comparisons), config=config.to_dict(), backbone=dict(data.backbone),
        timing={"extract_s": round(data.extract_s, 4), "total_s": round(time.perf_counter() - t_start, 4)},
        eval_labels=tuple(int(v) for v in data.evaluate[1].tolist()),
    )
    _write_results(results, out_dir, report)
    return results


def _check_arguments(heads: Sequence[str], n_seeds: int) -> None:
    unknown = [h for h in heads if h not in HEADS]
    if unknown or not heads:
        raise UsageError(f"unknown head(s) {', '.join(unknown) or '(none given)'}; choose among {', '.join(HEADS)}")
    if len(set(heads)) != len(heads):
        raise UsageError(f"--heads lists a head twice: {','.join(heads)}")
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {n_seeds!r}")


def _head_results(records: Sequence[TrialRecord]) -> HeadResults:
    """A head's trials (in seed order) as the comparison's per-head results."""
    return HeadResults(records[0].n_params, tuple(r.accuracy for r in records),
                       tuple(r.train_seconds for r in records), tuple(r.correct for r in records),
                       tuple(r.predicted for r in records) if all(r.predicted for r in records) else (),
                       tuple(r.history for r in records) if all(r.history for r in records) else ())


def _write_results(results: CompareResults, out_dir: Path, report: bool) -> None:
    """``results.json``, ``results.csv``, ``results.md`` and (unless told not to) ``report.html``."""
    from qtransfer.report.tables import markdown_summary

    summary = markdown_summary(results)
    atomic_write_json(out_dir / "results.json", results.to_json(summary_markdown=summary))
    atomic_write_text(out_dir / "results.csv", _csv(results))
    atomic_write_text(out_dir / "results.md", summary)
    if report:
        from qtransfer.report import write_report

        write_report(out_dir)


def _csv(results: CompareResults) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["head", "seed", "accuracy", "n_eval", "n_params", "train_seconds"])
    for head, h in results.heads.items():
        for seed, acc, secs in zip(results.seeds, h.accuracies, h.train_seconds):
            writer.writerow([head, seed, f"{acc:.6f}" if math.isfinite(acc) else "nan", results.n_eval, h.n_params, secs])
    return buffer.getvalue()


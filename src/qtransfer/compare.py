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
from qtransfer.results import CompareResults, HeadResults
from qtransfer.stats import compare_heads
from qtransfer.errors import UsageError

__all__ = ["run_compare", "selection_split"]


def selection_split(split, val_fraction: float, seed: int):
    """Hold out a stratified ``val_fraction`` of a :class:`SplitFeatures` for model selection."""
    from qtransfer.data.discover import Sample, stratified_split
    from qtransfer.pipeline import split_features

    samples = [Sample(path=p, label=int(y)) for p, y in zip(split.paths, split.y.tolist())]
    position = {p: i for i, p in enumerate(split.paths)}
    train, select = stratified_split(samples, val_fraction, seed)
    return split_features(split.x, train, position), split_features(split.x, select, position)


def run_compare(config: TrainConfig, *, heads: Sequence[str], n_seeds: int, out_dir: Path,
                cache_dir: str | Path | None = None, progress: bool = True, report: bool = True) -> CompareResults:
    """Train ``heads`` x ``n_seeds`` seeds, evaluate, test against ``quantum``; write the results."""
    from qtransfer.pipeline import prepare_features

    _check_arguments(heads, n_seeds)
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = prepare_features(config, cache_dir=cache_dir, progress=progress)
    if "test" in features.splits:
        train, select, evaluate, eval_split = (features.splits["train"], features.splits["val"],
                                               features.splits["test"], "test")
    else:
        train, select = selection_split(features.splits["train"], config.val_fraction, config.seed)
        evaluate, eval_split = features.splits["val"], "val"

    seeds = tuple(range(config.seed, config.seed + n_seeds))
    bar = _progress(len(heads) * n_seeds, progress)
    per_head = {name: _train_head_over_seeds(name, seeds, config, features, train, select, evaluate, bar) for name in heads}
    if bar is not None:
        bar.close()

    reference = "quantum" if "quantum" in heads else heads[0]
    comparisons = compare_heads({h: r.correct for h, r in per_head.items()}, reference=reference) if len(heads) > 1 else []
    results = CompareResults(
        heads=per_head, classes=features.classes, eval_split=eval_split, n_train=len(train), n_select=len(select),
        n_eval=len(evaluate), eval_paths=tuple(str(p) for p in evaluate.paths), seeds=seeds, reference=reference,
        comparisons=tuple(comparisons), config=config.to_dict(), backbone=dict(features.backbone),
        timing={"extract_s": round(features.seconds, 4), "total_s": round(time.perf_counter() - t_start, 4)},
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


def _train_head_over_seeds(name: str, seeds: Sequence[int], config: TrainConfig, features, train, select, evaluate,
                           bar) -> HeadResults:
    """Train head ``name`` once per seed (epoch selected on ``select``) and record its per-image results on ``evaluate``."""
    from qtransfer.heads import build_head, count_parameters
    from qtransfer.training.loop import infer, train_head

    accuracies, seconds, correct = [], [], []
    n_params = 0
    for seed in seeds:
        head = build_head(name, features.num_features, len(features.classes), device=config.device,
                          **{**config.head_settings(), "seed": seed})
        n_params = count_parameters(head)
        result = train_head(head, (train.x, train.y), (select.x, select.y), epochs=config.epochs,
                            batch_size=config.batch_size, lr=config.lr, step_size=config.step_size,
                            gamma=config.gamma, seed=seed, progress=False)
        head.load_state_dict(result.best_state)
        right = (infer(head, evaluate.x).argmax(-1) == evaluate.y).cpu().numpy()
        accuracies.append(float(right.mean()))
        seconds.append(round(result.seconds, 4))
        correct.append(tuple(int(v) for v in right))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(head=name, seed=seed, acc=f"{accuracies[-1]:.3f}")
    return HeadResults(n_params, tuple(accuracies), tuple(seconds), tuple(correct))


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


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="compare", unit="run", dynamic_ncols=True)

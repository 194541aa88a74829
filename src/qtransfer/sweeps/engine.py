"""Running a sweep: prepare each data set once, run the unfinished trials, record each one as it ends.

``DIR/trials/<trial_id>.json`` is written atomically when a trial finishes and a line is
appended to ``DIR/results.jsonl``; a rerun reads the finished trials back and runs only
the others. A trial that raises is run once more, then recorded as failed
(``trials/<trial_id>.failed.json``, retried by the next rerun) while the rest go on.
Ctrl-C stops the executor; finished trials stay recorded.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from qtransfer.atomic import atomic_write_json, atomic_write_text, remove_temporaries
from qtransfer.errors import CheckpointError, UsageError
from qtransfer.results import EpochRecord, TrialRecord
from qtransfer.sweeps.spec import Trial
from qtransfer.sweeps.trials import TrialData, prepare_trial_data

__all__ = ["MAX_ATTEMPTS", "TrialStore", "check_unique", "execute", "prepare_datasets", "progress_bar"]

#: a trial is run at most this many times before it is recorded as failed
MAX_ATTEMPTS = 2


class TrialStore:
    """The finished trials of a sweep directory: ``trials/*.json`` and ``results.jsonl``."""

    def __init__(self, out_dir: Path):
        self.out = Path(out_dir)
        self.trials_dir = self.out / "trials"

    def finished(self, trials: Sequence[Trial]) -> dict[str, TrialRecord]:
        """The records of ``trials`` that finished in an earlier run (failed ones are not finished)."""
        if not self.trials_dir.is_dir():
            return {}
        remove_temporaries(self.trials_dir)  # half-written files of a killed run
        found = {}
        for trial in trials:
            path = self.trials_dir / f"{trial.id}.json"
            if path.is_file():
                record = TrialRecord.load(path)
                if record.trial_id != trial.id:
                    raise CheckpointError(f"{path} holds trial {record.trial_id}, not {trial.id}; delete the file")
                found[trial.id] = record
        return found

    def save(self, record: TrialRecord) -> None:
        """Write the record atomically, then append it to ``results.jsonl``."""
        name = f"{record.trial_id}.json" if record.ok else f"{record.trial_id}.failed.json"
        atomic_write_json(self.trials_dir / name, record.to_json())
        if record.ok:
            (self.trials_dir / f"{record.trial_id}.failed.json").unlink(missing_ok=True)
        with open(self.out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record.to_json()) + "\n")

    def rewrite(self, records: Sequence[TrialRecord]) -> None:
        """``results.jsonl`` with exactly ``records``, in order (replacing what interrupted runs appended)."""
        atomic_write_text(self.out / "results.jsonl", "".join(json.dumps(r.to_json()) + "\n" for r in records))


def prepare_datasets(trials: Sequence[Trial], *, cache_dir: str | Path | None = None,
                     progress: bool = True) -> dict[tuple, TrialData]:
    """One :class:`TrialData` per distinct data key of ``trials``: features extracted once each, before any trial."""
    datasets: dict[tuple, TrialData] = {}
    for trial in trials:
        if trial.data_key not in datasets:
            datasets[trial.data_key] = prepare_trial_data(trial.config, trial.split_seed, cache_dir=cache_dir,
                                                          progress=progress)
    return datasets


def execute(trials: Sequence[Trial], executor, store: TrialStore | None, datasets: Mapping[tuple, TrialData], *,
            bar=None, log: Callable[[str], None] | None = None, fail_fast: bool = False) -> dict[str, TrialRecord]:
    """Run ``trials`` on ``executor``; each record is saved in ``store`` (if any) as soon as its trial ends.

    ``fail_fast``: a trial's exception is raised at once (no retry, no failed record).
    """
    log = log or _log
    queue, attempts, inflight = deque(trials), Counter(), {}
    records: dict[str, TrialRecord] = {}

    def finish(trial: Trial, outcome: Mapping[str, Any] | None, error: str | None) -> None:
        record = _record(trial, datasets[trial.data_key], outcome, error, attempts[trial.id])
        records[trial.id] = record
        if store is not None:
            store.save(record)
        if not record.ok:
            log(f"trial {trial.id} ({_describe(trial)}) failed after {record.attempts} attempts: {error}")
        if bar is not None:
            bar.update(1)

    while queue or inflight:
        while queue and len(inflight) < 2 * executor.capacity:
            trial = queue.popleft()
            attempts[trial.id] += 1
            inflight[executor.submit(trial.data_key, trial.config)] = trial
        done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
        for future in done:
            if future not in inflight:  # dropped with a broken pool
                continue
            trial = inflight.pop(future)
            error = _error(future)
            if error is not None and fail_fast:
                raise error
            if isinstance(error, BrokenProcessPool):  # every trial the broken pool had not finished is lost
                lost = [trial]
                for other, t in inflight.items():
                    if other.done() and other.exception() is None:
                        finish(t, other.result(), None)
                    else:
                        lost.append(t)
                inflight.clear()
                executor.restart()
                for t in lost:
                    _retry_or_fail(t, "its worker process died (killed, or out of memory)", attempts, queue, finish)
            elif error is not None:
                _retry_or_fail(trial, f"{type(error).__name__}: {error}", attempts, queue, finish)
            else:
                finish(trial, future.result(), None)
    return records


def _retry_or_fail(trial: Trial, message: str, attempts: Counter, queue: deque, finish) -> None:
    if attempts[trial.id] < MAX_ATTEMPTS:
        queue.appendleft(trial)
    else:
        finish(trial, None, message)


def _error(future: Future) -> BaseException | None:
    error = future.exception()
    if isinstance(error, KeyboardInterrupt):
        raise error
    return error


def _record(trial: Trial, data: TrialData, outcome: Mapping[str, Any] | None, error: str | None,
            attempts: int) -> TrialRecord:
    common = dict(trial_id=trial.id, settings=trial.config.to_dict(), point=dict(trial.point),
                  split_seed=trial.split_seed, eval_split=data.eval_split, attempts=attempts)
    if outcome is None:
        return TrialRecord(status="failed", accuracy=math.nan, correct=(), n_params=0, best_epoch=0,
                           train_seconds=math.nan, seconds=math.nan, error=error, **common)
    return TrialRecord(status="ok", accuracy=outcome["accuracy"], correct=tuple(outcome["correct"]),
                       n_params=outcome["n_params"], best_epoch=outcome["best_epoch"],
                       train_seconds=outcome["train_seconds"], seconds=outcome["seconds"],
                       predicted=tuple(outcome.get("predicted", ())),
                       history=tuple(EpochRecord.from_json(e) for e in outcome.get("history", ())), **common)


def _describe(trial: Trial) -> str:
    return ", ".join(f"{k}={v}" for k, v in (*trial.point, ("seed", trial.config.seed)))


def _log(message: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(message, file=sys.stderr, flush=True)


def progress_bar(total: int, initial: int, enabled: bool, desc: str = "sweep", unit: str = "trial"):
    """One bar for trials done / total, with ETA (``None`` when disabled)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, smoothing=0.1)


def check_unique(trials: Sequence[Trial]) -> None:
    seen = Counter(t.id for t in trials)
    twice = [i for i, n in seen.items() if n > 1]
    if twice:
        raise UsageError(f"the sweep defines the same trial more than once ({len(twice)} id(s), e.g. {twice[0]}); "
                         f"a [grid] value repeats a [base] setting in another spelling")


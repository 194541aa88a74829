"""Where trials run: in this process, on a local process pool, or on Ray.

Every executor is given the prepared data sets once (``{data_key: TrialData}``) and then
``submit(data_key, config)`` returns a :class:`concurrent.futures.Future` of
:func:`~qtransfer.sweeps.trials.run_trial`'s result:

* :class:`SerialExecutor` runs the trial in this process when submitted;
* :class:`PoolExecutor` is a ``forkserver`` (else ``spawn``) process pool whose workers receive the data sets
  once, in their initializer, and train on one intra-op thread each. Each worker watches the
  ``qtransfer`` process that started the pool and exits when it ends, however it ends
  (:func:`exit_with`): a worker gone, nothing holds the fork server and the resource tracker,
  which then exit too, so a ``kill -9`` leaves no process behind;
* :class:`RayExecutor` starts (``"local"``) or joins (an address, ``"auto"``) a Ray
  cluster and puts each data set in its object store once (``ray.put``).
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Mapping

from qtransfer.config import TrainConfig
from qtransfer.errors import UsageError
from qtransfer.sweeps.trials import TrialData, run_trial

__all__ = ["SerialExecutor", "PoolExecutor", "RayExecutor", "default_workers", "executor_kind", "exit_with",
           "make_executor", "start_fork_server"]

_WORKER_DATA: dict[tuple, TrialData] = {}


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class SerialExecutor:
    """Runs each trial in this process, at submission (``--workers 1``)."""

    capacity = 1

    def __init__(self, datasets: Mapping[tuple, TrialData]):
        self.datasets = dict(datasets)

    def submit(self, key: tuple, config: TrainConfig) -> Future:
        future: Future = Future()
        try:
            future.set_result(run_trial(config, self.datasets[key]))
        except KeyboardInterrupt:
            raise
        except Exception as e:  # recorded by the caller, which retries once
            future.set_exception(e)
        return future

    def restart(self) -> None:
        """Nothing to restart in this process."""

    def close(self) -> None:
        """Nothing to release."""


def _init_worker(datasets: Mapping[tuple, TrialData], owner: int) -> None:
    """Pool worker start: exit with the ``owner`` process, keep the data sets, train on one thread, leave
    Ctrl-C to the parent."""
    exit_with(owner)
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    _WORKER_DATA.update(datasets)


def exit_with(pid: int, *, poll_s: float = 0.5) -> threading.Thread:
    """End this process (``os._exit``) as soon as process ``pid`` has ended, from a daemon thread.

    Linux waits on a pidfd (woken by the kernel the moment ``pid`` ends); elsewhere the thread
    polls every ``poll_s`` seconds. Unlike ``PR_SET_PDEATHSIG``, it watches any process, not
    only the parent (a pool worker's parent is the fork server), and does not fire when the
    thread that started this process ends.
    """
    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            os._exit(1)
        except (AttributeError, OSError):  # pragma: no cover - not Linux >= 5.3
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    os._exit(1)
                except PermissionError:
                    pass
                time.sleep(poll_s)
        select.select([fd], [], [])  # readable once the process has ended
        os._exit(1)

    thread = threading.Thread(target=watch, name=f"exit-with-{pid}", daemon=True)
    thread.start()
    return thread


#: imported once by the fork server, so that each worker starts with them (not once per worker)
_PRELOAD = ["torch", "qtransfer.sweeps.trials", "qtransfer.heads.dressed", "qtransfer.training.loop"]


def _context():
    """``forkserver`` where there is one (workers forked from a server that imported torch once), else ``spawn``.

    Neither inherits this process's threads or torch state, unlike ``fork``.
    """
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")  # pragma: no cover - macOS, Windows


def start_fork_server() -> None:
    """Start the fork server now, in the background (it imports torch once, while this process prepares the
    data), so that the pool's workers start at once when the trials begin. Nothing to do without forkserver."""
    context = _context()
    if context.get_start_method() == "forkserver":
        threading.Thread(target=_run_nothing, args=(context,), daemon=True).start()


def _run_nothing(context) -> None:
    process = context.Process(target=_nothing)
    process.start()
    process.join()


def _nothing() -> None:
    """A process that only makes the fork server start."""


def _pool_trial(key: tuple, config: TrainConfig) -> dict[str, Any]:
    return run_trial(config, _WORKER_DATA[key])


class PoolExecutor:
    """A process pool of ``workers`` processes (:func:`_context`); each receives the data sets once."""

    def __init__(self, datasets: Mapping[tuple, TrialData], workers: int):
        self.datasets, self.capacity = dict(datasets), workers
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.capacity, mp_context=_context(),
                                   initializer=_init_worker, initargs=(self.datasets, os.getpid()))

    def submit(self, key: tuple, config: TrainConfig) -> Future:
        return self._pool.submit(_pool_trial, key, config)

    def restart(self) -> None:
        """A fresh pool after a worker died (the broken pool fails every trial it held)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _ray_trial(data: TrialData, config: TrainConfig) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return run_trial(config, data)


class RayExecutor:
    """Trials as Ray tasks (one CPU each); the data sets go through the object store once."""

    def __init__(self, datasets: Mapping[tuple, TrialData], address: str):
        ray = import_ray()
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, include_dashboard=False, logging_level="WARNING",
                     runtime_env=_runtime_env() if address == "local" else None)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._refs = {key: ray.put(data) for key, data in datasets.items()}
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)

    def submit(self, key: tuple, config: TrainConfig) -> Future:
        return self._remote.remote(self._refs[key], config).future()

    def restart(self) -> None:
        """Ray replaces dead workers itself."""

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def import_ray():
    """The ``ray`` module, or a UsageError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed: pip install 'qtransfer[ray]'") from None
    return ray


def _runtime_env() -> dict[str, Any]:
    """Local Ray workers find qtransfer where this process found it (also when run from a source tree)."""
    import qtransfer

    src = os.path.dirname(os.path.dirname(os.path.abspath(qtransfer.__file__)))
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}}


def executor_kind(workers: int | None = None, ray: str | None = None) -> tuple[str, int]:
    """``("ray", 0)``, ``("pool", workers)`` or ``("serial", 1)``: what ``workers`` and ``ray`` ask for (checked)."""
    if ray is not None:
        if workers is not None:
            raise UsageError("give --workers or --ray, not both (Ray runs one trial per CPU of the cluster)")
        return "ray", 0
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UsageError(f"--workers must be a positive integer, got {workers!r}")
    return ("serial", 1) if workers == 1 else ("pool", workers)


def make_executor(datasets: Mapping[tuple, TrialData], *, workers: int | None = None, ray: str | None = None):
    """The executor the command line asked for: Ray if ``ray``, else a pool of ``workers`` (> 1), else serial."""
    kind, n = executor_kind(workers, ray)
    if kind == "ray":
        return RayExecutor(datasets, ray)  # type: ignore[arg-type]
    return PoolExecutor(datasets, n) if kind == "pool" else SerialExecutor(datasets)

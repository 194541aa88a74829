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
  cluster and puts each data set in its object store once (``ray.put``). A local instance,
  and a cluster addressed on the loopback, stay on 127.0.0.1 (Ray otherwise advertises and
  binds the machine's network address). Joining is bounded: a refused connection, a missing
  or wrong token (``RAY_AUTH_MODE=token`` with ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
  ``~/.ray/auth_token``) or no answer within :data:`RAY_CONNECT_TIMEOUT_S` is one line that
  says what to set (:func:`connect_ray`).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from qtransfer.config import TrainConfig
from qtransfer.errors import UsageError
from qtransfer.sweeps.trials import TrialData, run_trial

__all__ = ["RAY_AUTH_HELP", "RAY_CONNECT_TIMEOUT_S", "SerialExecutor", "PoolExecutor", "RayExecutor", "connect_ray",
           "default_workers", "executor_kind", "exit_with", "import_ray", "joined_ray", "make_executor", "start_fork_server"]

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
        ray = import_ray(loopback=_is_loopback(address))
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            connect_ray(ray, address)
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


@contextmanager
def joined_ray(address: str) -> Iterator[None]:
    """Ray connected to ``address`` for the block (before any data is prepared: a bad address or token
    fails at once), shut down afterwards if this block connected it. :class:`RayExecutor` inside uses it."""
    ray = import_ray(loopback=_is_loopback(address))
    started = not ray.is_initialized()
    if started:
        connect_ray(ray, address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


#: the longest ``--ray ADDRESS`` waits for a cluster before it gives up with one line
RAY_CONNECT_TIMEOUT_S = 25.0

#: what a user sets to join a cluster started with token authentication (Ray >= 2.52; the default from 2.59-2.61)
RAY_AUTH_HELP = ("set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN=..., RAY_AUTH_TOKEN_PATH=FILE or "
                 "~/.ray/auth_token; `ray get-auth-token` prints it on the head node)")


def _is_loopback(address: str) -> bool:
    """``"local"`` or an address on this machine's loopback (127.0.0.1, localhost, ::1)."""
    if address == "local":
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def import_ray(*, loopback: bool = False):
    """The ``ray`` module, or a UsageError that says how to install it.

    ``loopback``: keep Ray on 127.0.0.1. Ray replaces a loopback address by the machine's network
    address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (read when Ray is imported; the
    processes a local instance starts inherit it).
    """
    if loopback:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed: pip install 'qtransfer[ray]'") from None
    if loopback:
        from ray._private import ray_constants  # already imported by another user: the switch it read

        ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


def connect_ray(ray, address: str, *, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """``ray.init`` for ``address`` (``"local"``, ``"auto"`` or ``HOST:PORT``), bounded and quiet: what Ray
    prints while it retries is kept back, and a failure is one :class:`UsageError` line naming the cause
    (nothing listening, authentication, no answer) and what to do."""
    if address == "local":  # starts its own processes here: nothing to wait for
        ray.init(address="local", include_dashboard=False, logging_level="WARNING", runtime_env=_runtime_env())
        return
    if address != "auto":
        _check_listening(address)
    errors: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(address=address, include_dashboard=False, logging_level="WARNING")
        except BaseException as e:  # handed to the waiting thread
            errors.append(e)

    import tempfile

    with tempfile.TemporaryFile() as said:
        with _stderr_into(said):
            thread = threading.Thread(target=init, name="ray-init", daemon=True)
            thread.start()
            thread.join(timeout_s)
        said.seek(0)
        logged = said.read().decode("utf-8", "replace")
    if thread.is_alive():
        raise UsageError(f"--ray {address}: no Ray cluster answered within {timeout_s:.0f} s; check the address "
                         f"(`ray status` on the head prints it) and, with token authentication, {RAY_AUTH_HELP}")
    if not errors:
        sys.stderr.write(logged)  # what Ray said on the way (its warnings), now that it is not retrying
        return
    error, text = errors[0], str(errors[0])
    if any(word in text + logged for word in ("Unauthenticated", "InvalidAuthToken")):
        raise UsageError(f"--ray {address}: the Ray cluster refused this connection's authentication; "
                         f"{RAY_AUTH_HELP}") from None
    first = (text.strip().splitlines() or [type(error).__name__])[0][:300]
    raise UsageError(f"--ray {address}: could not join the Ray cluster ({type(error).__name__}: {first}); if it "
                     f"uses token authentication, {RAY_AUTH_HELP}") from None


@contextmanager
def _stderr_into(file) -> Iterator[None]:
    """File descriptor 2 (where Ray's C++ logging writes while it retries) redirected into ``file``."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _check_listening(address: str, timeout_s: float = 5.0) -> None:
    """A UsageError at once when nothing accepts connections at ``HOST:PORT``."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address}: give 'local', 'auto' or HOST:PORT (the address `ray start --head` prints)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise UsageError(f"--ray {address}: no Ray cluster there ({e.strerror or e}); start one with "
                         f"`ray start --head --port {port}` or check the address") from None


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

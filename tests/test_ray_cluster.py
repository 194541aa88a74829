"""A real Ray cluster (issue 20, case 12): ``ray start --head`` on 127.0.0.1 in a subprocess, with token
authentication; a sweep through ``--ray 127.0.0.1:PORT`` equals the process pool's, trial by trial; a
refused or unauthenticated connection is one line within 30 s; ``--ray local`` listens on 127.0.0.1 only.
Every test talks to 127.0.0.1 only; the head's processes are stopped afterwards (by session, not `ray stop`,
which would stop every Ray instance on the machine)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import PYTHON, REPO, cli_env, session_cache, session_data
from qtransfer.results import SweepResults

pytest.importorskip("ray")

RAY = Path(PYTHON).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def _stop_session(sid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pid in _session(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while _session(sid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _ray_env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in cli_env(Path(tempfile.gettempdir())).items() if not k.startswith("RAY_AUTH")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    if token is not None:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    return env


@pytest.fixture(scope="module")
def ray_head():
    """``ray start --head --node-ip-address=127.0.0.1`` with its own token, ports and temp dir."""
    if not RAY.is_file():
        pytest.skip("the ray command is not installed")
    token, port = secrets.token_hex(16), _free_port()
    temp = Path(tempfile.mkdtemp(prefix="qtr", dir="/tmp"))  # short: Ray's socket paths are limited
    env = _ray_env(token)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # else Ray swaps 127.0.0.1 for the network address
    start = subprocess.Popen(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
         f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
         f"--metrics-export-port={_free_port()}"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = start.communicate(timeout=180)
        assert start.returncode == 0, out
        yield {"address": f"127.0.0.1:{port}", "token": token}
    finally:
        _stop_session(start.pid)
        leftover = _session(start.pid)
        shutil.rmtree(temp, ignore_errors=True)
        assert leftover == [], "the head's processes outlived the test"


def _sweep(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f'seeds = 2\n[base]\ndata = "{data}"\nweights = "none"\nn_qubits = 2\nepochs = 2\n'
                    f'lr = 0.001\n[grid]\nhead = ["quantum", "linear"]\n')
    return path


def _run(args, env, timeout=300):
    started = time.monotonic()
    result = subprocess.run([PYTHON, "-m", "qtransfer.cli", *map(str, args)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def _per_trial(out: Path) -> list[tuple]:
    return [(t.trial_id, t.status, t.accuracy, t.correct, t.n_params, t.best_epoch)
            for t in SweepResults.load(out / "sweep.json").trials]


def test_a_sweep_through_a_real_cluster_equals_the_pool(ray_head, tmp_path_factory, tmp_path):
    data, cache = session_data(tmp_path_factory, "flat"), session_cache(tmp_path_factory)
    path = _sweep(tmp_path, data)
    common = ["--no-progress", "--no-report", "--cache-dir", cache]
    env = _ray_env(ray_head["token"])
    on_ray, _ = _run(["sweep", path, "--out", tmp_path / "ray", "--ray", ray_head["address"], *common], env)
    assert on_ray.returncode == 0, on_ray.stderr
    pool, _ = _run(["sweep", path, "--out", tmp_path / "pool", "--workers", "2", *common], env)
    assert pool.returncode == 0, pool.stderr
    assert len(_per_trial(tmp_path / "ray")) == 4
    assert _per_trial(tmp_path / "ray") == _per_trial(tmp_path / "pool")


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_missing_or_wrong_token_is_one_line_within_30_s(ray_head, tmp_path, token):
    path = _sweep(tmp_path, tmp_path)  # never reached: the data need not exist
    result, seconds = _run(["sweep", path, "--out", tmp_path / "out", "--ray", ray_head["address"], "--no-progress"],
                           _ray_env(token), timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"qtransfer sweep: error: --ray {ray_head['address']}: the Ray cluster refused this connection's "
        f"authentication; set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN=..., "
        f"RAY_AUTH_TOKEN_PATH=FILE or ~/.ray/auth_token; `ray get-auth-token` prints it on the head node)"]
    assert seconds < 30
    assert not (tmp_path / "out").exists()


def test_nothing_listening_is_one_line_at_once(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    result, seconds = _run(["sweep", _sweep(tmp_path, tmp_path), "--out", tmp_path / "out", "--ray", address,
                            "--no-progress"], _ray_env(None), timeout=60)
    assert result.returncode == 2 and seconds < 30
    line, = result.stderr.strip().splitlines()
    assert line.startswith(f"qtransfer sweep: error: --ray {address}: no Ray cluster there (Connection refused)")


_LISTENING = """
import os, sys
from pathlib import Path
from qtransfer.sweeps.executors import RayExecutor

def sockets():
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":  # LISTEN
                inodes[f[9]] = f[1]
    return inodes

def descendants(root):
    children = {}
    for e in Path("/proc").iterdir():
        if e.name.isdigit():
            try:
                children.setdefault(int((e / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(int(e.name))
            except OSError:
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out

executor = RayExecutor({}, "local")
listening = sockets()
found = set()
for pid in descendants(os.getpid()):
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in listening:
                found.add(listening[link[8:-1]].rsplit(":", 1)[0])
    except OSError:
        pass
executor.close()
print("BOUND=" + ",".join(sorted(found)))
"""


def test_ray_local_listens_on_the_loopback_only(tmp_path):
    env = _ray_env(None)
    result = subprocess.run([PYTHON, "-c", _LISTENING], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    bound = [line for line in result.stdout.splitlines() if line.startswith("BOUND=")][0][6:].split(",")
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    assert bound and set(bound) <= loopback, bound  # 127.0.0.1 (IPv4 or v4-mapped) or ::1, never 0.0.0.0

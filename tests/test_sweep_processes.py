"""No orphans (issue 20, case 5): after ``kill -9`` of ``qtransfer sweep``, its pool workers, fork server and
resource tracker exit too."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from helpers import PYTHON, REPO, cli_env, session_cache, session_data


def _session(sid: int) -> list[int]:
    """PIDs of the live (not zombie) processes of session ``sid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])  # after the name: state ppid pgrp session ...
        if session == sid and state != "Z":
            found.append(int(entry.name))
    return found


def test_kill_9_of_a_sweep_leaves_no_process(tmp_path_factory, tmp_path):
    data = session_data(tmp_path_factory, "flat")
    cache = session_cache(tmp_path_factory)
    path = tmp_path / "slow.toml"  # trials of seconds: the workers are mid-trial when the sweep is killed
    path.write_text(f'seeds = 2\n[base]\ndata = "{data}"\nweights = "none"\nn_qubits = 2\nepochs = 3000\n'
                    f'batch_size = 1\n[grid]\nhead = ["quantum"]\n')
    proc = subprocess.Popen([PYTHON, "-m", "qtransfer.cli", "sweep", str(path), "--out", str(tmp_path / "out"),
                             "--workers", "2", "--no-progress", "--no-report"], env=cli_env(cache), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    sid = proc.pid
    try:
        deadline = time.monotonic() + 120
        while len(_session(sid)) < 5:  # qtransfer, resource tracker, fork server, two workers
            assert proc.poll() is None and time.monotonic() < deadline, _session(sid)
            time.sleep(0.05)
        time.sleep(1.0)  # the workers have their data and are training
        assert not list((tmp_path / "out" / "trials").glob("*.json")), "the trials must outlast the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while _session(sid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _session(sid) == []
    finally:
        for pid in _session(sid):
            os.kill(pid, signal.SIGKILL)

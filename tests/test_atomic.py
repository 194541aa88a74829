"""qtransfer.atomic: complete files or none, and Ctrl-C held until a write is complete."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from qtransfer.atomic import atomic_write, atomic_write_bytes, interrupts_deferred


def test_ctrl_c_during_a_write_lands_after_the_file_is_complete(tmp_path):
    """SIGINT in the middle of a write: the file is whole, then KeyboardInterrupt is raised (not a writer's error)."""
    target = tmp_path / "state.pt"

    def write(f):
        f.write(b"first half ")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives mid-write
        f.write(b"second half")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write)
    assert target.read_bytes() == b"first half second half"
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the caller's handler is back


def test_torch_save_interrupted_by_ctrl_c_leaves_a_loadable_file(tmp_path):
    """The failure seen in CI: an interrupted torch.save raised RuntimeError from its zip writer's cleanup."""
    torch = pytest.importorskip("torch")
    target = tmp_path / "state.pt"
    state = {"weights": torch.arange(10_000.0), "epoch": 3}

    class InterruptingFile:
        def __init__(self, f):
            self.f, self.sent = f, False

        def write(self, data):
            if not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, lambda f: torch.save(state, InterruptingFile(f)))
    loaded = torch.load(target, weights_only=True)
    assert loaded["epoch"] == 3 and torch.equal(loaded["weights"], state["weights"])


def test_an_error_in_the_writer_leaves_no_file_and_no_temporary(tmp_path):
    def write(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "x.json", write)
    assert list(tmp_path.iterdir()) == []
    atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert (tmp_path / "x.json").read_bytes() == b"{}"


def test_outside_the_main_thread_writes_run_as_they_are(tmp_path):
    errors = []

    def worker():
        try:
            with interrupts_deferred():
                atomic_write_bytes(tmp_path / "t.bin", b"ok")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert not errors and (tmp_path / "t.bin").read_bytes() == b"ok"


@pytest.mark.parametrize("durable", [True, False])
def test_fsync_only_when_durable(tmp_path, monkeypatch, durable):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    atomic_write(tmp_path / "x.bin", lambda f: f.write(b"data"), durable=durable)
    assert (tmp_path / "x.bin").read_bytes() == b"data"
    assert bool(synced) == durable


def test_feature_cache_entries_are_not_fsynced_and_a_torn_one_is_recomputed(tmp_path, monkeypatch):
    """A power cut may leave an unsynced entry empty or torn: its checksum refuses it, so it is recomputed."""
    np = pytest.importorskip("numpy")
    from qtransfer.features.cache import FeatureCache

    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    cache = FeatureCache(tmp_path)
    key = "ab" * 32
    cache.put(key, np.arange(4, dtype=np.float32))
    assert not synced
    for torn in (b"", cache.path(key).read_bytes()[:-3]):
        cache.path(key).write_bytes(torn)
        assert cache.get(key) is None and not cache.path(key).exists()
        cache.put(key, np.arange(4, dtype=np.float32))

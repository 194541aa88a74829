"""Shared builders for the pipeline tests: tiny separable image folders, synthetic features, CLI runs.

Images are 32 px and coloured by class (class 0 reddish, class 1 bluish, class 2 greenish,
with per-pixel noise), so even a random-weights backbone separates them.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

#: mean RGB colour of each class's images
_COLOURS = [(200, 40, 40), (40, 40, 200), (40, 200, 40), (200, 200, 40)]


@pytest.fixture(autouse=False)
def one_torch_thread():
    """Tiny tensors run far faster on one thread when other jobs share the cores; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_image(path: Path, colour: Sequence[int], *, size: int = 32, seed: int = 0) -> Path:
    """A ``size`` x ``size`` PNG of ``colour`` plus seeded noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, dtype=np.float64) + rng.normal(0, 25, size=(size, size, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return path


def make_image_folder(
    root: Path, classes: Sequence[str] = ("ants", "bees"), n_per_class: int = 6, size: int = 32, seed: int = 0
) -> Path:
    """A folder of class folders, ``n_per_class`` separable images each; returns ``root``."""
    root = Path(root)
    for k, name in enumerate(classes):
        for i in range(n_per_class):
            write_image(root / name / f"{name}_{i:03d}.png", _COLOURS[k % len(_COLOURS)], size=size,
                        seed=seed * 10_000 + k * 1000 + i)
    return root


def make_split_folder(
    root: Path, classes: Sequence[str] = ("ants", "bees"), n: dict[str, int] | None = None, size: int = 32
) -> Path:
    """A root with ``train/``, ``val/`` and ``test/`` class folders (different images in each)."""
    n = n or {"train": 6, "val": 3, "test": 3}
    for i, (split, count) in enumerate(n.items()):
        make_image_folder(Path(root) / split, classes, count, size, seed=i + 1)
    return Path(root)


def write_bad_image(path: Path) -> Path:
    """A file with an image name and a PNG signature that cannot be decoded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage, not a real PNG" * 4)
    return path


def session_data(tmp_path_factory, name: str, layout: str = "flat", n_per_class: int = 6) -> Path:
    """A tiny image folder shared by the whole session (built once; its bytes never change)."""
    root = tmp_path_factory.getbasetemp() / "tiny-data" / name
    if not root.exists():
        if layout == "splits":
            make_split_folder(root)
        else:
            make_image_folder(root, n_per_class=n_per_class)
    return root


def session_cache(tmp_path_factory) -> Path:
    """A feature cache shared by the session: each tiny image is run through the backbone once."""
    return tmp_path_factory.getbasetemp() / "qt-cache"


def separable_features(n_per_class: int = 20, n_classes: int = 2, dim: int = 16, *, seed: int = 0, spread: float = 0.3):
    """Gaussian blobs around well-separated class centres: ``(x float32, y long)``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.eye(n_classes, dim)
    x = torch.cat([centres[k] + spread * torch.randn(n_per_class, dim, generator=g) for k in range(n_classes)])
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    return x.float(), y


def cli_env(cache: Path) -> dict[str, str]:
    """Environment for a ``python -m qtransfer.cli`` subprocess: cache in ``cache``, src importable."""
    env = dict(os.environ)
    env["QTRANSFER_CACHE"] = str(cache)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # tiny tensors: threads only contend
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: Sequence[str], cache: Path, *, timeout: float = 300, extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run ``python [extra] -m qtransfer.cli ARGS`` and capture its output."""
    return subprocess.run(
        [PYTHON, *extra, "-m", "qtransfer.cli", *map(str, args)],
        env=cli_env(cache), capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )


def tiny_train_args(data: Path, out: Path, *, epochs: int = 2, head: str = "quantum", extra: Sequence[str] = ()) -> list[str]:
    """``train`` arguments for a fast run on a tiny folder with a random-weights ResNet-18."""
    return ["train", "--data", str(data), "--out", str(out), "--backbone", "resnet18", "--weights", "none",
            "--epochs", str(epochs), "--head", head, "--qubits", "2", "--depth", "2", "--lr", "0.05",
            "--no-progress", "--no-report", *extra]


def train_tiny_run(tmp_path_factory, out: Path, *, epochs: int, qubits: int = 2) -> tuple[Path, Path]:
    """A finished tiny ``train`` run into ``out`` on the session's flat folder and feature cache (in this
    process, through the command line); returns ``(data, cache)``."""
    data, cache = session_data(tmp_path_factory, "flat"), session_cache(tmp_path_factory)
    argv = tiny_train_args(data, out, epochs=epochs, extra=["--cache-dir", cache])
    argv[argv.index("--qubits") + 1] = str(qubits)
    code, _, err = call_cli(argv)
    assert code == 0, err
    return data, cache


def call_cli(args) -> tuple[int, str, str]:
    """``cli.main`` in-process: (exit code, stdout, stderr)."""
    from qtransfer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def compare_results(correct: dict, *, n_params: dict | None = None, train_seconds: dict | None = None,
                    accuracies: dict | None = None, classes=("ants", "bees"), n_boot: int = 500):
    """A typed :class:`~qtransfer.results.CompareResults` from per-head (seeds, images) 0/1 arrays."""
    from qtransfer.results import CompareResults, HeadResults
    from qtransfer.stats import compare_heads

    correct = {h: np.asarray(c, dtype=int) for h, c in correct.items()}
    n_seeds, n_eval = next(iter(correct.values())).shape
    heads = {h: HeadResults((n_params or {}).get(h, 1000), tuple((accuracies or {}).get(h, c.mean(axis=1).tolist())),
                            tuple((train_seconds or {}).get(h, [1.0] * n_seeds)), tuple(map(tuple, c.tolist())))
             for h, c in correct.items()}
    reference = next(iter(correct))
    comparisons = compare_heads(correct, reference=reference, n_boot=n_boot) if len(correct) > 1 else []
    return CompareResults(heads=heads, classes=tuple(classes), eval_split="val", n_train=100, n_select=20,
                          n_eval=n_eval, eval_paths=tuple(f"val/{i}.jpg" for i in range(n_eval)),
                          seeds=tuple(range(n_seeds)), reference=reference, comparisons=tuple(comparisons),
                          config={"backbone": "mobilenet_v2", "epochs": 30, "n_qubits": 4, "depth": 6}, backbone={})


# ------------------------------------------------------------------------------------------ CIFAR
def _pickle(obj) -> bytes:
    import pickle

    return pickle.dumps(obj, protocol=2)


def _tiny_cifar(per_batch: dict[int, int]) -> tuple[bytes, dict[str, bytes]]:
    """A CIFAR-10 archive in the real format: ``per_batch[label]`` random images of each label per batch."""
    import tarfile

    rng = np.random.RandomState(0)
    labels = [lab for lab, n in per_batch.items() for _ in range(n)]
    files = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        files[name] = _pickle({"batch_label": name, "labels": list(labels), "data": data})
    files["batches.meta"] = _pickle({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                     "horse", "ship", "truck"]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue(), files


@contextlib.contextmanager
def serve_tiny_cifar(setattr_=setattr):
    """A local HTTP server (127.0.0.1) serving a tiny CIFAR-10 archive (2 cats, 2 dogs, 1 plane per batch);
    torchvision's URL and md5s are pointed at it with ``setattr_`` (``monkeypatch.setattr`` in a test)."""
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from torchvision.datasets import CIFAR10

    archive, files = _tiny_cifar({3: 2, 5: 2, 0: 1})
    md5 = {name: hashlib.md5(blob).hexdigest() for name, blob in files.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            self.wfile.write(archive)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    setattr_(CIFAR10, "url", f"http://127.0.0.1:{httpd.server_address[1]}/cifar-10-python.tar.gz")
    setattr_(CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
    setattr_(CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    setattr_(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    setattr_(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]})
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made unwritable for this process, also for root: a read-only bind mount of it, else
    ``chattr +i``, else (not root) ``chmod 555``; skips the test where none of these works. Undone afterwards."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    undo = None
    if os.geteuid() == 0 and shutil.which("mount"):
        if subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode == 0:
            if subprocess.run(["mount", "-o", "remount,bind,ro", folder], capture_output=True).returncode == 0:
                undo = ["umount", folder]
            else:
                subprocess.run(["umount", folder], capture_output=True)
        if undo is None and shutil.which("chattr") and \
                subprocess.run(["chattr", "+i", folder], capture_output=True).returncode == 0:
            undo = ["chattr", "-i", folder]
    elif os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", folder]
    if undo is None:
        pytest.skip("cannot make a folder read-only for root here (no bind mount, no chattr)")
    try:
        probe = folder / ".probe"
        with pytest.raises(OSError):
            probe.write_text("x")
        yield folder
    finally:
        subprocess.run(undo, check=True)

"""Cold ``qtransfer train`` of two or more git revisions, alternating, one fresh process per run.

What a cold run costs moves with the shared machine by more than most changes save, so
revisions are compared run by run in turn (A, B, A, B, ...), each run a fresh
``python -m qtransfer.cli train`` with an empty feature cache and that revision's ``src``
(exported with ``git archive``) first on ``PYTHONPATH``; the table shows each revision's
median ``timing.total_s`` from its ``metrics.json``.

    python benchmarks/cold_runs.py a3d6322 HEAD --rounds 6
    python benchmarks/cold_runs.py HEAD --forward-batches 4,6,8   # forward passes alone, by batch size

``--forward-batches`` instead times the backbone's forward passes alone (images decoded
first, batch norm folded, channels-last, as ``extract_features`` runs them) at each batch
size, one fresh process per size and round, so the memory allocator starts as a cold run's
does; ``--malloc-threshold BYTES`` sets glibc's ``MALLOC_MMAP_THRESHOLD_`` to BYTES and
``MALLOC_TRIM_THRESHOLD_`` to twice that in those processes (fixing the first alone turns off
glibc's dynamic trim threshold, and freed memory is handed back to the kernel again).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from end_to_end import qtransfer_train  # benchmarks/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

_FORWARD = """
import json, sys, time, torch
from qtransfer.data.discover import discover
from qtransfer.features.backbones import resolve_backbone
from qtransfer.features.extract import prepare_forward
from qtransfer.features.loading import iter_loaded
data, backbone, weights, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
paths = sorted(s.path for split in discover(data).splits.values() for s in split)
ref = resolve_backbone(backbone, weights)
prep = ref.image_preprocess()
forward, convert = prepare_forward(ref.build("cpu"))
pixels = [x for _, x in iter_loaded(list(enumerate(paths)), prep.pixels, torch.get_num_threads())]
t = time.perf_counter()
with torch.inference_mode():
    for start in range(0, len(pixels), batch):
        forward(convert(prep.batch(pixels[start:start + batch])))
print(json.dumps({"seconds": time.perf_counter() - t, "images": len(pixels)}))
"""


def export_src(revision: str, into: Path) -> Path:
    """``src`` of ``revision`` (anything ``git archive`` takes) under ``into``; returns its path."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision, "src"],
                         check=True, capture_output=True).stdout
    target = into / revision.replace("/", "_")
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(target, filter="data")
    return target / "src"


def cold_train(src: Path, args, tmp: Path) -> float:
    """One fresh cold ``qtransfer train`` of ``src``; its ``timing.total_s``."""
    run = Path(tempfile.mkdtemp(dir=tmp))
    return qtransfer_train(args.data, run / "out", run / "cache", args, src=src)["total_s"]


def forward_pass(src: Path, batch: int, args, tmp: Path) -> float:
    """Seconds of forward passes over every image at ``batch`` images per pass, in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(src))
    if args.malloc_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_threshold)
        env["MALLOC_TRIM_THRESHOLD_"] = str(2 * args.malloc_threshold)
    out = subprocess.run([sys.executable, "-c", _FORWARD, str(args.data), args.backbone, str(args.weights), str(batch)],
                         check=True, capture_output=True, text=True, cwd=tmp, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("revisions", nargs="+", help="git revisions to compare (HEAD: the last commit)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "hymenoptera_train")
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--weights", type=Path, default=SHARED / "weights" / "mobilenet_v2-b0353104.pth")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forward-batches", default="", help="time forward passes alone at these batch sizes")
    ap.add_argument("--malloc-threshold", type=int, default=0,
                    help="glibc's MALLOC_MMAP_THRESHOLD_ (and twice it as MALLOC_TRIM_THRESHOLD_) for --forward-batches")
    args = ap.parse_args(argv)
    args.data, args.weights = args.data.resolve(), args.weights.resolve()
    batches = [int(b) for b in args.forward_batches.split(",") if b.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        srcs = {rev: export_src(rev, tmp) for rev in args.revisions}
        cases = [(rev, b) for rev in args.revisions for b in batches] if batches else [(rev, None) for rev in args.revisions]
        times: dict[tuple, list[float]] = {case: [] for case in cases}
        for r in range(args.rounds):
            for rev, batch in cases:
                seconds = (forward_pass(srcs[rev], batch, args, tmp) if batch else cold_train(srcs[rev], args, tmp))
                times[(rev, batch)].append(seconds)
                print(f"round {r + 1}: {rev}{f' batch {batch}' if batch else ''} {seconds:.3f} s", file=sys.stderr)
    what = "forward passes s" if batches else "cold total_s"
    print(f"\n| revision | {'batch | ' if batches else ''}median {what} | min | max |")
    print(f"|---|{'---:|' if batches else ''}---:|---:|---:|")
    for (rev, batch), ts in times.items():
        print(f"| {rev} | {f'{batch} | ' if batches else ''}{statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} |")
    print(f"\n{args.rounds} rounds, alternating; {args.backbone}, {args.data}"
          + (f"; MALLOC_MMAP_THRESHOLD_={args.malloc_threshold}, MALLOC_TRIM_THRESHOLD_={2 * args.malloc_threshold}"
             if args.malloc_threshold else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

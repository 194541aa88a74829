"""Time the ways qtransfer could run a frozen backbone over a folder of images (cold cache).

Usage (from the repository root):
    .venv/bin/python benchmarks/extraction.py                       # mobilenet_v2 + resnet18
    .venv/bin/python benchmarks/extraction.py --backbones resnet18 --options eager,channels_last

Each option is one cold pass over every image (decode + preprocess + forward, no cache);
"prepare" time (tracing, fusing, compiling) is included in the seconds because it is paid on
every cold run. "max |diff|" compares the features with the baseline (inline decoding, eager
contiguous fp32 under torch.no_grad, batch 32).

mobilenet_v2 uses the shared ImageNet weights file; resnet18 uses random weights
(weights=None: the same FLOPs, no download).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from qtransfer.features.backbones import create_backbone
from qtransfer.features.extract import _load, extract_features
from qtransfer.data.images import IMAGE_EXTENSIONS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hymenoptera_train"
WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2-b0353104.pth"

# name -> extract_features keyword arguments
OPTIONS: dict[str, dict] = {
    "eager inline bs32": dict(method="eager", num_workers=0, batch_size=32),
    "eager +1 decode thread": dict(method="eager", num_workers=1, batch_size=32),
    "channels_last inline": dict(method="channels_last", num_workers=0, batch_size=32),
    "channels_last +1 thread": dict(method="channels_last", num_workers=1, batch_size=32),
    "channels_last +1 thr bs8": dict(method="channels_last", num_workers=1, batch_size=8),
    "channels_last +1 thr bs16": dict(method="channels_last", num_workers=1, batch_size=16),
    "channels_last +1 thr bs64": dict(method="channels_last", num_workers=1, batch_size=64),
    "channels_last inline bs8": dict(method="channels_last", num_workers=0, batch_size=8),
    "fuse +1 thread": dict(method="fuse", num_workers=1, batch_size=32),
    "fuse_channels_last +1 thr": dict(method="fuse_channels_last", num_workers=1, batch_size=32),
    "fuse_channels_last +1 thr bs8": dict(method="fuse_channels_last", num_workers=1, batch_size=8),
    "fuse_channels_last +1 thr bs16": dict(method="fuse_channels_last", num_workers=1, batch_size=16),
    "jit freeze+optimize +1 thr": dict(method="jit", num_workers=1, batch_size=32),
    "jit +1 thr bs8": dict(method="jit", num_workers=1, batch_size=8),
    "torch.compile +1 thread": dict(method="compile", num_workers=1, batch_size=32),
}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def _baseline(paths: list[Path], backbone) -> tuple[torch.Tensor, float, float]:
    """Inline decode then eager no_grad forward; returns (features, decode s, total s)."""
    t0 = time.perf_counter()
    decode = 0.0
    outs = []
    for start in range(0, len(paths), 32):
        td = time.perf_counter()
        xs = [_load(p, backbone.transform) for p in paths[start : start + 32]]
        decode += time.perf_counter() - td
        xs = [x for x in xs if isinstance(x, torch.Tensor)]
        with torch.no_grad():
            outs.append(backbone.model(torch.stack(xs)))
    return torch.cat(outs), decode, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--backbones", default="mobilenet_v2,resnet18")
    ap.add_argument("--options", default=",".join(OPTIONS), help="comma-separated option names")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--repeat", type=int, default=1, help="passes per option; the median is shown")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # torch.jit deprecation notices
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = _images(args.data)
    if not paths:
        print(f"no images under {args.data}", file=sys.stderr)
        return 3
    chosen = [o.strip() for o in args.options.split(",") if o.strip()]
    print(f"{len(paths)} images from {args.data}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'backbone':<14} {'option':<30} {'seconds':>8} {'img/s':>7} {'max |diff|':>11}")
    for name in args.backbones.split(","):
        weights = str(WEIGHTS) if name == "mobilenet_v2" and WEIGHTS.exists() else None
        bb = create_backbone(name, weights=weights)
        with torch.no_grad():  # warm-up so that the first option timed is not penalised
            bb.model(torch.zeros(8, 3, 224, 224))
        runs = [_baseline(paths, bb) for _ in range(args.repeat)]
        ref, dec, total = runs[0][0], statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
        print(f"{name:<14} {'baseline (decode %.1fs)' % dec:<30} {total:8.2f} {len(paths) / total:7.1f} {0.0:11.2e}")
        for opt in chosen:
            kw = OPTIONS[opt]
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                ex = extract_features(paths, bb, cache=None, progress=False, **kw)
                times.append(time.perf_counter() - t)
            s = statistics.median(times)
            diff = (ex.features - ref).abs().max().item()
            print(f"{name:<14} {opt:<30} {s:8.2f} {len(paths) / s:7.1f} {diff:11.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

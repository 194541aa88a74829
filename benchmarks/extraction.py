"""Time the ways qtransfer could run a frozen backbone over a folder of images (cold cache).

Usage (from the repository root):
    .venv/bin/python benchmarks/extraction.py                       # mobilenet_v2 + resnet18
    .venv/bin/python benchmarks/extraction.py --backbones resnet18 --options eager,channels_last
    .venv/bin/python benchmarks/extraction.py --backbones mobilenet_v2,efficientnet_b0 \
        --options "qtransfer default" --batch-sizes 4,6,8 --repeat 3   # how cpu_batch was chosen

Each option is one cold pass over every image (decode + preprocess + forward, no cache).
"qtransfer default" is ``extract_features`` itself (batch norm folded into the convolutions,
channels-last, decoding in chunks between forward passes, the architecture's ``cpu_batch``
images per pass; ``--batch-sizes`` times it at other batch sizes too); the other rows are the
variants it was chosen from, defined here (the product carries only the winner).
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

from qtransfer.data.images import open_image_rgb
from qtransfer.features.backbones import create_backbone
from qtransfer.features.extract import extract_features

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hymenoptera_train"
WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2-b0353104.pth"

# name -> (how the backbone runs, decoding threads, batch size)
OPTIONS: dict[str, tuple[str, int, int]] = {
    "eager inline bs32": ("eager", 0, 32),
    "eager +1 decode thread": ("eager", 1, 32),
    "channels_last inline": ("channels_last", 0, 32),
    "channels_last +1 thread": ("channels_last", 1, 32),
    "channels_last +1 thr bs8": ("channels_last", 1, 8),
    "channels_last +1 thr bs16": ("channels_last", 1, 16),
    "channels_last +1 thr bs64": ("channels_last", 1, 64),
    "fuse +1 thread": ("fuse", 1, 32),
    "fuse_channels_last +1 thr": ("fuse_channels_last", 1, 32),
    "fuse_channels_last +1 thr bs16": ("fuse_channels_last", 1, 16),
    "jit freeze+optimize +1 thr": ("jit", 1, 32),
    "jit +1 thr bs8": ("jit", 1, 8),
    "torch.compile +1 thread": ("compile", 1, 32),
}


def _variant(model: torch.nn.Module, method: str):
    """(forward, input converter) for one way of running ``model``."""
    import copy

    channels_last = (lambda x: x.contiguous(memory_format=torch.channels_last))
    if method == "eager":
        return model, lambda x: x
    if method == "channels_last":
        return copy.deepcopy(model).to(memory_format=torch.channels_last), channels_last
    if method in ("fuse", "fuse_channels_last"):
        from torch.fx.experimental.optimization import fuse

        fused = fuse(copy.deepcopy(model).eval())
        if method == "fuse":
            return fused, lambda x: x
        return fused.to(memory_format=torch.channels_last), channels_last
    if method == "jit":
        with torch.no_grad():
            traced = torch.jit.trace(model, torch.zeros(1, 3, 224, 224))
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced)), lambda x: x
    if method == "compile":
        return torch.compile(model), lambda x: x
    raise ValueError(method)


def _decoded(paths: list[Path], transform, workers: int):
    """Preprocessed images in order; with workers, decoded ahead in threads (PIL releases the GIL)."""
    load = lambda p: transform(open_image_rgb(p))  # noqa: E731
    if workers == 0:
        yield from map(load, paths)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(load, paths)


def _run_variant(paths: list[Path], backbone, method: str, workers: int, batch: int) -> torch.Tensor:
    forward, convert = _variant(backbone.model, method)
    outs, xs = [], []

    def run() -> None:
        with torch.inference_mode():
            outs.append(forward(convert(torch.stack(xs))).reshape(len(xs), -1))
        xs.clear()

    for x in _decoded(paths, backbone.transform, workers):
        xs.append(x)
        if len(xs) == batch:
            run()
    if xs:
        run()
    return torch.cat(outs)


def _images(folder: Path) -> list[Path]:
    """The usable photos, as training finds them (the placeholder GIF is left out)."""
    from qtransfer.data.discover import discover

    return sorted(s.path for split in discover(folder).splits.values() for s in split)


def _baseline(paths: list[Path], backbone) -> tuple[torch.Tensor, float, float]:
    """Inline decode then eager no_grad forward; returns (features, decode s, total s)."""
    t0 = time.perf_counter()
    decode = 0.0
    outs = []
    for start in range(0, len(paths), 32):
        td = time.perf_counter()
        xs = [backbone.transform(open_image_rgb(p)) for p in paths[start : start + 32]]
        decode += time.perf_counter() - td
        with torch.no_grad():
            outs.append(backbone.model(torch.stack(xs)))
    return torch.cat(outs), decode, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--backbones", default="mobilenet_v2,resnet18")
    ap.add_argument("--options", default=",".join(["qtransfer default", *OPTIONS]), help="comma-separated option names")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--repeat", type=int, default=1, help="passes per option; the median is shown")
    ap.add_argument("--batch-sizes", default="", help="also time qtransfer default at these batch sizes (comma-separated)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # torch.jit deprecation notices
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = _images(args.data)
    if not paths:
        print(f"no images under {args.data}", file=sys.stderr)
        return 3
    chosen = [o.strip() for o in args.options.split(",") if o.strip()]
    chosen += [f"qtransfer, batch {int(b)}" for b in args.batch_sizes.split(",") if b.strip()]
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
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                if opt == "qtransfer default":
                    features = extract_features(paths, bb, cache=None, progress=False).features
                elif opt.startswith("qtransfer, batch "):
                    batch = int(opt.rsplit(" ", 1)[1])
                    features = extract_features(paths, bb, cache=None, progress=False, batch_size=batch).features
                else:
                    features = _run_variant(paths, bb, *OPTIONS[opt])
                times.append(time.perf_counter() - t)
            s = statistics.median(times)
            diff = (features - ref).abs().max().item()
            print(f"{name:<14} {opt:<30} {s:8.2f} {len(paths) / s:7.1f} {diff:11.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does train-time augmentation matter? ``compare`` with and without ``--augment K``, the same split and seeds.

For each head (default: quantum and linear), ``qtransfer.compare`` runs ``--seeds`` seeds on
centre crops (``augment=0``, the published protocol) and on ``K`` cached augmented views per
training image (``augment=K``: the notebooks' commented-out RandomResizedCrop(224) +
RandomHorizontalFlip). The split, the held-out selection images and the evaluation images are
the same in both (the split seed is ``--seed``), so each head's per-image results pair up
across the two arms: the difference is tested with ``compare``'s paired bootstrap over images
and seeds (Holm-adjusted over the heads) with exact McNemar beside
(:func:`qtransfer.stats.compare_heads`). Prints a Markdown table; ``--json FILE`` keeps every number.

    python benchmarks/augmentation.py --seeds 10 --augment 10   # ../shared data, MobileNetV2 weights

Accuracies do not depend on the machine's load; the seconds do (cold extraction of the views).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "data" / "hymenoptera_train"))
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2-b0353104.pth"))
    parser.add_argument("--heads", default="quantum,linear")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--augment", type=int, default=10, help="views per training image in the augmented arm")
    parser.add_argument("--seed", type=int, default=0, help="the first seed, and the split's")
    parser.add_argument("--cache-dir", help="feature cache (default: qtransfer's)")
    parser.add_argument("--out", help="folder for the two compare runs (default: a temporary one)")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()

    from qtransfer.api import compare  # not qtransfer.compare: once the module qtransfer.compare is imported, that name is it
    from qtransfer.stats import compare_heads, mean_ci

    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    out = Path(args.out or tempfile.mkdtemp(prefix="qt-augment-"))
    settings = dict(backbone=args.backbone, weights=args.weights, seed=args.seed, progress=False, report=False,
                    cache_dir=args.cache_dir)
    arms, seconds = {}, {}
    for augment in (0, args.augment):
        t0 = time.perf_counter()
        arms[augment] = compare(args.data, out=out / f"augment-{augment}", heads=heads, seeds=args.seeds,
                                augment=augment, **settings)
        seconds[augment] = time.perf_counter() - t0
    plain, augmented = arms[0], arms[args.augment]
    assert plain.eval_paths == augmented.eval_paths, "the two arms must be evaluated on the same images"
    label = f"augment {args.augment}"
    # each head against itself across the arms (paired over seeds and images), Holm over the heads
    paired = [compare_heads({h: np.asarray(plain.heads[h].correct),
                             f"{h}, {label}": np.asarray(augmented.heads[h].correct)}, reference=h)[0] for h in heads]
    adjusted = _holm([c.bootstrap_p for c in paired])

    print(f"{args.data}: {plain.n_train} train / {plain.n_select} select / {plain.n_eval} {plain.eval_split} images, "
          f"{args.backbone}, {args.seeds} seeds; compare took {seconds[0]:.1f} s (centre crops) and "
          f"{seconds[args.augment]:.1f} s ({label}, views extracted or read from the cache)\n")
    print("| head | centre crops (published): mean ± std (%) | 95% CI | "
          f"{label}: mean ± std (%) | 95% CI | {label} − centre, points (95% CI) | p (Holm) | McNemar p |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for h, c, p_adj in zip(heads, paired, adjusted):
        a, b = np.asarray(plain.heads[h].accuracies), np.asarray(augmented.heads[h].accuracies)
        (ma, sa, la, ha), (mb, sb, lb, hb) = mean_ci(a, bounds=(0, 1)), mean_ci(b, bounds=(0, 1))
        print(f"| {h} | {100 * ma:.1f} ± {100 * sa:.1f} | {100 * la:.1f} – {100 * ha:.1f} | "
              f"{100 * mb:.1f} ± {100 * sb:.1f} | {100 * lb:.1f} – {100 * hb:.1f} | "
              f"{c.diff_points:+.1f} ({100 * c.ci95[0]:+.1f} to {100 * c.ci95[1]:+.1f}) | {p_adj:.2f} | "
              f"{c.mcnemar.p_value:.2f} |")
        rows.append({"head": h, "centre": a.tolist(), "augmented": b.tolist(), "diff_points": c.diff_points,
                     "ci95_points": [100 * c.ci95[0], 100 * c.ci95[1]], "bootstrap_p": c.bootstrap_p,
                     "p_holm": p_adj, "mcnemar_p": c.mcnemar.p_value, "sentence": c.sentence})
    for r in rows:
        print(f"\n{r['sentence']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "seconds": seconds, "rows": rows,
                                               "n": [plain.n_train, plain.n_select, plain.n_eval]}, indent=2))


def _holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (as ``compare`` applies over its heads)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


if __name__ == "__main__":
    main()

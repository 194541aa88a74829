"""The report's figures, drawn with matplotlib's Agg canvas (headless; pyplot's global state untouched).

Each function takes typed results (:mod:`qtransfer.results`) and returns a matplotlib
``Figure``; :class:`FigureSaver` writes it as PNG under ``figures/`` and returns its data URI.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from qtransfer.atomic import atomic_write_bytes
from qtransfer.results import CompareResults, EpochRecord, SplitMetrics

__all__ = ["FigureSaver", "compare_confusion_figure", "compare_curves_figure", "compare_figure", "confusion_figure", "curves_figure", "finite", "head_color", "new_figure",
           "pick_samples", "resolve_image", "samples_figure", "style_axes", "sweep_figure"]

GREEN = "#1a7f37"
RED = "#c62828"
_OTHER_COLORS = ("#0969da", "#bf8700", "#1a7f37", "#cf222e", "#8250df", "#1b7c83")
_MAX_SAMPLES = 12
_SAMPLE_COLUMNS = 6


def finite(x: Any) -> float | None:
    """``x`` as a float if it is a finite number, else ``None`` (shown as n/a)."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def head_color(name: str, i: int) -> str:
    """The registry's colour of a head (another palette colour for an unregistered name)."""
    from qtransfer.heads.registry import HEADS

    return HEADS[name].color if name in HEADS else _OTHER_COLORS[i % len(_OTHER_COLORS)]


def _matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or an ImportError that says what to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            "writing a report needs matplotlib, a dependency of qtransfer that is missing here: pip install matplotlib"
        ) from e
    return Figure, FigureCanvasAgg


def new_figure(width: float, height: float) -> Any:
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


class FigureSaver:
    """Saves figures atomically under ``figures/`` and returns their data URIs."""

    def __init__(self, directory: Path):
        self.directory = directory / "figures"

    def save(self, fig: Any, name: str) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, facecolor="white")
        data = buf.getvalue()
        return self.save_bytes(data, name)

    def save_bytes(self, data: bytes, name: str) -> str:
        """Write PNG bytes under ``figures/``; their data URI."""
        atomic_write_bytes(self.directory / name, data)
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def style_axes(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def curves_figure(history: Sequence[EpochRecord], best_epoch: int) -> Any:
    from matplotlib.ticker import MaxNLocator

    epochs = [h.epoch for h in history]
    fig = new_figure(10, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, title, scale in ((ax_loss, "loss", "Loss", 1.0), (ax_acc, "acc", "Accuracy (%)", 100.0)):
        for split, color, style in (("train", "#0969da", "-"), ("val", "#cf222e", "-")):
            pts = [(e, finite(getattr(h, f"{split}_{key}"))) for e, h in zip(epochs, history)]
            pts = [(e, v * scale) for e, v in pts if v is not None]
            if pts:
                xs, ys = zip(*pts)
                label = "training" if split == "train" else "validation"
                ax.plot(xs, ys, style, color=color, marker="o", markersize=3, linewidth=1.6, label=label)
        if best_epoch is not None and best_epoch in epochs:
            ax.axvline(best_epoch, color="#6e7781", linestyle=":", linewidth=1.2, label=f"best epoch ({best_epoch})")
            best = finite(getattr(history[epochs.index(best_epoch)], f"val_{key}"))
            if best is not None:
                ax.plot([best_epoch], [best * scale], marker="*", markersize=13, color="#bf8700",
                        markeredgecolor="black", markeredgewidth=0.5, linestyle="none", zorder=5)
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        style_axes(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=9)
    return fig


def confusion_figure(splits: Sequence[tuple[str, SplitMetrics]], classes: Sequence[str]) -> Any:
    import numpy as np

    n = len(splits)
    k = len(classes)
    size = max(2.8, 0.9 * k + 1.6)
    fig = new_figure(size * n + 0.4, size)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (split, ev) in zip(axes, splits):
        cm = np.asarray(ev.confusion_matrix, dtype=float)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1.0, cm.max()))
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                dark = cm[i, j] > 0.55 * cm.max()
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=14,
                        color="white" if dark else "#1f2328", fontweight="bold")
        names = list(classes) if len(classes) == cm.shape[0] else [str(i) for i in range(cm.shape[0])]
        ax.set_xticks(range(cm.shape[1]), names)
        ax.set_yticks(range(cm.shape[0]), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        correct, total = int(np.trace(cm)), int(cm.sum())
        ax.set_title(f"{split}: {correct}/{total} right", fontsize=11, loc="left")
    return fig


def resolve_image(raw: str, run_dir: Path) -> Path | None:
    """``raw`` as given if absolute, else relative to ``run_dir`` or the current directory; ``None`` if not found."""
    p = Path(raw).expanduser()
    candidates = [p] if p.is_absolute() else [run_dir / p, Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    return None


def pick_samples(items: Sequence[Mapping]) -> list[Mapping]:
    """Misclassified first (at most half the grid), then correct ones, file order kept."""
    valid = [it for it in items if isinstance(it, Mapping) and "path" in it]
    wrong = [it for it in valid if it.get("true") is not None and it.get("true") != it.get("pred")]
    right = [it for it in valid if it.get("true") is None or it.get("true") == it.get("pred")]
    n_wrong = min(len(wrong), _MAX_SAMPLES // 2)
    chosen = wrong[:n_wrong] + right[: _MAX_SAMPLES - n_wrong]
    if len(chosen) < _MAX_SAMPLES:
        chosen += wrong[n_wrong : n_wrong + _MAX_SAMPLES - len(chosen)]
    return chosen


def samples_figure(items: Sequence[Mapping], run_dir: Path) -> tuple[Any | None, int, list[str]]:
    """Grid of thumbnails; returns (figure or None, images shown, paths skipped)."""
    from PIL import ImageOps

    from qtransfer.data.images import BadImageError, open_image_rgb

    loaded, skipped = [], []
    for it in items:
        path = resolve_image(str(it["path"]), run_dir)
        if path is None:
            skipped.append(f"{it['path']} (not found)")
            continue
        try:
            img = open_image_rgb(path)
        except BadImageError as e:
            skipped.append(f"{it['path']} ({e.reason})")
            continue
        loaded.append((ImageOps.fit(img, (192, 192)), it))
    if not loaded:
        return None, 0, skipped
    cols = min(_SAMPLE_COLUMNS, len(loaded))
    rows = math.ceil(len(loaded) / cols)
    fig = new_figure(1.9 * cols, 2.35 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, it) in zip(axes.ravel(), loaded):
        known = it.get("true") is not None
        ok = it.get("true") == it.get("pred")
        color = (GREEN if ok else RED) if known else "#57606a"
        ax.axis("on")
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color(color)
            spine.set_linewidth(4)
        prob = finite(it.get("probability"))
        prob_txt = f" ({prob:.2f})" if prob is not None else ""
        true_txt = f"\ntrue: {it['true']}" if known else "\n(true class unknown)"
        ax.set_title(f"pred: {it.get('pred', '?')}{prob_txt}{true_txt}",
                     fontsize=9, color=color, fontweight="bold" if known and not ok else "normal")
    return fig, len(loaded), skipped




def compare_figure(results: CompareResults, order: Sequence[str]) -> Any:
    """Accuracy by head (mean, 95% CI, every seed) and, with comparisons, the paired differences."""
    fig = new_figure(11 if results.comparisons else 6.5, 4.2)
    axes = fig.subplots(1, 2 if results.comparisons else 1, squeeze=False,
                        width_ratios=[1.3, 1] if results.comparisons else None)[0]
    _accuracy_axes(axes[0], results, order)
    if results.comparisons:
        _difference_axes(axes[1], results, order)
    return fig


def _accuracy_axes(ax: Any, results: CompareResults, order: Sequence[str]) -> None:
    import numpy as np

    from qtransfer.stats import mean_ci

    chance = 100.0 / len(results.classes) if len(results.classes) >= 2 else 0.0
    top = 0.0
    for i, name in enumerate(order):
        accs = np.asarray([a for a in results.heads[name].accuracies if finite(a) is not None], float) * 100
        if accs.size == 0:
            continue
        m, _s, lo, hi = mean_ci(accs, bounds=(0.0, 100.0))
        color = head_color(name, i)
        ax.bar(i, m - chance, bottom=chance, width=0.6, color=color, alpha=0.35, edgecolor=color, linewidth=1.5)
        if math.isfinite(lo):
            ax.errorbar(i, m, yerr=[[m - lo], [hi - m]], color="#1f2328", capsize=8, linewidth=1.6, zorder=4)
        jitter = np.linspace(-0.16, 0.16, accs.size) if accs.size > 1 else np.zeros(1)
        ax.scatter(i + jitter, accs, s=18, color=color, edgecolor="white", linewidth=0.5, zorder=5)
        ax.text(i, (hi if math.isfinite(hi) else accs.max()) + 0.6, f"{m:.1f}%", ha="center", va="bottom",
                fontsize=10, fontweight="bold")
        top = max(top, float(accs.max()), hi if math.isfinite(hi) else 0.0)
    ax.set_xticks(range(len(order)), list(order))
    ax.set_ylim(chance, top + 5.0 if top > chance else 100.0)  # room for the labels above 100%
    ax.set_yticks([t for t in ax.get_yticks() if chance <= t <= 100.0])
    ax.set_ylabel(f"accuracy on {results.eval_split} (%)" + (f"; bars start at chance ({chance:.0f}%)" if chance else ""))
    ax.set_title("Accuracy by head: mean, 95% CI, every seed", fontsize=11, loc="left")
    style_axes(ax)
    ax.grid(False, axis="x")


def _difference_axes(ax: Any, results: CompareResults, order: Sequence[str]) -> None:
    import numpy as np

    comparisons = results.comparisons
    ref_accs = np.asarray(results.heads[results.reference].accuracies, float) * 100
    for j, c in enumerate(comparisons):
        color = head_color(c.head, order.index(c.head) if c.head in order else j + 1)
        d = c.diff_points
        lo, hi = (100.0 * v for v in c.ci95)
        ax.errorbar([d], [j], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=6, markersize=8,
                    linewidth=2, zorder=4)
        accs = np.asarray(results.heads[c.head].accuracies, float) * 100
        if accs.size == ref_accs.size and accs.size > 0:
            ax.scatter(accs - ref_accs, np.full(accs.size, j + 0.22), s=12, color=color, alpha=0.6, zorder=3)
        verdict = "significant" if c.significant else "not significant"
        ax.text(hi, j - 0.22, f"  p={c.p_adjusted:.2g}, {verdict}", va="center", ha="left", fontsize=9, color="#1f2328")
    ax.axvline(0, color="#1f2328", linewidth=1)
    ax.set_yticks(range(len(comparisons)), [f"{c.head}\nvs {c.reference}" for c in comparisons])
    ax.set_ylim(len(comparisons) - 0.4, -0.6)
    xmin, xmax = ax.get_xlim()
    span = max(abs(xmin), abs(xmax), 2.0)
    ax.set_xlim(-span * 1.1, span * 1.9)
    ax.set_xlabel(f"accuracy difference (points); > 0: better than {results.reference}")
    ax.set_title("Paired difference, 95% bootstrap CI (dots: per seed)", fontsize=11, loc="left")
    style_axes(ax)


def compare_curves_figure(results: CompareResults, order: Sequence[str]) -> Any:
    """Loss and accuracy per epoch of every head: mean over seeds (line) and the seeds' range (band)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(11, 3.8)
    axes = fig.subplots(1, 2)
    for ax, key, title, scale in ((axes[0], "loss", "Loss", 1.0), (axes[1], "acc", "Accuracy (%)", 100.0)):
        for i, name in enumerate(order):
            runs = results.heads[name].history
            n_epochs = min(len(r) for r in runs)
            color = head_color(name, i)
            epochs = [runs[0][e].epoch for e in range(n_epochs)]
            for split, style in (("train", ":"), ("val", "-")):
                values = np.array([[getattr(r[e], f"{split}_{key}") for e in range(n_epochs)] for r in runs]) * scale
                ax.plot(epochs, np.nanmean(values, axis=0), style, color=color, linewidth=1.6,
                        label=f"{name}, {'training' if split == 'train' else 'selection'}")
                if split == "val" and len(runs) > 1:
                    ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color,
                                    alpha=0.15, linewidth=0)
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        style_axes(ax)
    axes[1].legend(frameon=False, fontsize=8, ncol=2)
    return fig


def compare_confusion_figure(results: CompareResults, order: Sequence[str]) -> Any:
    """One confusion matrix per head, counts summed over its seeds (rows: true class)."""
    import numpy as np

    k = len(results.classes)
    labels = np.asarray(results.eval_labels)
    shown = []
    for name in order:
        cm = np.zeros((k, k), dtype=int)
        for predicted in results.heads[name].predicted:
            np.add.at(cm, (labels, np.asarray(predicted)), 1)
        shown.append((f"{name}, {len(results.heads[name].predicted)} seeds",
                      SplitMetrics(math.nan, math.nan, int(cm.sum()), {}, tuple(map(tuple, cm.tolist())))))
    return confusion_figure(shown, results.classes)


# --------------------------------------------------------------------------- sweeps
def sweep_figure(points: Sequence[Any], varied: Sequence[str], heads: Sequence[str]) -> Any:
    """Accuracy (mean, 95% CI) against the varied setting per head; with two or more varied, a heatmap per head.

    ``points`` are :func:`qtransfer.sweeps.summarize`'s grid points, ``varied`` the settings
    that take several values (:func:`qtransfer.sweeps.summary.varied_settings`).
    """
    if len(varied) >= 2:
        return _sweep_heatmaps(points, varied[0], varied[1], heads)
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    setting = varied[0] if varied else None
    values = [dict(p.point).get(setting) for p in points] if setting else [None]
    numeric = setting is not None and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xs = values if numeric else list(range(len(points)))
    span = (max(xs) - min(xs)) if len(set(xs)) > 1 else 1.0
    for i, name in enumerate(heads):
        stats = [p.heads.get(name) for p in points]
        flat = next((h for h in stats if h is not None and setting in h.ignores and h.accuracies), None)
        if flat is not None:  # the head ignores the setting: one set of trials, drawn as a level, not a curve
            color = head_color(name, i)
            ax.axhline(100 * flat.mean, color=color, linestyle="--", linewidth=1.6,
                       label=f"{name} (ignores {setting}: trained once)")
            if math.isfinite(flat.lo):
                ax.axhspan(100 * flat.lo, 100 * flat.hi, color=color, alpha=0.12, linewidth=0)
            continue
        dodge = 0.012 * span * (i - (len(heads) - 1) / 2)  # side by side, so that the intervals do not hide each other
        shown = [(x + dodge, h) for x, h in zip(xs, stats) if h is not None and h.accuracies]
        if not shown:
            continue
        x = [s[0] for s in shown]
        m = [100 * s[1].mean for s in shown]
        lo = [100 * (s[1].mean - s[1].lo) if math.isfinite(s[1].lo) else 0.0 for s in shown]
        hi = [100 * (s[1].hi - s[1].mean) if math.isfinite(s[1].hi) else 0.0 for s in shown]
        ax.errorbar(x, m, yerr=[lo, hi], fmt="-o", color=head_color(name, i), capsize=5, linewidth=1.8, label=name)
    if not numeric:
        ax.set_xticks(xs, [str(v) if setting else "" for v in values])
    elif len(set(xs)) > 1:
        ax.set_xticks(sorted(set(xs)))
    ax.set_xlabel(setting or "")
    ax.set_ylabel("accuracy (%): mean over seeds, 95% CI")
    ax.set_title(f"Accuracy against {setting} per head" if setting else "Accuracy per head", fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=9)
    style_axes(ax)
    return fig


def _sweep_heatmaps(points: Sequence[Any], rows: str, cols: str, heads: Sequence[str]) -> Any:
    """Mean accuracy (%) over seeds for every (rows, cols) value pair, one panel per head, on one colour scale."""
    import numpy as np

    row_values = list(dict.fromkeys(dict(p.point)[rows] for p in points))
    col_values = list(dict.fromkeys(dict(p.point)[cols] for p in points))
    grids = [_heatmap_grid(points, name, rows, row_values, cols, col_values) for name in heads]
    finite_values = np.concatenate([g[np.isfinite(g)] for g in grids])
    vmin, vmax = (float(finite_values.min()), float(finite_values.max())) if finite_values.size else (0.0, 100.0)
    vmax = max(vmax, vmin + 1.0)
    fig = new_figure(max(4.2, 3.6 * len(heads)), 0.5 * len(row_values) + 2.4)
    axes = fig.subplots(1, len(heads), squeeze=False)[0]
    for ax, name, grid in zip(axes, heads, grids):
        image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for (r, c), v in np.ndenumerate(grid):
            ax.text(c, r, "n/a" if not np.isfinite(v) else f"{v:.1f}", ha="center", va="center", fontsize=9,
                    color="white" if np.isfinite(v) and v < (vmin + vmax) / 2 else "black")
        ax.set_xticks(range(len(col_values)), [str(v) for v in col_values])
        ax.set_yticks(range(len(row_values)), [str(v) for v in row_values])
        ax.set_xlabel(cols)
        ax.set_ylabel(rows)
        ignored = [k for k in (rows, cols) if any(k in p.heads[name].ignores for p in points if name in p.heads)]
        ax.set_title(name + (f" (ignores {', '.join(ignored)})" if ignored else ""), fontsize=11, loc="left")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="mean accuracy (%)")
    return fig


def _heatmap_grid(points: Sequence[Any], head: str, rows: str, row_values: list, cols: str, col_values: list) -> Any:
    """``head``'s mean accuracy (%) per (row, column) value; with a third varied setting, the mean over its values."""
    import numpy as np

    grid = np.full((len(row_values), len(col_values)), np.nan)
    for r, rv in enumerate(row_values):
        for c, cv in enumerate(col_values):
            means = [p.heads[head].mean for p in points if dict(p.point)[rows] == rv and dict(p.point)[cols] == cv
                     and head in p.heads and p.heads[head].accuracies]
            if means:
                grid[r, c] = 100 * float(np.mean(means))
    return grid

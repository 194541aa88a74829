"""A self-contained HTML report of a training run or of a head comparison.

:func:`write_report` looks at a directory, decides what it is from the files present,
and writes ``report.html`` there, plus the PNG figures it embeds under ``figures/``:

* a **run directory** (``metrics.json``, optional ``config.json`` and
  ``predictions.json``): headline numbers, training curves with the best epoch marked,
  confusion matrices, the circuit diagram (quantum heads), a grid of sample
  predictions (green = right, red = wrong) and the resolved configuration;
* a **compare directory** (``results.json``): the answer to "does the quantum head
  help?" in plain words, accuracy by head with 95% confidence intervals and every
  seed, the paired differences, and the Markdown summary as HTML tables.

The page needs no network and no JavaScript: every image is a base64 ``data:`` URI
and the CSS is inline, so the file can be mailed, archived or opened offline.
matplotlib (``pip install qtransfer[report]``) is imported only when a report is
written, and always draws through the Agg canvas (headless; pyplot's global backend
is left untouched).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from qtransfer.atomic import atomic_write_bytes, atomic_write_text
from qtransfer.errors import CheckpointError

__all__ = ["write_report"]

_GREEN = "#1a7f37"
_RED = "#c62828"
_HEAD_COLORS = {"quantum": "#6f42c1", "linear": "#57606a", "mlp": "#0969da", "classical": "#57606a"}
_OTHER_COLORS = ("#0969da", "#bf8700", "#1a7f37", "#cf222e", "#8250df", "#1b7c83")
_MAX_SAMPLES = 12
_SAMPLE_COLUMNS = 6


def write_report(path: str | os.PathLike) -> Path:
    """Write ``report.html`` (and ``figures/*.png``) into a run or compare directory.

    The kind is detected from the files present: ``results.json`` makes it a
    comparison report, else ``metrics.json`` makes it a run report. Returns the path
    of the report. Raises :class:`~qtransfer.errors.CheckpointError` when the
    directory is missing, has neither file, or holds a file that is not valid JSON.

    Example:
        >>> report = write_report("runs/quantum-seed0")       # doctest: +SKIP
        >>> report.name                                       # doctest: +SKIP
        'report.html'
    """
    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory}: no such directory; pass a run directory (with metrics.json) "
            f"or a compare directory (with results.json)"
        )
    if (directory / "results.json").is_file():
        page = _compare_report(directory)
    elif (directory / "metrics.json").is_file():
        page = _run_report(directory)
    else:
        raise CheckpointError(
            f"{directory}: neither results.json (a comparison) nor metrics.json (a training run) is here; "
            f"point the report at the directory that training or comparison wrote"
        )
    return atomic_write_text(directory / "report.html", page)


# =========================================================================== loading
def _load_json(path: Path, *, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise CheckpointError(f"{path}: missing; the run directory is incomplete (rerun training)")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path}: not valid JSON ({e}); it was probably cut off by an interrupted run: "
            f"rerun the step that writes it, or delete it to leave it out of the report"
        ) from None


def _get(mapping: Any, *keys: str, default: Any = None) -> Any:
    """``mapping[k1][k2]...`` or ``default`` when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(mapping, Mapping) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


# =========================================================================== figures
def _mpl() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or an ImportError that says what to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            "writing a report needs matplotlib: pip install 'qtransfer[report]' (or pip install matplotlib)"
        ) from e
    return Figure, FigureCanvasAgg


def _new_figure(width: float, height: float) -> Any:
    Figure, FigureCanvasAgg = _mpl()
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


class _Figures:
    """Saves figures atomically under ``figures/`` and returns their data URIs."""

    def __init__(self, directory: Path):
        self.directory = directory / "figures"

    def save(self, fig: Any, name: str) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, facecolor="white")
        data = buf.getvalue()
        atomic_write_bytes(self.directory / name, data)
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _style_axes(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def _curves_figure(history: Sequence[Mapping], best_epoch: Any) -> Any:
    from matplotlib.ticker import MaxNLocator

    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    fig = _new_figure(10, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, title, scale in ((ax_loss, "loss", "Loss", 1.0), (ax_acc, "acc", "Accuracy (%)", 100.0)):
        for split, color, style in (("train", "#0969da", "-"), ("val", "#cf222e", "-")):
            pts = [(e, _num(h.get(f"{split}_{key}"))) for e, h in zip(epochs, history)]
            pts = [(e, v * scale) for e, v in pts if v is not None]
            if pts:
                xs, ys = zip(*pts)
                label = "training" if split == "train" else "validation"
                ax.plot(xs, ys, style, color=color, marker="o", markersize=3, linewidth=1.6, label=label)
        if best_epoch is not None and best_epoch in epochs:
            ax.axvline(best_epoch, color="#6e7781", linestyle=":", linewidth=1.2, label=f"best epoch ({best_epoch})")
            best = _num(history[epochs.index(best_epoch)].get(f"val_{key}"))
            if best is not None:
                ax.plot([best_epoch], [best * scale], marker="*", markersize=13, color="#bf8700",
                        markeredgecolor="black", markeredgewidth=0.5, linestyle="none", zorder=5)
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style_axes(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=9)
    return fig


def _confusion_figure(splits: Sequence[tuple[str, Mapping]], classes: Sequence[str]) -> Any:
    import numpy as np

    n = len(splits)
    k = len(classes)
    size = max(2.8, 0.9 * k + 1.6)
    fig = _new_figure(size * n + 0.4, size)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (split, ev) in zip(axes, splits):
        cm = np.asarray(ev["confusion_matrix"], dtype=float)
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


def _circuit_figure(config: Mapping) -> tuple[Any | None, str]:
    """Draw the circuit described by ``config`` from :class:`CircuitSpec`; (None, why) if it can't."""
    from qtransfer.quantum.circuit import CircuitSpec

    kwargs = {k: config[k] for k in ("n_qubits", "depth", "embedding", "layer") if k in config}
    try:
        spec = CircuitSpec(**kwargs)
    except (TypeError, ValueError) as e:
        return None, f"circuit diagram left out: config.json describes no valid circuit ({e})"
    from matplotlib.patches import Circle, Rectangle

    n = spec.n_qubits
    max_layers = spec.depth if spec.depth <= 6 else 3
    n_embed = n * len(spec.embedding_gates)
    per_layer = len(spec.entangling_pairs()) + n
    gates = list(spec.gates())[: n_embed + max_layers * per_layer]

    # Stages: each embedding gate position, then per layer its CNOTs and its rotations.
    # Gates are drawn stage by stage (a stable sort: gates on different wires commute, the
    # order on each wire is kept), each stage starting after the previous one ends.
    n_emb_gates = len(spec.embedding_gates)
    stage_index: dict[tuple, int] = {}
    staged = []
    for i, g in enumerate(gates):
        layer = -1 if i < n_embed else (i - n_embed) // per_layer
        key = ("emb", i % n_emb_gates) if layer < 0 else (layer, g.name == "CNOT")
        staged.append((stage_index.setdefault(key, len(stage_index)), i, g, layer))
    staged.sort(key=lambda t: (t[0], t[1]))

    next_free = [0] * n
    placed: list[tuple[Any, int, int]] = []  # (gate, column, layer or -1)
    layer_cols: dict[int, list[int]] = {}
    previous = None
    for stage, _i, g, layer in staged:
        span = range(min(g.wires), max(g.wires) + 1)
        col = max(next_free[w] for w in span)
        if previous is not None and stage != previous:
            col = max(col, max(next_free))
        previous = stage
        for w in span:
            next_free[w] = col + 1
        placed.append((g, col, layer))
        if layer >= 0:
            layer_cols.setdefault(layer, []).append(col)
    n_cols = max(next_free) if placed else 0
    truncated = spec.depth > max_layers
    extra = 1 if truncated else 0
    meas_col = n_cols + extra

    fig = _new_figure(min(0.8 + 0.5 * (meas_col + 1.7), 11.0), 0.55 * n + 0.8)
    ax = fig.add_subplot()
    ax.set_xlim(-1.0, meas_col + 0.7)
    ax.set_ylim(n - 0.35, -1.05)
    ax.axis("off")
    for w in range(n):
        ax.plot([-0.55, meas_col], [w, w], color="#57606a", linewidth=1, zorder=0)
        ax.text(-0.65, w, f"q{w}", ha="right", va="center", fontsize=10)
    for layer, cols in layer_cols.items():
        lo, hi = min(cols) - 0.45, max(cols) + 0.45
        ax.add_patch(Rectangle((lo, -0.5), hi - lo, n, facecolor="#f6f8fa" if layer % 2 == 0 else "#eef1f4",
                               edgecolor="none", zorder=-1))
        ax.text((lo + hi) / 2, -0.72, f"layer {layer + 1}", ha="center", va="center", fontsize=8, color="#57606a")
    if n_embed:
        emb_cols = [c for g, c, layer in placed if layer < 0]
        ax.text((min(emb_cols) + max(emb_cols)) / 2, -0.72, "embedding", ha="center", va="center",
                fontsize=8, color="#57606a")
    short = {"Hadamard": "H"}
    for g, col, _layer in placed:
        if g.name == "CNOT":
            c, t = g.wires
            ax.plot([col, col], [c, t], color="#1f2328", linewidth=1.2, zorder=2)
            ax.add_patch(Circle((col, c), 0.09, color="#1f2328", zorder=3))
            ax.add_patch(Circle((col, t), 0.2, facecolor="white", edgecolor="#1f2328", linewidth=1.2, zorder=3))
            ax.plot([col - 0.2, col + 0.2], [t, t], color="#1f2328", linewidth=1.2, zorder=4)
            ax.plot([col, col], [t - 0.2, t + 0.2], color="#1f2328", linewidth=1.2, zorder=4)
            continue
        (w,) = g.wires
        if g.param is None:
            label, face = short.get(g.name, g.name), "#ffffff"
        elif g.param[0] == "x":
            label, face = f"{g.name}\nx{g.param[1]}", "#fff8c5"
        else:
            label, face = f"{g.name}\nw{g.param[1] + 1},{g.param[2]}", "#ddf4ff"
        ax.add_patch(Rectangle((col - 0.34, w - 0.3), 0.68, 0.6, facecolor=face, edgecolor="#1f2328",
                               linewidth=1, zorder=2))
        ax.text(col, w, label, ha="center", va="center", fontsize=7.5 if "\n" in label else 9, zorder=3,
                linespacing=0.95)
    if truncated:
        ax.text(n_cols, (n - 1) / 2, f"…\n{spec.depth - max_layers}\nmore\nlayers", ha="center", va="center",
                fontsize=8, color="#57606a", bbox=dict(facecolor="white", edgecolor="none", pad=1))
    for w in range(n):
        ax.add_patch(Rectangle((meas_col - 0.34, w - 0.3), 0.68, 0.6, facecolor="#f6f8fa", edgecolor="#1f2328",
                               linewidth=1, zorder=2))
        ax.text(meas_col, w, f"⟨Z{w}⟩", ha="center", va="center", fontsize=8, zorder=3)
    caption = (f"{n} qubits, depth {spec.depth}, embedding <code>{spec.embedding}</code>, layer "
               f"<code>{spec.layer}</code>: {spec.n_weights} trainable circuit weights "
               f"(yellow: input angles x from the classical pre-net; blue: trainable weights w; "
               f"the ⟨Z⟩ expectation values feed the classical post-net)."
               + (f" Layers {max_layers + 1}–{spec.depth} repeat the same pattern." if truncated else ""))
    return fig, caption


def _resolve_image(raw: str, run_dir: Path) -> Path | None:
    p = Path(raw).expanduser()
    candidates = [p] if p.is_absolute() else [run_dir / p, Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    return None


def _pick_samples(items: Sequence[Mapping]) -> list[Mapping]:
    """Misclassified first (at most half the grid), then correct ones, file order kept."""
    valid = [it for it in items if isinstance(it, Mapping) and "path" in it]
    wrong = [it for it in valid if it.get("true") is not None and it.get("true") != it.get("pred")]
    right = [it for it in valid if it.get("true") is None or it.get("true") == it.get("pred")]
    n_wrong = min(len(wrong), _MAX_SAMPLES // 2)
    chosen = wrong[:n_wrong] + right[: _MAX_SAMPLES - n_wrong]
    if len(chosen) < _MAX_SAMPLES:
        chosen += wrong[n_wrong : n_wrong + _MAX_SAMPLES - len(chosen)]
    return chosen


def _samples_figure(items: Sequence[Mapping], run_dir: Path) -> tuple[Any | None, int, list[str]]:
    """Grid of thumbnails; returns (figure or None, images shown, paths skipped)."""
    from PIL import ImageOps

    from qtransfer.data.images import BadImageError, open_image_rgb

    loaded, skipped = [], []
    for it in items:
        path = _resolve_image(str(it["path"]), run_dir)
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
    fig = _new_figure(1.9 * cols, 2.35 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, it) in zip(axes.ravel(), loaded):
        known = it.get("true") is not None
        ok = it.get("true") == it.get("pred")
        color = (_GREEN if ok else _RED) if known else "#57606a"
        ax.axis("on")
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color(color)
            spine.set_linewidth(4)
        prob = _num(it.get("probability"))
        prob_txt = f" ({prob:.2f})" if prob is not None else ""
        true_txt = f"\ntrue: {it['true']}" if known else "\n(true class unknown)"
        ax.set_title(f"pred: {it.get('pred', '?')}{prob_txt}{true_txt}",
                     fontsize=9, color=color, fontweight="bold" if known and not ok else "normal")
    return fig, len(loaded), skipped


def _head_color(name: str, i: int) -> str:
    return _HEAD_COLORS.get(name, _OTHER_COLORS[i % len(_OTHER_COLORS)])


def _compare_figure(results: Mapping, comparisons: Sequence[Mapping], order: Sequence[str]) -> Any:
    import numpy as np

    from qtransfer.stats import mean_ci

    heads = results["heads"]
    classes = results.get("classes") or []
    chance = 100.0 / len(classes) if len(classes) >= 2 else 0.0
    two = bool(comparisons)
    fig = _new_figure(11 if two else 6.5, 4.2)
    axes = fig.subplots(1, 2 if two else 1, squeeze=False, width_ratios=[1.3, 1] if two else None)[0]
    ax = axes[0]
    top = 0.0
    for i, name in enumerate(order):
        accs = np.asarray([a for a in heads[name].get("accuracies", []) if _num(a) is not None], float) * 100
        if accs.size == 0:
            continue
        m, _s, lo, hi = mean_ci(accs, bounds=(0.0, 100.0))
        color = _head_color(name, i)
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
    split = results.get("eval_split", "evaluation")
    ax.set_ylabel(f"accuracy on {split} (%)" + (f"; bars start at chance ({chance:.0f}%)" if chance else ""))
    ax.set_title("Accuracy by head: mean, 95% CI, every seed", fontsize=11, loc="left")
    _style_axes(ax)
    ax.grid(False, axis="x")

    if two:
        ax = axes[1]
        ref = comparisons[0]["reference"]
        ref_accs = np.asarray(heads.get(ref, {}).get("accuracies", []), float) * 100
        for j, c in enumerate(comparisons):
            name = c["head"]
            color = _head_color(name, order.index(name) if name in order else j + 1)
            d = 100.0 * c["diff"]
            lo, hi = (100.0 * v for v in c["ci95"])
            ax.errorbar([d], [j], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=6, markersize=8,
                        linewidth=2, zorder=4)
            accs = np.asarray(heads.get(name, {}).get("accuracies", []), float) * 100
            if accs.size == ref_accs.size and accs.size > 0:
                ax.scatter(accs - ref_accs, np.full(accs.size, j + 0.22), s=12, color=color, alpha=0.6, zorder=3)
            p = c.get("p_adjusted", c.get("bootstrap_p"))
            verdict = "significant" if c.get("significant") else "not significant"
            ax.text(hi, j - 0.22, f"  p={p:.2g}, {verdict}", va="center", ha="left", fontsize=9, color="#1f2328")
        ax.axvline(0, color="#1f2328", linewidth=1)
        ax.set_yticks(range(len(comparisons)), [f"{c['head']}\nvs {c['reference']}" for c in comparisons])
        ax.set_ylim(len(comparisons) - 0.4, -0.6)
        xmin, xmax = ax.get_xlim()
        span = max(abs(xmin), abs(xmax), 2.0)
        ax.set_xlim(-span * 1.1, span * 1.9)
        ax.set_xlabel(f"accuracy difference (points); > 0: better than {ref}")
        ax.set_title("Paired difference, 95% bootstrap CI (dots: per seed)", fontsize=11, loc="left")
        _style_axes(ax)
    return fig


# =========================================================================== HTML
_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;font:15px/1.55 -apple-system,BlinkMacSystemFont,"Segoe UI",
Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 32px 48px;background:#fff;min-height:100vh;
box-shadow:0 0 0 1px #d0d7de}
h1{font-size:28px;margin:0 0 4px;letter-spacing:-.01em}
.subtitle{color:#57606a;margin:0 0 22px;font-size:16px}
h2{font-size:20px;margin:34px 0 12px;padding-bottom:6px;border-bottom:1px solid #d0d7de}
h3{font-size:16px;margin:22px 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:8px 0 8px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;background:#fff}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#57606a}
.card .value{font-size:26px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.card .note{font-size:13px;color:#57606a}
.verdict{border-left:5px solid #6f42c1;background:#f8f5ff;padding:14px 18px;border-radius:0 8px 8px 0;
margin:10px 0 6px;font-size:16px}
.verdict.sig{border-color:#1a7f37;background:#eefbf1}
.verdict p{margin:6px 0}
.callout{border:1px solid #d4a72c;background:#fff8c5;border-radius:8px;padding:10px 14px;font-size:14px;
margin:14px 0}
figure{margin:10px 0 18px}
figure img{display:block;max-width:100%;height:auto;border:1px solid #eaeef2;border-radius:6px}
figcaption{color:#57606a;font-size:13px;margin-top:6px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:6px 12px;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600;border-bottom:2px solid #d0d7de}
tbody tr:nth-child(even){background:#fafbfc}
td.r,th.r{text-align:right}td.c,th.c{text-align:center}
.wide{overflow-x:auto}
.row{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}.row>*{margin-top:10px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:1px 4px;
border-radius:4px}
.muted{color:#57606a;font-size:13px}
ul{padding-left:22px}li{margin:4px 0}
footer{margin-top:36px;color:#57606a;font-size:12px;border-top:1px solid #d0d7de;padding-top:10px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _page(title: str, subtitle: str, body: str) -> str:
    from qtransfer import __version__

    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_e(title)}</h1>\n<p class=\"subtitle\">{subtitle}</p>\n{body}\n"
        f"<footer>Written by qtransfer {_e(__version__)} on {_e(stamp)}. Self-contained: no network, "
        f"no scripts; figures are also saved as PNG in <code>figures/</code>.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def _figure_html(uri: str, alt: str, caption: str = "", max_width: int | None = None) -> str:
    style = f' style="max-width:{max_width}px"' if max_width else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{_e(alt)}"{style}>{cap}</figure>\n'


def _card(label: str, value: str, note: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return (f'<div class="card"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(value)}</div>{note_html}</div>')


def _flatten(d: Mapping, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def _config_table(config: Mapping) -> str:
    rows = []
    for k, v in _flatten(config):
        shown = v if isinstance(v, str) else json.dumps(v)
        rows.append(f"<tr><td><code>{_e(k)}</code></td><td>{_e(shown)}</td></tr>")
    return ('<div class="wide"><table><thead><tr><th>setting</th><th>value</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>\n")


def _inline_md(text: str) -> str:
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return out


def _md_to_html(md: str) -> str:
    """Render the subset of Markdown :func:`qtransfer.stats.summarise` writes.

    Headings (``#``..``####``), pipe tables with an alignment row, ``-`` lists,
    paragraphs, inline code and bold. Everything else is escaped text.
    """
    lines = md.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        if heading:
            level = min(len(heading.group(1)) + 1, 4)  # page h1 is the title, h2 the sections
            out.append(f"<h{level}>{_inline_md(heading.group(2))}</h{level}>")
            i += 1
            continue
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i].strip())
                i += 1
            out.append(_md_table(block))
            continue
        if re.match(r"^\s*[-*]\s+", line):
            items = []
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                text = re.sub(r"^\s*[-*]\s+", "", lines[i])
                items.append(f"<li>{_inline_md(text)}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not re.match(r"^(#{1,4}\s|\s*\||\s*[-*]\s)", lines[i]):
            para.append(lines[i].strip())
            i += 1
        out.append(f"<p>{_inline_md(' '.join(para))}</p>")
    return "\n".join(out) + "\n"


def _md_table(block: list[str]) -> str:
    def cells(row: str) -> list[str]:
        row = row.strip()
        if row.startswith("|"):
            row = row[1:]
        if row.endswith("|"):
            row = row[:-1]
        return [c.strip() for c in row.split("|")]

    header = cells(block[0])
    aligns = [""] * len(header)
    body = block[1:]
    if body and all(re.fullmatch(r":?-{1,}:?", c) for c in cells(body[0])):
        for j, c in enumerate(cells(body[0])[: len(header)]):
            aligns[j] = "c" if c.startswith(":") and c.endswith(":") else "r" if c.endswith(":") else ""
        body = body[1:]

    def cls(j: int) -> str:
        return f' class="{aligns[j]}"' if j < len(aligns) and aligns[j] else ""

    head_html = "".join(f"<th{cls(j)}>{_inline_md(c)}</th>" for j, c in enumerate(header))
    rows_html = "".join(
        "<tr>" + "".join(f"<td{cls(j)}>{_inline_md(c)}</td>" for j, c in enumerate(cells(r))) + "</tr>"
        for r in body
    )
    return f'<div class="wide"><table><thead><tr>{head_html}</tr></thead><tbody>{rows_html}</tbody></table></div>'


def _pct(x: Any, digits: int = 1) -> str:
    v = _num(x)
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def _seconds(x: Any) -> str:
    v = _num(x)
    if v is None:
        return "n/a"
    return f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"


# =========================================================================== run report
def _run_report(run_dir: Path) -> str:
    metrics = _load_json(run_dir / "metrics.json", required=True)
    if not isinstance(metrics, Mapping):
        raise CheckpointError(f"{run_dir / 'metrics.json'}: expected a JSON object, got {type(metrics).__name__}")
    config = _load_json(run_dir / "config.json", required=False) or {}
    predictions = _load_json(run_dir / "predictions.json", required=False) or {}
    figures = _Figures(run_dir)
    classes = list(metrics.get("classes") or config.get("classes") or [])
    head = config.get("head", "?")
    backbone = config.get("backbone", "?")
    final = metrics.get("final") or {}
    history = [h for h in metrics.get("history") or [] if isinstance(h, Mapping)]
    best_epoch = metrics.get("best_epoch")
    body: list[str] = []

    # headline numbers
    cards = []
    for split in ("val", "test"):
        ev = final.get(split)
        if isinstance(ev, Mapping) and _num(ev.get("accuracy")) is not None:
            n_img = ev.get("n_images")
            note = ""
            if isinstance(n_img, int) and n_img > 0:
                note = f"{round(ev['accuracy'] * n_img)} of {n_img} images"
            cards.append(_card(f"{'validation' if split == 'val' else 'test'} accuracy", _pct(ev["accuracy"]), note))
    if _num(metrics.get("best_val_acc")) is not None:
        cards.append(_card("best validation accuracy", _pct(metrics["best_val_acc"]),
                           f"epoch {best_epoch}" if best_epoch is not None else ""))
    n_params = _get(metrics, "n_params", "head")
    if isinstance(n_params, int):
        cards.append(_card("trainable head parameters", f"{n_params:,}"))
    timing = metrics.get("timing") or {}
    if _num(timing.get("total_s")) is not None:
        cards.append(_card("total time", _seconds(timing["total_s"]),
                           f"training {_seconds(timing.get('train_s'))}, features {_seconds(timing.get('extract_s'))}"))
    if cards:
        body.append('<div class="cards">' + "".join(cards) + "</div>")
    seed = config.get("seed")
    body.append(
        '<div class="callout"><strong>One run is one draw.</strong> '
        f"This report describes a single training run{f' (seed {_e(seed)})' if seed is not None else ''}. "
        "Whether the quantum head beats a classical one cannot be read from one run: on 153 images one image "
        "is 0.65 points, and the published 0.967 vs 0.954 was 2 images. Compare heads over several seeds "
        "with paired tests (a compare directory's report does exactly that).</div>"
    )

    # curves
    body.append("<h2>Training curves</h2>")
    if history:
        uri = figures.save(_curves_figure(history, best_epoch), "curves.png")
        body.append(_figure_html(uri, "training and validation loss and accuracy per epoch",
                                 "Loss and accuracy per epoch. The dotted line and the star mark the best "
                                 "validation epoch, whose weights are kept."))
    else:
        body.append('<p class="muted">No per-epoch history in metrics.json.</p>')

    # evaluation
    body.append("<h2>Evaluation</h2>")
    splits = [(s, final[s]) for s in ("val", "test", *[k for k in final if k not in ("val", "test")])
              if isinstance(final.get(s), Mapping) and final[s].get("confusion_matrix")]
    body.append('<div class="row">')
    if splits:
        uri = figures.save(_confusion_figure(splits, classes), "confusion.png")
        body.append(_figure_html(uri, "confusion matrix", "Rows: true class; columns: predicted class; counts of images.",
                                 max_width=330 * len(splits)))
    rows = []
    for s, ev in ((k, v) for k, v in final.items() if isinstance(v, Mapping)):
        per = ev.get("per_class_accuracy") or {}
        loss = _num(ev.get("loss"))
        loss_txt = "n/a" if loss is None else f"{loss:.4f}"
        cells = "".join(f'<td class="r">{_pct(per.get(c))}</td>' for c in classes)
        rows.append(f"<tr><td>{_e(s)}</td><td class=\"r\">{_pct(ev.get('accuracy'))}</td>{cells}"
                    f"<td class=\"r\">{_e(ev.get('n_images', 'n/a'))}</td>"
                    f"<td class=\"r\">{loss_txt}</td></tr>")
    if rows:
        heads_html = "".join(f'<th class="r">{_e(c)}</th>' for c in classes)
        body.append('<div class="wide"><table><thead><tr><th>split</th><th class="r">accuracy</th>'
                    f'{heads_html}<th class="r">images</th><th class="r">loss</th></tr></thead><tbody>'
                    + "".join(rows) + "</tbody></table></div>")
    body.append("</div>")
    if not splits and not rows:
        body.append('<p class="muted">No final evaluation in metrics.json.</p>')

    # circuit
    if "quantum" in str(head) or (head == "?" and "n_qubits" in config):
        body.append("<h2>Quantum circuit</h2>")
        fig, caption = _circuit_figure(config)
        if fig is None:
            body.append(f'<p class="muted">{_e(caption)}</p>')
        else:
            body.append(_figure_html(figures.save(fig, "circuit.png"), "variational quantum circuit", caption))

    # samples
    items = predictions.get("items") if isinstance(predictions, Mapping) else None
    if items:
        body.append("<h2>Sample predictions</h2>")
        chosen = _pick_samples(items)
        fig, shown, skipped = _samples_figure(chosen, run_dir)
        n_wrong = sum(1 for it in items if isinstance(it, Mapping) and it.get("true") is not None
                      and it.get("true") != it.get("pred"))
        split = predictions.get("split", "evaluation")
        if fig is not None:
            body.append(_figure_html(
                figures.save(fig, "samples.png"), "sample images with predicted and true labels",
                f"{shown} images from the {_e(split)} split, misclassified ones first "
                f"({n_wrong} of {len(items)} wrong in all). Green: right; red: wrong; the number is the "
                "predicted class's probability."))
        if skipped:
            listed = ", ".join(_e(s) for s in skipped[:5]) + (" …" if len(skipped) > 5 else "")
            body.append(f'<p class="muted">{len(skipped)} image(s) could not be shown: {listed}. '
                        "Paths in predictions.json are tried as given, then relative to the run directory "
                        "and to the current directory.</p>")

    if config:
        body.append("<h2>Configuration</h2>")
        body.append(_config_table(config))

    title = f"qtransfer run: {head} head"
    subtitle = (f"{_e(head)} head on frozen <code>{_e(backbone)}</code> features"
                + (f" · classes: {_e(', '.join(classes))}" if classes else "")
                + f" · <code>{_e(run_dir.resolve().name)}</code>")
    return _page(title, subtitle, "\n".join(body))


# =========================================================================== compare report
def _compare_report(compare_dir: Path) -> str:
    import numpy as np

    from qtransfer.stats import compare_heads, summarise

    path = compare_dir / "results.json"
    results = _load_json(path, required=True)
    heads = _get(results, "heads")
    if not isinstance(heads, Mapping) or not heads:
        raise CheckpointError(f"{path}: no 'heads' object (head -> accuracies); rerun the comparison")
    figures = _Figures(compare_dir)
    classes = list(results.get("classes") or [])
    reference = results.get("reference") or ("quantum" if "quantum" in heads else next(iter(heads)))
    comparisons = results.get("comparisons")
    if not comparisons and results.get("correct") and reference in results["correct"]:
        comparisons = compare_heads({k: np.asarray(v) for k, v in results["correct"].items()}, reference=reference)
    comparisons = [c for c in comparisons or [] if isinstance(c, Mapping) and "ci95" in c and "diff" in c]
    if comparisons:
        reference = comparisons[0]["reference"]
    order = [reference] + [h for h in heads if h != reference] if reference in heads else list(heads)
    body: list[str] = []

    # the answer first
    seeds = results.get("seeds") or []
    n_eval = results.get("n_eval")
    split = results.get("eval_split", "evaluation")
    body.append(f"<h2>Does the {_e(reference)} head help?</h2>")
    if comparisons:
        any_sig = any(c.get("significant") for c in comparisons)
        sentences = "".join(f"<p>{_e(c.get('sentence', ''))}</p>" for c in comparisons)
        body.append(f'<div class="verdict{" sig" if any_sig else ""}">{sentences}</div>')
        body.append('<p class="muted">Primary test: paired bootstrap over images (all seeds kept together), '
                    "Holm-adjusted when several heads are compared; the exact McNemar test on per-image "
                    "majority votes is reported beside it.</p>")
    else:
        body.append('<p class="muted">No paired per-image results in results.json ("comparisons" or '
                    '"correct"), so only accuracies are shown; without pairing no test is possible.</p>')
    cards = [_card("heads", str(len(heads)), ", ".join(_e(h) for h in order))]
    if seeds:
        cards.append(_card("seeds per head", str(len(seeds))))
    if n_eval:
        cards.append(_card(f"{split} images", str(n_eval), f"one image = {100 / n_eval:.1f} points"))
    if classes:
        cards.append(_card("classes", str(len(classes)), _e(", ".join(classes))))
    body.append('<div class="cards">' + "".join(cards) + "</div>")

    body.append("<h2>Accuracy and paired difference</h2>")
    uri = figures.save(_compare_figure(results, comparisons, order), "comparison.png")
    body.append(_figure_html(
        uri, "accuracy by head with 95% confidence intervals and per-seed points",
        "Left: mean accuracy over seeds (bar), 95% Student-t interval over seeds (black), each seed (dots). "
        "Right: accuracy difference from the reference head with the 95% paired-bootstrap interval; "
        "an interval crossing 0 means the data cannot tell the heads apart."))

    md = results.get("summary_markdown")
    if not isinstance(md, str) or not md.strip():
        res = dict(results)
        if comparisons:
            res["comparisons"] = comparisons
        md = summarise(res)
    body.append('<h2>Details</h2>\n<div class="details">' + _md_to_html(md) + "</div>")

    config = results.get("config")
    if isinstance(config, Mapping) and config:
        body.append("<h2>Configuration</h2>")
        body.append(_config_table(config))

    subtitle = (f"{len(heads)} heads × {len(seeds) or '?'} seeds on the {_e(split)} split"
                + (f" ({_e(n_eval)} images)" if n_eval else "")
                + (f" · classes: {_e(', '.join(classes))}" if classes else "")
                + f" · <code>{_e(compare_dir.resolve().name)}</code>")
    return _page("qtransfer comparison: quantum vs classical heads", subtitle, "\n".join(body))

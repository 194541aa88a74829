"""``report.html`` (and ``results.md``) of ``qtransfer paper``: the table beside the published numbers, and the pictures.

The table: per experiment, published | qtransfer mean ± 95% CI | the matched classical
baseline; a second table lists every model and seed; with qpu rows, the accuracy per
emulated device (ideal / exact noisy / with shots, the device's calibration and layout) and
the noise-aware training comparison. Pictures: the spirals' decision regions of both
models, QC's 4x4 photon-number feature images per class, the photon-number distributions
of a few of QQ's Gaussian and non-Gaussian input states, and qpu's ⟨Z⟩ ideal vs noisy.
Everything is read from ``results.json`` (:class:`~qtransfer.paper.common.PaperResults`).

Example:
    >>> from qtransfer.paper.common import PaperResults, PaperRow, Series
    >>> r = PaperResults((PaperRow("qc", "qc", "QC", Series("A + head", (0.8, 0.82), 0.8067), (), (0, 1), 1.0),), {}, (0, 1), 1.0)
    >>> print(markdown_summary(r).splitlines()[2])
    | QC | 0.807 | 0.810 [0.683, 0.937] (2 seeds: too few for an interval) | — | 2 | 1.0 s |
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from qtransfer.atomic import atomic_write_text
from qtransfer.report.tables import Table, html_table, markdown_table

from .common import PaperResults, PaperRow, Series

__all__ = ["summary_table", "models_table", "qpu_device_table", "qpu_aware_table", "markdown_summary",
           "write_paper_report"]


def _acc(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3f}"


#: below this many seeds a 95% Student-t interval is too wide to mean anything (t = 12.7 at 2 seeds)
FEW_SEEDS = 3


def _mean_ci(s: Series) -> str:
    """``mean [lo, hi]``; with fewer than :data:`FEW_SEEDS` seeds the table says the interval is meaningless.

    Example:
        >>> _mean_ci(Series("m", (0.6, 1.0)))
        '0.800 [0.000, 1.000] (2 seeds: too few for an interval)'
    """
    lo, hi = s.ci
    if not math.isfinite(lo):
        return f"{s.mean:.3f} (1 seed)"
    few = f" ({len(s.values)} seeds: too few for an interval)" if len(s.values) < FEW_SEEDS else ""
    return f"{s.mean:.3f} [{lo:.3f}, {hi:.3f}]{few}"


def _seconds(x: float) -> str:
    return f"{x:.1f} s" if x < 120 else f"{x / 60:.1f} min"


def summary_table(results: PaperResults) -> Table:
    """Per row: published | qtransfer mean [95% CI] | matched classical baseline | seeds | wall time."""
    rows = [(r.title, _acc(r.model.published), _mean_ci(r.model),
             f"{_mean_ci(r.baselines[0])} ({r.baselines[0].name})" if r.baselines and "classical" in r.baselines[0].name
             else "—", str(len(r.seeds)), _seconds(r.wall_seconds)) for r in results.rows]
    return Table(("experiment", "published", "qtransfer mean [95% CI]", "matched classical baseline", "seeds", "wall time"),
                 "lrrlrr", rows)


def models_table(results: PaperResults) -> Table:
    """Every model of every row: parameters, published, mean [CI], per-seed accuracies."""
    rows = []
    for r in results.rows:
        for s in (r.model, *r.baselines):
            rows.append((r.key, s.name, "—" if s.n_params is None else str(s.n_params), _acc(s.published),
                         _mean_ci(s), ", ".join(f"{v:.3f}" for v in s.values)))
    return Table(("row", "model", "params", "published", "mean [95% CI]", "per seed"), "llrrrl", rows)


def _diff_ci(d: dict) -> str:
    """A paired difference (``PairedT.to_dict()``) in percentage points with its 95% interval."""
    lo, hi = d["ci95"]
    ci = f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if lo is not None else " (1 seed)"
    return f"{100 * d['diff']:+.1f}{ci}"


def _qpu_rows(results: PaperResults, aware: bool) -> list[PaperRow]:
    return [r for r in results.rows if r.experiment == "qpu" and r.key.startswith("qpu-aware-") == aware]


def qpu_device_table(results: PaperResults) -> Table:
    """Per emulated device: calibration, layout, CX count, accuracy ideal / exact noisy / with shots, and the cost."""
    from .qpu import DeviceAccuracy

    rows = []
    for r in _qpu_rows(results, aware=False):
        d = DeviceAccuracy.from_row(r)
        rows.append((d.device, d.calibration[:10], ",".join(map(str, d.layout)), str(d.gate_counts.get("cx", 0)),
                     _mean_ci(d.ideal), _mean_ci(d.exact), _mean_ci(d.sampled), _diff_ci(d.cost.to_dict()),
                     _mean_ci(d.calibrated)))
    shots = _qpu_rows(results, aware=False)[0].settings["shots"] if rows else 0
    return Table(("device", "calibration", "layout", "CX", "ideal simulator", "exact noisy ⟨Z⟩", f"{shots} shots",
                  f"ideal - {shots} shots (points)", f"{shots} shots, ⟨Z⟩ calibrated"), "lllrrrrrr", rows)


def qpu_aware_table(results: PaperResults) -> Table:
    """Noise-aware against ideal training on the device: accuracy (exact noisy, with shots) and the paired gain."""
    from .qpu import NoiseAwareGain

    rows = []
    for r in _qpu_rows(results, aware=True):
        g = NoiseAwareGain.from_row(r)
        rows.append((g.device, "ideal", _mean_ci(g.ideal_exact), _mean_ci(g.ideal_sampled), ""))
        rows.append((g.device, "noise-aware", _mean_ci(g.aware_exact), _mean_ci(g.aware_sampled),
                     f"{_diff_ci(g.gain.to_dict())}; {_diff_ci(g.gain_sampled.to_dict())} with shots"))
    return Table(("device", "training", "exact noisy ⟨Z⟩", "with shots", "gain (points, paired over seeds)"),
                 "llrrl", rows)


def _qpu_markdown(results: PaperResults) -> list[str]:
    lines = []
    if _qpu_rows(results, aware=False):
        lines += ["", "QPU, emulated devices: the ideally trained model; mean over seeds [95% CI]:", "",
                  markdown_table(qpu_device_table(results))]
    if _qpu_rows(results, aware=True):
        lines += ["", "Noise-aware training:", "", markdown_table(qpu_aware_table(results))]
    return lines


def markdown_summary(results: PaperResults) -> str:
    """The summary table as Markdown, the qpu tables, then the skipped experiments (``results.md``, ``docs/paper.md``)."""
    lines = [markdown_table(summary_table(results))] + _qpu_markdown(results)
    for name, message in results.skipped.items():
        lines += ["", f"- `{name}` did not run: " + " ".join(line.strip() for line in message.splitlines())]
    return "\n".join(lines)


def _spirals_figure(row: PaperRow):
    from qtransfer.report.figures import new_figure

    from matplotlib.lines import Line2D

    fig = new_figure(11.5, 3.8)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    regions = None
    for ax, key, label in zip(axes, ("quantum", "paper_classical"), ("dressed quantum circuit", "paper's classical net")):
        grid = row.figures.get(key)
        if grid is None:
            continue
        regions = ax.imshow(grid["p1"], origin="lower", extent=(*grid["x"], *grid["y"]), cmap="RdBu", vmin=0, vmax=1,
                            aspect="auto", alpha=0.8)
        xs, ys = zip(*row.figures["test_x"])
        colors = [_CLASS_COLORS[int(y)] for y in row.figures["test_y"]]
        ax.scatter(xs, ys, c=colors, edgecolors="k", s=14, linewidths=0.5)
        ax.set_title(f"{label} (seed {row.seeds[0]})", fontsize=10)
        ax.set_xticks(())
        ax.set_yticks(())
    if regions is not None:
        fig.colorbar(regions, ax=list(axes), shrink=0.9, label="model's P(class 1)", ticks=(0, 0.5, 1))
        handles = [Line2D([], [], marker="o", linestyle="none", markerfacecolor=c, markeredgecolor="k",
                          label=f"test point, class {k}") for k, c in enumerate(_CLASS_COLORS)]
        axes[0].legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    return fig


#: the spirals' test points: class 0 red, class 1 blue (the ends of the regions' RdBu scale)
_CLASS_COLORS = ("#d7301f", "#2166ac")


def _qc_figure(row: PaperRow):
    from qtransfer.report.figures import new_figure

    images = row.figures["feature_images"]
    fig = new_figure(1.5 * len(images), 1.9)
    for k, (ax, img) in enumerate(zip(fig.subplots(1, len(images), squeeze=False)[0], images)):
        ax.imshow(img, cmap="gray", vmin=0)
        ax.set_title(f"class {k + 1}", fontsize=9)
        ax.set_xticks(())
        ax.set_yticks(())
    return fig


def _qq_figure(row: PaperRow):
    from qtransfer.report.figures import new_figure, style_axes

    d = row.figures["distributions"]
    n = len(d["labels"])
    fig = new_figure(2.3 * n, 2.2)
    for ax, label, sq, p in zip(fig.subplots(1, n, squeeze=False)[0], d["labels"], d["squeezing"], d["probabilities"]):
        ax.bar(range(len(p)), p, color="#0969da" if label == 0 else "#cf222e")
        ax.set_title(("Gaussian: D(1)|0>" if label == 0 else "non-Gaussian: |1>") + f", s={sq:+.2f}", fontsize=8)
        ax.set_xlabel("photon number", fontsize=8)
        style_axes(ax)
    return fig


def _qpu_figure(row: PaperRow):
    from qtransfer.report.figures import new_figure, style_axes

    z = row.figures["z"]
    ideal = [v for sample in z["ideal"] for v in sample]
    n = len(z["ideal"][0])
    qubit = [q for _ in z["ideal"] for q in range(n)]
    fig = new_figure(9.0, 3.8)
    for ax, key, label in zip(fig.subplots(1, 2, squeeze=False)[0], ("exact", "shots"),
                              ("exact", f"{row.settings.get('shots')} shots")):
        noisy = [v for sample in z[key] for v in sample]
        ax.plot((-1, 1), (-1, 1), color="#999", lw=0.8, ls="--")
        sc = ax.scatter(ideal, noisy, c=qubit, cmap="viridis", s=12, vmin=0, vmax=n - 1)
        ax.set_xlabel(r"$\langle Z_i\rangle$, ideal simulator", fontsize=9)
        ax.set_ylabel(r"$\langle Z_i\rangle$" + f", {z['device']}, {label}", fontsize=9)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        style_axes(ax)
    fig.colorbar(sc, ax=fig.axes, label="qubit i", ticks=range(n))
    return fig


_FIGURES = {"spirals": (_spirals_figure, "Decision regions: the background is the model's probability of class 1 "
                                         "(red 0, white 0.5, blue 1; scale at the right), the points are the 200 "
                                         "test points coloured by their true class (red: class 0, blue: class 1)."),
            "qc": (_qc_figure, "A's features |psi_n1n2|^2 (n1, n2 = 0..3) of the seven noiseless input states."),
            "qq": (_qq_figure, "Photon-number distributions of input states after the random Gaussian R S R."),
            "qpu": (_qpu_figure, "⟨Z_i⟩ of the ideally trained circuit on every evaluation image (first seed): the "
                                 "ideal simulator against the emulated device, exact and with shots; the dashed line "
                                 "is equality.")}


def _figures_html(results: PaperResults, out: Path) -> str:
    from qtransfer.report.figures import FigureSaver
    from qtransfer.report.html import figure_html

    saver, parts = FigureSaver(out), []
    for row in results.rows:
        draw = _FIGURES.get(row.experiment)
        if draw is None or not row.figures:
            continue
        uri = saver.save(draw[0](row), f"{row.key}.png")
        parts.append(f"<h3>{html.escape(row.title)}</h3>\n" + figure_html(uri, row.title, html.escape(draw[1])))
    return "".join(parts)


def _qpu_html(results: PaperResults) -> str:
    if not any(r.experiment == "qpu" for r in results.rows):
        return ""
    parts = ["<h2>QPU: the trained model on emulated devices</h2>\n"]
    if _qpu_rows(results, aware=False):
        parts.append(html_table(qpu_device_table(results)) + '<p class="muted">The ideally trained model on each '
                     "device's calibrated noise model (qubits as Qiskit lays them out); mean over seeds, 95% "
                     "Student-t interval; the cost is paired over seeds. ⟨Z⟩ calibrated: each qubit's measured "
                     "⟨Z⟩ mapped by the affine map (scale, offset) that takes the device's values on the train "
                     "images to the ideal simulator's.</p>")
    if _qpu_rows(results, aware=True):
        parts.append(html_table(qpu_aware_table(results)))
    return "".join(parts)


def write_paper_report(out: str | Path) -> Path:
    """Write ``out/report.html`` and ``out/results.md`` from ``out/results.json``; returns the page's path."""
    from qtransfer.report.html import page

    out = Path(out)
    results = PaperResults.load(out / "results.json")
    atomic_write_text(out / "results.md", markdown_summary(results) + "\n")
    notes = "".join(f"<li><b>{html.escape(r.title)}</b>: {html.escape(r.notes)}</li>" for r in results.rows if r.notes)
    skipped = "".join(f"<h3>{html.escape(k)}</h3><pre>{html.escape(v)}</pre>" for k, v in results.skipped.items())
    from qtransfer.report.family import family_svg

    body = ("<h2>The transfer-learning family</h2>\n" + f'<figure>{family_svg(standalone=False)}<figcaption>'
            "Which network A (pre-trained, cut to A′ and frozen) and which trained network B each kind uses, and "
            "the command that runs it; the spirals (the paper's Example 1) train a dressed circuit alone.</figcaption>"
            "</figure>\n"
            + "<h2>Published vs qtransfer</h2>\n" + html_table(summary_table(results))
            + f'<p class="muted">{len(results.seeds)} seed(s); 95% Student-t intervals of the mean.</p>'
            + (f"<ul>{notes}</ul>" if notes else "")
            + _qpu_html(results)
            + "<h2>Every model and seed</h2>\n" + html_table(models_table(results))
            + ("<h2>Pictures</h2>\n" + _figures_html(results, out) if results.rows else "")
            + (f"<h2>Not run: data to download</h2>\n{skipped}" if skipped else ""))
    subtitle = html.escape(f"Mari et al., Quantum 4, 340 (2020), reproduced; {results.command or 'qtransfer paper'}; "
                           f"wall time {_seconds(results.wall_seconds)}")
    path = out / "report.html"
    atomic_write_text(path, page("The paper's experiments", subtitle, body))
    return path

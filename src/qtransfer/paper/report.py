"""``report.html`` (and ``results.md``) of ``qtransfer paper``: the table beside the published numbers, and the pictures.

The table: per experiment, published | qtransfer mean ± 95% CI | the matched classical
baseline; a second table lists every model and seed. Pictures: the spirals' decision
regions of both models, QC's 4x4 photon-number feature images per class, and the
photon-number distributions of a few of QQ's Gaussian and non-Gaussian input states.
Everything is read from ``results.json`` (:class:`~qtransfer.paper.common.PaperResults`).

Example:
    >>> from qtransfer.paper.common import PaperResults, PaperRow, Series
    >>> r = PaperResults((PaperRow("qc", "qc", "QC", Series("A + head", (0.8, 0.82), 0.8067), (), (0, 1), 1.0),), {}, (0, 1), 1.0)
    >>> print(markdown_summary(r).splitlines()[2])
    | QC | 0.807 | 0.810 [0.683, 0.937] | — | 2 | 1.0 s |
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from qtransfer.atomic import atomic_write_text
from qtransfer.report.tables import Table, html_table, markdown_table

from .common import PaperResults, PaperRow, Series

__all__ = ["summary_table", "models_table", "markdown_summary", "write_paper_report"]


def _acc(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _mean_ci(s: Series) -> str:
    lo, hi = s.ci
    return f"{s.mean:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else " (1 seed)")


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


def markdown_summary(results: PaperResults) -> str:
    """The summary table as Markdown, then the skipped experiments (``results.md``, ``docs/paper.md``)."""
    lines = [markdown_table(summary_table(results))]
    for name, message in results.skipped.items():
        lines += ["", f"- `{name}` did not run: " + " ".join(line.strip() for line in message.splitlines())]
    return "\n".join(lines)


def _spirals_figure(row: PaperRow):
    from qtransfer.report.figures import new_figure

    fig = new_figure(10.5, 3.6)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    for ax, key, label in zip(axes, ("quantum", "paper_classical"), ("dressed quantum circuit", "paper's classical net")):
        grid = row.figures.get(key)
        if grid is None:
            continue
        ax.imshow(grid["p1"], origin="lower", extent=(*grid["x"], *grid["y"]), cmap="RdBu", vmin=0, vmax=1,
                  aspect="auto", alpha=0.8)
        xs, ys = zip(*row.figures["test_x"])
        ax.scatter(xs, ys, c=row.figures["test_y"], cmap="bwr_r", edgecolors="k", s=14, linewidths=0.5)
        ax.set_title(f"{label} (seed {row.seeds[0]})", fontsize=10)
        ax.set_xticks(())
        ax.set_yticks(())
    return fig


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


_FIGURES = {"spirals": (_spirals_figure, "Decision regions (colour: P(class 1)) with the 200 test points."),
            "qc": (_qc_figure, "A's features |psi_n1n2|^2 (n1, n2 = 0..3) of the seven noiseless input states."),
            "qq": (_qq_figure, "Photon-number distributions of input states after the random Gaussian R S R.")}


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


def write_paper_report(out: str | Path) -> Path:
    """Write ``out/report.html`` and ``out/results.md`` from ``out/results.json``; returns the page's path."""
    from qtransfer.report.html import page

    out = Path(out)
    results = PaperResults.load(out / "results.json")
    atomic_write_text(out / "results.md", markdown_summary(results) + "\n")
    notes = "".join(f"<li><b>{html.escape(r.title)}</b>: {html.escape(r.notes)}</li>" for r in results.rows if r.notes)
    skipped = "".join(f"<h3>{html.escape(k)}</h3><pre>{html.escape(v)}</pre>" for k, v in results.skipped.items())
    body = ("<h2>Published vs qtransfer</h2>\n" + html_table(summary_table(results))
            + f'<p class="muted">{len(results.seeds)} seed(s); 95% Student-t intervals of the mean.</p>'
            + (f"<ul>{notes}</ul>" if notes else "")
            + "<h2>Every model and seed</h2>\n" + html_table(models_table(results))
            + ("<h2>Pictures</h2>\n" + _figures_html(results, out) if results.rows else "")
            + (f"<h2>Not run: data to download</h2>\n{skipped}" if skipped else ""))
    subtitle = html.escape(f"Mari et al., Quantum 4, 340 (2020), reproduced; {results.command or 'qtransfer paper'}; "
                           f"wall time {_seconds(results.wall_seconds)}")
    path = out / "report.html"
    atomic_write_text(path, page("The paper's experiments", subtitle, body))
    return path

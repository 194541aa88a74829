"""The tables of a comparison, built once as rows of text and rendered as Markdown or HTML.

``results.md`` (and what ``qtransfer compare`` prints) is :func:`markdown_summary`; the
HTML report renders the same rows with :func:`html_table`, so the two never disagree.

Example:
    >>> print(markdown_table(Table(("head", "accuracy (%)"), "lr", [("quantum", "95.9")])))
    | head | accuracy (%) |
    |---|---:|
    | quantum | 95.9 |
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from qtransfer.results import CompareResults
from qtransfer.stats import fmt_p, mean_ci

__all__ = ["Table", "accuracy_table", "comparison_table", "conclusion", "confusion_text", "html_table", "ignored_settings",
           "markdown_summary", "markdown_table", "pct", "scale_note", "sweep_accuracy_table", "sweep_comparison_table", "sweep_markdown_summary"]


@dataclass(frozen=True)
class Table:
    """A header, one alignment letter per column (``l``, ``r``, ``c``) and rows of text cells."""

    header: tuple[str, ...]
    align: str
    rows: list[tuple[str, ...]]


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage without the sign (``0.959`` -> ``95.9``); n/a when missing."""
    return "n/a" if x is None or not math.isfinite(x) else f"{100.0 * x:.{digits}f}"


def accuracy_table(results: CompareResults) -> Table:
    """Per head: parameters, mean ± std, 95% CI, every seed, training time."""
    rows = []
    for name, h in results.heads.items():
        accs = [a for a in h.accuracies if math.isfinite(a)]  # a failed seed (NaN) is shown, not averaged
        if accs:
            m, s, lo, hi = mean_ci(accs, bounds=(0.0, 1.0))
            ms = f"{pct(m)} ± {pct(s)}" if math.isfinite(s) else f"{pct(m)} (1 seed)"
            ci = f"{pct(lo)} – {pct(hi)}" if math.isfinite(lo) else "n/a (1 seed)"
            per = ", ".join(pct(a) for a in h.accuracies)
        else:
            ms = ci = per = "n/a"
        secs = f"{sum(h.train_seconds) / len(h.train_seconds):.1f} s/seed" if h.train_seconds else "n/a"
        rows.append((name, f"{h.n_params:,}", ms, ci, per, secs))
    return Table(("head", "params", "mean ± std (%)", "95% CI (%)", "per-seed accuracy (%)", "train time"), "lrrrlr", rows)


def comparison_table(results: CompareResults) -> Table:
    """Per comparison: difference, its 95% CI, bootstrap and McNemar p-values, the verdict."""
    rows = []
    for c in results.comparisons:
        lo, hi = (100.0 * v for v in c.ci95)
        rows.append((f"{c.head} vs {c.reference}", f"{c.diff_points:+.1f}", f"{lo:+.1f} – {hi:+.1f}", fmt_p(c.p_adjusted),
                     f"{fmt_p(c.mcnemar.p_value)} ({c.mcnemar.n01}:{c.mcnemar.n10})", "yes" if c.significant else "no"))
    return Table(("comparison", "difference (points)", "95% CI (points)", "bootstrap p",
                  "McNemar p (only reference right : only head right)", "significant"), "lrrrrc", rows)


def conclusion(results: CompareResults) -> str:
    """The comparisons in one plain sentence."""
    comparisons = results.comparisons
    significant = [c for c in comparisons if c.significant]
    if significant:
        return (f"In plain words: {len(significant)} of {len(comparisons)} head(s) differ from {results.reference} "
                f"beyond what image and seed noise explain (primary test: paired bootstrap over images).")
    others = "any other head" if len(comparisons) > 1 else comparisons[0].head
    return (f"In plain words: on this data, the {results.reference} head is not distinguishable from {others}; "
            f"differences this size are within image-sampling and seed noise.")


def scale_note(n_eval: int) -> str:
    """What one image is worth on the evaluation split, against the published comparison."""
    return (f"For scale: one image is {100.0 / n_eval:.1f} points on this split. The published 0.967 vs 0.954 "
            f"(Mari et al. 2020) was 148 vs 146 of 153 images, one run each.")


def confusion_text(classes, matrix) -> str:
    """A confusion matrix for the terminal, every row and column named by its class (rows: true class).

    Example:
        >>> print(confusion_text(["ants", "bees"], [[24, 1], [2, 22]]))
        true \\ predicted   ants   bees
        ants                 24      1
        bees                  2     22
    """
    names = [str(c) for c in classes] if len(classes) == len(matrix) else [str(i) for i in range(len(matrix))]
    first = max(len("true \\ predicted"), *(len(n) for n in names))
    width = max(5, *(len(n) for n in names), *(len(str(v)) for row in matrix for v in row))
    lines = ["true \\ predicted".ljust(first) + "".join(f"  {n:>{width}}" for n in names)]
    lines += [name.ljust(first) + "".join(f"  {v:>{width}d}" for v in row) for name, row in zip(names, matrix)]
    return "\n".join(lines)


def markdown_table(table: Table) -> str:
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(table.header) + " |", "|" + "|".join(marks[a] for a in table.align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    def cell(tag: str, text: str, align: str) -> str:
        cls = f' class="{align}"' if align in "rc" else ""
        return f"<{tag}{cls}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", h, a) for h, a in zip(table.header, table.align))
    body = "".join("<tr>" + "".join(cell("td", c, a) for c, a in zip(row, table.align)) + "</tr>" for row in table.rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def markdown_summary(results: CompareResults) -> str:
    """The comparison as Markdown: accuracy table, paired comparisons, conclusion (``results.md``)."""
    n_seeds = len(results.seeds)
    lines = ["## Accuracy by head", "", markdown_table(accuracy_table(results)), "",
             f"Accuracy on the {results.eval_split} split ({results.n_eval} images), {n_seeds} seed(s) per head."]
    if results.comparisons:
        lines += ["", "## Paired comparisons", "", markdown_table(comparison_table(results)), "", "## Conclusion", ""]
        lines += [f"- {c.sentence}" for c in results.comparisons]
        lines += ["", conclusion(results)]
    if results.n_eval:
        lines += ["", scale_note(results.n_eval)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- sweeps
def _point_cells(point, varied) -> tuple[str, ...]:
    values = dict(point.point)
    return tuple(str(values.get(k, "")) for k in varied)


def sweep_accuracy_table(points, varied) -> Table:
    """Per grid point (``points``: :func:`qtransfer.sweeps.summarize`) and head: seeds, mean ± std, 95% CI, time.

    A head that ignores a varied setting has one row for all its values (``any``).
    """
    rows, shown = [], set()
    for p in points:
        for name, h in p.heads.items():
            cells = tuple("any" if k in h.ignores else v for k, v in zip(varied, _point_cells(p, varied)))
            if (name, cells) in shown:
                continue
            shown.add((name, cells))
            ms = ("n/a" if not h.accuracies else f"{pct(h.mean)} ± {pct(h.std)}" if math.isfinite(h.std)
                  else f"{pct(h.mean)} (1 seed)")
            ci = f"{pct(h.lo)} – {pct(h.hi)}" if math.isfinite(h.lo) else "n/a"
            seeds = f"{len(h.accuracies)}" + (f" ({h.n_failed} failed)" if h.n_failed else "")
            secs = f"{h.train_seconds:.3f} s" if math.isfinite(h.train_seconds) else "n/a"
            rows.append((*cells, name, seeds, ms, ci, secs))
    return Table((*varied, "head", "seeds", "mean ± std (%)", "95% CI (%)", "train time / seed"),
                 "l" * len(varied) + "lrrrr", rows)


def ignored_settings(points, varied) -> dict[str, tuple[str, ...]]:
    """Per head, the varied settings it ignores (trained once over their values)."""
    out: dict[str, tuple[str, ...]] = {}
    for p in points:
        for name, h in p.heads.items():
            if h.ignores:
                out[name] = h.ignores
    return {k: v for k, v in out.items() if set(v) & set(varied)}


def _ignored_note(points, varied) -> str:
    ignored = ignored_settings(points, varied)
    return "".join(f" {name} ignores {', '.join(keys)}: it was trained once per seed, and its row stands for "
                   f"every value ('any')." for name, keys in ignored.items())


def sweep_comparison_table(points, varied) -> Table:
    """Per grid point: every head against the reference head (paired bootstrap, Holm-adjusted; McNemar)."""
    rows = []
    for p in points:
        for c in p.comparisons:
            lo, hi = (100.0 * v for v in c.ci95)
            rows.append((*_point_cells(p, varied), f"{c.head} vs {c.reference}", f"{c.diff_points:+.1f}",
                         f"{lo:+.1f} – {hi:+.1f}", fmt_p(c.p_adjusted), fmt_p(c.mcnemar.p_value),
                         "yes" if c.significant else "no"))
    return Table((*varied, "comparison", "difference (points)", "95% CI (points)", "bootstrap p", "McNemar p",
                  "significant"), "l" * len(varied) + "lrrrrc", rows)


def sweep_markdown_summary(results, points=None) -> str:
    """A sweep as Markdown (``summary.md``): accuracy per grid point and head, then the paired comparisons."""
    from qtransfer.sweeps.summary import conclusion, summarize, varied_settings

    points = summarize(results) if points is None else points
    varied = varied_settings(results)
    n_ok = sum(t.ok for t in results.trials)
    failed = [t for t in results.trials if not t.ok]
    split = next((t.eval_split for t in results.trials if t.ok), "evaluation")
    lines = [conclusion(points, varied), "", "## Accuracy per grid point", "", markdown_table(sweep_accuracy_table(points, varied)), "",
             f"{n_ok} of {len(results.trials)} trial(s) finished; accuracy on the {split} split"
             + (f" ({points[0].n_eval} images)" if points and points[0].n_eval else "")
             + ", mean over seeds with a 95% Student-t interval." + _ignored_note(points, varied)]
    table = sweep_comparison_table(points, varied)
    if table.rows:
        lines += ["", "## Paired comparisons at each grid point", "", markdown_table(table), "",
                  "Paired bootstrap over images (all seeds together), Holm-adjusted within each grid point; "
                  "exact McNemar test beside it."]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- `{t.trial_id}` ({', '.join(f'{k}={v}' for k, v in t.point.items())}, "
                                                  f"seed={t.settings.get('seed')}): {t.error}" for t in failed]
    return "\n".join(lines) + "\n"

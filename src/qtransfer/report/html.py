"""The report pages: a run's and a comparison's, as one self-contained HTML file each.

Every image is a base64 ``data:`` URI and the CSS is inline, so the page needs no network and
no JavaScript and can be mailed, archived or opened offline. The numbers come typed from
:mod:`qtransfer.results`; figures from :mod:`~qtransfer.report.figures` and
:mod:`~qtransfer.report.circuit`, tables from :mod:`~qtransfer.report.tables`.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from qtransfer.config import TrainConfig
from qtransfer.errors import CheckpointError, UsageError
from qtransfer.heads.registry import HEADS
from qtransfer.report import figures as F
from qtransfer.report.pipeline import PIPELINE_CSS, pipeline_html
from qtransfer.report.tables import (accuracy_table, comparison_table, conclusion, html_table, ignored_settings,
                                     scale_note)
from qtransfer.results import CompareResults, RunMetrics, read_json

__all__ = ["compare_page", "figure_html", "page", "pipeline_snippet", "run_page", "sweep_page"]

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


def page(title: str, subtitle: str, body: str) -> str:
    """A whole self-contained report page (the house style) around ``body`` (HTML); ``subtitle`` is HTML too."""
    from qtransfer import __version__

    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}{PIPELINE_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_e(title)}</h1>\n<p class=\"subtitle\">{subtitle}</p>\n{body}\n"
        f"<footer>Written by qtransfer {_e(__version__)} on {_e(stamp)}. Self-contained: no network, "
        f"no scripts; figures are also saved as PNG in <code>figures/</code>.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def figure_html(uri: str, alt: str, caption: str = "", max_width: int | None = None) -> str:
    """A ``<figure>`` for a :class:`~qtransfer.report.figures.FigureSaver` data URI."""
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


def _config_table(config: Mapping[str, Any]) -> str:
    rows = []
    for k, v in _flatten(config):
        shown = v if isinstance(v, str) else json.dumps(v)
        rows.append(f"<tr><td><code>{_e(k)}</code></td><td>{_e(shown)}</td></tr>")
    return ('<div class="wide"><table><thead><tr><th>setting</th><th>value</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>\n")




def _pct(x: float | None, digits: int = 1) -> str:
    v = F.finite(x)
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def _seconds(x: float | None) -> str:
    v = F.finite(x)
    if v is None:
        return "n/a"
    return f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"


def _run_config(run_dir: Path) -> TrainConfig | None:
    raw = read_json(run_dir / "config.json", required=False)
    if raw is None:
        return None
    try:
        return TrainConfig.from_dict(raw, source=str(run_dir / "config.json"))
    except UsageError as e:
        raise CheckpointError(f"{run_dir / 'config.json'} is not a run configuration: {e}") from None


# =========================================================================== run report
def run_page(run_dir: Path) -> str:
    """The report of a training run directory (``metrics.json``; ``config.json`` and ``predictions.json`` if there)."""
    metrics = RunMetrics.load(run_dir / "metrics.json")
    config = _run_config(run_dir)
    predictions = read_json(run_dir / "predictions.json", required=False) or {}
    figures = F.FigureSaver(run_dir)
    circuit = _circuit_figure(config.head, config, figures, "circuit.png") if config is not None else None
    body = [pipeline_html(run_dir, metrics, config, figures, circuit), _run_cards(metrics, config),
            _curves_section(metrics, figures), _evaluation_section(metrics, figures)]
    items = predictions.get("items") if isinstance(predictions, Mapping) else None
    if items and (config is None or config.features is None):  # rows of a features file are no pictures
        body.append(_samples_section(items, str(predictions.get("split", "evaluation")), run_dir, figures))
    if config is not None:
        body.append("<h2>Configuration</h2>" + _config_table(config.to_dict()))
    head = config.head if config is not None else "?"
    backbone = metrics.backbone.get("backbone", "?")
    subtitle = (f"{_e(head)} head on frozen <code>{_e(backbone)}</code> features"
                + (f" · classes: {_e(', '.join(metrics.classes))}" if metrics.classes else "")
                + f" · <code>{_e(run_dir.resolve().name)}</code>")
    return page(f"qtransfer run: {head} head", subtitle, "\n".join(b for b in body if b))


def pipeline_snippet(run_dir: Path) -> str:
    """The run report's pipeline drawing alone, with its CSS: HTML to show in a notebook."""
    metrics = RunMetrics.load(run_dir / "metrics.json")
    config = _run_config(run_dir)
    figures = F.FigureSaver(run_dir)
    circuit = _circuit_figure(config.head, config, figures, "circuit.png") if config is not None else None
    return f'<div><style>{PIPELINE_CSS}</style>{pipeline_html(run_dir, metrics, config, figures, circuit)}</div>'


def _run_cards(metrics: RunMetrics, config: TrainConfig | None) -> str:
    cards = []
    for split in ("val", "test"):
        ev = metrics.final.get(split)
        if ev is not None and F.finite(ev.accuracy) is not None:
            note = f"{round(ev.accuracy * ev.n_images)} of {ev.n_images} images" if ev.n_images else ""
            cards.append(_card(f"{'validation' if split == 'val' else 'test'} accuracy", _pct(ev.accuracy), note))
    if F.finite(metrics.best_val_acc) is not None:
        cards.append(_card("best validation accuracy", _pct(metrics.best_val_acc), f"epoch {metrics.best_epoch}"))
    cards.append(_card("trainable head parameters", f"{metrics.n_params:,}"))
    t = metrics.timing
    cards.append(_card("total time", _seconds(t.total_s), f"training {_seconds(t.train_s)}, features {_seconds(t.extract_s)}"))
    seed = f" (seed {_e(config.seed)})" if config is not None else ""
    return ('<div class="cards">' + "".join(cards) + "</div>"
            '<div class="callout"><strong>One run is one draw.</strong> '
            f"This report describes a single training run{seed}. "
            f"Whether the quantum head beats a classical one cannot be read from one run: {_one_image(metrics)}"
            "the published 0.967 vs 0.954 was 2 of 153 images. Compare heads over several seeds "
            "with paired tests (a compare directory's report does exactly that).</div>")


def _one_image(metrics: RunMetrics) -> str:
    """What one image is worth on the split the run reports (test if there is one, else validation)."""
    for split, name in (("test", "test"), ("val", "validation")):
        ev = metrics.final.get(split)
        if ev is not None and ev.n_images:
            return f"on these {ev.n_images} {name} images one image is {100 / ev.n_images:.2g} points, and "
    return ""


def _curves_section(metrics: RunMetrics, figures: F.FigureSaver) -> str:
    if not metrics.history:
        return '<h2>Training curves</h2><p class="muted">No per-epoch history in metrics.json.</p>'
    uri = figures.save(F.curves_figure(metrics.history, metrics.best_epoch), "curves.png")
    return "<h2>Training curves</h2>" + figure_html(
        uri, "training and validation loss and accuracy per epoch",
        "Loss and accuracy per epoch. The dotted line and the star mark the best validation epoch, whose weights are kept.")


def _evaluation_section(metrics: RunMetrics, figures: F.FigureSaver) -> str:
    if not metrics.final:
        return '<h2>Evaluation</h2><p class="muted">No final evaluation in metrics.json.</p>'
    order = sorted(metrics.final, key=lambda s: (s not in ("val", "test"), s != "val", s))
    out = ['<h2>Evaluation</h2><div class="row">']
    shown = [(s, metrics.final[s]) for s in order if metrics.final[s].n_images]
    if shown:
        uri = figures.save(F.confusion_figure(shown, metrics.classes), "confusion.png")
        out.append(figure_html(uri, "confusion matrix", "Rows: true class; columns: predicted class; counts of images.",
                                max_width=330 * len(shown)))
    rows = []
    for s in order:
        ev = metrics.final[s]
        cells = "".join(f'<td class="r">{_pct(ev.per_class_accuracy.get(c))}</td>' for c in metrics.classes)
        loss = "n/a" if F.finite(ev.loss) is None else f"{ev.loss:.4f}"
        rows.append(f'<tr><td>{_e(s)}</td><td class="r">{_pct(ev.accuracy)}</td>{cells}'
                    f'<td class="r">{ev.n_images}</td><td class="r">{loss}</td></tr>')
    classes = "".join(f'<th class="r">{_e(c)}</th>' for c in metrics.classes)
    out.append('<div class="wide"><table><thead><tr><th>split</th><th class="r">accuracy</th>'
               f'{classes}<th class="r">images</th><th class="r">loss</th></tr></thead><tbody>'
               + "".join(rows) + "</tbody></table></div></div>")
    return "".join(out)


def _circuit_figure(head: str, config: TrainConfig, figures: F.FigureSaver, name: str) -> tuple[str, str] | None:
    """``head``'s circuit under ``config``'s settings (its ``circuit`` file, else the named embedding and layer),
    saved: ``(data URI, caption as HTML)``; ``None`` without one."""
    from qtransfer.report.circuit import circuit_figure, general_circuit_figure

    info = HEADS.get(head)
    if config.circuit is not None and info is not None and info.is_quantum:
        from qtransfer.quantum.circuit_file import as_circuit

        circuit = as_circuit(config.circuit)
        fig, caption = general_circuit_figure(circuit if info.circuit_layer == "config" else circuit.without_entangling())
        return figures.save(fig, name), caption
    spec = info.circuit(n_qubits=config.n_qubits, depth=config.depth, embedding=config.embedding,
                        layer=config.layer) if info is not None else None
    if spec is None:
        return None
    fig, caption = circuit_figure(spec)
    return figures.save(fig, name), caption


def _circuit_html(head: str, config: TrainConfig, figures: F.FigureSaver, name: str) -> str:
    """``head``'s circuit under ``config``'s settings as a figure; empty for a head without one."""
    drawn = _circuit_figure(head, config, figures, name)
    return figure_html(drawn[0], f"variational quantum circuit of the {head} head", drawn[1]) if drawn else ""


def _samples_section(items: Sequence[Mapping], split: str, run_dir: Path, figures: F.FigureSaver) -> str:
    out = ["<h2>Sample predictions</h2>"]
    fig, shown, skipped = F.samples_figure(F.pick_samples(items), run_dir)
    n_wrong = sum(1 for it in items if isinstance(it, Mapping) and it.get("true") is not None
                  and it.get("true") != it.get("pred"))
    if fig is not None:
        out.append(figure_html(
            figures.save(fig, "samples.png"), "sample images with predicted and true labels",
            f"{shown} images from the {_e(split)} split, misclassified ones first "
            f"({n_wrong} of {len(items)} wrong in all). Green: right; red: wrong; the number is the "
            "predicted class's probability."))
    if skipped:
        listed = ", ".join(_e(s) for s in skipped[:5]) + (" …" if len(skipped) > 5 else "")
        out.append(f'<p class="muted">{len(skipped)} image(s) could not be shown: {listed}. '
                   "Paths in predictions.json are tried as given, then relative to the run directory "
                   "and to the current directory.</p>")
    return "".join(out)


# =========================================================================== compare report
def compare_page(compare_dir: Path) -> str:
    """The report of a comparison directory (``results.json``)."""
    results = CompareResults.load(compare_dir / "results.json")
    figures = F.FigureSaver(compare_dir)
    order = [results.reference] + [h for h in results.heads if h != results.reference]
    body = [_verdict_section(results), _compare_cards(results, order)]
    uri = figures.save(F.compare_figure(results, order), "comparison.png")
    body.append("<h2>Accuracy and paired difference</h2>" + figure_html(
        uri, "accuracy by head with 95% confidence intervals and per-seed points",
        "Left: mean accuracy over seeds (bar), 95% Student-t interval over seeds (black), each seed (dots). "
        "Right: accuracy difference from the reference head with the 95% paired-bootstrap interval; "
        "an interval crossing 0 means the data cannot tell the heads apart."))
    body.append(_per_head_section(results, order, figures))
    body.append(_details_section(results))
    if results.config:
        body.append("<h2>Configuration</h2>" + _config_table(_compare_config(results, order))
                    + '<p class="muted">Shared by every training; only the head and the seed change.</p>')
    subtitle = (f"{len(results.heads)} heads × {len(results.seeds)} seeds on the {_e(results.eval_split)} split "
                f"({results.n_eval} images)"
                + (f" · classes: {_e(', '.join(results.classes))}" if results.classes else "")
                + f" · <code>{_e(compare_dir.resolve().name)}</code>")
    return page("qtransfer comparison: quantum vs classical heads", subtitle, "\n".join(body))


def _compare_config(results: CompareResults, order: Sequence[str]) -> dict[str, Any]:
    """The shared configuration, with the heads and seeds that varied in place of one head and one seed."""
    seeds = list(results.seeds)
    shown = (f"{seeds[0]}–{seeds[-1]} ({len(seeds)} seeds)" if seeds == list(range(seeds[0], seeds[0] + len(seeds)))
             and len(seeds) > 1 else ", ".join(map(str, seeds)))
    rest = {k: v for k, v in results.config.items() if k not in ("head", "seed")}
    return {"heads": ", ".join(order), "seeds": shown, "split seed": results.config.get("seed", "?"), **rest}


def _per_head_section(results: CompareResults, order: Sequence[str], figures: F.FigureSaver) -> str:
    """Training curves, confusion matrices and circuits of every head (files of older versions may lack them)."""
    out = []
    if all(results.heads[h].history for h in order):
        uri = figures.save(F.compare_curves_figure(results, order), "curves.png")
        out.append(figure_html(
            uri, "training curves of every head", "Loss and accuracy per epoch, mean over seeds (line) and the "
            f"range of the seeds (band). Training: the {results.n_train} training images; selection: the "
            f"{results.n_select} images that choose the epoch (never the {results.n_eval} reported ones)."))
    if results.eval_labels and all(results.heads[h].predicted for h in order):
        uri = figures.save(F.compare_confusion_figure(results, order), "confusion.png")
        out.append(figure_html(
            uri, "confusion matrix of every head", f"Rows: true class; columns: predicted class; counts over "
            f"the {len(results.seeds)} seeds of the {results.n_eval} {_e(results.eval_split)} images."))
    config = _compare_train_config(results)
    if config is not None:
        for head in order:
            drawn = _circuit_html(head, config, figures, f"circuit-{head}.png")
            if drawn:
                out.append(f"<h3>Circuit of the {_e(head)} head</h3>" + drawn)
    if not out:
        return ""
    return "<h2>Every head: curves, confusion matrices, circuits</h2>" + "".join(out)


def _compare_train_config(results: CompareResults) -> TrainConfig | None:
    try:
        return TrainConfig.from_dict(results.config, source="results.json config")
    except UsageError:
        return None


def _verdict_section(results: CompareResults) -> str:
    out = [f"<h2>Does the {_e(results.reference)} head help?</h2>"]
    if not results.comparisons:
        out.append('<p class="muted">Only one head was trained, so there is nothing to compare it with.</p>')
        return "".join(out)
    any_sig = any(c.significant for c in results.comparisons)
    sentences = f"<p><strong>{_e(conclusion(results))}</strong></p>" + "".join(
        f"<p>{_e(c.sentence)}</p>" for c in results.comparisons)
    out.append(f'<div class="verdict{" sig" if any_sig else ""}">{sentences}</div>')
    out.append('<p class="muted">Primary test: paired bootstrap over images (all seeds kept together), '
               "Holm-adjusted when several heads are compared; the exact McNemar test on per-image "
               "majority votes is reported beside it.</p>")
    return "".join(out)


def _compare_cards(results: CompareResults, order: Sequence[str]) -> str:
    cards = [_card("heads", str(len(results.heads)), ", ".join(_e(h) for h in order)),
             _card("seeds per head", str(len(results.seeds)))]
    if results.n_eval:
        cards.append(_card(f"{results.eval_split} images", str(results.n_eval), f"one image = {100 / results.n_eval:.1f} points"))
    if results.classes:
        cards.append(_card("classes", str(len(results.classes)), _e(", ".join(results.classes))))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _details_section(results: CompareResults) -> str:
    out = ['<h2>Details</h2><div class="details"><h3>Accuracy by head</h3>', html_table(accuracy_table(results)),
           f"<p>Accuracy on the {_e(results.eval_split)} split ({results.n_eval} images), "
           f"{len(results.seeds)} seed(s) per head.</p>"]
    if results.comparisons:
        out += ["<h3>Paired comparisons</h3>", html_table(comparison_table(results)), "<h3>Conclusion</h3><ul>"]
        out += [f"<li>{_e(c.sentence)}</li>" for c in results.comparisons]
        out += ["</ul>", f"<p>{_e(conclusion(results))}</p>"]
    if results.n_eval:
        out.append(f"<p>{_e(scale_note(results.n_eval))}</p>")
    return "".join(out) + "</div>"


# =========================================================================== sweep report
def sweep_page(sweep_dir: Path) -> str:
    """The report of a sweep directory (``sweep.json``): accuracy per grid point and head, paired tests."""
    from qtransfer.results import SweepResults
    from qtransfer.report.tables import sweep_accuracy_table, sweep_comparison_table
    from qtransfer.sweeps.summary import conclusion as sweep_conclusion
    from qtransfer.sweeps.summary import summarize, varied_settings

    results = SweepResults.load(sweep_dir / "sweep.json")
    points, varied = summarize(results), varied_settings(results)
    heads = list(dict.fromkeys(str(t.settings.get("head")) for t in results.trials))
    failed = [t for t in results.trials if not t.ok]
    cards = [_card("trials", str(len(results.trials)), f"{len(failed)} failed" if failed else "all finished"),
             _card("grid points", str(len(points)), _e(", ".join(varied)) or "heads only"),
             _card("heads", str(len(heads)), _e(", ".join(heads))), _card("seeds", str(len(results.seeds)))]
    significant = any(c.significant for p in points for c in p.comparisons)
    body = [f'<div class="verdict{" sig" if significant else ""}"><p><strong>'
            f"{_e(sweep_conclusion(points, varied))}</strong></p></div>",
            '<div class="cards">' + "".join(cards) + "</div>"]
    uri = F.FigureSaver(sweep_dir).save(F.sweep_figure(points, varied, heads), "sweep.png")
    caption = ("Mean accuracy over seeds per cell (a third varied setting is averaged over)." if len(varied) >= 2
               else "Mean accuracy over seeds with its 95% Student-t interval, per head.")
    ignored = ignored_settings(points, varied)
    if ignored:
        caption += " " + " ".join(f"{name} ignores {', '.join(keys)}: trained once per seed, it is drawn as one "
                                  "level (dashed) with its interval (band), not as a curve." for name, keys in ignored.items())
    body.append("<h2>Accuracy across the grid</h2>" + figure_html(uri, "sweep accuracy per head", caption))
    body.append("<h2>Accuracy per grid point</h2>" + html_table(sweep_accuracy_table(points, varied)))
    comparisons = sweep_comparison_table(points, varied)
    if comparisons.rows:
        body.append("<h2>Paired comparisons at each grid point</h2>" + html_table(comparisons)
                    + '<p class="muted">Paired bootstrap over images (all seeds together), Holm-adjusted within each '
                      "grid point; the exact McNemar test beside it.</p>")
    if failed:
        body.append("<h2>Failed trials</h2><ul>" + "".join(
            f"<li><code>{_e(t.trial_id)}</code> ({_e(', '.join(f'{k}={v}' for k, v in t.point.items()))}, "
            f"seed={_e(t.settings.get('seed'))}): {_e(t.error)}</li>" for t in failed) + "</ul>")
    body.append("<h2>Sweep</h2>" + _config_table({"base": results.base,
                                                   "grid": {k: list(v) for k, v in results.grid.items()},
                                                   "seeds": list(results.seeds)}))
    subtitle = (f"{len(results.trials)} trials · {len(points)} grid point(s) × {len(heads)} head(s) × "
                f"{len(results.seeds)} seed(s) · <code>{_e(sweep_dir.resolve().name)}</code>")
    return page("qtransfer sweep", subtitle, "\n".join(body))

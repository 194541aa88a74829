"""The pipeline drawing at the top of a run report: one real image flowing through A' and the head.

image -> frozen backbone A' (its name, the classifier cut off, F features computed once and
cached) -> the head's blocks (for the quantum heads: pre-net ``Linear(F->n)`` -> ``tanh*pi/2``
-> the run's own circuit -> ``<Z_i>`` -> post-net ``Linear(n->classes)``) -> class
probabilities. Between the blocks stand the numbers one image of the run's reported split
produced (``pipeline.json``, written by training: :func:`qtransfer.heads.trace.pipeline_record`):
the feature vector's norm and a sparkline of its F values, the n angles, the n expectation
values, the logits, the probabilities. A run directory without ``pipeline.json`` gets the
drawing without the numbers.

HTML and inline SVG only (no script, no network); the circuit is the figure the report saves.

Example:
    >>> svg = sparkline([0.0, 1.0, 0.5])
    >>> svg.startswith("<svg") and "polyline" in svg
    True
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from qtransfer.config import TrainConfig
from qtransfer.heads.registry import HEADS
from qtransfer.results import RunMetrics, read_json

__all__ = ["PIPELINE_CSS", "pipeline_html", "sparkline"]

PIPELINE_CSS = """
.pipeline{display:flex;flex-direction:column;align-items:stretch;max-width:860px;margin:8px 0 10px}
.pipeline .block{border:1px solid #d0d7de;border-radius:8px;padding:8px 14px;background:#fff;display:flex;gap:14px;
align-items:center}
.pipeline .block.frozen{background:#f6f8fa;border-style:dashed}
.pipeline .block.quantum{border-color:#6f42c1;background:#f8f5ff}
.pipeline .block .name{font-weight:650;min-width:190px}
.pipeline .block .what{color:#57606a;font-size:13px}
.pipeline .block img{max-width:100%;height:auto;border-radius:4px}
.pipeline .block img.thumb{width:96px;height:96px;object-fit:cover}
.pipeline .arrow{display:flex;gap:12px;align-items:center;padding:2px 0 2px 36px;font-size:13px;color:#1f2328;
font-variant-numeric:tabular-nums}
.pipeline .arrow .tip{font-size:20px;color:#57606a;width:18px;text-align:center}
.pipeline .arrow code{background:none;padding:0}
.pipeline .bar{display:inline-block;height:10px;background:#6f42c1;border-radius:2px;vertical-align:middle}
"""

_SPARK_W, _SPARK_H = 360, 34


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def sparkline(values: Sequence[float], width: int = _SPARK_W, height: int = _SPARK_H) -> str:
    """An inline SVG polyline of ``values`` (index left to right), scaled to the box; a zero line if 0 is in range."""
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)
    points = " ".join(f"{width * i / n:.1f},{height - 2 - (height - 4) * ((v if math.isfinite(v) else lo) - lo) / span:.1f}"
                      for i, v in enumerate(values))
    zero = ""
    if lo < 0 < hi:
        y = height - 2 - (height - 4) * (0 - lo) / span
        zero = f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="1"/>'
    return (f'<svg class="sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="the {len(values)} feature values">{zero}'
            f'<polyline fill="none" stroke="#0969da" stroke-width="1" points="{points}"/></svg>')


def _vector(values: Sequence[float] | None, n: int, unit: str = "") -> str:
    if values is None:
        return f"{n} numbers"
    return "(" + ", ".join(f"{v:+.3f}" for v in values) + ")" + unit


def _arrow(text: str) -> str:
    return f'<div class="arrow"><span class="tip">↓</span><span>{text}</span></div>'


def _block(name: str, what: str, kind: str = "", extra: str = "") -> str:
    return (f'<div class="block {kind}"><div class="name">{name}</div><div><div class="what">{what}</div>'
            f"{extra}</div></div>")


def _load(run_dir: Path) -> Mapping[str, Any] | None:
    from qtransfer.heads.trace import PIPELINE_SCHEMA

    data = read_json(run_dir / "pipeline.json", required=False)
    return data if isinstance(data, Mapping) and data.get("schema") == PIPELINE_SCHEMA else None


def pipeline_html(run_dir: Path, metrics: RunMetrics, config: TrainConfig | None, figures: Any,
                  circuit: tuple[str, str] | None) -> str:
    """The drawing (HTML): blocks top to bottom with one image's numbers between them.

    ``circuit`` is ``(data URI, caption as HTML)`` of the run's circuit figure, for the quantum heads.
    """
    trace = _load(run_dir)
    stages = {s["name"]: s["values"] for s in trace["stages"]} if trace else {}
    head = config.head if config is not None else (trace or {}).get("head", "?")
    n_classes = len(metrics.classes)
    F = metrics.num_features
    parts = ['<div class="pipeline">', _input_block(run_dir, trace, figures), _backbone_block(metrics, trace)]
    features = trace.get("features") if trace else None
    if features:
        norm = math.sqrt(sum(v * v for v in features))
        parts.append(_arrow(f"features <code>x</code> ∈ ℝ<sup>{F}</sup>, ‖x‖ = {norm:.2f}, "
                            f"from {min(features):.2f} to {max(features):.2f}<br>{sparkline(features)}"))
    else:
        parts.append(_arrow(f"features <code>x</code> ∈ ℝ<sup>{F}</sup>"))
    info = HEADS.get(head)
    n = config.n_qubits if config is not None else 0
    general = None
    if config is not None and config.circuit is not None:
        from qtransfer.quantum.circuit_file import as_circuit

        general = as_circuit(config.circuit)
    if info is not None and info.is_quantum:
        n_in, n_out = (general.n_inputs, general.n_outputs) if general else (n, n)
        what = (f"the run's own circuit <code>{_e(general.name or 'circuit')}</code>" if general and not circuit else
                "the run's own circuit" if general else
                "the run's own circuit, H + RY(θ<sub>i</sub>) then the trained layers")
        measured = (f"the circuit's {n_out} measured values" if general else f"⟨Z<sub>i</sub>⟩ of each of the {n} qubits")
        parts += [_block("pre-net (trained)", f"<code>Linear({F}→{n_in})</code>"),
                  _arrow(_vector(stages.get("pre-net"), n_in)),
                  _block("embedding angles", "<code>tanh · π/2</code>: every angle in (−π/2, π/2)"),
                  _arrow("angles θ = " + _vector(stages.get("angles"), n_in, " rad")),
                  _block("quantum circuit (trained)", what + (f": {circuit[1]}" if circuit else ""), "quantum",
                         f'<img src="{circuit[0]}" alt="the run\'s circuit">' if circuit else ""),
                  _block("measurement", measured + _measurement_note(config), "quantum"),
                  _arrow(("values = " if general else "⟨Z⟩ = ") + _vector(stages.get("measurement"), n_out)),
                  _block("post-net (trained)", f"<code>Linear({n_out}→{n_classes})</code>"),
                  _arrow("logits " + _vector(stages.get("post-net"), n_classes))]
    elif head == "classical":
        parts += [_block("pre-net (trained)", f"<code>Linear({F}→{n})</code>"),
                  _arrow(_vector(stages.get("pre-net"), n)),
                  _block("squashing", "<code>tanh</code>"),
                  _arrow(_vector(stages.get("tanh"), n)),
                  _block("mixing block (trained)", "each layer mixes every unit with its neighbour, "
                         "<code>x<sub>i</sub> ← cos(w<sub>i</sub>) x<sub>i</sub> + sin(w<sub>i</sub>) x<sub>i+1</sub></code>, "
                         "then <code>tanh</code>: as many weights as the circuit it stands in for"),
                  _arrow(_vector(stages.get("mixing"), n)),
                  _block("post-net (trained)", f"<code>Linear({n}→{n_classes})</code>"),
                  _arrow("logits " + _vector(stages.get("post-net"), n_classes))]
    elif head == "linear":
        parts += [_block("linear head (trained)", f"<code>Linear({F}→{n_classes})</code>"),
                  _arrow("logits " + _vector(stages.get("linear"), n_classes))]
    else:  # a head registered from Python
        parts += [_block(f"head <code>{_e(head)}</code> (trained)", _e(info.description) if info else "registered from Python"),
                  _arrow("logits " + _vector(stages.get("head"), n_classes))]
    parts.append(_block("class probabilities", "<code>softmax</code>", extra=_probabilities(
        stages.get("probabilities"), metrics.classes, trace)))
    parts.append("</div>")
    note = ("The numbers are those of the image at the top, computed by the trained head when the run ended."
            if trace else "This run directory has no pipeline.json (older runs lack it), so the drawing shows the "
            "blocks without one image's numbers.")
    return ("<h2>The pipeline, with one image flowing through it</h2>" + "".join(parts)
            + f'<p class="muted">{note} Dashed: frozen, not trained; purple: quantum.</p>')


def _measurement_note(config: TrainConfig | None) -> str:
    if config is None:
        return ""
    note = f", under noise <code>{_e(config.noise)}</code>" if config.noise else ", exact (the statevector)"
    return note + (f", estimated from {config.shots} shots" if config.shots else "")


def _input_block(run_dir: Path, trace: Mapping[str, Any] | None, figures: Any) -> str:
    if trace is None:
        return _block("image", "each image of the data set")
    thumb = _thumbnail(str(trace["image"]), run_dir, figures)
    img = f'<img class="thumb" src="{thumb}" alt="the image traced">' if thumb else ""
    split = {"val": "validation"}.get(str(trace.get("split", "")), str(trace.get("split", "")))
    label = f"one {_e(split)} image, <code>{_e(Path(str(trace['image'])).name)}</code>"
    label += f"; true class <b>{_e(trace['true'])}</b>" if trace.get("true") is not None else ""
    return (f'<div class="block"><div class="name">image</div>{img}<div class="what">{label}'
            + ("" if thumb else " (the file is not where the run found it)") + "</div></div>")


def _thumbnail(raw: str, run_dir: Path, figures: Any) -> str | None:
    import io

    from PIL import ImageOps

    from qtransfer.data.images import BadImageError, open_image_rgb
    from qtransfer.report.figures import resolve_image

    path = resolve_image(raw, run_dir)
    if path is None:
        return None
    try:
        img = ImageOps.fit(open_image_rgb(path), (192, 192))
    except BadImageError:
        return None
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return figures.save_bytes(buf.getvalue(), "pipeline-image.png")


def _backbone_block(metrics: RunMetrics, trace: Mapping[str, Any] | None) -> str:
    from qtransfer.features.backbones import BACKBONES

    name = metrics.backbone.get("backbone", "?")
    spec = BACKBONES.get(name)
    weights = metrics.backbone.get("weights", "")
    if weights.startswith("file:"):  # a weights file, named by its content's digest
        weights = f"a file, sha256 {weights[5:17]}…"
    cut = (f"its ImageNet classifier <code>{_e(spec.classifier)}</code> (<code>Linear({spec.num_features}→1000)</code>) "
           "cut off" if spec else "its classifier cut off")
    where = (f" (this run: {metrics.n_computed} computed, {metrics.n_cached} read from the cache)"
             if metrics.n_computed or metrics.n_cached else "")
    return _block("frozen backbone A′", f"<code>{_e(name)}</code>, weights {_e(weights)}; {cut}; "
                  f"F = {metrics.num_features} features per image, computed once and cached{where}", "frozen")


def _probabilities(values: Sequence[float] | None, classes: Sequence[str], trace: Mapping[str, Any] | None) -> str:
    if values is None:
        return f'<div class="what">one probability per class ({len(classes)})</div>'
    rows = []
    best = max(range(len(values)), key=values.__getitem__)
    for k, (name, p) in enumerate(zip(classes, values)):
        mark = " ← predicted" if k == best else ""
        rows.append(f'<div><code>{_e(name)}</code> {p:.3f} <span class="bar" style="width:{max(1, round(160 * p))}px">'
                    f"</span>{mark}</div>")
    true = trace.get("true") if trace else None
    if true is not None:
        rows.append(f'<div class="what">{"right" if classes[best] == true else "wrong"}: the true class is '
                    f"{_e(true)}</div>")
    return "".join(rows)

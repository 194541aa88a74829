"""The circuit diagram of a quantum head, drawn from its :class:`~qtransfer.quantum.circuit.CircuitSpec`
(or, for any other circuit, from its :class:`~qtransfer.quantum.description.Circuit`: :func:`general_circuit_figure`).

Two steps: :func:`layout` places every gate in a column (stage by stage: each embedding
gate position, then per layer its CNOTs and its rotations; gates on different wires share a
column, the order on each wire is kept), then :func:`circuit_figure` draws the columns.
Deep circuits show their first 3 layers and say how many repeat.

Example:
    >>> from qtransfer.quantum.circuit import CircuitSpec
    >>> grid = layout(CircuitSpec(n_qubits=2, depth=1))
    >>> [(g.name, col) for g, col, _ in grid.placed]
    [('Hadamard', 0), ('Hadamard', 0), ('RY', 1), ('RY', 1), ('CNOT', 2), ('RY', 3), ('RY', 3)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qtransfer.quantum.circuit import CircuitSpec, Gate
from qtransfer.report.figures import new_figure

if TYPE_CHECKING:  # pragma: no cover
    from qtransfer.quantum.description import Circuit

__all__ = ["Layout", "circuit_figure", "general_circuit_figure", "general_layout", "layout"]

#: deeper circuits are drawn up to this many layers
_MAX_LAYERS_DRAWN = 3
_LABELS = {"Hadamard": "H"}


@dataclass(frozen=True)
class Layout:
    """Where each drawn gate goes: ``placed`` is ``(gate, column, layer)`` (layer -1: the embedding)."""

    spec: CircuitSpec
    placed: list[tuple[Gate, int, int]]
    layer_columns: dict[int, list[int]]
    n_columns: int
    layers_drawn: int

    @property
    def truncated(self) -> bool:
        return self.spec.depth > self.layers_drawn

    @property
    def measure_column(self) -> int:
        return self.n_columns + (1 if self.truncated else 0)


def layout(spec: CircuitSpec) -> Layout:
    """Columns for the embedding and the first layers of ``spec`` (all layers up to depth 6)."""
    n = spec.n_qubits
    layers_drawn = spec.depth if spec.depth <= 6 else _MAX_LAYERS_DRAWN
    n_embed_gates = len(spec.embedding_gates)
    n_embed = n * n_embed_gates
    per_layer = len(spec.entangling_pairs()) + n
    gates = list(spec.gates())[: n_embed + layers_drawn * per_layer]
    stage_index: dict[tuple, int] = {}
    staged = []
    for i, g in enumerate(gates):
        layer = -1 if i < n_embed else (i - n_embed) // per_layer
        key = ("emb", i % n_embed_gates) if layer < 0 else (layer, g.name == "CNOT")
        staged.append((stage_index.setdefault(key, len(stage_index)), i, g, layer))
    staged.sort(key=lambda t: (t[0], t[1]))  # stable: each wire keeps its order

    next_free = [0] * n
    placed: list[tuple[Gate, int, int]] = []
    layer_columns: dict[int, list[int]] = {}
    previous = None
    for stage, _i, g, layer in staged:
        span = range(min(g.wires), max(g.wires) + 1)
        col = max(next_free[w] for w in span)
        if previous is not None and stage != previous:  # a stage starts after the previous one ends
            col = max(col, max(next_free))
        previous = stage
        for w in span:
            next_free[w] = col + 1
        placed.append((g, col, layer))
        if layer >= 0:
            layer_columns.setdefault(layer, []).append(col)
    return Layout(spec, placed, layer_columns, max(next_free) if placed else 0, layers_drawn)


def circuit_figure(spec: CircuitSpec) -> tuple[Any, str]:
    """The diagram of ``spec`` and its caption (HTML)."""
    grid = layout(spec)
    n, meas = spec.n_qubits, grid.measure_column
    fig = new_figure(min(0.8 + 0.5 * (meas + 1.7), 11.0), 0.55 * n + 0.8)
    ax = fig.add_subplot()
    ax.set_xlim(-1.0, meas + 0.7)
    ax.set_ylim(n - 0.35, -1.05)
    ax.axis("off")
    _draw_wires_and_stages(ax, grid)
    for gate, col, _layer in grid.placed:
        _draw_gate(ax, gate, col)
    _draw_measurements(ax, grid)
    caption = (f"{n} qubits, depth {spec.depth}, embedding <code>{spec.embedding}</code>, layer "
               f"<code>{spec.layer}</code>: {spec.n_weights} trainable circuit weights "
               f"(yellow: input angles x from the classical pre-net; blue: trainable weights w; "
               f"the ⟨Z⟩ expectation values feed the classical post-net)."
               + (f" Layers {grid.layers_drawn + 1}–{spec.depth} repeat the same pattern." if grid.truncated else ""))
    return fig, caption


def _draw_wires_and_stages(ax: Any, grid: Layout) -> None:
    from matplotlib.patches import Rectangle

    n = grid.spec.n_qubits
    for w in range(n):
        ax.plot([-0.55, grid.measure_column], [w, w], color="#57606a", linewidth=1, zorder=0)
        ax.text(-0.65, w, f"q{w}", ha="right", va="center", fontsize=10)
    for layer, cols in grid.layer_columns.items():
        lo, hi = min(cols) - 0.45, max(cols) + 0.45
        ax.add_patch(Rectangle((lo, -0.5), hi - lo, n, facecolor="#f6f8fa" if layer % 2 == 0 else "#eef1f4",
                               edgecolor="none", zorder=-1))
        ax.text((lo + hi) / 2, -0.72, f"layer {layer + 1}", ha="center", va="center", fontsize=8, color="#57606a")
    embedding_cols = [c for _g, c, layer in grid.placed if layer < 0]
    if embedding_cols:
        ax.text((min(embedding_cols) + max(embedding_cols)) / 2, -0.72, "embedding", ha="center", va="center",
                fontsize=8, color="#57606a")


def _draw_gate(ax: Any, g: Gate, col: int) -> None:
    from matplotlib.patches import Circle, Rectangle

    if g.name == "CNOT":
        c, t = g.wires
        ax.plot([col, col], [c, t], color="#1f2328", linewidth=1.2, zorder=2)
        ax.add_patch(Circle((col, c), 0.09, color="#1f2328", zorder=3))
        ax.add_patch(Circle((col, t), 0.2, facecolor="white", edgecolor="#1f2328", linewidth=1.2, zorder=3))
        ax.plot([col - 0.2, col + 0.2], [t, t], color="#1f2328", linewidth=1.2, zorder=4)
        ax.plot([col, col], [t - 0.2, t + 0.2], color="#1f2328", linewidth=1.2, zorder=4)
        return
    (w,) = g.wires
    if g.param is None:
        label, face = _LABELS.get(g.name, g.name), "#ffffff"
    elif g.param[0] == "x":
        label, face = f"{g.name}\nx{g.param[1]}", "#fff8c5"
    else:
        label, face = f"{g.name}\nw{g.param[1] + 1},{g.param[2]}", "#ddf4ff"
    ax.add_patch(Rectangle((col - 0.34, w - 0.3), 0.68, 0.6, facecolor=face, edgecolor="#1f2328", linewidth=1, zorder=2))
    ax.text(col, w, label, ha="center", va="center", fontsize=7.5 if "\n" in label else 9, zorder=3, linespacing=0.95)


def _draw_measurements(ax: Any, grid: Layout) -> None:
    from matplotlib.patches import Rectangle

    spec, meas = grid.spec, grid.measure_column
    if grid.truncated:
        ax.text(grid.n_columns, (spec.n_qubits - 1) / 2, f"…\n{spec.depth - grid.layers_drawn}\nmore\nlayers",
                ha="center", va="center", fontsize=8, color="#57606a", bbox=dict(facecolor="white", edgecolor="none", pad=1))
    for w in range(spec.n_qubits):
        ax.add_patch(Rectangle((meas - 0.34, w - 0.3), 0.68, 0.6, facecolor="#f6f8fa", edgecolor="#1f2328",
                               linewidth=1, zorder=2))
        ax.text(meas, w, f"⟨Z{w}⟩", ha="center", va="center", fontsize=8, zorder=3)


# --------------------------------------------------------------------------- any circuit

#: general circuits are drawn up to this many columns
_MAX_COLUMNS = 28
_SHORT = {"Hadamard": "H", "PauliX": "X", "PauliY": "Y", "PauliZ": "Z", "PhaseShift": "P", "IsingXX": "XX",
          "IsingYY": "YY", "IsingZZ": "ZZ"}


def general_layout(circuit: "Circuit") -> tuple[list[tuple[Any, int]], int]:
    """``(op, column)`` for every drawn operation (each as far left as the wires it spans allow) and the
    number of operations not drawn (beyond :data:`_MAX_COLUMNS` columns).

    Example:
        >>> from qtransfer.quantum.templates import basic_entangler_layers
        >>> placed, hidden = general_layout(basic_entangler_layers(2, 1))
        >>> [(op.name, col) for op, col in placed], hidden
        ([('RX', 0), ('RX', 0), ('CNOT', 1)], 0)
    """
    free = [0] * circuit.n_qubits
    placed, hidden = [], 0
    for op in circuit.ops:
        span = range(min(op.wires), max(op.wires) + 1)
        col = max(free[w] for w in span)
        if col >= _MAX_COLUMNS:
            hidden += 1
            continue
        placed.append((op, col))
        for w in span:
            free[w] = col + 1
    return placed, hidden


def _angle_label(p) -> str:
    from qtransfer.quantum.description import Const, Input

    if isinstance(p, Const):
        return f"{p.value:.2g}"
    if isinstance(p, Input):
        return "·".join(f"x{i}" for i in p.index)
    return f"w{p.index}"


def _draw_op(ax: Any, op, col: int) -> None:
    from matplotlib.patches import Circle, Rectangle

    from qtransfer.quantum.description import Input, Weight

    ink = "#1f2328"
    wires = op.wires
    if len(wires) > 1:
        ax.plot([col, col], [min(wires), max(wires)], color=ink, linewidth=1.2, zorder=2)
    if op.name in ("CNOT", "Toffoli"):
        for c in wires[:-1]:
            ax.add_patch(Circle((col, c), 0.09, color=ink, zorder=3))
        t = wires[-1]
        ax.add_patch(Circle((col, t), 0.2, facecolor="white", edgecolor=ink, linewidth=1.2, zorder=3))
        ax.plot([col - 0.2, col + 0.2], [t, t], color=ink, linewidth=1.2, zorder=4)
        ax.plot([col, col], [t - 0.2, t + 0.2], color=ink, linewidth=1.2, zorder=4)
        return
    if op.name == "SWAP":
        for w in wires:
            ax.plot([col - 0.15, col + 0.15], [w - 0.15, w + 0.15], color=ink, linewidth=1.2, zorder=3)
            ax.plot([col - 0.15, col + 0.15], [w + 0.15, w - 0.15], color=ink, linewidth=1.2, zorder=3)
        return
    controlled = op.name in ("CY", "CZ", "CRX", "CRY", "CRZ")
    if controlled:
        ax.add_patch(Circle((col, wires[0]), 0.09, color=ink, zorder=3))
    boxed = wires[1:] if controlled else wires
    name = _SHORT.get(op.name, op.name[1:] if controlled else op.name)
    label = name + ("\n" + ",".join(_angle_label(p) for p in op.params) if op.params else "")
    face = ("#fff8c5" if any(isinstance(p, Input) for p in op.params)
            else "#ddf4ff" if any(isinstance(p, Weight) for p in op.params) else "#ffffff")
    for w in boxed:
        ax.add_patch(Rectangle((col - 0.36, w - 0.3), 0.72, 0.6, facecolor=face, edgecolor=ink, linewidth=1, zorder=3))
        ax.text(col, w, label, ha="center", va="center", fontsize=6.5 if "\n" in label else 8.5, zorder=4,
                linespacing=0.95)


def general_circuit_figure(circuit: "Circuit") -> tuple[Any, str]:
    """The diagram of any :class:`~qtransfer.quantum.description.Circuit` and its caption (HTML)."""
    from html import escape

    from qtransfer.quantum.description import Expval

    placed, hidden = general_layout(circuit)
    n = circuit.n_qubits
    width = max((col for _, col in placed), default=-1) + 1
    meas = width + (1 if hidden else 0)
    fig = new_figure(min(0.8 + 0.5 * (meas + 1.7), 11.0), 0.55 * n + 0.8)
    ax = fig.add_subplot()
    ax.set_xlim(-1.0, meas + 0.7)
    ax.set_ylim(n - 0.35, -1.05)
    ax.axis("off")
    for w in range(n):
        ax.plot([-0.6, meas], [w, w], color="#57606a", linewidth=0.9, zorder=1)
        ax.text(-0.75, w, f"q{w}", ha="right", va="center", fontsize=8)
    if circuit.amplitude:
        ax.text(-0.55, -0.72, "|x⟩ (amplitudes)", ha="left", va="center", fontsize=8, color="#57606a")
    for op, col in placed:
        _draw_op(ax, op, col)
    if hidden:
        ax.text(width, (n - 1) / 2, f"…\n{hidden}\nmore\ngates", ha="center", va="center", fontsize=8, color="#57606a")
    ax.text(meas, -0.72, "measured", ha="center", va="center", fontsize=8, color="#57606a")
    measured = [str(m) if isinstance(m, Expval) else f"probs{list(m.wires)}" for m in circuit.measurements]
    counts = ", ".join(f"{k} ×{v}" for k, v in circuit.gate_counts().items())
    caption = (f"<code>{escape(circuit.name or 'circuit')}</code>: {n} qubits, {circuit.n_inputs} inputs, "
               f"{circuit.n_weights} trainable circuit weights; gates {escape(counts) or 'none'}; measured "
               f"{escape(', '.join(measured))} ({circuit.n_outputs} values to the classical post-net). "
               "Yellow: input angles x from the classical pre-net; blue: trainable weights w."
               + (f" The last {hidden} gates are not drawn." if hidden else ""))
    return fig, caption

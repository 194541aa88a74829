"""The transfer-learning family as one picture: CC, CQ, QC, QQ (Mari et al. 2020, Table 1).

A pre-trained network A, cut to A′ and frozen, feeds a new trainable network B; each of A
and B is classical (C) or quantum (Q). :func:`family_svg` draws the four as a 2 x 2 grid,
each cell naming its A, its B and the ``qtransfer`` command that runs it. The paper's report
embeds it; ``docs/family.svg`` (shown by the README) is this function's output, which a test
checks.

Example:
    >>> svg = family_svg()
    >>> svg.startswith("<svg") and all(kind in svg for kind in ("CC", "CQ", "QC", "QQ"))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

__all__ = ["FAMILY", "Member", "family_svg"]


@dataclass(frozen=True)
class Member:
    """One kind of transfer: its name, network A, network B, and the commands that run it."""

    kind: str
    a: tuple[str, ...]
    b: tuple[str, ...]
    commands: tuple[str, ...]


#: the four kinds, in the grid's order (row: A classical, A quantum; column: B classical, B quantum)
FAMILY = (
    Member("CC", ("ImageNet backbone", "ResNet18, MobileNetV2…"), ("linear or classical", "head"),
           ("qtransfer train --head linear", "qtransfer compare")),
    Member("CQ", ("ImageNet backbone", "ResNet18, MobileNetV2…"), ("dressed quantum", "circuit"),
           ("qtransfer train", "qtransfer paper cq | cifar | qpu")),
    Member("QC", ("photonic network", "pre-trained (shipped)"), ("classical head on", "photon numbers"),
           ("qtransfer paper qc",)),
    Member("QQ", ("photonic circuit A", "(shipped)"), ("trainable photonic", "layers"),
           ("qtransfer paper qq",)),
)

_CLASSICAL = ("#eef4fb", "#0969da")
_QUANTUM = ("#f3eefc", "#6f42c1")
_W, _H = 830, 370
_LEFT, _TOP = 110, 56
_CELL_W, _CELL_H = 350, 146


def _lines(x: float, y: float, lines: tuple[str, ...], size: int = 12, weight: str = "normal",
           anchor: str = "middle", color: str = "#1f2328", mono: bool = False) -> str:
    family = "ui-monospace,Menlo,Consolas,monospace" if mono else "Helvetica,Arial,sans-serif"
    return "".join(f'<text x="{x:.0f}" y="{y + i * (size + 3):.0f}" font-family="{family}" font-size="{size}" '
                   f'font-weight="{weight}" text-anchor="{anchor}" fill="{color}">{escape(t)}</text>'
                   for i, t in enumerate(lines))


def _box(x: float, y: float, w: float, h: float, colors: tuple[str, str], title: str, lines: tuple[str, ...],
         dashed: bool) -> str:
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return (f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="8" fill="{colors[0]}" '
            f'stroke="{colors[1]}" stroke-width="1.5"{dash}/>'
            + _lines(x + w / 2, y + 18, (title,), 12, "bold", color=colors[1])
            + _lines(x + w / 2, y + 36, lines, 11))


def _cell(member: Member, row: int, col: int) -> str:
    x, y = _LEFT + col * (_CELL_W + 10), _TOP + row * (_CELL_H + 10)
    a_colors = _QUANTUM if member.kind[0] == "Q" else _CLASSICAL
    b_colors = _QUANTUM if member.kind[1] == "Q" else _CLASSICAL
    box_w, box_h = 142, 70
    ay = y + 30
    out = [f'<rect x="{x}" y="{y}" width="{_CELL_W}" height="{_CELL_H}" rx="10" fill="#ffffff" stroke="#d0d7de"/>',
           _lines(x + 12, y + 20, (member.kind,), 15, "bold", anchor="start"),
           _box(x + 16, ay, box_w, box_h, a_colors, "A′ (frozen)", member.a, dashed=True),
           _box(x + _CELL_W - 16 - box_w, ay, box_w, box_h, b_colors, "B (trained)", member.b, dashed=False)]
    mid = ay + box_h / 2
    x0, x1 = x + 16 + box_w + 6, x + _CELL_W - 16 - box_w - 6
    out.append(f'<line x1="{x0:.0f}" y1="{mid:.0f}" x2="{x1 - 8:.0f}" y2="{mid:.0f}" stroke="#57606a" stroke-width="2"/>'
               f'<polygon points="{x1:.0f},{mid:.0f} {x1 - 9:.0f},{mid - 5:.0f} {x1 - 9:.0f},{mid + 5:.0f}" '
               f'fill="#57606a"/>')
    out.append(_lines(x + _CELL_W / 2, ay + box_h + 26, member.commands, 11, mono=True, color="#0a3069"))
    return "".join(out)


def family_svg(*, standalone: bool = True) -> str:
    """The picture as SVG text; ``standalone`` adds the XML namespace a ``.svg`` file needs (HTML does not)."""
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    parts = [f'<svg{ns} width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
             'aria-label="The transfer-learning family: CC, CQ, QC, QQ">',
             f'<rect width="{_W}" height="{_H}" fill="#ffffff"/>',
             _lines(_W / 2, 22, ("Transfer learning: a pre-trained network A, cut to A′ and frozen, feeds a new "
                                 "trained network B",), 13, "bold")]
    for col, label in enumerate(("B classical", "B quantum")):
        parts.append(_lines(_LEFT + col * (_CELL_W + 10) + _CELL_W / 2, _TOP - 8, (label,), 12, "bold",
                            color=(_CLASSICAL if col == 0 else _QUANTUM)[1]))
    for row, label in enumerate(("A classical", "A quantum")):
        parts.append(_lines(_LEFT - 12, _TOP + row * (_CELL_H + 10) + _CELL_H / 2, (label,), 12, "bold",
                            anchor="end", color=(_CLASSICAL if row == 0 else _QUANTUM)[1]))
    for i, member in enumerate(FAMILY):
        parts.append(_cell(member, i // 2, i % 2))
    parts.append("</svg>")
    return "".join(parts) + ("\n" if standalone else "")

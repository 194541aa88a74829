"""qtransfer.report.tables: the comparison's tables, rendered as Markdown and HTML from the same rows."""

from __future__ import annotations

import numpy as np

from helpers import compare_results
from qtransfer.report.tables import accuracy_table, html_table, markdown_summary


def _results(**kw):
    rng = np.random.default_rng(7)
    q = (rng.random((3, 49)) < 0.9).astype(int)
    lin = (rng.random((3, 49)) < 0.9).astype(int)
    return compare_results({"quantum": q, "linear": lin}, n_params={"quantum": 2070, "linear": 2562},
                           train_seconds={"quantum": [10, 12, 11], "linear": [1, 1, 1]}, **kw)


def test_markdown_summary_table_and_conclusion():
    md = markdown_summary(_results())
    assert "| head | params | mean ± std (%)" in md
    assert "| quantum | 2,070 |" in md and "| linear | 2,562 |" in md
    assert "## Paired comparisons" in md and "linear vs quantum" in md
    assert "In plain words" in md
    assert "one image is 2.0 points" in md
    assert "11.0 s/seed" in md


def test_one_head_and_one_seed():
    md = markdown_summary(compare_results({"quantum": np.ones((1, 10), int)}, accuracies={"quantum": [0.9]}))
    assert "90.0 (1 seed)" in md and "n/a (1 seed)" in md and "Paired comparisons" not in md


def test_a_failed_seed_is_shown_but_not_averaged():
    results = compare_results({"quantum": np.ones((3, 10), int)}, accuracies={"quantum": [0.9, float("nan"), 0.92]})
    md = markdown_summary(results)
    assert "| quantum | 1,000 | 91.0 ± 1.4 |" in md and "90.0, n/a, 92.0" in md


def test_html_and_markdown_show_the_same_cells():
    table = accuracy_table(_results())
    page = html_table(table)
    md = markdown_summary(_results())
    for row in table.rows:
        for cell in row:
            assert cell in md and cell.replace("±", "&plusmn;") in page or cell in page
    assert page.count("<tr>") == 1 + len(table.rows) and '<th class="r">params</th>' in page

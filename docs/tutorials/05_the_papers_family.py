# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. The paper's family: CC, CQ, QC, QQ
#
# Mari et al. name four kinds of transfer learning by what the pre-trained network A and
# the new network B are: classical (C) or quantum (Q). Tutorials 1 to 4 were CQ (and CC, the
# classical heads). This notebook runs the paper's other examples with its published
# settings, over 2 seeds to stay short: the **spirals** (a dressed quantum circuit against
# classical networks, the paper's Example 1), **QC** (a photonic network pre-trained to
# classify noisy coherent states, then a classical head) and **QQ** (a photonic circuit A
# that tells Gaussian from non-Gaussian states, then trainable photonic layers B).
# Nothing here needs data from outside the package.

# %%
from pathlib import Path

from IPython.display import SVG, Image, Markdown, display

import qtransfer
from qtransfer.report.family import family_svg

display(SVG(family_svg()))

# %% [markdown]
# ## Run the experiments
#
# From the command line, `qtransfer paper spirals --seeds 2 --out runs/paper` runs one of them
# (`qtransfer paper all` runs every experiment it can). Each row gives the published value (one run in the
# paper), the mean over our seeds with its 95% interval, and a matched classical baseline.

# %%
results = qtransfer.run_paper(["spirals", "qc", "qq"], seeds=2, out="runs/tutorial-5-paper", progress=False)
from qtransfer.paper.report import markdown_summary

display(Markdown(markdown_summary(results)))

# %% [markdown]
# With 2 seeds an interval says almost nothing (the Student-t factor for 1 degree of freedom
# is 12.7): the published runs need more seeds to be compared with (`--seeds 20` takes under
# a minute for spirals). Each model's per-seed accuracies are in `results.json`:

# %%
for row in results.rows:
    for series in (row.model, *row.baselines):
        print(f"{row.key:15} {series.name:40} {[round(v, 3) for v in series.values]}")

# %% [markdown]
# ## The pictures
#
# The report (`runs/tutorial-5-paper/report.html`) draws each experiment. The spirals'
# decision regions: the background is each model's probability of class 1, the points the
# test set coloured by their true class.

# %%
figures = Path("runs/tutorial-5-paper/figures")
for name in ("spirals-1.52.png", "qc.png", "qq-published.png"):
    if (figures / name).is_file():
        print(name)
        display(Image(figures / name))

# %% [markdown]
# QC's features are photon-number probabilities of A's output (a 4 x 4 image per input
# state); QQ's inputs are Gaussian and non-Gaussian states, whose photon-number
# distributions differ. [docs/paper.md](../paper.md) has every setting and what differs from
# the published numbers, and why.
#
# Next: [does the quantum head help?](06_does_the_quantum_head_help.py)

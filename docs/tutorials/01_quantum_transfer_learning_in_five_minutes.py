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
# # 1. Quantum transfer learning in five minutes
#
# Transfer learning takes a network **A** that was trained on a large data set, cuts off its
# last layer (what is left is **A′**), freezes it, and trains a small new network **B** on
# what A′ makes of your images. In *Mari et al., Quantum 4, 340 (2020)* either network can be
# classical (C) or quantum (Q). This notebook runs the **CQ** case: A is an ImageNet
# MobileNetV2, B is the paper's *dressed quantum circuit*, the task is ants against bees.
#
# It runs offline on the photos and weights in `../shared` (set `QTRANSFER_SHARED` to
# point elsewhere).

# %%
import json
import os
from pathlib import Path

import qtransfer

SHARED = Path(os.environ.get("QTRANSFER_SHARED", "../shared"))
DATA = SHARED / "data" / "hymenoptera_train"           # ants/ and bees/: a folder of class folders
WEIGHTS = SHARED / "weights" / "mobilenet_v2-b0353104.pth"
print(sorted(p.name for p in DATA.iterdir()), len(list(DATA.glob("*/*"))), "files")

# %% [markdown]
# ## Train
#
# One call: extract MobileNetV2's 1280 features of every photo **once** (they are cached on
# disk, so the next run skips this), split off 20% for validation, and train the head with
# the paper's settings (4 qubits, depth 6, Adam, batch 4) for 10 epochs.

# %%
import shutil

shutil.rmtree("runs/tutorial-1", ignore_errors=True)  # rerunning the notebook starts afresh
metrics = qtransfer.train(DATA, out="runs/tutorial-1", backbone="mobilenet_v2", weights=WEIGHTS,
                          epochs=10, progress=False)
val = metrics.final["val"]
print(f"validation accuracy {val.accuracy:.3f} ({round(val.accuracy * val.n_images)} of {val.n_images} images), "
      f"best epoch {metrics.best_epoch}")
print(f"features: {metrics.timing.extract_s:.1f} s, training: {metrics.timing.train_s:.1f} s")

# %% [markdown]
# ## The pipeline, with one image flowing through it
#
# The run report (`runs/tutorial-1/report.html`) opens with this drawing: the image, the
# frozen backbone A′, then the head's blocks (`Linear(1280→4)`, `tanh·π/2`, the circuit, the
# measurement ⟨Z⟩, `Linear(4→2)`) and the class probabilities. Between the blocks are the
# numbers one validation image produced.

# %%
from IPython.display import HTML, display

from qtransfer.report import pipeline_snippet

display(HTML(pipeline_snippet("runs/tutorial-1")))

# %% [markdown]
# ## The same image, step by step, by hand
#
# `load_run` rebuilds the trained model (backbone + head, one `torch.nn.Module`) from the run
# directory alone. We take the image of the drawing and apply every block ourselves.

# %%
import math

import torch
from PIL import Image

model = qtransfer.load_run("runs/tutorial-1")
trace = json.loads(Path("runs/tutorial-1/pipeline.json").read_text())
image = Image.open(trace["image"]).convert("RGB")
print(Path(trace["image"]).name, "true class:", trace["true"])

with torch.no_grad():
    pixels = model.transform(image)[None]             # resize, crop 224 x 224, normalise: (1, 3, 224, 224)
    features = model.backbone(pixels)                 # A′: (1, 1280), what the cache holds
    head = model.head
    pre = head.pre(features)                          # pre-net Linear(1280 -> 4)
    angles = torch.tanh(pre) * math.pi / 2            # one rotation angle per qubit, in (-pi/2, pi/2)
    z = head.quantum(angles)                          # H + RY(angle) on each qubit, 6 trained layers, <Z_i>
    logits = head.post(z)                             # post-net Linear(4 -> 2)
    probabilities = torch.softmax(logits, dim=-1)

print("features: norm", round(features.norm().item(), 2), "of", features.shape[1], "values")
print("angles   ", [round(v, 3) for v in angles[0].tolist()])
print("<Z>      ", [round(v, 3) for v in z[0].tolist()])
print("P        ", dict(zip(model.classes, [round(v, 3) for v in probabilities[0].tolist()])))

# %% [markdown]
# These are the numbers in the drawing (features computed again from the photo agree with the
# cached ones to float32 rounding):

# %%
stages = {s["name"]: s["values"] for s in trace["stages"]}
assert torch.allclose(angles[0], torch.tensor(stages["angles"]), atol=1e-3)
assert torch.allclose(probabilities[0], torch.tensor(stages["probabilities"]), atol=1e-3)
print("the step-by-step numbers match pipeline.json")

# %% [markdown]
# ## Predict new images
#
# `predict_paths` takes files or folders; the command line does the same with
# `qtransfer predict runs/tutorial-1 IMAGE...`.

# %%
for record in model.predict_paths(sorted((DATA / "bees").glob("*.jpg"))[:3]):
    print(record["pred"], round(record["probability"], 3), Path(record["path"]).name)

# %% [markdown]
# Next: [your own images and backbone](02_your_own_images_and_backbone.py), or
# [does the quantum head help?](06_does_the_quantum_head_help.py) — one run is one draw, and
# 49 validation images cannot tell two heads apart.

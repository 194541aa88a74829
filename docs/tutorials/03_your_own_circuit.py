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
# # 3. Your own circuit
#
# The quantum part of the dressed head is a variational circuit: an **embedding** writes the
# n angles from the pre-net into n qubits, then **depth** trained layers follow, then ⟨Z⟩ is
# measured on every qubit. What can be chosen today: the number of qubits, the depth, the
# embedding, the layer and the initial weights' scale (`q_delta`). A circuit is plain data,
# a `CircuitSpec`; `QuantumLayer` runs it as a torch module.

# %%
import os
from pathlib import Path

import torch
from IPython.display import Image, display

import qtransfer
from qtransfer.quantum.circuit import EMBEDDINGS, LAYERS, CircuitSpec
from qtransfer.report.circuit import circuit_figure

SHARED = Path(os.environ.get("QTRANSFER_SHARED", "../shared"))
DATA = SHARED / "data" / "hymenoptera_train"
WEIGHTS = SHARED / "weights" / "mobilenet_v2-b0353104.pth"
print("embeddings:", EMBEDDINGS, " layers:", LAYERS)

# %% [markdown]
# ## Drawing circuits
#
# The published circuit: a Hadamard then RY(x_i) on each qubit, then per layer CNOTs on
# neighbouring pairs and a trained RY(w) on every qubit. `ry` drops the CNOTs (no
# entanglement: the `product` head), `rot_ring` uses general rotations and a ring of CNOTs.

# %%
def show(spec: CircuitSpec, name: str) -> None:
    figure, caption = circuit_figure(spec)
    figure.savefig(name, dpi=80)
    print(caption.replace("<code>", "").replace("</code>", ""))
    display(Image(name))


show(CircuitSpec(n_qubits=4, depth=2), "published.png")
show(CircuitSpec(n_qubits=3, depth=2, embedding="rx", layer="rot_ring"), "rot_ring.png")

# %% [markdown]
# ## The circuit as a torch module
#
# `QuantumLayer(n_qubits, depth, ...)` takes a batch of n angles and returns the n
# expectation values ⟨Z_i⟩, differentiably. Its weights are `torch.nn.Parameter`s.

# %%
layer = qtransfer.QuantumLayer(4, 2, layer="cnot_ry", q_delta=0.5)
angles = torch.tensor([[0.1, -0.4, 1.2, 0.0], [1.5, 1.5, -1.5, -1.5]], requires_grad=True)
z = layer(angles)
print("<Z> per image:", [[round(v, 3) for v in row] for row in z.tolist()])
z.sum().backward()
print("d(sum <Z>)/d angles:", [[round(v, 3) for v in row] for row in angles.grad.tolist()])
print("trainable weights:", [tuple(p.shape) for p in layer.parameters()])

# %% [markdown]
# ## Which circuit learns the task?
#
# A sweep trains every combination on the cached MobileNetV2 features, two seeds each, and
# tests the heads against each other on the same validation images. (With so few seeds and
# 49 images, expect "not distinguishable": see tutorial 6.)

# %%
results = qtransfer.sweep(
    {"seeds": 2, "base": {"backbone": "mobilenet_v2", "epochs": 10},
     "grid": {"head": ["quantum", "product"], "layer": ["cnot_ry", "rot_ring"], "n_qubits": [2, 4]}},
    out="runs/tutorial-3-sweep", data=DATA, weights=WEIGHTS, workers=1, progress=False)
print(Path("runs/tutorial-3-sweep/summary.md").read_text())

# %% [markdown]
# `product` ignores `layer` (it always runs RY layers without CNOTs), so the sweep trained it
# once per qubit count and seed, not once per layer; the report says so.
#
# From the command line the same choices are flags: `qtransfer train --qubits 4 --depth 6
# --embedding hadamard_ry --layer rot_ring --q-delta 0.01`, and a sweep file's `[grid]`.
#
# Next: [noise and hardware](04_noise_and_hardware.py).

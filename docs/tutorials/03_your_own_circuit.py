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
# angles from the pre-net into the qubits, trained **layers** follow, and some observables are
# **measured**; their expectation values feed the post-net. By default it is Mari et al.'s
# circuit, but any circuit will do. A circuit is plain data, a `qtransfer.quantum.Circuit`,
# and comes from three places: Python (templates or a builder), a circuit file (TOML, YAML or
# JSON), or PennyLane/Qiskit. This notebook builds one circuit all three ways, checks it
# against PennyLane, and trains it on the ants and bees. The reference is
# [docs/circuits.md](../circuits.md).

# %%
import os
import shutil
from pathlib import Path

import torch
from IPython.display import Image, display

import qtransfer
from qtransfer.quantum import CircuitBuilder, QuantumLayer, templates as T
from qtransfer.report.circuit import general_circuit_figure

SHARED = Path(os.environ.get("QTRANSFER_SHARED", "../shared"))
DATA = SHARED / "data" / "hymenoptera_train"
WEIGHTS = SHARED / "weights" / "mobilenet_v2-b0353104.pth"

# %% [markdown]
# ## 1. In Python, from templates
#
# PennyLane's `AngleEmbedding` (an RY(x_i) on each qubit) followed by two
# `StronglyEntanglingLayers` (a general rotation on every qubit, then a ring of CNOTs). We
# measure ⟨Z_i⟩ on each qubit and, as a fifth output, the Pauli word Z0 Z1: the head's
# post-net then reads 5 numbers. The templates carry PennyLane's and Qiskit's names (table in
# docs/circuits.md).

# %%
circuit = T.compose(T.angle_embedding(4, rotation="Y"), T.strongly_entangling_layers(4, n_layers=2),
                    measurements=("Z0", "Z1", "Z2", "Z3", "Z0 Z1"), name="mine")
print("inputs:", circuit.n_inputs, " weights:", circuit.n_weights, " outputs:", circuit.n_outputs)
print("gates:", circuit.gate_counts())

# %% [markdown]
# The run report draws the circuit like this (yellow: angles from the pre-net, blue: trained
# weights):

# %%
def show(circuit, name: str) -> None:
    figure, caption = general_circuit_figure(circuit)
    figure.savefig(name, dpi=80)
    print(caption.replace("<code>", "").replace("</code>", ""))
    display(Image(name))


show(circuit, "mine.png")

# %% [markdown]
# `QuantumLayer(circuit=...)` runs it as a torch module: a batch of 4 angles in, the 5
# expectation values out, differentiable in the angles and in its one weight tensor.

# %%
layer = QuantumLayer(circuit=circuit)
angles = torch.tensor([[0.1, -0.4, 1.2, 0.0], [1.5, 1.5, -1.5, -1.5]], requires_grad=True)
values = layer(angles)
print("outputs per image:", [[round(v, 3) for v in row] for row in values.tolist()])
values.sum().backward()
print("trainable weights:", [tuple(p.shape) for p in layer.parameters()],
      " d(sum)/d angles:", [round(v, 3) for v in angles.grad[0].tolist()])

# %% [markdown]
# ## 2. As a circuit file
#
# The same circuit as a TOML file, what `qtransfer train --circuit my_circuit.toml` reads
# (the repository's `examples/circuits/` has more). Each `[[ops]]` step is a template with its
# arguments, or a single gate such as `{gate = "CRX", wires = [0, 3], angle = "w"}` (`"w"`: a
# new trained weight, `"x[2]"`: an input).

# %%
Path("my_circuit.toml").write_text('''\
name = "mine"
n_qubits = 4
measure = ["Z0", "Z1", "Z2", "Z3", "Z0 Z1"]

[[ops]]
template = "AngleEmbedding"
rotation = "Y"

[[ops]]
template = "StronglyEntanglingLayers"
n_layers = 2
''')
from qtransfer.quantum.circuit_file import load_circuit_file

from_file = load_circuit_file("my_circuit.toml")
print("the file's circuit is the Python one:", from_file == circuit)

# %% [markdown]
# `CircuitBuilder` speaks the file's terms from Python, one step at a time:

# %%
built = (CircuitBuilder(4, name="mine").template("AngleEmbedding", rotation="Y")
         .template("StronglyEntanglingLayers", n_layers=2).measure("Z0", "Z1", "Z2", "Z3", "Z0 Z1").build())
print("the builder's circuit is the Python one:", built == circuit)

# %% [markdown]
# ## 3. Imported from PennyLane
#
# A circuit you already have as a PennyLane quantum function `qfunc(inputs, weights)` comes in
# with `from_pennylane` (its templates are decomposed into gates; `from_qiskit` does the same
# for Qiskit). To check the import, we give PennyLane's own simulator and qtransfer's the same
# inputs and the same random weights and compare the five expectation values.

# %%
import math

import pennylane as qml

from qtransfer.quantum import from_pennylane


def qfunc(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(4), rotation="Y")
    qml.StronglyEntanglingLayers(weights, wires=range(4))
    return [qml.expval(qml.PauliZ(i)) for i in range(4)] + [qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))]


imported = from_pennylane(qfunc, n_inputs=4, weight_shape=qml.StronglyEntanglingLayers.shape(n_layers=2, n_wires=4))
print("same gates and measurements as ours:", imported.ops == circuit.ops and imported.measurements == circuit.measurements)

torch.manual_seed(0)
layer = QuantumLayer(circuit=imported, dtype=torch.float64)
with torch.no_grad():
    layer.weights.uniform_(0, 2 * math.pi)                       # random weights, not the small initial ones
x = torch.tensor([0.1, -0.4, 1.2, 0.7], dtype=torch.float64)
ours = layer(x[None])[0].detach()
theirs = torch.tensor([float(v) for v in qml.QNode(qfunc, qml.device("default.qubit", wires=4))(
    x.numpy(), layer.weights.detach().numpy())], dtype=torch.float64)
print("qtransfer:", [round(v, 6) for v in ours.tolist()])
print("PennyLane:", [round(v, 6) for v in theirs.tolist()])
print("largest difference:", f"{(ours - theirs).abs().max().item():.1e}")
assert torch.allclose(ours, theirs, atol=1e-9)

# %% [markdown]
# ## 4. Train it on the ants and bees
#
# `qtransfer.train(..., circuit=...)` takes the circuit (a `Circuit`, or a circuit file's path)
# and puts it between the pre-net `Linear(1280→4)` and a post-net `Linear(5→2)`. The
# published circuit (`qtransfer.train` without `circuit`) trains on the same cached
# MobileNetV2 features and the same validation split (same seed), for comparison.

# %%
for old in ("runs/tutorial-3-mine", "runs/tutorial-3-published"):
    shutil.rmtree(old, ignore_errors=True)  # rerunning the notebook starts afresh
common = dict(backbone="mobilenet_v2", weights=WEIGHTS, epochs=10, seed=0, progress=False, report=False)
mine = qtransfer.train(DATA, out="runs/tutorial-3-mine", circuit=circuit, **common)
published = qtransfer.train(DATA, out="runs/tutorial-3-published", **common)
for name, metrics in (("mine (AngleEmbedding + 2 StronglyEntanglingLayers)", mine),
                      ("published (Mari et al., depth 6)", published)):
    val = metrics.final["val"]
    print(f"{name}: validation accuracy {val.accuracy:.3f} "
          f"({round(val.accuracy * val.n_images)} of {val.n_images} images), training {metrics.timing.train_s:.1f} s")

# %% [markdown]
# One seed on this small validation set is one draw: a few images either way are not a
# difference between circuits. To tell, train several seeds on the same split and test the
# difference, as tutorial 6 does; docs/circuits.md's sweep (`qtransfer sweep
# examples/circuits/sweep.toml`) does it for four example circuits against the linear head.
#
# The saved run keeps the whole circuit, so `qtransfer.load_run("runs/tutorial-3-mine")`,
# `evaluate`, `predict` and `report` rebuild it without your file or your code. Within the
# published family, the command line's `--qubits`, `--depth`, `--embedding` and `--layer` still
# choose the circuit and keep its fast training path.
#
# Next: [noise and hardware](04_noise_and_hardware.py).

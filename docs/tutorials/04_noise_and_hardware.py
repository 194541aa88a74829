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
# # 4. Noise and hardware
#
# A simulator gives exact expectation values. A real device gives neither: every gate is a
# little wrong, qubits relax, readout flips bits, and ⟨Z⟩ is estimated from a finite number
# of **shots**. qtransfer can run the circuit under a noise model of your own, or under the
# calibrated noise of an IBM device (Qiskit's fake backends: needs `pip install
# 'qtransfer[hardware]'`), exactly or with shots, and can train under that noise.

# %%
import json
import os
import shutil
from pathlib import Path

import torch

import qtransfer

SHARED = Path(os.environ.get("QTRANSFER_SHARED", "../shared"))
DATA = SHARED / "data" / "hymenoptera_train"
WEIGHTS = SHARED / "weights" / "mobilenet_v2-b0353104.pth"

# %% [markdown]
# ## One circuit, ideal and noisy
#
# The same weights, the same angles: per-gate depolarizing noise (`p1` on one-qubit gates,
# `p2` on CNOTs) and 2% readout error shrink every ⟨Z⟩ towards 0; 256 shots add sampling
# noise on top (seeded).

# %%
angles = torch.tensor([[0.3, -1.0, 1.2, 0.5]])
ideal = qtransfer.QuantumLayer(4, 6, q_delta=0.3)
noisy = qtransfer.QuantumLayer(4, 6, q_delta=0.3, noise="depolarizing:p1=0.01,p2=0.05,readout=0.02")
sampled = qtransfer.QuantumLayer(4, 6, q_delta=0.3, noise="depolarizing:p1=0.01,p2=0.05,readout=0.02",
                                 shots=256, seed=0)
noisy.load_state_dict(ideal.state_dict())
sampled.load_state_dict(ideal.state_dict())
with torch.no_grad():
    for name, layer in (("ideal", ideal), ("noisy, exact", noisy), ("noisy, 256 shots", sampled)):
        print(f"{name:17}", [round(v, 3) for v in layer(angles)[0].tolist()])

# %% [markdown]
# ## A trained model on emulated devices
#
# Train ideally (the paper's way), then evaluate the same model under noise without
# retraining. `fake_manila` is a 5-qubit IBM device: Qiskit transpiles the circuit for it and
# builds its calibrated noise model; qtransfer simulates that, batched over images.

# %%
for old in ("runs/tutorial-4", "runs/tutorial-4-aware"):
    shutil.rmtree(old, ignore_errors=True)  # rerunning the notebook starts afresh
metrics = qtransfer.train(DATA, out="runs/tutorial-4", backbone="mobilenet_v2", weights=WEIGHTS, epochs=10,
                          progress=False, report=False)
print(f"ideal simulator: validation accuracy {metrics.final['val'].accuracy:.3f}")

# the run's validation images (listed in predictions.json) as a folder of class folders, to evaluate on
val_images = Path("val_images")
for item in json.loads(Path("runs/tutorial-4/predictions.json").read_text())["items"]:
    (val_images / item["true"]).mkdir(parents=True, exist_ok=True)
    shutil.copy(item["path"], val_images / item["true"])

for noise, shots in (("depolarizing:p1=0.01,p2=0.05,readout=0.02", None), ("fake_manila", None),
                     ("fake_manila", 1024), ("fake_yorktown", 1024)):
    try:
        evaluation = qtransfer.evaluate("runs/tutorial-4", val_images, noise=noise, shots=shots, progress=False)
    except ImportError as error:  # the calibrated devices need qtransfer[hardware]
        print(f"{noise}: {error}")
        continue
    device = evaluation.device or {}
    where = f" (calibrated {device['calibration'][:10]}, qubits {device['layout']})" if device else ""
    print(f"{noise}{where}, {f'{shots} shots' if shots else 'exact <Z>'}: accuracy {evaluation.metrics.accuracy:.3f}")

# %% [markdown]
# One model and one seed say little: over 10 seeds (`qtransfer paper qpu`, README) three devices
# cost the ideally trained model about a point or less, while fake_yorktown costs 6.7 points on
# average, collapsing 2 of 10 models.
#
# ## Noise-aware training
#
# Training *under* the device's noise lets the post-net learn the shrunken, shifted ⟨Z⟩ it
# will see (`qtransfer train --noise fake_manila`). The run records the device, its
# calibration date and the layout in `metrics.json`.

# %%
try:
    aware = qtransfer.train(DATA, out="runs/tutorial-4-aware", backbone="mobilenet_v2", weights=WEIGHTS, epochs=5,
                            noise="fake_manila", progress=False, report=False)
    print(f"trained on fake_manila: validation accuracy {aware.final['val'].accuracy:.3f}; device {aware.device}")
except ImportError as error:
    print(error)

# %% [markdown]
# ## Real hardware
#
# Not run here (it needs an IBM Quantum account): `qtransfer train ... --backend
# pennylane:qiskit.remote:ibm_brisbane --shots 1024` runs the circuit on IBM hardware with
# the credentials `QiskitRuntimeService()` finds (`--noise fake_NAME` tries the same path
# offline). `qtransfer paper qpu` repeats the
# paper's QPU experiment on several emulated devices with intervals over seeds;
# [docs/noise.md](../noise.md) and [docs/devices.md](../devices.md) have the details.
#
# Next: [the paper's family](05_the_papers_family.py).

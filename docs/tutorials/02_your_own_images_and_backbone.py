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
# # 2. Your own images and your own backbone
#
# qtransfer trains on any folder of images sorted into one folder per class. This notebook
# builds such folders (from the ants and bees of `../shared`, standing in for your photos),
# shows the two layouts qtransfer reads, the backbones it knows, and what a pre-trained
# backbone is worth against a random one.

# %%
import os
import shutil
from pathlib import Path

import qtransfer

SHARED = Path(os.environ.get("QTRANSFER_SHARED", "../shared"))
PHOTOS = SHARED / "data" / "hymenoptera_train"
WEIGHTS = SHARED / "weights" / "mobilenet_v2-b0353104.pth"

# %% [markdown]
# ## Layout 1: a folder of class folders
#
# `my_photos/ants/*.jpg`, `my_photos/bees/*.jpg`: the class names are the folder names. A
# seeded, stratified 20% is held out for validation (`val_fraction`). Files that are not
# images, or cannot be decoded, are skipped with a warning (`strict=True` makes that an
# error).

# %%
def copy_photos(target: Path, per_class: int, offset: int = 0) -> Path:
    for name in ("ants", "bees"):
        (target / name).mkdir(parents=True, exist_ok=True)
        for photo in sorted((PHOTOS / name).glob("*.jpg"))[offset:offset + per_class]:
            shutil.copy(photo, target / name / photo.name)
    return target


for old in ("runs/tutorial-2-folder", "runs/tutorial-2-splits", "runs/tutorial-2-random"):
    shutil.rmtree(old, ignore_errors=True)  # rerunning the notebook starts afresh
my_photos = copy_photos(Path("my_photos"), per_class=50)
print({d.name: len(list(d.iterdir())) for d in sorted(my_photos.iterdir())})

pretrained = qtransfer.train(my_photos, out="runs/tutorial-2-folder", backbone="mobilenet_v2", weights=WEIGHTS,
                             epochs=10, progress=False, report=False)
print(f"train {pretrained.n_images['train']}, val {pretrained.n_images['val']}: "
      f"validation accuracy {pretrained.final['val'].accuracy:.3f}")

# %% [markdown]
# ## Layout 2: `train/`, `val/` and `test/`
#
# With a `test/` folder, the epoch is chosen on `val/` and accuracy is *reported* on `test/`,
# images that chose nothing. (The features are cached by the content of each image, so the
# photos copied here are not run through the backbone again.)

# %%
splits = Path("my_splits")
copy_photos(splits / "train", 60, offset=0)
copy_photos(splits / "val", 20, offset=60)
copy_photos(splits / "test", 20, offset=80)
metrics = qtransfer.train(splits, out="runs/tutorial-2-splits", backbone="mobilenet_v2", weights=WEIGHTS,
                          epochs=10, progress=False, report=False)
print(f"best epoch {metrics.best_epoch} (chosen on val), test accuracy {metrics.final['test'].accuracy:.3f} "
      f"on {metrics.final['test'].n_images} images")

# %% [markdown]
# A trained run evaluates any labelled folder, rebuilt from the run directory alone
# (`qtransfer evaluate RUN --data DIR` on the command line):

# %%
evaluation = qtransfer.evaluate("runs/tutorial-2-splits", splits, split="test", progress=False)
print(f"accuracy {evaluation.metrics.accuracy:.3f}; confusion matrix (rows: true class):")
for name, row in zip(evaluation.metrics.per_class_accuracy, evaluation.metrics.confusion_matrix):
    print(f"  {name:5} {row}")

# %% [markdown]
# ## Backbones
#
# Eight torchvision architectures are registered, each with its feature width F (the
# pre-net is `Linear(F → n_qubits)`, sized from it) and its ImageNet weights. Named weights
# (`DEFAULT`, `IMAGENET1K_V1`, ...) are downloaded once by torchvision; offline, give the
# file: `weights="path/to/state_dict.pth"` (any torchvision state dict of that architecture,
# e.g. your own fine-tuned one). `weights="none"` gives a randomly initialised backbone.

# %%
for name, spec in qtransfer.BACKBONES.items():
    print(f"{name:20} F = {spec.num_features:5}  {spec.description}")

# %% [markdown]
# ## What the pre-training is worth
#
# The same architecture and the same head, but MobileNetV2 with random (seeded) weights instead
# of its ImageNet training: the head is as trainable as before, but what it sees separates ants
# from bees far less well.

# %%
random_backbone = qtransfer.train(my_photos, out="runs/tutorial-2-random", backbone="mobilenet_v2", weights="none",
                                  epochs=10, progress=False, report=False)
print(f"random MobileNetV2 features: validation accuracy {random_backbone.final['val'].accuracy:.3f}")
print(f"ImageNet MobileNetV2 features: validation accuracy {pretrained.final['val'].accuracy:.3f} (the same split)")

# %% [markdown]
# Next: [your own circuit](03_your_own_circuit.py).

"""Run every ``qtransfer paper`` experiment, short, and print each row's per-seed values as JSON.

``tests/test_cpu_independence.py`` runs this script in fresh processes under different
``ATEN_CPU_CAPABILITY`` and ``MKL_ENABLE_INSTRUCTIONS`` settings (both are read when torch
loads, so they need a process each) and compares the outputs:

    python tests/cpu_runner.py WORKDIR [EXPERIMENT ...]

Each experiment keeps the piece that makes it sensitive to float rounding (the spirals'
1000 steps at rate 0.07, the full QC and QQ pipelines, cq/cifar/qpu through ``qtransfer.train``
with its backbone pass and feature cache) and is cut only where that is not affected.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
EXPERIMENTS = ("spirals", "qc", "qq", "cq", "cifar", "qpu")
SEEDS = (0, 1)


def run(name: str, work: Path):
    """The rows of experiment ``name`` (seeds 0 and 1, short settings), every file under ``work``."""
    if name == "spirals":
        from qtransfer.paper.spirals import SPIRALS, run_spirals

        return run_spirals(SEEDS, replace(SPIRALS, turns=(1.52,), grid_points=4))
    if name == "qc":
        from qtransfer.paper.qc import run_qc
        from qtransfer.photonic.paper import QC

        return run_qc(SEEDS, replace(QC, epochs=200, test_batches=50))
    if name == "qq":
        from qtransfer.paper.qq import run_qq
        from qtransfer.photonic.paper import QQ

        return run_qq(SEEDS, replace(QQ, batches=60))
    if name == "cq":
        from qtransfer.paper.cq import run_cq

        return run_cq(SEEDS, out=work / "cq", data=SHARED / "data" / "hymenoptera_train", cache_dir=work / "cache",
                      backbone="mobilenet_v2", weights=str(SHARED / "weights" / "mobilenet_v2-b0353104.pth"), epochs=4)
    if name == "cifar":
        sys.path.insert(0, str(HERE))
        from helpers import serve_tiny_cifar
        from qtransfer.paper.cifar import run_cifar

        with serve_tiny_cifar():
            return run_cifar(SEEDS, out=work / "cifar", pairs=("cats_dogs",), cache_dir=work / "cache",
                             weights="none", backbone="mobilenet_v2", epochs=3)
    if name == "qpu":
        sys.path.insert(0, str(HERE))
        from helpers import make_image_folder
        from qtransfer.paper.qpu import run_qpu

        data = make_image_folder(work / "qpu-data", n_per_class=10)
        return run_qpu(SEEDS, data=data, devices=("fake_lima",), shots=256, noise_aware="fake_lima",
                       cache_dir=work / "cache", epochs=3, backbone="resnet18", weights="none")
    raise SystemExit(f"unknown experiment {name!r}; choose among {', '.join(EXPERIMENTS)}")


def main(argv: list[str]) -> None:
    work = Path(argv[0])
    values = {}
    for name in argv[1:] or EXPERIMENTS:
        for row in run(name, work / name):
            values[row.key] = {s.name: list(s.values) for s in (row.model, *row.baselines)}
    print(json.dumps(values, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])

"""One training step of the published head (1280 features, 4 qubits, depth 6, batch 4): what each part costs.

Compares, in one process and interleaved (median of ``--repeat`` rounds of ``--steps`` steps):

(a) autograd + ``torch.optim.Adam(fused=True)``  (how qtransfer trained before the fused step)
(b) autograd + ``qtransfer.training.optimizer.Adam``      (every head other than the dressed quantum one)
(c) ``qtransfer.heads.fused_step`` + ``qtransfer.training.optimizer.Adam`` (the dressed quantum head)

and, each in a fresh subprocess, the one-off cost of building the first ``torch.optim``
optimizer in a process (it imports ``torch._dynamo``) and of ``import torchvision.models``.

    python benchmarks/training_step.py
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch import nn


def _first_use_seconds(code: str) -> float:
    """Seconds ``code`` takes in a fresh interpreter that has already imported torch."""
    script = (
        "import time, torch\n"
        "t = time.perf_counter()\n"
        f"{code}\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from qtransfer.heads.fused_step import fused_step_for
    from qtransfer.heads import build_head
    from qtransfer.training.optimizer import Adam
    from qtransfer.training.loop import train_step

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1280, generator=g)
    y = torch.tensor([0, 1, 1, 0])
    heads = {name: build_head("quantum", 1280, 2, seed=0) for name in "abc"}

    torch_adam = torch.optim.Adam(heads["a"].parameters(), lr=4e-4, fused=True)

    def step_a():
        logits = heads["a"](x)
        loss = nn.functional.cross_entropy(logits, y)
        torch_adam.zero_grad(set_to_none=True)
        loss.backward()
        torch_adam.step()

    adam_b = Adam(heads["b"].parameters(), lr=4e-4)

    def step_b():
        train_step(heads["b"], adam_b, x, y)

    adam_c = Adam(heads["c"].parameters(), lr=4e-4)
    fused = fused_step_for(heads["c"])
    target = -nn.functional.one_hot(y, 2).float() / 4
    logits = torch.empty(4, 2)

    def step_c():
        with torch.no_grad():
            fused(x, target, logits)
            adam_c.step(fused.grads)

    steps = {"a": step_a, "b": step_b, "c": step_c}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for f in steps.values():  # warm up
        for _ in range(20):
            f()
    for _ in range(args.repeat):
        for name, f in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                f()
            times[name].append((time.perf_counter() - t0) / args.steps)
    us = {k: 1e6 * statistics.median(v) for k, v in times.items()}

    optim_import = _first_use_seconds("torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])")
    tv_import = _first_use_seconds("import torchvision.models")

    print(f"{platform.processor() or platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}; "
          f"median of {args.repeat} x {args.steps} steps, interleaved\n")
    print("| training step (batch 4, 1280 features, 4 qubits, depth 6) | us/step | vs (a) |")
    print("|---|---:|---:|")
    labels = {"a": "(a) autograd + torch.optim.Adam(fused=True)", "b": "(b) autograd + qtransfer Adam",
              "c": "(c) fused step + qtransfer Adam"}
    for k, label in labels.items():
        print(f"| {label} | {us[k]:.0f} | {us['a'] / us[k]:.1f}x |")
    print(f"\nfirst torch.optim optimizer in a process (imports torch._dynamo): {optim_import:.2f} s")
    print(f"import torchvision.models (also imports torch._dynamo): {tv_import:.2f} s")
    print(f"1470 steps (30 epochs x 49 batches): (a) {1470 * us['a'] / 1e6:.2f} s, (c) {1470 * us['c'] / 1e6:.2f} s")


if __name__ == "__main__":
    main()

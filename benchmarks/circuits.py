"""Forward+backward throughput of general circuits: qtransfer's executors against the simulators a user would pick.

Usage (from the repository root; on a quiet machine, the figures are timings):
    python benchmarks/circuits.py                       # n = 4 8 12 16 20, batch 64; published at batch 4, 256
    python benchmarks/circuits.py --quick               # n = 4 8, short budgets (a smoke test, not figures)
    python benchmarks/circuits.py --n 4 12 --threads 1 0 --json out.json

Circuits:

* ``sel``: StronglyEntanglingLayers-style -- RY(x_i) embedding, ``depth`` (6) layers of Rot on
  every wire and a ring of CNOTs (i, i+1 mod n), <Z_i> on every wire; batch 64;
* ``published``: Mari et al.'s circuit (H + RY embedding, CNOTs + RY layers), n = 4, batch 4 and 256.

One step = forward of a batch and ``sum().backward()`` into inputs and weights (qulacs: forward
only, it has no batched gradient); the table gives samples per second (batch / median step time).
Options (a peer that cannot run says why in its cell):

* ``qtransfer f32`` / ``qtransfer f64``: ``QuantumLayer(circuit=...)``, the general executor;
* ``qtransfer fast f32``: the hand-derived path of the published family (``layer="rot_ring"`` /
  ``"cnot_ry"``), the figure generality must not lose;
* ``default.qubit``: PennyLane, backprop, parameter broadcasting (one call per batch);
* ``lightning.qubit``: PennyLane-Lightning, adjoint differentiation;
* ``torchquantum``: its batched ``QuantumDevice`` (``torchquantum`` or ``torchquantum-ng``, if installed);
* ``qulacs``: forward only, one state per sample (``qulacs``, if installed).

``--threads 1 0`` runs every option with one intra-op thread and with torch's default (0).
Every (option, circuit, n, batch, threads) runs in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

OPTIONS = ("qtransfer f32", "qtransfer f64", "qtransfer fast f32", "default.qubit", "lightning.qubit", "torchquantum",
           "qulacs")


def _circuit(kind: str, n: int, depth: int):
    from qtransfer.quantum import templates

    if kind == "published":
        return templates.published(n, depth)
    return templates.compose(templates.angle_embedding(n, rotation="Y"),
                             templates.strongly_entangling_layers(n, depth, ranges=[1] * depth))


def _torchquantum_step(n: int, depth: int, batch: int):
    import torch
    import torchquantum as tq
    import torchquantum.functional as tqf

    weights = torch.randn(depth, n, 3, requires_grad=True)

    def run(x):
        dev = tq.QuantumDevice(n_wires=n, bsz=x.shape[0], device="cpu")
        for i in range(n):
            tqf.ry(dev, wires=i, params=x[:, i])
        for layer in range(depth):
            for i in range(n):
                tqf.rot(dev, wires=i, params=weights[layer, i].unsqueeze(0).expand(x.shape[0], 3))
            for i in range(n):
                tqf.cnot(dev, wires=[i, (i + 1) % n])
        return torch.stack([tq.measurement.expval_joint_analytical(dev, "I" * i + "Z" + "I" * (n - i - 1))
                            for i in range(n)], -1)

    return run


def _qulacs_step(n: int, depth: int, batch: int):
    import numpy as np
    from qulacs import Observable, ParametricQuantumCircuit, QuantumState

    rng = np.random.default_rng(0)
    w = rng.normal(size=(depth, n, 3))
    obs = []
    for i in range(n):
        o = Observable(n)
        o.add_operator(1.0, f"Z {n - 1 - i}")  # qulacs: qubit 0 least significant
        obs.append(o)

    def run(x):
        out = []
        for row in x.detach().numpy():
            c = ParametricQuantumCircuit(n)
            for i in range(n):
                c.add_RY_gate(n - 1 - i, -row[i])  # qulacs rotations have the opposite sign
            for layer in range(depth):
                for i in range(n):
                    q = n - 1 - i
                    c.add_RZ_gate(q, -w[layer, i, 0]); c.add_RY_gate(q, -w[layer, i, 1]); c.add_RZ_gate(q, -w[layer, i, 2])
                for i in range(n):
                    c.add_CNOT_gate(n - 1 - i, n - 1 - (i + 1) % n)
            state = QuantumState(n)
            c.update_quantum_state(state)
            out.append([o.get_expectation_value(state) for o in obs])
        return out

    return run


def _worker(option: str, kind: str, n: int, batch: int, depth: int, threads: int, budget: float) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from qtransfer.quantum import QuantumLayer

    dtype = torch.float64 if option == "qtransfer f64" or option.endswith(".qubit") else torch.float32
    backward = option != "qulacs"
    if option in ("qtransfer f32", "qtransfer f64"):
        layer = QuantumLayer(circuit=_circuit(kind, n, depth), dtype=dtype)
    elif option == "qtransfer fast f32":
        spec = dict(embedding="hadamard_ry", layer="cnot_ry") if kind == "published" else dict(embedding="ry", layer="rot_ring")
        layer = QuantumLayer(n, depth, dtype=dtype, **spec)
    elif option == "default.qubit":
        layer = QuantumLayer(circuit=_circuit(kind, n, depth), backend="pennylane:default.qubit", diff_method="backprop",
                             dtype=dtype)
    elif option == "lightning.qubit":
        layer = QuantumLayer(circuit=_circuit(kind, n, depth), backend="pennylane:lightning.qubit", diff_method="adjoint",
                             dtype=dtype)
    elif option == "torchquantum":
        if kind != "sel":
            return {"skipped": "sel circuit only"}
        layer = _torchquantum_step(n, depth, batch)
    else:
        if kind != "sel":
            return {"skipped": "sel circuit only"}
        layer = _qulacs_step(n, depth, batch)
    x_all = torch.rand(batch, n, dtype=dtype, generator=torch.Generator().manual_seed(0)) * 3

    def step() -> float:
        x = x_all.clone().requires_grad_(backward)
        start = time.perf_counter()
        out = layer(x)
        if backward:
            out = out if torch.is_tensor(out) else torch.as_tensor(out)
            out.sum().backward()
        return time.perf_counter() - start

    times = [step()]  # warm-up
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(times) < 4:
        times.append(step())
        if len(times) > 2000:
            break
    median = statistics.median(times[1:])
    return {"samples_per_s": batch / median, "median_s": median, "steps": len(times) - 1}


def _run(option, kind, n, batch, depth, threads, budget, timeout) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps([option, kind, n, batch, depth, threads, budget])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"skipped": last[:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[4, 8, 12, 16, 20])
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="intra-op threads per run (0: torch's default)")
    p.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timing per cell")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--quick", action="store_true", help="n = 4 8, 0.5 s per cell")
    p.add_argument("--json", help="also write the records here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*json.loads(args.worker))))
        return 0
    if args.quick:
        args.n, args.budget = [4, 8], 0.5
    cells = [("sel", n, args.batch) for n in args.n] + [("published", 4, 4), ("published", 4, 256)]
    records = []
    for threads in args.threads:
        print(f"\n## {threads or 'default'} thread(s): samples/s, forward+backward (qulacs: forward)\n")
        print("| circuit | n | batch | " + " | ".join(args.options) + " |")
        print("|---|---|---|" + "---|" * len(args.options))
        for kind, n, batch in cells:
            row = []
            for option in args.options:
                r = _run(option, kind, n, batch, args.depth, threads, args.budget, args.timeout)
                records.append({"option": option, "circuit": kind, "n": n, "batch": batch, "threads": threads, **r})
                row.append(f"{r['samples_per_s']:,.0f}" if "samples_per_s" in r else f"— ({r['skipped']})")
            print(f"| {kind} | {n} | {batch} | " + " | ".join(row) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Forward+backward throughput of the published circuit: built-in simulator against PennyLane.

Usage (from the repository root):
    .venv/bin/python benchmarks/quantum.py                  # n = 4 8 12 16 20, batch 4 and 256 (n=20: 16)
    .venv/bin/python benchmarks/quantum.py --quick          # n = 4 8, batch 4 and 256, short budgets
    .venv/bin/python benchmarks/quantum.py --n 4 16 --threads 2

One step = forward of a batch, ``sum().backward()`` into inputs and weights; the table gives
samples per second (batch / median step time). Circuit: Hadamard + RY embedding, ``depth``
layers of CNOTs + RY, <Z> on every wire (Mari et al. 2020). Options:

* builtin f64 / f32: ``QuantumLayer(backend="builtin")`` in float64 (the ratios use this
  one: PennyLane computes in float64 too) and float32 (what training uses);
* default.qubit per-sample: one QNode call per sample, torch interface, backprop, then
  ``torch.stack`` (what the published demo does);
* default.qubit broadcast: one QNode call with a ``(batch, n)`` input (parameter broadcasting);
* lightning.qubit adjoint: one call with a ``(batch, n)`` input, ``diff_method="adjoint"``;
  lightning splits a broadcast input into one tape per sample.

Every (option, n, batch) runs in a fresh subprocess, so "peak" is that process's
``ru_maxrss`` (including ~0.5 GiB of torch + PennyLane after import). Per-sample options
that would take longer than ``--budget`` seconds for a whole batch are timed on fewer
samples and extrapolated linearly (marked ``~``); an option whose autograd graph would not
fit in memory is skipped with the estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

OPTIONS = ("builtin f64", "builtin f32", "default.qubit per-sample", "default.qubit broadcast", "lightning.qubit adjoint")
PER_SAMPLE = ("default.qubit per-sample", "lightning.qubit adjoint")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(option: str, n: int, batch: int, depth: int, threads: int, budget: float, repeats: int) -> dict:
    """Time one option in this process; returns a JSON-able record."""
    import torch

    torch.set_num_threads(threads)
    from qtransfer.quantum import QuantumLayer

    dtype = torch.float32 if option == "builtin f32" else torch.float64
    if option.startswith("builtin"):
        layer = QuantumLayer(n, depth, dtype=dtype)
    elif option.startswith("default.qubit"):
        layer = QuantumLayer(n, depth, "pennylane:default.qubit", diff_method="backprop", dtype=dtype)
    else:
        layer = QuantumLayer(n, depth, "pennylane:lightning.qubit", diff_method="adjoint", dtype=dtype)
    after_import = _peak_mib()
    generator = torch.Generator().manual_seed(0)
    x_all = torch.rand(batch, n, dtype=dtype, generator=generator) * 3

    def step(count: int) -> float:
        x = x_all[:count].clone().requires_grad_()
        layer.zero_grad()
        start = time.perf_counter()
        if option == "default.qubit per-sample":
            out = torch.stack([layer(x[i]) for i in range(count)])
        else:
            out = layer(x)
        out.sum().backward()
        return time.perf_counter() - start

    count = batch
    if option in PER_SAMPLE:  # time one sample first; extrapolate when a batch would not fit the budget
        one = min(step(1), step(1))
        count = max(1, min(batch, int(budget / max(one, 1e-9))))
    times = [step(count)]  # warm-up (caches, first-call overheads)
    deadline = time.perf_counter() + budget
    while len(times) < repeats + 1 and (time.perf_counter() < deadline or len(times) < 2):
        times.append(step(count))
    median = statistics.median(times[1:])
    return dict(
        samples_per_s=count / median,
        measured_samples=count,
        steps=len(times) - 1,
        extrapolated=count < batch,
        peak_mib=_peak_mib(),
        after_import_mib=after_import,
    )


def _graph_bytes(option: str, n: int, batch: int, depth: int) -> float:
    """Rough autograd memory of a backprop default.qubit run: one complex128 state per gate."""
    gates = 2 * n + depth * (2 * n - 1)
    rows = batch if option == "default.qubit broadcast" else 1  # per-sample: only 1 sample if need be
    return 16 * rows * 2.0**n * gates


def _run(option: str, n: int, batch: int, args) -> dict:
    if option.startswith("default.qubit"):
        need = _graph_bytes(option, n, batch, args.depth)
        if need > args.max_graph_gib * 2**30:
            return dict(skipped=f"autograd graph ~{need / 2**30:.0f} GiB")
    cmd = [sys.executable, __file__, "--worker", option, str(n), str(batch), str(args.depth), str(args.threads),
           str(args.budget), str(args.repeats)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(skipped=f"timeout {args.timeout:.0f} s")
    if done.returncode < 0:
        return dict(skipped=f"killed by signal {-done.returncode}" + (", out of memory?" if done.returncode == -9 else ""))
    if done.returncode != 0:
        return dict(skipped="failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:80])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cell(record: dict) -> str:
    if "skipped" in record:
        return f"skipped ({record['skipped']})"
    mark = "~" if record["extrapolated"] else ""
    return f"{mark}{record['samples_per_s']:.4g}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=None, help="qubit counts (default 4 8 12 16 20)")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per process (default 1)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timing per option (default 20)")
    parser.add_argument("--repeats", type=int, default=50, help="at most this many timed steps per option")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a worker is abandoned")
    parser.add_argument("--max-graph-gib", type=float, default=12.0, help="skip backprop runs needing more")
    parser.add_argument("--quick", action="store_true", help="n = 4 8, budget 3 s")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        option, *rest = args.worker
        n, batch, depth, threads = (int(v) for v in rest[:4])
        print(json.dumps(_worker(option, n, batch, depth, threads, float(rest[4]), int(rest[5]))))
        return
    if args.quick:
        args.budget = min(args.budget, 3.0)
        args.repeats = min(args.repeats, 20)
    sizes = args.n or ([4, 8] if args.quick else [4, 8, 12, 16, 20])

    import torch

    print(f"torch {torch.__version__}, {args.threads} thread(s) per process (torch + OpenMP), "
          f"depth {args.depth}, budget {args.budget:g} s per option; cpu count {os.cpu_count()}\n")
    header = ["n", "batch", *OPTIONS, "builtin / per-sample", "builtin / broadcast", "builtin / lightning",
              "peak MiB (builtin f64 / per-sample / broadcast / lightning)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    for n in sizes:
        for batch in ([16] if n >= 20 else [4, 256]):
            rec = {option: _run(option, n, batch, args) for option in OPTIONS}
            base = rec["builtin f64"].get("samples_per_s")

            def ratio(option: str) -> str:
                r = rec[option]
                if "skipped" in r or base is None:
                    return "-"
                return f"{'~' if r['extrapolated'] else ''}{base / r['samples_per_s']:.3g}x"

            peaks = " / ".join(
                "-" if "skipped" in rec[o] else f"{rec[o]['peak_mib']:.0f}"
                for o in ("builtin f64", "default.qubit per-sample", "default.qubit broadcast", "lightning.qubit adjoint")
            )
            row = [str(n), str(batch), *(_cell(rec[o]) for o in OPTIONS), ratio("default.qubit per-sample"),
                   ratio("default.qubit broadcast"), ratio("lightning.qubit adjoint"), peaks]
            print("| " + " | ".join(row) + " |", flush=True)
    print("\nsamples/s of forward+backward; ~: timed on fewer samples than the batch and extrapolated linearly.")


if __name__ == "__main__":
    main()

"""Peak resident memory of one forward+backward pass of the general executor, against its estimate.

Usage (from the repository root; each size in its own process):
    python benchmarks/circuit_memory.py 16            # kept states (below 1 GiB of them)
    python benchmarks/circuit_memory.py 16 --adjoint  # adjoint mode forced
    python benchmarks/circuit_memory.py 20            # adjoint mode (the kept states would exceed 1 GiB)

The circuit is depth-6 StronglyEntanglingLayers after an RY embedding, batch 64, float32, one
thread; the figure is the growth of the process's peak resident set over the pass (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", type=int)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--adjoint", action="store_true", help="force adjoint mode")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from qtransfer.errors import CircuitTooLargeError
    from qtransfer.quantum import compile as plans
    from qtransfer.quantum import templates
    from qtransfer.quantum.executor import run_circuit

    if args.adjoint:
        plans.ADJOINT_ABOVE = 0
    circuit = templates.compose(templates.angle_embedding(args.n, rotation="Y"),
                                templates.strongly_entangling_layers(args.n, 6))
    x = torch.rand(args.batch, args.n, requires_grad=True)
    w = torch.randn(circuit.n_weights, requires_grad=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        run_circuit(circuit, x, w).sum().backward()
    except CircuitTooLargeError as e:  # refused before allocating: one line, exit 2 as in the CLI
        print(f"circuit_memory: {e}")
        return 2
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"n={args.n} batch={args.batch} adjoint={plans.uses_adjoint(circuit, args.batch)}: "
          f"estimate {plans.estimate_bytes(circuit, args.batch) / 2**20:.0f} MiB, peak grew {grown:.0f} MiB, "
          f"{seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Forward+backward throughput of general circuits: qtransfer's executors against the simulators a user would pick.

Usage (from the repository root; on a quiet machine, the figures are timings):
    python benchmarks/circuits.py                       # n = 4 8 12 16 20, batch 64; published at batch 4, 256
    python benchmarks/circuits.py --quick               # n = 4 8, short budgets (a smoke test, not figures)
    python benchmarks/circuits.py --n 4 12 --threads 1 0 --json out.json   # written after every row
    python benchmarks/circuits.py --options torchquantum --torchquantum-python /path/to/venv/bin/python

Circuits:

* ``sel``: StronglyEntanglingLayers-style -- RY(x_i) embedding, ``depth`` (6) layers of Rot on
  every wire and a ring of CNOTs (i, i+1 mod n), <Z_i> on every wire; batch 64;
* ``published``: Mari et al.'s circuit (H + RY embedding, CNOTs + RY layers), n = 4, batch 4 and 256.

One step = forward of a batch and ``sum().backward()`` into inputs and weights (``qulacs`` and
``qtransfer f32 (forward)``: forward only); the table gives samples per second (batch / median
step time), and under it each size's ratios, like with like: ``qtransfer f32`` to the fastest
peer that computes gradients, ``qtransfer f32 (forward)`` to the fastest forward-only peer (and,
for the record, ``qtransfer f32``'s forward+backward to that forward-only peer). Every option
starts from the same seeded weights and inputs, so their values agree
(``tests/test_benchmark_circuits.py`` holds the peers to qtransfer's on n = 3). Options (a
peer that cannot run says why in its cell):

* ``qtransfer f32`` / ``qtransfer f64``: ``QuantumLayer(circuit=...)``, the general executor;
* ``qtransfer f32 (forward)``: the same layer, forward only under ``torch.no_grad()`` (inference,
  as ``qtransfer evaluate`` runs it), the figure to set beside ``qulacs``'s;
* ``qtransfer fast f32``: the hand-derived path of the published family (``layer="rot_ring"`` /
  ``"cnot_ry"``), the figure generality must not lose;
* ``default.qubit``: PennyLane, backprop, parameter broadcasting (one call per batch);
* ``lightning.qubit``: PennyLane-Lightning, adjoint differentiation;
* ``torchquantum``: its batched ``QuantumDevice`` (complex64) measured by ``MeasureAll(PauliZ)``,
  autograd for the gradients (``pip install torchquantum-ng``: the fork that installs beside
  this project's torch and Qiskit; ``--torchquantum-python`` runs it from another environment);
* ``qulacs``: forward only, the way a qulacs user runs a batch: one ``ParametricQuantumCircuit``
  built once (parametric RY for the inputs, parametric RZ/RY/RZ for the weights, set once per
  step), then per sample ``set_parameter`` on the input angles, ``set_zero_state``,
  ``update_quantum_state`` and one ``Observable`` per ``<Z_i>``;
* ``qulacs (backprop)``: the same forward (keeping each sample's state), then per sample
  ``backprop_inner_product`` of ``2 (sum_i g_i Z_i)|psi>`` for the incoming gradient ``g``:
  what ``ParametricQuantumCircuit.backprop(observable)`` does, without the forward pass it
  runs first; it gives the gradients of the inputs' and the weights' angles.

``--json``: checked before the first cell (one line and exit code 2 if it cannot be written) and
rewritten atomically after every row, so Ctrl-C (exit code 130) keeps the rows finished; piped
into ``head``, the script stops quietly (exit code 141).

Threads: ``--threads 1 0`` runs every option with one thread and with the defaults (0). One
thread binds every peer: besides ``torch.set_num_threads``, each worker's environment gets
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``QULACS_NUM_THREADS``
(``lightning.qubit`` and qulacs use OpenMP); with 0 the environment is left as it is.

Every (option, circuit, n, batch, threads) runs in a fresh subprocess with an address-space
cap (``--memory-gb``, default 3/4 of the machine's memory), so a cell that needs more fails
with "memory" instead of waking the kernel's OOM killer. A cell times steps for ``--budget``
seconds (at least 3 after a warm-up step); a cell whose first step takes longer than the budget
reports that one step. A cell over ``--timeout`` seconds (start-up included) is cut off; an
option cut off or out of memory at some n is not run at larger n, nor where its last step
times 2^(qubits added) exceeds the timeout (cells say why). The default timeout, 420 s, lets
the slowest peer that fits in memory finish one step at n = 20: sizing on this project's
2-core machine while other jobs ran (2026-12-06, one thread, one step each through this
script's worker: ``--budget 0 --timeout 600 --memory-gb 12``), not figures: at n = 20,
``qtransfer f32`` 77 s, ``qulacs`` 70 s, ``qulacs (backprop)`` 299 s; ``default.qubit`` and
``torchquantum`` (every intermediate batched state kept for autograd) ran out of 12 GiB,
``qtransfer f64`` is refused by its own memory check (about 22 GiB), ``lightning.qubit``
took 100 s for 2 samples (about 53 min for 64: it is not started after its n = 16 step,
about 50 s). By those numbers a full default run (both thread settings) takes about half an
hour there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

OPTIONS = ("qtransfer f32", "qtransfer f64", "qtransfer fast f32", "default.qubit", "lightning.qubit", "torchquantum",
           "qulacs (backprop)", "qtransfer f32 (forward)", "qulacs")
#: peers written for the ``sel`` circuit only
SEL_ONLY = ("torchquantum", "qulacs", "qulacs (backprop)")
#: the peers, by what a step computes: forward and gradients, or forward only (compared like with like)
GRADIENT_PEERS = ("default.qubit", "lightning.qubit", "torchquantum", "qulacs (backprop)")
FORWARD_PEERS = ("qulacs",)
#: what ``--threads N`` (N > 0) sets in each worker's environment: the OpenMP, MKL and OpenBLAS
#: pools of torch, numpy, PennyLane-Lightning and qulacs
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "QULACS_NUM_THREADS")
INSTALL = {"torchquantum": "pip install torchquantum-ng", "qulacs": "pip install qulacs",
           "pennylane_lightning": "pip install pennylane-lightning", "pennylane": "pip install pennylane"}


@dataclass
class Step:
    """One option's step: ``run`` maps inputs ``(batch, n)`` to ``<Z_i>`` ``(batch, n)``; ``weights``
    is the leaf tensor whose ``.grad`` a backward pass fills (the circuit's weights in the order of
    ``(depth, n, 3)`` flattened, for ``sel``)."""

    run: Callable
    weights: "object"
    dtype: "object"
    backward: bool


def initial_weights(numel: int, seed: int = 1):
    """The weights every option starts from (float64, standard normal, seeded): the same numbers
    whatever the option's own shape for them."""
    import torch

    return torch.randn(numel, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def inputs(batch: int, n: int, dtype, seed: int = 0):
    """The input angles every option gets: uniform in [0, 3)."""
    import torch

    return torch.rand(batch, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype) * 3


def _circuit(kind: str, n: int, depth: int):
    from qtransfer.quantum import templates

    if kind == "published":
        return templates.published(n, depth)
    return templates.compose(templates.angle_embedding(n, rotation="Y"),
                             templates.strongly_entangling_layers(n, depth, ranges=[1] * depth))


def _qtransfer_step(option: str, kind: str, n: int, depth: int) -> Step:
    import torch
    from qtransfer.quantum import QuantumLayer

    dtype = torch.float64 if option == "qtransfer f64" or option.endswith(".qubit") else torch.float32
    if option in ("qtransfer f32", "qtransfer f64", "qtransfer f32 (forward)"):
        layer = QuantumLayer(circuit=_circuit(kind, n, depth), dtype=dtype)
    elif option == "qtransfer fast f32":
        spec = dict(embedding="hadamard_ry", layer="cnot_ry") if kind == "published" else dict(embedding="ry", layer="rot_ring")
        layer = QuantumLayer(n, depth, dtype=dtype, **spec)
    else:
        diff = "backprop" if option == "default.qubit" else "adjoint"
        layer = QuantumLayer(circuit=_circuit(kind, n, depth), backend=f"pennylane:{option}", diff_method=diff,
                             dtype=dtype)
    with torch.no_grad():
        layer.weights.copy_(initial_weights(layer.weights.numel()).reshape(layer.weights.shape))
    if option.endswith("(forward)"):
        def forward(x):
            with torch.no_grad():
                return layer(x)

        return Step(forward, None, dtype, False)
    return Step(layer, layer.weights, dtype, True)


def _torchquantum_step(n: int, depth: int) -> Step:
    import torch
    import torchquantum as tq
    import torchquantum.functional as tqf

    weights = initial_weights(depth * n * 3).to(torch.float32).reshape(depth, n, 3).requires_grad_()
    measure = tq.MeasureAll(tq.PauliZ)

    def run(x):
        dev = tq.QuantumDevice(n_wires=n, bsz=x.shape[0], device=x.device)
        for i in range(n):
            tqf.ry(dev, wires=i, params=x[:, i])
        for layer in range(depth):
            for i in range(n):
                tqf.rot(dev, wires=i, params=weights[layer, i].unsqueeze(0).expand(x.shape[0], 3))
            for i in range(n):
                tqf.cnot(dev, wires=[i, (i + 1) % n])
        return measure(dev)

    return Step(run, weights, torch.float32, True)


def _qulacs_step(n: int, depth: int, *, backprop: bool = False) -> Step:
    """qulacs, circuit built once; wire i is qulacs's qubit i. qulacs's ``R_P(t)`` is ``exp(+i t P / 2)``:
    PennyLane's ``R_P(-t)``, so every angle goes in negated (and its gradient comes out negated)."""
    import numpy as np
    import torch
    from qulacs import Observable, ParametricQuantumCircuit, QuantumState

    circuit = ParametricQuantumCircuit(n)
    for i in range(n):  # parameters 0..n-1: the inputs
        circuit.add_parametric_RY_gate(i, 0.0)
    for _ in range(depth):  # then (layer, wire, Rot's phi/theta/omega), PennyLane's weight order
        for i in range(n):
            circuit.add_parametric_RZ_gate(i, 0.0)
            circuit.add_parametric_RY_gate(i, 0.0)
            circuit.add_parametric_RZ_gate(i, 0.0)
        for i in range(n):
            circuit.add_CNOT_gate(i, (i + 1) % n)
    observables = []
    for i in range(n):
        o = Observable(n)
        o.add_operator(1.0, f"Z {i}")
        observables.append(o)
    weights = initial_weights(depth * n * 3).requires_grad_(backprop)
    state = QuantumState(n)

    def set_weights(w):
        for k, value in enumerate(w.detach().reshape(-1).tolist()):
            circuit.set_parameter(n + k, -value)

    def forward(rows, keep: list | None = None):
        out = np.empty((len(rows), n))
        for b, row in enumerate(rows):
            for i in range(n):
                circuit.set_parameter(i, -row[i])
            state.set_zero_state()
            circuit.update_quantum_state(state)
            out[b] = [o.get_expectation_value(state) for o in observables]
            if keep is not None:
                keep.append(state.copy())
        return out

    if not backprop:
        def run(x):
            set_weights(weights)
            return torch.from_numpy(forward(x.detach().cpu().numpy().tolist()))

        return Step(run, None, torch.float64, False)

    class Qulacs(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            set_weights(w)
            ctx.rows, ctx.states = x.detach().cpu().numpy().tolist(), []
            return torch.from_numpy(forward(ctx.rows, ctx.states))

        @staticmethod
        def backward(ctx, g):
            work, bistate = QuantumState(n), QuantumState(n)
            grads = np.empty((len(ctx.rows), circuit.get_parameter_count()))
            for b, (row, psi, g_b) in enumerate(zip(ctx.rows, ctx.states, g.tolist())):
                for i in range(n):
                    circuit.set_parameter(i, -row[i])
                o = Observable(n)  # sum_i g_i Z_i: the backward pass's observable for this sample
                for i in range(n):
                    o.add_operator(g_b[i], f"Z {i}")
                o.apply_to_state(work, psi, bistate)
                bistate.multiply_coef(2.0)
                grads[b] = circuit.backprop_inner_product(bistate)
            grads = -torch.from_numpy(grads)  # the angles went in negated
            return grads[:, :n], grads[:, n:].sum(0)

    return Step(lambda x: Qulacs.apply(x, weights), weights, torch.float64, True)


def build_step(option: str, kind: str, n: int, depth: int) -> Step:
    """The step of ``option`` on circuit ``kind`` (``"sel"`` or ``"published"``) with ``n`` qubits."""
    if option in SEL_ONLY and kind != "sel":
        raise ValueError(f"{option} runs the sel circuit only")
    if option == "torchquantum":
        return _torchquantum_step(n, depth)
    if option in ("qulacs", "qulacs (backprop)"):
        return _qulacs_step(n, depth, backprop=option == "qulacs (backprop)")
    return _qtransfer_step(option, kind, n, depth)


def worker_env(threads: int, environ: dict | None = None) -> dict:
    """A worker's environment: ``environ`` (default ``os.environ``) with every thread pool capped at
    ``threads``; left as it is for 0 (the defaults)."""
    env = dict(os.environ if environ is None else environ)
    if threads:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def _worker(option: str, kind: str, n: int, batch: int, depth: int, threads: int, budget: float) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    step_of = build_step(option, kind, n, depth)
    x_all = inputs(batch, n, step_of.dtype)

    def step() -> float:
        x = x_all.clone().requires_grad_(step_of.backward)
        start = time.perf_counter()
        out = step_of.run(x)
        if step_of.backward:
            out.sum().backward()
        return time.perf_counter() - start

    first = step()  # warm-up
    if first >= budget:
        return {"samples_per_s": batch / first, "median_s": first, "steps": 1}
    times = []
    deadline = time.perf_counter() + budget
    while (time.perf_counter() < deadline or len(times) < 3) and len(times) < 2000:
        times.append(step())
    median = statistics.median(times)
    return {"samples_per_s": batch / median, "median_s": median, "steps": len(times)}


def _cap_memory(limit_bytes: int) -> Callable[[], None]:
    def cap() -> None:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
        except (ValueError, OSError):  # not enforced everywhere (macOS): run uncapped
            pass

    return cap


def _total_memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _reason(stderr: str, returncode: int, memory_gb: float) -> str:
    """A failed worker's cell: why, in a few words."""
    lines = stderr.strip().splitlines()
    text = "\n".join(lines[-5:])
    if returncode < 0:
        return f"killed by signal {-returncode}" + (" (out of memory?)" if returncode == -9 else "")
    too_large = re.search(r"CircuitTooLargeError: .* needs about ([\d.]+ GiB) .* only ([\d.]+ GiB) are free", text)
    if too_large:  # qtransfer's own estimate, before allocating
        return f"memory: needs about {too_large[1]}, {too_large[2]} free"
    if any(word in text for word in ("can't allocate memory", "Cannot allocate memory", "MemoryError",
                                     "failed to map segment")):  # the last two: an import under a low cap
        return f"memory: over the {memory_gb:.0f} GiB cap"
    if "ModuleNotFoundError" in text:
        module = text.rsplit("No module named ", 1)[-1].strip("'\" \n").split(".")[0]
        return f"{module} not installed ({INSTALL.get(module, 'pip install ' + module)})"
    return (lines or ["failed"])[-1][:120]


def _run(option, kind, n, batch, depth, threads, budget, timeout, *, python=None, memory_gb=None) -> dict:
    memory_gb = memory_gb or _total_memory_gb() * 3 / 4
    cmd = [python or sys.executable, __file__, "--worker", json.dumps([option, kind, n, batch, depth, threads, budget])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=worker_env(threads),
                              preexec_fn=_cap_memory(int(memory_gb * 2**30)))
    except subprocess.TimeoutExpired:
        return {"skipped": f"over {timeout:.0f} s", "cut": "timeout"}
    if done.returncode != 0:
        reason = _reason(done.stderr, done.returncode, memory_gb)
        return {"skipped": reason, **({"cut": "memory"} if reason.startswith(("memory", "killed")) else {})}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rate(samples_per_s: float) -> str:
    """Samples per second as the table shows them: whole numbers from 100, else three significant digits."""
    return f"{samples_per_s:,.0f}" if samples_per_s >= 99.95 else f"{samples_per_s:.3g}"


def ratios(records: list[dict]) -> list[str]:
    """Per size, like with like: ``qtransfer f32`` over the fastest peer that computes gradients,
    ``qtransfer f32 (forward)`` over the fastest forward-only peer, and ``qtransfer f32``'s
    forward+backward over that forward-only peer (a step doing more work than the peer's)."""
    lines = []
    for n in sorted({r["n"] for r in records}):
        rate = {r["option"]: r["samples_per_s"] for r in records if r["n"] == n and "samples_per_s" in r}
        parts = []
        for ours, label, peers, what in (
                ("qtransfer f32", "qtransfer f32", GRADIENT_PEERS, "gradient"),
                ("qtransfer f32 (forward)", "qtransfer f32 (forward)", FORWARD_PEERS, "forward-only"),
                ("qtransfer f32", "qtransfer f32 (forward+backward)", FORWARD_PEERS, "forward-only")):
            ran = [p for p in peers if p in rate]
            if ours in rate and ran:
                best = max(ran, key=rate.get)
                parts.append(f"{label} / fastest {what} peer ({best}) = {rate[ours] / rate[best]:.2f}x")
        if parts:
            lines.append(f"- n = {n}: " + "; ".join(parts))
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[4, 8, 12, 16, 20])
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 0],
                   help="threads per run (0: the defaults; N > 0 also sets " + ", ".join(THREAD_VARIABLES) + ")")
    p.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per cell (default 3; --quick: 0.5)")
    p.add_argument("--timeout", type=float, default=420.0, help="seconds per cell, start-up included")
    p.add_argument("--memory-gb", type=float, default=None,
                   help="address-space cap per cell (default: 3/4 of this machine's memory)")
    p.add_argument("--torchquantum-python", default=sys.executable,
                   help="the interpreter that runs the torchquantum cells (default: this one)")
    p.add_argument("--quick", action="store_true", help="n = 4 8, 0.5 s per cell")
    p.add_argument("--json", help="also write the records here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*json.loads(args.worker))))
        return 0
    if args.quick:
        args.n = [4, 8]
    if args.budget is None:
        args.budget = 0.5 if args.quick else 3.0
    from qtransfer.atomic import atomic_write_json
    from qtransfer.errors import EXIT_BROKEN_PIPE, UsageError
    from qtransfer.outdir import check_writable

    if args.json:  # before half an hour of timing, not after it
        try:
            check_writable(os.path.dirname(os.path.abspath(args.json)), "--json")
        except UsageError as e:
            print(f"circuits.py: error: {e}", file=sys.stderr)
            return UsageError.exit_code
    memory_gb = args.memory_gb or _total_memory_gb() * 3 / 4
    records: list[dict] = []
    try:
        _measure(args, memory_gb, records, lambda: atomic_write_json(args.json, records) if args.json else None)
    except BrokenPipeError:  # read by `| head`: stop quietly, as a Unix tool stopped by SIGPIPE does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:  # the worker got the same Ctrl-C (one process group) and is gone
        print("\ncircuits.py: interrupted" + (f"; the rows finished are in {args.json}" if args.json else ""),
              file=sys.stderr)
        return 130
    return 0


def _measure(args, memory_gb: float, records: list[dict], save: Callable[[], None]) -> None:
    """Every cell of the tables, printed row by row; ``records`` grows by each cell and ``save`` is
    called after each row (``--json``: what ran so far is on disk if the run is stopped)."""
    cells = [("sel", n, args.batch) for n in sorted(args.n)] + [("published", 4, 4), ("published", 4, 256)]
    for threads in args.threads:
        print(f"\n## {threads or 'default'} thread(s): samples/s, forward+backward (qulacs, qtransfer f32 (forward): "
              "forward only)\n")
        print("| circuit | n | batch | " + " | ".join(args.options) + " |")
        print("|---|---|---|" + "---|" * len(args.options))
        cut: dict[str, str] = {}  # option -> why its larger sel cells are not run
        last: dict[str, tuple[int, float]] = {}  # option -> (n, seconds per step) of its last sel cell
        for kind, n, batch in cells:
            row = []
            for option in args.options:
                if option in SEL_ONLY and kind != "sel":
                    r = {"skipped": "sel circuit only"}
                elif kind == "sel" and option in cut:
                    r = {"skipped": cut[option]}
                elif kind == "sel" and option in last and last[option][1] * 2 ** (n - last[option][0]) > args.timeout:
                    # a state twice as large per qubit: a lower bound of the step's time
                    n0, seconds = last[option]
                    r = {"skipped": f"over {args.timeout:.0f} s: one step took {seconds:.0f} s at n = {n0}, "
                                    f"at least {seconds * 2 ** (n - n0):.0f} s at n = {n}"}
                    cut[option] = f"not run: {r['skipped']}"
                else:
                    python = args.torchquantum_python if option == "torchquantum" else None
                    r = _run(option, kind, n, batch, args.depth, threads, args.budget, args.timeout, python=python,
                             memory_gb=memory_gb)
                    if kind == "sel" and "cut" in r:
                        cut[option] = f"not run: {r['skipped']} at n = {n}"
                    elif kind == "sel" and "median_s" in r:
                        last[option] = (n, r["median_s"])
                records.append({"option": option, "circuit": kind, "n": n, "batch": batch, "threads": threads, **r})
                row.append(_rate(r["samples_per_s"]) if "samples_per_s" in r else f"— ({r['skipped']})")
            save()
            print(f"| {kind} | {n} | {batch} | " + " | ".join(row) + " |", flush=True)
        print()
        for line in ratios([r for r in records if r["threads"] == threads and r["circuit"] == "sel"]):
            print(line)


if __name__ == "__main__":
    raise SystemExit(main())

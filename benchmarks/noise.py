"""Noisy forward+backward throughput of the published circuit: density-matrix mode against default.mixed (and, on a device, qiskit.aer).

Usage (from the repository root):
    .venv/bin/python benchmarks/noise.py                    # batch 4 and 256, depth 6, 4 qubits
    .venv/bin/python benchmarks/noise.py --budget 5 --noise 'depolarizing:p1=0.01'
    .venv/bin/python benchmarks/noise.py --noise fake_manila   # a calibrated device (hardware extra)

One step = forward of a batch, ``sum().backward()`` into inputs and weights; the table gives
samples per second (batch / median step time). Noise (default): depolarizing after every gate
(``p1=0.001``, ``p2=0.01``) and readout error ``0.02``. Options:

* builtin f64 / f32: ``QuantumLayer(noise=...)`` (the density-matrix simulator,
  :mod:`qtransfer.quantum.density`, or :mod:`qtransfer.quantum.device_sim` on a device);
* default.mixed per-sample: one QNode call per sample (backprop), the same channels
  (:func:`qtransfer.quantum.pennylane_backend.build_noisy_qnode`; on a device
  :func:`~qtransfer.quantum.pennylane_backend.build_device_qnode`: the transpiled circuit, every
  gate followed by its Aer error as a ``QubitChannel``, readout errors as channels before measuring);
* default.mixed broadcast: one QNode call with a ``(batch, n)`` input;
* qiskit.aer 1024 shots (device noise only): the transpiled gates on PennyLane's ``qiskit.aer``
  device with ``method="density_matrix"`` and the device's Aer noise model, one QNode call with a
  ``(batch, n)`` input (PennyLane runs the batch's circuits as one Aer job). *Forward only*: it
  samples (it has no exact mode through PennyLane) and has no backprop; parameter-shift would
  be 2 x 28 more circuits per sample.

Last, the time to evaluate 153 images (the Hymenoptera validation split) at 1024 shots
(on a device, also through qiskit.aer).

Every (option, batch) runs in a fresh subprocess with one torch/OpenMP thread. Per-sample
runs that would exceed ``--budget`` seconds for a whole batch are timed on fewer samples and
extrapolated linearly (marked ``~``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

OPTIONS = ("builtin f64", "builtin f32", "default.mixed per-sample", "default.mixed broadcast")
AER = "qiskit.aer 1024 shots"
NOISE = "depolarizing:p1=0.001,p2=0.01,readout=0.02"


def _is_device(noise_text: str) -> bool:
    return noise_text.startswith("fake_")


def _options(noise_text: str) -> tuple[str, ...]:
    return (*OPTIONS, AER) if _is_device(noise_text) else OPTIONS


def _runner(option: str, layer, noise_text: str):
    """``(run, backward)``: ``run(x)`` evaluates a batch for ``option``; ``backward`` whether it is differentiated."""
    import torch

    if option.startswith("builtin"):
        return layer, True
    from qtransfer.quantum.noise import parse_noise
    from qtransfer.quantum.pennylane_backend import (
        build_device_qnode,
        build_noisy_qnode,
    )

    weights = layer.weights
    if option == AER:
        qnode = build_device_qnode(layer.spec, noise_text, "qiskit.aer", shots=1024, seed=0)
        return (lambda x: qnode(x, weights)), False
    if _is_device(noise_text):
        qnode = build_device_qnode(layer.spec, noise_text)
    else:
        qnode = build_noisy_qnode(layer.spec, parse_noise(noise_text))
    if option.endswith("per-sample"):
        return (lambda x: torch.stack([qnode(xi, weights) for xi in x])), True
    return (lambda x: qnode(x, weights)), True


def _worker(option: str, n: int, depth: int, batch: int, noise_text: str, budget: float) -> dict:
    """Time one option in this process; returns a JSON-able record."""
    import warnings

    import torch

    warnings.simplefilter("ignore")  # qiskit.aer warns on every call
    torch.set_num_threads(1)
    from qtransfer.quantum import QuantumLayer

    dtype = torch.float32 if option == "builtin f32" else torch.float64
    layer = QuantumLayer(n, depth, noise=noise_text, q_delta=1.0, dtype=dtype)
    run, backward = _runner(option, layer, noise_text)

    def step(count: int) -> float:
        x = torch.rand(count, n, dtype=dtype, requires_grad=backward)
        start = time.perf_counter()
        if backward:
            run(x).sum().backward()
        else:
            with torch.no_grad():
                run(x)
        return time.perf_counter() - start

    count = batch
    first = step(count)  # warm-up (and the estimate of one step)
    if option.endswith("per-sample") and first > budget / 5:
        count = max(1, int(batch * budget / 5 / first))
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 1000):
        times.append(step(count))
        if time.perf_counter() > deadline and len(times) >= 3:
            break
    return {"option": option, "batch": batch, "timed": count, "steps": len(times),
            "rate": count / statistics.median(times)}


def _shots_worker(option: str, n: int, depth: int, noise_text: str) -> dict:
    """Seconds to evaluate 153 images (the Hymenoptera validation split) at 1024 shots, no gradient."""
    import warnings

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    from qtransfer.quantum import QuantumLayer

    layer = QuantumLayer(n, depth, noise=noise_text, shots=1024, seed=0, q_delta=1.0)
    run, repeats = layer, 20
    if option == AER:
        run, _ = _runner(AER, layer, noise_text)
        repeats = 3
    x = torch.rand(153, n)
    times = []
    with torch.no_grad():
        run(x)
        for _ in range(repeats):
            start = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "repeats": repeats}


def _run(option: str, batch: int, args, worker: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", worker or option, "--batch", str(batch), "--n", str(args.n),
           "--depth", str(args.depth), "--noise", args.noise, "--budget", str(args.budget)]
    if worker:
        cmd += ["--shots-option", option]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{option} at batch {batch} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cell(record: dict) -> str:
    mark = "~" if record["timed"] < record["batch"] else ""
    return f"{mark}{record['rate']:.4g}"


def _table(args) -> None:
    options = _options(args.noise)
    names = [f"{o} (forward)" if o == AER else o for o in options]
    print("| batch | " + " | ".join(names) + " | builtin / per-sample | builtin / broadcast |")
    print("|---" * (len(options) + 3) + "|")
    for batch in args.batch:
        records = {option: _run(option, batch, args) for option in options}
        base = records["builtin f64"]["rate"]
        ratios = [f"{base / records[o]['rate']:.3g}x" for o in OPTIONS[2:]]
        print(f"| {batch} | " + " | ".join(_cell(records[o]) for o in options) + " | " + " | ".join(ratios) + " |",
              flush=True)
    aer = " (qiskit.aer: forward only)" if AER in options else ""
    print(f"\nsamples/s of forward+backward{aer}; ~: timed on fewer samples than the batch and extrapolated linearly.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 256])
    parser.add_argument("--noise", default=NOISE, help="a noise string, or a device name such as fake_manila")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of timing per cell")
    parser.add_argument("--worker", choices=(*OPTIONS, AER, "shots"), help=argparse.SUPPRESS)
    parser.add_argument("--shots-option", default="builtin", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "shots":
        print(json.dumps(_shots_worker(args.shots_option, args.n, args.depth, args.noise)))
        return
    if args.worker:
        print(json.dumps(_worker(args.worker, args.n, args.depth, args.batch[0], args.noise, args.budget)))
        return
    import torch

    print(f"torch {torch.__version__}, 1 thread per process, n={args.n}, depth {args.depth}, noise {args.noise!r}, "
          f"budget {args.budget:g} s per cell, cpu count {os.cpu_count()}\n")
    _table(args)
    shots = _run("builtin", 153, args, worker="shots")
    print(f"153 images x 1024 shots (builtin f32, forward only, median of 20): {shots['seconds'] * 1e3:.3g} ms")
    if _is_device(args.noise):
        aer = _run(AER, 153, args, worker="shots")
        print(f"153 images x 1024 shots (qiskit.aer density_matrix, one QNode call, median of 3): {aer['seconds']:.3g} s")


if __name__ == "__main__":
    main()

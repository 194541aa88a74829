"""Throughput of the paper's photonic circuits: qtransfer's simulator against Strawberry Fields' ``fock`` backend.

Usage (from the repository root; Strawberry Fields needs its own environment, see docs/photonic.md):
    .venv-sf/bin/python benchmarks/photonic.py                  # batch 1 and 64, 1 thread
    .venv-sf/bin/python benchmarks/photonic.py --budget 0.5     # shorter timing budget per cell
    .venv-sf/bin/python benchmarks/photonic.py --device cuda    # qtransfer on a GPU (SF stays on CPU)

Cases (the notebooks' settings):

* **QC forward**, cutoff 11: two-mode coherent inputs, network A (15 pre-trained layers),
  the 16 features. qtransfer: :func:`qtransfer.photonic.paper.qc_state` + ``qc_features``
  for the whole batch (A is one fixed 121 x 121 matrix, built once and cached; the first
  call, which builds it, is not timed). SF: one program with free parameters for the input
  displacements, ``eng.run(prog, args=...)`` per state, ``eng.reset()`` after each.
* **QQ forward+backward**, cutoff 15: ``|label>``, the data generator, circuit A (as
  published), 3 trainable layers, the notebook's cross-entropy on ``p0``, ``backward()``
  into the 18 trainable parameters. SF's ``fock`` backend has no gradients (its TF backend,
  which had, does not run today), so its column is the *forward pass only*: the ratio is
  a lower bound of the speed-up for forward+backward.

states/s = batch / median time of one call (repeated until ``--budget`` seconds are spent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads: SF is timed on one thread too


def _time(fn, budget: float, min_repeats: int = 3) -> float:
    """Median seconds of ``fn()`` over at least ``min_repeats`` calls and ``budget`` seconds."""
    fn()  # warm-up (caches, allocator)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _qc_amplitudes(batch: int, seed: int = 0):
    import numpy as np

    from qtransfer.photonic import paper

    rng = np.random.default_rng(seed)
    clean = paper.qc_amplitudes()[rng.integers(0, 7, size=batch)]
    noise = rng.normal(scale=paper.QC.noise_scale, size=(batch, 2, 2))
    return clean + noise[..., 0] + 1j * noise[..., 1]


def qc_qtransfer(batch: int, dtype, device):
    """A callable computing the QC features of ``batch`` noisy states."""
    import torch

    from qtransfer.photonic import paper

    amps = torch.tensor(_qc_amplitudes(batch), device=device).to(
        torch.complex128 if dtype == torch.float64 else torch.complex64
    )

    def step():
        feats = paper.qc_features(paper.qc_state(amps))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return feats

    return step


def qc_strawberryfields(batch: int):
    """The same with Strawberry Fields, one state at a time."""
    import numpy as np
    import strawberryfields as sf
    from strawberryfields import ops as sfo

    from qtransfer.photonic import paper

    p = paper.qc_parameters()
    clip = lambda v: float(np.clip(v, -1, 1))  # noqa: E731
    prog = sf.Program(2)
    ar, ap, br, bp = prog.params("ar", "ap", "br", "bp")
    with prog.context as q:
        sfo.Dgate(ar, ap) | q[0]
        sfo.Dgate(br, bp) | q[1]
        for i in range(paper.QC.depth):
            r1, r2, t1, f1, t2, f2, s1, sf1, s2, sf2, d1, df1, d2, df2, k1, k2 = (float(v) for v in p[:, i])
            sfo.BSgate(t1, f1) | (q[0], q[1])
            sfo.Rgate(r1) | q[0]
            sfo.Sgate(clip(s1), sf1) | q[0]
            sfo.Sgate(clip(s2), sf2) | q[1]
            sfo.BSgate(t2, f2) | (q[0], q[1])
            sfo.Rgate(r2) | q[0]
            sfo.Dgate(clip(d1), df1) | q[0]
            sfo.Dgate(clip(d2), df2) | q[1]
            sfo.Kgate(clip(k1)) | q[0]
            sfo.Kgate(clip(k2)) | q[1]
    eng = sf.Engine("fock", backend_options={"cutoff_dim": paper.QC.cutoff})
    amps = _qc_amplitudes(batch)

    def step():
        out = []
        for a, b in amps:
            ket = eng.run(prog, args={"ar": abs(a), "ap": np.angle(a), "br": abs(b), "bp": np.angle(b)}).state.ket()
            eng.reset()
            sub = np.abs(ket[:4, :4])
            out.append((sub / np.sqrt((sub**2).sum())).ravel())
        return np.stack(out)

    return step


def _qq_inputs(batch: int, seed: int = 1):
    import numpy as np

    from qtransfer.photonic import paper

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=batch)
    gen = {
        "gen_d": 1.0 - labels.astype(float),
        "gen_sq": rng.uniform(-paper.QQ.sq_sd, paper.QQ.sq_sd, batch),
        "gen_r1": rng.uniform(-paper.QQ.rot_sd, paper.QQ.rot_sd, batch),
        "gen_r2": rng.uniform(-paper.QQ.rot_sd, paper.QQ.rot_sd, batch),
    }
    weights = rng.normal(scale=0.1, size=(6, paper.QQ.q_depth))  # rows: sq, d, r1, r2, r3, gamma
    return labels, gen, weights


_B_ROWS = ("sq", "d", "r1", "r2", "r3", "gamma")


def qq_qtransfer(batch: int, dtype, device):
    """A callable running QQ forward and backward on ``batch`` states; returns ``p0``."""
    import torch

    from qtransfer.photonic import measure, paper, simulate

    labels, gen, weights = _qq_inputs(batch)
    circuit = paper.qq_circuit("published")
    labels_t = torch.tensor(labels, device=device)
    psi0 = paper.qq_input_state(labels_t, dtype=dtype)
    gen_t = {k: torch.tensor(v, dtype=dtype, device=device) for k, v in gen.items()}
    w = torch.tensor(weights, dtype=dtype, device=device, requires_grad=True)
    clip = paper.QQ.clip
    y = labels_t.to(dtype)

    def step():
        params = dict(gen_t)
        for row, name in enumerate(_B_ROWS):
            vals = w[row].clamp(-clip, clip) if name in ("sq", "d", "gamma") else w[row]
            for i in range(paper.QQ.q_depth):
                params[f"{name}_{i}"] = vals[i]
        p0 = measure.fock_probabilities(simulate(circuit, psi0, params))[:, 0]
        loss = (-y * torch.log(p0 + 1e-7) - (1 - y) * torch.log(1 - p0 + 1e-7)).mean()
        w.grad = None
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return p0.detach()

    return step


def qq_strawberryfields(batch: int, gradient: bool = False):
    """QQ with Strawberry Fields, one state at a time; returns ``p0``.

    Its ``fock`` backend cannot differentiate, so with ``gradient=True`` each state is also run
    at ``w +- h`` for each of B's 18 weights (central differences: 37 forward passes a state),
    which is how a user of that backend gets the gradient qtransfer's backward pass gives. The
    36 shifted programs are built before the clock starts; only running them is timed.
    """
    import numpy as np
    import strawberryfields as sf
    from strawberryfields import ops as sfo

    from qtransfer.photonic import paper

    labels, gen, weights = _qq_inputs(batch)
    _sq, d, r1, r2, r3, gamma = (float(v) for v in paper.qq_parameters()[:, 0])  # as published: no S
    clip = lambda v: float(np.clip(v, -1, 1))  # noqa: E731
    cutoff = paper.QQ.cutoff

    def program(label: int, weights=weights):
        prog = sf.Program(1)
        kd, kr1, ksq, kr2 = prog.params("d", "r1", "sq", "r2")
        ket = np.zeros(cutoff, dtype=complex)
        ket[label] = 1
        with prog.context as q:
            sfo.Ket(ket) | q[0]
            sfo.Dgate(kd, 0) | q[0]
            sfo.Rgate(kr1) | q[0]
            sfo.Sgate(ksq, 0) | q[0]
            sfo.Rgate(kr2) | q[0]
            sfo.Rgate(r1) | q[0]  # circuit A as published: no squeezing
            sfo.Rgate(r2) | q[0]
            sfo.Dgate(clip(d), 0) | q[0]
            sfo.Rgate(r3) | q[0]
            sfo.Vgate(clip(gamma)) | q[0]
            for i in range(paper.QQ.q_depth):
                bsq, bd, br1, br2, br3, bg = (float(v) for v in weights[:, i])
                sfo.Rgate(br1) | q[0]
                sfo.Sgate(clip(bsq), 0) | q[0]
                sfo.Rgate(br2) | q[0]
                sfo.Dgate(clip(bd), 0) | q[0]
                sfo.Rgate(br3) | q[0]
                sfo.Vgate(clip(bg)) | q[0]
        return prog

    progs = (program(0), program(1))
    h = 1e-4
    shifts = [(k, sign) for k in np.ndindex(weights.shape) for sign in (1.0, -1.0)] if gradient else []
    shifted = {}
    for k, sign in shifts:
        w = weights.copy()
        w[k] += sign * h
        shifted[k, sign] = (program(0, w), program(1, w))
    eng = sf.Engine("fock", backend_options={"cutoff_dim": cutoff})

    def p0(i: int, pair) -> float:
        args = {"d": gen["gen_d"][i], "r1": gen["gen_r1"][i], "sq": gen["gen_sq"][i], "r2": gen["gen_r2"][i]}
        value = eng.run(pair[labels[i]], args=args).state.fock_prob([0])
        eng.reset()
        return value

    def loss(p: float, label: int) -> float:
        return -np.log(p + 1e-7) if label == 1 else -np.log(1 - p + 1e-7)

    def step():
        out = [p0(i, progs) for i in range(batch)]
        grad = np.zeros_like(weights)
        for (k, sign), pair in shifted.items():
            grad[k] += sign * sum(loss(p0(i, pair), labels[i]) for i in range(batch)) / (2 * h * batch)
        return np.array(out)

    return step


def _ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per timed cell (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; SF: OMP_NUM_THREADS=1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-sf", action="store_true", help="skip Strawberry Fields")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warnings.simplefilter("ignore")
    have_sf = False
    if not args.no_sf:
        try:
            import strawberryfields

            have_sf = True
            sf_version = strawberryfields.__version__
        except ImportError:
            print("strawberryfields is not installed: its columns are n/a (see docs/photonic.md)", file=sys.stderr)
    print(
        f"torch {torch.__version__}, qtransfer on {device}, {args.threads} torch thread(s); "
        f"Strawberry Fields {sf_version if have_sf else 'absent'} fock backend on CPU, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )
    header = ["case", "batch", "qtransfer f64", "qtransfer f32", "SF fock", "f64 / SF", "f32 / SF"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    cases = [
        ("QC forward, cutoff 11", qc_qtransfer, qc_strawberryfields),
        ("QQ forward+backward, cutoff 15 (SF: forward only)", qq_qtransfer, qq_strawberryfields),
        ("QQ forward+backward, cutoff 15 (SF: gradient by central differences)", qq_qtransfer,
         lambda batch: qq_strawberryfields(batch, gradient=True)),
    ]
    for name, ours, theirs in cases:
        if have_sf:  # both compute the same numbers
            diff = abs(ours(4, torch.float64, device)().cpu().numpy() - theirs(4)()).max()
            if not diff < 1e-6:
                raise SystemExit(f"{name}: qtransfer and Strawberry Fields differ by {diff:.2e}")
        for batch in args.batch:
            f64 = batch / _time(ours(batch, torch.float64, device), args.budget)
            f32 = batch / _time(ours(batch, torch.float32, device), args.budget)
            ref = batch / _time(theirs(batch), args.budget, min_repeats=1) if have_sf else None
            ratios = ["n/a" if ref is None else _ratio(x / ref) for x in (f64, f32)]
            row = [name, str(batch), _fmt(f64), _fmt(f32), _fmt(ref), *ratios]
            print("| " + " | ".join(row) + " |", flush=True)
    print("\nstates/s (batch / median time per call); ratios are qtransfer / SF.")


if __name__ == "__main__":
    main()

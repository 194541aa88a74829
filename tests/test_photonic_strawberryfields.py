"""Agreement with Strawberry Fields' ``fock`` backend to 1e-6: every gate, the outputs, and
the paper's QC network A and QQ circuits for random parameters.

Needs ``strawberryfields==0.23.0`` (see docs/photonic.md for the environment); skipped
without it. The Strawberry Fields programs here are written from the notebooks' text,
not from :mod:`qtransfer.photonic.paper`, so a wrong layer there would show.
"""

from __future__ import annotations

import warnings
from importlib import resources

import numpy as np
import pytest
import torch

sf = pytest.importorskip("strawberryfields")
from strawberryfields import ops as sfo  # noqa: E402

from qtransfer.photonic import Op, PhotonicCircuit, measure, paper, simulate, states  # noqa: E402

TOL = 1e-6
SF_GATES = {"D": sfo.Dgate, "S": sfo.Sgate, "R": sfo.Rgate, "K": sfo.Kgate, "V": sfo.Vgate, "BS": sfo.BSgate}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _sf_run(n_modes: int, cutoff: int, body, ket: np.ndarray | None = None):
    """Run ``body(q)`` on ``ket`` (default vacuum) in the fock backend; returns the state."""
    prog = sf.Program(n_modes)
    with prog.context as q:
        if ket is not None:
            sfo.Ket(ket) | (q if n_modes > 1 else q[0])
        body(q)
    eng = sf.Engine("fock", backend_options={"cutoff_dim": cutoff})
    return eng.run(prog).state


def _random_ket(rng: np.random.Generator, n_modes: int, cutoff: int) -> np.ndarray:
    ket = rng.normal(size=(cutoff,) * n_modes) + 1j * rng.normal(size=(cutoff,) * n_modes)
    return ket / np.linalg.norm(ket)


def _random_params(rng: np.random.Generator, gate: str) -> tuple[float, ...]:
    if gate in ("D",):
        return (float(rng.uniform(-2, 2)), float(rng.uniform(-np.pi, np.pi)))
    if gate in ("S",):
        return (float(rng.uniform(-1, 1)), float(rng.uniform(-np.pi, np.pi)))
    if gate == "BS":
        return (float(rng.uniform(-np.pi, np.pi)), float(rng.uniform(-np.pi, np.pi)))
    return (float(rng.uniform(-2, 2)),)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gate", ["D", "S", "R", "K", "V"])
@pytest.mark.parametrize("n_modes, mode, cutoff", [(1, 0, 11), (2, 1, 6)])
def test_one_mode_gates_match(gate, seed, n_modes, mode, cutoff):
    rng = np.random.default_rng(seed)
    params = _random_params(rng, gate)
    ket = _random_ket(rng, n_modes, cutoff)
    want = _sf_run(n_modes, cutoff, lambda q: SF_GATES[gate](*params) | q[mode], ket).ket()
    got = simulate(PhotonicCircuit(n_modes, (Op(gate, (mode,), params),)), torch.tensor(ket)[None])[0]
    np.testing.assert_allclose(got.numpy(), want, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_modes, modes", [(2, (0, 1)), (3, (1, 2)), (3, (0, 2))])
def test_beamsplitter_matches(seed, n_modes, modes):
    rng = np.random.default_rng(seed)
    params, cutoff = _random_params(rng, "BS"), 6
    ket = _random_ket(rng, n_modes, cutoff)
    want = _sf_run(n_modes, cutoff, lambda q: SF_GATES["BS"](*params) | (q[modes[0]], q[modes[1]]), ket).ket()
    got = simulate(PhotonicCircuit(n_modes, (Op("BS", modes, params),)), torch.tensor(ket)[None])[0]
    np.testing.assert_allclose(got.numpy(), want, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_beamsplitter_on_reversed_modes_matches_swapped_modes(seed):
    """BS on (1, 0) is BS on (0, 1) with the two modes' roles exchanged: compare with SF
    run on the transposed ket (see the next test for why not SF's own (1, 0))."""
    rng = np.random.default_rng(seed)
    params, cutoff = _random_params(rng, "BS"), 6
    ket = _random_ket(rng, 2, cutoff)
    want = _sf_run(2, cutoff, lambda q: SF_GATES["BS"](*params) | (q[0], q[1]), ket.T.copy()).ket().T
    got = simulate(PhotonicCircuit(2, (Op("BS", (1, 0), params),)), torch.tensor(ket)[None])[0]
    np.testing.assert_allclose(got.numpy(), want, atol=TOL, rtol=0)


@pytest.mark.xfail(
    strict=True,
    reason="Strawberry Fields 0.23's fock backend applies a two-mode gate on modes "
    "(k, 0) as if on (0, k) (apply_twomode_gate swaps the axes back); qtransfer does not copy that",
)
def test_strawberryfields_reversed_beamsplitter_modes():
    rng = np.random.default_rng(0)
    params, cutoff = _random_params(rng, "BS"), 5
    ket = _random_ket(rng, 2, cutoff)
    want = _sf_run(2, cutoff, lambda q: SF_GATES["BS"](*params) | (q[1], q[0]), ket).ket()
    got = simulate(PhotonicCircuit(2, (Op("BS", (1, 0), params),)), torch.tensor(ket)[None])[0]
    np.testing.assert_allclose(got.numpy(), want, atol=TOL, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gates_on_vacuum_and_outputs_match(dtype):
    """A random two-mode circuit on the vacuum: ket, probabilities, trace, <n>, <x>, <p>."""
    rng = np.random.default_rng(7)
    cutoff = 12
    ops = []
    for _ in range(3):
        for gate, modes in (("D", (0,)), ("S", (1,)), ("BS", (0, 1)), ("R", (0,)), ("K", (1,)), ("V", (0,))):
            ops.append(
                Op(
                    gate,
                    modes,
                    _random_params(rng, gate)
                    if gate not in ("D", "S")
                    else (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-3, 3))),
                )
            )
    circuit = PhotonicCircuit(2, tuple(ops))

    def body(q):
        for op in circuit.ops:
            SF_GATES[op.gate](*op.params) | tuple(q[m] for m in op.modes)

    ref = _sf_run(2, cutoff, body)
    out = simulate(circuit, states.vacuum(2, cutoff, dtype=dtype))
    tol = TOL if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(out[0].numpy(), ref.ket(), atol=tol, rtol=0)
    np.testing.assert_allclose(measure.fock_probabilities(out)[0].numpy(), ref.all_fock_probs(), atol=tol, rtol=0)
    assert abs(measure.norm(out).item() - ref.trace()) < tol
    for mode in (0, 1):
        assert abs(measure.mean_photon(out, mode).item() - ref.mean_photon(mode)[0]) < tol * 10
        assert abs(measure.mean_x(out, mode).item() - ref.quad_expectation(mode, 0)[0]) < tol * 10
        assert abs(measure.mean_p(out, mode).item() - ref.quad_expectation(mode, np.pi / 2)[0]) < tol * 10


# --- the paper's circuits ------------------------------------------------------------------


def _qc_sf_state(alpha: complex, beta: complex, depth: int):
    """QC network A as the notebook writes it (Strawberry Fields 0.23 signatures)."""
    p = np.load(resources.files("qtransfer.photonic").joinpath("data", "trained_params.npy"))
    r1, r2, th1, ph1, th2, ph2, sqr1, sqph1, sqr2, sqph2, dr1, dph1, dr2, dph2, k1, k2 = p
    clip = lambda v: float(np.clip(v, -1, 1))  # noqa: E731  disp_clip = sq_clip = kerr_clip = 1

    def body(q):
        sfo.Dgate(abs(alpha), np.angle(alpha)) | q[0]
        sfo.Dgate(abs(beta), np.angle(beta)) | q[1]
        for i in range(depth):
            sfo.BSgate(float(th1[i]), float(ph1[i])) | (q[0], q[1])
            sfo.Rgate(float(r1[i])) | q[0]
            sfo.Sgate(clip(sqr1[i]), float(sqph1[i])) | q[0]
            sfo.Sgate(clip(sqr2[i]), float(sqph2[i])) | q[1]
            sfo.BSgate(float(th2[i]), float(ph2[i])) | (q[0], q[1])
            sfo.Rgate(float(r2[i])) | q[0]
            sfo.Dgate(clip(dr1[i]), float(dph1[i])) | q[0]
            sfo.Dgate(clip(dr2[i]), float(dph2[i])) | q[1]
            sfo.Kgate(clip(k1[i])) | q[0]
            sfo.Kgate(clip(k2[i])) | q[1]

    return _sf_run(2, paper.QC.cutoff, body)


@pytest.mark.parametrize("depth", [15, 25])
def test_qc_network_a_matches(depth):
    rng = np.random.default_rng(depth)
    clean = paper.qc_amplitudes()
    pick = rng.choice(7, size=2, replace=False)
    noise = rng.normal(scale=paper.QC.noise_scale, size=(2, 2)) + 1j * rng.normal(
        scale=paper.QC.noise_scale, size=(2, 2)
    )
    amps = clean[pick] + noise
    ours = paper.qc_state(torch.tensor(amps), depth=depth)
    feats = paper.qc_features(ours)
    for i, (a, b) in enumerate(amps):
        ref = _qc_sf_state(a, b, depth)
        ket = ref.ket()
        np.testing.assert_allclose(ours[i].numpy(), ket, atol=TOL, rtol=0)
        sub = np.abs(ket[:4, :4])
        np.testing.assert_allclose(feats[i].numpy(), (sub / np.sqrt((sub**2).sum())).ravel(), atol=TOL, rtol=0)
        assert abs(measure.norm(ours[i : i + 1]).item() - ref.trace()) < TOL


def _qq_sf_state(label: int, gen: dict, variant: str, b_params: np.ndarray):
    """QQ as the notebook writes it: |label>, generator, circuit A, 3 layers of circuit B."""
    sq, d, r1, r2, r3, gamma = np.load(resources.files("qtransfer.photonic").joinpath("data", "circuit_A.npy"))[:, 0]
    clip = lambda v: float(np.clip(v, -1, 1))  # noqa: E731
    cutoff = paper.QQ.cutoff
    ket = np.zeros(cutoff, dtype=complex)
    ket[label] = 1

    def body(q):
        sfo.Dgate((1.0 - label) * 1.0, 0) | q[0]
        sfo.Rgate(gen["gen_r1"]) | q[0]
        sfo.Sgate(gen["gen_sq"], 0) | q[0]
        sfo.Rgate(gen["gen_r2"]) | q[0]
        sfo.Rgate(float(r1)) | q[0]
        if variant == "intended":
            sfo.Sgate(clip(sq), 0) | q[0]
        sfo.Rgate(float(r2)) | q[0]
        sfo.Dgate(clip(d), 0) | q[0]
        sfo.Rgate(float(r3)) | q[0]
        sfo.Vgate(clip(gamma)) | q[0]
        for i in range(b_params.shape[1]):
            bsq, bd, br1, br2, br3, bk = b_params[:, i]
            sfo.Rgate(br1) | q[0]
            sfo.Sgate(clip(bsq), 0) | q[0]
            sfo.Rgate(br2) | q[0]
            sfo.Dgate(clip(bd), 0) | q[0]
            sfo.Rgate(br3) | q[0]
            sfo.Vgate(clip(bk)) | q[0]

    return _sf_run(1, cutoff, body, ket)


@pytest.mark.parametrize("variant", ["published", "intended"])
def test_qq_circuit_matches(variant):
    rng = np.random.default_rng(11)
    batch, depth = 4, paper.QQ.q_depth
    labels = np.array([0, 1, 0, 1])
    gen = {
        "gen_d": torch.tensor(1.0 - labels, dtype=torch.float64),
        "gen_sq": torch.tensor(rng.uniform(-paper.QQ.sq_sd, paper.QQ.sq_sd, batch)),
        "gen_r1": torch.tensor(rng.uniform(-paper.QQ.rot_sd, paper.QQ.rot_sd, batch)),
        "gen_r2": torch.tensor(rng.uniform(-paper.QQ.rot_sd, paper.QQ.rot_sd, batch)),
    }
    b = rng.normal(scale=0.5, size=(6, depth))  # trained-looking B (rows sq, d, r1, r2, r3, gamma)
    b[[0, 1, 5]] = np.clip(b[[0, 1, 5]], -paper.QQ.clip, paper.QQ.clip)
    b_params = {}
    for i in range(depth):
        for row, name in enumerate(("sq", "d", "r1", "r2", "r3", "gamma")):
            b_params[f"{name}_{i}"] = torch.tensor(b[row, i])
    out = simulate(paper.qq_circuit(variant), paper.qq_input_state(torch.tensor(labels)), {**gen, **b_params})
    for i in range(batch):
        g = {k: float(v[i]) for k, v in gen.items()}
        ref = _qq_sf_state(int(labels[i]), g, variant, b)
        np.testing.assert_allclose(out[i].numpy(), ref.ket(), atol=TOL, rtol=0)
        assert abs(measure.fock_probabilities(out)[i, 0].item() - ref.fock_prob([0])) < TOL
        assert abs(measure.norm(out[i : i + 1]).item() - ref.trace()) < TOL
        assert abs(measure.mean_photon(out[i : i + 1], 0).item() - ref.mean_photon(0)[0]) < 10 * TOL

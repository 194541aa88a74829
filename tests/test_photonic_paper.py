"""The paper's pre-trained networks: shipped files, structure, settings, and what A was trained to do."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
import torch
from conftest import SHARED

from qtransfer.photonic import measure, paper, simulate

DATA = resources.files("qtransfer.photonic").joinpath("data")
SHA256 = {
    "trained_params.npy": "f529b6ebd87111f6ed4de82df569c8d5e83c4d1dbc1b3bc04182e0ffc6f6037d",
    "circuit_A.npy": "adcc41c80444b5ea5e3bb71f9a3533059007d3c8b788c603c10cc46cd64e0acd",
}

#: Killoran et al.'s targets: the seven tetrominoes on the 4 x 4 grid of photon numbers (n1, n2)
TETROMINOES = {
    "L": ["1000", "1000", "1100", "0000"],
    "O": ["1100", "1100", "0000", "0000"],
    "T": ["1110", "0100", "0000", "0000"],
    "I": ["1000", "1000", "1000", "1000"],
    "S": ["0110", "1100", "0000", "0000"],
    "J": ["0100", "0100", "1100", "0000"],
    "Z": ["1100", "0110", "0000", "0000"],
}


@pytest.mark.parametrize("name", list(SHA256))
def test_shipped_files_are_the_published_ones(name):
    data = DATA.joinpath(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[name]
    original = SHARED / "paper" / "pre_trained" / name
    if original.exists():
        assert original.read_bytes() == data


def test_parameter_shapes():
    assert paper.qc_parameters().shape == (16, 25) and paper.qc_parameters().dtype == np.float32
    assert paper.qq_parameters().shape == (6, 1)


def test_qc_network_a_follows_the_notebook_layer():
    p = paper.qc_parameters()
    a = paper.qc_network_a()
    assert a.n_modes == 2 and len(a.ops) == 10 * paper.QC.depth and a.parameter_names == ()
    layer = a.ops[10:20]  # layer 1
    assert [(op.gate, op.modes) for op in layer] == [
        ("BS", (0, 1)), ("R", (0,)), ("S", (0,)), ("S", (1,)), ("BS", (0, 1)),
        ("R", (0,)), ("D", (0,)), ("D", (1,)), ("K", (0,)), ("K", (1,)),
    ]  # fmt: skip
    assert layer[0].params == (float(p[2, 1]), float(p[3, 1])) and layer[1].params == (float(p[0, 1]),)
    assert layer[7].params == (float(np.clip(p[12, 1], -1, 1)), float(p[13, 1]))
    for op in paper.qc_network_a(25).ops:
        if op.gate in ("S", "D", "K"):
            assert abs(op.params[0]) <= 1.0  # clipped as in the notebook


def test_qc_network_a_full_depth_draws_the_tetrominoes():
    """What network A was pre-trained for: at all 25 layers, the seven coherent inputs give
    photon-number images (n1, n2 < 4, renormalised) shaped like L, O, T, I, S, J, Z."""
    state = paper.qc_state(torch.tensor(paper.qc_amplitudes()), depth=25)
    images = paper.qc_features(state).square().reshape(7, 4, 4)
    for image, (name, rows) in zip(images, TETROMINOES.items()):
        want = torch.tensor([[int(ch) for ch in row] for row in rows], dtype=torch.bool)
        assert torch.equal(image > 0.1, want), name
        assert image[want].min() > 0.12 and image[~want].max() < 0.05, name


def test_qc_features_are_normalised_moduli():
    state = paper.qc_state(torch.tensor(paper.qc_amplitudes()[:3]))
    feats = paper.qc_features(state)
    assert feats.shape == (3, 16) and (feats >= 0).all()
    torch.testing.assert_close(feats.square().sum(1), torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        feats[1].reshape(4, 4), state[1, :4, :4].abs() / state[1, :4, :4].abs().square().sum().sqrt()
    )
    assert (measure.norm(state) < 1).all() and (measure.norm(state) > 0.9).all()  # truncation loss is visible


def test_qc_state_float32_matches_float64():
    amps = torch.tensor(paper.qc_amplitudes() + 0.3 - 0.2j)
    lo, hi = paper.qc_state(amps.to(torch.complex64)), paper.qc_state(amps.to(torch.complex64).to(torch.complex128))
    assert lo.dtype == torch.complex64
    torch.testing.assert_close(lo.to(torch.complex128), hi, atol=5e-6, rtol=0)


def test_qq_variants():
    published, intended = paper.qq_circuit_a("published"), paper.qq_circuit_a("intended")
    sq, d, r1, r2, r3, gamma = (float(v) for v in paper.qq_parameters()[:, 0])
    assert [op.params for op in published.ops] == [(r1,), (r2,), (d, 0.0), (r3,), (gamma,)]
    assert intended.ops[1].gate == "S" and intended.ops[1].params == (sq, 0.0)
    psi = paper.qq_input_state(torch.tensor([0, 1, 1]), dtype=torch.float64)
    gen = {"gen_d": torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), "gen_r1": 0.3, "gen_sq": 0.2, "gen_r2": -0.4}
    make = lambda v: simulate(
        paper.PhotonicCircuit(1, paper.qq_input_circuit().ops + paper.qq_circuit_a(v).ops), psi, gen
    )  # noqa: E731
    p0 = {v: measure.fock_probabilities(make(v))[:, 0] for v in paper.VARIANTS}
    assert (p0["published"] - p0["intended"]).abs().max() > 1e-2  # the missing squeezing matters


def test_qq_circuit_parameters_and_settings():
    c = paper.qq_circuit("intended", q_depth=2)
    assert c.parameter_names[:4] == ("gen_d", "gen_r1", "gen_sq", "gen_r2")
    assert c.parameter_names[4:] == tuple(f"{n}_{i}" for i in range(2) for n in ("r1", "sq", "r2", "d", "r3", "gamma"))
    assert (paper.QQ.cutoff, paper.QQ.q_depth, paper.QQ.batch_size, paper.QC.cutoff, paper.QC.depth) == (
        15,
        3,
        8,
        11,
        15,
    )


def test_errors():
    with pytest.raises(ValueError, match="variant must be one of published, intended, got 'fixed'"):
        paper.qq_circuit_a("fixed")
    with pytest.raises(ValueError, match=r"amplitudes must have shape \(batch, 2\)"):
        paper.qc_state(torch.zeros(3, dtype=torch.complex128))
    with pytest.raises(ValueError, match="amplitudes must be a complex tensor"):
        paper.qc_state(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"labels must be a 1-d tensor of 0 \(Gaussian\) and 1"):
        paper.qq_input_state(torch.tensor([0, 2]))

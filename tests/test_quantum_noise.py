"""Noise: descriptions and their string form, each channel against its closed form, the
density-matrix simulator against the statevector simulator and PennyLane's default.mixed."""

from __future__ import annotations

import math

import pytest

from qtransfer.quantum.noise import Depolarizing, NoiseModel, ReadoutError, ThermalRelaxation, parse_noise

# --- descriptions and parse_noise ---------------------------------------------------------


def test_parse_noise_reads_every_key():
    m = parse_noise("depolarizing:p1=0.001,p2=0.01,readout=0.02,t1=50e-6,t2=70e-6,t_1q=35e-9,t_2q=300e-9")
    assert m.depolarizing == Depolarizing(0.001, 0.01)
    assert m.relaxation == ThermalRelaxation(50e-6, 70e-6, 35e-9, 300e-9)
    assert m.readout == ReadoutError(0.02, 0.02)
    asym = parse_noise("depolarizing:readout_1g0=0.01,readout_0g1=0.03")
    assert asym.readout == ReadoutError(0.01, 0.03) and asym.relaxation is None
    assert parse_noise("none") is None and parse_noise("ideal") is None
    assert not m.is_ideal and parse_noise("depolarizing:p1=0").is_ideal


@pytest.mark.parametrize(
    "text, words",
    [
        ("depolarizing:p3=0.1", ["unknown key 'p3'", "p1, p2"]),
        ("depolarizing:p1=abc", ["p1='abc' is not a number"]),
        ("depolarizing:p1", ["'p1' is not KEY=VALUE"]),
        ("depolarizing:p1=0.1,p1=0.2", ["'p1' given twice"]),
        ("depolarizing:p1=2", ["p1 (1-qubit depolarizing parameter) must be a number in [0, 1.33333]", "2.0"]),
        ("depolarizing:readout=-0.1", ["p1_given_0 (readout) must be a number in [0, 1]"]),
        ("depolarizing:t1=50e-6,t2=70e-6", ["needs t1, t2, t_1q and t_2q", "missing t_1q, t_2q"]),
        ("thermal:p1=0.1", ["needs t1, t2, t_1q and t_2q"]),
        ("depolarizing:t1=50e-6,t2=101e-6,t_1q=1e-8,t_2q=1e-7", ["exceeds 2 T1", "t2 <= 2 * t1"]),
        ("depolarizing:readout=0.1,readout_1g0=0.2", ["not both"]),
        ("bitflip:p=0.1", ["unknown noise 'bitflip:p=0.1'", "depolarizing:p1=0.001"]),
        ("depolarizing:", ["unknown noise"]),
        ("fake_manila", ["not available in this version"]),
    ],
)
def test_parse_noise_errors_name_the_value_and_the_form(text, words):
    with pytest.raises(ValueError) as e:
        parse_noise(text)
    for word in words:
        assert word in str(e.value)


def test_relaxation_checks_its_times():
    with pytest.raises(ValueError, match="T2 = 0.3 exceeds 2 T1 = 0.2"):
        ThermalRelaxation(t1=0.1, t2=0.3, t_1q=0.01, t_2q=0.02)
    with pytest.raises(ValueError, match="t1 must be a positive time, got 0"):
        ThermalRelaxation(t1=0, t2=0.1, t_1q=0.01, t_2q=0.02)
    gamma, lam = ThermalRelaxation(t1=2.0, t2=3.0, t_1q=0.5, t_2q=1.0).damping(0.5)
    assert gamma == pytest.approx(1 - math.exp(-0.25))
    assert math.sqrt(1 - gamma) * math.sqrt(1 - lam) == pytest.approx(math.exp(-0.5 / 3.0))


def test_per_wire_readout():
    m = NoiseModel(readout=(ReadoutError(0.1, 0.2), ReadoutError(0.0, 0.3)))
    assert m.readout_for(1) == ReadoutError(0.0, 0.3)
    with pytest.raises(ValueError, match="readout errors for 2 wires, not for wire 2"):
        m.readout_for(2)

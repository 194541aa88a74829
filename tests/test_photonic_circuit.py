"""The circuit description: validation, parameter names, no torch at import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qtransfer.photonic import GATES, Op, PhotonicCircuit


def test_parameter_names_in_order_of_first_use():
    c = PhotonicCircuit(
        2,
        (Op("D", (0,), ("a", 0.0)), Op("BS", (0, 1), ("t", "a")), Op("K", (1,), ("k",)), Op("R", (0,), ("t",))),
    )
    assert c.parameter_names == ("a", "t", "k")
    assert c.ops[0].params == ("a", 0.0) and isinstance(c.ops[0].params[1], float)


def test_ops_are_normalised_and_hashable():
    op = Op("S", [1], [1, "phi"])
    assert op.modes == (1,) and op.params == (1.0, "phi")
    assert hash(PhotonicCircuit(2, [op])) == hash(PhotonicCircuit(2, (Op("S", (1,), (1.0, "phi")),)))


def test_join_circuits():
    a = PhotonicCircuit(1, (Op("R", (0,), (0.1,)),))
    assert len((a + a).ops) == 2
    with pytest.raises(ValueError, match="cannot join circuits on 1 and 2 modes"):
        a + PhotonicCircuit(2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Op("X", (0,), ()), "unknown gate 'X'; choose one of D, S, R, K, V, BS"),
        (lambda: Op("BS", (0,), (0.1, 0.2)), r"gate 'BS' acts on 2 mode\(s\) given as integers >= 0, got \(0,\)"),
        (lambda: Op("BS", (1, 1), (0.1, 0.2)), r"gate 'BS' needs distinct modes, got \(1, 1\)"),
        (lambda: Op("R", (-1,), (0.1,)), "acts on 1 mode"),
        (lambda: Op("D", (0,), (0.1,)), r"gate 'D' takes 2 parameters \(r, phi\), got 1"),
        (lambda: Op("K", (0,), (True,)), "a parameter is a number or a non-empty name, got True"),
        (lambda: Op("K", (0,), ("",)), "a parameter is a number or a non-empty name"),
        (lambda: PhotonicCircuit(0), "n_modes must be an integer >= 1, got 0"),
        (
            lambda: PhotonicCircuit(2, (Op("R", (2,), (0.1,)),)),
            r"op 0 \('R'\) acts on mode 2 but the circuit has 2 mode",
        ),
    ],
)
def test_errors_name_the_value_and_the_fix(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_every_gate_is_described():
    assert set(GATES) == {"D", "S", "R", "K", "V", "BS"}


def test_import_does_not_load_torch():
    code = (
        "import sys, qtransfer.photonic as p, qtransfer.photonic.paper\n"
        "p.PhotonicCircuit(1, (p.Op('R', (0,), (0.1,)),)); p.paper.qc_network_a()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "p.simulate\nassert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

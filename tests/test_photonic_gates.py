"""Gate matrices: closed forms, exact truncation, unitarity, gradients, batching, dtypes, errors."""

from __future__ import annotations

import math

import pytest
import torch

from qtransfer.photonic import gates

F64, F32 = torch.float64, torch.float32
C128 = torch.complex128


def t(x, dtype=F64):
    return torch.tensor(x, dtype=dtype)


def _ladder(cutoff: int) -> torch.Tensor:
    """Truncated annihilation operator (independent of the package)."""
    return torch.diag(torch.sqrt(torch.arange(1, cutoff, dtype=F64)), 1).to(C128)


def _expm_reference(generator_of_a, cutoff: int, big: int) -> torch.Tensor:
    """exp(G) computed at a large cutoff then cropped: the exact elements up to truncation error."""
    return torch.linalg.matrix_exp(generator_of_a(_ladder(big)))[:cutoff, :cutoff]


def _laguerre(n: int, k: int, x: float) -> float:
    return sum((-1) ** i * math.comb(n + k, n - i) * x**i / math.factorial(i) for i in range(n + 1))


# --- closed forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("r, phi", [(0.3, 0.0), (1.1, -2.0), (2.2, 0.7), (-0.8, 1.3)])
def test_displacement_elements_are_laguerre_closed_form(r, phi):
    c = 12
    d = gates.displacement(t(r), t(phi), c)
    alpha = r * complex(math.cos(phi), math.sin(phi))
    x = abs(alpha) ** 2
    for m in range(c):
        for n in range(c):
            lo, hi = min(m, n), max(m, n)
            val = math.sqrt(math.factorial(lo) / math.factorial(hi)) * math.exp(-x / 2) * _laguerre(lo, hi - lo, x)
            val *= alpha ** (m - n) if m >= n else (-alpha.conjugate()) ** (n - m)
            assert abs(d[m, n].item() - val) < 1e-12, (m, n)


@pytest.mark.parametrize("r, phi", [(0.5, 0.3), (1.5, -1.0)])
def test_displacement_on_vacuum_has_poisson_photon_statistics(r, phi):
    c = 15
    col = gates.displacement(t(r), t(phi), c)[:, 0]
    n = torch.arange(c, dtype=F64)
    poisson = torch.exp(-r * r + n * math.log(r * r) - torch.lgamma(n + 1))
    torch.testing.assert_close(col.abs().square(), poisson, atol=1e-14, rtol=0)
    torch.testing.assert_close(
        torch.angle(col[1:]), torch.remainder(n[1:] * phi + math.pi, 2 * math.pi) - math.pi, atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("r, phi", [(0.4, 0.0), (0.9, 1.2), (-0.6, -2.5)])
def test_squeezed_vacuum_amplitudes_closed_form(r, phi):
    c = 14
    col = gates.squeezing(t(r), t(phi), c)[:, 0]
    w = -complex(math.cos(phi), math.sin(phi)) * math.tanh(r)
    for m in range(c):
        if m % 2:
            assert col[m].item() == 0
            continue
        k = m // 2
        want = w**k * math.sqrt(math.factorial(m)) / (2**k * math.factorial(k)) / math.sqrt(math.cosh(r))
        assert abs(col[m].item() - want) < 1e-13


@pytest.mark.parametrize("r, phi", [(0.3, 0.0), (0.5, 0.0), (0.4, 1.0), (0.4, math.pi)])
def test_squeezed_vacuum_quadrature_variance(r, phi):
    # Var x = (hbar/2)(cosh 2r - sinh 2r cos phi); Var p = (hbar/2)(cosh 2r + sinh 2r cos phi); hbar = 2
    c = 60
    psi = gates.squeezing(t(r), t(phi), c)[:, 0]
    a = _ladder(c)
    x = (a + a.mH) * math.sqrt(gates.HBAR / 2)
    p = -1j * (a - a.mH) * math.sqrt(gates.HBAR / 2)
    var = lambda op: (psi.conj() @ op @ op @ psi).real.item() - (psi.conj() @ op @ psi).real.item() ** 2  # noqa: E731
    assert abs(var(x) - (math.cosh(2 * r) - math.sinh(2 * r) * math.cos(phi))) < 1e-10
    assert abs(var(p) - (math.cosh(2 * r) + math.sinh(2 * r) * math.cos(phi))) < 1e-10
    if phi == 0:
        assert abs(var(x) - math.exp(-2 * r)) < 1e-10


def test_rotation_and_kerr_phases_on_fock_states():
    c = 9
    phi, kappa = 0.37, -1.21
    n = torch.arange(c, dtype=F64)
    torch.testing.assert_close(
        torch.diagonal(gates.rotation(t(phi), c)), torch.polar(torch.ones(c, dtype=F64), phi * n), atol=1e-15, rtol=0
    )
    torch.testing.assert_close(
        torch.diagonal(gates.kerr(t(kappa), c)),
        torch.polar(torch.ones(c, dtype=F64), kappa * n * n),
        atol=1e-13,
        rtol=0,
    )
    assert torch.count_nonzero(gates.kerr(t(kappa), c) - torch.diag_embed(torch.diagonal(gates.kerr(t(kappa), c)))) == 0


def test_rotation_turns_a_coherent_amplitude():
    c = 20
    r, phi, turn = 0.8, 0.3, 1.1
    rotated = gates.rotation(t(turn), c) @ gates.displacement(t(r), t(phi), c)[:, 0]
    torch.testing.assert_close(rotated, gates.displacement(t(r), t(phi + turn), c)[:, 0], atol=1e-14, rtol=0)


@pytest.mark.parametrize("theta, phi", [(0.3, 0.0), (math.pi / 4, 0.5), (1.2, -2.0)])
def test_beamsplitter_mixes_coherent_amplitudes(theta, phi):
    c = 24
    alpha, beta = 0.7 - 0.2j, -0.3 + 0.5j
    tt, rr = math.cos(theta), math.sin(theta) * complex(math.cos(phi), math.sin(phi))

    def coherent2(a, b):
        da = gates.displacement(t(abs(a)), t(math.atan2(a.imag, a.real)), c)[:, 0]
        db = gates.displacement(t(abs(b)), t(math.atan2(b.imag, b.real)), c)[:, 0]
        return (da[:, None] * db[None, :]).reshape(-1)

    out = gates.beamsplitter(t(theta), t(phi), c) @ coherent2(alpha, beta)
    want = coherent2(tt * alpha - rr.conjugate() * beta, rr * alpha + tt * beta)
    torch.testing.assert_close(out, want, atol=1e-12, rtol=0)


def test_beamsplitter_50_50_hong_ou_mandel():
    c = 4
    b = gates.beamsplitter(t(math.pi / 4), t(0.3), c)
    out = b[:, 1 * c + 1]  # |1,1>
    assert abs(out[1 * c + 1].item()) < 1e-15  # no coincidences
    assert abs(abs(out[2 * c].item()) ** 2 - 0.5) < 1e-14 and abs(abs(out[2].item()) ** 2 - 0.5) < 1e-14


@pytest.mark.parametrize("gamma", [0.2, -0.7])
def test_cubic_phase_is_exp_of_truncated_generator(gamma):
    c = 10
    a = _ladder(c)
    x = (a + a.mH) * math.sqrt(gates.HBAR / 2)
    want = torch.linalg.matrix_exp(1j * gamma / (3 * gates.HBAR) * (x @ x @ x))
    torch.testing.assert_close(gates.cubic_phase(t(gamma), c), want, atol=1e-12, rtol=0)


def test_cubic_phase_hbar_scales_the_generator():
    # x^3/(3 hbar) = (hbar/2)^{3/2} q^3 / (3 hbar): V(gamma; hbar=1) = V(gamma (1/2)^{3/2} / (1/3) * (1/6)...)
    c, gamma = 8, 0.4
    v1 = gates.cubic_phase(t(gamma), c, hbar=1.0)
    equivalent = gamma * (0.5**1.5 / 3) / (1.0 / 6)  # hbar = 2 has coefficient 1/6
    torch.testing.assert_close(v1, gates.cubic_phase(t(equivalent), c), atol=1e-13, rtol=0)


# --- exact truncation ----------------------------------------------------------------------


_ALPHA = 0.9 * complex(math.cos(0.4), math.sin(0.4))
_Z = 0.6 * complex(math.cos(-1.0), math.sin(-1.0))
_EXACT_CASES = {
    "D": (lambda c: gates.displacement(t(0.9), t(0.4), c), lambda a: _ALPHA * a.mH - _ALPHA.conjugate() * a),
    "S": (lambda c: gates.squeezing(t(0.6), t(-1.0), c), lambda a: 0.5 * (_Z.conjugate() * a @ a - _Z * a.mH @ a.mH)),
}


@pytest.mark.parametrize("name", list(_EXACT_CASES))
def test_one_mode_gates_are_exact_elements_not_exp_of_truncated_generator(name):
    build, generator = _EXACT_CASES[name]
    c = 8
    exact = _expm_reference(generator, c, 80)
    torch.testing.assert_close(build(c), exact, atol=1e-12, rtol=0)
    # larger cutoffs only add rows/columns
    torch.testing.assert_close(build(c + 5)[:c, :c], build(c), atol=1e-13, rtol=0)
    # ... whereas exp of the truncated generator differs near the cutoff
    naive = torch.linalg.matrix_exp(generator(_ladder(c)))
    assert (naive - exact).abs().max() > 1e-3


def test_beamsplitter_is_exact_elements_of_the_generator():
    c, big, theta, phi = 4, 12, 0.8, 0.6
    a1 = torch.kron(_ladder(big), torch.eye(big, dtype=C128))
    a2 = torch.kron(torch.eye(big, dtype=C128), _ladder(big))
    e = complex(math.cos(phi), math.sin(phi))
    full = torch.linalg.matrix_exp(theta * (e * a1 @ a2.mH - e.conjugate() * a1.mH @ a2))
    keep = torch.tensor([i * big + j for i in range(c) for j in range(c)])
    torch.testing.assert_close(gates.beamsplitter(t(theta), t(phi), c), full[keep][:, keep], atol=1e-12, rtol=0)


# --- unitarity ---------------------------------------------------------------------------


def test_unitarity_where_it_holds():
    c = 7
    eye = torch.eye(c, dtype=C128)
    for u in (gates.rotation(t(0.4), c), gates.kerr(t(0.9), c), gates.cubic_phase(t(0.8), c)):
        torch.testing.assert_close(u @ u.mH, eye, atol=1e-13, rtol=0)
    # D, S: unitary on the low levels once the cutoff is far above them (at cutoff 50 the
    # float64 rounding of the normal-ordered sums is ~1e-9, see docs/photonic.md)
    for u in (gates.displacement(t(0.8), t(1.0), 50), gates.squeezing(t(0.5), t(0.2), 50)):
        torch.testing.assert_close((u @ u.mH)[:c, :c], eye, atol=5e-9, rtol=0)
    # BS: unitary on the blocks of total photon number N < cutoff, which it keeps whole
    b = gates.beamsplitter(t(0.7), t(-0.3), c)
    low = torch.tensor([i * c + j for i in range(c) for j in range(c) if i + j < c])
    torch.testing.assert_close(b[low][:, low] @ b[low][:, low].mH, torch.eye(len(low), dtype=C128), atol=1e-13, rtol=0)
    torch.testing.assert_close(b[low].abs().square().sum(1), torch.ones(len(low), dtype=F64), atol=1e-13, rtol=0)


# --- gradients, batching, dtypes ------------------------------------------------------------

_TWO = {"D": gates.displacement, "S": gates.squeezing, "BS": gates.beamsplitter}
_ONE = {"R": gates.rotation, "K": gates.kerr, "V": gates.cubic_phase}


@pytest.mark.parametrize(
    "name, cutoff", [("D", 2), ("D", 4), ("D", 9), ("S", 2), ("S", 4), ("S", 9), ("BS", 2), ("BS", 4)]
)
def test_gradients_match_finite_differences_two_parameters(name, cutoff):
    # D and S have analytic backward passes that reach beyond the cutoff: every size of edge
    f = _TWO[name]
    r = torch.tensor([0.4, -0.9], dtype=F64, requires_grad=True)
    phi = torch.tensor([0.3, 2.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: f(a, b, cutoff), (r, phi), eps=1e-6, atol=1e-7)


def test_gradients_through_broadcast_parameters():
    r = torch.tensor(0.7, dtype=F64, requires_grad=True)
    phi = torch.tensor([0.3, -1.0, 2.0], dtype=F64, requires_grad=True)
    for f in _TWO.values():
        assert torch.autograd.gradcheck(lambda a, b, f=f: f(a, b, 4), (r, phi), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(_ONE))
def test_gradients_match_finite_differences_one_parameter(name):
    f = _ONE[name]
    x = torch.tensor([0.4, -0.9], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: f(a, 5), (x,), eps=1e-6, atol=1e-7)


def test_gradient_at_zero_is_finite():
    r = torch.zeros((), dtype=F64, requires_grad=True)
    (gates.displacement(r, t(0.5), 6)[1, 0].real + gates.squeezing(r, t(0.0), 6)[2, 0].real).backward()
    # d<1|D|0>/dr = cos(phi) at r = 0; d<2|S|0>/dr = -sqrt(2)/2 at r = 0, phi = 0
    assert abs(r.grad.item() - (math.cos(0.5) - math.sqrt(2) / 2)) < 1e-12


@pytest.mark.parametrize("name", list(_TWO) + list(_ONE))
def test_batched_equals_looped(name):
    r = torch.tensor([[0.1, 0.5], [-0.7, 1.3]], dtype=F64)
    phi = torch.tensor([[0.0, 1.0], [2.0, -3.0]], dtype=F64)
    if name in _TWO:
        batched = _TWO[name](r, phi, 4)
        for idx in [(0, 0), (0, 1), (1, 0), (1, 1)]:
            torch.testing.assert_close(batched[idx], _TWO[name](r[idx], phi[idx], 4), atol=1e-15, rtol=0)
    else:
        batched = _ONE[name](r, 4)
        for idx in [(0, 0), (1, 1)]:
            torch.testing.assert_close(batched[idx], _ONE[name](r[idx], 4), atol=1e-15, rtol=0)


def test_parameters_broadcast():
    out = gates.displacement(torch.tensor([0.1, 0.2, 0.3], dtype=F64), t(0.5), 5)
    assert out.shape == (3, 5, 5)
    torch.testing.assert_close(out[2], gates.displacement(t(0.3), t(0.5), 5))


@pytest.mark.parametrize("name", list(_TWO) + list(_ONE))
def test_float32_matches_float64(name):
    # the same (float32-representable) inputs: the float32 result is the float64 one rounded
    r, phi = t(1.7, F32), t(-0.6, F32)
    c = 15 if name != "BS" else 8
    if name in _TWO:
        lo, hi = _TWO[name](r, phi, c), _TWO[name](r.double(), phi.double(), c)
    else:
        lo, hi = _ONE[name](r, c), _ONE[name](r.double(), c)
    assert lo.dtype == torch.complex64 and hi.dtype == C128
    torch.testing.assert_close(lo.to(C128), hi, atol=1e-7, rtol=0)


def test_large_displacement_in_float32_stays_accurate():
    # |alpha| = 3 at cutoff 15: the normal-ordered sum cancels ~1e4-fold; evaluated in float64
    lo = gates.displacement(t(3.0, F32), t(0.4, F32), 15)
    hi = gates.displacement(t(3.0), t(0.4, F32).double(), 15)
    torch.testing.assert_close(lo.to(C128), hi, atol=1e-7, rtol=0)


# --- errors ----------------------------------------------------------------------------------


def test_errors_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match=r"cutoff must be an integer >= 2.*got 1"):
        gates.displacement(t(0.1), t(0.0), 1)
    with pytest.raises(ValueError, match=r"r must be a float32 or float64 tensor, got torch.complex64"):
        gates.displacement(torch.tensor(0.1 + 0j), t(0.0), 4)
    with pytest.raises(ValueError, match=r"r \(2,\) and phi \(3,\) do not broadcast"):
        gates.squeezing(torch.zeros(2, dtype=F64), torch.zeros(3, dtype=F64), 4)
    with pytest.raises(ValueError, match=r"float32 or float64.*torch.float16"):
        gates.kerr(torch.tensor(0.1, dtype=torch.float16), 4)
    with pytest.raises(ValueError, match=r"hbar must be > 0"):
        gates.cubic_phase(t(0.1), 4, hbar=0.0)


def test_python_numbers_are_accepted_as_float64():
    assert gates.beamsplitter(0.3, 0.1, 3).dtype == C128
    assert gates.rotation(0.3, 3).dtype == C128


@pytest.mark.parametrize("r, cutoff, bound", [(1.0, 15, 1e-13), (3.0, 15, 1e-10), (5.0, 15, 1e-9), (1.5, 25, 1e-10)])
def test_displacement_accuracy_against_high_precision_values(r, cutoff, bound):
    """The regime docs/photonic.md promises: |error| below ``bound`` against 50-digit values."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(50):
        x = mp.mpf(r) ** 2
        exact = torch.zeros(cutoff, cutoff, dtype=F64)
        for m in range(cutoff):
            for n in range(cutoff):
                lo, hi = min(m, n), max(m, n)
                lag = sum((-1) ** i * mp.binomial(hi, lo - i) * x**i / mp.factorial(i) for i in range(lo + 1))
                v = mp.sqrt(mp.factorial(lo) / mp.factorial(hi)) * mp.exp(-x / 2) * lag * mp.mpf(r) ** (hi - lo)
                exact[m, n] = float(v * (-1) ** (n - m) if n > m else v)
    err = (gates.displacement(t(r), t(0.0), cutoff) - exact.to(C128)).abs().max().item()
    assert err < bound

"""Outputs: Fock probabilities, norm, <n>, <x>, <p> against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from qtransfer.photonic import measure, states

F64 = torch.float64


def _coherent2(a: complex, b: complex, cutoff: int) -> torch.Tensor:
    t = lambda v: torch.tensor([v], dtype=F64)  # noqa: E731
    return states.product(
        states.coherent(t(abs(a)), t(math.atan2(a.imag, a.real)), cutoff),
        states.coherent(t(abs(b)), t(math.atan2(b.imag, b.real)), cutoff),
    )


def test_coherent_state_moments():
    a, b = 0.8 - 0.3j, -0.4 + 1.1j
    psi = _coherent2(a, b, 30)  # truncation loss < 1e-20
    for mode, z in ((0, a), (1, b)):
        assert abs(measure.mean_photon(psi, mode).item() - abs(z) ** 2) < 1e-13
        assert abs(measure.mean_x(psi, mode).item() - 2 * z.real) < 1e-13  # sqrt(2 hbar) Re alpha, hbar = 2
        assert abs(measure.mean_p(psi, mode).item() - 2 * z.imag) < 1e-13
        assert abs(measure.mean_x(psi, mode, hbar=1.0).item() - math.sqrt(2) * z.real) < 1e-13
    assert abs(measure.norm(psi).item() - 1) < 1e-13


def test_fock_probabilities_and_norm_show_truncation_loss():
    a = 1.5
    psi = _coherent2(a, 0.0, 5)
    probs = measure.fock_probabilities(psi)
    n = torch.arange(5, dtype=F64)
    poisson = torch.exp(-a * a + n * math.log(a * a) - torch.lgamma(n + 1))
    torch.testing.assert_close(probs[0, :, 0], poisson, atol=1e-15, rtol=0)
    assert probs[0, :, 1:].abs().max().item() == 0
    assert abs(measure.norm(psi).item() - poisson.sum().item()) < 1e-15
    # <n> inside the cutoff, not renormalised: sum n p(n) for n < 5
    assert abs(measure.mean_photon(psi, 0).item() - (n * poisson).sum().item()) < 1e-14


def test_fock_state_has_zero_quadrature_means():
    psi = states.fock([3, 1], 6)
    assert measure.mean_photon(psi, 0).item() == 3 and measure.mean_photon(psi, 1).item() == 1
    assert measure.mean_x(psi, 0).item() == 0 and measure.mean_p(psi, 1).item() == 0


def test_batched_outputs_and_gradients():
    r = torch.tensor([0.2, 0.9], dtype=F64, requires_grad=True)
    psi = states.coherent(r, torch.zeros(2, dtype=F64), 25)
    n = measure.mean_photon(psi, 0)
    (grad,) = torch.autograd.grad(n.sum(), r)
    torch.testing.assert_close(grad, 2 * r.detach(), atol=1e-12, rtol=0)  # d|r|^2/dr


def test_errors():
    with pytest.raises(ValueError, match=r"mode must be an integer in 0..1 for a 2-mode state, got 2"):
        measure.mean_photon(states.vacuum(2, 3), 2)
    with pytest.raises(ValueError, match="complex64/complex128"):
        measure.norm(torch.zeros(1, 3))

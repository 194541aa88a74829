"""State preparation: vacuum, Fock, coherent, products, arbitrary kets."""

from __future__ import annotations

import math

import pytest
import torch

from qtransfer.photonic import gates, states

F64, F32 = torch.float64, torch.float32


def test_vacuum_and_fock_layout():
    v = states.vacuum(3, 4, batch=2)
    assert v.shape == (2, 4, 4, 4) and v.dtype == torch.complex128
    assert v[:, 0, 0, 0].eq(1).all() and v.abs().sum().item() == 2
    f = states.fock([1, 0, 3], 4, dtype=F32)
    assert f.dtype == torch.complex64 and f[0, 1, 0, 3].item() == 1 and f.abs().sum().item() == 1


def test_coherent_is_displaced_vacuum():
    r = torch.tensor([0.0, 0.5, 2.0, -1.0], dtype=F64)
    phi = torch.tensor([0.3, -1.0, 2.5, 0.2], dtype=F64)
    want = gates.displacement(r, phi, 12)[..., :, 0]
    torch.testing.assert_close(states.coherent(r, phi, 12), want, atol=1e-14, rtol=0)


def test_coherent_gradient_matches_finite_differences():
    r = torch.tensor([0.0, 0.7], dtype=F64, requires_grad=True)
    phi = torch.tensor([0.4, -2.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: states.coherent(a, b, 6), (r, phi), eps=1e-6, atol=1e-7)


def test_product_state_is_the_outer_product():
    a = states.coherent(torch.tensor([0.3, 0.9], dtype=F64), torch.tensor([0.1, 0.2], dtype=F64), 5)
    b = states.fock([2], 5)  # batch 1 broadcasts
    c = states.coherent(torch.tensor([0.5, 0.4], dtype=F64), torch.tensor([1.0, -1.0], dtype=F64), 5)
    psi = states.product(a, b, c)
    assert psi.shape == (2, 5, 5, 5)
    want = torch.einsum("bi,j,bk->bijk", a, b[0], c)
    # not bit for bit: with opt_einsum installed (a dependency of some extras) torch.einsum picks
    # another contraction order, which differs in the last bit
    torch.testing.assert_close(psi, want, atol=1e-15, rtol=0)


def test_from_ket_accepts_unbatched_and_real():
    ket = torch.tensor([[0.6, 0.0], [0.0, 0.8]], dtype=F32)
    out = states.from_ket(ket, 2)
    assert out.shape == (1, 2, 2) and out.dtype == torch.complex64
    assert states.from_ket(torch.zeros(3, 4, 4, dtype=torch.complex128), 2).shape == (3, 4, 4)


def test_errors_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match="photon number 5 of mode 1 is outside the cutoff 5"):
        states.fock([0, 5], 5)
    with pytest.raises(ValueError, match="cutoff must be an integer >= 2"):
        states.vacuum(1, 1)
    with pytest.raises(ValueError, match="batch must be an integer >= 1, got 0"):
        states.vacuum(1, 3, batch=0)
    with pytest.raises(ValueError, match=r"has shape \(cutoff,\)\*1 or \(batch,\)\+\(cutoff,\)\*1; got \(2, 3, 4\)"):
        states.from_ket(torch.zeros(2, 3, 4), 1)
    with pytest.raises(ValueError, match="ket 1 has cutoff 4 but ket 0 has 3"):
        states.product(states.fock([0], 3), states.fock([0], 4))
    with pytest.raises(ValueError, match=r"photons \[0\] gives 1 modes but n_modes=2"):
        states.fock([0], 3, n_modes=2)


def test_coherent_norm_shows_truncation():
    psi = states.coherent(torch.tensor(2.0, dtype=F64), torch.tensor(0.0, dtype=F64), 6)
    kept = sum(math.exp(-4.0) * 4.0**n / math.factorial(n) for n in range(6))
    assert abs(psi.abs().square().sum().item() - kept) < 1e-14 and kept < 0.8

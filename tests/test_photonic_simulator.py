"""The simulator: gate placement on modes, batching, fusion, gradients, dtypes, devices, errors."""

from __future__ import annotations

import math

import pytest
import torch

from qtransfer.photonic import Op, PhotonicCircuit, gates, measure, simulator, states
from qtransfer.photonic.simulator import circuit_unitary, simulate

F64, F32 = torch.float64, torch.float32
C128 = torch.complex128


def _random_state(n_modes: int, cutoff: int, batch: int = 2, dtype=C128) -> torch.Tensor:
    psi = torch.randn((batch,) + (cutoff,) * n_modes, dtype=dtype)
    return psi / psi.flatten(1).norm(dim=1).reshape((batch,) + (1,) * n_modes)


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize(
    "gate, params", [("D", (0.4, 0.2)), ("S", (0.3, -1.0)), ("R", (0.8,)), ("K", (0.5,)), ("V", (0.3,))]
)
def test_one_mode_gate_acts_on_its_mode(gate, params, mode):
    c = 4
    psi = _random_state(3, c)
    out = simulate(PhotonicCircuit(3, (Op(gate, (mode,), params),)), psi)
    u = simulator.gate_matrix(gate, params, c)
    spec = {0: "ij,bjkl->bikl", 1: "ij,bkjl->bkil", 2: "ij,bklj->bkli"}[mode]
    torch.testing.assert_close(out, torch.einsum(spec, u, psi), atol=1e-14, rtol=0)


@pytest.mark.parametrize("modes", [(0, 1), (1, 0), (0, 2), (2, 1)])
def test_beamsplitter_acts_on_its_modes_in_order(modes):
    c = 3
    psi = _random_state(3, c)
    out = simulate(PhotonicCircuit(3, (Op("BS", modes, (0.7, 0.3)),)), psi)
    u = gates.beamsplitter(0.7, 0.3, c).reshape(c, c, c, c)  # [m_a, m_b, n_a, n_b]
    letters = ["x", "y", "z"]
    a, b = modes
    src = letters.copy()
    src[a], src[b] = "n", "o"
    dst = letters.copy()
    dst[a], dst[b] = "m", "p"
    want = torch.einsum(f"mpno,b{''.join(src)}->b{''.join(dst)}", u, psi)
    torch.testing.assert_close(out, want, atol=1e-14, rtol=0)


def test_closed_form_displace_rotate_split():
    # D(r, phi) on mode 0, R(turn), then a 50:50 BS: coherent amplitudes follow the classical map
    c = 25
    r, phi, turn, theta, bphi = 0.9, 0.3, 0.5, math.pi / 4, 0.2
    circuit = PhotonicCircuit(2, (Op("D", (0,), (r, phi)), Op("R", (0,), (turn,)), Op("BS", (0, 1), (theta, bphi))))
    out = simulate(circuit, states.vacuum(2, c))
    alpha = r * complex(math.cos(phi + turn), math.sin(phi + turn))
    tr = complex(math.cos(bphi), math.sin(bphi)) * math.sin(theta)
    for mode, z in ((0, math.cos(theta) * alpha), (1, tr * alpha)):
        assert abs(measure.mean_x(out, mode).item() - 2 * z.real) < 1e-12
        assert abs(measure.mean_p(out, mode).item() - 2 * z.imag) < 1e-12
        assert abs(measure.mean_photon(out, mode).item() - abs(z) ** 2) < 1e-12


def _two_mode_circuit() -> PhotonicCircuit:
    return PhotonicCircuit(
        2,
        (
            Op("D", (0,), ("r", "phi")),
            Op("S", (1,), (0.3, 0.1)),
            Op("BS", (0, 1), (0.6, "phi")),
            Op("K", (0,), (0.2,)),
            Op("R", (1,), (0.9,)),
            Op("V", (1,), ("g",)),
            Op("K", (1,), ("k",)),
            Op("S", (0,), ("r", 0.5)),
        ),
    )


def _params(batch: int, dtype=F64) -> dict:
    g = torch.Generator().manual_seed(3)
    return {
        "r": (torch.rand(batch, generator=g, dtype=F64) * 0.8).to(dtype),
        "phi": (torch.rand(batch, generator=g, dtype=F64) * 6 - 3).to(dtype),
        "g": torch.tensor(0.25, dtype=dtype),  # one value for the whole batch
        "k": (torch.rand(batch, generator=g, dtype=F64) - 0.5).to(dtype),
    }


def test_batched_equals_looped():
    circuit, c = _two_mode_circuit(), 6
    p = _params(4)
    psi = _random_state(2, c, batch=4)
    out = simulate(circuit, psi, p)
    for i in range(4):
        one = {k: (v[i] if v.dim() else v) for k, v in p.items()}
        torch.testing.assert_close(out[i : i + 1], simulate(circuit, psi[i : i + 1], one), atol=1e-14, rtol=0)


def test_fused_equals_unfused_and_is_cached():
    circuit, c = _two_mode_circuit(), 5
    p = _params(3)
    psi = _random_state(2, c, batch=3)
    simulator._fixed_unitary.cache_clear()
    torch.testing.assert_close(simulate(circuit, psi, p), simulate(circuit, psi, p, fuse=False), atol=1e-14, rtol=0)
    simulate(circuit, psi, p)
    info = simulator._fixed_unitary.cache_info()
    assert info.misses == 1 and info.hits == 1  # K(0.2), R(0.9) is the only run of >= 2 fixed gates


def test_circuit_unitary_columns_are_outputs_of_basis_states():
    circuit = PhotonicCircuit(2, (Op("BS", (0, 1), (0.4, 0.1)), Op("S", (0,), (0.2, 0.0)), Op("D", (1,), (0.3, 1.0))))
    c = 4
    u = circuit_unitary(circuit, c)
    psi = _random_state(2, c, batch=3)
    torch.testing.assert_close(simulate(circuit, psi).reshape(3, -1), psi.reshape(3, -1) @ u.T, atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match="needs scalar parameters; 'x' has shape"):
        circuit_unitary(PhotonicCircuit(1, (Op("R", (0,), ("x",)),)), 3, {"x": torch.zeros(2)})


def test_gradients_match_finite_differences():
    circuit, c = _two_mode_circuit(), 4
    p = _params(2)
    names = ("r", "phi", "g", "k")
    psi = _random_state(2, c, batch=2)

    def f(*values):
        out = simulate(circuit, psi, dict(zip(names, values)))
        return measure.fock_probabilities(out), measure.mean_x(out, 1)

    inputs = tuple(p[n].clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7)


def test_gradient_closed_form_displacement_photon_number():
    # <n> of D(r)|0> is r^2: d/dr = 2r (cutoff far above the state)
    r = torch.tensor([0.3, 1.2], dtype=F64, requires_grad=True)
    out = simulate(PhotonicCircuit(1, (Op("D", (0,), ("r", 0.0)),)), states.vacuum(1, 30, batch=2), {"r": r})
    (grad,) = torch.autograd.grad(measure.mean_photon(out, 0).sum(), r)
    torch.testing.assert_close(grad, 2 * r.detach(), atol=1e-12, rtol=0)


def test_float32_matches_float64():
    circuit, c = _two_mode_circuit(), 8
    psi64 = _random_state(2, c, batch=3)
    p32 = _params(3, F32)
    p64 = {k: v.double() for k, v in p32.items()}  # the same numbers
    out32 = simulate(circuit, psi64.to(torch.complex64), p32)
    out64 = simulate(circuit, psi64.to(torch.complex64).to(C128), p64)
    assert out32.dtype == torch.complex64
    torch.testing.assert_close(out32.to(C128), out64, atol=2e-6, rtol=0)


def test_errors_name_the_value_and_the_fix():
    circuit = _two_mode_circuit()
    psi = states.vacuum(2, 4, batch=3)
    with pytest.raises(ValueError, match="missing value.*for parameter.*r, phi, g, k"):
        simulate(circuit, psi)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) zz; the circuit's are r, phi, g, k"):
        simulate(circuit, psi, {**_params(3), "zz": 1.0})
    with pytest.raises(ValueError, match=r"parameter 'r' has shape \(2,\); give a scalar .* shape \(3,\)"):
        simulate(circuit, psi, {**_params(3), "r": torch.zeros(2, dtype=F64)})
    with pytest.raises(ValueError, match=r"the circuit has 2 mode\(s\) but the state has 1"):
        simulate(circuit, states.vacuum(1, 4), _params(1))
    with pytest.raises(ValueError, match="complex64/complex128"):
        simulate(circuit, torch.zeros(3, 4, 4), _params(3))
    with pytest.raises(ValueError, match=r"a one-mode gate on cutoff 4 is \(4, 4\), got \(3, 3\)"):
        simulator.apply_one_mode(psi, torch.eye(3, dtype=C128), 0)
    with pytest.raises(ValueError, match="mode must be an integer in 0..1"):
        simulator.apply_one_mode(psi, torch.eye(4, dtype=C128), 5)
    with pytest.raises(ValueError, match="a batch of 2 gates cannot act on a batch of 3 states"):
        simulator.apply_one_mode(psi, torch.eye(4, dtype=C128).expand(2, 4, 4), 0)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


@needs_cuda
def test_cuda_matches_cpu():
    circuit, c = _two_mode_circuit(), 6
    psi = _random_state(2, c, batch=3)
    p = _params(3)
    cpu = simulate(circuit, psi, p)
    gpu = simulate(circuit, psi.cuda(), {k: v.cuda() for k, v in p.items()})
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-12, rtol=0)

"""Gate matrices in the truncated Fock basis ``|0>, ..., |cutoff-1>`` of each mode.

Every function takes real parameter tensors of any (common, broadcastable) batch shape
and returns complex matrices of shape ``batch + (cutoff, cutoff)`` (one mode) or
``batch + (cutoff**2, cutoff**2)`` (two modes; row ``m1 * cutoff + m2`` is
``<m1, m2|``): complex64 for float32 parameters, complex128 for float64. They are
differentiable by autograd; D, S and the phases of R, K, V have analytic backward passes
(``dD/dphi = i (m - n) D``, ``dD/dr = (e^{i phi} a^dagger - e^{-i phi} a) D`` with D built one
level beyond the cutoff, and likewise for S), which take fewer operations than
differentiating the construction.

Conventions (Strawberry Fields', so that numbers agree): ``hbar = 2`` by default,
``x = sqrt(hbar/2) (a + a^dagger)``, ``p = -i sqrt(hbar/2) (a - a^dagger)``;
``D(r, phi) = exp(alpha a^dagger - alpha* a)`` with ``alpha = r e^{i phi}`` (so
``D(r, phi)|0>`` has ``<a> = r e^{i phi}``); ``S(r, phi) = exp((z* a^2 - z a^dagger^2)/2)``
with ``z = r e^{i phi}`` (``S(r, 0)``, r > 0, squeezes ``x``: ``Var x = (hbar/2) e^{-2r}``);
``R(phi) = exp(i phi n)`` (so ``R(phi)|alpha> = |alpha e^{i phi}>``: a positive phi turns
phase space counter-clockwise);
``K(kappa) = exp(i kappa n^2)``; ``V(gamma) = exp(i gamma x^3 / (3 hbar))``;
``BS(theta, phi) = exp(theta (e^{i phi} a b^dagger - e^{-i phi} a^dagger b))``, which sends
coherent amplitudes ``(alpha, beta)`` to ``(t alpha - r* beta, r alpha + t beta)`` with
``t = cos theta``, ``r = e^{i phi} sin theta``.

How the truncated matrices are computed:

* **D, S, BS: exact matrix elements** of the infinite-dimensional unitary, restricted to
  the cutoff (what Strawberry Fields' ``fock`` backend and The Walrus compute, not the
  exponential of a truncated generator, which differs near the cutoff). D and S use
  normal-ordered (disentangled) forms, ``D = e^{-|alpha|^2/2} e^{alpha a^dagger} e^{-alpha* a}``
  and ``S = e^{-w a^dagger^2/2} (cosh r)^{-(n+1/2)} e^{w* a^2/2}`` with ``w = e^{i phi} tanh r``:
  in each product the middle index never exceeds ``min(m, n)``, so the product of the
  truncated factors *is* the truncated matrix. Each factor is a table of constants
  (precomputed once per cutoff) times powers of one complex number: a few batched
  tensor operations, no loop over Fock indices. BS conserves the total photon number
  ``N``; each element is ``e^{i phi (n1 - m1)}`` times a polynomial in ``cos theta, sin theta``
  whose integer-derived coefficients are precomputed per cutoff.
  These sums alternate in sign (up to ~1e4-fold cancellation at cutoff 15 and |alpha| ~ 3),
  so D, S and BS are always evaluated in float64 and then rounded to the requested
  precision: float32 states carry only the rounding of the final matrices.
* **R, K**: diagonal, exact; the phases ``phi n`` and ``kappa n^2`` are also formed in
  float64 (in float32 ``kappa n^2`` near 200 rad would carry errors of 1e-5).
* **V**: has no finite closed form; like Strawberry Fields' ``fock`` backend we take the
  exponential of the truncated generator, ``exp(i gamma/(3 hbar) X^3)`` with ``X`` the
  ``cutoff x cutoff`` truncation of ``x`` (the cube taken of the truncated matrix). ``X^3``
  is real symmetric: its eigendecomposition is computed once per cutoff and the gate is
  ``Q diag(e^{i gamma lambda/(3 hbar)}) Q^T``. The top Fock levels of V are therefore only
  approximate; keep the state's weight away from the cutoff.

Example:
    >>> import torch
    >>> d = displacement(torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64), 8)
    >>> d.shape, d.dtype
    (torch.Size([8, 8]), torch.complex128)
    >>> round(abs(d[0, 0].item()) ** 2, 6)   # |<0|alpha>|^2 = exp(-|alpha|^2)
    0.778801
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = [
    "HBAR",
    "beamsplitter",
    "check_cutoff",
    "complex_dtype",
    "cubic_phase",
    "displacement",
    "kerr",
    "kerr_phases",
    "rotation",
    "rotation_phases",
    "squeezing",
]

#: Strawberry Fields' default hbar; x = sqrt(hbar/2) (a + a^dagger)
HBAR = 2.0

_F64 = torch.float64
_C128 = torch.complex128


def check_cutoff(cutoff: int) -> int:
    """``cutoff`` (Fock levels per mode, ``|0>..|cutoff-1>``) as an int, or a ValueError.

    Example:
        >>> check_cutoff(1)
        Traceback (most recent call last):
        ...
        ValueError: cutoff must be an integer >= 2 (Fock levels |0>..|cutoff-1> per mode), got 1
    """
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 2:
        raise ValueError(f"cutoff must be an integer >= 2 (Fock levels |0>..|cutoff-1> per mode), got {cutoff!r}")
    return cutoff


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex128 for float64, complex64 for float32 (or a ValueError naming the dtype).

    Example:
        >>> complex_dtype(torch.float32)
        torch.complex64
    """
    if dtype == torch.float64:
        return torch.complex128
    if dtype == torch.float32:
        return torch.complex64
    raise ValueError(f"parameters must be float32 or float64 tensors, got {dtype}; convert with .float() or .double()")


def _real(x: torch.Tensor | float, name: str) -> torch.Tensor:
    """A real floating tensor (python numbers become float64)."""
    if not isinstance(x, torch.Tensor):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"{name} must be a real tensor or number, got {type(x).__name__}")
        return torch.tensor(float(x), dtype=_F64)
    if x.is_complex() or not x.is_floating_point():
        raise ValueError(f"{name} must be a float32 or float64 tensor, got {x.dtype}; gate parameters are real")
    complex_dtype(x.dtype)
    return x


def _pair(a: torch.Tensor | float, b: torch.Tensor | float, names: tuple[str, str]):
    a, b = _real(a, names[0]), _real(b, names[1])
    if a.device != b.device:
        raise ValueError(f"{names[0]} is on {a.device} but {names[1]} on {b.device}; put both on one device")
    out = complex_dtype(torch.promote_types(a.dtype, b.dtype))
    if a.shape == b.shape:
        return a, b, out
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(f"{names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} do not broadcast") from None
    return a.expand(shape), b.expand(shape), out


def _powers(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x**j`` for ``j = 0..n-1`` along a new last axis (float64; gradient 0 at j = 0, x = 0)."""
    j = torch.arange(n, dtype=_F64, device=x.device)
    return torch.pow(x.to(_F64).unsqueeze(-1), j)


def _phases(phi: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``e^{i k phi}`` for every entry of the 1-d (real, float64) tensor ``k``, along a new last axis."""
    if torch.is_grad_enabled() and phi.requires_grad:
        return _Phases.apply(phi, k)
    angle = phi.unsqueeze(-1) * k
    return torch.polar(torch.ones_like(angle), angle)


class _Phases(torch.autograd.Function):
    """``e^{i k phi}`` with the backward ``d/dphi = i k e^{i k phi}`` in two operations."""

    @staticmethod
    def forward(ctx, phi: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        angle = phi.unsqueeze(-1) * k
        out = torch.polar(torch.ones_like(angle), angle)
        ctx.save_for_backward(out, k)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out, k = ctx.saved_tensors
        return -(grad.conj() * out).imag @ k, None  # Re(conj(g) i k e) = -k Im(conj(g) e)


# --- D and S: normal-ordered products of triangular factors ------------------------------


@lru_cache(maxsize=32)
def _ladder_tables(cutoff: int, step: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Constants of ``<m| (c a^dagger)^{step j} / j! |k>`` (``m - k = step * j``), float64:

    ``coef[m, k] = sqrt(m!/k!) / j!`` (0 where ``m - k`` is not a multiple of ``step`` >= 0),
    ``index[m, k] = j`` (the power of ``c``), the powers ``j`` themselves, ``(-1)^j``, and
    ``n + 1/2`` for ``n < cutoff``.
    """
    m = torch.arange(cutoff, dtype=_F64, device=device)
    diff = m[:, None] - m[None, :]
    j = torch.div(diff, step, rounding_mode="floor").clamp(min=0)
    valid = (diff >= 0) & (torch.remainder(diff, step) == 0)
    log = 0.5 * (torch.lgamma(m[:, None] + 1) - torch.lgamma(m[None, :] + 1)) - torch.lgamma(j + 1)
    coef = torch.where(valid, torch.exp(log), torch.zeros_like(log))
    powers = torch.arange((cutoff - 1) // step + 1, dtype=_F64, device=device)
    sign = 1.0 - 2.0 * torch.remainder(powers, 2)
    return coef, j.long(), powers, sign, m + 0.5


def displacement(r: torch.Tensor | float, phi: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """D(r, phi) = exp(alpha a^dagger - alpha* a), alpha = r e^{i phi}: exact truncated matrix elements.

    Example:
        >>> import torch
        >>> d = displacement(torch.tensor([0.3, 1.0]), torch.tensor([0.0, 1.5]), 6)
        >>> d.shape, d.dtype
        (torch.Size([2, 6, 6]), torch.complex64)
        >>> torch.allclose(d[0, 1, 0], torch.tensor(0.3 * torch.exp(torch.tensor(-0.045)).item() + 0j))
        True
    """
    return _in_float64(_displacement, _Displacement, r, phi, cutoff)


def _in_float64(compute, function, r, phi, cutoff: int) -> torch.Tensor:
    """``compute(r, phi, cutoff)`` in float64 (through the autograd ``function`` when a gradient is
    wanted), rounded to the precision of the inputs."""
    cutoff = check_cutoff(cutoff)
    r, phi, out = _pair(r, phi, ("r", "phi"))
    r64, phi64 = r.to(_F64), phi.to(_F64)
    if torch.is_grad_enabled() and (r64.requires_grad or phi64.requires_grad):
        return function.apply(r64, phi64, cutoff).to(out)
    return compute(r64, phi64, cutoff).to(out)


def _displacement(r: torch.Tensor, phi: torch.Tensor, cutoff: int) -> torch.Tensor:
    """The float64 computation of :func:`displacement` (complex128)."""
    coef, index, j, sign, _ = _ladder_tables(cutoff, 1, r.device)
    alpha_pow = torch.pow(r.unsqueeze(-1), j) * _phases(phi, j)  # alpha^j (r may be < 0: no polar(r^j, .))
    lower = alpha_pow[..., index] * coef  # <m| e^{alpha a^dag} |k>
    upper = (alpha_pow.conj() * sign)[..., index] * coef  # <n| e^{-alpha a^dag} |k>* = <k| e^{-alpha* a} |n>
    return (lower * torch.exp(-0.5 * r * r)[..., None, None]) @ upper.mT


@lru_cache(maxsize=32)
def _derivative_tables(cutoff: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Float64 columns ``sqrt(m)``, ``sqrt(m+1)``, ``sqrt(m(m-1))``, ``sqrt((m+1)(m+2))`` for
    ``m < cutoff`` (the factors of ``a^dagger, a, a^dagger^2, a^2``) and the ``m - n`` table."""
    m = torch.arange(cutoff, dtype=_F64, device=device)[:, None]
    factors = (m.sqrt(), (m + 1).sqrt(), (m * (m - 1)).sqrt(), ((m + 1) * (m + 2)).sqrt())
    return (*factors, m - m.T)


def _real_grad(grad: torch.Tensor, derivative: torch.Tensor) -> torch.Tensor:
    """Gradient of a real loss w.r.t. a real parameter from the gradient of a complex matrix."""
    return (grad.conj() * derivative).real.sum((-2, -1))


class _Displacement(torch.autograd.Function):
    """D with an analytic backward: ``dD/dphi = i (m - n) D`` (``D(r e^{i phi}) = R(phi) D(r) R(-phi)``)
    and ``dD/dr = (e^{i phi} a^dagger - e^{-i phi} a) D``, exact with D computed one level
    beyond the cutoff. Fewer operations than differentiating the construction."""

    @staticmethod
    def forward(ctx, r: torch.Tensor, phi: torch.Tensor, cutoff: int) -> torch.Tensor:
        big = _displacement(r, phi, cutoff + 1)
        ctx.cutoff = cutoff
        ctx.save_for_backward(big, phi)
        return big[..., :cutoff, :cutoff]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        big, phi = ctx.saved_tensors
        c = ctx.cutoff
        up, down, _, _, diff = _derivative_tables(c, big.device)
        e = torch.polar(torch.ones_like(phi), phi)[..., None, None]
        raising = up * torch.nn.functional.pad(big[..., : c - 1, :c], (0, 0, 1, 0))  # (a^dag D)[m, n]
        lowering = down * big[..., 1 : c + 1, :c]  # (a D)[m, n]
        d_r = e * raising - e.conj() * lowering
        d_phi = 1j * diff * big[..., :c, :c]
        return _real_grad(grad, d_r), _real_grad(grad, d_phi), None


def squeezing(r: torch.Tensor | float, phi: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """S(r, phi) = exp((z* a^2 - z a^dagger^2)/2), z = r e^{i phi}: exact truncated matrix elements.

    Example:
        >>> import torch
        >>> s = squeezing(torch.tensor(0.4, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64), 10)
        >>> round(abs(s[0, 0].item()) ** 2, 6)   # |<0|S|0>|^2 = 1/cosh r
        0.925007
        >>> s[1, 0].item() == 0   # S|0> has only even photon numbers
        True
    """
    return _in_float64(_squeezing, _Squeezing, r, phi, cutoff)


def _squeezing(r: torch.Tensor, phi: torch.Tensor, cutoff: int) -> torch.Tensor:
    """The float64 computation of :func:`squeezing` (complex128)."""
    coef, index, j, sign, n_half = _ladder_tables(cutoff, 2, r.device)
    w = -0.5 * torch.tanh(r)
    w_pow = torch.pow(w.unsqueeze(-1), j) * _phases(phi, j)  # (-e^{i phi} tanh r / 2)^j
    lower = w_pow[..., index] * coef
    upper = (w_pow.conj() * sign)[..., index] * coef  # transposed (e^{-i phi} tanh r / 2)^j factor
    middle = torch.pow(torch.cosh(r).unsqueeze(-1), -n_half)  # (cosh r)^{-(n + 1/2)}
    return lower @ (middle.unsqueeze(-1) * upper.mT)


class _Squeezing(torch.autograd.Function):
    """S with an analytic backward: ``dS/dphi = i (m - n)/2 S`` (``S(r e^{i phi}) = R(phi/2) S(r) R(-phi/2)``)
    and ``dS/dr = (e^{-i phi} a^2 - e^{i phi} a^dagger^2) S / 2``, exact with S computed two
    levels beyond the cutoff."""

    @staticmethod
    def forward(ctx, r: torch.Tensor, phi: torch.Tensor, cutoff: int) -> torch.Tensor:
        big = _squeezing(r, phi, cutoff + 2)
        ctx.cutoff = cutoff
        ctx.save_for_backward(big, phi)
        return big[..., :cutoff, :cutoff]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        big, phi = ctx.saved_tensors
        c = ctx.cutoff
        _, _, up2, down2, diff = _derivative_tables(c, big.device)
        e = torch.polar(torch.ones_like(phi), phi)[..., None, None]
        # (a^dag^2 S)[m, n] = sqrt(m (m-1)) S[m-2, n];  (a^2 S)[m, n] = sqrt((m+1)(m+2)) S[m+2, n]
        raising = up2 * torch.nn.functional.pad(big[..., : c - 2, :c], (0, 0, 2, 0))
        lowering = down2 * big[..., 2 : c + 2, :c]
        d_r = 0.5 * (e.conj() * lowering - e * raising)
        d_phi = 0.5j * diff * big[..., :c, :c]
        return _real_grad(grad, d_r), _real_grad(grad, d_phi), None


# --- diagonal gates ----------------------------------------------------------------------


def rotation_phases(phi: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """The diagonal ``e^{i phi n}``, ``n = 0..cutoff-1``, of R(phi): shape ``phi.shape + (cutoff,)``.

    Example:
        >>> import torch
        >>> phases = rotation_phases(torch.tensor(torch.pi / 2, dtype=torch.float64), 3)
        >>> torch.allclose(phases, torch.tensor([1, 1j, -1], dtype=torch.complex128))
        True
    """
    cutoff = check_cutoff(cutoff)
    phi = _real(phi, "phi")
    n = _ladder_tables(cutoff, 1, phi.device)[2]
    return _phases(phi.to(_F64), n).to(complex_dtype(phi.dtype))


def kerr_phases(kappa: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """The diagonal ``e^{i kappa n^2}`` of K(kappa): shape ``kappa.shape + (cutoff,)``.

    Example:
        >>> import torch
        >>> kerr_phases(torch.tensor(torch.pi, dtype=torch.float64), 3).real
        tensor([ 1., -1.,  1.], dtype=torch.float64)
    """
    cutoff = check_cutoff(cutoff)
    kappa = _real(kappa, "kappa")
    n = _ladder_tables(cutoff, 1, kappa.device)[2]
    return _phases(kappa.to(_F64), n * n).to(complex_dtype(kappa.dtype))


def rotation(phi: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """R(phi) = exp(i phi n) as a matrix (the simulator applies :func:`rotation_phases` directly).

    Example:
        >>> import torch
        >>> rotation(torch.tensor(0.1), 4).shape
        torch.Size([4, 4])
    """
    return torch.diag_embed(rotation_phases(phi, cutoff))


def kerr(kappa: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """K(kappa) = exp(i kappa n^2) as a matrix (the simulator applies :func:`kerr_phases` directly).

    Example:
        >>> import torch
        >>> kerr(torch.tensor([0.1, 0.2]), 4).shape
        torch.Size([2, 4, 4])
    """
    return torch.diag_embed(kerr_phases(kappa, cutoff))


# --- V: exponential of the truncated generator -------------------------------------------


@lru_cache(maxsize=32)
def _cubic_eig(cutoff: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of ``(a + a^dagger)^3`` truncated to ``cutoff`` levels (float64)."""
    s = torch.sqrt(torch.arange(1, cutoff, dtype=_F64, device=device))
    q = torch.diag(s, 1) + torch.diag(s, -1)  # a + a^dagger, truncated
    lam, vec = torch.linalg.eigh(q @ q @ q)
    return lam, vec


def cubic_phase(gamma: torch.Tensor | float, cutoff: int, hbar: float = HBAR) -> torch.Tensor:
    """V(gamma) = exp(i gamma x^3 / (3 hbar)), x^3 truncated to the cutoff before exponentiating.

    Example:
        >>> import torch
        >>> v = cubic_phase(torch.tensor(0.2, dtype=torch.float64), 8)
        >>> torch.allclose(v @ v.mH, torch.eye(8, dtype=torch.complex128))   # unitary (exp of Hermitian)
        True
    """
    cutoff = check_cutoff(cutoff)
    gamma = _real(gamma, "gamma")
    if not hbar > 0:
        raise ValueError(f"hbar must be > 0, got {hbar!r}")
    lam, vec = _cubic_eig(cutoff, gamma.device)
    scale = (hbar / 2) ** 1.5 / (3 * hbar)  # x^3 = (hbar/2)^{3/2} (a + a^dagger)^3
    phases = _phases(gamma.to(_F64) * scale, lam)
    mat = (vec.to(_C128) * phases.unsqueeze(-2)) @ vec.T.to(_C128)
    return mat.to(complex_dtype(gamma.dtype))


# --- BS: photon-number conserving, polynomial in cos/sin -----------------------------------


@lru_cache(maxsize=16)
def _beamsplitter_tables(cutoff: int, device: torch.device):
    """Non-zero elements of BS(theta, phi) in the truncated two-mode basis.

    Returns ``(flat, total, shift, coef)``: the flat index ``(m1*c + m2) * c**2 + n1*c + n2``
    of each element, its photon number ``N = n1 + n2``, its phase power ``n1 - m1``, and
    ``coef[e, p]`` with element ``= e^{i phi (n1 - m1)} sum_p coef[e, p] cos^p sin^{N-p}``.
    From ``B a^dag B^dag = t a^dag + r b^dag``, ``B b^dag B^dag = t b^dag - r* a^dag``,
    binomial expansion of ``(t a^dag + r b^dag)^{n1} (t b^dag - r* a^dag)^{n2} |0>``.
    """
    c = cutoff
    flat, total, shift, rows = [], [], [], []
    for m1 in range(c):
        for m2 in range(c):
            n_tot = m1 + m2
            for n1 in range(max(0, n_tot - c + 1), min(c - 1, n_tot) + 1):
                n2 = n_tot - n1
                norm = math.sqrt(math.factorial(m1) * math.factorial(m2) / (math.factorial(n1) * math.factorial(n2)))
                row = [0.0] * (2 * c - 1)
                # j a^dag from the n1 factors (t), k b^dag from the n2 factors (t): m1 = j + (n2 - k)
                for j in range(n1 + 1):
                    k = j + n2 - m1
                    if 0 <= k <= n2:
                        row[j + k] += math.comb(n1, j) * math.comb(n2, k) * (-1) ** (n2 - k) * norm
                flat.append((m1 * c + m2) * c * c + n1 * c + n2)
                total.append(n_tot)
                shift.append(n1 - m1)
                rows.append(row)
    as_long = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
    return (
        as_long(flat),
        as_long(total),
        torch.tensor(shift, dtype=_F64, device=device),
        torch.tensor(rows, dtype=_F64, device=device),
    )


def beamsplitter(theta: torch.Tensor | float, phi: torch.Tensor | float, cutoff: int) -> torch.Tensor:
    """BS(theta, phi) on two modes: ``batch + (cutoff**2, cutoff**2)``, row ``m1*cutoff + m2``.

    Exact truncated matrix elements (the gate conserves the photon number, so the
    truncation keeps every element it can).

    Example:
        >>> import torch
        >>> b = beamsplitter(torch.tensor(torch.pi / 4, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64), 3)
        >>> b.shape
        torch.Size([9, 9])
        >>> round(b[3, 1].item().real, 6)   # <1,0|BS|0,1> = -r* = -sin(pi/4)
        -0.707107
    """
    cutoff = check_cutoff(cutoff)
    theta, phi, out = _pair(theta, phi, ("theta", "phi"))
    flat, total, shift, coef = _beamsplitter_tables(cutoff, theta.device)
    n_pow = 2 * cutoff - 1
    t_pow = _powers(torch.cos(theta.to(_F64)), n_pow)  # cos^p
    s_pow = _powers(torch.sin(theta.to(_F64)), n_pow)  # sin^q
    p = torch.arange(n_pow, device=theta.device)
    q = total[:, None] - p[None, :]  # sin power of each (element, p)
    mono = t_pow[..., None, :] * s_pow[..., q.clamp(min=0)]  # (..., nnz, n_pow); coef is 0 where q < 0
    values = (mono * coef).sum(-1) * _phases(phi.to(_F64), shift)
    size = cutoff * cutoff
    mat = torch.zeros(theta.shape + (size * size,), dtype=_C128, device=theta.device)
    mat = mat.index_copy(-1, flat, values.to(_C128))
    return mat.unflatten(-1, (size, size)).to(out)

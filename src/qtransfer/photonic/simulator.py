"""A batched, differentiable truncated-Fock simulator for :class:`PhotonicCircuit` circuits.

Plain functions, one per step: :func:`apply_one_mode`, :func:`apply_two_mode` and
:func:`apply_diagonal` act with a gate on a batch of states; :func:`gate_matrix` builds a
gate from its parameters; :func:`simulate` walks a circuit; :func:`circuit_unitary` is
the truncated matrix of a circuit with fixed parameters.

A state is ``(batch,) + (cutoff,) * n_modes`` (see :mod:`qtransfer.photonic.states`).
A gate parameter given at run time is a real scalar (one gate for the whole batch: one
matrix, applied by a single matrix product) or a tensor of shape ``(batch,)`` (one gate
per state: a batched matrix product). Gates are applied in the truncated space one after
another, exactly as Strawberry Fields' ``fock`` backend does (the truncated matrices are
multiplied, so nothing is renormalised on the way).

What does not depend on run-time parameters is computed once: :func:`simulate` joins
every run of two or more consecutive gates whose parameters are all numbers into one
``cutoff**n_modes`` square matrix (cached per circuit, cutoff, dtype and device), which is
the same product of truncated matrices, evaluated once. A frozen pre-trained network is
then a single matrix product per batch.

Example:
    >>> import torch
    >>> from qtransfer.photonic import Op, PhotonicCircuit, states, measure
    >>> circuit = PhotonicCircuit(1, (Op("D", (0,), ("r", 0.0)),))
    >>> out = simulate(circuit, states.vacuum(1, 12, batch=2), {"r": torch.tensor([0.5, 1.0], dtype=torch.float64)})
    >>> [round(v, 6) for v in measure.mean_photon(out, 0).tolist()]   # |alpha|^2
    [0.25, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import torch

from . import gates
from .circuit import GATES, Op, PhotonicCircuit

__all__ = [
    "FUSE_MAX_DIM",
    "apply_diagonal",
    "apply_one_mode",
    "apply_two_mode",
    "circuit_unitary",
    "gate_matrix",
    "simulate",
]

#: runs of fixed gates are joined into one matrix while cutoff**n_modes is at most this
FUSE_MAX_DIM = 1024

_DIAGONAL = {"R": gates.rotation_phases, "K": gates.kerr_phases}


def _check_state(state: torch.Tensor, n_modes: int | None = None) -> tuple[int, int]:
    """``(n_modes, cutoff)`` of a batched state, or an error that says what shape was expected."""
    if not isinstance(state, torch.Tensor) or not state.is_complex():
        what = state.dtype if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"state must be a complex64/complex128 tensor (see qtransfer.photonic.states), got {what}")
    if state.dim() < 2 or len(set(state.shape[1:])) != 1:
        raise ValueError(f"state must have shape (batch, cutoff, ..., cutoff), got {tuple(state.shape)}")
    modes = state.dim() - 1
    if n_modes is not None and modes != n_modes:
        raise ValueError(f"the circuit has {n_modes} mode(s) but the state has {modes}: shape {tuple(state.shape)}")
    return modes, state.shape[1]


def _check_mode(mode: int, n_modes: int) -> int:
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode < n_modes:
        raise ValueError(f"mode must be an integer in 0..{n_modes - 1} for a {n_modes}-mode state, got {mode!r}")
    return mode


def _apply_last(state: torch.Tensor, matrix: torch.Tensor, width: int) -> torch.Tensor:
    """Act with ``matrix`` (``(d, d)`` or ``(batch, d, d)``) on the last axis (size d) of ``state``."""
    batch = state.shape[0]
    if matrix.dim() == 3 and matrix.shape[0] not in (1, batch):
        raise ValueError(f"a batch of {matrix.shape[0]} gates cannot act on a batch of {batch} states")
    flat = state.reshape(batch, -1, width)
    return (flat @ matrix.to(state.dtype).mT).reshape(state.shape)


def apply_one_mode(state: torch.Tensor, matrix: torch.Tensor, mode: int) -> torch.Tensor:
    """``matrix`` (``(c, c)`` or ``(batch, c, c)``) on ``mode`` of a batch of states.

    Example:
        >>> import torch
        >>> from qtransfer.photonic import states
        >>> flip = torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128)
        >>> apply_one_mode(states.fock([0, 0], 2), flip, 1)[0].real
        tensor([[0., 1.],
                [0., 0.]], dtype=torch.float64)
    """
    n_modes, cutoff = _check_state(state)
    _check_mode(mode, n_modes)
    if matrix.shape[-2:] != (cutoff, cutoff):
        raise ValueError(f"a one-mode gate on cutoff {cutoff} is ({cutoff}, {cutoff}), got {tuple(matrix.shape)}")
    moved = state.movedim(1 + mode, -1)
    return _apply_last(moved, matrix, cutoff).movedim(-1, 1 + mode)


def apply_two_mode(state: torch.Tensor, matrix: torch.Tensor, modes: tuple[int, int]) -> torch.Tensor:
    """``matrix`` (``(c*c, c*c)``, row ``m1*c + m2``, or batched) on ``modes = (m1, m2)``.

    Example:
        >>> import torch
        >>> from qtransfer.photonic import states
        >>> swap = torch.eye(4, dtype=torch.complex128)[[0, 2, 1, 3]]
        >>> apply_two_mode(states.fock([1, 0], 2), swap, (0, 1))[0, 0, 1].item()
        (1+0j)
    """
    n_modes, cutoff = _check_state(state)
    a, b = (_check_mode(m, n_modes) for m in modes)
    if a == b:
        raise ValueError(f"a two-mode gate needs two distinct modes, got {modes!r}")
    d = cutoff * cutoff
    if matrix.shape[-2:] != (d, d):
        raise ValueError(f"a two-mode gate on cutoff {cutoff} is ({d}, {d}), got {tuple(matrix.shape)}")
    moved = state.movedim((1 + a, 1 + b), (-2, -1))
    shape = moved.shape
    out = _apply_last(moved.reshape(*shape[:-2], d), matrix, d).reshape(shape)
    return out.movedim((-2, -1), (1 + a, 1 + b))


def apply_diagonal(state: torch.Tensor, phases: torch.Tensor, mode: int) -> torch.Tensor:
    """Multiply ``mode`` by a diagonal gate ``phases`` (``(c,)`` or ``(batch, c)``).

    Example:
        >>> import torch
        >>> from qtransfer.photonic import gates, states
        >>> apply_diagonal(states.fock([1], 3), gates.rotation_phases(torch.tensor(torch.pi), 3), 0)[0, 1].real
        tensor(-1., dtype=torch.float64)
    """
    n_modes, cutoff = _check_state(state)
    _check_mode(mode, n_modes)
    if phases.shape[-1] != cutoff or phases.dim() > 2:
        raise ValueError(
            f"a diagonal gate on cutoff {cutoff} is ({cutoff},) or (batch, {cutoff}), got {tuple(phases.shape)}"
        )
    if phases.dim() == 2 and phases.shape[0] not in (1, state.shape[0]):
        raise ValueError(f"a batch of {phases.shape[0]} gates cannot act on a batch of {state.shape[0]} states")
    shape = [phases.shape[0] if phases.dim() == 2 else 1] + [1] * n_modes
    shape[1 + mode] = cutoff
    return state * phases.to(state.dtype).reshape(shape)


def gate_matrix(
    gate: str, values: tuple[torch.Tensor | float, ...], cutoff: int, hbar: float = gates.HBAR
) -> torch.Tensor:
    """The matrix of one gate (for ``"R"``/``"K"`` the full diagonal matrix).

    Example:
        >>> gate_matrix("BS", (0.3, 0.1), 4).shape
        torch.Size([16, 16])
    """
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; choose one of {', '.join(GATES)}")
    builders = {
        "D": gates.displacement,
        "S": gates.squeezing,
        "R": gates.rotation,
        "K": gates.kerr,
        "BS": gates.beamsplitter,
    }
    if gate == "V":
        return gates.cubic_phase(*values, cutoff, hbar=hbar)
    return builders[gate](*values, cutoff)


@lru_cache(maxsize=1024)
def _constant(value: float, device: torch.device) -> torch.Tensor:
    """A fixed gate parameter as a float64 scalar tensor (made once per value and device)."""
    return torch.tensor(value, dtype=torch.float64, device=device)


def _resolve(
    op: Op, params: Mapping[str, torch.Tensor | float], batch: int, device: torch.device
) -> tuple[tuple[torch.Tensor, ...], bool]:
    """Parameter tensors of ``op`` (numbers as float64 scalars) and whether any is per-state."""
    values, batched = [], False
    for p in op.params:
        if not isinstance(p, str):
            values.append(_constant(p, device))
            continue
        v = params[p]
        if not isinstance(v, torch.Tensor):
            v = torch.tensor(float(v), dtype=torch.float64, device=device)
        if v.device != device:
            raise ValueError(f"parameter {p!r} is on {v.device} but the state is on {device}; move it with .to()")
        if v.dim() == 1 and v.shape[0] == batch:
            batched = True
        elif v.dim() != 0:
            raise ValueError(
                f"parameter {p!r} has shape {tuple(v.shape)}; give a scalar (one gate for the whole batch) "
                f"or one value per state, shape ({batch},)"
            )
        values.append(v)
    return tuple(values), batched


def _apply_op(state: torch.Tensor, op: Op, values: tuple[torch.Tensor, ...], cutoff: int, hbar: float) -> torch.Tensor:
    if op.gate in _DIAGONAL:
        return apply_diagonal(state, _DIAGONAL[op.gate](values[0], cutoff), op.modes[0])
    matrix = gate_matrix(op.gate, values, cutoff, hbar)
    if op.gate == "BS":
        return apply_two_mode(state, matrix, op.modes)
    return apply_one_mode(state, matrix, op.modes[0])


def _run(state: torch.Tensor, ops: tuple[Op, ...], params: Mapping, cutoff: int, hbar: float) -> torch.Tensor:
    """Apply ``ops`` in order. On one mode, consecutive gates with one value for the whole
    batch are first multiplied together (``cutoff x cutoff`` products, differentiable) and
    applied to the batch once: fewer operations, forward and backward."""
    single_mode = state.dim() == 2
    pending: torch.Tensor | None = None  # product of the scalar gates not yet applied
    for op in ops:
        values, batched = _resolve(op, params, state.shape[0], state.device)
        if single_mode and not batched:
            if op.gate in _DIAGONAL:
                phases = _DIAGONAL[op.gate](values[0], cutoff).to(state.dtype)
                pending = torch.diag_embed(phases) if pending is None else phases.unsqueeze(-1) * pending
            else:
                matrix = gate_matrix(op.gate, values, cutoff, hbar).to(state.dtype)
                pending = matrix if pending is None else matrix @ pending
            continue
        if pending is not None:
            state, pending = _apply_last(state, pending, cutoff), None
        state = _apply_op(state, op, values, cutoff, hbar)
    if pending is not None:
        state = _apply_last(state, pending, cutoff)
    return state


@lru_cache(maxsize=32)
def _fixed_unitary(
    ops: tuple[Op, ...], n_modes: int, cutoff: int, dtype: torch.dtype, device: torch.device, hbar: float
) -> torch.Tensor:
    """The ``cutoff**n_modes`` square matrix of gates with numeric parameters (built in complex128)."""
    dim = cutoff**n_modes
    with torch.no_grad():
        basis = torch.eye(dim, dtype=torch.complex128, device=device).reshape((dim,) + (cutoff,) * n_modes)
        out = _run(basis, ops, {}, cutoff, hbar)
    return out.reshape(dim, dim).T.contiguous().to(dtype)


def _segments(circuit: PhotonicCircuit, fuse: bool, dim: int) -> list[tuple[bool, tuple[Op, ...]]]:
    """Split the ops into runs: ``(True, ops)`` for a run of >= 2 fixed gates to join, else ``(False, ops)``."""
    if not fuse or dim > FUSE_MAX_DIM:
        return [(False, circuit.ops)]
    out: list[tuple[bool, list[Op]]] = []
    for op in circuit.ops:
        fixed = not any(isinstance(p, str) for p in op.params)
        if out and out[-1][0] == fixed:
            out[-1][1].append(op)
        else:
            out.append((fixed, [op]))
    return [(fixed and len(ops) > 1, tuple(ops)) for fixed, ops in out]


def simulate(
    circuit: PhotonicCircuit,
    state: torch.Tensor,
    params: Mapping[str, torch.Tensor | float] | None = None,
    *,
    fuse: bool = True,
    hbar: float = gates.HBAR,
) -> torch.Tensor:
    """Run ``circuit`` on a batch of states; ``params`` gives every named parameter.

    ``fuse=False`` applies every gate on its own (same result; for tests and timing).

    Example:
        >>> import torch
        >>> from qtransfer.photonic import Op, PhotonicCircuit, states
        >>> bs = PhotonicCircuit(2, (Op("BS", (0, 1), (torch.pi / 4, 0.0)),))
        >>> out = simulate(bs, states.fock([1, 0], 4))
        >>> round(out.abs().square()[0, 1, 0].item(), 6), round(out.abs().square()[0, 0, 1].item(), 6)
        (0.5, 0.5)
    """
    if not isinstance(circuit, PhotonicCircuit):
        raise TypeError(f"circuit must be a PhotonicCircuit, got {type(circuit).__name__}")
    n_modes, cutoff = _check_state(state, circuit.n_modes)
    gates.check_cutoff(cutoff)
    params = dict(params or {})
    missing = [n for n in circuit.parameter_names if n not in params]
    if missing:
        raise ValueError(f"missing value(s) for parameter(s) {', '.join(missing)}; pass them in params")
    unknown = sorted(set(params) - set(circuit.parameter_names))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)}; the circuit's are {', '.join(circuit.parameter_names) or '(none)'}"
        )
    for joined, ops in _segments(circuit, fuse, cutoff**n_modes):
        if joined:
            u = _fixed_unitary(ops, n_modes, cutoff, state.dtype, state.device, float(hbar))
            state = (state.reshape(state.shape[0], -1) @ u.mT).reshape(state.shape)
        else:
            state = _run(state, ops, params, cutoff, hbar)
    return state


def circuit_unitary(
    circuit: PhotonicCircuit,
    cutoff: int,
    params: Mapping[str, torch.Tensor | float] | None = None,
    *,
    dtype: torch.dtype = torch.complex128,
    device: torch.device | str | None = None,
    hbar: float = gates.HBAR,
) -> torch.Tensor:
    """The truncated ``cutoff**n_modes`` square matrix of a circuit (scalar parameters only).

    Column ``j`` is the output for the basis state ``j`` (mode 0 most significant).

    Example:
        >>> from qtransfer.photonic import Op, PhotonicCircuit
        >>> u = circuit_unitary(PhotonicCircuit(1, (Op("R", (0,), (0.5,)),)), 3)
        >>> u.shape, round(u[1, 1].imag.item(), 6)
        (torch.Size([3, 3]), 0.479426)
    """
    cutoff = gates.check_cutoff(cutoff)
    dim = cutoff**circuit.n_modes
    for name, v in (params or {}).items():
        if isinstance(v, torch.Tensor) and v.dim() != 0:
            raise ValueError(f"circuit_unitary needs scalar parameters; {name!r} has shape {tuple(v.shape)}")
    basis = torch.eye(dim, dtype=dtype, device=device).reshape((dim,) + (cutoff,) * circuit.n_modes)
    out = simulate(circuit, basis, params, fuse=False, hbar=hbar)
    return out.reshape(dim, dim).T

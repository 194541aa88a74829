"""One description of a photonic (continuous-variable) circuit; the simulator reads it.

A circuit acts on ``n_modes`` optical modes and is a sequence of :class:`Op`. Every
gate parameter is either a number (fixed when the circuit is written down) or a
*name*: its value is given when the circuit is run, as a scalar (the same for every
state of the batch) or one value per state. Nothing here needs torch.

Gates (conventions of Strawberry Fields, hbar = 2; ``a`` is the annihilation operator,
``n = a^dagger a``, ``x = sqrt(hbar/2) (a + a^dagger)``):

    ``"D"``  (r, phi)      displacement ``exp(alpha a^dagger - alpha* a)``, ``alpha = r e^{i phi}``
    ``"S"``  (r, phi)      squeezing ``exp((z* a^2 - z a^dagger^2) / 2)``, ``z = r e^{i phi}``
    ``"R"``  (phi,)        rotation ``exp(i phi n)``
    ``"K"``  (kappa,)      Kerr ``exp(i kappa n^2)``
    ``"V"``  (gamma,)      cubic phase ``exp(i gamma x^3 / (3 hbar))``
    ``"BS"`` (theta, phi)  beamsplitter ``exp(theta (e^{i phi} a b^dagger - e^{-i phi} a^dagger b))``
                           on modes ``(a, b)``

Example:
    >>> c = PhotonicCircuit(2, (Op("D", (0,), ("r", 0.0)), Op("BS", (0, 1), (0.7854, 0.0))))
    >>> c.parameter_names
    ('r',)
    >>> c.ops[1]
    Op(gate='BS', modes=(0, 1), params=(0.7854, 0.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

__all__ = ["GATES", "Op", "PhotonicCircuit"]

#: gate name -> (number of modes, parameter names)
GATES: dict[str, tuple[int, tuple[str, ...]]] = {
    "D": (1, ("r", "phi")),
    "S": (1, ("r", "phi")),
    "R": (1, ("phi",)),
    "K": (1, ("kappa",)),
    "V": (1, ("gamma",)),
    "BS": (2, ("theta", "phi")),
}


@dataclass(frozen=True)
class Op:
    """One gate: its name (a key of :data:`GATES`), the modes it acts on, and its
    parameters (numbers, or names given at run time).

    Example:
        >>> Op("S", (1,), (0.5, "phase"))
        Op(gate='S', modes=(1,), params=(0.5, 'phase'))
        >>> Op("S", (1,), (0.5,))
        Traceback (most recent call last):
        ...
        ValueError: gate 'S' takes 2 parameters (r, phi), got 1: (0.5,)
    """

    gate: str
    modes: tuple[int, ...]
    params: tuple[float | str, ...]

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ValueError(f"unknown gate {self.gate!r}; choose one of {', '.join(GATES)}")
        n_modes, names = GATES[self.gate]
        modes = tuple(self.modes)
        if len(modes) != n_modes or any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in modes):
            raise ValueError(f"gate {self.gate!r} acts on {n_modes} mode(s) given as integers >= 0, got {self.modes!r}")
        if len(set(modes)) != len(modes):
            raise ValueError(f"gate {self.gate!r} needs distinct modes, got {self.modes!r}")
        params = tuple(self.params)
        if len(params) != len(names):
            raise ValueError(
                f"gate {self.gate!r} takes {len(names)} parameters ({', '.join(names)}), got {len(params)}: {params!r}"
            )
        for p in params:
            if isinstance(p, bool) or not isinstance(p, (Real, str)) or p == "":
                raise ValueError(f"gate {self.gate!r}: a parameter is a number or a non-empty name, got {p!r}")
        object.__setattr__(self, "modes", modes)
        object.__setattr__(self, "params", tuple(p if isinstance(p, str) else float(p) for p in params))


@dataclass(frozen=True)
class PhotonicCircuit:
    """A sequence of gates on ``n_modes`` modes, applied left to right.

    Example:
        >>> PhotonicCircuit(1, (Op("R", (1,), (0.1,)),))
        Traceback (most recent call last):
        ...
        ValueError: op 0 ('R') acts on mode 1 but the circuit has 1 mode(s) (0..0); add modes or fix the op
    """

    n_modes: int
    ops: tuple[Op, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.n_modes, bool) or not isinstance(self.n_modes, int) or self.n_modes < 1:
            raise ValueError(f"n_modes must be an integer >= 1, got {self.n_modes!r}")
        ops = tuple(self.ops)
        for i, op in enumerate(ops):
            if not isinstance(op, Op):
                raise TypeError(f"op {i} must be an Op, got {type(op).__name__}")
            for m in op.modes:
                if m >= self.n_modes:
                    raise ValueError(
                        f"op {i} ({op.gate!r}) acts on mode {m} but the circuit has {self.n_modes} mode(s) "
                        f"(0..{self.n_modes - 1}); add modes or fix the op"
                    )
        object.__setattr__(self, "ops", ops)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the run-time parameters, in order of first use."""
        seen: dict[str, None] = {}
        for op in self.ops:
            for p in op.params:
                if isinstance(p, str):
                    seen.setdefault(p)
        return tuple(seen)

    def __add__(self, other: PhotonicCircuit) -> PhotonicCircuit:
        """Run ``self`` then ``other`` (same number of modes)."""
        if not isinstance(other, PhotonicCircuit):
            return NotImplemented
        if other.n_modes != self.n_modes:
            raise ValueError(f"cannot join circuits on {self.n_modes} and {other.n_modes} modes")
        return PhotonicCircuit(self.n_modes, self.ops + other.ops)

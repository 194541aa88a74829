"""Noise descriptions for the density-matrix simulator: plain frozen dataclasses, no torch.

A :class:`NoiseModel` says what happens after every gate and at the measurement:

* **depolarizing** (:class:`Depolarizing`): after every 1-qubit gate (embedding gates and
  trainable rotations) ``rho -> (1 - p1) rho + p1 Tr(rho) I/2`` on its wire, after every CNOT
  ``rho -> (1 - p2) rho + p2 Tr(rho) I/4`` on its two wires. This is Qiskit's
  ``depolarizing_error(p, n)`` convention (``p`` is the depolarizing parameter, not the
  probability of a Pauli error); PennyLane's ``DepolarizingChannel(q)`` is ``q = 3 p1 / 4``.
* **thermal relaxation** (:class:`ThermalRelaxation`): after each gate, on each of its wires,
  for the gate's duration ``t``: populations relax towards ``|0>`` as ``exp(-t/T1)``,
  coherences decay as ``exp(-t/T2)`` (amplitude damping ``gamma = 1 - exp(-t/T1)`` followed by
  phase damping ``lambda = 1 - exp(-2t/T2 + t/T1)``; needs ``T2 <= 2 T1``). Applied after the
  depolarizing error, as Qiskit Aer's device models compose them. Idle wires do not decay.
* **readout error** (:class:`ReadoutError`): wire ``q`` reads 1 when it is 0 with probability
  ``p1_given_0`` and 0 when it is 1 with ``p0_given_1``; then
  ``<Z> -> (1 - p1_given_0 - p0_given_1) <Z> + (p0_given_1 - p1_given_0)``.

:func:`parse_noise` reads the ``--noise`` string form.

Example:
    >>> parse_noise("depolarizing:p1=0.001,p2=0.01,readout=0.02").depolarizing
    Depolarizing(p1=0.001, p2=0.01)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "FAKE_DEVICES",
    "NOISE_FORM",
    "Depolarizing",
    "DeviceNoise",
    "NoiseModel",
    "ReadoutError",
    "ThermalRelaxation",
    "parse_noise",
]

#: the calibrated device models ``--noise`` accepts: every 5- to 7-qubit fake backend of
#: ``qiskit_ibm_runtime.fake_provider`` with a noise model (a test checks this list against it)
FAKE_DEVICES = (
    "fake_athens", "fake_belem", "fake_bogota", "fake_burlington", "fake_casablanca", "fake_essex",
    "fake_jakarta", "fake_lagos", "fake_lima", "fake_london", "fake_manila", "fake_nairobi", "fake_oslo",
    "fake_ourense", "fake_perth", "fake_quito", "fake_rome", "fake_santiago", "fake_valencia", "fake_vigo",
    "fake_yorktown",
)  # fmt: skip

#: the accepted string form, quoted by every error of :func:`parse_noise`
NOISE_FORM = (
    "'depolarizing:p1=0.001,p2=0.01,readout=0.02' (keys: p1, p2 depolarizing parameters; readout, "
    "readout_1g0, readout_0g1 readout flip probabilities; t1, t2, t_1q, t_2q in seconds for thermal "
    "relaxation, all four together, e.g. t1=50e-6,t2=70e-6,t_1q=35e-9,t_2q=300e-9), or a calibrated "
    "device such as 'fake_manila' (qtransfer devices lists them)"
)


def _probability(name: str, value: float, upper: float = 1.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= upper:
        raise ValueError(f"{name} must be a number in [0, {upper:g}], got {value!r}")


@dataclass(frozen=True)
class Depolarizing:
    """Depolarizing parameters after 1-qubit gates (``p1``, at most 4/3) and CNOTs (``p2``, at most 16/15)."""

    p1: float = 0.0
    p2: float = 0.0

    def __post_init__(self) -> None:
        _probability("p1 (1-qubit depolarizing parameter)", self.p1, 4 / 3)
        _probability("p2 (2-qubit depolarizing parameter)", self.p2, 16 / 15)


@dataclass(frozen=True)
class ThermalRelaxation:
    """T1, T2 and the gate durations (seconds, any one unit) of thermal relaxation.

    Example:
        >>> r = ThermalRelaxation(t1=50e-6, t2=70e-6, t_1q=35e-9, t_2q=300e-9)
        >>> round(r.damping(r.t_1q)[0], 7)  # gamma = 1 - exp(-t/T1)
        0.0006998
    """

    t1: float
    t2: float
    t_1q: float
    t_2q: float

    def __post_init__(self) -> None:
        for name in ("t1", "t2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive time, got {value!r}")
        for name in ("t_1q", "t_2q"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} (gate duration) must be a time >= 0, got {value!r}")
        if self.t2 > 2 * self.t1:
            raise ValueError(
                f"T2 = {self.t2!r} exceeds 2 T1 = {2 * self.t1!r}: no physical channel has it; use t2 <= 2 * t1"
            )

    def damping(self, duration: float) -> tuple[float, float]:
        """``(gamma, lambda)``: amplitude damping ``1 - exp(-t/T1)`` and the phase damping that
        brings the coherences to ``exp(-t/T2)`` in all, ``1 - exp(-2t/T2 + t/T1)``."""
        gamma = -math.expm1(-duration / self.t1)
        lam = -math.expm1(-2 * duration / self.t2 + duration / self.t1)
        return gamma, max(lam, 0.0)


@dataclass(frozen=True)
class ReadoutError:
    """Probabilities of reading the wrong bit: 1 for a 0 (``p1_given_0``), 0 for a 1 (``p0_given_1``)."""

    p1_given_0: float = 0.0
    p0_given_1: float = 0.0

    def __post_init__(self) -> None:
        _probability("p1_given_0 (readout)", self.p1_given_0)
        _probability("p0_given_1 (readout)", self.p0_given_1)

    def confusion(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``C[m][s]`` = P(read m | state s)."""
        a, b = self.p1_given_0, self.p0_given_1
        return ((1 - a, b), (a, 1 - b))


@dataclass(frozen=True)
class NoiseModel:
    """Gate noise and readout error of a device. ``readout`` is one :class:`ReadoutError` for
    every wire, or a tuple with one per wire.

    Example:
        >>> NoiseModel(depolarizing=Depolarizing(p1=0.01)).is_ideal
        False
        >>> NoiseModel().readout_for(3)
        ReadoutError(p1_given_0=0.0, p0_given_1=0.0)
    """

    depolarizing: Depolarizing = field(default_factory=Depolarizing)
    relaxation: ThermalRelaxation | None = None
    readout: ReadoutError | tuple[ReadoutError, ...] = field(default_factory=ReadoutError)

    def __post_init__(self) -> None:
        readouts = self.readout if isinstance(self.readout, tuple) else (self.readout,)
        if not readouts or not all(isinstance(r, ReadoutError) for r in readouts):
            raise ValueError(f"readout must be a ReadoutError or a tuple of them, got {self.readout!r}")

    def readout_for(self, wire: int) -> ReadoutError:
        """The readout error of ``wire``."""
        if not isinstance(self.readout, tuple):
            return self.readout
        if wire >= len(self.readout):
            raise ValueError(f"the noise model has readout errors for {len(self.readout)} wires, not for wire {wire}")
        return self.readout[wire]

    @property
    def is_ideal(self) -> bool:
        """No noise at all (the density matrix then equals the pure state's)."""
        d = self.depolarizing
        readouts = self.readout if isinstance(self.readout, tuple) else (self.readout,)
        no_readout = all(r.p1_given_0 == 0 and r.p0_given_1 == 0 for r in readouts)
        return d.p1 == 0 and d.p2 == 0 and self.relaxation is None and no_readout


@dataclass(frozen=True)
class DeviceNoise:
    """A calibrated device model by name (``fake_manila``): the noise Qiskit Aer builds from the
    fake backend's calibration, on the circuit as Qiskit transpiles it for that device
    (:mod:`qtransfer.quantum.devices`; needs the ``hardware`` extra).

    Example:
        >>> parse_noise("fake_manila")
        DeviceNoise(name='fake_manila')
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in FAKE_DEVICES:
            raise ValueError(f"unknown device {self.name!r}; choose one of {', '.join(FAKE_DEVICES)} "
                             "(qtransfer devices lists them with their errors)")


_KINDS = ("depolarizing", "thermal")
_KEYS = ("p1", "p2", "readout", "readout_1g0", "readout_0g1", "t1", "t2", "t_1q", "t_2q")


def _parse_pairs(text: str, body: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in body.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"noise {text!r}: {item.strip()!r} is not KEY=VALUE; use the form {NOISE_FORM}")
        if key not in _KEYS:
            raise ValueError(f"noise {text!r}: unknown key {key!r}; accepted keys: {', '.join(_KEYS)}; form {NOISE_FORM}")
        if key in values:
            raise ValueError(f"noise {text!r}: key {key!r} given twice")
        try:
            values[key] = float(raw)
        except ValueError:
            raise ValueError(f"noise {text!r}: {key}={raw.strip()!r} is not a number; use the form {NOISE_FORM}") from None
    return values


def parse_noise(text: str) -> NoiseModel | DeviceNoise | None:
    """A :class:`NoiseModel` from its string form, a :class:`DeviceNoise` from a device name
    (``fake_manila``); ``"none"`` or ``"ideal"`` gives ``None``.

    Example:
        >>> parse_noise("thermal:t1=50e-6,t2=70e-6,t_1q=35e-9,t_2q=300e-9").relaxation.t2
        7e-05
        >>> parse_noise("ideal") is None
        True
    """
    if not isinstance(text, str):
        raise TypeError(f"noise must be a string such as {NOISE_FORM}, got {text!r}")
    if text.strip().lower() in ("none", "ideal"):
        return None
    kind, sep, body = text.partition(":")
    if kind.startswith("fake_") and not sep:
        return DeviceNoise(kind)
    if kind not in _KINDS or not sep or not body.strip():
        raise ValueError(f"unknown noise {text!r}; use {' or '.join(_KINDS)} with keys, e.g. {NOISE_FORM}")
    v = _parse_pairs(text, body)
    thermal = [k for k in ("t1", "t2", "t_1q", "t_2q") if k in v]
    if thermal and len(thermal) < 4 or kind == "thermal" and not thermal:
        missing = [k for k in ("t1", "t2", "t_1q", "t_2q") if k not in v]
        raise ValueError(f"noise {text!r}: thermal relaxation needs t1, t2, t_1q and t_2q; missing {', '.join(missing)}")
    if "readout" in v and ("readout_1g0" in v or "readout_0g1" in v):
        raise ValueError(f"noise {text!r}: give either readout (both directions) or readout_1g0/readout_0g1, not both")
    try:
        relaxation = ThermalRelaxation(v["t1"], v["t2"], v["t_1q"], v["t_2q"]) if thermal else None
        readout = ReadoutError(v.get("readout", v.get("readout_1g0", 0.0)), v.get("readout", v.get("readout_0g1", 0.0)))
        return NoiseModel(Depolarizing(v.get("p1", 0.0), v.get("p2", 0.0)), relaxation, readout)
    except ValueError as e:
        raise ValueError(f"noise {text!r}: {e}") from None

"""The general circuit description: gates on wires, angles from inputs or weights, measurements.

Plain frozen data, no torch (Qiskit's ``QuantumCircuit`` idea): a :class:`Circuit` is a tuple
of :class:`Operation` on ``n_qubits`` wires and a tuple of measurements. Every executor reads
it; templates (:mod:`~qtransfer.quantum.templates`), circuit files
(:mod:`~qtransfer.quantum.circuit_file`) and the PennyLane/Qiskit importers
(:mod:`~qtransfer.quantum.interop`) build it. Wire 0 is the most significant bit of a
basis-state index, as in PennyLane.

Each gate angle is one of
    :class:`Const`   a fixed number;
    :class:`Input`   ``scale * x[i] + shift`` for input feature ``i`` (the same feature may appear
                     on several gates: data re-uploading); ``Input((i, j), ...)`` multiplies
                     features, ``scale * (x[i] - center) * (x[j] - center) + shift`` (IQP, ZZFeatureMap);
    :class:`Weight`  ``scale * w[k] + shift`` for trainable weight ``k`` (flat index into
                     ``weights.reshape(-1)``; the circuit's ``weight_shape`` gives the tensor's shape).

Measurements: :class:`Expval` of a weighted sum of Pauli words (``"Z0 Z1"``, ``"0.5*X2 + Z0"``)
or :class:`Probs` of basis states on some wires. No measurement means ``<Z_i>`` on every wire.

Example:
    >>> c = Circuit(2, (Operation("H", (0,)), Operation("RY", (0,), (Input(0),)),
    ...                 Operation("CNOT", (0, 1)), Operation("RY", (1,), (Weight(0),))),
    ...             measurements=(Expval.parse("Z0 Z1"), Probs((1,))))
    >>> c.n_inputs, c.weight_shape, c.n_outputs, c.ops[0].name
    (1, (1,), 3, 'Hadamard')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = [
    "GATES", "GATE_ALIASES", "Circuit", "Const", "Expval", "GateInfo", "Input", "Operation", "Probs", "Weight",
    "angle_to_data", "canonical_gate", "parse_angle",
]


@dataclass(frozen=True)
class GateInfo:
    """What an executor needs to know of a gate: wires, angles, and its kind (``"diagonal"``,
    ``"permutation"`` or ``"dense"``: the cheapest kernel), and whether its matrix is real."""

    n_wires: int
    n_params: int
    kind: str
    real: bool


#: the supported gates, by PennyLane name (the set PennyLane and Qiskit share)
GATES: dict[str, GateInfo] = {
    "Hadamard": GateInfo(1, 0, "dense", True),
    "PauliX": GateInfo(1, 0, "permutation", True),
    "PauliY": GateInfo(1, 0, "dense", False),
    "PauliZ": GateInfo(1, 0, "diagonal", True),
    "S": GateInfo(1, 0, "diagonal", False),
    "T": GateInfo(1, 0, "diagonal", False),
    "SX": GateInfo(1, 0, "dense", False),
    "RX": GateInfo(1, 1, "dense", False),
    "RY": GateInfo(1, 1, "dense", True),
    "RZ": GateInfo(1, 1, "diagonal", False),
    "PhaseShift": GateInfo(1, 1, "diagonal", False),
    "Rot": GateInfo(1, 3, "dense", False),
    "U3": GateInfo(1, 3, "dense", False),
    "CNOT": GateInfo(2, 0, "permutation", True),
    "CY": GateInfo(2, 0, "dense", False),
    "CZ": GateInfo(2, 0, "diagonal", True),
    "SWAP": GateInfo(2, 0, "permutation", True),
    "CRX": GateInfo(2, 1, "dense", False),
    "CRY": GateInfo(2, 1, "dense", True),
    "CRZ": GateInfo(2, 1, "diagonal", False),
    "IsingXX": GateInfo(2, 1, "dense", False),
    "IsingYY": GateInfo(2, 1, "dense", False),
    "IsingZZ": GateInfo(2, 1, "diagonal", False),
    "Toffoli": GateInfo(3, 0, "permutation", True),
}

#: other spellings (Qiskit's and short ones) -> PennyLane name; matching ignores case
GATE_ALIASES: dict[str, str] = {
    "h": "Hadamard", "x": "PauliX", "y": "PauliY", "z": "PauliZ", "p": "PhaseShift", "phase": "PhaseShift",
    "u": "U3", "cx": "CNOT", "rxx": "IsingXX", "ryy": "IsingYY", "rzz": "IsingZZ", "ccx": "Toffoli",
    "ccnot": "Toffoli",
}
_BY_LOWER = {name.lower(): name for name in GATES} | GATE_ALIASES


def canonical_gate(name: str) -> str:
    """The PennyLane name of a gate (``"cx"`` -> ``"CNOT"``); a ``ValueError`` naming the supported set otherwise."""
    found = _BY_LOWER.get(str(name).lower())
    if found is None:
        raise ValueError(
            f"unsupported gate {name!r}; supported: {', '.join(GATES)} "
            f"(also {', '.join(sorted(a.upper() for a in GATE_ALIASES))})"
        )
    return found


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Const:
    """A fixed angle."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _number(self.value, "a constant angle"))


@dataclass(frozen=True)
class Input:
    """``scale * prod_k (x[index_k] - center) + shift``; one index is the usual ``scale * x[i] + shift``."""

    index: int | tuple[int, ...]
    scale: float = 1.0
    shift: float = 0.0
    center: float = 0.0

    def __post_init__(self) -> None:
        index = (self.index,) if isinstance(self.index, int) and not isinstance(self.index, bool) else self.index
        if not isinstance(index, tuple) or not index or any(
            not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in index
        ):
            raise ValueError(f"an input index must be an integer >= 0 (or a tuple of them), got {self.index!r}")
        object.__setattr__(self, "index", index)
        for name in ("scale", "shift", "center"):
            object.__setattr__(self, name, _number(getattr(self, name), f"input {name}"))


@dataclass(frozen=True)
class Weight:
    """``scale * w[index] + shift`` for trainable weight ``index`` (flat)."""

    index: int
    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.index, int) or isinstance(self.index, bool) or self.index < 0:
            raise ValueError(f"a weight index must be an integer >= 0, got {self.index!r}")
        for name in ("scale", "shift"):
            object.__setattr__(self, name, _number(getattr(self, name), f"weight {name}"))


Angle = Const | Input | Weight

_ANGLE = re.compile(r"^\s*(?:([-+0-9.eE]+|pi)\s*\*\s*)?([xw])\s*\[\s*(\d+)\s*\]\s*(?:([-+])\s*([0-9.eE]+|pi))?\s*$")


def _float_or_pi(text: str) -> float:
    return math.pi if text == "pi" else float(text)


def parse_angle(value) -> Angle:
    """An angle from a number, ``"x[3]"``, ``"2*x[0] + 0.5"``, ``"w[4]"``, ``"pi"`` or an angle object.

    Example:
        >>> parse_angle("2*x[1] - 0.5")
        Input(index=(1,), scale=2.0, shift=-0.5, center=0.0)
        >>> parse_angle("w[3]"), parse_angle(0.25)
        (Weight(index=3, scale=1.0, shift=0.0), Const(value=0.25))
    """
    if isinstance(value, (Const, Input, Weight)):
        return value
    if isinstance(value, dict):  # the saved form, see angle_to_data
        extra = set(value) - {"x", "w", "scale", "shift", "center"}
        if ("x" in value) == ("w" in value) or extra or ("w" in value and "center" in value):
            raise ValueError(f"cannot read the angle {value!r}; a table holds x = INDEX (or [I, J]) or w = INDEX, "
                             "and optionally scale, shift (and center for inputs)")
        kw = {k: value[k] for k in ("scale", "shift", "center") if k in value}
        if "x" in value:
            index = value["x"]
            return Input(tuple(index) if isinstance(index, list) else index, **kw)
        return Weight(value["w"], **kw)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Const(value)
    if isinstance(value, str):
        text = value.strip()
        if text in ("pi", "-pi"):
            return Const(math.pi if text == "pi" else -math.pi)
        match = _ANGLE.match(text)
        if match:
            scale_text, kind, index, sign, shift_text = match.groups()
            try:
                scale = 1.0 if scale_text is None else _float_or_pi(scale_text)
                shift = 0.0 if shift_text is None else _float_or_pi(shift_text) * (-1 if sign == "-" else 1)
            except ValueError:
                pass
            else:
                return Input(int(index), scale, shift) if kind == "x" else Weight(int(index), scale, shift)
        try:
            return Const(float(text))
        except ValueError:
            pass
    raise ValueError(
        f"cannot read the angle {value!r}; write a number, 'x[i]', 'SCALE*x[i] + SHIFT' for an input, or 'w[k]' for a weight"
    )


def angle_to_data(angle: Angle) -> float | dict:
    """The plain-data form of an angle (a number, or ``{"x": i, "scale": ...}`` / ``{"w": k, ...}``), exact.

    Example:
        >>> angle_to_data(Input((0, 1), scale=2.0)), parse_angle(angle_to_data(Weight(3, shift=0.5)))
        ({'x': [0, 1], 'scale': 2.0}, Weight(index=3, scale=1.0, shift=0.5))
    """
    if isinstance(angle, Const):
        return angle.value
    if isinstance(angle, Input):
        data: dict = {"x": angle.index[0] if len(angle.index) == 1 else list(angle.index)}
        defaults = {"scale": 1.0, "shift": 0.0, "center": 0.0}
    else:
        data, defaults = {"w": angle.index}, {"scale": 1.0, "shift": 0.0}
    data.update({k: getattr(angle, k) for k, d in defaults.items() if getattr(angle, k) != d})
    return data


@dataclass(frozen=True)
class Operation:
    """One gate: its (canonical) name, wires, and one angle per parameter."""

    name: str
    wires: tuple[int, ...]
    params: tuple[Angle, ...] = ()

    def __post_init__(self) -> None:
        name = canonical_gate(self.name)
        object.__setattr__(self, "name", name)
        wires = (self.wires,) if isinstance(self.wires, int) else tuple(self.wires)
        info = GATES[name]
        if len(wires) != info.n_wires or any(not isinstance(w, int) or isinstance(w, bool) or w < 0 for w in wires):
            raise ValueError(f"{name} acts on {info.n_wires} wire(s) (integers >= 0), got wires {self.wires!r}")
        if len(set(wires)) != len(wires):
            raise ValueError(f"{name} needs distinct wires, got {wires}")
        object.__setattr__(self, "wires", wires)
        params = tuple(parse_angle(p) for p in (self.params if isinstance(self.params, (tuple, list)) else (self.params,)))
        if len(params) != info.n_params:
            raise ValueError(f"{name} takes {info.n_params} angle(s), got {len(params)}")
        object.__setattr__(self, "params", params)

    @property
    def info(self) -> GateInfo:
        return GATES[self.name]

    @property
    def uses_input(self) -> bool:
        return any(isinstance(p, Input) for p in self.params)


_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*\*?\s*)?((?:[XYZI]\d+\s*)+)")


@dataclass(frozen=True)
class Expval:
    """``<sum_k coeff_k P_k>`` for Pauli words ``P_k``; each word a tuple of ``(pauli, wire)`` pairs.

    Example:
        >>> Expval.parse("0.5*Z0 Z1 - X2").terms
        ((0.5, (('Z', 0), ('Z', 1))), (-1.0, (('X', 2),)))
    """

    terms: tuple[tuple[float, tuple[tuple[str, int], ...]], ...]

    def __post_init__(self) -> None:
        clean = []
        for coeff, word in self.terms:
            pairs = []
            for pauli, wire in word:
                if pauli not in ("X", "Y", "Z"):
                    raise ValueError(f"a Pauli word holds X, Y or Z, got {pauli!r}")
                if not isinstance(wire, int) or isinstance(wire, bool) or wire < 0:
                    raise ValueError(f"a Pauli word's wire must be an integer >= 0, got {wire!r}")
                pairs.append((pauli, wire))
            if len({w for _, w in pairs}) != len(pairs):
                raise ValueError(f"a Pauli word names each wire once, got {word!r}")
            clean.append((_number(coeff, "a Pauli coefficient"), tuple(sorted(pairs, key=lambda p: p[1]))))
        if not clean:
            raise ValueError("an expectation value needs at least one Pauli word")
        object.__setattr__(self, "terms", tuple(clean))

    @classmethod
    def parse(cls, text: str) -> "Expval":
        """From ``"Z0 Z1"``, ``"X2"``, ``"0.5*Z0 Z1 + 0.25*Y3"`` (``I`` factors are dropped)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"an observable is a string such as 'Z0 Z1' or '0.5*Z0 + X1', got {text!r}")
        terms = []
        pos, text_end = 0, len(text.rstrip())
        while pos < text_end:
            match = _TERM.match(text, pos)
            if not match or (terms and match.group(1) is None):
                raise ValueError(
                    f"cannot read observable {text!r} at {text[pos:].strip()!r}; write Pauli words such as "
                    "'Z0 Z1', 'X2' or '0.5*Z0 Z1 - 0.25*Y3'"
                )
            sign, number, body = match.groups()
            coeff = (1.0 if number is None else float(number)) * (-1.0 if sign == "-" else 1.0)
            word = tuple((t[0], int(t[1:])) for t in body.split() if t[0] != "I")
            terms.append((coeff, word))
            pos = match.end()
        return cls(tuple(terms))

    @property
    def wires(self) -> tuple[int, ...]:
        return tuple(sorted({w for _, word in self.terms for _, w in word}))

    @property
    def n_outputs(self) -> int:
        return 1

    def __str__(self) -> str:
        parts = []
        for coeff, word in self.terms:
            body = " ".join(f"{p}{w}" for p, w in word) or "I0"
            if coeff == 1.0:
                parts.append(("+ ", body))
            else:
                parts.append(("- " if coeff < 0 else "+ ", f"{abs(coeff)!r}*{body}"))
        text = " ".join(sign + body for sign, body in parts)
        return text[2:] if text.startswith("+ ") else "-" + text[2:]


@dataclass(frozen=True)
class Probs:
    """Probabilities of the basis states of ``wires`` (the first wire the most significant bit)."""

    wires: tuple[int, ...]

    def __post_init__(self) -> None:
        wires = (self.wires,) if isinstance(self.wires, int) else tuple(self.wires)
        if not wires or len(set(wires)) != len(wires) or any(not isinstance(w, int) or w < 0 for w in wires):
            raise ValueError(f"probabilities need distinct wires (integers >= 0), got {self.wires!r}")
        object.__setattr__(self, "wires", wires)

    @property
    def n_outputs(self) -> int:
        return 2 ** len(self.wires)


Measurement = Expval | Probs


def _max_index(ops: tuple[Operation, ...], kind: type) -> int:
    found = [i for op in ops for p in op.params if isinstance(p, kind) for i in (p.index if kind is Input else (p.index,))]
    return max(found) + 1 if found else 0


@dataclass(frozen=True)
class Circuit:
    """A circuit: ``ops`` on ``n_qubits`` wires, then ``measurements`` (default ``<Z_i>`` on every wire).

    ``n_inputs`` (default: the largest input index + 1) is the width of the input vector ``x``;
    ``weight_shape`` (default: ``(largest weight index + 1,)``) the shape of the weights.
    ``amplitude`` (``AmplitudeEmbedding``) lists input indices whose values, normalised and
    zero-padded to ``2**n_qubits``, are the initial state instead of ``|0...0>``.
    """

    n_qubits: int
    ops: tuple[Operation, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    n_inputs: int | None = None
    weight_shape: tuple[int, ...] | None = None
    amplitude: tuple[int, ...] = ()
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        n = self.n_qubits
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n_qubits must be an integer >= 1, got {n!r}")
        ops = tuple(self.ops)
        for op in ops:
            if not isinstance(op, Operation):
                raise TypeError(f"a circuit's ops are Operation objects, got {op!r}")
            if max(op.wires) >= n:
                raise ValueError(f"{op.name} on wires {op.wires}: wire out of range for {n} qubits (0..{n - 1})")
        object.__setattr__(self, "ops", ops)
        measurements = tuple(Expval.parse(m) if isinstance(m, str) else m for m in self.measurements)
        if not measurements:
            measurements = tuple(Expval(((1.0, (("Z", w),)),)) for w in range(n))
        for m in measurements:
            if not isinstance(m, (Expval, Probs)):
                raise TypeError(f"a measurement is an Expval, a Probs or an observable string, got {m!r}")
            if max(m.wires, default=-1) >= n:
                raise ValueError(f"measurement {m} names a wire out of range for {n} qubits (0..{n - 1})")
        object.__setattr__(self, "measurements", measurements)
        amplitude = tuple(self.amplitude)
        if amplitude and (len(amplitude) > 2**n or any(not isinstance(i, int) or i < 0 for i in amplitude)):
            raise ValueError(f"amplitude embedding takes at most 2**{n} = {2**n} input indices, got {len(amplitude)}")
        object.__setattr__(self, "amplitude", amplitude)
        needed = max(_max_index(ops, Input), max(amplitude, default=-1) + 1)
        n_inputs = needed if self.n_inputs is None else self.n_inputs
        if not isinstance(n_inputs, int) or isinstance(n_inputs, bool) or n_inputs < needed:
            raise ValueError(f"n_inputs={self.n_inputs!r} but the circuit reads input index {needed - 1}")
        object.__setattr__(self, "n_inputs", n_inputs)
        n_weights = _max_index(ops, Weight)
        shape = (n_weights,) if self.weight_shape is None else tuple(self.weight_shape)
        if math.prod(shape) < n_weights or any(not isinstance(s, int) or s < 0 for s in shape):
            raise ValueError(f"weight_shape {shape} holds {math.prod(shape)} weights but the circuit reads weight index {n_weights - 1}")
        object.__setattr__(self, "weight_shape", shape)

    def __hash__(self) -> int:  # computed once: executors look plans up by circuit on every call
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.n_qubits, self.ops, self.measurements, self.n_inputs, self.weight_shape, self.amplitude))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict:
        # not the cached hash: it hashes strings, which another process (a sweep worker) hashes otherwise
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    @property
    def n_weights(self) -> int:
        return math.prod(self.weight_shape)

    @property
    def n_outputs(self) -> int:
        return sum(m.n_outputs for m in self.measurements)

    @property
    def is_real(self) -> bool:
        """True when every gate and measurement keeps amplitudes real (H, X, Z, RY, CNOT, CZ, SWAP, CRY, Toffoli)."""
        cached = self.__dict__.get("_is_real")  # computed once, as the hash: read on every executor call
        if cached is None:
            cached = all(op.info.real for op in self.ops) and not any(
                p == "Y" for m in self.measurements if isinstance(m, Expval) for _, word in m.terms for p, _ in word
            )
            object.__setattr__(self, "_is_real", cached)
        return cached

    def without_entangling(self) -> "Circuit":
        """The product ablation: every multi-wire gate removed (inputs, weights and measurements kept)."""
        ops = tuple(op for op in self.ops if op.info.n_wires == 1)
        return Circuit(self.n_qubits, ops, self.measurements, self.n_inputs, self.weight_shape, self.amplitude,
                       f"{self.name or 'circuit'} without entangling gates")

    def gate_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts

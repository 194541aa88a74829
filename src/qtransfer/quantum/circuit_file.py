"""Circuit files (TOML, YAML or JSON) and the plain-data form of a circuit, in and out (no torch).

A circuit file lists steps, each a template (with its arguments) or a gate (with wires and
angles), optionally repeated with fresh weights (data re-uploading), and the measurements::

    n_qubits = 4
    repeat = 3                       # the steps below, 3 times (new weights each time)
    measure = ["Z0", "Z1", "Z2 Z3"]  # default: <Z_i> on every wire; {probs = [0, 1]} for probabilities

    [[ops]]
    template = "AngleEmbedding"
    rotation = "Y"

    [[ops]]
    template = "StronglyEntanglingLayers"
    n_layers = 1

    [[ops]]
    gate = "CRX"
    wires = [0, 3]
    angle = "w"                      # a new weight; also "x[2]", "0.5*x[1] + 0.1", "w[7]", 0.25

Angles: a number; ``"x[i]"`` / ``"SCALE*x[i] + SHIFT"`` (input feature ``i``); ``"w"`` (the
next new weight) or ``"w[k]"`` (weight ``k`` of the whole circuit); or the table form that
:func:`circuit_to_data` writes (``{x = [0, 1], scale = 2.0, center = 3.14}``). Templates take
their next weights in order. :func:`circuit_to_data` writes every gate out explicitly; reading
it back gives the same :class:`~qtransfer.quantum.description.Circuit` (that is what
``model.pt`` and ``config.json`` hold).

Example:
    >>> c = circuit_from_data({"n_qubits": 2, "ops": [{"template": "AngleEmbedding"},
    ...                        {"gate": "CNOT", "wires": [0, 1]}, {"gate": "RY", "wires": [1], "angle": "w"}]})
    >>> c.gate_counts(), c.weight_shape, circuit_from_data(circuit_to_data(c)) == c
    ({'RX': 2, 'CNOT': 1, 'RY': 1}, (1,), True)
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any

from qtransfer.errors import UsageError

from .description import Circuit, Expval, Operation, Probs, Weight, angle_to_data, parse_angle
from .templates import TEMPLATES, shift_weights

__all__ = ["CircuitBuilder", "as_circuit", "circuit_from_data", "circuit_to_data", "load_circuit_file"]

_TOP_KEYS = {"n_qubits", "ops", "repeat", "measure", "n_inputs", "weight_shape", "amplitude", "name"}


def _measurement(item, where: str):
    if isinstance(item, str):
        return Expval.parse(item)
    if isinstance(item, dict) and set(item) == {"probs"}:
        return Probs(tuple(item["probs"]) if isinstance(item["probs"], list) else item["probs"])
    raise ValueError(f"{where}: a measurement is a Pauli-word string ('Z0 Z1', '0.5*X0 + Z1') or {{probs = [wires]}}, got {item!r}")


def _template(n_qubits: int, step: dict, where: str) -> Circuit:
    name = step["template"]
    if name not in TEMPLATES:
        raise ValueError(f"{where}: unknown template {name!r}; choose one of {', '.join(TEMPLATES)}")
    builder = TEMPLATES[name]
    kwargs = {k: v for k, v in step.items() if k != "template"}
    accepted = [p for p in inspect.signature(builder).parameters if p != "n_qubits"]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(f"{where}: {name} takes {', '.join(accepted) or 'no arguments'}, not {', '.join(unknown)}")
    try:
        return builder(n_qubits, **kwargs)
    except TypeError as e:
        raise ValueError(f"{where}: {name}: {e}") from None


def _gate(step: dict, next_weight: int, where: str) -> tuple[Operation, int]:
    extra = set(step) - {"gate", "wires", "angle", "params"}
    if extra or "wires" not in step or ("angle" in step and "params" in step):
        raise ValueError(f"{where}: a gate step holds gate, wires and angle (or params = [...] for Rot/U3); got keys {sorted(step)}")
    params = step.get("params", [step["angle"]] if "angle" in step else [])
    angles = []
    for value in params if isinstance(params, list) else [params]:
        if isinstance(value, str) and value.strip() == "w":
            angles.append(Weight(next_weight))
            next_weight += 1
        else:
            angle = parse_angle(value)
            if isinstance(angle, Weight):
                next_weight = max(next_weight, angle.index + 1)
            angles.append(angle)
    wires = step["wires"]
    return Operation(step["gate"], tuple(wires) if isinstance(wires, list) else wires, tuple(angles)), next_weight


def circuit_from_data(data: dict[str, Any], *, source: str = "circuit") -> Circuit:
    """The circuit of a circuit file's content (see the module docstring); a ``UsageError`` naming
    ``source`` and what to fix otherwise."""
    try:
        return _from_data(data, source)
    except (ValueError, TypeError, KeyError) as e:
        message = str(e).strip("'\"")
        raise UsageError(message if message.startswith(source) else f"{source}: {message}") from None


def _from_data(data: dict[str, Any], source: str) -> Circuit:
    if not isinstance(data, dict):
        raise ValueError(f"a circuit is a table of settings (n_qubits, ops, measure, ...), got {type(data).__name__}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; a circuit holds {', '.join(sorted(_TOP_KEYS))}")
    if "n_qubits" not in data:
        raise ValueError("n_qubits is missing (the number of wires)")
    n = data["n_qubits"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_qubits must be an integer >= 1, got {n!r}")
    repeat = data.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}")
    steps = data.get("ops", [])
    if not isinstance(steps, list):
        raise ValueError("ops must be a list of steps ([[ops]] tables in TOML)")
    ops: list[Operation] = []
    amplitude: tuple[int, ...] = tuple(data.get("amplitude", ()))
    templates_only_shape = None
    next_weight = 0
    for r in range(repeat):
        for k, step in enumerate(steps):
            where = f"{source}: ops[{k}]"
            if not isinstance(step, dict) or ("template" in step) == ("gate" in step):
                raise ValueError(f"{where}: each step names either a template or a gate, got {step!r}")
            if "template" in step:
                part = _template(n, step, where)
                if part.amplitude:
                    if r or ops:
                        raise ValueError(f"{where}: AmplitudeEmbedding prepares the initial state; it must be the first step, once")
                    amplitude = part.amplitude
                ops += [shift_weights(op, next_weight) for op in part.ops]
                templates_only_shape = part.weight_shape if (len(steps) == 1 and repeat == 1) else None
                next_weight += part.n_weights
            else:
                op, next_weight = _gate(step, next_weight, where)
                ops.append(op)
    measure = data.get("measure", [])
    measurements = tuple(_measurement(m, f"{source}: measure") for m in (measure if isinstance(measure, list) else [measure]))
    shape = data.get("weight_shape")
    if shape is None:
        shape = templates_only_shape or (next_weight,)
    return Circuit(n, tuple(ops), measurements, n_inputs=data.get("n_inputs"), weight_shape=tuple(shape),
                   amplitude=amplitude, name=str(data.get("name", "")))


def circuit_to_data(circuit: Circuit) -> dict[str, Any]:
    """Plain data (numbers, strings, lists, dicts) that :func:`circuit_from_data` reads back exactly."""
    data: dict[str, Any] = {
        "n_qubits": circuit.n_qubits,
        "n_inputs": circuit.n_inputs,
        "weight_shape": list(circuit.weight_shape),
        "ops": [{"gate": op.name, "wires": list(op.wires), **({"params": [angle_to_data(p) for p in op.params]} if op.params else {})}
                for op in circuit.ops],
        "measure": [str(m) if isinstance(m, Expval) else {"probs": list(m.wires)} for m in circuit.measurements],
    }
    if circuit.amplitude:
        data["amplitude"] = list(circuit.amplitude)
    if circuit.name:
        data["name"] = circuit.name
    return data


def load_circuit_file(path: str | Path) -> Circuit:
    """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` circuit file; one-line ``UsageError`` otherwise."""
    from qtransfer.config import load_config_file

    if not Path(path).is_file():
        raise UsageError(f"circuit file {path} does not exist; examples/circuits/ has examples")
    data = load_config_file(path)
    name = data.get("name") if isinstance(data, dict) else None
    circuit = circuit_from_data(data, source=f"circuit file {path}")
    return circuit if name else replace(circuit, name=Path(path).stem)


def as_circuit(value: Any, *, source: str = "circuit") -> Circuit:
    """A :class:`Circuit` from a ``Circuit``, a ``CircuitSpec``, plain data, or a circuit file's path."""
    from .circuit import CircuitSpec

    if isinstance(value, Circuit):
        return value
    if isinstance(value, CircuitSpec):
        return value.to_circuit()
    if isinstance(value, dict):
        return circuit_from_data(value, source=source)
    if isinstance(value, (str, Path)):
        return load_circuit_file(value)
    raise UsageError(f"{source}: give a Circuit, a CircuitSpec, a circuit file's path or its content, got {type(value).__name__}")


class CircuitBuilder:
    """A circuit step by step, in the circuit file's terms (``"w"``: a new weight).

    Example:
        >>> c = (CircuitBuilder(2).template("AngleEmbedding", rotation="Y").gate("CNOT", 0, 1)
        ...      .gate("CRX", 1, 0, angle="w").gate("Rot", 0, params=["w", "w", 0.1]).measure("Z0 Z1", "X1").build())
        >>> c.gate_counts(), c.weight_shape, c.n_outputs
        ({'RY': 2, 'CNOT': 1, 'CRX': 1, 'Rot': 1}, (3,), 2)
    """

    def __init__(self, n_qubits: int, *, name: str = "") -> None:
        self._data: dict[str, Any] = {"n_qubits": n_qubits, "ops": [], "measure": []}
        if name:
            self._data["name"] = name

    def gate(self, name: str, *wires: int, angle: Any = None, params: list | None = None) -> "CircuitBuilder":
        step: dict[str, Any] = {"gate": name, "wires": list(wires)}
        if angle is not None:
            step["angle"] = angle
        if params is not None:
            step["params"] = list(params)
        self._data["ops"].append(step)
        return self

    def template(self, name: str, **arguments: Any) -> "CircuitBuilder":
        self._data["ops"].append({"template": name, **arguments})
        return self

    def measure(self, *observables: Any) -> "CircuitBuilder":
        """Pauli-word strings (``"Z0 Z1"``, ``"0.5*X0 + Z1"``) or ``{"probs": [wires]}``."""
        self._data["measure"].extend(observables)
        return self

    def build(self, *, repeat: int = 1) -> Circuit:
        """The circuit (``repeat``: the steps that many times, new weights each time)."""
        return circuit_from_data({**self._data, "repeat": repeat}, source=self._data.get("name", "circuit builder"))

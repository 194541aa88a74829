"""The quantum part: circuit descriptions, the built-in simulator, PennyLane, ``QuantumLayer``.

The circuit descriptions (:class:`CircuitSpec`, the shorthand of the published family, and the
general :class:`Circuit` with its :mod:`templates`) need no torch; ``QuantumLayer`` and ``simulate`` load torch on
first use, so ``from qtransfer.quantum import CircuitSpec`` stays cheap.

Example:
    >>> from qtransfer.quantum import QuantumLayer
    >>> QuantumLayer(n_qubits=4, depth=6, backend="builtin")  # doctest: +ELLIPSIS
    QuantumLayer(n_qubits=4, depth=6, ...)
"""

from . import templates
from .circuit import EMBEDDINGS, LAYERS, CircuitSpec, Gate
from .circuit_file import CircuitBuilder
from .description import Circuit, Const, Expval, Input, Operation, Probs, Weight

__all__ = [
    "EMBEDDINGS", "LAYERS", "Circuit", "CircuitBuilder", "CircuitSpec", "Const", "Expval", "Gate", "Input", "Operation", "Probs",
    "QuantumLayer", "Weight", "from_pennylane", "from_qiskit", "parse_backend", "run_circuit", "simulate", "templates",
    "to_pennylane", "to_qiskit",
]

from qtransfer._lazy import lazy_getattr

__getattr__ = lazy_getattr(__name__, {
    "QuantumLayer": "layer", "parse_backend": "layer", "simulate": "simulator", "run_circuit": "executor",
    "from_pennylane": "interop", "from_qiskit": "interop", "to_pennylane": "interop", "to_qiskit": "interop",
})

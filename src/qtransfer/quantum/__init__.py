"""The quantum part: circuit descriptions, the built-in simulator, PennyLane, ``QuantumLayer``.

Example:
    >>> from qtransfer.quantum import QuantumLayer
    >>> QuantumLayer(n_qubits=4, depth=6, backend="builtin")  # doctest: +ELLIPSIS
    QuantumLayer(n_qubits=4, depth=6, ...)
"""

from .circuit import EMBEDDINGS, LAYERS, CircuitSpec, Gate
from .layer import QuantumLayer, parse_backend
from .simulator import simulate

__all__ = ["EMBEDDINGS", "LAYERS", "CircuitSpec", "Gate", "QuantumLayer", "parse_backend", "simulate"]

"""The quantum part: circuit descriptions, the built-in simulator, PennyLane, ``QuantumLayer``.

The circuit description needs no torch; ``QuantumLayer`` and ``simulate`` load torch on
first use, so ``from qtransfer.quantum import CircuitSpec`` stays cheap.

Example:
    >>> from qtransfer.quantum import QuantumLayer
    >>> QuantumLayer(n_qubits=4, depth=6, backend="builtin")  # doctest: +ELLIPSIS
    QuantumLayer(n_qubits=4, depth=6, ...)
"""

from .circuit import EMBEDDINGS, LAYERS, CircuitSpec, Gate

__all__ = ["EMBEDDINGS", "LAYERS", "CircuitSpec", "Gate", "QuantumLayer", "parse_backend", "simulate"]

from qtransfer._lazy import lazy_getattr

__getattr__ = lazy_getattr(__name__, {"QuantumLayer": "layer", "parse_backend": "layer", "simulate": "simulator"})

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

_LAZY = {"QuantumLayer": "layer", "parse_backend": "layer", "simulate": "simulator"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

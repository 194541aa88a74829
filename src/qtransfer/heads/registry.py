"""The one place that knows the heads: names, what they are, how to build them, how to draw them.

timm's ``register_model`` idea, kept free of torch so that configuration checks and the
command line's ``--help`` can read it without loading PyTorch: each :class:`HeadInfo` names
its builder as ``"module:function"``, imported only by :func:`qtransfer.heads.build_head`.
Configuration validation, ``--head``'s help, the report's colours and its circuit diagrams
all read :data:`HEADS`.

Example:
    >>> head_names()
    ('quantum', 'linear', 'classical', 'product')
    >>> get_head("product").circuit(n_qubits=4, depth=6, embedding="hadamard_ry", layer="cnot_ry").layer
    'ry'
    >>> get_head("linear").circuit(n_qubits=4, depth=6, embedding="hadamard_ry", layer="cnot_ry") is None
    True
    >>> "depth" in get_head("linear").ignores
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from qtransfer.errors import UsageError
from qtransfer.quantum.circuit import CircuitSpec

__all__ = ["HEADS", "HeadInfo", "get_head", "head_names", "register_head"]


@dataclass(frozen=True)
class HeadInfo:
    """A trainable head: ``builder`` (``"module:function"``) makes it from the features' width,
    the number of classes and the head settings (:meth:`qtransfer.config.TrainConfig.head_settings`).

    ``circuit_layer`` is set for heads that run a quantum circuit: ``"config"`` for the
    configured ``layer``, or a fixed layer kind (``"ry"``: the no-entanglement ablation).
    ``ignores`` names the settings that do not change this head's training (a sweep trains
    it once over their values, and its report says so).
    """

    name: str
    description: str
    builder: str
    color: str
    circuit_layer: str | None = None
    ignores: tuple[str, ...] = ()

    @property
    def is_quantum(self) -> bool:
        return self.circuit_layer is not None

    def circuit(self, *, n_qubits: int, depth: int, embedding: str, layer: str) -> CircuitSpec | None:
        """The circuit this head runs under these settings (``None`` for a classical head)."""
        if self.circuit_layer is None:
            return None
        chosen = layer if self.circuit_layer == "config" else self.circuit_layer
        return CircuitSpec(n_qubits=n_qubits, depth=depth, embedding=embedding, layer=chosen)


HEADS: dict[str, HeadInfo] = {}


def register_head(info: HeadInfo) -> HeadInfo:
    """Add ``info`` to :data:`HEADS` (a name registered twice is an error)."""
    if info.name in HEADS:
        raise ValueError(f"head {info.name!r} is already registered")
    HEADS[info.name] = info
    return info


def head_names() -> tuple[str, ...]:
    """Registered head names, in registration order (``quantum`` first)."""
    return tuple(HEADS)


def get_head(name: str) -> HeadInfo:
    """The :class:`HeadInfo` of ``name``; a :class:`~qtransfer.errors.UsageError` naming the choices otherwise."""
    if name not in HEADS:
        raise UsageError(f"unknown head {name!r}; choose one of {', '.join(HEADS)}")
    return HEADS[name]


register_head(HeadInfo(
    "quantum", "Mari et al.'s dressed quantum circuit: Linear -> tanh*pi/2 -> circuit -> <Z> -> Linear",
    "qtransfer.heads.dressed:dressed_quantum_head", "#6f42c1", circuit_layer="config"))
register_head(HeadInfo(
    "linear", "Linear(features -> classes), the published classical baseline",
    "qtransfer.heads.dressed:linear_head", "#57606a",
    ignores=("n_qubits", "depth", "q_delta", "embedding", "layer", "backend", "shots", "noise")))
register_head(HeadInfo(
    "classical", "a classical dressed net of the quantum head's shape and parameter count",
    "qtransfer.heads.dressed:dressed_classical_head", "#0969da", ignores=("backend", "shots", "noise")))
register_head(HeadInfo(
    "product", "the quantum head with every CNOT removed (no entanglement): an ablation",
    "qtransfer.heads.dressed:dressed_quantum_head", "#bf8700", circuit_layer="ry", ignores=("layer",)))

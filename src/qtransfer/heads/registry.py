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
from typing import Any, Callable

from qtransfer.errors import UsageError
from qtransfer.quantum.circuit import CircuitSpec

__all__ = ["HEADS", "HeadInfo", "get_head", "head_names", "register_head"]


@dataclass(frozen=True)
class HeadInfo:
    """A trainable head: ``builder`` (``"module:function"``, or the function itself for a head
    registered from Python) makes it from the features' width, the number of classes and the
    head settings (:meth:`qtransfer.config.TrainConfig.head_settings`) it accepts.

    ``circuit_layer`` is set for heads that run a quantum circuit: ``"config"`` for the
    configured ``layer``, or a fixed layer kind (``"ry"``: the no-entanglement ablation).
    ``ignores`` names the settings that do not change this head's training (a sweep trains
    it once over their values, and its report says so).
    """

    name: str
    description: str
    builder: str | Callable[..., Any]
    color: str
    circuit_layer: str | None = None
    ignores: tuple[str, ...] = ()

    @property
    def is_builtin(self) -> bool:
        return isinstance(self.builder, str) and self.builder.startswith("qtransfer.")

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


_USER_COLORS = ("#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#0550ae")


def register_head(info: "HeadInfo | str", builder: Callable[..., Any] | None = None, *, description: str = "",
                  color: str | None = None, replace: bool = False) -> HeadInfo:
    """Add a head to :data:`HEADS`: a :class:`HeadInfo`, or a name and a builder
    ``builder(in_features, n_classes, **settings) -> nn.Module`` (it receives only the settings
    its signature names: ``n_qubits``, ``depth``, ``q_delta``, ``circuit``, ``seed``, ...). A name
    registered twice is an error unless ``replace=True``; the built-in heads cannot be replaced.
    Then ``qtransfer train --head NAME`` (in a process that registered it), ``compare``, ``sweep``
    and ``load_run`` build it by name.

    Example:
        >>> import torch
        >>> def mlp(in_features, n_classes):
        ...     return torch.nn.Sequential(torch.nn.Linear(in_features, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_classes))
        >>> register_head("mlp", mlp, description="a two-layer perceptron").name in head_names()
        True
        >>> _ = HEADS.pop("mlp")
    """
    if isinstance(info, str):
        if not callable(builder):
            raise ValueError(f"register_head({info!r}, builder): the builder must be callable, got {builder!r}")
        info = HeadInfo(info, description or f"{getattr(builder, '__qualname__', info)} (registered from Python)", builder,
                        color or _USER_COLORS[len(HEADS) % len(_USER_COLORS)])
    if not isinstance(info.name, str) or not info.name or any(c in info.name for c in " ,:/"):
        raise ValueError(f"a head name is a non-empty word without spaces, commas, ':' or '/', got {info.name!r}")
    if info.name in HEADS and (not replace or HEADS[info.name].is_builtin):
        raise ValueError(f"head {info.name!r} is already registered" + ("" if HEADS[info.name].is_builtin else
                                                                       "; pass replace=True to replace it"))
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

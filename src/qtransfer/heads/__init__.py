"""The trainable heads on the frozen features: registry, modules, and the fused training step.

* :mod:`~qtransfer.heads.registry`: the head names and what they are (no torch);
* :mod:`~qtransfer.heads.dressed`: the modules (dressed quantum and classical heads, linear head);
* :mod:`~qtransfer.heads.fused_step`: the hand-derived training step of the dressed quantum head.

Example:
    >>> import torch
    >>> from qtransfer.heads import build_head
    >>> head = build_head("quantum", in_features=512, n_classes=2)
    >>> head(torch.zeros(3, 512)).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from qtransfer._lazy import lazy_getattr
from qtransfer.heads.registry import HEADS, HeadInfo, get_head, head_names, register_head

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["HEADS", "HeadInfo", "build_head", "count_parameters", "device_record", "get_head", "head_names", "register_head",
           "DressedQuantumHead", "DressedClassicalHead", "LinearHead"]

__getattr__ = lazy_getattr(__name__, {"DressedQuantumHead": "dressed", "DressedClassicalHead": "dressed",
                                      "LinearHead": "dressed"})


def build_head(
    kind: str,
    in_features: int,
    n_classes: int,
    *,
    n_qubits: int = 4,
    depth: int = 6,
    q_delta: float = 0.01,
    embedding: str = "hadamard_ry",
    layer: str = "cnot_ry",
    backend: str = "builtin",
    shots: int | None = None,
    noise: str | None = None,
    seed: int | None = None,
    circuit=None,
    device: "torch.device | str | None" = None,
) -> "nn.Module":
    """Build a registered head (``quantum``, ``product``, ``linear``, ``classical``), seeded by ``seed``.

    Its initial weights come from a generator forked from torch's and seeded with ``seed``,
    so the same seed gives the same head whatever else ran before. ``noise`` (a string of
    :func:`qtransfer.quantum.noise.parse_noise`) runs a quantum head's circuit under noise;
    classical heads ignore it, as they ignore ``shots``. ``circuit`` (a
    :class:`~qtransfer.quantum.Circuit`, a circuit file's path or content) replaces the published
    family (``n_qubits``, ``depth``, ``embedding``, ``layer``); the ``product`` head drops its
    multi-wire gates, the ``classical`` head matches its weight count.
    """
    import torch

    info = get_head(kind)
    if not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes!r}")
    if info.circuit_layer not in (None, "config"):
        layer = info.circuit_layer
    if circuit is not None:
        from qtransfer.quantum.circuit_file import as_circuit

        circuit = as_circuit(circuit)
        if info.circuit_layer == "ry":  # the product ablation of this circuit
            circuit = circuit.without_entangling()
    if callable(info.builder):
        builder = _accepting(info.builder)
    else:
        module_name, _, function = info.builder.partition(":")
        builder = getattr(import_module(module_name), function)
    devices = [torch.device(device)] if device is not None and torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        head = builder(in_features, n_classes, n_qubits=n_qubits, depth=depth, q_delta=q_delta, embedding=embedding,
                       layer=layer, backend=backend, shots=shots, noise=noise, seed=seed, circuit=circuit)
    return head.to(device) if device is not None else head


def _accepting(builder):
    """``builder`` called with only the keyword arguments its signature names (all, if it takes ``**kwargs``)."""
    import inspect

    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return builder
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return builder
    names = set(params)

    def call(in_features, n_classes, **settings):
        return builder(in_features, n_classes, **{k: v for k, v in settings.items() if k in names})

    return call


def count_parameters(module: "nn.Module") -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def device_record(head: "nn.Module") -> dict | None:
    """What a run records of the calibrated device its quantum circuit runs on (name, calibration
    date, layout logical -> physical, native gate counts, shots), or ``None`` for an ideal or
    generically noisy circuit, or a classical head."""
    from qtransfer.quantum.layer import QuantumLayer

    for module in head.modules():
        if isinstance(module, QuantumLayer) and module.device_description() is not None:
            return {**module.device_description(), "shots": module.shots}
    return None

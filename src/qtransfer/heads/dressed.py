"""The trainable heads that sit on the frozen backbone's features.

``quantum``   Mari et al.'s dressed quantum circuit:
              Linear(features -> n) -> tanh * pi/2 -> QuantumLayer -> Linear(n -> classes)
``product``   the same with every entangling gate removed (layer ``"ry"``): an ablation
``linear``    Linear(features -> classes), the published classical baseline
``classical`` a classical dressed net of the quantum head's shape and parameter count:
              Linear(features -> n) -> tanh -> MixingBlock(n, depth) -> Linear(n -> classes)

The classical mixing block has exactly as many trainable parameters as the circuit
(``depth * n``): each of its ``depth`` layers mixes every unit with its neighbour,
``x_i <- cos(w_i) x_i + sin(w_i) x_{i+1 mod n}``, a classical stand-in for "entangle
neighbours, then rotate every wire"; a final tanh keeps outputs in [-1, 1] like <Z>.
At ``w = 0`` it is the identity, as the circuit is at zero weights up to its CNOTs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qtransfer.quantum.circuit import CircuitSpec
from qtransfer.quantum.layer import QuantumLayer
from qtransfer.seeding import init_linear_, normal

__all__ = [
    "DressedQuantumHead", "LinearHead", "MixingBlock", "DressedClassicalHead",
    "dressed_quantum_head", "linear_head", "dressed_classical_head",
]


class DressedQuantumHead(nn.Module):
    """Linear(in_features -> n_inputs) -> tanh * pi/2 -> QuantumLayer -> Linear(n_outputs -> n_classes).

    For the published circuit ``n_inputs = n_outputs = n_qubits``; ``circuit=`` builds the
    quantum layer from any circuit (``QuantumLayer(circuit=circuit, **layer_options)``).

    Example:
        >>> from qtransfer.quantum import Circuit, templates
        >>> circuit = Circuit(3, templates.iqp_embedding(3).ops, measurements=("Z0 Z1", "Z1 Z2"))
        >>> head = DressedQuantumHead(512, 3, circuit=circuit)
        >>> head.pre.out_features, head.post.in_features, head(torch.zeros(2, 512)).shape
        (3, 2, torch.Size([2, 3]))
    """

    def __init__(self, in_features: int, n_classes: int, *, quantum: QuantumLayer | None = None, circuit=None,
                 **layer_options) -> None:
        super().__init__()
        if (quantum is None) == (circuit is None):
            raise ValueError("DressedQuantumHead takes quantum=QuantumLayer(...) or circuit=..., exactly one")
        if quantum is None:
            quantum = QuantumLayer(circuit=circuit, **layer_options)
        elif layer_options:
            raise ValueError(f"options {sorted(layer_options)} apply to circuit=..., not to a ready QuantumLayer")
        self.pre = init_linear_(nn.Linear(in_features, quantum.n_inputs))
        self.quantum = quantum
        self.post = init_linear_(nn.Linear(quantum.n_outputs, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        angles = torch.tanh(self.pre(features)) * (math.pi / 2)
        return self.post(self.quantum(angles))


class LinearHead(nn.Module):
    """Linear(in_features -> n_classes): the published classical baseline."""

    def __init__(self, in_features: int, n_classes: int) -> None:
        super().__init__()
        self.fc = init_linear_(nn.Linear(in_features, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


class MixingBlock(nn.Module):
    """``depth`` layers of ``x_i <- cos(w_i) x_i + sin(w_i) x_{i+1 mod n}``, then tanh; ``depth * n`` parameters."""

    def __init__(self, n: int, depth: int, *, init_scale: float = 0.01) -> None:
        super().__init__()
        self.weights = nn.Parameter(normal((depth, n), init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cos, sin = torch.cos(self.weights), torch.sin(self.weights)
        for layer in range(self.weights.shape[0]):
            x = cos[layer] * x + sin[layer] * torch.roll(x, shifts=-1, dims=-1)
        return torch.tanh(x)


class DressedClassicalHead(nn.Module):
    """Linear(in_features -> n) -> tanh -> MixingBlock(n, depth) -> Linear(n -> n_classes)."""

    def __init__(self, in_features: int, n_classes: int, *, n: int, depth: int, init_scale: float = 0.01) -> None:
        super().__init__()
        self.pre = init_linear_(nn.Linear(in_features, n))
        self.mixing = MixingBlock(n, depth, init_scale=init_scale)
        self.post = init_linear_(nn.Linear(n, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.post(self.mixing(torch.tanh(self.pre(features))))


def dressed_quantum_head(in_features: int, n_classes: int, *, n_qubits: int, depth: int, q_delta: float,
                         embedding: str, layer: str, backend: str, shots: int | None, noise: str | None,
                         seed: int | None, circuit=None) -> DressedQuantumHead:
    """The ``quantum`` head (and ``product``, built with ``layer="ry"``); ``noise`` runs its circuit under noise;
    ``circuit`` (plain data or a Circuit) replaces the published family."""
    quantum = QuantumLayer(n_qubits, depth, backend, embedding=embedding, layer=layer, circuit=circuit, q_delta=q_delta,
                           shots=shots, noise=noise, seed=seed if shots is not None else None)
    return DressedQuantumHead(in_features, n_classes, quantum=quantum)


def linear_head(in_features: int, n_classes: int, **_circuit_settings) -> LinearHead:
    """The ``linear`` head; it has no circuit, so the circuit settings do not apply."""
    return LinearHead(in_features, n_classes)


def dressed_classical_head(in_features: int, n_classes: int, *, n_qubits: int, depth: int, q_delta: float,
                           embedding: str, layer: str, circuit=None, **_quantum_only) -> DressedClassicalHead:
    """The ``classical`` head: as many mixing parameters as the configured circuit has weights
    (rounded up to whole layers of ``n`` units; for a general circuit ``n`` is its number of qubits)."""
    if circuit is not None:
        from qtransfer.quantum.circuit_file import as_circuit

        c = as_circuit(circuit)
        n = c.n_qubits
        return DressedClassicalHead(in_features, n_classes, n=n, depth=-(-c.n_weights // n), init_scale=q_delta)
    n_weights = CircuitSpec(n_qubits, depth, embedding=embedding, layer=layer).n_weights
    return DressedClassicalHead(in_features, n_classes, n=n_qubits, depth=n_weights // n_qubits, init_scale=q_delta)

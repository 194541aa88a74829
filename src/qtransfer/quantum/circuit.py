"""One description of the variational circuits qtransfer trains; executors read it.

A circuit is three stages, applied left to right on ``n_qubits`` wires (wire 0 is
the most significant bit of a basis-state index, as in PennyLane):

1. an **embedding** of ``n_qubits`` input angles ``x`` (one per wire),
2. ``depth`` **variational layers** with trainable weights,
3. the **measurement** of ``<Z_i>`` on every wire.

Embeddings (every one prepares a product state, one single-qubit state per wire):
    ``"hadamard_ry"``  H then RY(x_i) on each wire (Mari et al. 2020, the published one)
    ``"ry"``           RY(x_i) on each wire
    ``"rx"``           RX(x_i) on each wire

Variational layers (weights of shape :attr:`CircuitSpec.weight_shape`):
    ``"cnot_ry"``   CNOT on pairs (0,1),(2,3),... then (1,2),(3,4),..., then RY(w) on
                    every wire (the published layer); weights ``(depth, n_qubits)``
    ``"ry"``        RY(w) on every wire, no entangling gate (the product ablation);
                    weights ``(depth, n_qubits)``
    ``"rot_ring"``  Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) on every wire,
                    then a ring of CNOTs (i, i+1 mod n) (as PennyLane's
                    StronglyEntanglingLayers with range 1); weights ``(depth, n_qubits, 3)``

Both executors (:mod:`qtransfer.quantum.simulator` and
:mod:`qtransfer.quantum.pennylane_backend`) walk this description; neither knows the
published circuit by any other route.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["EMBEDDINGS", "LAYERS", "CircuitSpec", "Gate"]

EMBEDDINGS = ("hadamard_ry", "ry", "rx")
LAYERS = ("cnot_ry", "ry", "rot_ring")

#: embedding -> gate names applied to each wire, in order ("X" marks the input angle).
_EMBEDDING_GATES = {
    "hadamard_ry": ("Hadamard", "RY"),
    "ry": ("RY",),
    "rx": ("RX",),
}
_ROTATION = {"cnot_ry": "RY", "ry": "RY", "rot_ring": "Rot"}


@dataclass(frozen=True)
class Gate:
    """One gate of a circuit. ``param`` names where its angle comes from:
    ``("x", wire)`` for an input, ``("w", layer, wire)`` for a weight, ``None`` for none."""

    name: str
    wires: tuple[int, ...]
    param: tuple | None = None


@dataclass(frozen=True)
class CircuitSpec:
    """A variational circuit: embedding, ``depth`` layers, ``<Z>`` on every wire.

    Example:
        >>> spec = CircuitSpec(n_qubits=4, depth=6)   # the published circuit
        >>> spec.weight_shape
        (6, 4)
        >>> spec.entangling_pairs()
        ((0, 1), (2, 3), (1, 2))
    """

    n_qubits: int = 4
    depth: int = 6
    embedding: str = "hadamard_ry"
    layer: str = "cnot_ry"

    def __post_init__(self) -> None:
        if not isinstance(self.n_qubits, int) or isinstance(self.n_qubits, bool) or self.n_qubits < 1:
            raise ValueError(f"n_qubits must be an integer >= 1, got {self.n_qubits!r}")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 0:
            raise ValueError(f"depth must be an integer >= 0, got {self.depth!r}")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"unknown embedding {self.embedding!r}; choose one of {', '.join(EMBEDDINGS)}")
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r}; choose one of {', '.join(LAYERS)}")

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the trainable weights."""
        if self.layer == "rot_ring":
            return (self.depth, self.n_qubits, 3)
        return (self.depth, self.n_qubits)

    @property
    def n_weights(self) -> int:
        n = 1
        for s in self.weight_shape:
            n *= s
        return n

    @property
    def is_real(self) -> bool:
        """True when every gate is real (H, RY, CNOT): amplitudes then stay real."""
        return self.embedding in ("hadamard_ry", "ry") and self.layer in ("cnot_ry", "ry")

    @property
    def embedding_gates(self) -> tuple[str, ...]:
        """Gate names applied to each wire by the embedding; the last one takes the input angle."""
        return _EMBEDDING_GATES[self.embedding]

    @property
    def rotation_gate(self) -> str:
        """The trainable single-qubit gate of every layer: ``"RY"`` or ``"Rot"``."""
        return _ROTATION[self.layer]

    def entangling_pairs(self) -> tuple[tuple[int, int], ...]:
        """(control, target) of the CNOTs of one layer, in application order."""
        n = self.n_qubits
        if self.layer == "cnot_ry":
            return tuple((i, i + 1) for i in range(0, n - 1, 2)) + tuple((i, i + 1) for i in range(1, n - 1, 2))
        if self.layer == "rot_ring":
            if n == 1:
                return ()
            if n == 2:
                return ((0, 1), (1, 0))
            return tuple((i, (i + 1) % n) for i in range(n))
        return ()

    @property
    def entangles_before_rotation(self) -> bool:
        """Order inside a layer: CNOTs first (``cnot_ry``) or rotations first (``rot_ring``)."""
        return self.layer != "rot_ring"

    def to_circuit(self) -> "Circuit":
        """This circuit as a general :class:`~qtransfer.quantum.description.Circuit` (same gates,
        inputs ``x[i]``, weights in this spec's ``weight_shape``, ``<Z_i>`` on every wire).

        Example:
            >>> CircuitSpec(n_qubits=2, depth=1).to_circuit().gate_counts()
            {'Hadamard': 2, 'RY': 4, 'CNOT': 1}
        """
        from .description import Circuit, Input, Operation, Weight

        n, per_weight = self.n_qubits, 3 if self.rotation_gate == "Rot" else 1
        ops = []
        for gate in self.gates():
            if gate.param is None:
                params: tuple = ()
            elif gate.param[0] == "x":
                params = (Input(gate.param[1]),)
            else:
                flat = gate.param[1] * n + gate.param[2]
                params = tuple(Weight(flat * per_weight + k) for k in range(per_weight))
            ops.append(Operation(gate.name, gate.wires, params))
        return Circuit(n, tuple(ops), n_inputs=n, weight_shape=self.weight_shape,
                       name=f"{self.embedding}+{self.layer} x{self.depth}")

    def gates(self) -> Iterator[Gate]:
        """Every gate in application order (for drawing, PennyLane, and tests)."""
        n = self.n_qubits
        for wire in range(n):
            for name in self.embedding_gates[:-1]:
                yield Gate(name, (wire,))
            yield Gate(self.embedding_gates[-1], (wire,), ("x", wire))
        pairs = self.entangling_pairs()
        for layer in range(self.depth):
            cnots = [Gate("CNOT", pair) for pair in pairs]
            rotations = [Gate(self.rotation_gate, (wire,), ("w", layer, wire)) for wire in range(n)]
            yield from (cnots + rotations) if self.entangles_before_rotation else (rotations + cnots)

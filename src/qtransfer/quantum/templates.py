"""Templates with PennyLane's and Qiskit's names and conventions; each returns a :class:`Circuit`.

Embeddings read inputs ``x[0..]`` (feature ``i`` on wire ``i``); ansätze read their own
weights, shaped as in PennyLane (``shape(n_layers, n_wires)``) or, for Qiskit's circuits, a
flat vector in Qiskit's parameter order. :func:`compose` chains templates into one circuit
(weights concatenated, flat; inputs shared), :func:`reuploading` puts the embedding before
every layer.

=============================  ======================================  ===================================
qtransfer                      PennyLane                               Qiskit
=============================  ======================================  ===================================
``angle_embedding``            ``AngleEmbedding(rotation=X|Y|Z)``      (``RX``/``RY``/``RZ`` per qubit)
``hadamard_ry_embedding``      (Mari et al.: ``H`` then ``RY``)        
``iqp_embedding``              ``IQPEmbedding``                        
``zz_feature_map``             (``IQPEmbedding``-like)                 ``ZZFeatureMap``
``amplitude_embedding``        ``AmplitudeEmbedding(normalize=True)``  (``StatePreparation``)
``basic_entangler_layers``     ``BasicEntanglerLayers``                
``strongly_entangling_layers`` ``StronglyEntanglingLayers(ranges)``    
``real_amplitudes``                                                    ``RealAmplitudes``
``efficient_su2``                                                      ``EfficientSU2``
``published``                  (Mari et al.'s dressed circuit)         
=============================  ======================================  ===================================

Example:
    >>> c = compose(angle_embedding(3, rotation="Y"), strongly_entangling_layers(3, 2))
    >>> c.n_inputs, c.weight_shape, c.gate_counts()
    (3, (18,), {'RY': 3, 'Rot': 6, 'CNOT': 6})
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import combinations

from .description import Circuit, Input, Measurement, Operation, Weight

__all__ = [
    "TEMPLATES", "amplitude_embedding", "angle_embedding", "basic_entangler_layers", "compose", "efficient_su2",
    "entanglement_pairs", "hadamard_ry_embedding", "iqp_embedding", "published", "real_amplitudes", "reuploading",
    "shift_weights", "strongly_entangling_layers", "zz_feature_map",
]


def _check(n_qubits: int, **counts: int) -> None:
    if not isinstance(n_qubits, int) or isinstance(n_qubits, bool) or n_qubits < 1:
        raise ValueError(f"n_qubits must be an integer >= 1, got {n_qubits!r}")
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def angle_embedding(n_qubits: int, *, rotation: str = "X", n_features: int | None = None) -> Circuit:
    """PennyLane's ``AngleEmbedding``: ``R{rotation}(x[i])`` on wire ``i`` for the first ``n_features`` wires."""
    _check(n_qubits)
    if rotation not in ("X", "Y", "Z"):
        raise ValueError(f"AngleEmbedding's rotation is 'X', 'Y' or 'Z', got {rotation!r}")
    k = n_qubits if n_features is None else n_features
    if not 1 <= k <= n_qubits:
        raise ValueError(f"AngleEmbedding takes 1..{n_qubits} features on {n_qubits} wires, got {k}")
    return Circuit(n_qubits, tuple(Operation("R" + rotation, (i,), (Input(i),)) for i in range(k)),
                   name=f"AngleEmbedding({rotation})")


def hadamard_ry_embedding(n_qubits: int) -> Circuit:
    """Mari et al.'s embedding: ``H`` then ``RY(x[i])`` on every wire."""
    _check(n_qubits)
    ops = []
    for i in range(n_qubits):
        ops += [Operation("Hadamard", (i,)), Operation("RY", (i,), (Input(i),))]
    return Circuit(n_qubits, tuple(ops), name="HadamardRY")


def iqp_embedding(n_qubits: int, *, n_repeats: int = 1, pattern: list[tuple[int, int]] | None = None) -> Circuit:
    """PennyLane's ``IQPEmbedding``: per repeat ``H``, ``RZ(x[i])`` on every wire, then
    ``MultiRZ(x[i] * x[j])`` (= ``IsingZZ``) on every pair of ``pattern`` (default: all pairs)."""
    _check(n_qubits, n_repeats=n_repeats)
    pairs = list(combinations(range(n_qubits), 2)) if pattern is None else [tuple(p) for p in pattern]
    ops = []
    for _ in range(n_repeats):
        ops += [Operation("Hadamard", (i,)) for i in range(n_qubits)]
        ops += [Operation("RZ", (i,), (Input(i),)) for i in range(n_qubits)]
        ops += [Operation("IsingZZ", (i, j), (Input((i, j)),)) for i, j in pairs]
    return Circuit(n_qubits, tuple(ops), n_inputs=n_qubits, name="IQPEmbedding")


def entanglement_pairs(n_qubits: int, entanglement: str) -> list[tuple[int, int]]:
    """Qiskit's entanglement strategies: ``"full"``, ``"linear"``, ``"reverse_linear"``, ``"circular"``, ``"pairwise"``."""
    n = n_qubits
    if entanglement == "full":
        return list(combinations(range(n), 2))
    if entanglement == "linear":
        return [(i, i + 1) for i in range(n - 1)]
    if entanglement == "reverse_linear":
        return [(i, i + 1) for i in reversed(range(n - 1))]
    if entanglement == "circular":
        return ([(n - 1, 0)] if n > 2 else []) + [(i, i + 1) for i in range(n - 1)]
    if entanglement == "pairwise":
        return [(i, i + 1) for i in range(0, n - 1, 2)] + [(i, i + 1) for i in range(1, n - 1, 2)]
    raise ValueError(f"unknown entanglement {entanglement!r}; use full, linear, reverse_linear, circular or pairwise")


def zz_feature_map(n_qubits: int, *, reps: int = 2, entanglement: str = "full") -> Circuit:
    """Qiskit's ``ZZFeatureMap``: per rep ``H`` and ``P(2 x[i])`` on every qubit, then for every
    pair ``CX(i, j)``, ``P(2 (pi - x[i]) (pi - x[j]))`` on ``j``, ``CX(i, j)``."""
    _check(n_qubits, reps=reps)
    ops = []
    for _ in range(reps):
        ops += [Operation("Hadamard", (i,)) for i in range(n_qubits)]
        ops += [Operation("PhaseShift", (i,), (Input(i, scale=2.0),)) for i in range(n_qubits)]
        for i, j in entanglement_pairs(n_qubits, entanglement):
            ops += [Operation("CNOT", (i, j)), Operation("PhaseShift", (j,), (Input((i, j), scale=2.0, center=math.pi),)),
                    Operation("CNOT", (i, j))]
    return Circuit(n_qubits, tuple(ops), n_inputs=n_qubits, name="ZZFeatureMap")


def amplitude_embedding(n_qubits: int, *, n_features: int | None = None) -> Circuit:
    """PennyLane's ``AmplitudeEmbedding(normalize=True, pad_with=0.)``: ``n_features`` (default ``2**n``)
    inputs, normalised and zero-padded, are the initial state."""
    _check(n_qubits)
    k = 2**n_qubits if n_features is None else n_features
    if not 1 <= k <= 2**n_qubits:
        raise ValueError(f"AmplitudeEmbedding takes 1..{2**n_qubits} features on {n_qubits} wires, got {k}")
    return Circuit(n_qubits, (), amplitude=tuple(range(k)), name="AmplitudeEmbedding")


def basic_entangler_layers(n_qubits: int, n_layers: int, *, rotation: str = "X") -> Circuit:
    """PennyLane's ``BasicEntanglerLayers``: weights ``(n_layers, n_qubits)``; per layer ``R{rotation}(w)``
    on every wire, then a ring of CNOTs (one CNOT for 2 wires, none for 1)."""
    _check(n_qubits, n_layers=n_layers)
    if rotation not in ("X", "Y", "Z"):
        raise ValueError(f"BasicEntanglerLayers' rotation is 'X', 'Y' or 'Z', got {rotation!r}")
    n = n_qubits
    ring = [] if n == 1 else [(0, 1)] if n == 2 else [(i, (i + 1) % n) for i in range(n)]
    ops = []
    for layer in range(n_layers):
        ops += [Operation("R" + rotation, (i,), (Weight(layer * n + i),)) for i in range(n)]
        ops += [Operation("CNOT", pair) for pair in ring]
    return Circuit(n, tuple(ops), n_inputs=0, weight_shape=(n_layers, n), name="BasicEntanglerLayers")


def strongly_entangling_layers(n_qubits: int, n_layers: int, *, ranges: list[int] | None = None) -> Circuit:
    """PennyLane's ``StronglyEntanglingLayers``: weights ``(n_layers, n_qubits, 3)``; per layer
    ``Rot(w[l, i, 0], w[l, i, 1], w[l, i, 2])`` on every wire, then ``CNOT(i, i + r mod n)``
    with ``r = ranges[l]`` (default ``l mod (n - 1) + 1``)."""
    _check(n_qubits, n_layers=n_layers)
    n = n_qubits
    if ranges is None:
        ranges = [(layer % (n - 1)) + 1 for layer in range(n_layers)] if n > 1 else [0] * n_layers
    if len(ranges) != n_layers:
        raise ValueError(f"StronglyEntanglingLayers needs one range per layer ({n_layers}), got {len(ranges)}")
    ops = []
    for layer in range(n_layers):
        ops += [Operation("Rot", (i,), tuple(Weight((layer * n + i) * 3 + k) for k in range(3))) for i in range(n)]
        if n > 1:
            ops += [Operation("CNOT", (i, (i + ranges[layer]) % n)) for i in range(n)]
    return Circuit(n, tuple(ops), n_inputs=0, weight_shape=(n_layers, n, 3), name="StronglyEntanglingLayers")


def _rotation_blocks(n: int, reps: int, gates: tuple[str, ...], entanglement: str, name: str) -> Circuit:
    """Qiskit's ``TwoLocal`` shape: per rep a layer of each rotation in ``gates``, then CXs; a final rotation layer."""
    _check(n, reps=reps)
    pairs = entanglement_pairs(n, entanglement)
    ops, k = [], 0
    for rep in range(reps + 1):
        for gate in gates:
            ops += [Operation(gate, (i,), (Weight(k + i),)) for i in range(n)]
            k += n
        if rep < reps:
            ops += [Operation("CNOT", pair) for pair in pairs]
    return Circuit(n, tuple(ops), n_inputs=0, weight_shape=(k,), name=name)


def real_amplitudes(n_qubits: int, *, reps: int = 3, entanglement: str = "reverse_linear") -> Circuit:
    """Qiskit's ``RealAmplitudes``: ``n_qubits * (reps + 1)`` weights in Qiskit's parameter order."""
    return _rotation_blocks(n_qubits, reps, ("RY",), entanglement, "RealAmplitudes")


def efficient_su2(n_qubits: int, *, reps: int = 3, entanglement: str = "reverse_linear") -> Circuit:
    """Qiskit's ``EfficientSU2`` (``su2_gates=["ry", "rz"]``): ``2 * n_qubits * (reps + 1)`` weights."""
    return _rotation_blocks(n_qubits, reps, ("RY", "RZ"), entanglement, "EfficientSU2")


def published(n_qubits: int = 4, depth: int = 6) -> Circuit:
    """Mari et al.'s circuit: ``H``, ``RY(x[i])``, then ``depth`` x [CNOTs (0,1),(2,3),.. (1,2),..; ``RY(w)``]."""
    from .circuit import CircuitSpec

    return CircuitSpec(n_qubits=n_qubits, depth=depth).to_circuit()


def shift_weights(op: Operation, offset: int) -> Operation:
    """``op`` with every weight index moved up by ``offset``."""
    if not offset:
        return op
    params = tuple(replace(p, index=p.index + offset) if isinstance(p, Weight) else p for p in op.params)
    return Operation(op.name, op.wires, params)


def compose(*parts: Circuit, measurements: tuple[Measurement | str, ...] = (), name: str = "") -> Circuit:
    """One circuit running ``parts`` in order on the widest register: inputs shared (``x[i]`` is the same
    feature everywhere), weights concatenated (flat; a single part keeps its own ``weight_shape``)."""
    if not parts:
        raise ValueError("compose needs at least one circuit")
    n = max(p.n_qubits for p in parts)
    if any(p.amplitude for p in parts[1:]):
        raise ValueError("AmplitudeEmbedding prepares the initial state: it can only come first")
    ops, offset = [], 0
    for part in parts:
        ops += [shift_weights(op, offset) for op in part.ops]
        offset += part.n_weights
    shape = parts[0].weight_shape if len(parts) == 1 else (offset,)
    return Circuit(n, tuple(ops), measurements=tuple(measurements), n_inputs=max(p.n_inputs for p in parts),
                   weight_shape=shape, amplitude=parts[0].amplitude,
                   name=name or " + ".join(p.name for p in parts if p.name))


def reuploading(embedding: Circuit, layers: list[Circuit], *, measurements: tuple[Measurement | str, ...] = ()) -> Circuit:
    """Data re-uploading: ``embedding`` before every one of ``layers``."""
    if embedding.amplitude:
        raise ValueError("AmplitudeEmbedding prepares the initial state; it cannot be re-uploaded")
    parts = []
    for layer in layers:
        parts += [embedding, layer]
    return compose(*parts, measurements=measurements, name=f"reuploading({embedding.name}, {len(layers)} layers)")


#: template name (as in circuit files) -> builder
TEMPLATES = {
    "AngleEmbedding": angle_embedding,
    "HadamardRY": hadamard_ry_embedding,
    "IQPEmbedding": iqp_embedding,
    "ZZFeatureMap": zz_feature_map,
    "AmplitudeEmbedding": amplitude_embedding,
    "BasicEntanglerLayers": basic_entangler_layers,
    "StronglyEntanglingLayers": strongly_entangling_layers,
    "RealAmplitudes": real_amplitudes,
    "EfficientSU2": efficient_su2,
    "Published": published,
}

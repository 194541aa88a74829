"""Compile a :class:`~qtransfer.quantum.description.Circuit` into a plan of executor steps (no torch).

A pass in Qiskit's sense: it reads the circuit and returns a :class:`Plan`, a tuple of steps
the executors run in order, each with the cheapest kernel for what it holds:

``Layer``        runs of one-qubit gates, each on its own wire and fused into one 2x2 matrix; at
                 every multi-wire gate all pending runs are flushed together as one layer (gates
                 on different wires commute), applied as Kronecker blocks of several wires when it
                 covers most of the register;
``Permutation``  consecutive fixed permutation gates (CNOT, SWAP, Toffoli) as one gather of the basis;
``Diagonal``     a multi-wire diagonal gate (CZ, CRZ, IsingZZ): an elementwise product;
``Dense``        any other multi-wire gate (CY, CRX, CRY, IsingXX, IsingYY): one contraction.

Example:
    >>> from qtransfer.quantum.templates import basic_entangler_layers
    >>> plan = compile_circuit(basic_entangler_layers(3, 2))
    >>> len(plan.circuit.ops), [type(s).__name__ for s in plan.steps]
    (12, ['Layer', 'Permutation', 'Layer', 'Permutation'])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .description import Circuit, Expval, Operation

__all__ = ["ADJOINT_ABOVE", "Dense", "Diagonal", "Layer", "Permutation", "Plan", "compile_circuit", "estimate_bytes",
           "uses_adjoint"]

#: above this many bytes of kept states, training keeps none and the backward recomputes each
#: kernel's input from its output by the kernel's adjoint (one more pass per kernel)
ADJOINT_ABOVE = 1 << 30

#: a layer covering at least this share of the wires is applied as Kronecker blocks (``derived.py``)
BLOCK_SHARE = 0.5
#: wires per Kronecker block; registers up to ONE_BLOCK_MAX wires are one block
BLOCK_WIRES = 4
ONE_BLOCK_MAX = 6


@dataclass(frozen=True)
class Layer:
    """``runs``: ``(wire, ops)`` on distinct wires; each run's gates apply in order."""

    runs: tuple[tuple[int, tuple[Operation, ...]], ...]


@dataclass(frozen=True)
class Permutation:
    ops: tuple[Operation, ...]


@dataclass(frozen=True)
class Diagonal:
    op: Operation


@dataclass(frozen=True)
class Dense:
    op: Operation


Step = Layer | Permutation | Diagonal | Dense


@dataclass(frozen=True)
class Plan:
    circuit: Circuit
    steps: tuple[Step, ...]

    def __hash__(self) -> int:  # the steps follow from the circuit
        return hash(self.circuit)

    @property
    def n_qubits(self) -> int:
        return self.circuit.n_qubits


@lru_cache(maxsize=256)
def compile_circuit(circuit: Circuit) -> Plan:
    """Fuse one-qubit runs and permutation runs; see the module docstring."""
    steps: list[Step] = []
    pending: dict[int, list[Operation]] = {}

    def flush(wires) -> None:
        runs = tuple((w, tuple(pending.pop(w))) for w in wires if pending.get(w))
        if not runs:
            return
        steps.append(Layer(runs))

    for op in circuit.ops:
        info = op.info
        if info.n_wires == 1:
            pending.setdefault(op.wires[0], []).append(op)
            continue
        flush(sorted(pending))  # every pending run: one layer, and permutations stay adjacent
        if info.kind == "permutation":
            if steps and isinstance(steps[-1], Permutation):
                steps[-1] = Permutation(steps[-1].ops + (op,))
            else:
                steps.append(Permutation((op,)))
        elif info.kind == "diagonal":
            steps.append(Diagonal(op))
        else:
            steps.append(Dense(op))
    flush(sorted(pending))
    return Plan(circuit, tuple(steps))


@lru_cache(maxsize=256)
def _kept_states(circuit: Circuit) -> int:
    """The states a training pass keeps for its backward: one per kernel (``derived.py``)."""
    n = circuit.n_qubits
    blocks = 1 if n <= ONE_BLOCK_MAX else -(-n // BLOCK_WIRES)  # a full layer: one state per Kronecker block
    return sum(blocks if isinstance(step, Layer) and len(step.runs) >= BLOCK_SHARE * n else
               len(step.runs) if isinstance(step, Layer) else 1 for step in compile_circuit(circuit).steps)


def _state_bytes(circuit: Circuit, batch: int, double: bool) -> int:
    return batch * (2**circuit.n_qubits) * (1 if circuit.is_real else 2) * (8 if double else 4)


def uses_adjoint(circuit: Circuit, batch: int, *, double: bool = False) -> bool:
    """Whether a training pass would keep more than :data:`ADJOINT_ABOVE` of states: then it keeps none
    and recomputes each kernel's input from its output (adjoint mode of ``derived.py``)."""
    return _state_bytes(circuit, batch, double) * _kept_states(circuit) > ADJOINT_ABOVE


def estimate_bytes(circuit: Circuit, batch: int, *, double: bool = False, requires_grad: bool = True) -> int:
    """Bytes a run of ``batch`` samples needs at its peak, about: the state after every kernel
    (a Kronecker block, a gate, a permutation) kept for the backward when training, or three once
    that exceeds :data:`ADJOINT_ABOVE` (adjoint mode), and six working states; three states without
    gradients; plus the measurement's gathered copies. (Measured peaks of a training pass at batch 64,
    float32, depth-6 StronglyEntanglingLayers, ``benchmarks/circuit_memory.py``: 16 qubits 938 MiB,
    estimate 1152; forced adjoint 129, estimate 288; 20 qubits, adjoint, 1799, estimate 4608.)

    Example:
        >>> estimate_bytes(Circuit(20), 4, requires_grad=False) // 2**20   # 3 real float32 states
        48
    """
    state = _state_bytes(circuit, batch, double)
    words = sum(1 for m in circuit.measurements if isinstance(m, Expval) for _, w in m.terms if any(p != "Z" for p, _ in w))
    if not requires_grad:
        return state * 3 + state * 2 * words
    # kept states, then the backward's working ones (the gradient, the kernels' outputs and views)
    stored = 3 if uses_adjoint(circuit, batch, double=double) else _kept_states(circuit)
    return state * (stored + 6) + state * 2 * words

"""Compile a :class:`~qtransfer.quantum.description.Circuit` into a plan of executor steps (no torch).

A pass in Qiskit's sense: it reads the circuit and returns a :class:`Plan`, a tuple of steps
the executors run in order, each with the cheapest kernel for what it holds:

``OneQubit``     a run of one-qubit gates on one wire, fused into one 2x2 matrix (gates on
                 other wires commute with it, so a run ends only at a multi-wire gate on that wire);
``Permutation``  consecutive fixed permutation gates (CNOT, SWAP, Toffoli) as one gather of the basis;
``Diagonal``     a multi-wire diagonal gate (CZ, CRZ, IsingZZ): an elementwise product;
``Dense``        any other multi-wire gate (CY, CRX, CRY, IsingXX, IsingYY): one contraction.

Example:
    >>> from qtransfer.quantum.templates import basic_entangler_layers
    >>> plan = compile_circuit(basic_entangler_layers(3, 2))
    >>> len(plan.circuit.ops), [type(s).__name__ for s in plan.steps[:3]]
    (12, ['OneQubit', 'OneQubit', 'Permutation'])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .description import Circuit, Operation

__all__ = ["Dense", "Diagonal", "OneQubit", "Permutation", "Plan", "compile_circuit"]


@dataclass(frozen=True)
class OneQubit:
    wire: int
    ops: tuple[Operation, ...]

    @property
    def uses_input(self) -> bool:
        return any(op.uses_input for op in self.ops)


@dataclass(frozen=True)
class Permutation:
    ops: tuple[Operation, ...]


@dataclass(frozen=True)
class Diagonal:
    op: Operation


@dataclass(frozen=True)
class Dense:
    op: Operation


Step = OneQubit | Permutation | Diagonal | Dense


@dataclass(frozen=True)
class Plan:
    circuit: Circuit
    steps: tuple[Step, ...]

    @property
    def n_qubits(self) -> int:
        return self.circuit.n_qubits


@lru_cache(maxsize=256)
def compile_circuit(circuit: Circuit) -> Plan:
    """Fuse one-qubit runs and permutation runs; see the module docstring."""
    steps: list[Step] = []
    pending: dict[int, list[Operation]] = {}

    def flush(wires) -> None:
        for w in wires:
            run = pending.pop(w, None)
            if run:
                steps.append(OneQubit(w, tuple(run)))

    for op in circuit.ops:
        info = op.info
        if info.n_wires == 1:
            pending.setdefault(op.wires[0], []).append(op)
            continue
        flush(op.wires)
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


"""Run a :class:`CircuitSpec` on any PennyLane device, through PennyLane's torch interface.

PennyLane is imported here, lazily: ``import qtransfer.quantum`` does not need it.
"""

from __future__ import annotations

from typing import Callable

import torch

from .circuit import CircuitSpec

__all__ = ["build_noisy_qnode", "build_qnode", "plugin_hint", "qnode_runner"]

#: device-name prefix -> the pip package that provides it, for error messages.
_PLUGINS = {
    "lightning.gpu": "pennylane-lightning-gpu",
    "lightning.kokkos": "pennylane-lightning-kokkos",
    "lightning.tensor": "pennylane-lightning-tensor",
    "lightning.qubit": "pennylane-lightning",
    "qiskit": "pennylane-qiskit",
    "cirq": "pennylane-cirq",
    "braket": "amazon-braket-pennylane-plugin",
    "qulacs": "pennylane-qulacs",
    "ionq": "pennylane-ionq",
}


def plugin_hint(device_name: str) -> str:
    """The pip package most likely to provide ``device_name``."""
    for prefix, package in _PLUGINS.items():
        if device_name.startswith(prefix):
            return package
    return f"pennylane-{device_name.split('.')[0]}"


def _import_pennylane():
    try:
        import pennylane as qml
    except ImportError as e:
        raise ImportError(
            "the PennyLane backend needs PennyLane: pip install 'qtransfer[pennylane]' (or pip install pennylane)"
        ) from e
    return qml


def _apply_gate(qml, gate, inputs, weights) -> None:
    op = getattr(qml, gate.name)
    if gate.param is None:
        op(wires=gate.wires)
    elif gate.param[0] == "x":
        op(inputs[..., gate.param[1]], wires=gate.wires)
    elif gate.name == "Rot":
        w = weights[gate.param[1], gate.param[2]]
        op(w[0], w[1], w[2], wires=gate.wires)
    else:
        op(weights[gate.param[1], gate.param[2]], wires=gate.wires)


def build_qnode(
    spec: CircuitSpec,
    device_name: str = "default.qubit",
    *,
    diff_method: str = "best",
    shots: int | None = None,
    seed: int | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A function ``(inputs (B, n) or (n,), weights) -> <Z_i> (B, n) or (n,)`` running ``spec`` as a QNode.

    Batched inputs use PennyLane's parameter broadcasting.

    Example:
        >>> run = build_qnode(CircuitSpec(n_qubits=2, depth=1))
        >>> run(torch.zeros(2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64))
        tensor([0., 0.], dtype=torch.float64)
    """
    qml = _import_pennylane()
    kwargs = {} if seed is None else {"seed": seed}
    try:
        device = qml.device(device_name, wires=spec.n_qubits, **kwargs)
    except qml.exceptions.DeviceError as e:
        raise ValueError(
            f"PennyLane device {device_name!r} is not available ({e}). "
            f"Install its plugin: pip install {plugin_hint(device_name)}; "
            f"or use backend='builtin' or 'pennylane:default.qubit'"
        ) from None
    return qnode_runner(spec, device, diff_method=diff_method, shots=shots)


def qnode_runner(
    spec: CircuitSpec, device, *, diff_method: str = "best", shots: int | None = None
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``run(inputs, weights) -> <Z_i>``: ``spec`` as a torch QNode on the PennyLane ``device`` (an instance)."""
    qml = _import_pennylane()
    gates = list(spec.gates())

    def circuit(inputs, weights):
        for gate in gates:
            _apply_gate(qml, gate, inputs, weights)
        return [qml.expval(qml.PauliZ(wire)) for wire in range(spec.n_qubits)]

    qnode = qml.QNode(circuit, device, interface="torch", diff_method=diff_method, shots=shots)

    def run(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = qnode(inputs, weights)
        return torch.stack(list(out), dim=-1)

    run.qnode = qnode  # type: ignore[attr-defined]
    return run


def _noise_channels(qml, noise, n_qubits: int):
    """``(after_gate(gate), before_measuring())``: PennyLane channels equal to ``noise``'s.

    Conversions (docs/noise.md): our depolarizing parameter ``p`` (Qiskit's) is
    ``DepolarizingChannel(3p/4)``; the 2-qubit one is a ``QubitChannel`` of the 16 two-qubit
    Paulis (identity ``1 - 15p/16``, the others ``p/16`` each); relaxation is
    ``AmplitudeDamping(gamma)`` then ``PhaseDamping(lambda)``; the readout error is a
    ``QubitChannel`` with Kraus ``[[sqrt(1-a), 0], [0, sqrt(1-b)]]``, ``[[0, sqrt(b)], [sqrt(a), 0]]``
    on each wire before measuring (default.mixed's own ``readout_prob`` crashes in PennyLane
    0.45, PennyLaneAI/pennylane#9612, and is symmetric only).
    """
    import numpy as np

    paulis = [np.eye(2, dtype=complex)] + [qml.matrix(P(0)) for P in (qml.PauliX, qml.PauliY, qml.PauliZ)]
    p1, p2, r = noise.depolarizing.p1, noise.depolarizing.p2, noise.relaxation
    two = [np.kron(a, b) for a in paulis for b in paulis]
    kraus2 = [np.sqrt(1 - 15 * p2 / 16) * two[0]] + [np.sqrt(p2 / 16) * k for k in two[1:]]

    def relax(wire: int, duration: float) -> None:
        if r is not None:
            gamma, lam = r.damping(duration)
            qml.AmplitudeDamping(gamma, wires=wire)
            qml.PhaseDamping(lam, wires=wire)

    def after_gate(gate) -> None:
        if len(gate.wires) == 1:
            qml.DepolarizingChannel(3 * p1 / 4, wires=gate.wires)
            relax(gate.wires[0], r.t_1q if r else 0.0)
            return
        qml.QubitChannel(kraus2, wires=gate.wires)
        for wire in gate.wires:
            relax(wire, r.t_2q if r else 0.0)

    def before_measuring() -> None:
        for q in range(n_qubits):
            a, b = noise.readout_for(q).p1_given_0, noise.readout_for(q).p0_given_1
            flip = [np.array([[np.sqrt(1 - a), 0], [0, np.sqrt(1 - b)]]), np.array([[0, np.sqrt(b)], [np.sqrt(a), 0]])]
            qml.QubitChannel(flip, wires=q)

    return after_gate, before_measuring


def build_noisy_qnode(
    spec: CircuitSpec, noise, device_name: str = "default.mixed", *, diff_method: str = "backprop"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Like :func:`build_qnode`, with ``noise`` (a :class:`~qtransfer.quantum.noise.NoiseModel`)
    written into the circuit as PennyLane channels, on a mixed-state device: the reference
    the density-matrix simulator is tested and benchmarked against.

    Example:
        >>> from qtransfer.quantum.noise import parse_noise
        >>> run = build_noisy_qnode(CircuitSpec(n_qubits=1, depth=0, embedding="ry"), parse_noise("depolarizing:readout=0.1"))
        >>> run(torch.zeros(1, dtype=torch.float64), torch.zeros(0, 1, dtype=torch.float64))
        tensor([0.8000], dtype=torch.float64)
    """
    qml = _import_pennylane()
    device = qml.device(device_name, wires=spec.n_qubits)
    gates = list(spec.gates())
    after_gate, before_measuring = _noise_channels(qml, noise, spec.n_qubits)

    def circuit(inputs, weights):
        for gate in gates:
            _apply_gate(qml, gate, inputs, weights)
            after_gate(gate)
        before_measuring()
        return [qml.expval(qml.PauliZ(wire)) for wire in range(spec.n_qubits)]

    qnode = qml.QNode(circuit, device, interface="torch", diff_method=diff_method)

    def run(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(qnode(inputs, weights)), dim=-1)

    run.qnode = qnode  # type: ignore[attr-defined]
    return run

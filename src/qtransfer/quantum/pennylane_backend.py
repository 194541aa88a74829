"""Run a :class:`CircuitSpec` on any PennyLane device, through PennyLane's torch interface.

PennyLane is imported here, lazily: ``import qtransfer.quantum`` does not need it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .circuit import CircuitSpec

__all__ = ["build_device_qnode", "build_noisy_qnode", "build_qnode", "plugin_hint", "qnode_runner"]

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
            qml.QubitChannel(_readout_flip(noise.readout_for(q)), wires=q)

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


#: transpiled (native) gate name -> PennyLane operation name
_NATIVE = {"rz": "RZ", "rx": "RX", "ry": "RY", "sx": "SX", "x": "PauliX", "id": "Identity", "cx": "CNOT", "cz": "CZ", "ecr": "ECR"}


def _device_ops(spec: CircuitSpec, device: str) -> tuple[list, Any, list[int]]:
    """The transpiled circuit of ``spec`` on ``device`` as ``(PennyLane op name, physical
    qubits, angle, Kraus of its Aer error or None)`` per instruction, the Aer noise model, and
    the physical qubit of each logical qubit. An angle is a number or ``(param, scale, offset)``
    (``theta`` = inputs then flat weights), as in :mod:`qtransfer.quantum.devices`."""
    from .devices import (
        NoiseLookup,
        aer_noise_model,
        affine_angle,
        fake_backend,
        theta_index,
        transpile_for,
    )

    backend = fake_backend(device)
    model = aer_noise_model(backend)
    errors = NoiseLookup(model)
    transpiled = transpile_for(spec, backend)
    index_of = theta_index(transpiled, spec.n_qubits)
    ops = []
    for ins in transpiled.data:
        op, qubits = ins.operation, tuple(transpiled.find_bit(q).index for q in ins.qubits)
        if op.name == "barrier":
            continue
        if op.name not in _NATIVE:
            raise ValueError(f"no PennyLane peer for the transpiled gate {op.name}")
        angle = affine_angle(op.params[0], index_of) if op.params else None
        ops.append((_NATIVE[op.name], qubits, angle, errors.kraus(op.name, qubits)))
    layout = list(transpiled.layout.final_index_layout()[: spec.n_qubits])
    return ops, model, layout


def _readout_flip(error) -> list:
    """A :class:`~qtransfer.quantum.noise.ReadoutError` as the Kraus matrices of a channel applied
    before an ideal measurement (exact for the read-out distribution and ``<Z>``)."""
    import numpy as np

    a, b = error.p1_given_0, error.p0_given_1
    return [np.array([[np.sqrt(1 - a), 0], [0, np.sqrt(1 - b)]]), np.array([[0, np.sqrt(b)], [np.sqrt(a), 0]])]


def _readout_kraus(model, qubit: int) -> list | None:
    """Aer's readout error on ``qubit`` as a channel before measuring; ``None`` without one."""
    from .devices import readout_errors

    (error,) = readout_errors(model, [qubit])
    return None if error.p1_given_0 == 0 and error.p0_given_1 == 0 else _readout_flip(error)


def build_device_qnode(
    spec: CircuitSpec, device: str, device_name: str = "default.mixed", *, diff_method: str = "backprop",
    shots: int | None = None, seed: int | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``spec`` as the fake backend ``device`` runs it, on a PennyLane device: the peer of
    ``QuantumLayer(noise=device)`` (:mod:`qtransfer.quantum.device_sim`) in the tests and
    ``benchmarks/noise.py``. Same inputs and outputs as :func:`build_qnode`.

    The circuit is the one :func:`qtransfer.quantum.devices.transpile_for` returns (native
    gates on physical qubits, angles bound per call). On ``default.mixed`` every gate is
    followed by its error from ``NoiseModel.from_backend`` as a ``QubitChannel`` (its Kraus
    matrices) and each measured qubit's readout error is a ``QubitChannel`` before measuring
    (``readout_prob`` is one symmetric probability for all wires and crashes in PennyLane
    0.45). On ``qiskit.aer`` the gates alone are sent (``optimization_level=0``, so Aer
    gets them unchanged) with the noise model, which applies the same errors and samples the
    readout error with the ``shots``; that device always samples (``shots=None`` means 1024).
    """
    qml = _import_pennylane()
    ops, model, layout = _device_ops(spec, device)
    wires = sorted({q for _, qubits, _, _ in ops for q in qubits} | set(layout))
    explicit = device_name != "qiskit.aer"
    if explicit:
        dev = qml.device(device_name, wires=wires)
    else:
        extra = {} if seed is None else {"seed_simulator": seed}
        dev = qml.device("qiskit.aer", wires=max(wires) + 1, method="density_matrix", noise_model=model,
                         optimization_level=0, shots=shots or 1024, **extra)
    readout = [_readout_kraus(model, q) for q in layout]

    def circuit(inputs, weights):
        theta = torch.cat([inputs, weights.reshape(-1).expand(*inputs.shape[:-1], -1)], -1)
        for name, qubits, angle, kraus in ops:
            gate = getattr(qml, name)
            if angle is None:
                gate(wires=list(qubits))
            else:
                gate(angle if isinstance(angle, float) else theta[..., angle[0]] * angle[1] + angle[2], wires=list(qubits))
            if explicit and kraus is not None:
                qml.QubitChannel(kraus, wires=list(qubits))
        for q, kraus in zip(layout, readout):
            if explicit and kraus is not None:
                qml.QubitChannel(kraus, wires=q)
        return [qml.expval(qml.PauliZ(q)) for q in layout]

    qnode = qml.QNode(circuit, dev, interface="torch", diff_method=diff_method if explicit else "parameter-shift")

    def run(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(qnode(inputs, weights)), dim=-1)

    run.qnode = qnode  # type: ignore[attr-defined]
    return run

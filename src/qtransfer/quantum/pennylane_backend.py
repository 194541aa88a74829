"""Run a :class:`CircuitSpec` on any PennyLane device, through PennyLane's torch interface.

PennyLane is imported here, lazily: ``import qtransfer.quantum`` does not need it.
"""

from __future__ import annotations

from typing import Callable

import torch

from .circuit import CircuitSpec

__all__ = ["build_qnode", "plugin_hint"]

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
    gates = list(spec.gates())

    def circuit(inputs, weights):
        for gate in gates:
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
        return [qml.expval(qml.PauliZ(wire)) for wire in range(spec.n_qubits)]

    qnode = qml.QNode(circuit, device, interface="torch", diff_method=diff_method, shots=shots)

    def run(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = qnode(inputs, weights)
        return torch.stack(list(out), dim=-1)

    run.qnode = qnode  # type: ignore[attr-defined]
    return run

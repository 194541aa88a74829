"""``QuantumLayer``: a variational circuit as a ``torch.nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from qtransfer.seeding import normal

from .circuit import CircuitSpec
from .circuit_file import as_circuit
from .description import Circuit
from .density import DENSITY_MAX_QUBITS, density_expval_z
from .noise import DeviceNoise, NoiseModel, parse_noise
from .executor import run_circuit
from .simulator import simulate

__all__ = ["QuantumLayer", "parse_backend"]


def parse_backend(backend: str) -> tuple[str, str | None]:
    """``"builtin"`` -> ("builtin", None); ``"pennylane:DEVICE"`` -> ("pennylane", DEVICE)."""
    if backend == "builtin":
        return "builtin", None
    if isinstance(backend, str) and backend.startswith("pennylane:") and len(backend) > len("pennylane:"):
        return "pennylane", backend.split(":", 1)[1]
    if backend == "pennylane":
        return "pennylane", "default.qubit"
    raise ValueError(
        f"unknown quantum backend {backend!r}; use 'builtin' or 'pennylane:DEVICE' "
        "(e.g. 'pennylane:default.qubit', 'pennylane:lightning.qubit')"
    )


def _resolve_noise(noise: NoiseModel | DeviceNoise | str | None, backend: str, spec: CircuitSpec, shots: int | None):
    """The layer's noise: parsed from its string form, checked against the backend and size."""
    kind, device_name = parse_backend(backend)
    if isinstance(noise, str):
        noise = parse_noise(noise)
    if noise is not None and not isinstance(noise, (NoiseModel, DeviceNoise)):
        raise TypeError(
            f"noise must be a NoiseModel, a DeviceNoise, a string such as 'depolarizing:p1=0.001' or 'fake_manila', "
            f"or None, got {noise!r}"
        )
    if kind == "pennylane":
        from .hardware import check_pennylane_noise

        check_pennylane_noise(device_name, noise, shots)
    if isinstance(noise, NoiseModel) and isinstance(noise.readout, tuple) and len(noise.readout) != spec.n_qubits:
        raise ValueError(
            f"the noise model has {len(noise.readout)} readout errors for {spec.n_qubits} qubits; "
            "give one per wire or a single ReadoutError for all"
        )
    if noise is not None and spec.n_qubits > DENSITY_MAX_QUBITS:
        raise ValueError(
            f"noisy simulation supports up to {DENSITY_MAX_QUBITS} qubits, got {spec.n_qubits}; use --noise none "
            f"(noise=None in Python) or at most {DENSITY_MAX_QUBITS} --qubits"
        )
    return noise


def _pennylane_qnode(spec: CircuitSpec, device_name: str, noise, shots: int | None, seed: int | None, diff_method: str):
    """The QNode runner of a PennyLane backend: Qiskit's devices under device noise or remote, else any device."""
    from .hardware import build_qiskit_qnode, is_qiskit_device
    from .pennylane_backend import build_qnode

    if is_qiskit_device(device_name, noise):
        return build_qiskit_qnode(spec, device_name, noise, shots=shots, seed=seed, diff_method=diff_method)
    return build_qnode(spec, device_name, diff_method=diff_method, shots=shots, seed=seed)


def _circuit_qnode(circuit: Circuit, device_name: str, noise, shots: int | None, seed: int | None, diff_method: str):
    """A PennyLane QNode of a general circuit: ``(x (B, n_inputs), w) -> (B, n_outputs)``."""
    if noise is not None:
        raise ValueError("a general circuit runs noise-free on PennyLane devices for now; drop noise or use the "
                         "published family (--embedding/--layer)")
    from .interop import to_pennylane
    from .pennylane_backend import _import_pennylane, plugin_hint

    qml = _import_pennylane()
    kwargs = {} if seed is None else {"seed": seed}
    try:
        device = qml.device(device_name, wires=circuit.n_qubits, **kwargs)
    except qml.exceptions.DeviceError as e:
        raise ValueError(f"PennyLane device {device_name!r} is not available ({e}); "
                         f"install its plugin: pip install {plugin_hint(device_name)}") from None
    qnode = qml.QNode(to_pennylane(circuit), device, interface="torch", diff_method=diff_method, shots=shots)

    def run(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        outs = [o if o.ndim == 2 else o.reshape(-1, 1) if x.shape[0] > 1 else o.reshape(1, -1)
                for o in qnode(x if x.shape[0] > 1 else x[0], w)]
        return torch.cat([o.expand(x.shape[0], -1) for o in outs], dim=1)

    return run


def _check_angles(x: torch.Tensor, n: int, what: str) -> None:
    """``x`` must be real angles of shape ``(..., n)``; else an error that says what to put in front."""
    if x.ndim == 0 or x.shape[-1] != n:
        raise ValueError(
            f"QuantumLayer expects input of shape (..., {n}) ({what}), got {tuple(x.shape)}; "
            f"put a Linear(features, {n}) in front of it"
        )
    if not x.is_floating_point():
        raise TypeError(f"QuantumLayer expects real floating-point angles, got {x.dtype}")


class QuantumLayer(nn.Module):
    """Angles ``(..., n_inputs)`` in, the circuit's measurements ``(..., n_outputs)`` out.

    The published family (``n_qubits``, ``depth``, ``embedding``, ``layer``) maps wire i's
    angle to ``<Z_i>`` and runs the fast hand-derived simulator; ``circuit=`` runs any circuit
    (a :class:`~qtransfer.quantum.description.Circuit`, a template's, a circuit file's path or
    its content) on the general executor, with one trainable weight tensor of the circuit's
    ``weight_shape`` (for :func:`~qtransfer.quantum.interop.from_qiskit`: in the order of
    ``weight_params``).

    The trainable ``weights`` (shape ``spec.weight_shape``) start as ``q_delta * randn``
    (Mari et al.: q_delta = 0.01), drawn alike on every CPU (:mod:`qtransfer.seeding`). Layers of the same shape have the same ``state_dict``
    keys whatever their backend, so weights copy across with ``load_state_dict``.

    Args:
        n_qubits, depth, embedding, layer: the circuit (see :mod:`qtransfer.quantum.circuit`).
        circuit: any circuit instead (the four arguments above are then ignored); under a noise
            model it runs on :mod:`qtransfer.quantum.density_circuit`, on a calibrated ``fake_*``
            device on :mod:`qtransfer.quantum.device_sim` (its measurements as the device reads them
            out: X/Y words after a basis change, every bit through the readout error).
        backend: ``"builtin"`` (the PyTorch simulator) or ``"pennylane:DEVICE"``; with a calibrated
            device as ``noise``, also ``"pennylane:qiskit.aer"`` (Aer's own simulation, the slow
            reference) or ``"pennylane:qiskit.remote"`` (the fake backend through IBM's primitives);
            ``"pennylane:qiskit.remote:IBM_BACKEND"`` runs on IBM hardware (needs ``shots``;
            see :mod:`qtransfer.quantum.hardware`).
        q_delta: scale of the initial weights.
        noise: a :class:`~qtransfer.quantum.noise.NoiseModel` or its string form
            (``"depolarizing:p1=0.001,p2=0.01,readout=0.02"``), a calibrated device
            (``"fake_manila"``, :class:`~qtransfer.quantum.noise.DeviceNoise`; needs the
            ``hardware`` extra), or ``None`` (ideal). A noisy layer runs a density-matrix
            simulator (:mod:`qtransfer.quantum.density`, or :mod:`qtransfer.quantum.device_sim`
            on the transpiled circuit of a device; built-in backend, up to 7 qubits) and returns
            the noisy ``<Z_i>`` of each logical qubit (a general circuit: its measurements) as read out.
        shots: ``None`` for exact expectation values, else the number of measurement shots.
        seed: seeds the shot sampler (``None``: torch's global generator).
        diff_method: PennyLane differentiation method (PennyLane backends only).
        device, dtype: of the weights (``dtype`` a real floating type).

    Example:
        >>> layer = QuantumLayer(n_qubits=4, depth=6)
        >>> layer(torch.zeros(8, 4)).shape
        torch.Size([8, 4])
        >>> QuantumLayer(2, 1, noise="depolarizing:p1=0.01,readout=0.02").noise.depolarizing.p1
        0.01
        >>> from qtransfer.quantum.templates import angle_embedding, compose, strongly_entangling_layers
        >>> layer = QuantumLayer(circuit=compose(angle_embedding(3), strongly_entangling_layers(3, 2),
        ...                                      measurements=("Z0 Z1", "X2")))
        >>> layer.weights.shape, layer(torch.zeros(5, 3)).shape
        (torch.Size([18]), torch.Size([5, 2]))
    """

    def __init__(
        self,
        n_qubits: int = 4,
        depth: int = 6,
        backend: str = "builtin",
        *,
        embedding: str = "hadamard_ry",
        layer: str = "cnot_ry",
        circuit: "Circuit | CircuitSpec | str | dict | None" = None,
        q_delta: float = 0.01,
        noise: NoiseModel | str | None = None,
        shots: int | None = None,
        seed: int | None = None,
        diff_method: str = "best",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if circuit is None or isinstance(circuit, CircuitSpec):
            self.spec: CircuitSpec | None = circuit or CircuitSpec(n_qubits=n_qubits, depth=depth, embedding=embedding, layer=layer)
            self.circuit = self.spec.to_circuit()
        else:
            self.spec, self.circuit = None, as_circuit(circuit)
        self.backend = backend
        kind, device_name = parse_backend(backend)
        if shots is not None and (not isinstance(shots, int) or isinstance(shots, bool) or shots < 1):
            raise ValueError(f"shots must be a positive integer or None, got {shots!r}")
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a real floating type (float32/float64), got {dtype}")
        on_device = isinstance(parse_noise(noise) if isinstance(noise, str) else noise, DeviceNoise)
        if self.spec is None and shots is not None and kind == "builtin" and not on_device:
            from .executor import check_shots

            check_shots(self.circuit)
        self.noise = _resolve_noise(noise, backend, self.spec or CircuitSpec(self.circuit.n_qubits, 0), shots)
        if self.spec is None:  # the published family is checked where it is simulated (memory.py)
            from .executor import check_memory

            check_memory(self.circuit, 1, dtype or torch.float32, device or "cpu")
        self._device = None
        if isinstance(self.noise, DeviceNoise) and kind == "builtin":
            from .device_sim import DeviceCircuit
            from .devices import compile_for_device

            self._device = DeviceCircuit(compile_for_device(self.spec or self.circuit, self.noise.name))
        self.shots = shots
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._qnode = None
        if kind == "pennylane" and self.spec is None:
            self._qnode = _circuit_qnode(self.circuit, device_name, self.noise, shots, seed, diff_method)
        elif kind == "pennylane":
            self._qnode = _pennylane_qnode(self.spec, device_name, self.noise, shots, seed, diff_method)
        self.weights = nn.Parameter(normal(self.circuit.weight_shape, q_delta, dtype=dtype, device=device))

    @property
    def n_qubits(self) -> int:
        return self.circuit.n_qubits

    @property
    def n_inputs(self) -> int:
        """Width of the input: one angle per wire for the published family."""
        return self.circuit.n_inputs

    @property
    def n_outputs(self) -> int:
        """Number of measured values (``<Z_i>`` on every wire by default)."""
        return self.circuit.n_outputs

    def extra_repr(self) -> str:
        if self.spec is None:
            c = self.circuit
            return (f"circuit={c.name or 'custom'!r}, n_qubits={c.n_qubits}, n_inputs={c.n_inputs}, "
                    f"n_outputs={c.n_outputs}, weights={c.weight_shape}, backend={self.backend!r}, shots={self.shots}")
        s = self.spec
        noise = "" if self.noise is None else f", noise={self.noise!r}"
        return f"n_qubits={s.n_qubits}, depth={s.depth}, embedding={s.embedding!r}, layer={s.layer!r}, backend={self.backend!r}, shots={self.shots}{noise}"

    @property
    def is_builtin(self) -> bool:
        """Whether the built-in simulator runs this layer (not a PennyLane device)."""
        return self._qnode is None

    def device_description(self) -> dict | None:
        """For a calibrated device: its name, calibration date, layout (logical -> physical qubit)
        and native gate counts of the transpiled circuit; ``None`` otherwise."""
        return None if self._device is None else self._device.program.describe()

    def sampler_state(self) -> torch.Tensor | None:
        """The seeded shot sampler's generator state, or ``None`` (exact values, or nothing drawn yet)."""
        return None if self._generator is None else self._generator.get_state()

    def set_sampler_state(self, state: torch.Tensor) -> None:
        """Continue shot sampling from ``state`` (a :meth:`sampler_state`), on the weights' device."""
        if self.seed is None:
            raise ValueError("this layer has no seeded shot sampler (seed=None): there is no state to set")
        self._sampler(self.weights.device).set_state(state)

    def _sampler(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec is None:
            return self._forward_circuit(x)
        n = self.spec.n_qubits
        _check_angles(x, n, "one angle per qubit")
        weights = self.weights.to(x.dtype)
        if self._device is not None:
            out = self._device.expval_z(x.reshape(-1, n), weights, shots=self.shots, generator=self._sampler(x.device))
            return out.reshape(x.shape)
        if self._qnode is None and self.noise is not None:
            out = density_expval_z(
                self.spec, x.reshape(-1, n), weights, self.noise, shots=self.shots, generator=self._sampler(x.device)
            )
            return out.reshape(x.shape)
        if self._qnode is None:
            return simulate(self.spec, x, weights, shots=self.shots, generator=self._sampler(x.device))
        lead = x.shape[:-1]
        flat = x.reshape(-1, n)
        out = self._qnode(flat if flat.shape[0] > 1 else flat[0], weights)
        return out.reshape(*lead, n).to(x.dtype)

    def _forward_circuit(self, x: torch.Tensor) -> torch.Tensor:
        c = self.circuit
        _check_angles(x, c.n_inputs, "the circuit's inputs")
        weights = self.weights.to(x.dtype)
        if self._device is not None:
            out = self._device.outputs(x.reshape(-1, c.n_inputs), weights, shots=self.shots,
                                       generator=self._sampler(x.device))
            return out.reshape(*x.shape[:-1], c.n_outputs)
        if self._qnode is None and self.noise is not None:
            from .density_circuit import noisy_run_circuit

            flat = x.reshape(-1, c.n_inputs)
            out = noisy_run_circuit(c, flat, weights, self.noise, shots=self.shots, generator=self._sampler(x.device))
            return out.reshape(*x.shape[:-1], c.n_outputs)
        if self._qnode is None:
            return run_circuit(c, x, weights, shots=self.shots, generator=self._sampler(x.device))
        flat = x.reshape(-1, c.n_inputs)
        return self._qnode(flat, weights).reshape(*x.shape[:-1], c.n_outputs).to(x.dtype)

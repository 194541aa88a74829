"""PennyLane's Qiskit devices with calibrated device noise: ``qiskit.aer`` and ``qiskit.remote``.

* ``pennylane:qiskit.aer`` with ``noise="fake_NAME"``: Qiskit Aer's own density-matrix
  simulation of the circuit under ``NoiseModel.from_backend`` of the fake backend, through
  pennylane-qiskit: the slow reference to cross-check the built-in
  :mod:`qtransfer.quantum.device_sim` with. The device transpiles the circuit for the fake
  backend with :func:`~qtransfer.quantum.devices.transpile_options` (the built-in's layout,
  ``optimization_level=1, seed_transpiler=0``). With shots, Aer samples the measurement
  (readout error included). Without, the plugin would sample 1024 shots (a density-matrix
  backend is not one of its "state" backends), so :func:`_exact_aer_device` saves Aer's
  density matrix of the measured qubits and reads its diagonal through the noise model's
  readout errors: exact ``<Z_i>``.
* ``pennylane:qiskit.remote:IBM_BACKEND``: IBM hardware through IBM's Runtime primitives, with
  the credentials ``QiskitRuntimeService()`` finds (``QISKIT_IBM_TOKEN`` and
  ``QISKIT_IBM_INSTANCE`` in the environment, else the account saved by
  ``QiskitRuntimeService.save_account``); qtransfer never sees or stores them. With
  ``noise="fake_NAME"`` and no backend name it runs locally on the fake backend instead
  (the primitives' local testing mode). Remote devices sample: ``shots`` is required.

The rules (:func:`check_pennylane_noise`) need neither torch nor Qiskit, for config validation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .circuit import CircuitSpec
from .noise import DeviceNoise, NoiseModel

__all__ = ["QISKIT_DEVICES", "build_qiskit_qnode", "check_pennylane_noise", "is_qiskit_device", "split_remote"]

AER, REMOTE = "qiskit.aer", "qiskit.remote"
QISKIT_DEVICES = (AER, REMOTE)


def split_remote(device_name: str) -> tuple[str, str | None]:
    """``"qiskit.remote:ibm_brisbane"`` -> ``("qiskit.remote", "ibm_brisbane")``; others unchanged, with ``None``.

    Example:
        >>> split_remote("qiskit.remote:ibm_brisbane"), split_remote("qiskit.aer")
        (('qiskit.remote', 'ibm_brisbane'), ('qiskit.aer', None))
    """
    base, sep, name = device_name.partition(":")
    return (base, name or None) if base == REMOTE and sep else (device_name, None)


def is_qiskit_device(device_name: str, noise: Any) -> bool:
    """Whether :func:`build_qiskit_qnode` runs this PennyLane device (remote, or Aer under device noise)."""
    base, _ = split_remote(device_name)
    return base == REMOTE or (base == AER and isinstance(noise, DeviceNoise))


def check_pennylane_noise(device_name: str, noise: NoiseModel | DeviceNoise | None, shots: int | None) -> None:
    """Raise ``ValueError`` unless ``noise`` (parsed) and ``shots`` suit the PennyLane device ``device_name``.

    Example:
        >>> check_pennylane_noise("qiskit.aer", DeviceNoise("fake_manila"), None)
        >>> check_pennylane_noise("default.mixed", DeviceNoise("fake_manila"), None)
        Traceback (most recent call last):
        ...
        ValueError: calibrated device noise (fake_manila) runs on the built-in simulator (--backend builtin), on Aer's reference (--backend pennylane:qiskit.aer) or on the fake backend through IBM's primitives (--backend pennylane:qiskit.remote), not on pennylane:default.mixed
    """
    base, ibm_name = split_remote(device_name)
    if isinstance(noise, NoiseModel):
        raise ValueError(f"depolarizing/thermal noise applies to the built-in simulator only; use --backend builtin "
                         f"(got pennylane:{device_name}; PennyLane devices take their noise from the device)")
    if isinstance(noise, DeviceNoise) and base not in QISKIT_DEVICES:
        raise ValueError(f"calibrated device noise ({noise.name}) runs on the built-in simulator (--backend builtin), "
                         f"on Aer's reference (--backend pennylane:qiskit.aer) or on the fake backend through IBM's "
                         f"primitives (--backend pennylane:qiskit.remote), not on pennylane:{device_name}")
    if base != REMOTE:
        return
    if isinstance(noise, DeviceNoise) and ibm_name:
        raise ValueError(f"pennylane:{device_name} runs on IBM's {ibm_name}, whose noise is its own: drop --noise, "
                         f"or use --backend pennylane:qiskit.remote --noise {noise.name} to run on the fake backend")
    if noise is None and not ibm_name:
        raise ValueError("name the IBM backend, e.g. --backend pennylane:qiskit.remote:ibm_brisbane "
                         "(or add --noise fake_manila to run locally on a fake backend)")
    if shots is None:
        raise ValueError("pennylane:qiskit.remote samples the device: give the number of shots (--shots 1024)")


def _import_plugin():
    from .devices import HARDWARE_EXTRA

    try:
        import pennylane_qiskit
        import qiskit_ibm_runtime
    except ImportError as e:
        raise ImportError(f"--backend pennylane:qiskit.* needs pennylane-qiskit: {HARDWARE_EXTRA}") from e
    return pennylane_qiskit, qiskit_ibm_runtime


@lru_cache(maxsize=1)
def _exact_aer_device() -> type:
    """pennylane-qiskit's ``AerDevice`` made exact (``shots=None``) on the density-matrix method."""
    import numpy as np

    from .devices import readout_errors

    pennylane_qiskit, _ = _import_plugin()

    class ExactAerDevice(pennylane_qiskit.AerDevice):
        """Saves the density matrix of the measured qubits instead of measuring them; the
        probabilities of the read-out bit strings are its diagonal through the readout errors."""

        _is_state_backend = True  # analytic statistics from the "state" below

        def __init__(self, wires, *, noise_model, **kwargs) -> None:
            self._noise_model = noise_model
            super().__init__(wires, method="density_matrix", noise_model=noise_model, **kwargs)

        def compile(self):
            self._circuit.data = [i for i in self._circuit.data if i.operation.name != "save_state"]
            compiled = super().compile()
            self._measured = list(compiled.layout.final_index_layout()[: self.num_wires])
            compiled.save_density_matrix(qubits=self._measured)
            return compiled

        def _get_state(self, result, experiment=None):
            n = self.num_wires
            rho = np.asarray(result.data(experiment)["density_matrix"])
            p = np.real(np.diag(rho)).reshape([2] * n).transpose(range(n - 1, -1, -1))  # axis i: wire i
            for i, error in enumerate(readout_errors(self._noise_model, self._measured)):
                confusion = np.array(error.confusion())  # [read][true]
                p = np.moveaxis(np.tensordot(confusion, p, axes=([1], [i])), 0, i)
            return p.reshape(-1)

        def analytic_probability(self, wires=None):
            return None if self._state is None else self.marginal_prob(self._state, wires)

    return ExactAerDevice


def _aer_device(spec: CircuitSpec, noise: DeviceNoise, shots: int | None, seed: int | None) -> Any:
    import pennylane as qml

    from .devices import aer_noise_model, fake_backend, transpile_for, transpile_options

    backend = fake_backend(noise.name)
    layout = transpile_options(spec, backend)
    counts = transpile_for(spec, backend, layout).count_ops()
    if sum(v for k, v in counts.items() if k in ("cx", "ecr", "cz", "swap")) > len(spec.entangling_pairs()) * spec.depth:
        raise ValueError(f"this circuit needs routing (swaps) on {noise.name}, which pennylane-qiskit's qiskit.aer "
                         "turns off; use --backend builtin or pennylane:qiskit.remote")
    options = {"compile_backend": backend, "noise_model": aer_noise_model(backend), **layout}
    if shots is None:
        return _exact_aer_device()(spec.n_qubits, **options)
    if seed is not None:
        options["seed_simulator"] = seed
    return qml.device(AER, wires=spec.n_qubits, shots=shots, method="density_matrix", **options)


def _ibm_backend(name: str) -> Any:
    """IBM's backend ``name``, with the credentials ``QiskitRuntimeService()`` finds (never passed through qtransfer)."""
    _, runtime = _import_plugin()
    try:
        service = runtime.QiskitRuntimeService()
    except Exception as e:  # noqa: BLE001 - AccountNotFoundError, or a refused token
        raise ValueError(
            f"pennylane:qiskit.remote:{name} needs IBM Quantum credentials ({e}); set QISKIT_IBM_TOKEN and "
            "QISKIT_IBM_INSTANCE, or save them once with QiskitRuntimeService.save_account(token=..., instance=...)"
        ) from None
    return service.backend(name)


def _remote_device(spec: CircuitSpec, device_name: str, noise: DeviceNoise | None, shots: int, seed: int | None) -> Any:
    import pennylane as qml

    from .devices import fake_backend, transpile_options

    _, ibm_name = split_remote(device_name)
    backend = fake_backend(noise.name) if noise is not None else _ibm_backend(ibm_name)
    options = transpile_options(spec, backend)
    if noise is not None and seed is not None:
        options["simulator"] = {"seed_simulator": seed}  # local testing mode only
    return qml.device(REMOTE, wires=spec.n_qubits, backend=backend, shots=shots, **options)


def build_qiskit_qnode(
    spec: CircuitSpec,
    device_name: str,
    noise: DeviceNoise | None,
    *,
    shots: int | None = None,
    seed: int | None = None,
    diff_method: str = "best",
) -> Callable:
    """``run(inputs, weights) -> <Z_i>`` on ``qiskit.aer`` (under ``noise``) or ``qiskit.remote[:NAME]``
    (see the module docstring); gradients by parameter shift, one circuit per sample (PennyLane's
    parameter shift does not differentiate broadcast inputs)."""
    import torch

    from .pennylane_backend import qnode_runner

    check_pennylane_noise(device_name, noise, shots)
    _import_plugin()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if split_remote(device_name)[0] == REMOTE:
            device = _remote_device(spec, device_name, noise, shots, seed)
        else:
            device = _aer_device(spec, noise, shots, seed)
    run = qnode_runner(spec, device, diff_method=diff_method, shots=shots)

    def per_sample(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return run(inputs, weights) if inputs.ndim == 1 else torch.stack([run(x, weights) for x in inputs])

    per_sample.qnode = run.qnode  # type: ignore[attr-defined]
    return per_sample

"""QPU: the trained ants/bees model run on quantum processors, here on calibrated emulations of IBM devices.

The paper took its trained dressed circuit (ResNet18 features -> Linear(512->4)
-> tanh * pi/2 -> 4 qubits, depth 6 -> Linear(4->2)) and evaluated the validation images on
IBM's ibmqx4 (Tenerife) and Rigetti's Aspen-4-4Q-A. This experiment does the same on
qtransfer's calibrated device models. ``fake_yorktown`` (ibmqx2) is the
stand-in for ibmqx4: the same 5-qubit "bow-tie" generation of IBM chips; Tenerife itself
has no fake backend with a noise model in ``qiskit_ibm_runtime``. For every seed:

1. train the published head ideally (TrainConfig's published defaults: Adam 4e-4, batch 4,
   StepLR(10, 0.1), 30 epochs) on the cached features, the epoch selected on a held-out
   part of train (``compare``'s protocol: images that report accuracy never choose the model);
2. evaluate it on the evaluation split (val) on the ideal simulator, then on each device with
   the exact noisy ``<Z>`` (infinitely many shots) and with ``shots`` measurement shots;
3. calibrate the ideally trained model's ``<Z>`` per qubit: an affine map (scale and offset)
   from the device's ``<Z_i>`` (with shots) to the ideal simulator's, fitted on the train
   images (:func:`fit_z_calibration`) and applied to the evaluation images' measured ``<Z>``;
4. train the same head noise-aware (the circuit under ``noise_aware``'s noise, exact ``<Z>``,
   while training) and compare it, seed by seed, with the ideally trained one on that device.

One :class:`~qtransfer.paper.common.PaperRow` per device (``qpu-<device>``) and one for the
noise-aware comparison (``qpu-aware-<device>``); :class:`DeviceAccuracy` and
:class:`NoiseAwareGain` are their typed views. The ``<Z>`` values of the first device and
first seed (ideal, exact noisy, with shots) are kept for the report's scatter plot.

Example:
    >>> QPU_DEVICES[0], QPU_SHOTS, QPU_NOISE_AWARE
    ('fake_yorktown', 1024, 'fake_yorktown')
    >>> check_devices("fake_lima, fake_belem")
    ('fake_lima', 'fake_belem')
    >>> rows = run_qpu((0, 1), out="runs/paper/qpu", data="images")      # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from qtransfer.errors import UsageError
from qtransfer.quantum.noise import FAKE_DEVICES
from qtransfer.stats import PairedT, paired_t

from .common import PaperRow, Series

__all__ = ["QPU_DEVICES", "QPU_SHOTS", "QPU_NOISE_AWARE", "DeviceAccuracy", "NoiseAwareGain", "check_devices",
           "fit_z_calibration", "hardware_missing", "run_qpu"]

#: default devices: Yorktown (ibmqx2, the stand-in for ibmqx4) first, then three later 5-qubit IBM devices
QPU_DEVICES = ("fake_yorktown", "fake_manila", "fake_belem", "fake_lima")
#: the paper's shots per circuit on the QPUs
QPU_SHOTS = 1024
#: the device the noise-aware model trains on: the ibmqx4 stand-in, the noisiest of the defaults
QPU_NOISE_AWARE = "fake_yorktown"


def check_devices(devices: str | Sequence[str], flag: str = "--devices") -> tuple[str, ...]:
    """Device names from ``"a,b"`` or a sequence, each one of FAKE_DEVICES, or a UsageError naming the bad one
    and the ``flag`` it came from."""
    names = [d.strip() for d in (devices.split(",") if isinstance(devices, str) else devices) if d.strip()]
    unknown = [d for d in names if d not in FAKE_DEVICES]
    if unknown or not names:
        raise UsageError(f"unknown device {unknown[0] if unknown else '(none)'!r} for {flag}; "
                         f"choose among {', '.join(FAKE_DEVICES)}")
    return tuple(dict.fromkeys(names))


def hardware_missing() -> str | None:
    """What to install for the calibrated devices (the ``hardware`` extra), or ``None`` when it is installed."""
    from importlib.util import find_spec

    missing = [m for m in ("qiskit", "qiskit_aer", "qiskit_ibm_runtime") if find_spec(m) is None]
    return None if not missing else (f"qpu needs {', '.join(missing)} for the calibrated devices: "
                                     "pip install 'qtransfer[hardware]'")


# ------------------------------------------------------------------------------------ typed views
@dataclass(frozen=True)
class DeviceAccuracy:
    """The ideally trained model on one device: per-seed accuracy ideal / exact noisy / with shots, and with
    shots after the per-qubit ⟨Z⟩ calibration (:func:`fit_z_calibration`, fitted on the train images)."""

    device: str
    calibration: str
    layout: tuple[int, ...]
    gate_counts: dict[str, int]
    shots: int
    ideal: Series
    exact: Series
    sampled: Series
    calibrated: Series

    @property
    def cost(self) -> PairedT:
        """Ideal minus sampled accuracy, paired over seeds: what running on the device costs."""
        return paired_t(self.ideal.values, self.sampled.values)

    def to_row(self, seeds: tuple[int, ...], wall_seconds: float, figures: dict[str, Any]) -> PaperRow:
        return PaperRow(
            "qpu", f"qpu-{self.device}", f"QPU emulated: {self.device} (calibrated {self.calibration[:10]})",
            self.sampled, (self.exact, self.ideal, self.calibrated), seeds, wall_seconds,
            notes=f"The ideally trained model; {self.shots} shots per image; layout {list(self.layout)}.",
            settings={"device": self.device, "calibration": self.calibration, "layout": list(self.layout),
                      "gate_counts": dict(self.gate_counts), "shots": self.shots, "cost": self.cost.to_dict()},
            figures=figures)

    @classmethod
    def from_row(cls, row: PaperRow) -> "DeviceAccuracy":
        s = row.settings
        exact, ideal, calibrated = row.baselines
        return cls(str(s["device"]), str(s["calibration"]), tuple(int(q) for q in s["layout"]),
                   {str(k): int(v) for k, v in s["gate_counts"].items()}, int(s["shots"]), ideal, exact, row.model,
                   calibrated)


@dataclass(frozen=True)
class NoiseAwareGain:
    """Noise-aware against ideal training, both evaluated on ``device`` (exact noisy and with shots)."""

    device: str
    shots: int
    aware_exact: Series
    ideal_exact: Series
    aware_sampled: Series
    ideal_sampled: Series

    @property
    def gain(self) -> PairedT:
        """Noise-aware minus ideally trained accuracy on the device (exact noisy ``<Z>``), paired over seeds."""
        return paired_t(self.aware_exact.values, self.ideal_exact.values)

    @property
    def gain_sampled(self) -> PairedT:
        return paired_t(self.aware_sampled.values, self.ideal_sampled.values)

    def to_row(self, seeds: tuple[int, ...], wall_seconds: float) -> PaperRow:
        return PaperRow(
            "qpu", f"qpu-aware-{self.device}", f"QPU emulated: {self.device}, noise-aware training",
            self.aware_exact, (self.ideal_exact, self.aware_sampled, self.ideal_sampled), seeds, wall_seconds,
            notes=f"Trained with the circuit under {self.device}'s noise (exact ⟨Z⟩), against the ideally trained "
                  f"model; both evaluated on {self.device}.",
            settings={"device": self.device, "shots": self.shots, "gain": self.gain.to_dict(),
                      "gain_sampled": self.gain_sampled.to_dict()})

    @classmethod
    def from_row(cls, row: PaperRow) -> "NoiseAwareGain":
        ideal_exact, aware_sampled, ideal_sampled = row.baselines
        return cls(str(row.settings["device"]), int(row.settings["shots"]), row.model, ideal_exact, aware_sampled,
                   ideal_sampled)


# ------------------------------------------------------------------------------------ evaluation
def circuit_angles(head, x):
    """The angles the dressed head feeds its circuit: ``tanh(pre(x)) * pi/2``."""
    import torch

    return torch.tanh(head.pre(x)) * (math.pi / 2)


def device_layer(head, device: str | None, *, shots: int | None = None, seed: int | None = None):
    """A copy of ``head``'s circuit (same weights, dtype and torch device) on ``device`` (``None``: ideal)."""
    from qtransfer.quantum.layer import QuantumLayer

    q = head.quantum
    w = q.weights
    layer = QuantumLayer(q.spec.n_qubits, q.spec.depth, embedding=q.spec.embedding, layer=q.spec.layer,
                         noise=device, shots=shots, seed=seed, device=w.device, dtype=w.dtype)
    layer.load_state_dict(q.state_dict())
    return layer


def accuracy_on(head, layer, angles, y) -> tuple[float, Any]:
    """Accuracy of ``head`` with its circuit replaced by ``layer``, and the ``<Z>`` it read."""
    import torch

    with torch.no_grad():
        z = layer(angles)
        right = head.post(z).argmax(-1) == y
    return float(right.to(torch.float64).mean()), z


def fit_z_calibration(z_noisy, z_ideal):
    """Per qubit, the affine map ``a * z + b`` that best takes noisy ``<Z_i>`` to ideal ones (least squares).

    Returns ``(a, b)``, each of shape ``(n_qubits,)`` in the inputs' dtype; a qubit whose noisy
    values do not vary gets ``a = 0`` and ``b`` = the mean ideal value.

    Example:
        >>> import torch
        >>> zi = torch.tensor([[-1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
        >>> a, b = fit_z_calibration(0.5 * zi + 0.1, zi)
        >>> [round(v, 4) for v in a.tolist()], [round(v, 4) for v in b.tolist()]
        ([2.0, 0.0], [-0.2, 1.0])
    """
    import torch

    x, y = z_noisy.to(torch.float64), z_ideal.to(torch.float64)
    dx, dy = x - x.mean(0), y - y.mean(0)
    var = (dx * dx).sum(0)
    a = torch.where(var > 1e-12, (dx * dy).sum(0) / var.clamp_min(1e-12), torch.zeros_like(var))
    b = y.mean(0) - a * x.mean(0)
    return a.to(z_noisy.dtype), b.to(z_noisy.dtype)


def _calibrated_accuracy(head, name: str, shots: int, seed: int, train_angles, z_shots, y) -> float:
    """Accuracy with shots after the per-qubit ``<Z>`` calibration fitted on the train images (their own shots)."""
    import torch

    with torch.no_grad():
        train_noisy = device_layer(head, name, shots=shots, seed=_CALIBRATION_SEED + seed)(train_angles)
        a, b = fit_z_calibration(train_noisy, device_layer(head, None)(train_angles))
        right = head.post(a * z_shots + b).argmax(-1) == y
    return float(right.to(torch.float64).mean())


#: offset of the shot sampler's seed for the calibration circuits (apart from the evaluation's stream)
_CALIBRATION_SEED = 1_000_000


def _evaluate(head, data, devices: Sequence[str], shots: int, seed: int) -> dict[str, Any]:
    """Accuracy of a trained head on the evaluation split: ideal, then per device exact, with shots, calibrated."""
    import torch

    x, y = data.evaluate
    with torch.no_grad():
        angles, train_angles = circuit_angles(head, x), circuit_angles(head, data.train[0])
    ideal, z_ideal = accuracy_on(head, device_layer(head, None), angles, y)
    out: dict[str, Any] = {"ideal": ideal, "z_ideal": z_ideal, "devices": {}}
    for name in devices:
        exact, z_exact = accuracy_on(head, device_layer(head, name), angles, y)
        sampled, z_shots = accuracy_on(head, device_layer(head, name, shots=shots, seed=seed), angles, y)
        out["devices"][name] = {"exact": exact, "sampled": sampled, "z_exact": z_exact, "z_shots": z_shots,
                                "calibrated": _calibrated_accuracy(head, name, shots, seed, train_angles, z_shots, y)}
    return out


def _z_figure(device: str, seed: int, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Plain data for the scatter: ``<Z_i>`` ideal against noisy (exact and with shots), per qubit."""
    d = evaluation["devices"][device]

    def rounded(z) -> list[list[float]]:
        return [[round(float(v), 4) for v in row] for row in z.tolist()]
    return {"z": {"device": device, "seed": seed, "ideal": rounded(evaluation["z_ideal"]),
                  "exact": rounded(d["z_exact"]), "shots": rounded(d["z_shots"])}}


# ------------------------------------------------------------------------------------ the experiment
def _base_config(data: str | os.PathLike, settings: Mapping[str, Any]):
    from qtransfer.api import resolve_config

    config = resolve_config(data, **{"head": "quantum", "seed": 0, **settings})
    if config.head != "quantum" or config.noise is not None or config.shots is not None or config.backend != "builtin":
        raise UsageError("qpu trains the quantum head on the built-in simulator, ideally (no noise, no shots): "
                         "give no head, noise, shots or backend settings; choose devices with --devices")
    return config


def _collect(evals: Sequence[dict[str, Any]], device: str, key: str) -> tuple[float, ...]:
    return tuple(e["devices"][device][key] for e in evals)


def _device_rows(evals, devices, device_info, shots, seeds, wall, n_params) -> list[PaperRow]:
    ideal = Series("ideal simulator", tuple(e["ideal"] for e in evals), None, n_params)
    rows = []
    for k, name in enumerate(devices):
        info = device_info[name]
        acc = DeviceAccuracy(
            name, str(info["calibration"]), tuple(info["layout"]), dict(info["gate_counts"]), shots, ideal,
            Series(f"{name}, exact noisy ⟨Z⟩", _collect(evals, name, "exact"), None, n_params),
            Series(f"{name}, {shots} shots", _collect(evals, name, "sampled"), None, n_params),
            Series(f"{name}, {shots} shots, ⟨Z⟩ calibrated per qubit", _collect(evals, name, "calibrated"), None,
                   n_params))
        rows.append(acc.to_row(seeds, wall, _z_figure(name, seeds[0], evals[0]) if k == 0 else {}))
    return rows


def _aware_gain(evals, aware_evals, device: str, shots: int, n_params: int) -> NoiseAwareGain:
    def series(name: str, source, key: str) -> Series:
        return Series(name, _collect(source, device, key), None, n_params)
    return NoiseAwareGain(device, shots, series("noise-aware training, exact noisy ⟨Z⟩", aware_evals, "exact"),
                          series("ideal training, exact noisy ⟨Z⟩", evals, "exact"),
                          series(f"noise-aware training, {shots} shots", aware_evals, "sampled"),
                          series(f"ideal training, {shots} shots", evals, "sampled"))


def run_qpu(seeds: tuple[int, ...], *, out: str | os.PathLike | None = None, data: str | os.PathLike = "hymenoptera",
            devices: str | Sequence[str] = QPU_DEVICES, shots: int = QPU_SHOTS, noise_aware: str | None = QPU_NOISE_AWARE,
            cache_dir: str | os.PathLike | None = None, progress: Callable[[str], None] | None = None,
            **settings: Any) -> tuple[PaperRow, ...]:
    """Every seed: train ideally, evaluate ideal and on each device; train noise-aware on ``noise_aware``.

    ``settings`` are TrainConfig fields over the published ones (``backbone``, ``weights``,
    ``epochs``...). ``noise_aware=None`` skips the noise-aware training. ``out`` is unused
    (nothing is written per run; the heads train in memory on the cached features).
    """
    from qtransfer.heads import count_parameters
    from qtransfer.sweeps.trials import fit_trial_head, prepare_trial_data
    from qtransfer.training.loop import one_intra_op_thread

    devices = check_devices(devices)
    aware = None if noise_aware in (None, "", "none") else check_devices([noise_aware], "--noise-aware")[0]
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise UsageError(f"--shots must be a positive integer, got {shots!r}")
    started = time.perf_counter()
    config = _base_config(data, settings)
    trial_data = prepare_trial_data(config, config.seed, cache_dir=cache_dir, progress=False)
    evals, aware_evals, n_params = [], [], 0
    with one_intra_op_thread():
        for seed in seeds:
            if progress:
                progress(f"qpu: seed {seed}: ideal training, evaluation on {', '.join(devices)}")
            head, _ = fit_trial_head(config.replace(seed=seed), trial_data)
            n_params = count_parameters(head)
            evals.append(_evaluate(head, trial_data, tuple(dict.fromkeys((*devices, *([aware] if aware else [])))),
                                   shots, seed))
            if aware:
                if progress:
                    progress(f"qpu: seed {seed}: noise-aware training on {aware}")
                aware_head, _ = fit_trial_head(config.replace(seed=seed, noise=aware), trial_data)
                aware_evals.append(_evaluate(aware_head, trial_data, (aware,), shots, seed))
    info = {name: device_layer(head, name).device_description() for name in devices}
    wall = time.perf_counter() - started
    rows = _device_rows(evals, devices, info, shots, tuple(seeds), wall, n_params)
    if aware:
        rows.append(_aware_gain(evals, aware_evals, aware, shots, n_params).to_row(tuple(seeds), wall))
    return tuple(_with_split(r, trial_data, config) for r in rows)


def _with_split(row: PaperRow, data, config) -> PaperRow:
    """Record what the accuracies were measured on, and the training settings, in the row's settings."""
    n_train, n_select, n_eval = data.sizes
    extra = {"data": config.data, "backbone": config.backbone, "weights": str(config.weights), "epochs": config.epochs,
             "eval_split": data.eval_split, "n_train": n_train, "n_select": n_select, "n_eval": n_eval}
    return PaperRow(row.experiment, row.key, row.title, row.model, row.baselines, row.seeds, row.wall_seconds,
                    row.notes, {**row.settings, **extra}, row.figures)

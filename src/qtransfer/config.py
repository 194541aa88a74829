"""The training configuration: published defaults, validation, and config files.

Precedence (as in timm's ``train.py``): the defaults below, then a ``--config`` TOML or
YAML file, then command-line flags. The resolved configuration is written to the run
directory as ``config.json`` and stored in the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from qtransfer.errors import UsageError

__all__ = ["TrainConfig", "load_config_file"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. Defaults are Mari et al.'s.

    Example:
        >>> TrainConfig().lr, TrainConfig().batch_size, TrainConfig().epochs
        (0.0004, 4, 30)
        >>> TrainConfig(epochs=0)
        Traceback (most recent call last):
        ...
        qtransfer.errors.UsageError: epochs must be an integer >= 1, got 0
    """

    data: str = "hymenoptera"
    features: str | None = None
    label_column: str = "label"
    name_column: str = "name"
    split_column: str = "split"
    backbone: str = "resnet18"
    weights: str | None = "DEFAULT"
    transform: str | None = None
    augment: int = 0
    augment_seed: int = 0
    head: str = "quantum"
    n_qubits: int = 4
    depth: int = 6
    q_delta: float = 0.01
    embedding: str = "hadamard_ry"
    layer: str = "cnot_ry"
    circuit: Any = None
    backend: str = "builtin"
    shots: int | None = None
    noise: str | None = None
    epochs: int = 30
    batch_size: int = 4
    lr: float = 4e-4
    step_size: int = 10
    gamma: float = 0.1
    seed: int = 0
    val_fraction: float = 0.2
    device: str = "cpu"
    strict: bool = False

    def __post_init__(self) -> None:
        for name in ("n_qubits", "epochs", "batch_size", "step_size"):
            _check_int(name, getattr(self, name), 1)
        _check_int("depth", self.depth, 0)
        _check_int("augment", self.augment, 0)
        _check_int("augment_seed", self.augment_seed, 0)
        if self.augment and self.features is not None:
            raise UsageError("augment draws views of images; precomputed features (features) have none: leave augment 0")
        if self.features is not None and self.data != "hymenoptera":
            raise UsageError(f"give data ({self.data}) or features ({self.features}), not both")
        for name in ("label_column", "name_column", "split_column"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise UsageError(f"{name} must be a column name, got {getattr(self, name)!r}")
        _check_int("seed", self.seed, 0)
        if self.shots is not None:
            _check_int("shots", self.shots, 1)
        for name in ("lr", "q_delta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise UsageError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.gamma, (int, float)) or not 0 < self.gamma <= 1:
            raise UsageError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction < 1:
            raise UsageError(f"val_fraction must be between 0 and 1 (exclusive), got {self.val_fraction!r}")
        from qtransfer.heads.registry import get_head  # no torch import

        get_head(self.head)
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UsageError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        from qtransfer.quantum.circuit import EMBEDDINGS, LAYERS  # no torch import

        if self.embedding not in EMBEDDINGS:
            raise UsageError(f"unknown embedding {self.embedding!r}; choose one of {', '.join(EMBEDDINGS)}")
        if self.layer not in LAYERS:
            raise UsageError(f"unknown layer {self.layer!r}; choose one of {', '.join(LAYERS)}")
        self._resolve_circuit()
        self._check_memory()
        if self.backend != "builtin" and not self.backend.startswith("pennylane"):
            raise UsageError(f"unknown backend {self.backend!r}; use 'builtin' or 'pennylane:DEVICE'")
        self._check_noise()

    def _resolve_circuit(self) -> None:
        """``circuit``: ``None`` (the published family), a circuit file's path, its content, or a
        :class:`~qtransfer.quantum.Circuit`; stored as the circuit's explicit plain data, so
        ``config.json`` and ``model.pt`` rebuild it without the file."""
        if self.circuit is None:
            return
        from qtransfer.quantum.circuit_file import as_circuit, circuit_to_data  # no torch import
        from qtransfer.quantum.description import Expval

        circuit = as_circuit(self.circuit, source="circuit")
        data = circuit_to_data(circuit)
        if circuit.n_inputs == 0:
            raise UsageError(f"circuit {circuit.name or ''}: it reads no inputs; add an embedding (e.g. template = \"AngleEmbedding\")")
        if self.shots is not None and self.head in ("quantum", "product") and any(
                isinstance(m, Expval) and any(p != "Z" for _, w in m.terms for p, _ in w) for m in circuit.measurements):
            raise UsageError("--shots read bit strings: the circuit may measure Z words and probabilities only "
                             "(rotate X/Y into Z with gates first)")
        object.__setattr__(self, "circuit", data)

    def _check_memory(self) -> None:
        """Refuse, before anything runs (no run folder, no feature), a circuit whose statevectors at
        ``batch_size`` (one per step, for the gradient) cannot fit in the host's free memory: a general
        circuit, or the one ``--qubits/--depth/--embedding/--layer`` name. The simulators check
        again what they are given (:mod:`qtransfer.quantum.memory`)."""
        if self.device != "cpu" or not get_quantum(self.head) or (self.circuit is None and self.n_qubits < 20):
            return
        from qtransfer.quantum.circuit_file import as_circuit  # no torch import
        from qtransfer.quantum.compile import estimate_bytes
        from qtransfer.quantum.memory import available_bytes

        if self.circuit is not None:
            circuit = as_circuit(self.circuit)
        else:
            from qtransfer.quantum.circuit import CircuitSpec

            circuit = CircuitSpec(self.n_qubits, self.depth, embedding=self.embedding, layer=self.layer).to_circuit()
        if circuit.n_qubits < 20:
            return
        need = estimate_bytes(circuit, self.batch_size)
        free = available_bytes("cpu")
        if free is not None and need > free:
            raise UsageError(
                f"a {circuit.n_qubits}-qubit circuit at batch size {self.batch_size} needs about {need / 2**30:.1f} GiB "
                f"({2**circuit.n_qubits} amplitudes per sample, one state per step for the gradient), but only "
                f"{free / 2**30:.1f} GiB are free; use fewer --qubits or a smaller --batch-size"
            )

    def _check_noise(self) -> None:
        """``noise`` is ``None`` or a noise string the backend accepts (classical heads ignore it);
        PennyLane's Qiskit devices have their own rules (:func:`qtransfer.quantum.hardware.check_pennylane_noise`)."""
        from qtransfer.quantum.hardware import check_pennylane_noise  # no torch import
        from qtransfer.quantum.noise import parse_noise

        try:
            noise = None if self.noise is None else parse_noise(self.noise)
            if self.backend.startswith("pennylane"):
                check_pennylane_noise(self.backend.partition(":")[2] or "default.qubit", noise, self.shots)
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "configuration") -> "TrainConfig":
        """Build from a mapping, refusing unknown keys (``-`` and ``_`` are interchangeable)."""
        known = {f.name for f in fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            name = _ALIASES.get(name, name)
            if name not in known:
                raise UsageError(f"{source}: unknown setting {key!r}; known settings: {', '.join(sorted(known))}")
            clean[name] = value
        return cls(**clean)

    def replace(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)

    def head_settings(self) -> dict[str, Any]:
        """Keyword arguments of :func:`qtransfer.heads.build_head` besides the head's kind (``self.head``)."""
        keys = ("n_qubits", "depth", "q_delta", "embedding", "layer", "backend", "shots", "noise", "seed", "circuit")
        return {k: getattr(self, k) for k in keys}


#: command-line spellings accepted in config files too
_ALIASES = {"qubits": "n_qubits"}


def get_quantum(head: str) -> bool:
    from qtransfer.heads.registry import get_head

    return get_head(head).is_quantum


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file of settings into a dict.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "experiment.toml"
        >>> _ = path.write_text('epochs = 10\\nbackbone = "mobilenet_v2"\\n')
        >>> load_config_file(path)
        {'epochs': 10, 'backbone': 'mobilenet_v2'}
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a settings file; give a .toml, .yaml or .json file")
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            values = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        elif suffix == ".json":
            values = json.loads(text)
        else:
            raise UsageError(f"config file {path}: use a .toml, .yaml, .yml or .json file, not {suffix or 'no suffix'!r}")
    except UsageError:
        raise
    except Exception as e:  # parse errors of three libraries
        raise UsageError(f"config file {path} could not be parsed: {e}") from None
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings, got {type(values).__name__}")
    if "train" in values and isinstance(values["train"], dict):  # allow a [train] table
        values = values["train"]
    return values


def resolve_config(data: str | os.PathLike | None = None, config: TrainConfig | None = None, **settings: Any) -> TrainConfig:
    """``config`` (default: the published settings) with ``data`` and ``settings`` applied.

    Keys are :class:`~qtransfer.config.TrainConfig` fields; an unknown key is a
    :class:`~qtransfer.errors.UsageError` that lists the known ones.

    (``qtransfer.resolve_config`` is this function.)

    Example:
        >>> resolve_config("images", epochs=5).epochs
        5
        >>> resolve_config(epochs=5, qubits=2).n_qubits
        2
        >>> resolve_config(weights=Path("w.pth")).weights     # paths may be given as Path objects
        'w.pth'
    """
    values = (config or TrainConfig()).to_dict()
    if data is not None:
        values["data"] = os.fspath(data)
    settings = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in settings.items()}  # features=Path(...)
    return TrainConfig.from_dict({**values, **settings}, source="settings")

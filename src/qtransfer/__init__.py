"""qtransfer: hybrid classical-quantum transfer learning (Mari et al., Quantum 4, 340, 2020).

``import qtransfer`` is cheap: torch, torchvision, matplotlib and PennyLane load only when
something that needs them is used. The Python API (:mod:`qtransfer.api`):

* :func:`train`, :func:`extract_features`, :func:`evaluate`, :func:`predict`, :func:`compare`, :func:`sweep`, :func:`load_run`;
* :class:`TrainConfig` (the published defaults), the typed results :class:`RunMetrics`,
  :class:`Evaluation`, :class:`CompareResults`, :class:`SweepResults`;
* the parts: :class:`QuantumLayer`, :class:`DressedQuantumHead`, :func:`build_head`,
  :data:`HEADS`, :func:`register_head`, :class:`Circuit`, :data:`BACKBONES`, :func:`create_backbone`, :func:`list_backbones`.

Example:
    >>> import qtransfer, torch
    >>> layer = qtransfer.QuantumLayer(n_qubits=4, depth=6)
    >>> layer(torch.zeros(3, 4)).shape
    torch.Size([3, 4])
    >>> sorted(qtransfer.HEADS)
    ['classical', 'linear', 'product', 'quantum']
"""

from qtransfer._lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "train": "api", "extract_features": "api", "evaluate": "api", "predict": "api", "compare": "api", "sweep": "api", "load_run": "api",
    "run_paper": "api",
    "TrainConfig": "config", "TrainedModel": "model", "ExtractedFeatures": "pipeline",
    "RunMetrics": "results", "Evaluation": "results", "CompareResults": "results", "SweepResults": "results",
    "QuantumLayer": "quantum.layer", "CircuitSpec": "quantum.circuit",
    "DressedQuantumHead": "heads.dressed", "build_head": "heads", "HEADS": "heads.registry",
    "register_head": "heads.registry", "Circuit": "quantum.description",
    "BACKBONES": "features.backbones", "create_backbone": "features.backbones", "list_backbones": "features.backbones",
}
__all__ = ["__version__", *_EXPORTS]
__getattr__ = lazy_getattr(__name__, _EXPORTS)

"""qtransfer: hybrid classical-quantum transfer learning.

``import qtransfer`` is cheap: torch, torchvision and PennyLane load only in the
modules that use them (``qtransfer.quantum``, ``qtransfer.features.backbones`` ...).

Example:
    >>> from qtransfer.quantum import QuantumLayer   # doctest: +SKIP
    >>> layer = QuantumLayer(n_qubits=4, depth=6)    # doctest: +SKIP
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

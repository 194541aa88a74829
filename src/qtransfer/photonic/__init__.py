"""Photonic (continuous-variable) quantum circuits in the truncated Fock basis.

One module per stage, like :mod:`qtransfer.quantum`:

- :mod:`~qtransfer.photonic.circuit`: :class:`PhotonicCircuit` and :class:`Op`, the
  description (no torch);
- :mod:`~qtransfer.photonic.gates`: the gate matrices D, S, R, K, V, BS;
- :mod:`~qtransfer.photonic.states`: vacuum, coherent, Fock and arbitrary kets;
- :mod:`~qtransfer.photonic.simulator`: :func:`simulate`, batched and differentiable;
- :mod:`~qtransfer.photonic.measure`: Fock probabilities, norm inside the cutoff,
  ``<n>``, ``<x>``, ``<p>``;
- :mod:`~qtransfer.photonic.paper`: the paper's pre-trained QC network A and QQ circuit A.

Conventions are Strawberry Fields' (hbar = 2); ``docs/photonic.md`` has them all.
``import qtransfer.photonic`` does not import torch: the torch modules load on first use.

Example:
    >>> import torch
    >>> from qtransfer.photonic import Op, PhotonicCircuit, measure, simulate, states
    >>> c = PhotonicCircuit(1, (Op("S", (0,), (0.5, 0.0)),))
    >>> round(measure.mean_photon(simulate(c, states.vacuum(1, 30)), 0).item(), 6)   # sinh(r)^2
    0.27154
"""

from .circuit import GATES, Op, PhotonicCircuit

__all__ = [
    "GATES",
    "Op",
    "PhotonicCircuit",
    "circuit_unitary",
    "gates",
    "measure",
    "paper",
    "simulate",
    "simulator",
    "states",
]

from qtransfer._lazy import lazy_getattr

__getattr__ = lazy_getattr(__name__, {"simulate": "simulator", "circuit_unitary": "simulator"},
                           modules=("gates", "measure", "paper", "simulator", "states"))

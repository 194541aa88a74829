"""The paper's experiments, each as published and over several seeds (``qtransfer paper``).

Mari, Bromley, Izaac, Schuld and Killoran, "Transfer learning in hybrid classical-quantum
neural networks", Quantum 4, 340 (2020). One module per experiment:

- :mod:`~qtransfer.paper.spirals`: Example 1, dressed quantum circuit vs classical networks on two spirals;
- :mod:`~qtransfer.paper.qc`: QC, a frozen pre-trained photonic network A, a classical head on its features;
- :mod:`~qtransfer.paper.qq`: QQ, a frozen photonic circuit A, trainable photonic layers after it;
- :mod:`~qtransfer.paper.cq`: CQ, ants vs bees through the ``train`` pipeline (needs the data set);
- :mod:`~qtransfer.paper.cifar`: CQ on CIFAR-10 pairs (needs CIFAR-10);
- :mod:`~qtransfer.paper.qpu`: the trained ants/bees model on calibrated emulations of IBM devices (needs the data set);
- :mod:`~qtransfer.paper.common`: typed results; :mod:`~qtransfer.paper.runner`: the runs and files;
  :mod:`~qtransfer.report.paper`: ``report.html``.

``import qtransfer.paper`` does not import torch. From Python, ``qtransfer.run_paper(...)``
(:func:`qtransfer.api.run_paper`) is what ``qtransfer paper`` runs.

Example:
    >>> from qtransfer.paper import EXPERIMENTS
    >>> EXPERIMENTS
    ('spirals', 'qc', 'qq', 'cq', 'cifar', 'qpu')
"""

from qtransfer._lazy import lazy_getattr

from .common import EXPERIMENTS, OFFLINE_EXPERIMENTS, PaperResults, PaperRow, Series

__all__ = ["EXPERIMENTS", "OFFLINE_EXPERIMENTS", "PaperResults", "PaperRow", "Series", "run_paper"]

__getattr__ = lazy_getattr(__name__, {"run_paper": "runner"},
                           modules=("cifar", "common", "cq", "qc", "qpu", "qq", "report", "runner", "spirals"))

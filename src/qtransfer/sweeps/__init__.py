"""Sweeps: many trainings of heads on cached features, on a local process pool or on Ray, resumable.

* :mod:`~qtransfer.sweeps.spec`: the sweep file, its grid and the trials (ids: a digest of each trial's settings);
* :mod:`~qtransfer.sweeps.trials`: the data a trial needs (extracted once, split as ``compare`` splits) and one trial;
* :mod:`~qtransfer.sweeps.executors`: where trials run (this process, a ``spawn`` process pool, Ray);
* :mod:`~qtransfer.sweeps.engine`: running trials, retrying once, recording each as it ends;
* :mod:`~qtransfer.sweeps.run`: ``qtransfer sweep`` end to end; :mod:`~qtransfer.sweeps.summary`: the numbers per grid point.

``import qtransfer.sweeps`` does not import torch. (The package is ``sweeps`` so that it never hides the function :func:`qtransfer.sweep`.)

Example:
    >>> from qtransfer.sweeps import SweepSpec
    >>> spec = SweepSpec.from_dict({"seeds": [0, 1], "grid": {"head": ["quantum", "linear"], "depth": [2, 4]}})
    >>> len(spec.trials())  # quantum at depth 2 and 4, linear once (it ignores depth); two seeds each
    6
"""

from __future__ import annotations

from qtransfer._lazy import lazy_getattr
from qtransfer.sweeps.spec import SweepSpec, Trial, load_sweep_file, trial_id

__all__ = ["SweepSpec", "Trial", "load_sweep_file", "trial_id", "run_sweep", "summarize"]

__getattr__ = lazy_getattr(__name__, {"run_sweep": "run", "summarize": "summary"})

"""How much memory a simulation needs, checked against what the machine has before it is allocated.

Every simulator calls :func:`check_simulation_memory` with the size of what it is about to
allocate (``batch x 2**n`` amplitudes of a statevector, ``batch x 4**n`` entries of a density
matrix or Pauli-transfer vector); a need above what the device has free is a
:class:`~qtransfer.errors.UsageError` (exit 2) with the numbers and the flag to change,
instead of an allocation failure or the kernel's out-of-memory killer. The estimate is a
lower bound (the working copies a simulator cannot do without), so nothing that fits is refused.
"""

from __future__ import annotations

import os

from qtransfer.errors import UsageError

__all__ = ["WORKING_COPIES", "available_bytes", "check_simulation_memory", "simulation_bytes"]

#: buffers of the simulated size alive at once at least (the state, the next one, the probabilities)
WORKING_COPIES = 3
#: needs below this are not checked (every machine that runs torch has it)
_ALWAYS_FITS = 256 * 2**20


def simulation_bytes(n_qubits: int, batch: int, *, itemsize: int, per_qubit: int = 2) -> int:
    """``WORKING_COPIES x batch x per_qubit**n_qubits x itemsize``: ``per_qubit`` is 2 for statevectors,
    4 for density matrices (and Pauli-transfer vectors).

    Example:
        >>> simulation_bytes(30, 4, itemsize=4) / 2**30   # 30 qubits, batch 4, float32 amplitudes: GiB
        48.0
    """
    return WORKING_COPIES * int(batch) * per_qubit ** int(n_qubits) * int(itemsize)


def available_bytes(device: "str | object" = "cpu") -> int | None:
    """Free memory of ``device``: a CUDA device's free memory, else the CPU's ``MemAvailable`` (less a cgroup
    limit's headroom where that is smaller); ``None`` when it cannot be told."""
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    if kind != "cpu":
        return None
    free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:  # a container's limit (cgroup v2)
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            used = int(f.read().strip())
        if limit != "max":
            free = min(free, int(limit) - used) if free is not None else int(limit) - used
    except (OSError, ValueError):
        pass
    return free


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:.1f} MiB"


def check_simulation_memory(n_qubits: int, batch: int, *, itemsize: int, device="cpu", per_qubit: int = 2,
                            what: str = "statevector") -> None:
    """Raise a :class:`UsageError` if simulating ``batch`` circuits of ``n_qubits`` qubits cannot fit in
    ``device``'s free memory (:func:`simulation_bytes`); nothing is allocated.

    Example:
        >>> check_simulation_memory(4, 16, itemsize=4)      # a few KiB: fine
        >>> check_simulation_memory(60, 1, itemsize=4)      # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        qtransfer.errors.UsageError: simulating 60 qubits ... use fewer --qubits
    """
    need = simulation_bytes(n_qubits, batch, itemsize=itemsize, per_qubit=per_qubit)
    if need < _ALWAYS_FITS:  # no system call on the hot path of small circuits
        return
    free = available_bytes(device)
    if free is None or need <= free:
        return
    size = f"{per_qubit}^{n_qubits}"
    raise UsageError(
        f"simulating {n_qubits} qubits ({what}) for a batch of {batch} needs at least {_gib(need)} "
        f"({WORKING_COPIES} x {batch} x {size} x {itemsize} bytes), but {device} has {_gib(free)} free; "
        f"use fewer --qubits"
    )

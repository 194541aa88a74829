"""The matrices of the supported gates, as plain numbers (no torch): every executor builds its tensors from these.

``FIXED``: the gates without an angle. ``ROTATION``: the one-angle gates as ``(C0, C1, C2, h)``,
the matrix being ``C0 + cos(h a) C1 + sin(h a) C2`` for angle ``a`` (``R_P(a) = cos(a/2) I -
i sin(a/2) P``; controlled rotations and Ising gates alike). Wire order: the first wire is the
most significant bit, as in PennyLane.

Example:
    >>> ROTATION["RY"][3], FIXED["CNOT"][3]
    (0.5, (0, 0, 1, 0))
"""

from __future__ import annotations

import math

__all__ = ["FIXED", "ROTATION"]

_S = 1 / math.sqrt(2)
_I2 = ((1, 0), (0, 1))
_P0, _P1 = ((1, 0), (0, 0)), ((0, 0), (0, 1))
_X, _Y, _Z = ((0, 1), (1, 0)), ((0, -1j), (1j, 0)), ((1, 0), (0, -1))


def _kron(a, b):
    n, m = len(a), len(b)
    return tuple(tuple(a[i // m][j // m] * b[i % m][j % m] for j in range(n * m)) for i in range(n * m))


def _add(a, b):
    return tuple(tuple(u + v for u, v in zip(r, s)) for r, s in zip(a, b))


def _scale(c, m):
    return tuple(tuple(c * v for v in row) for row in m)


_ZERO2, _ZERO4 = ((0, 0), (0, 0)), ((0,) * 4,) * 4

#: the gates without an angle, by name
FIXED = {
    "Hadamard": ((_S, _S), (_S, -_S)),
    "PauliX": _X,
    "PauliY": _Y,
    "PauliZ": _Z,
    "S": ((1, 0), (0, 1j)),
    "T": ((1, 0), (0, complex(math.cos(math.pi / 4), math.sin(math.pi / 4)))),
    "SX": ((0.5 + 0.5j, 0.5 - 0.5j), (0.5 - 0.5j, 0.5 + 0.5j)),
    "CNOT": _add(_kron(_P0, _I2), _kron(_P1, _X)),
    "CY": _add(_kron(_P0, _I2), _kron(_P1, _Y)),
    "CZ": _add(_kron(_P0, _I2), _kron(_P1, _Z)),
    "SWAP": ((1, 0, 0, 0), (0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1)),
}

#: one-angle gates as (C0, C1, C2, h): C0 + cos(h a) C1 + sin(h a) C2
ROTATION = {
    "RX": (_ZERO2, _I2, _scale(-1j, _X), 0.5),
    "RY": (_ZERO2, _I2, _scale(-1j, _Y), 0.5),
    "RZ": (_ZERO2, _I2, _scale(-1j, _Z), 0.5),
    "PhaseShift": (_P0, _P1, ((0, 0), (0, 1j)), 1.0),
    "CRX": (_kron(_P0, _I2), _kron(_P1, _I2), _kron(_P1, _scale(-1j, _X)), 0.5),
    "CRY": (_kron(_P0, _I2), _kron(_P1, _I2), _kron(_P1, _scale(-1j, _Y)), 0.5),
    "CRZ": (_kron(_P0, _I2), _kron(_P1, _I2), _kron(_P1, _scale(-1j, _Z)), 0.5),
    "IsingXX": (_ZERO4, _kron(_I2, _I2), _scale(-1j, _kron(_X, _X)), 0.5),
    "IsingYY": (_ZERO4, _kron(_I2, _I2), _scale(-1j, _kron(_Y, _Y)), 0.5),
    "IsingZZ": (_ZERO4, _kron(_I2, _I2), _scale(-1j, _kron(_Z, _Z)), 0.5),
}

"""Calibrated device models: a circuit as an IBM fake backend would run it, with the noise Qiskit Aer gives that backend.

Qiskit does what it does well, once per circuit:

1. :func:`qiskit.transpile` lays the :class:`CircuitSpec` out on the device and decomposes
   it into the device's native gates (``optimization_level=1, seed_transpiler=0``), with
   *symbolic* inputs ``x[i]`` and weights ``w[k]``, so it is transpiled once and bound per sample;
2. ``qiskit_aer.noise.NoiseModel.from_backend`` builds the device's noise model from its
   calibration (depolarizing + thermal relaxation after every gate, readout error per qubit).

This module turns the two into a :class:`DeviceProgram`: every instruction of the transpiled
circuit as a Pauli transfer matrix (gate followed by its error) on the physical qubits the
circuit uses, every symbolic angle as ``scale * theta[index] + offset`` or, where the
transpiled angle depends on several parameters (IQP's ``x[i] * x[j]``), as a polynomial in
them, and each logical qubit's physical qubit and readout error. A circuit that measures X or
Y words also gets the basis change a device would append before reading out (``H`` for X,
``S^dagger H`` for Y, in the device's native gates with their errors) on each measured qubit.
:mod:`qtransfer.quantum.device_sim` runs it, batched over samples and differentiable. Qiskit, Aer and qiskit-ibm-runtime are the optional
extra ``qtransfer[hardware]``; this module imports them on first use.

Pauli transfer matrices (PTM). A ``k``-qubit channel ``E`` acts on the Pauli coordinates
``r_P = Tr(rho P)`` of a density matrix as the real matrix ``R[i, j] = Tr(P_i E(P_j)) / 2**k``,
Paulis ordered ``I, X, Y, Z`` per qubit, the first qubit of the gate most significant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .circuit import CircuitSpec
from .description import Circuit
from .noise import FAKE_DEVICES, ReadoutError

__all__ = [
    "BASIS_CHANGE",
    "FAKE_DEVICES",
    "HARDWARE_EXTRA",
    "DeviceProgram",
    "Factor",
    "NoiseLookup",
    "aer_noise_model",
    "affine_angle",
    "basis_change_circuit",
    "compile_for_device",
    "device_summary",
    "fake_backend",
    "kraus_to_ptm",
    "polynomial_angle",
    "rotation_basis",
    "theta_index",
    "qiskit_circuit",
    "readout_errors",
    "to_our_order",
    "transpile_for",
    "transpile_options",
]

HARDWARE_EXTRA = "pip install 'qtransfer[hardware]'  (Qiskit, Qiskit Aer and qiskit-ibm-runtime)"

_PAULIS = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128
)
#: rotation gate -> the Pauli coordinates it turns into each other: (p, q) with p -> cos p + sin q
ROTATION_PLANES = {"rx": (2, 3), "ry": (3, 1), "rz": (1, 2)}


def rotation_basis(kind: str) -> np.ndarray:
    """``(A, C, S)`` ``(3, 4, 4)``: the PTM of the rotation ``kind`` by ``angle`` is ``A + cos(angle) C + sin(angle) S``.

    Example:
        >>> a, c, s = rotation_basis("rz")
        >>> (a + c).diagonal()
        array([1., 1., 1., 1.])
    """
    p, q = ROTATION_PLANES[kind]
    basis = np.zeros((3, 4, 4))
    basis[0] = np.eye(4)
    basis[0, p, p] = basis[0, q, q] = 0.0
    basis[1, p, p] = basis[1, q, q] = 1.0
    basis[2, q, p], basis[2, p, q] = 1.0, -1.0
    return basis
#: how every device circuit is transpiled (with an initial layout: :func:`transpile_options`)
_TRANSPILE = {"optimization_level": 1, "seed_transpiler": 0}


def _import_qiskit():
    try:
        import qiskit
        import qiskit_aer
        import qiskit_ibm_runtime.fake_provider
    except ImportError as e:
        raise ImportError(f"calibrated device noise (fake_*) needs Qiskit: {HARDWARE_EXTRA}") from e
    return qiskit, qiskit_aer, qiskit_ibm_runtime.fake_provider


def fake_backend(name: str) -> Any:
    """The Qiskit fake backend ``name`` (``"fake_manila"``), calibration included."""
    if name not in FAKE_DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(FAKE_DEVICES)} (qtransfer devices lists them)")
    _, _, provider = _import_qiskit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return provider.FakeProviderForBackendV2().backend(name)


def _n_inputs(spec: "CircuitSpec | Circuit") -> int:
    return spec.n_inputs if isinstance(spec, Circuit) else spec.n_qubits


def qiskit_circuit(spec: "CircuitSpec | Circuit") -> Any:
    """``spec`` as a Qiskit circuit with symbolic inputs ``x`` (ParameterVector, length n) and
    weights ``w`` (flattened in ``spec.weight_shape`` order); no measurement. A general
    :class:`~qtransfer.quantum.description.Circuit` goes through :func:`~qtransfer.quantum.interop.to_qiskit`."""
    if isinstance(spec, Circuit):  # the gates only: the measurements are read out by device_sim
        from .interop import to_qiskit

        return to_qiskit(Circuit(spec.n_qubits, spec.ops, (), spec.n_inputs, spec.weight_shape, spec.amplitude))[0]
    qiskit, _, _ = _import_qiskit()
    from qiskit.circuit import ParameterVector

    n = spec.n_qubits
    x, w = ParameterVector("x", n), ParameterVector("w", spec.n_weights)
    circuit = qiskit.QuantumCircuit(n)
    for gate in spec.gates():
        if gate.param is None:
            {"Hadamard": circuit.h, "CNOT": circuit.cx}[gate.name](*gate.wires)
            continue
        if gate.param[0] == "x":
            {"RY": circuit.ry, "RX": circuit.rx}[gate.name](x[gate.param[1]], *gate.wires)
            continue
        layer, wire = gate.param[1], gate.param[2]
        if gate.name == "Rot":  # Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)
            k = (layer * n + wire) * 3
            circuit.rz(w[k], wire)
            circuit.ry(w[k + 1], wire)
            circuit.rz(w[k + 2], wire)
        else:
            circuit.ry(w[layer * n + wire], wire)
    return circuit


def theta_index(transpiled: Any, n_inputs: int) -> dict:
    """Each symbolic parameter of a :func:`qiskit_circuit` (transpiled or not) -> its index in
    ``theta`` = the ``n_inputs`` inputs, then the flat weights."""
    return {p: p.index if p.vector.name == "x" else n_inputs + p.index for p in transpiled.parameters}


def kraus_to_ptm(kraus: list[np.ndarray]) -> np.ndarray:
    """The PTM ``(4**k, 4**k)`` of a channel given by Kraus matrices in *our* qubit order (first qubit most significant).

    Example:
        >>> kraus_to_ptm([np.array([[1, 0], [0, -1]])]).diagonal()  # Z flips X and Y
        array([ 1., -1., -1.,  1.])
    """
    k = int(round(np.log2(kraus[0].shape[0])))
    basis = _PAULIS
    for _ in range(k - 1):
        d = basis.shape[-1] * 2
        basis = np.einsum("aij,bkl->abikjl", basis, _PAULIS).reshape(len(basis) * 4, d, d)
    images = sum(np.einsum("ab,pbc,dc->pad", K, basis, K.conj()) for K in kraus)  # E(P_j)
    return np.einsum("iab,jba->ij", basis, images).real / 2**k


def to_our_order(matrix: np.ndarray) -> np.ndarray:
    """A Qiskit (little-endian: qarg 0 least significant) operator in our order (qarg 0 most significant)."""
    k = int(round(np.log2(matrix.shape[0])))
    if k == 1:
        return matrix
    t = matrix.reshape([2] * (2 * k))
    order = list(range(k - 1, -1, -1)) + list(range(2 * k - 1, k - 1, -1))
    return t.transpose(order).reshape(2**k, 2**k)


@dataclass(frozen=True)
class Factor:
    """One single-qubit step: a fixed PTM (``kind="fixed"``) or a rotation ``kind`` in
    ``rx, ry, rz`` by ``scale * theta[param] + offset`` (``theta`` = inputs then flat weights),
    or, with ``terms``, by ``offset + sum(coef * prod(theta[i] for i in monomial))`` over
    ``terms = ((coef, monomial), ...)`` (``param`` is then -1)."""

    kind: str
    matrix: np.ndarray | None = None
    param: int = -1
    scale: float = 0.0
    offset: float = 0.0
    terms: tuple[tuple[float, tuple[int, ...]], ...] = ()

    @property
    def is_constant(self) -> bool:
        """A rotation by a fixed number (or a fixed PTM): it depends on no parameter."""
        return self.kind == "fixed" or (self.param < 0 and not self.terms)

    def reads(self) -> set[int]:
        """The indices of ``theta`` the step depends on."""
        return ({self.param} if self.param >= 0 else set()) | {i for _, monomial in self.terms for i in monomial}


@dataclass(frozen=True)
class DeviceProgram:
    """A transpiled circuit under a device's noise, in Pauli-transfer form (see the module docstring).

    ``sites`` are the physical qubits simulated (those the circuit touches). ``prefix[s]`` is
    what happens on site ``s`` before its first two-qubit gate (the embedding, one product
    state per sample); ``body`` the rest in order: ``("one", (s,), factors)`` or
    ``("two", (s, t), ptm)`` (a ``"one"`` step may depend on inputs too: re-uploading, IQP).
    ``measured[i]`` is the site logical qubit ``i`` ends on, ``readout[i]`` its readout error.
    ``measurements`` are the circuit's (empty: ``<Z_i>`` of every logical qubit), and
    ``basis_change["X"|"Y"][i]`` the ``4 x 4`` PTM (native gates and their errors) a device
    applies to logical qubit ``i`` before reading it out in that basis (only for the bases
    the measurements need).
    """

    device: str
    calibration: str
    sites: tuple[int, ...]
    layout: tuple[int, ...]
    measured: tuple[int, ...]
    readout: tuple[ReadoutError, ...]
    prefix: tuple[tuple[Factor, ...], ...]
    body: tuple[tuple[str, tuple[int, ...], Any], ...]
    n_inputs: int
    n_weights: int
    gate_counts: dict[str, int] = field(default_factory=dict)
    measurements: tuple = ()
    basis_change: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)

    def describe(self) -> dict:
        """What a run records: the device, its calibration date, the layout, the native gates."""
        return {
            "device": self.device,
            "calibration": self.calibration,
            "layout": list(self.layout),
            "gate_counts": dict(self.gate_counts),
        }


def affine_angle(value: Any, index_of: dict) -> tuple[int, float, float] | float:
    """A gate angle: a number, or ``(param, scale, offset)`` of an affine expression in one parameter."""
    params = getattr(value, "parameters", None)
    if not params:
        return float(value)
    if len(params) != 1:
        raise ValueError(f"a transpiled angle depends on several parameters ({value}); cannot simulate it")
    (p,) = params
    offset = float(value.bind({p: 0.0}))
    scale = float(value.bind({p: 1.0})) - offset
    if abs(float(value.bind({p: 2.0})) - (offset + 2 * scale)) > 1e-9:
        raise ValueError(f"the transpiled angle {value} is not affine in {p}; cannot simulate it")
    return index_of[p], scale, offset


def polynomial_angle(value: Any, index_of: dict) -> tuple[tuple[tuple[float, tuple[int, ...]], ...], float]:
    """A gate angle that is a polynomial in several parameters (IQP's ``x[i] * x[j]``, a sum of
    merged rotations): ``(terms, offset)``, each term ``(coef, monomial)``, a monomial the
    ``theta`` indices multiplied (repeated for powers).

    Example:
        >>> from qiskit.circuit import ParameterVector  # doctest: +SKIP
        >>> x = ParameterVector("x", 2)  # doctest: +SKIP
        >>> polynomial_angle(2 * x[0] * x[1] + 0.5, {x[0]: 0, x[1]: 1})  # doctest: +SKIP
        (((2.0, (0, 1)),), 0.5)
    """
    import sympy

    expr = value.sympify()
    by_name = {p.name: index_of[p] for p in value.parameters}
    gens = sorted(expr.free_symbols, key=lambda sym: by_name[sym.name])
    try:
        poly = sympy.Poly(expr, *gens)
    except sympy.PolynomialError:
        raise ValueError(f"the transpiled angle {value} is not a polynomial in its parameters; cannot simulate it") from None
    terms, offset = [], 0.0
    for powers, coef in poly.terms():
        monomial = tuple(by_name[g.name] for g, k in zip(gens, powers) for _ in range(k))
        if monomial:
            terms.append((float(coef), monomial))
        else:
            offset = float(coef)
    return tuple(terms), offset


def _rotation(kind: str, value: Any, index_of: dict) -> Factor:
    """A rotation by a transpiled angle: a number, affine in one parameter, or a polynomial."""
    params = getattr(value, "parameters", None)
    if params and len(params) > 1:
        terms, offset = polynomial_angle(value, index_of)
        return Factor(kind, param=-1, offset=offset, terms=terms)
    try:
        angle = affine_angle(value, index_of)
    except ValueError:  # one parameter, not affine in it (x[i] * x[i])
        terms, offset = polynomial_angle(value, index_of)
        return Factor(kind, param=-1, offset=offset, terms=terms)
    if isinstance(angle, tuple):
        return Factor(kind, param=angle[0], scale=angle[1], offset=angle[2])
    return Factor(kind, param=-1, offset=angle)


def _gate_factors(op: Any, index_of: dict) -> list[Factor] | None:
    """Parametrised single-qubit gates as rotations (None for any other gate)."""
    name = op.name
    if name in ("rx", "ry", "rz"):
        return [_rotation(name, op.params[0], index_of)]
    if name in ("p", "u1"):
        return [_rotation("rz", op.params[0], index_of)]
    if name in ("u", "u3", "u2"):  # U(theta, phi, lam) = RZ(phi) RY(theta) RZ(lam) up to a phase
        theta, phi, lam = (np.pi / 2, *op.params) if name == "u2" else op.params
        return [_rotation("rz", lam, index_of), _rotation("ry", theta, index_of), _rotation("rz", phi, index_of)]
    return None


def _fixed_rotation_matrix(f: Factor) -> np.ndarray:
    a, c, s = rotation_basis(f.kind)
    return a + np.cos(f.offset) * c + np.sin(f.offset) * s


def _merge(factors: list[Factor]) -> tuple[Factor, ...]:
    """Consecutive fixed factors multiplied into one (rotations by a number are fixed too)."""
    out: list[Factor] = []
    for f in factors:
        if f.kind != "fixed" and f.is_constant:
            f = Factor("fixed", _fixed_rotation_matrix(f))
        if f.kind == "fixed" and out and out[-1].kind == "fixed":
            out[-1] = Factor("fixed", f.matrix @ out[-1].matrix)
        else:
            out.append(f)
    return tuple(out)


class NoiseLookup:
    """An Aer noise model's error of each (gate, physical qubits): as Kraus matrices or a PTM in
    our qubit order, and each qubit's readout error (Aer keeps them in private tables; this is
    the one place that reads them, and tests/test_quantum_devices.py checks the result against Aer)."""

    def __init__(self, noise_model: Any) -> None:
        if getattr(noise_model, "_nonlocal_quantum_errors", None):
            raise ValueError("non-local quantum errors are not supported")
        self._local = noise_model._local_quantum_errors
        self._default = noise_model._default_quantum_errors
        self._readout = noise_model._local_readout_errors
        self._default_readout = noise_model._default_readout_error
        self._cache: dict = {}

    def kraus(self, name: str, qubits: tuple[int, ...]) -> list[np.ndarray] | None:
        """Kraus matrices (our order) of the error after ``name`` on ``qubits``; ``None``: no error."""
        from qiskit.quantum_info import Kraus

        error = self._local.get(name, {}).get(qubits, self._default.get(name))
        return None if error is None else [to_our_order(k) for k in Kraus(error.to_quantumchannel()).data]

    def gate(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        """The PTM of the error after ``name`` on ``qubits``; ``None``: no error."""
        key = (name, qubits)
        if key not in self._cache:
            kraus = self.kraus(name, qubits)
            self._cache[key] = None if kraus is None else kraus_to_ptm(kraus)
        return self._cache[key]

    def readout(self, qubit: int) -> ReadoutError:
        error = self._readout.get((qubit,), self._default_readout)
        if error is None:
            return ReadoutError()
        p = np.asarray(error.probabilities)  # p[true][read]
        return ReadoutError(float(p[0][1]), float(p[1][0]))


def aer_noise_model(backend: Any) -> Any:
    """``qiskit_aer.noise.NoiseModel.from_backend(backend)``: the device's noise, from its calibration."""
    _, qiskit_aer, _ = _import_qiskit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return qiskit_aer.noise.NoiseModel.from_backend(backend)


def readout_errors(noise_model: Any, qubits: list[int]) -> tuple[ReadoutError, ...]:
    """The readout error of each physical qubit in ``qubits`` under an Aer noise model."""
    lookup = NoiseLookup(noise_model)
    return tuple(lookup.readout(q) for q in qubits)


@lru_cache(maxsize=16)
def _gate_ptm(name: str, matrix_bytes: bytes, dim: int) -> np.ndarray:
    u = np.frombuffer(matrix_bytes, dtype=np.complex128).reshape(dim, dim)
    return kraus_to_ptm([to_our_order(u)])


def _calibration_date(backend: Any) -> str:
    try:
        props = backend.properties()
        return props.last_update_date.isoformat() if props is not None else ""
    except Exception:  # noqa: BLE001 - a backend without properties still simulates
        return ""


def _automorphisms(spec: "CircuitSpec | Circuit") -> list[tuple[int, ...]]:
    """Permutations of the logical qubits that keep the circuit's two-qubit interaction graph."""
    from itertools import permutations

    n = spec.n_qubits
    if isinstance(spec, Circuit):
        edges = {frozenset(op.wires) for op in spec.ops if len(op.wires) == 2}
    else:
        edges = {frozenset(p) for p in spec.entangling_pairs()}
    return [perm for perm in permutations(range(n)) if {frozenset((perm[a], perm[b])) for a, b in edges} == edges]


def transpile_options(spec: CircuitSpec, backend: Any) -> dict:
    """The :func:`qiskit.transpile` keyword arguments of :func:`transpile_for` (its initial layout
    included), for a PennyLane Qiskit device to transpile the same circuit the same way."""
    first = _transpile(qiskit_circuit(spec), backend, _TRANSPILE)
    initial = first.layout.initial_index_layout(filter_ancillas=True)
    best = min(tuple(initial[perm[i]] for i in range(spec.n_qubits)) for perm in _automorphisms(spec))
    return {**_TRANSPILE, "initial_layout": list(best)}


def _transpile(circuit: Any, backend: Any, options: dict) -> Any:
    qiskit, _, _ = _import_qiskit()
    with warnings.catch_warnings():  # qiskit-ibm-runtime's plugins announce deprecations on every transpile
        warnings.simplefilter("ignore", DeprecationWarning)
        return qiskit.transpile(circuit, backend, **options)


def transpile_for(spec: CircuitSpec, backend: Any, options: dict | None = None) -> Any:
    """The circuit as the device runs it (laid out, routed, native gates), parameters symbolic.

    ``qiskit.transpile(..., optimization_level=1, seed_transpiler=0)``, made repeatable:
    Qiskit's VF2Layout breaks ties between equally scored mirror-image layouts differently
    from one call to the next (fake_jakarta, 4 qubits: 14 vs 6 of 20 calls), and the two
    put different qubits' noise on each logical qubit. So Qiskit's layout is taken, the
    smallest of its images under the symmetries of the circuit's interaction graph (equally
    scored) is chosen, and the circuit is transpiled again from that initial layout
    (:func:`transpile_options`; pass them as ``options`` where they are already known).
    """
    return _transpile(qiskit_circuit(spec), backend, options or transpile_options(spec, backend))


@lru_cache(maxsize=32)
def compile_for_device(spec: "CircuitSpec | Circuit", device: str) -> DeviceProgram:
    """The :class:`DeviceProgram` of ``spec`` on the fake backend ``device``, compiled once per
    process (transpiling, the noise model and the PTMs do not change; the program is frozen):
    every layer, seed and evaluation on the same device shares it.

    Example:
        >>> program = compile_for_device(CircuitSpec(n_qubits=4, depth=6), "fake_manila")  # doctest: +SKIP
        >>> program.layout  # doctest: +SKIP
        (0, 1, 2, 3)
    """
    backend = fake_backend(device)
    if spec.n_qubits > backend.num_qubits:
        raise ValueError(f"--noise {device}: the device has {backend.num_qubits} qubits, the circuit needs "
                         f"{spec.n_qubits}; choose a device with at least {spec.n_qubits} (qtransfer devices lists "
                         f"them) or use fewer --qubits")
    if isinstance(spec, Circuit) and spec.amplitude:
        raise ValueError(f"--noise {device}: amplitude embedding has no gates for a device to run; embed the "
                         "inputs as angles (AngleEmbedding, IQPEmbedding, ...) or use a noise model such as "
                         "'depolarizing:p1=0.001,p2=0.01'")
    noise = NoiseLookup(aer_noise_model(backend))
    transpiled = transpile_for(spec, backend)
    layout = tuple(transpiled.layout.final_index_layout()[: spec.n_qubits])
    index_of = theta_index(transpiled, _n_inputs(spec))

    instructions = [(ins.operation, tuple(transpiled.find_bit(q).index for q in ins.qubits))
                    for ins in transpiled.data if ins.operation.name != "barrier"]
    used = sorted({q for _, qubits in instructions for q in qubits} | set(layout))
    site = {q: s for s, q in enumerate(used)}
    prefix, body = _split_by_entanglers(instructions, site, noise, index_of)
    counts: dict[str, int] = {}
    for op, _ in instructions:
        counts[op.name] = counts.get(op.name, 0) + 1
    measurements = spec.measurements if isinstance(spec, Circuit) else ()
    bases = sorted({p for m in measurements for _, word in getattr(m, "terms", ()) for p, _ in word} - {"Z"})
    return DeviceProgram(
        device=device,
        calibration=_calibration_date(backend),
        sites=tuple(used),
        layout=layout,
        measured=tuple(site[q] for q in layout),
        readout=tuple(noise.readout(q) for q in layout),
        prefix=prefix,
        body=body,
        n_inputs=_n_inputs(spec),
        n_weights=spec.n_weights,
        gate_counts=counts,
        measurements=measurements,
        basis_change={b: _basis_change_ptms(basis_change_circuit(b, backend), layout, noise) for b in bases},
    )


#: the gates a device appends to read a qubit out in the X or Y basis (then Z is read)
BASIS_CHANGE = {"X": ("h",), "Y": ("sdg", "h")}


def basis_change_circuit(basis: str, backend: Any) -> Any:
    """The one-qubit circuit a device runs to read ``basis`` ("X": ``H``; "Y": ``S^dagger H``)
    out as Z, in ``backend``'s native gates (translated, not optimised)."""
    qiskit, _, _ = _import_qiskit()
    circuit = qiskit.QuantumCircuit(1)
    for name in BASIS_CHANGE[basis]:
        getattr(circuit, name)(0)
    native = [op for op in backend.operation_names if op not in ("measure", "delay", "reset")]
    return _transpile(circuit, None, {"basis_gates": native, "optimization_level": 0})


def _basis_change_ptms(circuit: Any, qubits: tuple[int, ...], noise: NoiseLookup) -> tuple[np.ndarray, ...]:
    """The PTM of a :func:`basis_change_circuit` on each physical qubit, every gate followed by its error there."""
    out = []
    for qubit in qubits:
        ptm = np.eye(4)
        for ins in circuit.data:
            for f in _one_qubit_factors(ins.operation, (qubit,), noise, {}):
                ptm = (f.matrix if f.kind == "fixed" else _fixed_rotation_matrix(f)) @ ptm
        out.append(ptm)
    return tuple(out)


def _one_qubit_factors(op: Any, qubits: tuple[int, ...], noise: NoiseLookup, index_of: dict) -> list[Factor]:
    """A single-qubit instruction, then its error: rotations by symbolic angles, or fixed PTMs."""
    factors = _gate_factors(op, index_of)
    if factors is None:
        u = np.asarray(op.to_matrix(), dtype=np.complex128)
        factors = [Factor("fixed", _gate_ptm(op.name, u.tobytes(), 2))]
    error = noise.gate(op.name, qubits)
    return factors if error is None else [*factors, Factor("fixed", error)]


def _two_qubit_ptm(op: Any, qubits: tuple[int, ...], noise: NoiseLookup) -> np.ndarray:
    """A two-qubit gate followed by its error, as one PTM (first qubit most significant)."""
    if len(qubits) != 2 or op.params:
        raise ValueError(f"cannot simulate the transpiled instruction {op.name} on qubits {qubits}")
    ptm = _gate_ptm(op.name, np.asarray(op.to_matrix(), dtype=np.complex128).tobytes(), 4)
    error = noise.gate(op.name, qubits)
    return ptm if error is None else error @ ptm


def _split_by_entanglers(instructions: list, site: dict[int, int], noise: NoiseLookup, index_of: dict):
    """``(prefix, body)`` of :class:`DeviceProgram`: each site's single-qubit factors before its first
    two-qubit gate, then the rest in order, single-qubit runs merged into one ``"one"`` step each."""
    prefix: list[list[Factor]] = [[] for _ in site]
    pending: list[list[Factor]] = [[] for _ in site]
    entangled = [False] * len(site)
    body: list = []
    for op, qubits in instructions:
        if len(qubits) == 1:
            s = site[qubits[0]]
            (pending[s] if entangled[s] else prefix[s]).extend(_one_qubit_factors(op, qubits, noise, index_of))
            continue
        ptm = _two_qubit_ptm(op, qubits, noise)
        for s in (site[q] for q in qubits):
            entangled[s] = True
            if pending[s]:
                body.append(("one", (s,), _merge(pending[s])))
                pending[s] = []
        body.append(("two", tuple(site[q] for q in qubits), ptm))
    body.extend(("one", (s,), _merge(factors)) for s, factors in enumerate(pending) if factors)
    return tuple(_merge(f) for f in prefix), tuple(body)


def device_summary(name: str) -> dict:
    """A device's size and median calibration figures, for ``qtransfer devices``."""
    backend = fake_backend(name)
    target = backend.target

    def median(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return float(np.median(values)) if values else None

    def errors(op: str) -> list:
        if op not in target.operation_names:
            return []
        return [p.error for p in target[op].values() if p is not None]

    two_q = next((op for op in ("cx", "ecr", "cz") if op in target.operation_names), None)
    one_q = next((op for op in ("sx", "u2", "u3") if op in target.operation_names), None)
    props = [target.qubit_properties[q] for q in range(backend.num_qubits)] if target.qubit_properties else []
    return {
        "device": name,
        "qubits": backend.num_qubits,
        "calibration": _calibration_date(backend),
        "two_qubit_gate": two_q,
        "median_2q_error": median(errors(two_q)) if two_q else None,
        "median_1q_error": median(errors(one_q)) if one_q else None,
        "median_readout_error": median(errors("measure")),
        "median_t1_us": median([p.t1 * 1e6 if p.t1 else None for p in props]),
        "median_t2_us": median([p.t2 * 1e6 if p.t2 else None for p in props]),
    }

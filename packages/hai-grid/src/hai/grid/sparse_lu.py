"""Sparse LU factorisation for the CPU solvers: KLU when PyKLU is installed, SuperLU otherwise.

Why KLU: it is the factorisation built for circuit and power-flow matrices (block triangular
form, AMD ordering, no supernodes), the one pandapower's lightsim2grid backend and most power
system tools use. Measured on the Jacobians of this package, one CPU thread (2-core VM):

=================  ==============  =============  =================
Jacobian           factorisation   one solve      20 right-hand sides
=================  ==============  =============  =================
case1354pegase     1.2 vs 2.4 ms   0.02 vs 0.11   0.24 vs 0.81 ms
case9241pegase     12 vs 25 ms     0.24 vs 0.97   2.3 vs 7.9 ms
=================  ==============  =============  =================

(KLU vs SuperLU with scipy's default COLAMD; MKL's PARDISO through pypardiso was slower than
both: 42 ms to factorise and solve case9241pegase.) KLU comes from PyKLU (SuiteSparse's KLU,
LGPL-2.1, an optional extra ``hai-grid[klu]``); SuperLU (scipy) is always there, and the
results agree to rounding (tests run both).

Symbolic reuse (:class:`SymbolicLU`): Newton's Jacobians, and the Jacobians of every step of a
time series, share one sparsity pattern, so KLU's symbolic analysis (block triangular form and
AMD ordering) is done once per pattern and each new matrix pays only the numeric factorisation:
case1354pegase 0.6 ms analysis + 0.7 ms factorisation, case9241pegase 5.3 + 6.4 ms, where a fresh
PyKLU ``Klu`` pays both and a probe solve every time. PyKLU's Python class does not expose this
split, so :class:`SymbolicLU` calls the KLU functions its extension module exports
(``klu_analyze``, ``klu_factor``, ``klu_solve``, ``klu_free_*``; KLU's own C API, LGPL) through
ctypes, after checking that ``klu_defaults`` fills ``klu_common`` as the layout it reads expects
(otherwise, and without PyKLU, it factorises from scratch each time with :func:`factorize`).
There KLU reports a singular matrix itself (no factors, ``Common.status`` KLU_SINGULAR).

PyKLU does not report a failed factorisation: for a singular matrix its solve prints a status
line on the C-level standard output and hands the right-hand side back unchanged. So
:func:`factorize` checks every KLU factorisation with one probe solve (residual against the
matrix, C stdout silenced for that call) and returns None where it failed, as it does where
SuperLU raises for an exactly singular matrix.

>>> import numpy as np, scipy.sparse as sp
>>> lu = factorize(sp.csc_matrix(np.array([[4.0, 1.0], [1.0, 3.0]])))
>>> np.round(lu.solve(np.array([1.0, 2.0])), 6).tolist()
[0.090909, 0.636364]
>>> factorize(sp.csc_matrix(np.array([[1.0, 2.0], [2.0, 4.0]]))) is None
True
>>> pattern = sp.csc_matrix(np.array([[4.0, 1.0], [1.0, 3.0]]))
>>> symbolic = SymbolicLU(pattern.indptr, pattern.indices, 2)
>>> np.round(symbolic.factor(np.array([2.0, 1.0, 1.0, 2.0])).solve(np.array([3.0, 3.0])), 6).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from hai.shared import InputError, MissingPackageError

#: Backends :func:`factorize` knows; "auto" is KLU when PyKLU imports, SuperLU otherwise.
BACKENDS = ("auto", "klu", "superlu")

#: A probe solve's residual above this (relative to ‖A‖‖x‖ + ‖b‖) means KLU did not factorise.
PROBE_TOLERANCE = 1e-8


class LUFactor(Protocol):
    """A factorisation of a square sparse matrix: ``solve(b)`` for b of shape (n,) or (n, k)."""

    def solve(self, rhs: np.ndarray) -> np.ndarray: ...


def klu_available() -> bool:
    """Whether PyKLU (KLU) can be imported."""
    try:
        import PyKLU  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


_KLU = klu_available()


def resolve_backend(backend: str = "auto") -> str:
    """The backend ``backend`` means here: "klu" or "superlu"; "klu" without PyKLU is refused."""
    if backend not in BACKENDS:
        raise InputError(f"sparse LU backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "klu" if _KLU else "superlu"
    if backend == "klu" and not _KLU:
        raise MissingPackageError("the KLU backend needs PyKLU: pip install 'hai-grid[klu]'")
    return backend


class _KluFactor:
    def __init__(self, klu: object) -> None:
        self._klu = klu

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        b = np.asarray(rhs, dtype=np.float64)
        if b.ndim == 2:
            b = np.asfortranarray(b)
        return np.asarray(self._klu.solve(b))  # type: ignore[attr-defined]


class _SuperLUFactor:
    def __init__(self, lu: object) -> None:
        self._lu = lu

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return np.asarray(self._lu.solve(np.asarray(rhs, dtype=np.float64)))  # type: ignore[attr-defined]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)


@contextmanager
def _c_stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the duration (C library prints included)."""
    libc = _libc()
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)  # what C printed sits in stdio's buffer: flush it to /dev/null
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _klu_factor(matrix: sp.csc_matrix) -> _KluFactor | None:
    from PyKLU import Klu

    a = sp.csc_matrix(
        (
            matrix.data.astype(np.float64, copy=False),
            matrix.indices.astype(np.int32),
            matrix.indptr.astype(np.int32),
        ),
        shape=matrix.shape,
    )
    klu = Klu(a)
    n = a.shape[0]
    probe = 1.0 + np.arange(n, dtype=np.float64) / max(n, 1)
    with _c_stdout_silenced():
        x = np.asarray(klu.solve(probe))
    residual = float(np.abs(a @ x - probe).max())
    scale = float(abs(a).sum(axis=1).max()) * float(np.abs(x).max()) + 1.0
    if not np.isfinite(x).all() or residual > PROBE_TOLERANCE * scale:
        return None
    return _KluFactor(klu)


def factorize(
    matrix: sp.spmatrix | sp.sparray, backend: str = "auto", permc_spec: str | None = None
) -> LUFactor | None:
    """LU factorisation of the square sparse ``matrix``; None where it is singular or not finite.

    ``permc_spec`` is SuperLU's column ordering (ignored by KLU, which orders by itself).
    """
    csc = sp.csc_matrix(matrix)
    if csc.shape[0] != csc.shape[1]:
        raise ValueError(f"factorize needs a square matrix, got {csc.shape}")
    if not np.isfinite(csc.data).all():
        return None
    if resolve_backend(backend) == "klu":
        return _klu_factor(csc)
    from scipy.sparse.linalg import splu

    try:
        lu = splu(csc) if permc_spec is None else splu(csc, permc_spec=permc_spec)
    except RuntimeError:  # exactly singular
        return None
    return _SuperLUFactor(lu)


# ----- KLU with its symbolic analysis kept (ctypes on the functions PyKLU's extension exports) -----

#: Byte offsets in SuiteSparse's ``klu_common`` (KLU 1.x and 2.x): five doubles (tol, memgrow,
#: initmem_amd, initmem, maxwork), ints btf, ordering, scale, two pointers, then ints
#: halt_if_singular and status.
_COMMON_HALT_OFFSET = 72
_COMMON_STATUS_OFFSET = 76
#: KLU's status for a singular matrix (a warning: ``klu_factor`` still returns its factors)
_KLU_SINGULAR = 1
_COMMON_BYTES = 1024  # klu_common is about 200 bytes; room to spare


class _KluC:
    """The KLU C functions of PyKLU's extension module, with their argument types."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp, i32 = ctypes.c_void_p, ctypes.c_int32
        self.defaults = lib.klu_defaults
        self.defaults.argtypes, self.defaults.restype = [vp], ctypes.c_int
        self.analyze = lib.klu_analyze
        self.analyze.argtypes, self.analyze.restype = [i32, vp, vp, vp], vp
        self.factor = lib.klu_factor
        self.factor.argtypes, self.factor.restype = [vp, vp, vp, vp, vp], vp
        self.solve = lib.klu_solve
        self.solve.argtypes, self.solve.restype = [vp, vp, i32, i32, vp, vp], ctypes.c_int
        self.free_numeric = lib.klu_free_numeric
        self.free_numeric.argtypes, self.free_numeric.restype = [vp, vp], ctypes.c_int
        self.free_symbolic = lib.klu_free_symbolic
        self.free_symbolic.argtypes, self.free_symbolic.restype = [vp, vp], ctypes.c_int

    def new_common(self) -> ctypes.Array[ctypes.c_char] | None:
        """A ``klu_common`` filled by ``klu_defaults``; None if its layout is not the expected one."""
        common = ctypes.create_string_buffer(_COMMON_BYTES)
        if self.defaults(common) != 1:
            return None
        tol, memgrow = struct.unpack_from("dd", common, 0)
        btf, ordering, scale = struct.unpack_from("iii", common, 40)
        halt, status = struct.unpack_from("ii", common, _COMMON_HALT_OFFSET)
        if (tol, memgrow, btf, ordering, scale, halt, status) != (0.001, 1.2, 1, 0, 2, 1, 0):
            return None
        return common


@functools.cache
def _klu_c() -> _KluC | None:
    """KLU's C functions from PyKLU's extension module, or None (no PyKLU, symbols or layout)."""
    if not _KLU:
        return None
    try:
        from PyKLU import _klu

        c = _KluC(ctypes.CDLL(_klu.__file__))
    except (ImportError, OSError, AttributeError):
        return None
    return c if c.new_common() is not None else None


def _status(common: ctypes.Array[ctypes.c_char]) -> int:
    return int(struct.unpack_from("i", common, _COMMON_STATUS_OFFSET)[0])


def _free(free: Callable[..., int], pointer: ctypes.c_void_p, common: ctypes.Array[ctypes.c_char]) -> None:
    if pointer.value:
        free(ctypes.byref(pointer), common)


class _KluNumeric:
    """One numeric KLU factorisation on a :class:`SymbolicLU`'s analysis (freed with this object)."""

    def __init__(self, owner: SymbolicLU, numeric: ctypes.c_void_p) -> None:
        self._owner = owner  # keeps the symbolic analysis alive while this factorisation is
        self._numeric = numeric
        assert owner._c is not None
        assert owner._common is not None
        weakref.finalize(self, _free, owner._c.free_numeric, numeric, owner._common)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        owner = self._owner
        assert owner._c is not None
        x = np.array(rhs, dtype=np.float64, order="F", copy=True)
        if x.shape[0] != owner.n:
            raise ValueError(f"right-hand side has {x.shape[0]} rows, the matrix {owner.n}")
        nrhs = 1 if x.ndim == 1 else x.shape[1]
        if x.size:
            owner._c.solve(owner._symbolic, self._numeric, owner.n, nrhs, x.ctypes.data, owner._common)
        return x


class SymbolicLU:
    """A square sparsity pattern (CSC ``indptr``, ``indices``) analysed once, factorised many times.

    ``factor(data)`` factorises the matrix with this pattern and values ``data`` (in CSC order)
    and returns an :data:`LUFactor`, or None where the matrix is singular or not finite. With KLU
    (PyKLU installed, ``backend`` "auto" or "klu") the ordering is computed once, here; otherwise
    every call factorises from scratch with :func:`factorize`.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, n: int, backend: str = "auto") -> None:
        self.n = int(n)
        self.backend = resolve_backend(backend)
        self._indptr = np.ascontiguousarray(indptr, dtype=np.int32)
        self._indices = np.ascontiguousarray(indices, dtype=np.int32)
        if len(self._indptr) != self.n + 1:
            raise ValueError(f"indptr has {len(self._indptr)} entries, expected {self.n + 1}")
        self._c = _klu_c() if self.backend == "klu" and self.n > 0 else None
        self._common = self._c.new_common() if self._c is not None else None
        self._symbolic = ctypes.c_void_p(None)
        if self._c is not None and self._common is not None:
            pointer = self._c.analyze(
                self.n, self._indptr.ctypes.data, self._indices.ctypes.data, self._common
            )
            self._symbolic = ctypes.c_void_p(pointer)
            if not pointer:  # analysis failed (invalid pattern): factorise from scratch instead
                self._c = None
            else:
                weakref.finalize(self, _free, self._c.free_symbolic, self._symbolic, self._common)

    @property
    def reuses_analysis(self) -> bool:
        """Whether factorisations reuse the symbolic analysis (KLU through its C functions)."""
        return self._c is not None

    def factor(self, data: np.ndarray) -> LUFactor | None:
        values = np.ascontiguousarray(data, dtype=np.float64)
        if values.shape != self._indices.shape:
            raise ValueError(f"data has {values.shape} values, the pattern {self._indices.shape}")
        if not np.isfinite(values).all():
            return None
        if self._c is None or self._common is None:
            matrix = sp.csc_matrix((values, self._indices, self._indptr), shape=(self.n, self.n))
            return factorize(matrix, self.backend)
        pointer = self._c.factor(
            self._indptr.ctypes.data,
            self._indices.ctypes.data,
            values.ctypes.data,
            self._symbolic,
            self._common,
        )
        numeric = ctypes.c_void_p(pointer)
        if not pointer:
            return None
        if _status(self._common) == _KLU_SINGULAR:
            _free(self._c.free_numeric, numeric, self._common)
            return None
        return _KluNumeric(self, numeric)

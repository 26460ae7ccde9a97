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
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterator
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

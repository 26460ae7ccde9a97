"""hai.grid.sparse_lu: KLU and SuperLU give the same solutions, and both report a singular matrix."""

from __future__ import annotations

import numpy as np
import pandapower as pp  # type: ignore[import-untyped]
import pytest
import scipy.sparse as sp
import torch

import hai.grid
from hai.grid import sparse_lu
from hai.grid.cases import load_case
from hai.shared import InputError, MissingPackageError

BACKENDS = [
    "superlu",
    pytest.param("klu", marks=pytest.mark.skipif(not sparse_lu.klu_available(), reason="PyKLU")),
]


def random_system(n: int, seed: int) -> sp.csc_matrix:
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=5.0 / n, random_state=seed, format="csc") + sp.identity(n) * (
        2 + rng.random()
    )
    return sp.csc_matrix(a)


@pytest.mark.parametrize("backend", BACKENDS)
def test_solutions_equal_a_dense_solve(backend: str) -> None:
    a = random_system(300, 1)
    rng = np.random.default_rng(2)
    b = rng.standard_normal(300)
    many = rng.standard_normal((300, 7))
    lu = sparse_lu.factorize(a, backend)
    assert lu is not None
    dense = a.toarray()
    np.testing.assert_allclose(lu.solve(b), np.linalg.solve(dense, b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lu.solve(many), np.linalg.solve(dense, many), rtol=0, atol=1e-12)
    # a C-ordered block of right-hand sides is not modified
    before = many.copy()
    lu.solve(many)
    np.testing.assert_array_equal(many, before)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "matrix",
    [
        [[1.0, 2.0], [2.0, 4.0]],  # rank 1
        [[1.0, 0.0], [0.0, 0.0]],  # a zero pivot
        [[1.0, float("nan")], [0.0, 1.0]],  # not finite
    ],
)
def test_a_singular_matrix_gives_none_and_prints_nothing(
    backend: str, matrix: list[list[float]], capfd: pytest.CaptureFixture[str]
) -> None:
    assert sparse_lu.factorize(sp.csc_matrix(np.array(matrix)), backend) is None
    assert capfd.readouterr().out == ""  # PyKLU's own status line is silenced


def test_unknown_backend_and_missing_klu_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="klu, superlu"):
        sparse_lu.resolve_backend("umfpack")
    monkeypatch.setattr(sparse_lu, "_KLU", False)
    assert sparse_lu.resolve_backend("auto") == "superlu"
    with pytest.raises(MissingPackageError, match=r"hai-grid\[klu\]"):
        sparse_lu.resolve_backend("klu")


@pytest.mark.skipif(not sparse_lu.klu_available(), reason="PyKLU")
def test_power_flow_with_klu_equals_superlu_and_pandapower(monkeypatch: pytest.MonkeyPatch) -> None:
    """runpp, a time series (chord reuse) and N-1 (one base factorisation) on either backend."""
    net = load_case("case1354pegase")
    pp.runpp(net, tolerance_mva=1e-10)
    ref = net.res_bus.vm_pu.to_numpy().copy()
    scale = np.linspace(0.9, 1.1, 6)[:, None]
    load_p = scale * net.load.p_mw.to_numpy()[None]
    load_q = scale * net.load.q_mvar.to_numpy()[None]
    lines = [int(i) for i in net.line.index[::150]]
    results = {}
    for backend in ("klu", "superlu"):
        monkeypatch.setattr(sparse_lu, "_KLU", backend == "klu")
        hai.grid.runpp(net, tolerance_mva=1e-10)
        np.testing.assert_allclose(net.res_bus.vm_pu.to_numpy(), ref, rtol=0, atol=1e-9)
        series = hai.grid.run_timeseries(net, load_p, load_q, tolerance_mva=1e-8)
        outages = hai.grid.run_contingency(net, lines=lines, trafos=[], tolerance_mva=1e-8)
        results[backend] = (series, outages)
    (s_klu, c_klu), (s_slu, c_slu) = results["klu"], results["superlu"]
    assert bool(torch.as_tensor(s_klu.converged).all())
    assert bool(torch.as_tensor(s_slu.converged).all())
    np.testing.assert_allclose(s_klu.vm_pu.numpy(), s_slu.vm_pu.numpy(), rtol=0, atol=1e-9)
    assert bool(c_klu.converged.all())
    assert bool(c_slu.converged.all())
    np.testing.assert_allclose(
        np.asarray(c_klu.vm_pu, dtype=float), np.asarray(c_slu.vm_pu, dtype=float), rtol=0, atol=1e-9
    )

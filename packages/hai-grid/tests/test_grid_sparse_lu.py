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


@pytest.mark.parametrize("backend", BACKENDS)
def test_symbolic_lu_factorises_new_values_on_the_kept_pattern(backend: str) -> None:
    a = random_system(400, 3)
    a.sort_indices()
    symbolic = sparse_lu.SymbolicLU(a.indptr, a.indices, 400, backend)
    if backend == "klu":
        assert symbolic.reuses_analysis  # KLU's analysis is kept: the C functions were found
    rng = np.random.default_rng(4)
    b = rng.standard_normal(400)
    many = rng.standard_normal((400, 5))
    b_given = b.copy()
    factors = []
    for k in range(4):  # other values on the same pattern, every factorisation kept alive
        data = a.data * (1.0 + 0.3 * rng.random(a.nnz)) + (k == 3) * 1e-3
        matrix = sp.csc_matrix((data, a.indices, a.indptr), shape=a.shape).toarray()
        lu = symbolic.factor(data)
        assert lu is not None
        factors.append((lu, matrix))
    for lu, matrix in factors:
        np.testing.assert_allclose(lu.solve(b), np.linalg.solve(matrix, b), rtol=0, atol=1e-11)
        np.testing.assert_allclose(lu.solve(many), np.linalg.solve(matrix, many), rtol=0, atol=1e-11)
    np.testing.assert_array_equal(b, b_given)  # the solves worked on copies


@pytest.mark.parametrize("backend", BACKENDS)
def test_symbolic_lu_reports_singular_and_non_finite_matrices(
    backend: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pattern = sp.csc_matrix(np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 1.0, 5.0]]))
    symbolic = sparse_lu.SymbolicLU(pattern.indptr, pattern.indices, 3, backend)
    assert symbolic.factor(pattern.data) is None  # rows 1 and 2 are parallel
    if backend == "klu":  # read from klu_common at the offset the module assumes
        assert sparse_lu._status(symbolic._common) == sparse_lu._KLU_SINGULAR  # type: ignore[arg-type]
    assert symbolic.factor(np.array([1.0, 2.0, 2.0, np.nan, 1.0, 5.0])) is None
    regular = symbolic.factor(np.array([1.0, 2.0, 2.0, 5.0, 1.0, 5.0]))  # the same pattern, regular
    assert regular is not None
    dense = np.array([[1.0, 2.0, 0.0], [2.0, 5.0, 0.0], [0.0, 1.0, 5.0]])
    np.testing.assert_allclose(regular.solve(np.ones(3)), np.linalg.solve(dense, np.ones(3)), atol=1e-14)
    with pytest.raises(ValueError, match="values"):
        symbolic.factor(np.ones(5))
    assert capfd.readouterr().out == ""


def test_jacobian_factorisations_share_one_analysis_and_equal_superlu() -> None:
    from hai.grid.network import compile_network
    from hai.grid.newton import PowerFlowSystem

    compiled = compile_network(load_case("case118"))
    system = PowerFlowSystem(compiled)
    reference = PowerFlowSystem(compiled, linear_solver="superlu")
    rng = np.random.default_rng(5)
    for _ in range(3):
        v = compiled.v0[None] * torch.polar(
            torch.from_numpy(1 + 0.02 * rng.standard_normal(compiled.n_bus)),
            torch.from_numpy(0.05 * rng.standard_normal(compiled.n_bus)),
        )
        values = system.jacobian_values(v)[0].numpy()
        dense = np.zeros((system.n_var, system.n_var))
        dense[system.j_rows_np, system.j_cols_np] = values
        b = rng.standard_normal(system.n_var)
        for s in (system, reference):
            lu = s.factor_jacobian(values)
            assert lu is not None
            np.testing.assert_allclose(lu.solve(b), np.linalg.solve(dense, b), rtol=0, atol=1e-9)
    assert system._symbolic is not None
    assert system._symbolic.n == system.n_var

"""solve_batch: injections and outages agree with one pandapower.runpp per scenario."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pytest
import torch

from hai.grid import BatchResult, load_case, solve_batch
from hai.shared import InputError


def _runpp(net: pp.pandapowerNet) -> pp.pandapowerNet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, tolerance_mva=1e-10)
    return net


def _net_with_sgens() -> pp.pandapowerNet:
    net = load_case("case30")
    for bus in (5, 11, 20):
        pp.create_sgen(net, bus=bus, p_mw=5.0, q_mvar=1.0)
    net.load.loc[net.load.index[0], "scaling"] = 0.8
    return net


def test_injection_batch_matches_pandapower_per_scenario() -> None:
    net = _net_with_sgens()
    rng = np.random.default_rng(0)
    batch = 4
    load_p = net.load.p_mw.to_numpy()[None, :] * rng.uniform(0.7, 1.3, (batch, len(net.load)))
    load_q = net.load.q_mvar.to_numpy()[None, :] * rng.uniform(0.7, 1.3, (batch, len(net.load)))
    sgen_p = rng.uniform(0.0, 15.0, (batch, len(net.sgen)))
    result = solve_batch(net, load_p_mw=load_p, load_q_mvar=load_q, sgen_p_mw=sgen_p, device="cpu")
    assert isinstance(result, BatchResult)
    assert result.vm_pu.shape == (batch, len(net.bus))
    assert result.vm_pu.dtype == torch.float64
    assert bool(result.converged.all())
    assert float(result.max_mismatch_mva.max()) <= 1e-8
    for b in range(batch):
        ref = copy.deepcopy(net)
        ref.load["p_mw"] = load_p[b]
        ref.load["q_mvar"] = load_q[b]
        ref.sgen["p_mw"] = sgen_p[b]
        _runpp(ref)
        assert np.abs(result.vm_pu[b].numpy() - ref.res_bus.vm_pu.to_numpy()).max() < 1e-6
        assert np.abs(result.va_degree[b].numpy() - ref.res_bus.va_degree.to_numpy()).max() < 1e-4


def test_outages_match_pandapower_including_islands() -> None:
    net = load_case("case30")
    outages = [("line", int(i)) for i in net.line.index] + [("trafo", int(i)) for i in net.trafo.index]
    result = solve_batch(net, outages=outages)
    assert bool(result.converged.all())
    isolated = 0
    for b, (element, index) in enumerate(outages):
        ref = copy.deepcopy(net)
        ref[element].loc[index, "in_service"] = False
        _runpp(ref)
        vm_ref = ref.res_bus.vm_pu.to_numpy()
        vm = result.vm_pu[b].numpy()
        np.testing.assert_array_equal(np.isnan(vm), np.isnan(vm_ref))
        assert bool(result.islanded[b]) == bool(np.isnan(vm_ref).any())
        isolated += int(np.isnan(vm_ref).sum())
        assert np.nanmax(np.abs(vm - vm_ref)) < 1e-6
        assert np.nanmax(np.abs(result.va_degree[b].numpy() - ref.res_bus.va_degree.to_numpy())) < 1e-4
    assert isolated == 3  # the grid.md baseline: 3 isolated buses over case30's N-1


def test_outages_and_injections_combine_and_broadcast() -> None:
    net = load_case("case14")
    scale = np.array([[0.9], [1.2]]) * net.load.p_mw.to_numpy()[None, :]
    result = solve_batch(net, load_p_mw=scale, outages=[[("line", 3), ("trafo", 0)]])
    ref = copy.deepcopy(net)
    ref.line.loc[3, "in_service"] = False
    ref.trafo.loc[0, "in_service"] = False
    ref.load["p_mw"] = scale[1]
    _runpp(ref)
    assert np.abs(result.vm_pu[1].numpy() - ref.res_bus.vm_pu.to_numpy()).max() < 1e-6


def test_batched_dpf_then_newton_agrees_with_newton() -> None:
    net = load_case("case9")
    load_p = np.array([[0.8], [1.0], [1.1]]) * net.load.p_mw.to_numpy()[None, :]
    nr = solve_batch(net, load_p_mw=load_p, method="nr")
    dpf = solve_batch(net, load_p_mw=load_p, method="dpf+nr", init="flat")
    assert dpf.method == "dpf+nr"
    assert bool(dpf.converged.all())
    assert torch.allclose(nr.vm_pu, dpf.vm_pu, atol=1e-9)


def test_non_converged_scenarios_are_flagged_and_nan() -> None:
    net = load_case("case9")
    load_p = np.array([[1.0], [12.0]]) * net.load.p_mw.to_numpy()[None, :]
    result = solve_batch(net, load_p_mw=load_p, method="nr", max_iteration=10)
    assert result.converged.tolist() == [True, False]
    assert bool(result.vm_pu[1].isnan().all())
    assert float(result.max_mismatch_mva[1]) > 1e-8
    assert not bool(result.vm_pu[0].isnan().any())


def test_bad_batch_inputs_are_named() -> None:
    net = load_case("case9")
    n_load = len(net.load)
    with pytest.raises(InputError, match=r"load_p_mw must have shape \(batch, 3\)"):
        solve_batch(net, load_p_mw=np.ones((2, n_load + 1)))
    with pytest.raises(InputError, match="NaN"):
        solve_batch(net, load_q_mvar=np.full((2, n_load), np.nan))
    with pytest.raises(InputError, match="batch sizes"):
        solve_batch(net, load_p_mw=np.ones((2, n_load)), load_q_mvar=np.ones((3, n_load)))
    with pytest.raises(InputError, match="'switch'"):
        solve_batch(net, outages=[("switch", 0)])
    with pytest.raises(InputError, match="no such index"):
        solve_batch(net, outages=[("line", 99)])


def test_dense_linear_solver_gives_the_sparse_solution() -> None:
    """The batched dense solve (the GPU path) agrees with sparse LU, outages and islands included."""
    from hai.grid import PowerFlowSystem, compile_network, newton_raphson

    net = load_case("case14")
    compiled = compile_network(net)
    sparse = PowerFlowSystem(compiled)
    dense = PowerFlowSystem(compiled, linear_solver="dense")
    assert sparse.sparse
    assert not dense.sparse
    assert dense.linear_solver == "dense"
    v0 = compiled.v0[None].repeat(3, 1)
    sbus = compiled.sbus[None] * torch.tensor([[0.9], [1.0], [1.1]], dtype=torch.complex128)
    a = newton_raphson(sparse, v0, sbus)
    b = newton_raphson(dense, v0, sbus)
    assert bool(a.converged.all())
    assert bool(b.converged.all())
    assert torch.equal(a.iterations, b.iterations)
    assert float((a.v - b.v).abs().max()) < 1e-12

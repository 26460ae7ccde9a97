"""runpp: results in net.res_* agree with pandapower.runpp(tolerance_mva=1e-10)."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pytest

import hai.grid
from hai.grid import PowerFlowNotConverged, load_case
from hai.shared import HaiError, InputError, NotConvergedError

CASES = [
    "case9",
    "case14",
    "case30",
    "case57",
    "case118",
    "case300",
    "case1354pegase",
    "case2869pegase",
    "example_multivoltage",
]


def _reference(name: str) -> pp.pandapowerNet:
    net = load_case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, tolerance_mva=1e-10)
    return net


def _assert_results_match(net: pp.pandapowerNet, ref: pp.pandapowerNet) -> None:
    vm = net.res_bus.vm_pu.to_numpy()
    vm_ref = ref.res_bus.vm_pu.to_numpy()
    np.testing.assert_array_equal(np.isnan(vm), np.isnan(vm_ref))
    assert np.nanmax(np.abs(vm - vm_ref)) < 1e-6
    assert np.nanmax(np.abs(net.res_bus.va_degree.to_numpy() - ref.res_bus.va_degree.to_numpy())) < 1e-4
    for table in ("res_bus", "res_line", "res_trafo", "res_ext_grid", "res_gen"):
        ours, theirs = net[table], ref[table]
        assert list(ours.columns) == list(theirs.columns), table
        assert list(ours.index) == list(theirs.index), table
        if len(theirs):
            for column in [
                c for c in ("p_mw", "q_mvar", "p_from_mw", "q_from_mvar", "loading_percent") if c in theirs
            ]:
                np.testing.assert_allclose(ours[column], theirs[column], atol=1e-4, rtol=0, err_msg=table)


@pytest.mark.parametrize("name", CASES)
def test_runpp_matches_pandapower(name: str) -> None:
    net = load_case(name)
    info = hai.grid.runpp(net, device="cpu")
    assert info.converged
    assert info.max_mismatch_mva <= 1e-8 * net.sn_mva  # pandapower's meaning: per unit
    assert net.converged
    _assert_results_match(net, _reference(name))


def test_runpp_flat_start_and_warm_start() -> None:
    net = load_case("case118")
    flat = hai.grid.runpp(net, method="nr", init="flat")
    warm = hai.grid.runpp(net, method="nr", init="results")
    assert warm.iterations < flat.iterations
    assert warm.iterations <= 1
    _assert_results_match(net, _reference("case118"))


def test_runpp_dpf_then_newton_matches_pandapower() -> None:
    net = load_case("case14")
    info = hai.grid.runpp(net, method="dpf+nr", init="flat")
    assert info.method == "dpf+nr"
    assert info.iterations > 100  # optimiser steps plus Newton steps
    _assert_results_match(net, _reference("case14"))


def test_runpp_dpf_alone_meets_a_loose_tolerance() -> None:
    net = load_case("case9")
    info = hai.grid.runpp(net, method="dpf", init="flat", tolerance_mva=5e-4)  # pu: 0.05 MVA
    assert info.method == "dpf"
    assert info.max_mismatch_mva <= 0.05
    ref = _reference("case9")
    assert np.abs(net.res_bus.vm_pu.to_numpy() - ref.res_bus.vm_pu.to_numpy()).max() < 1e-3


def test_runpp_dpf_alone_does_not_claim_a_tight_tolerance() -> None:
    net = load_case("case9")
    with pytest.raises(PowerFlowNotConverged, match="did not converge"):
        hai.grid.runpp(net, method="dpf", init="flat", max_iteration=50)
    assert not net.converged


def test_not_converged_raises_and_writes_nothing() -> None:
    net = load_case("case30")
    net.load.loc[:, "p_mw"] *= 8.0  # far beyond the loadability limit
    with pytest.raises(PowerFlowNotConverged) as info:
        hai.grid.runpp(net, method="nr", max_iteration=10)
    assert isinstance(info.value, NotConvergedError)
    assert isinstance(info.value, HaiError)
    assert "MVA" in str(info.value)
    assert net.res_bus.vm_pu.isna().all()


def test_bad_options_are_named() -> None:
    net = load_case("case9")
    with pytest.raises(InputError, match="method"):
        hai.grid.runpp(net, method="gauss")
    with pytest.raises(InputError, match="init"):
        hai.grid.runpp(net, init="warm")
    with pytest.raises(InputError, match="tolerance_mva"):
        hai.grid.runpp(net, tolerance_mva=-1.0)

"""distributed_slack=True in hai.grid.runpp agrees with pandapower.runpp(distributed_slack=True)."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pandapower as pp
import pytest

import hai.grid
from hai.grid import PowerFlowNotConverged, load_case
from hai.shared import InputError

#: every result column compared (where the table has rows), to 1e-6 MW/Mvar/% and 1e-8 pu.
COLUMNS = {
    "res_bus": ("p_mw", "q_mvar"),
    "res_gen": ("p_mw", "q_mvar", "va_degree"),
    "res_ext_grid": ("p_mw", "q_mvar"),
    "res_line": ("p_from_mw", "q_from_mvar", "p_to_mw", "pl_mw", "loading_percent"),
    "res_trafo": ("p_hv_mw", "q_hv_mvar", "p_lv_mw", "pl_mw", "loading_percent"),
    "res_trafo3w": ("p_hv_mw", "p_mv_mw", "p_lv_mw", "loading_percent"),
    "res_xward": ("p_mw", "q_mvar"),
    "res_impedance": ("p_from_mw", "q_from_mvar"),
}


def _pandapower(net: Any, **kwargs: Any) -> Any:
    ref = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(ref, numba=False, lightsim2grid=False, **kwargs)
    return ref


def _assert_same(net: Any, ref: Any) -> None:
    np.testing.assert_allclose(net.res_bus.vm_pu, ref.res_bus.vm_pu, atol=1e-8, rtol=0)
    va, va_ref = np.deg2rad(net.res_bus.va_degree), np.deg2rad(ref.res_bus.va_degree)
    np.testing.assert_allclose(va, va_ref, atol=1e-8, rtol=0)
    for table, columns in COLUMNS.items():
        for column in columns:
            if len(ref[table]) and column in ref[table]:
                np.testing.assert_allclose(
                    net[table][column], ref[table][column], atol=1e-6, rtol=0, err_msg=f"{table}.{column}"
                )


def _case30() -> Any:
    net = load_case("case30")
    net.gen["slack_weight"] = [1.0, 2.0, 0.5, 0.0, 1.0]
    net.ext_grid["slack_weight"] = 1.0
    return net


def _case118() -> Any:
    net = load_case("case118")
    every_third = np.arange(len(net.gen)) % 3 == 0
    net.gen["slack_weight"] = np.where(every_third, net.gen.max_p_mw.clip(lower=1.0), 0.0)
    return net


def _multivoltage() -> Any:
    net = load_case("example_multivoltage")  # trafo3w, switches, impedance, xwards
    net.gen["slack_weight"] = 1.0
    net.xward["slack_weight"] = [0.5, 2.0]  # xward weights sit at their PQ buses
    return net


def _two_ext_grids() -> Any:
    net = load_case("case30")  # a second ext_grid in place of the first gen
    first = net.gen.index[0]
    pp.create_ext_grid(net, bus=int(net.gen.bus[first]), vm_pu=float(net.gen.vm_pu[first]), slack_weight=3.0)
    net.gen = net.gen.drop(first)
    net.gen["slack_weight"] = 1.0
    return net


def _simbench_ehv() -> Any:
    simbench = pytest.importorskip("simbench")
    return simbench.get_simbench_net("1-EHV-mixed--0-sw")  # 7 ext_grids and 338 gens, all weight 1


NETS = {
    "case30": _case30,
    "case118": _case118,
    "example_multivoltage": _multivoltage,
    "case30 two ext_grids": _two_ext_grids,
}


@pytest.mark.parametrize("name", list(NETS))
def test_distributed_slack_matches_pandapower(name: str) -> None:
    net = NETS[name]()
    ref = _pandapower(net, distributed_slack=True)
    single = _pandapower(net)
    info = hai.grid.runpp(net, distributed_slack=True)
    assert info.method == "nr (distributed_slack)"
    assert info.iterations == ref._ppc["iterations"]
    _assert_same(net, ref)
    # the option matters: the slack power moved away from the ext_grid
    moved = np.abs(ref.res_ext_grid.p_mw.to_numpy() - single.res_ext_grid.p_mw.to_numpy()).max()
    assert moved > 1.0


def test_slack_power_is_shared_in_proportion_to_the_weights() -> None:
    """The invariant behind the formulation: every weighted gen takes weight/Σweights of the slack."""
    net = _case30()
    hai.grid.runpp(net, distributed_slack=True)
    extra = np.r_[net.res_ext_grid.p_mw.to_numpy(), net.res_gen.p_mw.to_numpy() - net.gen.p_mw.to_numpy()]
    weights = np.r_[net.ext_grid.slack_weight.to_numpy(), net.gen.slack_weight.to_numpy()]
    total = extra.sum()
    np.testing.assert_allclose(extra, total * weights / weights.sum(), atol=1e-9)
    # and the slack covers the losses: generation minus load equals the branch losses
    generation = net.res_ext_grid.p_mw.sum() + net.res_gen.p_mw.sum()
    losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert generation - net.res_load.p_mw.sum() == pytest.approx(losses, abs=1e-6)


@pytest.mark.slow
def test_distributed_slack_matches_pandapower_on_simbench_ehv() -> None:
    net = _simbench_ehv()
    ref = _pandapower(net, distributed_slack=True)
    hai.grid.runpp(net, distributed_slack=True)
    _assert_same(net, ref)


def test_set_user_pf_options_and_inits() -> None:
    net = _case118()
    pp.set_user_pf_options(net, distributed_slack=True)
    ref = _pandapower(net)  # pandapower reads the stored option
    hai.grid.runpp(net)
    _assert_same(net, ref)
    for init in ("flat", "dc", "results"):
        net = _case118()
        hai.grid.runpp(net)  # results of the single-slack flow, the start for init="results"
        ref = _pandapower(net, distributed_slack=True, init=init)
        info = hai.grid.runpp(net, distributed_slack=True, init=init)
        assert info.iterations == ref._ppc["iterations"], init
        _assert_same(net, ref)


def test_default_weights_are_the_single_slack() -> None:
    """ext_grid slack_weight 1, gen 0 (pandapower's defaults): the ordinary power flow."""
    net = load_case("case118")
    hai.grid.runpp(net, distributed_slack=True)
    single = _pandapower(net)
    np.testing.assert_allclose(net.res_bus.vm_pu, single.res_bus.vm_pu, atol=1e-8, rtol=0)
    np.testing.assert_allclose(net.res_ext_grid.p_mw, single.res_ext_grid.p_mw, atol=1e-6, rtol=0)


def _limits(net: Any, q_max: float | None, q_min: float | None) -> Any:
    if q_max is not None:
        net.gen["max_q_mvar"] = q_max
        net.gen["min_q_mvar"] = q_min
    return net


@pytest.mark.parametrize(
    ("name", "q_max", "q_min"),
    [
        ("case30", 10.0, -5.0),
        ("case118", None, None),
        ("case118", 30.0, -10.0),
        ("example_multivoltage", 0.5, -0.5),
    ],
)
def test_distributed_slack_with_q_limits_matches_pandapower(
    name: str, q_max: float | None, q_min: float | None
) -> None:
    """Both options: pandapower's Q-limit loop around the distributed-slack Newton."""
    net = _limits(NETS[name](), q_max, q_min)
    ref = _pandapower(net, distributed_slack=True, enforce_q_lims=True)
    at_limit = np.isclose(ref.res_gen.q_mvar, net.gen.max_q_mvar) | np.isclose(
        ref.res_gen.q_mvar, net.gen.min_q_mvar
    )
    assert at_limit.sum() >= 1  # the limits bind
    free = _pandapower(net, distributed_slack=True)
    assert np.abs(free.res_gen.q_mvar - ref.res_gen.q_mvar).max() > 1.0  # and change the result
    info = hai.grid.runpp(net, distributed_slack=True, enforce_q_lims=True)
    assert info.method == "nr (enforce_q_lims)"
    _assert_same(net, ref)
    assert (net.res_gen.q_mvar <= net.gen.max_q_mvar + 1e-9).all()


def test_refusals_name_the_option() -> None:
    with pytest.raises(InputError, match="distributed_slack=True needs method 'nr'"):
        hai.grid.runpp(_case30(), distributed_slack=True, method="dpf")
    with pytest.raises(InputError, match="runpp option distributed_slack=1"):
        hai.grid.runpp(_case30(), distributed_slack=1)
    net = _case30()
    net.ext_grid["slack_weight"] = 0.0
    net.gen["slack_weight"] = 0.0
    with pytest.raises(InputError, match=r"distributed_slack=True: .*sum to zero"):
        hai.grid.runpp(net, distributed_slack=True)
    with pytest.raises(ValueError, match="sum to zero"):
        _pandapower(net, distributed_slack=True)  # pandapower refuses it too


def test_solve_batch_and_run_timeseries_honour_stored_distributed_slack() -> None:
    """Injection scenarios: every scenario agrees with pandapower.runpp(distributed_slack=True)."""
    net = _case118()
    pp.set_user_pf_options(net, distributed_slack=True)
    scale = np.array([0.8, 1.0, 1.15])[:, None]
    p, q = scale * net.load.p_mw.to_numpy()[None, :], scale * net.load.q_mvar.to_numpy()[None, :]
    tol = 1e-8 * net.sn_mva  # pandapower's 1e-8 pu in the batch APIs' MVA
    batch = hai.grid.solve_batch(net, load_p_mw=p, load_q_mvar=q, tolerance_mva=tol)
    series = hai.grid.run_timeseries(net, p, q, tolerance_mva=tol)
    assert batch.method == "nr (distributed_slack)"
    assert series.method == "nr (warm start, distributed_slack)"
    moved = 0.0
    for k in range(len(scale)):
        step = copy.deepcopy(net)
        step.load["p_mw"], step.load["q_mvar"] = p[k], q[k]
        ref = _pandapower(step)  # reads the stored option
        for result in (batch, series):
            np.testing.assert_allclose(result.vm_pu[k].numpy(), ref.res_bus.vm_pu, atol=1e-8, rtol=0)
            va = np.deg2rad(result.va_degree[k].numpy())
            np.testing.assert_allclose(va, np.deg2rad(ref.res_bus.va_degree), atol=1e-8, rtol=0)
        plain = copy.deepcopy(step)
        plain.user_pf_options = {}
        moved = max(moved, float(np.abs(_pandapower(plain).res_bus.va_degree - ref.res_bus.va_degree).max()))
    assert moved > 0.1  # the option matters here


def test_batch_apis_refuse_distributed_slack_with_outages_by_name() -> None:
    net = _case30()
    pp.set_user_pf_options(net, distributed_slack=True)
    with pytest.raises(
        InputError, match="distributed_slack=True is not supported by solve_batch with outages"
    ):
        hai.grid.solve_batch(net, outages=[("line", 0)])
    with pytest.raises(InputError, match="distributed_slack=True is not supported by run_contingency"):
        hai.grid.run_contingency(net, lines=[0])
    with pytest.raises(InputError, match="distributed_slack=True is not supported by solve_differentiable"):
        hai.grid.solve_differentiable(net)


def test_non_convergence_is_reported() -> None:
    net = _case118()
    net.load["p_mw"] *= 5.0
    net.load["q_mvar"] *= 5.0
    with pytest.raises(PowerFlowNotConverged, match="did not converge"):
        hai.grid.runpp(net, distributed_slack=True)
    with pytest.raises(pp.LoadflowNotConverged):
        _pandapower(net, distributed_slack=True)

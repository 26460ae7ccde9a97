"""hai.grid.runpp is a drop-in for pandapower.runpp: every keyword honoured or refused by name."""

from __future__ import annotations

import copy
import inspect
import time
import warnings
from typing import Any

import numpy as np
import pandapower as pp
import pytest

import hai.grid
from hai.grid import PowerFlowNotConverged, load_case
from hai.grid.options import DEFAULTS, OPTIONS
from hai.shared import InputError

#: A value for each option that differs from pandapower's default, and what hai must do with it.
NON_DEFAULT: dict[str, tuple[Any, str]] = {
    "algorithm": ("bfsw", "refused"),
    "calculate_voltage_angles": (False, "honoured"),
    "init": ("dc", "honoured"),  # flat: neither converges on this net in 10 steps (tested on case118)
    "max_iteration": (20, "honoured"),
    "tolerance_mva": (1e-6, "honoured"),
    "trafo_model": ("pi", "honoured"),
    "trafo_loading": ("power", "honoured"),
    "enforce_p_lims": (True, "refused"),
    "enforce_q_lims": (True, "honoured"),
    "check_connectivity": (False, "honoured"),
    "voltage_depend_loads": (False, "honoured"),
    "consider_line_temperature": (True, "refused"),
    "run_control": (True, "refused"),
    "distributed_slack": (True, "honoured"),
    "tdpf": (True, "refused"),
    "tdpf_delay_s": (10.0, "refused"),
    "tdpf_update_r_theta": (False, "honoured"),
    "numba": (False, "honoured"),
    "lightsim2grid": (False, "honoured"),
    "switch_rx_ratio": (1.0, "honoured"),
    "delta_q": (0.1, "honoured"),
    "trafo3w_losses": ("lv", "honoured"),
    "v_debug": (True, "refused"),
    "init_vm_pu": (1.0, "refused"),
    "init_va_degree": ("flat", "refused"),
    "recycle": ({"bus_pq": True, "trafo": False, "gen": False}, "honoured"),
    "neglect_open_switch_branches": (True, "honoured"),
    "only_v_results": (True, "honoured"),
    "use_umfpack": (False, "honoured"),
    "permc_spec": ("COLAMD", "honoured"),
}


def _pandapower(net: Any, **kwargs: Any) -> Any:
    ref = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(ref, numba=False, **kwargs)
    return ref


def _assert_same(net: Any, ref: Any, tables: tuple[str, ...] = ("res_bus", "res_line", "res_trafo")) -> None:
    np.testing.assert_allclose(net.res_bus.vm_pu, ref.res_bus.vm_pu, atol=1e-6, rtol=0)
    np.testing.assert_allclose(net.res_bus.va_degree, ref.res_bus.va_degree, atol=1e-4, rtol=0)
    for table in tables:
        for column in ("p_mw", "q_mvar", "p_hv_mw", "p_from_mw", "loading_percent"):
            if len(ref[table]) and column in ref[table]:
                np.testing.assert_allclose(net[table][column], ref[table][column], atol=1e-4, rtol=0)


def test_every_pandapower_keyword_is_known() -> None:
    """The named parameters of pandapower.runpp and the keywords its option parser reads."""
    named = [p for p in inspect.signature(pp.runpp).parameters if p not in ("net", "kwargs")]
    from pandapower.auxiliary import _init_runpp_options

    source = inspect.getsource(_init_runpp_options)
    read = {part.split('"')[1] for part in source.split("kwargs.get(")[1:]}
    for name in [*named, *read]:
        assert name in DEFAULTS, name
        assert name in OPTIONS, name
        assert name in NON_DEFAULT, name
    assert set(OPTIONS) == set(DEFAULTS) == set(NON_DEFAULT)


@pytest.mark.parametrize("name", list(NON_DEFAULT))
def test_each_option_is_honoured_or_refused_by_name(name: str) -> None:
    value, what = NON_DEFAULT[name]
    net = load_case("example_multivoltage")  # trafo3w, switches, shifts, impedances, xwards
    if what == "refused":
        with pytest.raises(InputError, match=f"runpp option {name}="):
            hai.grid.runpp(net, **{name: value})
        return
    hai.grid.runpp(net, **{name: value})
    kwargs = {} if name in ("numba", "recycle", "lightsim2grid") else {name: value}
    ref = _pandapower(load_case("example_multivoltage"), **kwargs)
    # only_v_results: pandapower fills res_bus voltages only, hai every table (a superset)
    tables = (
        ()
        if name == "only_v_results"
        else ("res_bus", "res_line", "res_trafo", "res_trafo3w", "res_impedance")
    )
    _assert_same(net, ref, tables)


def test_user_pf_options_are_read_and_refused_by_name() -> None:
    net = load_case("case30")
    pp.set_user_pf_options(net, enforce_p_lims=True)
    with pytest.raises(InputError, match=r"enforce_p_lims=True .*net\.user_pf_options"):
        hai.grid.runpp(net)
    net = load_case("case30")
    pp.set_user_pf_options(net, run_control=True)
    with pytest.raises(InputError, match="run_control"):
        hai.grid.runpp(net)
    # pandapower's rule: a named runpp parameter given at its default does not override the
    # stored option (pandapower would run the controllers), so it is still refused
    with pytest.raises(InputError, match=r"run_control=True .*net\.user_pf_options"):
        hai.grid.runpp(net, run_control=False)
    # any other keyword given to the call wins over the stored option, as in pandapower
    net = load_case("case30")
    pp.set_user_pf_options(net, init_vm_pu=1.0)
    with pytest.raises(InputError, match="init_vm_pu"):
        hai.grid.runpp(net)
    hai.grid.runpp(net, init_vm_pu=None)
    assert net.converged


def test_stored_options_win_over_named_defaults_as_in_pandapower() -> None:
    """pandapower.runpp(net, distributed_slack=False) with distributed_slack=True stored still
    distributes the slack (its _passed_runpp_parameters drops named parameters at default)."""
    net = load_case("case30")
    net.gen["slack_weight"] = 1.0
    pp.set_user_pf_options(net, distributed_slack=True, trafo_model="pi")
    ref = _pandapower(net, distributed_slack=False, trafo_model="t")  # trafo_model "t": default
    hai.grid.runpp(net, distributed_slack=False, trafo_model="t")
    _assert_same(net, ref)
    plain = load_case("case30")
    hai.grid.runpp(plain)
    assert np.abs(plain.res_ext_grid.p_mw.to_numpy() - ref.res_ext_grid.p_mw.to_numpy()).max() > 1.0
    # a non-default value given to the call wins in both
    hai.grid.runpp(net, calculate_voltage_angles=False)
    ref = _pandapower(net, calculate_voltage_angles=False)
    _assert_same(net, ref)


def test_user_pf_options_are_honoured() -> None:
    net = load_case("example_multivoltage")
    pp.set_user_pf_options(net, trafo_model="pi", trafo_loading="power", calculate_voltage_angles=False)
    hai.grid.runpp(net)
    ref = load_case("example_multivoltage")
    pp.set_user_pf_options(ref, trafo_model="pi", trafo_loading="power", calculate_voltage_angles=False)
    _assert_same(net, _pandapower(ref), ("res_bus", "res_line", "res_trafo", "res_trafo3w"))


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(InputError, match="unknown runpp option 'enforce_qlims'"):
        hai.grid.runpp(load_case("case9"), enforce_qlims=True)


def test_tolerance_has_pandapower_meaning() -> None:
    """tolerance_mva bounds the per-unit mismatch (pandapower compares it with the p.u. F)."""
    net = load_case("case118")
    info = hai.grid.runpp(net, tolerance_mva=1e-4, init="flat")
    ref = _pandapower(net, tolerance_mva=1e-4, init="flat")
    assert info.iterations == ref._ppc["iterations"]
    assert info.max_mismatch_mva < 1e-4 * net.sn_mva
    with pytest.raises(InputError, match="tolerance_mva"):
        hai.grid.runpp(net, tolerance_mva=1e12, init="flat")


def test_voltage_dependent_loads_refused_unless_switched_off() -> None:
    net = load_case("case14")
    net.load.loc[net.load.index[:3], "const_z_p_percent"] = 50.0
    with pytest.raises(InputError, match="const_z_p_percent"):
        hai.grid.runpp(net)
    hai.grid.runpp(net, voltage_depend_loads=False)
    _assert_same(net, _pandapower(net, voltage_depend_loads=False))


def test_non_convergence_fails_fast_without_fallback() -> None:
    import pandapower.networks as pn

    net = pn.mv_oberrhein()
    net.load["p_mw"] *= 10
    net.load["q_mvar"] *= 10
    start = time.perf_counter()
    with pytest.raises(PowerFlowNotConverged, match="after 10 iterations") as info:
        hai.grid.runpp(net)
    assert time.perf_counter() - start < 2.0  # was Newton + 1000 DPF steps + Newton (~0.6 s)
    assert "pu)" in str(info.value)  # the mismatch it reached
    with pytest.raises(pp.LoadflowNotConverged):
        _pandapower(net)


def test_batch_apis_read_user_pf_options() -> None:
    """solve_batch, run_timeseries and run_contingency: no stored option is dropped quietly."""
    net = load_case("case30")
    pp.set_user_pf_options(net, enforce_q_lims=True)  # honoured by runpp only
    p = net.load.p_mw.to_numpy()[None, :]
    calls = {
        "solve_batch": lambda n: hai.grid.solve_batch(n, load_p_mw=p),
        "run_timeseries": lambda n: hai.grid.run_timeseries(n, p),
        "run_contingency": lambda n: hai.grid.run_contingency(n, lines=[0]),
    }
    for call in calls.values():
        with pytest.raises(InputError, match="enforce_q_lims"):
            call(net)
        stored = load_case("case30")
        pp.set_user_pf_options(stored, tolerance_mva=1e-3)
        with pytest.raises(InputError, match=r"tolerance_mva=0\.001 is not read by"):
            call(stored)
    net = load_case("example_multivoltage")  # its transformers shift the phase by 150 degrees
    pp.set_user_pf_options(net, calculate_voltage_angles=False, trafo_model="pi")
    result = hai.grid.solve_batch(net, load_p_mw=net.load.p_mw.to_numpy()[None, :])
    ref = _pandapower(net)  # pandapower reads the stored options too
    np.testing.assert_allclose(result.vm_pu[0].numpy(), ref.res_bus.vm_pu.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(result.va_degree[0].numpy(), ref.res_bus.va_degree.to_numpy(), atol=1e-4)
    default = _pandapower(load_case("example_multivoltage"))
    assert np.abs(default.res_bus.va_degree.to_numpy() - ref.res_bus.va_degree.to_numpy()).max() > 100


def _tight(name: str, q_max: float | None, q_min: float | None) -> Any:
    net = load_case(name)
    if q_max is not None:
        net.gen["max_q_mvar"] = q_max
        net.gen["min_q_mvar"] = q_min
    return net


@pytest.mark.parametrize(
    ("name", "q_max", "q_min"),
    [
        ("case118", None, None),
        ("case30", 10.0, -5.0),
        ("case14", 15.0, -2.0),
        ("example_multivoltage", 0.5, -0.5),
    ],
)
def test_enforce_q_lims_matches_pandapower(name: str, q_max: float | None, q_min: float | None) -> None:
    """PV→PQ switching as pandapower does it; generators end at their limits, results to 1e-9."""
    net = _tight(name, q_max, q_min)
    ref = _pandapower(net, enforce_q_lims=True)
    at_limit = np.isclose(ref.res_gen.q_mvar, net.gen.max_q_mvar) | np.isclose(
        ref.res_gen.q_mvar, net.gen.min_q_mvar
    )
    assert at_limit.sum() >= 1  # the limits bind
    info = hai.grid.runpp(net, enforce_q_lims=True)
    assert info.method == "nr (enforce_q_lims)"
    for table, column in [
        ("res_bus", "vm_pu"),
        ("res_bus", "va_degree"),
        ("res_gen", "q_mvar"),
        ("res_gen", "p_mw"),
        ("res_ext_grid", "p_mw"),
        ("res_ext_grid", "q_mvar"),
        ("res_line", "loading_percent"),
    ]:
        np.testing.assert_allclose(net[table][column], ref[table][column], atol=1e-9, rtol=0, err_msg=table)
    assert (net.res_gen.q_mvar <= net.gen.max_q_mvar + 1e-9).all()
    # stored by set_user_pf_options, as the issue found it ignored
    stored = _tight(name, q_max, q_min)
    pp.set_user_pf_options(stored, enforce_q_lims=True)
    hai.grid.runpp(stored)
    np.testing.assert_allclose(stored.res_gen.q_mvar, ref.res_gen.q_mvar, atol=1e-9, rtol=0)

"""Network compilation: Ybus, Sbus and bus types equal pandapower's internal ones."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pytest
import torch

from hai.grid import compile_network, load_case
from hai.shared import InputError

warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def _modified_case30() -> pp.pandapowerNet:
    """case30 with out-of-service elements, a shunt, a ward, a switch and an isolated bus."""
    net = load_case("case30")
    net.line.loc[3, "in_service"] = False
    net.gen.loc[net.gen.index[1], "in_service"] = False
    net.load.loc[net.load.index[2], "in_service"] = False
    pp.create_shunt(net, bus=7, q_mvar=-5.0, p_mw=0.3)
    pp.create_ward(net, bus=12, ps_mw=1.0, qs_mvar=0.5, pz_mw=0.2, qz_mvar=0.1)
    pp.create_sgen(net, bus=20, p_mw=4.0, q_mvar=1.0)
    lone = pp.create_bus(net, vn_kv=135.0)
    pp.create_load(net, bus=lone, p_mw=1.0)
    bus = pp.create_bus(net, vn_kv=135.0)
    pp.create_switch(net, bus=bus, element=9, et="b", closed=True)
    pp.create_load(net, bus=bus, p_mw=3.0, q_mvar=1.0)
    return net


CASES = [
    "case9",
    "case14",  # trafos, PV gens
    "case118",  # trafos with tap ratios, shunts
    "case300",  # phase shifters, negative reactances
    "example_multivoltage",  # trafo3w, switches, xwards, impedance, shunt
    "mv_oberrhein",  # open switches (out-of-service parts), sgens
    "modified_case30",  # out-of-service line/gen/load, shunt, ward, bus-bus switch, isolated bus
]


def _net(name: str) -> pp.pandapowerNet:
    return _modified_case30() if name == "modified_case30" else load_case(name)


@pytest.mark.parametrize("name", CASES)
def test_ybus_sbus_and_bus_types_equal_pandapower(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = compile_network(_net(name))
        reference = _net(name)
        pp.runpp(reference, tolerance_mva=1e-10)
    internal = reference._ppc["internal"]
    ybus = internal["Ybus"].toarray()
    dense = compiled.ybus.to_dense().numpy()
    assert dense.shape == ybus.shape
    assert np.abs(dense - ybus).max() < 1e-10
    # pandapower overwrites the slack entries of its stored Sbus with the solved slack power; the
    # slack's scheduled injection enters no equation, so compare the PV and PQ buses.
    pvpq = np.r_[internal["pv"], internal["pq"]]
    assert np.abs(compiled.sbus.numpy()[pvpq] - internal["Sbus"][pvpq]).max() < 1e-10
    np.testing.assert_array_equal(np.sort(compiled.ref.numpy()), np.sort(internal["ref"]))
    np.testing.assert_array_equal(np.sort(compiled.pv.numpy()), np.sort(internal["pv"]))
    np.testing.assert_array_equal(np.sort(compiled.pq.numpy()), np.sort(internal["pq"]))
    assert compiled.base_mva == float(internal["baseMVA"])
    lookup = reference._pd2ppc_lookups["bus"][reference.bus.index.to_numpy()]
    n = compiled.n_bus
    expected = np.where((lookup >= 0) & (lookup < n), lookup, -1)
    np.testing.assert_array_equal(compiled.bus_lookup.numpy(), expected)


def test_isolated_bus_is_not_internal() -> None:
    net = _modified_case30()
    compiled = compile_network(net)
    lone = net.bus.index[-2]
    assert int(compiled.bus_lookup[net.bus.index.get_loc(lone)]) == -1
    assert compiled.ybus.dtype == torch.complex128


def test_empty_net_is_refused() -> None:
    with pytest.raises(InputError, match="no buses"):
        compile_network(pp.create_empty_network())


def test_net_without_slack_is_refused() -> None:
    net = load_case("case9")
    net.ext_grid.loc[:, "in_service"] = False
    with pytest.raises(InputError, match="no slack"):
        compile_network(net)


def test_nan_injection_is_refused() -> None:
    net = load_case("case9")
    net.load.loc[net.load.index[0], "p_mw"] = np.nan
    with pytest.raises(InputError, match=r"net\.load\.p_mw"):
        compile_network(net)


def test_unsupported_element_is_named() -> None:
    net = load_case("case9")
    pp.create_svc(
        net, bus=4, x_l_ohm=1.0, x_cvar_ohm=-10.0, set_vm_pu=1.0, thyristor_firing_angle_degree=90.0
    )
    with pytest.raises(InputError, match="'svc'"):
        compile_network(net)


def test_voltage_dependent_loads_are_refused() -> None:
    net = load_case("case9")
    net.load.loc[net.load.index[0], "const_z_p_percent"] = 50.0
    with pytest.raises(InputError, match="const_z_p_percent"):
        compile_network(net)


def test_not_a_net_is_refused() -> None:
    with pytest.raises(InputError, match="pandapower net"):
        compile_network({"bus": []})

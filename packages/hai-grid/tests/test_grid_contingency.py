"""run_contingency: per-outage results and aggregates equal pandapower's."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pandapower.contingency as pc
import pytest

from hai.grid import load_case, run_contingency
from hai.shared import InputError


def test_n1_matches_pandapower_per_outage_and_in_aggregate() -> None:
    net = load_case("case30")
    net.bus["min_vm_pu"] = 0.96
    net.bus["max_vm_pu"] = 1.05
    net.line["max_loading_percent"] = 60.0
    result = run_contingency(net, device="cpu")
    assert len(result.outages) == len(net.line) + len(net.trafo)
    assert bool(result.converged.all())
    assert int(result.islanded.sum()) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b, (element, index) in enumerate(result.outages):
            ref = copy.deepcopy(net)
            ref[element].loc[index, "in_service"] = False
            pp.runpp(ref, tolerance_mva=1e-10)
            vm = ref.res_bus.vm_pu.to_numpy()
            loading = ref.res_line.loading_percent.to_numpy()
            np.testing.assert_array_equal(np.isnan(result.vm_pu[b]), np.isnan(vm))
            np.testing.assert_array_equal(np.isnan(result.line_loading_percent[b]), np.isnan(loading))
            assert np.nanmax(np.abs(result.vm_pu[b] - vm)) < 1e-6
            assert np.nanmax(np.abs(result.line_loading_percent[b] - loading)) < 1e-4
        ref = copy.deepcopy(net)
        pc.run_contingency(
            ref,
            {"line": {"index": ref.line.index.to_numpy()}, "trafo": {"index": ref.trafo.index.to_numpy()}},
        )
    # pandapower's contingency runs use its default tolerance_mva 1e-8
    assert np.abs(result.bus_min_vm_pu - ref.res_bus.min_vm_pu.to_numpy()).max() < 1e-7
    assert np.abs(result.bus_max_vm_pu - ref.res_bus.max_vm_pu.to_numpy()).max() < 1e-7
    assert np.abs(result.line_max_loading_percent - ref.res_line.max_loading_percent.to_numpy()).max() < 1e-4
    over = int(np.nansum(result.line_loading_percent > 60.0))
    low = int(np.nansum(result.vm_pu < 0.96)) + int(np.nansum(result.vm_pu > 1.05))
    assert over > 0
    assert low > 0
    assert sum(v["element"] == "line" for v in result.violations) == over
    assert sum(v["element"] == "bus" for v in result.violations) == low


def test_subsets_and_bad_indices() -> None:
    net = load_case("case9")
    result = run_contingency(net, lines=[0, 4], trafos=[])
    assert result.outages == [("line", 0), ("line", 4)]
    with pytest.raises(InputError, match="lines names indices"):
        run_contingency(net, lines=[99])
    with pytest.raises(InputError, match="no outages"):
        run_contingency(net, lines=[], trafos=[])


def test_trafo_loadings_per_outage_and_in_aggregate_equal_pandapower() -> None:
    net = load_case("case118")
    net.trafo["max_loading_percent"] = 2.0  # case118 trafos are rated 9900 MVA: loadings of a few %
    lines = list(net.line.index[:10])
    result = run_contingency(net, lines=lines)
    assert result.trafo_loading_percent.shape == (len(lines) + len(net.trafo), len(net.trafo))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in (0, len(lines), len(lines) + 5):  # a line outage and two trafo outages
            element, index = result.outages[b]
            ref = copy.deepcopy(net)
            ref[element].loc[index, "in_service"] = False
            pp.runpp(ref, tolerance_mva=1e-10)
            expected = ref.res_trafo.loading_percent.to_numpy()
            np.testing.assert_array_equal(np.isnan(result.trafo_loading_percent[b]), np.isnan(expected))
            assert np.nanmax(np.abs(result.trafo_loading_percent[b] - expected)) < 1e-6
        ref = copy.deepcopy(net)
        pc.run_contingency(
            ref, {"line": {"index": np.array(lines)}, "trafo": {"index": ref.trafo.index.to_numpy()}}
        )
    assert (
        np.abs(result.trafo_max_loading_percent - ref.res_trafo.max_loading_percent.to_numpy()).max() < 1e-4
    )
    over = int(np.nansum(result.trafo_loading_percent > 2.0))
    assert over > 0
    assert sum(v["element"] == "trafo" for v in result.violations) == over


def test_lines_behind_open_switches_load_as_in_pandapower() -> None:
    """A line with an open switch at one end carries its charging current (pandapower's auxiliary
    bus); out of service, it is NaN as in pandapower (the auxiliary bus is isolated)."""
    import pandapower.networks as pn

    net = pn.mv_oberrhein()
    open_lines = sorted({int(e) for e in net.switch.element[(net.switch.et == "l") & ~net.switch.closed]})
    open_lines = [line for line in open_lines if net.line.in_service.at[line]][:3]
    other = [int(i) for i in net.line.index[net.line.in_service][::25]]
    lines = sorted(set(open_lines + other))
    result = run_contingency(net, lines=lines, trafos=[], tolerance_mva=1e-9)
    for b, line in enumerate(lines):
        net.line.at[line, "in_service"] = False
        pp.runpp(net, tolerance_mva=1e-10)
        net.line.at[line, "in_service"] = True
        expected = net.res_line.loading_percent.to_numpy()
        got = result.line_loading_percent[b]
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=1e-6)
    positions = [net.line.index.get_loc(line) for line in open_lines]
    unaffected = [b for b, line in enumerate(lines) if line not in open_lines]
    behind = result.line_loading_percent[np.ix_(unaffected, positions)]
    assert np.isfinite(behind).sum() > len(unaffected)  # the fix: these were all NaN
    assert np.all(behind[np.isfinite(behind)] > 0)


def test_violations_list_every_limit_breach_in_outage_then_element_order() -> None:
    net = load_case("case118")
    net.bus["min_vm_pu"] = 0.96
    net.bus["max_vm_pu"] = 1.05
    net.line["max_loading_percent"] = 3.0  # loadings of a few % here too
    net.trafo["max_loading_percent"] = 2.0  # rated 9900 MVA: loadings of a few %
    result = run_contingency(net, lines=list(net.line.index[:20]), device="cpu")
    expected = []  # built entry by entry from the result's arrays, in the documented order
    for b, outage in enumerate(result.outages):
        if not result.converged[b]:
            continue
        for p, index in enumerate(net.bus.index):
            vm = result.vm_pu[b, p]
            if vm < 0.96 or vm > 1.05:
                expected.append({"outage": outage, "element": "bus", "index": int(index), "vm_pu": float(vm)})
        for element, values, limit in (
            ("line", result.line_loading_percent, 3.0),
            ("trafo", result.trafo_loading_percent, 2.0),
        ):
            for p, index in enumerate(net[element].index):
                if values[b, p] > limit:
                    expected.append(
                        {
                            "outage": outage,
                            "element": element,
                            "index": int(index),
                            "loading_percent": float(values[b, p]),
                        }
                    )
    assert {v["element"] for v in expected} == {"bus", "line", "trafo"}
    assert result.violations == expected

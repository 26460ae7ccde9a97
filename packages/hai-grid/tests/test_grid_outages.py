"""The outage solver (base-case factorisation + low-rank updates) gives Newton's solutions."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp  # type: ignore[import-untyped]
import pytest
import torch

from hai.grid import load_case, run_contingency, solve_batch
from hai.grid.batch import OUTAGE_NR_MAX_ITERATION, _outage_topology
from hai.grid.network import compile_network
from hai.grid.newton import PowerFlowSystem, newton_raphson
from hai.grid.outages import solve_outages
from hai.grid.powerflow import initial_voltages


def test_outage_solver_equals_full_newton_including_islanding_outages() -> None:
    net = load_case("case118")
    compiled = compile_network(net)
    system = PowerFlowSystem(compiled)
    base = newton_raphson(system, initial_voltages(compiled, "dc"), compiled.sbus[None])
    outages = [[("line", int(i))] for i in net.line.index] + [[("trafo", int(i))] for i in net.trafo.index]
    values, dead = _outage_topology(compiled, system, outages)
    var_bus = np.r_[system.pvpq.numpy(), system.pq.numpy()]
    frozen = torch.from_numpy(dead[:, var_bus])
    fast = solve_outages(system, base.v[0], compiled.sbus, values, frozen=frozen, tolerance_mva=1e-9)
    batch = len(outages)
    ref = newton_raphson(
        system,
        base.v[0][None].repeat(batch, 1),
        compiled.sbus[None].expand(batch, -1),
        ybus_values=values,
        frozen=frozen,
        tolerance_mva=1e-9,
    )
    assert dead.any(axis=1).sum() > 0  # islanding outages are part of the test
    assert int(fast.converged.sum()) >= 0.9 * batch  # the rest is left to full Newton by callers
    both = fast.converged & ref.converged
    live = torch.from_numpy(~dead)
    diff = ((fast.v - ref.v).abs() * live)[both]
    assert float(diff.max()) < 1e-9
    assert float(fast.max_mismatch_mva[fast.converged].max()) <= 1e-9


def test_outage_that_does_not_converge_is_flagged_and_follows_max_iteration() -> None:
    net = load_case("case30")
    for table, column in (("load", "p_mw"), ("load", "q_mvar"), ("gen", "p_mw")):
        net[table][column] *= 2.5  # heavy loading: line 9's outage has no solution
    outages = [("line", int(i)) for i in net.line.index]
    b = outages.index(("line", 9))
    default = solve_batch(net, outages=outages)
    short = solve_batch(net, outages=outages, max_iteration=7)  # the base case needs 4
    for result in (default, short):
        assert not bool(result.converged[b])
        assert bool(torch.isnan(result.vm_pu[b]).all())
        assert float(result.max_mismatch_mva[b]) > 1e-8
        assert int(result.converged.sum()) == len(outages) - 1
    # the full-Newton finish runs max_iteration steps (pandapower's 10 by default) after the
    # fixed-Jacobian iterations, which are the same in both runs
    assert int(default.iterations[b] - short.iterations[b]) == OUTAGE_NR_MAX_ITERATION - 7
    contingency = run_contingency(net, trafos=[], max_iteration=7)
    assert not bool(contingency.converged[b])
    assert np.isnan(contingency.vm_pu[b]).all()
    ref = copy.deepcopy(net)
    ref.line.loc[9, "in_service"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(pp.LoadflowNotConverged):
            pp.runpp(ref)  # pandapower (its defaults) does not converge either

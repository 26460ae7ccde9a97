"""The outage solver (base-case factorisation + low-rank updates) gives Newton's solutions."""

from __future__ import annotations

import numpy as np
import torch

from hai.grid import load_case
from hai.grid.batch import _outage_topology
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

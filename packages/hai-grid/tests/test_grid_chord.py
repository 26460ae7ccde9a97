"""Jacobian reuse (chord steps) in run_timeseries: as exact as Newton, fewer factorisations."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pandapower as pp
import pytest
import torch

import hai.grid.timeseries as timeseries
from hai.grid import load_case, run_timeseries
from hai.grid.batch import scenario_sbus
from hai.grid.network import compile_network
from hai.grid.newton import (
    JacobianReuse,
    PowerFlowSystem,
    chord_newton,
    distributed_slack_system,
    newton_raphson,
)
from hai.grid.powerflow import initial_voltages


def _steps(net: Any, steps: int = 6) -> tuple[np.ndarray, np.ndarray]:
    scale = np.linspace(0.9, 1.0, steps)[:, None]
    return scale * net.load.p_mw.to_numpy()[None, :], scale * net.load.q_mvar.to_numpy()[None, :]


def _pandapower(net: Any, **kwargs: Any) -> Any:
    ref = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(ref, numba=False, tolerance_mva=1e-10, **kwargs)
    return ref


def test_chord_steps_reach_newtons_solution_with_fewer_factorisations() -> None:
    net = load_case("case118")
    compiled = compile_network(net)
    system = PowerFlowSystem(compiled)
    p, q = _steps(net)
    sbus = torch.from_numpy(scenario_sbus(compiled, len(p), p, q, None))
    reuse = JacobianReuse(system)
    v = initial_voltages(compiled, "dc", sbus[:1])
    newton_factorisations = 0
    for k in range(len(p)):
        chord = chord_newton(system, v, sbus[k : k + 1], reuse, tolerance_mva=1e-8)
        newton = newton_raphson(system, v, sbus[k : k + 1], tolerance_mva=1e-8)
        assert bool(chord.converged[0])
        assert bool(newton.converged[0])
        assert float(chord.max_mismatch_mva[0]) <= 1e-8  # the exact mismatch, as Newton's test
        np.testing.assert_allclose(chord.v[0].abs().numpy(), newton.v[0].abs().numpy(), atol=1e-9, rtol=0)
        np.testing.assert_allclose(chord.v[0].angle().numpy(), newton.v[0].angle().numpy(), atol=1e-9, rtol=0)
        newton_factorisations += int(newton.iterations[0])
        v = chord.v
    assert reuse.factorisations < newton_factorisations  # what the reuse saves


def test_run_timeseries_with_reuse_matches_pandapower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeseries, "CHORD_MIN_UNKNOWNS", 0)  # case118 is below the size limit
    net = load_case("case118")
    p, q = _steps(net)
    series = run_timeseries(net, p, q, device="cpu")
    assert bool(series.converged.all())
    for k in range(len(p)):
        step = copy.deepcopy(net)
        step.load["p_mw"], step.load["q_mvar"] = p[k], q[k]
        ref = _pandapower(step)
        np.testing.assert_allclose(series.vm_pu[k].numpy(), ref.res_bus.vm_pu, atol=1e-9, rtol=0)
        np.testing.assert_allclose(series.va_degree[k].numpy(), ref.res_bus.va_degree, atol=1e-7, rtol=0)


def test_reuse_with_distributed_slack_matches_pandapower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeseries, "CHORD_MIN_UNKNOWNS", 0)
    net = load_case("case118")
    net.gen["slack_weight"] = np.where(np.arange(len(net.gen)) % 3 == 0, 1.0, 0.0)
    pp.set_user_pf_options(net, distributed_slack=True)
    p, q = _steps(net, 4)
    series = run_timeseries(net, p, q, device="cpu")
    for k in range(len(p)):
        step = copy.deepcopy(net)
        step.load["p_mw"], step.load["q_mvar"] = p[k], q[k]
        ref = _pandapower(step)
        np.testing.assert_allclose(series.vm_pu[k].numpy(), ref.res_bus.vm_pu, atol=1e-9, rtol=0)
        np.testing.assert_allclose(series.va_degree[k].numpy(), ref.res_bus.va_degree, atol=1e-7, rtol=0)
    compiled = compile_network(net, pp_options={"distributed_slack": True})
    system = distributed_slack_system(compiled)
    assert system.n_var == PowerFlowSystem(compile_network(load_case("case118"))).n_var + 1


def test_no_solution_fails_within_newtons_factorisation_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeseries, "CHORD_MIN_UNKNOWNS", 0)
    net = load_case("case9")
    p = np.array([1.0, 8.0, 1.0])[:, None] * net.load.p_mw.to_numpy()[None, :]  # step 1: no solution
    series = run_timeseries(net, p, max_iteration=10, device="cpu")
    assert series.converged.tolist() == [True, False, True]
    assert bool(series.vm_pu[1].isnan().all())
    compiled = compile_network(net)
    system = PowerFlowSystem(compiled)
    sbus = torch.from_numpy(scenario_sbus(compiled, 1, p[1:2], None, None))
    reuse = JacobianReuse(system)
    result = chord_newton(system, compiled.v0[None], sbus, reuse, max_iteration=10)
    assert not bool(result.converged[0])
    assert reuse.factorisations <= 10

"""Implicit-differentiation gradients agree with central finite differences of the solver."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pytest
import torch

from hai.grid import PowerFlowNotConverged, load_case, solve_differentiable
from hai.shared import InputError

KEYS = {"r": "line_r_ohm_per_km", "x": "line_x_ohm_per_km", "p": "load_p_mw", "q": "load_q_mvar"}


def _loss(result: object) -> torch.Tensor:
    vm = result.vm_pu  # type: ignore[attr-defined]
    va = result.va_degree  # type: ignore[attr-defined]
    return (vm**2).sum() + 0.01 * va[5] - vm.min()


def test_values_equal_pandapower_and_gradients_equal_finite_differences() -> None:
    net = load_case("case30")
    params = {
        "r": torch.tensor(net.line.r_ohm_per_km.to_numpy(), requires_grad=True),
        "x": torch.tensor(net.line.x_ohm_per_km.to_numpy(), requires_grad=True),
        "p": torch.tensor(net.load.p_mw.to_numpy(), requires_grad=True),
        "q": torch.tensor(net.load.q_mvar.to_numpy(), requires_grad=True),
    }
    result = solve_differentiable(net, **{KEYS[k]: v for k, v in params.items()})
    ref = load_case("case30")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(ref, tolerance_mva=1e-10)
    assert np.abs(result.vm_pu.detach().numpy() - ref.res_bus.vm_pu.to_numpy()).max() < 1e-8
    assert np.abs(result.va_degree.detach().numpy() - ref.res_bus.va_degree.to_numpy()).max() < 1e-6
    _loss(result).backward()
    h = 1e-6
    for name, index in (("r", 3), ("r", 20), ("x", 7), ("p", 2), ("q", 10)):
        grad = params[name].grad
        assert grad is not None
        base = params[name].detach().clone()
        up, down = base.clone(), base.clone()
        up[index] += h
        down[index] -= h
        f_up = float(_loss(solve_differentiable(net, **{KEYS[name]: up})))
        f_down = float(_loss(solve_differentiable(net, **{KEYS[name]: down})))
        fd = (f_up - f_down) / (2 * h)
        assert abs(float(grad[index]) - fd) <= 1e-4 * abs(fd) + 1e-9, (name, index, float(grad[index]), fd)
        assert fd != 0.0


def test_gradient_to_sgen_points_the_right_way() -> None:
    net = load_case("case14")
    pp.create_sgen(net, bus=13, p_mw=5.0)
    g = torch.tensor(net.sgen.p_mw.to_numpy(), requires_grad=True)
    result = solve_differentiable(net, sgen_p_mw=g)
    result.vm_pu[net.bus.index.get_loc(13)].backward()
    assert g.grad is not None
    assert float(g.grad[0]) > 0  # feeding in at a load bus raises its voltage


def test_bad_parameters_and_divergence() -> None:
    net = load_case("case9")
    with pytest.raises(InputError, match=r"load_p_mw must have shape \(3,\)"):
        solve_differentiable(net, load_p_mw=torch.ones(4))
    with pytest.raises(InputError, match="NaN"):
        solve_differentiable(net, line_x_ohm_per_km=torch.full((len(net.line),), float("nan")))
    with pytest.raises(PowerFlowNotConverged):
        solve_differentiable(net, load_p_mw=torch.tensor(net.load.p_mw.to_numpy()) * 15)

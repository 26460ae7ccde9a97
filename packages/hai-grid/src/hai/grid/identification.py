"""Line parameter identification: recover unknown line r/x from measured voltages and flows.

Gradient descent through the solver: the misfit between measured and computed bus voltages
and line flows is a function of the lines' r and x through the converged power flow, and its
gradient comes from the implicit differentiation of :mod:`hai.grid.gradients` (no unrolled
iterations). The parameters are ``log(r/r_start)``, ``log(x/x_start)`` (well scaled, and r/x
stay positive) and the optimiser is L-BFGS with a strong-Wolfe line search. Measurements are
named like pandapower's result columns: ``vm_pu``, ``va_degree`` (``net.bus`` order) and
``p_from_mw``, ``q_from_mvar``, ``p_to_mw``, ``q_to_mvar`` (``net.line`` order); NaN marks an
unmeasured value. Each misfit term is in per unit (angles in radians, flows over ``sn_mva``)
divided by ``sigma``.

>>> from hai.grid.cases import load_case
>>> import pandapower as pp
>>> net = load_case("case9")
>>> pp.runpp(net)
>>> measured = {"vm_pu": net.res_bus.vm_pu, "p_from_mw": net.res_line.p_from_mw}
>>> import copy
>>> guess = copy.deepcopy(net)
>>> guess.line.loc[4, "x_ohm_per_km"] *= 1.3
>>> result = identify_line_parameters(guess, measured, lines=[4])
>>> round(float(result.x_ohm_per_km[0] / net.line.x_ohm_per_km.at[4]), 6)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.grid.gradients import line_series_change, solve_compiled
from hai.grid.network import compile_network
from hai.grid.newton import PowerFlowSystem
from hai.grid.options import compile_options
from hai.shared import InputError

#: Measurement names: pandapower's ``res_bus`` and ``res_line`` columns.
BUS_MEASUREMENTS = ("vm_pu", "va_degree")
LINE_MEASUREMENTS = ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar")


@dataclass
class IdentificationResult:
    """Estimated r/x (ohm per km) of ``lines`` (in the given order) and the fit's diagnostics."""

    lines: np.ndarray
    r_ohm_per_km: np.ndarray
    x_ohm_per_km: np.ndarray
    loss: float
    iterations: int
    converged: bool


def _measurements(net: Any, measurements: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not measurements:
        raise InputError("no measurements given", hint=f"give some of {BUS_MEASUREMENTS + LINE_MEASUREMENTS}")
    out = {}
    for name, value in measurements.items():
        if name in BUS_MEASUREMENTS:
            n, table = len(net.bus), "net.bus"
        elif name in LINE_MEASUREMENTS:
            n, table = len(net.line), "net.line"
        else:
            raise InputError(
                f"unknown measurement {name!r}", hint=f"use {', '.join(BUS_MEASUREMENTS + LINE_MEASUREMENTS)}"
            )
        array = np.asarray(value, dtype=float)
        if array.shape != (n,):
            raise InputError(
                f"measurement {name} must have shape ({n},) (one value per row of {table}), got {array.shape}"
            )
        if np.isinf(array).any():
            raise InputError(f"measurement {name} contains infinite values (use NaN for unmeasured)")
        out[name] = array
    if all(np.isnan(a).all() for a in out.values()):
        raise InputError("every measurement is NaN")
    return out


def identify_line_parameters(
    net: Any,
    measurements: Mapping[str, Any],
    lines: Sequence[int],
    *,
    sigma: float = 1e-3,
    max_iteration: int = 200,
    tolerance: float = 1e-10,
) -> IdentificationResult:
    """Estimate r/x (ohm per km) of ``lines`` (indices of ``net.line``) from measurements.

    ``net`` holds the known model: loads, generation, every other parameter, and the start
    values of the unknown lines' r/x (it is not modified). ``measurements`` maps names of
    :data:`BUS_MEASUREMENTS` / :data:`LINE_MEASUREMENTS` to arrays in ``net.bus`` /
    ``net.line`` order (NaN: not measured). L-BFGS stops when the gradient's ∞-norm in the
    log parameters is below ``tolerance``, when the misfit stops changing (the measurements'
    own precision), or after ``max_iteration`` iterations (then ``converged`` is False).
    Raises :class:`~hai.shared.InputError` for unknown or out-of-service lines and measurement
    arrays of the wrong shape, :class:`~hai.grid.PowerFlowNotConverged` when a trial point has
    no power-flow solution.
    """
    ids = [int(i) for i in lines]
    if not ids:
        raise InputError("no lines to identify")
    missing = [i for i in ids if i not in net.line.index]
    if missing:
        raise InputError(f"lines names indices that net.line does not have: {missing[:5]}")
    if len(set(ids)) != len(ids):
        raise InputError("lines names a line more than once")
    off = [i for i in ids if not bool(net.line.in_service.at[i])]
    if off:
        raise InputError(f"lines out of service cannot be identified: {off[:5]}")
    for column in ("r_ohm_per_km", "x_ohm_per_km"):
        start = net.line[column].loc[ids].to_numpy(dtype=float)
        if not (np.isfinite(start) & (start > 0)).all():
            raise InputError(
                f"the start values of net.line.{column} of the lines to identify must be positive",
                hint="the parameters are log-scaled: give each unknown line a positive guess",
            )
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma must be a positive number, got {sigma!r}")
    data = _measurements(net, measurements)
    model = _Model(net, ids, data, sigma)
    theta = torch.zeros(2 * len(ids), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=max_iteration,
        tolerance_grad=tolerance,
        tolerance_change=1e-20,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = model.loss(theta)
        loss.backward()
        return loss

    optimiser.step(closure)
    loss = closure()
    iterations = int(optimiser.state[theta].get("n_iter", 0))
    r, x = model.parameters(theta.detach())
    return IdentificationResult(
        lines=np.asarray(ids),
        r_ohm_per_km=r[model.positions].numpy(),
        x_ohm_per_km=x[model.positions].numpy(),
        loss=float(loss.detach()),
        iterations=iterations,
        converged=iterations < max_iteration,
    )


class _Model:
    """The misfit as a function of the log-scaled unknown r/x."""

    def __init__(self, net: Any, ids: list[int], data: dict[str, np.ndarray], sigma: float) -> None:
        self.compiled = compile_network(net, **compile_options(net, "identify_line_parameters"))
        self.system = PowerFlowSystem(self.compiled)
        self.positions = torch.as_tensor([int(net.line.index.get_loc(i)) for i in ids])
        self.r0 = torch.as_tensor(net.line.r_ohm_per_km.to_numpy(dtype=float))
        self.x0 = torch.as_tensor(net.line.x_ohm_per_km.to_numpy(dtype=float))
        self.data = {k: torch.as_tensor(v) for k, v in data.items()}
        self.sigma = sigma
        self.base_mva = self.compiled.base_mva
        positions, internal, _ = line_series_change(self.compiled, None, None)
        self.live = torch.as_tensor(positions)
        yf = self.compiled.yf_scipy.tocsr()
        yt = self.compiled.yt_scipy.tocsr()
        from pandapower.pypower.idx_brch import F_BUS, T_BUS  # type: ignore[import-untyped]

        branch = self.compiled.ppci["branch"]
        f = np.real(branch[internal, F_BUS]).astype(np.int64)
        t = np.real(branch[internal, T_BUS]).astype(np.int64)
        k = np.asarray(internal)
        self.y0 = torch.as_tensor(
            np.stack(
                [
                    np.asarray(yf[k, f]).ravel(),
                    np.asarray(yf[k, t]).ravel(),
                    np.asarray(yt[k, f]).ravel(),
                    np.asarray(yt[k, t]).ravel(),
                ]
            )
            if len(k)
            else np.zeros((4, 0), dtype=complex)
        )
        bus_pos = net.bus.index
        line = net.line.iloc[positions]
        self.from_pos = torch.as_tensor(bus_pos.get_indexer(line.from_bus))
        self.to_pos = torch.as_tensor(bus_pos.get_indexer(line.to_bus))

    def parameters(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.positions)
        r = self.r0.index_put((self.positions,), self.r0[self.positions] * torch.exp(theta[:n]))
        x = self.x0.index_put((self.positions,), self.x0[self.positions] * torch.exp(theta[n:]))
        return r, x

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        r, x = self.parameters(theta)
        solved = solve_compiled(self.compiled, self.system, line_r_ohm_per_km=r, line_x_ohm_per_km=x)
        terms = []
        for name, scale, value in (
            ("vm_pu", 1.0, solved.vm_pu),
            ("va_degree", np.pi / 180.0, solved.va_degree),
        ):
            if name in self.data:
                terms.append((value - self.data[name]) * scale)
        if any(name in self.data for name in LINE_MEASUREMENTS):
            flows = self.flows(solved.vm_pu, solved.va_degree, r, x)
            for name, value in flows.items():
                if name in self.data:
                    terms.append((value - self.data[name]) / self.base_mva)
        residual = torch.cat(terms) / self.sigma
        residual = residual[~torch.isnan(residual)]
        return 0.5 * (residual**2).sum()

    def flows(
        self, vm: torch.Tensor, va_degree: torch.Tensor, r: torch.Tensor, x: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Line flows (MW, Mvar) in ``net.line`` order (NaN for lines out of service)."""
        _, _, dy = line_series_change(self.compiled, r, x)
        v = torch.polar(vm, va_degree * (np.pi / 180.0))
        vf, vt = v[self.from_pos], v[self.to_pos]
        yff, yft, ytf, ytt = self.y0[0] + dy, self.y0[1] - dy, self.y0[2] - dy, self.y0[3] + dy
        s_from = vf * torch.conj(yff * vf + yft * vt) * self.base_mva
        s_to = vt * torch.conj(ytf * vf + ytt * vt) * self.base_mva
        n = len(self.r0)
        out = {}
        for name, value in (
            ("p_from_mw", s_from.real),
            ("q_from_mvar", s_from.imag),
            ("p_to_mw", s_to.real),
            ("q_to_mvar", s_to.imag),
        ):
            full = torch.full((n,), float("nan"), dtype=torch.float64)
            out[name] = full.index_put((self.live,), value)
        return out

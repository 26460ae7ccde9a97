"""Gradients of the power-flow solution by implicit differentiation at the converged point.

At a solution ``F(x*, θ) = 0`` (``x``: angles at PV/PQ buses, magnitudes at PQ buses; ``θ``:
parameters) the implicit function theorem gives ``dx*/dθ = -J⁻¹ ∂F/∂θ``. This module returns
``x = x* − J⁻¹ F(x*, θ)`` where ``x*`` is detached and the solve with the (constant) Jacobian
``J`` has ``Jᵀ`` solves as its backward: its value is ``x*`` (``F(x*) = 0``) and its gradient is
exactly the implicit one. Newton's iterations are never unrolled. Hand-written because pandapower
does not differentiate its power flow and lightsim2grid's adjoint works on its own grid model, not
on pandapower's Ybus and torch tensors.

Parameters: loads (``load_p_mw``, ``load_q_mvar`` in ``net.load`` order), static generation
(``sgen_p_mw``) and line series impedances (``line_r_ohm_per_km``, ``line_x_ohm_per_km`` in
``net.line`` order). A line's series admittance ``1/(r + jx)`` (per unit, from its length,
``parallel`` and the from-bus voltage as in pandapower) is updated in Ybus in torch; at the net's
own values Ybus is pandapower's.

>>> import torch
>>> from hai.grid.cases import load_case
>>> net = load_case("case9")
>>> p = torch.tensor(net.load.p_mw.to_numpy(), requires_grad=True)
>>> result = solve_differentiable(net, load_p_mw=p)
>>> result.vm_pu[4].backward()  # the voltage at bus 4, where load 0 is connected
>>> bool(p.grad[0] < 0)  # more load there, lower voltage there
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from hai.grid.errors import PowerFlowNotConverged
from hai.grid.network import CompiledNetwork, compile_network, degrees, injection_matrix
from hai.grid.newton import PowerFlowSystem, newton_raphson
from hai.grid.options import compile_options
from hai.grid.powerflow import initial_voltages
from hai.shared import InputError


@dataclass
class DifferentiableResult:
    """Voltages in ``net.bus.index`` order (NaN for buses out of service), differentiable."""

    vm_pu: torch.Tensor
    va_degree: torch.Tensor
    iterations: int
    max_mismatch_mva: float


class _SparseSolve(torch.autograd.Function):
    """x = J⁻¹ b with a fixed sparse J (SuperLU); the backward solves with Jᵀ."""

    @staticmethod
    def forward(ctx: Any, b: torch.Tensor, lu: Any) -> torch.Tensor:
        ctx.lu = lu
        return torch.from_numpy(lu.solve(b.detach().cpu().numpy()))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.from_numpy(ctx.lu.solve(grad.detach().cpu().numpy(), trans="T")), None


def _vector(name: str, value: Any, n: int) -> torch.Tensor | None:
    if value is None:
        return None
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value, dtype=float))
    tensor = tensor.to(torch.float64)
    if tensor.shape != (n,):
        raise InputError(f"{name} must have shape ({n},), got {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise InputError(f"{name} contains NaN or infinite values")
    return tensor


def line_series_change(
    compiled: CompiledNetwork, r: torch.Tensor | None, x: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Change ``dy`` of the per-unit series admittance ``1/(r + jx)`` of the lines in service
    when their r/x (ohm per km, ``net.line`` order) take the given values.

    Returns the positions in ``net.line`` of the lines in service, their internal branch rows
    and ``dy`` (differentiable in ``r``/``x``). A line's ``Yff``/``Ytt`` change by ``+dy``, its
    ``Yft``/``Ytf`` by ``−dy``.
    """
    net = compiled.net
    line = net.line
    lookup = net._pd2ppc_lookups["branch"]
    if "line" not in lookup:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, torch.zeros(0, dtype=torch.complex128)
    r0 = torch.as_tensor(line.r_ohm_per_km.to_numpy(dtype=float))
    x0 = torch.as_tensor(line.x_ohm_per_km.to_numpy(dtype=float))
    r = r0 if r is None else r
    x = x0 if x is None else x
    vn = net.bus.vn_kv.loc[line.from_bus].to_numpy(dtype=float)
    factor = line.length_km.to_numpy(dtype=float) / line.parallel.to_numpy(dtype=float)
    factor = factor / (vn**2 / compiled.base_mva)
    start, _ = lookup["line"]
    branch_is = np.asarray(compiled.ppci["internal"]["branch_is"], dtype=bool)
    rows = start + np.arange(len(line))
    live = branch_is[rows]
    internal = (np.cumsum(branch_is) - 1)[rows[live]]
    fac = torch.as_tensor(factor[live])
    z_new = torch.complex(r[live] * fac, x[live] * fac)
    z_old = torch.complex(r0[live] * fac, x0[live] * fac)
    return np.nonzero(live)[0], internal, 1.0 / z_new - 1.0 / z_old


def _line_ybus_delta(
    compiled: CompiledNetwork,
    system: PowerFlowSystem,
    r: torch.Tensor | None,
    x: torch.Tensor | None,
) -> torch.Tensor | None:
    """Change of the Ybus values (nnz,) when line r/x (ohm per km) take the given values."""
    if r is None and x is None:
        return None
    _, internal, dy = line_series_change(compiled, r, x)
    if len(internal) == 0:
        return None
    from pandapower.pypower.idx_brch import F_BUS, T_BUS  # type: ignore[import-untyped]

    branch = compiled.ppci["branch"]
    f = np.real(branch[internal, F_BUS]).astype(np.int64)
    t = np.real(branch[internal, T_BUS]).astype(np.int64)
    n = system.n_bus
    linear = system.ybus_rows_np * n + system.ybus_cols_np
    pos = torch.from_numpy(np.searchsorted(linear, np.stack([f * n + f, f * n + t, t * n + f, t * n + t])))
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)[:, None]
    contrib = (signs * dy[None, :]).reshape(-1)
    delta = torch.zeros(len(linear), dtype=torch.complex128)
    return delta.index_add(0, pos.reshape(-1), contrib)


def solve_differentiable(
    net: Any,
    *,
    load_p_mw: Any = None,
    load_q_mvar: Any = None,
    sgen_p_mw: Any = None,
    line_r_ohm_per_km: Any = None,
    line_x_ohm_per_km: Any = None,
    tolerance_mva: float = 1e-10,
    max_iteration: int = 20,
) -> DifferentiableResult:
    """Solve one power flow (CPU) whose voltages carry gradients to the given parameters.

    Pass tensors with ``requires_grad=True``; parameters left ``None`` keep the net's values.
    Raises :class:`PowerFlowNotConverged` when Newton-Raphson does not converge.
    """
    compiled = compile_network(net, **compile_options(net, "solve_differentiable"))
    return solve_compiled(
        compiled,
        PowerFlowSystem(compiled),
        load_p_mw=load_p_mw,
        load_q_mvar=load_q_mvar,
        sgen_p_mw=sgen_p_mw,
        line_r_ohm_per_km=line_r_ohm_per_km,
        line_x_ohm_per_km=line_x_ohm_per_km,
        tolerance_mva=tolerance_mva,
        max_iteration=max_iteration,
    )


def solve_compiled(
    compiled: CompiledNetwork,
    system: PowerFlowSystem,
    *,
    load_p_mw: Any = None,
    load_q_mvar: Any = None,
    sgen_p_mw: Any = None,
    line_r_ohm_per_km: Any = None,
    line_x_ohm_per_km: Any = None,
    tolerance_mva: float = 1e-10,
    max_iteration: int = 20,
) -> DifferentiableResult:
    """:func:`solve_differentiable` on a network compiled once (for repeated solves)."""
    net = compiled.net
    p = _vector("load_p_mw", load_p_mw, len(net.load))
    q = _vector("load_q_mvar", load_q_mvar, len(net.load))
    g = _vector("sgen_p_mw", sgen_p_mw, len(net.sgen))
    r = _vector("line_r_ohm_per_km", line_r_ohm_per_km, len(net.line))
    x = _vector("line_x_ohm_per_km", line_x_ohm_per_km, len(net.line))
    sbus = compiled.sbus.clone()
    if p is not None or q is not None:
        c_load = injection_matrix(compiled, "load").to(torch.complex128)
        if p is not None:
            sbus = sbus - c_load @ (p - torch.as_tensor(net.load.p_mw.to_numpy(dtype=float))).to(
                torch.complex128
            )
        if q is not None:
            dq = (q - torch.as_tensor(net.load.q_mvar.to_numpy(dtype=float))).to(torch.complex128)
            sbus = sbus - 1j * (c_load @ dq)
    if g is not None:
        c_sgen = injection_matrix(compiled, "sgen").to(torch.complex128)
        sbus = sbus + c_sgen @ (g - torch.as_tensor(net.sgen.p_mw.to_numpy(dtype=float))).to(torch.complex128)
    delta = _line_ybus_delta(compiled, system, r, x)
    ybus = system.ybus_values if delta is None else system.ybus_values + delta
    with torch.no_grad():
        v0 = initial_voltages(compiled, "dc", sbus.detach()[None])
        solved = newton_raphson(
            system,
            v0,
            sbus.detach()[None],
            ybus_values=ybus.detach()[None],
            tolerance_mva=tolerance_mva,
            max_iteration=max_iteration,
        )
    if not bool(solved.converged[0]):
        raise PowerFlowNotConverged(
            f"power flow did not converge: ∞-norm mismatch {float(solved.max_mismatch_mva[0]):.3g} MVA"
        )
    v_star = solved.v[0].detach()
    va_star, vm_star = torch.angle(v_star), v_star.abs()
    with torch.no_grad():
        values = system.jacobian_values(v_star[None], ybus.detach()[None])[0].numpy()
    jac = sp.csc_matrix((values, (system.j_rows_np, system.j_cols_np)), shape=(system.n_var, system.n_var))
    from scipy.sparse.linalg import splu

    lu = splu(jac)
    residual = system.residual(v_star[None], sbus[None], ybus[None])[0]
    step = _SparseSolve.apply(residual, lu)
    va = va_star.clone()
    vm = vm_star.clone()
    va = va.index_put((system.pvpq,), va_star[system.pvpq] - step[: system.n_a])
    vm = vm.index_put((system.pq,), vm_star[system.pq] - step[system.n_a :])
    lookup = compiled.bus_lookup
    live = lookup >= 0
    nan = torch.full((len(lookup),), float("nan"), dtype=torch.float64)
    vm_out = nan.index_put((torch.nonzero(live).squeeze(1),), vm[lookup[live]])
    va_out = nan.index_put((torch.nonzero(live).squeeze(1),), degrees(va[lookup[live]]))
    return DifferentiableResult(
        vm_pu=vm_out,
        va_degree=va_out,
        iterations=int(solved.iterations[0]),
        max_mismatch_mva=float(solved.max_mismatch_mva[0]),
    )

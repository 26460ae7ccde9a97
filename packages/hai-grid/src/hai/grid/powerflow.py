"""``runpp``: one AC power flow of a pandapower net, results in ``net.res_*``.

The bus-branch model is pandapower's (:mod:`hai.grid.network`), the solvers are hai's
(:mod:`hai.grid.newton`, :mod:`hai.grid.dpf`), and the result tables are filled by pandapower's
own extraction from the solved voltages (:mod:`hai.grid.results`), so every column means what it
means after ``pandapower.runpp``.

>>> from hai.grid.cases import load_case
>>> net = load_case("case30")
>>> info = runpp(net)
>>> info.converged, round(float(net.res_bus.vm_pu.min()), 4)
(True, 0.9606)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.grid.dpf import dpf_solve
from hai.grid.errors import PowerFlowNotConverged
from hai.grid.network import CompiledNetwork, compile_network, dc_angles
from hai.grid.newton import NewtonResult, PowerFlowSystem, newton_raphson
from hai.grid.results import write_results
from hai.shared import InputError, resolve_device

METHODS = ("auto", "nr", "dpf", "dpf+nr")
INITS = ("auto", "dc", "flat", "results")
#: Default iteration limits: Newton steps, first-order optimiser steps.
NR_MAX_ITERATION = 20
DPF_MAX_ITERATION = 1000


@dataclass
class PowerFlowInfo:
    """What ``runpp`` did: the method that produced the result, its iterations and mismatch."""

    converged: bool
    method: str
    iterations: int
    max_mismatch_mva: float
    device: str


def _check_options(method: str, init: str, tolerance_mva: float, max_iteration: int | None) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if init not in INITS:
        raise InputError(f"unknown init {init!r}", hint=f"use one of {', '.join(INITS)}")
    if not (isinstance(tolerance_mva, int | float) and np.isfinite(tolerance_mva) and tolerance_mva > 0):
        raise InputError(f"tolerance_mva must be a positive number, got {tolerance_mva!r}")
    if max_iteration is not None and (not isinstance(max_iteration, int) or max_iteration < 1):
        raise InputError(f"max_iteration must be a positive integer, got {max_iteration!r}")


def previous_results(net: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``net.res_bus`` (vm_pu, va_degree) in ``net.bus.index`` order, or None when absent.

    Read it before :func:`compile_network`, which resets the result tables as pandapower does.
    """
    res = net.res_bus
    if len(res) == 0 or not {"vm_pu", "va_degree"} <= set(res.columns):
        return None
    vm = res.vm_pu.reindex(net.bus.index).to_numpy(dtype=float)
    va = res.va_degree.reindex(net.bus.index).to_numpy(dtype=float)
    return vm, va


def initial_voltages(
    compiled: CompiledNetwork,
    init: str,
    sbus: torch.Tensor | None = None,
    previous: tuple[np.ndarray, np.ndarray] | None = None,
) -> torch.Tensor:
    """Start voltages (batch, n_bus) in internal order: "flat", "dc" ("auto") or "results".

    "results" starts from ``previous`` (see :func:`previous_results`) where it is finite, with
    the voltage setpoints of slack and PV buses; without previous results it starts flat.
    """
    s = compiled.sbus[None] if sbus is None else sbus
    batch = s.shape[0]
    v0 = compiled.v0.cpu().numpy()
    if init == "flat":
        return torch.from_numpy(np.tile(v0, (batch, 1)))
    if init == "results":
        v = v0.copy()
        if previous is not None:
            lookup = compiled.bus_lookup.cpu().numpy()
            vm, va = previous[0], np.deg2rad(previous[1])
            ok = (lookup >= 0) & np.isfinite(vm) & np.isfinite(va)
            v[lookup[ok]] = vm[ok] * np.exp(1j * va[ok])
            fixed = compiled.bus_type.cpu().numpy() != 1
            v[fixed] = np.abs(v0[fixed]) * np.exp(1j * np.angle(v[fixed]))
            ref = compiled.ref.cpu().numpy()
            v[ref] = v0[ref]
        return torch.from_numpy(np.tile(v, (batch, 1)))
    angles = dc_angles(compiled, s.cpu().numpy())
    return torch.from_numpy(np.abs(v0)[None, :] * np.exp(1j * angles))


def solve(
    system: PowerFlowSystem,
    v0: torch.Tensor,
    sbus: torch.Tensor,
    *,
    method: str = "auto",
    tolerance_mva: float = 1e-8,
    max_iteration: int | None = None,
    ybus_values: torch.Tensor | None = None,
    frozen: torch.Tensor | None = None,
    screen: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[NewtonResult, str]:
    """Run ``method`` on a batch and return the result with the name of what produced it.

    "auto" runs Newton-Raphson (the fastest here at tight tolerances); a single scenario it
    does not converge is restarted with the first-order solver and finished by Newton
    ("dpf+nr"). Batches are not retried: in N-1 the outages Newton cannot solve are, as a rule,
    those without a solution (pandapower does not converge on them either), and 1000 optimiser
    steps on them cost more than the whole batch.
    """
    v0 = v0.to(system.device)
    sbus = sbus.to(system.device)
    kw: dict[str, Any] = {"ybus_values": ybus_values, "frozen": frozen, "tolerance_mva": tolerance_mva}
    nr_iter = max_iteration or NR_MAX_ITERATION
    if method == "nr":
        return newton_raphson(system, v0, sbus, max_iteration=nr_iter, screen=screen, **kw), "nr"
    if method == "dpf":
        return dpf_solve(system, v0, sbus, max_iteration=max_iteration or DPF_MAX_ITERATION, **kw), "dpf"
    if method == "dpf+nr":
        first = dpf_solve(system, v0, sbus, max_iteration=DPF_MAX_ITERATION, **kw)
        second = newton_raphson(system, first.v, sbus, max_iteration=nr_iter, **kw)
        second.iterations = second.iterations + first.iterations
        return second, "dpf+nr"
    result = newton_raphson(system, v0, sbus, max_iteration=nr_iter, screen=screen, **kw)
    if bool(result.converged.all()) or v0.shape[0] > 1:
        return result, "nr"
    retry = ~result.converged
    idx = torch.nonzero(retry.to(system.device)).squeeze(1)
    sub_kw = dict(kw)
    if ybus_values is not None and ybus_values.dim() == 2:
        sub_kw["ybus_values"] = ybus_values[idx]
    if frozen is not None:
        sub_kw["frozen"] = frozen[idx]
    s = sbus if sbus.dim() == 1 else sbus[idx]
    second, _ = solve(system, v0[idx], s, method="dpf+nr", max_iteration=max_iteration, **sub_kw)
    better = second.converged
    result.v[idx] = torch.where(better[:, None], second.v, result.v[idx])
    result.converged[idx] = better
    result.iterations[idx] = result.iterations[idx] + second.iterations
    result.max_mismatch_mva[idx] = torch.where(better, second.max_mismatch_mva, result.max_mismatch_mva[idx])
    return result, "nr" if bool(result.converged.all()) and not bool(better.any()) else "auto (nr, dpf+nr)"


def runpp(
    net: Any,
    *,
    method: str = "auto",
    tolerance_mva: float = 1e-8,
    max_iteration: int | None = None,
    init: str = "auto",
    device: str | torch.device = "auto",
) -> PowerFlowInfo:
    """Run an AC power flow on ``net`` and fill ``net.res_*`` like ``pandapower.runpp``.

    ``method``: "nr" (Newton-Raphson), "dpf" (first-order mismatch minimisation),
    "dpf+nr" (DPF finished by NR) or "auto" (NR, with DPF+NR for a start NR cannot converge
    from). ``init``: "auto"/"dc" (pandapower's DC power flow angles), "flat" or "results"
    (``net.res_bus``). ``max_iteration`` defaults to 20 Newton or 1000 first-order steps.
    Raises :class:`PowerFlowNotConverged` (results are then not written) when the ∞-norm
    mismatch stays above ``tolerance_mva``.

    >>> from hai.grid.cases import load_case
    >>> net = load_case("case9")
    >>> runpp(net, method="nr").iterations
    4
    """
    _check_options(method, init, tolerance_mva, max_iteration)
    dev = resolve_device(device)
    previous = previous_results(net) if init == "results" else None
    compiled = compile_network(net)
    system = PowerFlowSystem(compiled, device=dev)
    v0 = initial_voltages(compiled, init, previous=previous)
    result, used = solve(
        system,
        v0,
        compiled.sbus[None],
        method=method,
        tolerance_mva=tolerance_mva,
        max_iteration=max_iteration,
    )
    mismatch = float(result.max_mismatch_mva[0])
    iterations = int(result.iterations[0])
    if not bool(result.converged[0]):
        net["converged"] = False
        raise PowerFlowNotConverged(
            f"power flow ({used}) did not converge: ∞-norm mismatch {mismatch:.3g} MVA after "
            f"{iterations} iterations (tolerance {tolerance_mva:g} MVA)",
            hint="try method='dpf+nr', init='flat', or a larger max_iteration",
        )
    write_results(compiled, result.v[0].cpu().numpy(), iterations=iterations)
    return PowerFlowInfo(
        converged=True, method=used, iterations=iterations, max_mismatch_mva=mismatch, device=str(dev)
    )

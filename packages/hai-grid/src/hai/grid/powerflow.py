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
from hai.grid.options import build_options, resolve_options
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

    "auto" is Newton-Raphson ("nr"). The first-order fallback ("dpf+nr": 1000 optimiser steps,
    then Newton) runs only when asked for by name: as automatic retry of a Newton failure it
    made a non-converging case cost 1000+ iterations (mv_oberrhein with loads ×10: 0.56 s
    against pandapower's 0.04 s) and almost never turned a failure into a solution.
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
    return newton_raphson(system, v0, sbus, max_iteration=nr_iter, screen=screen, **kw), "nr"


def _runpp_with_q_limits(
    net: Any,
    compiled: CompiledNetwork,
    v0: torch.Tensor,
    dev: torch.device,
    method: str,
    opts: dict[str, Any],
) -> PowerFlowInfo:
    from hai.grid.qlims import solve_with_q_limits

    if method not in ("nr", "auto"):
        raise InputError(f"enforce_q_lims=True needs method 'nr', got {method!r}")
    tolerance = opts["tolerance_mva"]
    converged, iterations, mismatch, limited = solve_with_q_limits(
        compiled,
        v0[0].cpu().numpy(),
        device=dev,
        tolerance_mva=tolerance * compiled.base_mva,
        max_iteration=opts["max_iteration"],
        distributed_slack=bool(opts["distributed_slack"]),
    )
    if not converged:
        net["converged"] = False
        raise PowerFlowNotConverged(
            f"power flow (nr, enforce_q_lims) did not converge: ∞-norm mismatch {mismatch:.3g} MVA "
            f"({mismatch / compiled.base_mva:.3g} pu) after {iterations} iterations "
            f"(tolerance_mva {tolerance:g}, per unit as in pandapower)",
            hint="check the loading of the net; try init='flat' or a larger max_iteration",
        )
    return PowerFlowInfo(
        converged=True,
        method="nr (enforce_q_lims)" if limited else "nr",
        iterations=iterations,
        max_mismatch_mva=mismatch,
        device=str(dev),
    )


def runpp(
    net: Any, *, method: str = "nr", device: str | torch.device = "auto", **options: Any
) -> PowerFlowInfo:
    """Run an AC power flow on ``net`` and fill ``net.res_*`` like ``pandapower.runpp``.

    ``options`` are ``pandapower.runpp``'s keywords, with pandapower's meanings and defaults,
    overlaid on ``net.user_pf_options``; each is honoured or refused with an ``InputError``
    naming it (:data:`hai.grid.options.OPTIONS`). In particular ``tolerance_mva`` (default
    1e-8) bounds the ∞-norm of the per-unit mismatch, as in pandapower (so 1e-8 is 1e-6 MVA on
    a 100 MVA base); ``max_iteration`` "auto" is 10 Newton steps; ``init`` is "auto"/"dc"
    (pandapower's DC power flow angles), "flat" or "results" (``net.res_bus``).

    hai's own keywords: ``method`` "nr" (Newton-Raphson, the default), "dpf" (first-order
    mismatch minimisation, 1000 steps unless ``max_iteration`` is given), "dpf+nr" (DPF
    finished by NR: the slow fallback, only when asked for) or "auto" (the same as "nr");
    ``device``. Raises :class:`PowerFlowNotConverged` (results are then not written, and the
    mismatch reached is in the message) when the tolerance is not met; Newton stops early when
    its mismatch diverges.

    >>> from hai.grid.cases import load_case
    >>> net = load_case("case9")
    >>> runpp(net, method="nr").iterations  # as many as pandapower.runpp takes
    3
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    user = net.get("user_pf_options") if hasattr(net, "get") else None
    opts = resolve_options(options, user if isinstance(user, dict) else None)
    init = opts["init"]
    tolerance_mva = opts["tolerance_mva"]
    dev = resolve_device(device)
    previous = previous_results(net) if init == "results" else None
    compiled = compile_network(
        net, voltage_depend_loads=opts["voltage_depend_loads"], pp_options=build_options(opts)
    )
    slack0 = None
    if opts["distributed_slack"]:
        from pandapower.pypower.idx_bus import PD, SL_FAC  # type: ignore[import-untyped]
        from pandapower.pypower.idx_gen import PG  # type: ignore[import-untyped]

        if method not in ("nr", "auto"):
            raise InputError(f"distributed_slack=True needs method 'nr', got {method!r}")
        bus, gen = compiled.ppci["bus"], compiled.ppci["gen"]
        system = PowerFlowSystem(compiled, device=dev, slack_weights=np.real(bus[:, SL_FAC]).astype(float))
        # pandapower's start for the slack power: generation minus load, per unit
        start = (gen[:, PG].sum() - bus[:, PD].sum()) / compiled.base_mva
        slack0 = torch.tensor([start], dtype=torch.float64)
    else:
        system = PowerFlowSystem(compiled, device=dev)
    v0 = initial_voltages(compiled, init, previous=previous)
    asked = options.get("max_iteration", (user or {}).get("max_iteration"))
    explicit_iterations = asked not in (None, "auto")
    if opts["enforce_q_lims"]:
        return _runpp_with_q_limits(net, compiled, v0, dev, method, opts)
    if slack0 is not None:
        result = newton_raphson(
            system,
            v0.to(dev),
            compiled.sbus[None].to(dev),
            tolerance_mva=tolerance_mva * compiled.base_mva,
            max_iteration=opts["max_iteration"],
            slack0=slack0,
        )
        used = "nr (distributed_slack)"
    else:
        result, used = solve(
            system,
            v0,
            compiled.sbus[None],
            method="nr" if method == "auto" else method,
            # pandapower compares the per-unit mismatch with tolerance_mva; hai's solvers take MVA
            tolerance_mva=tolerance_mva * compiled.base_mva,
            max_iteration=(
                opts["max_iteration"] if (method in ("nr", "auto") or explicit_iterations) else None
            ),
        )
    mismatch = float(result.max_mismatch_mva[0])
    iterations = int(result.iterations[0])
    if not bool(result.converged[0]):
        net["converged"] = False
        raise PowerFlowNotConverged(
            f"power flow ({used}) did not converge: ∞-norm mismatch {mismatch:.3g} MVA "
            f"({mismatch / compiled.base_mva:.3g} pu) after {iterations} iterations "
            f"(tolerance_mva {tolerance_mva:g}, per unit as in pandapower)",
            hint="check the loading of the net; try init='flat', a larger max_iteration, or method='dpf+nr'",
        )
    write_results(compiled, result.v[0].cpu().numpy(), iterations=iterations)
    return PowerFlowInfo(
        converged=True, method=used, iterations=iterations, max_mismatch_mva=mismatch, device=str(dev)
    )

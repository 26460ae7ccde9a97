"""``run_timeseries``: steps solved in order, each warm-started from the previous solution.

A step starts from the voltages of the step before when that step converged; the first step,
and any step after a failure, starts cold (DC angles), so one bad step cannot poison the rest
(the failure mode of carrying ``init="results"`` across pandapower runs). For many independent
steps at once, :func:`hai.grid.solve_batch` solves them as one batch instead.

On the CPU, for systems of at least :data:`~hai.grid.newton.CHORD_MIN_UNKNOWNS` unknowns, the
Jacobian's sparse LU factorisation (KLU where installed, else SuperLU) is reused across
iterations and steps (:func:`hai.grid.newton.chord_newton`): a step is iterated with the last
factorisation (and good Broyden's secant corrections within the step) while each iteration
shrinks the exact mismatch by
:data:`~hai.grid.newton.CHORD_CONTRACTION`, and refactorised at the current point when it does
not (at most ``max_iteration`` factorisations per step, Newton's budget, so a step without a
solution fails at about Newton's cost). From the third step on, the start is whichever has the
smaller mismatch: the previous solution or the extrapolation of the last ones (linear through
two, quadratic through three, in magnitude and angle). Convergence is judged on the exact
mismatch as before, so results are as exact. ``iterations`` then counts linear solves.

>>> import numpy as np
>>> from hai.grid.cases import load_case
>>> net = load_case("case14")
>>> profile = np.linspace(0.9, 1.1, 5)[:, None] * net.load.p_mw.to_numpy()[None, :]
>>> series = run_timeseries(net, profile)
>>> tuple(series.vm_pu.shape), bool(series.converged.all()), series.iterations.tolist()[1:] < [4] * 4
((5, 14), True, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.grid.batch import BatchResult, _as_matrix, scenario_sbus, to_bus_order
from hai.grid.network import compile_network, degrees
from hai.grid.newton import (
    CHORD_MIN_UNKNOWNS,
    ChordSolution,
    JacobianReuse,
    PowerFlowSystem,
    chord_solve,
    distributed_slack_system,
    newton_raphson,
)
from hai.grid.options import compile_options
from hai.grid.powerflow import NR_MAX_ITERATION, _check_options, initial_voltages
from hai.shared import InputError, progress, resolve_device


def run_timeseries(
    net: Any,
    load_p_mw: Any,
    load_q_mvar: Any = None,
    sgen_p_mw: Any = None,
    *,
    tolerance_mva: float = 1e-8,
    max_iteration: int | None = None,
    device: str | torch.device = "auto",
    progress_bar: bool = False,
) -> BatchResult:
    """Solve ``steps`` operating points in order with Newton-Raphson and warm starts.

    ``load_p_mw``, ``load_q_mvar``: (steps, len(net.load)); ``sgen_p_mw``: (steps, len(net.sgen)),
    replacing the net's values step by step (``scaling`` applies). Returns a :class:`BatchResult`
    over steps; steps that did not converge are flagged and NaN. ``progress_bar`` draws a bar
    over steps (on a terminal). ``iterations`` counts linear solves per step (on the CPU most
    of them reuse a factorisation, see the module docstring).
    """
    _check_options("nr", "auto", tolerance_mva, max_iteration)
    dev = resolve_device(device)
    if load_p_mw is None:
        raise InputError("run_timeseries needs load_p_mw of shape (steps, len(net.load))")
    compiled = compile_network(net, **compile_options(net, "run_timeseries"))
    p = _as_matrix("load_p_mw", load_p_mw, len(net.load))
    q = _as_matrix("load_q_mvar", load_q_mvar, len(net.load))
    g = _as_matrix("sgen_p_mw", sgen_p_mw, len(net.sgen))
    steps = len(p) if p is not None else 0
    for name, array in (("load_q_mvar", q), ("sgen_p_mw", g)):
        if array is not None and len(array) != steps:
            raise InputError(f"{name} has {len(array)} steps, load_p_mw has {steps}")
    if steps == 0:
        raise InputError("load_p_mw has no steps")
    sbus = torch.from_numpy(np.ascontiguousarray(scenario_sbus(compiled, steps, p, q, g)))
    distributed = bool(compiled.net["_options"].get("distributed_slack"))
    # distributed slack (net.user_pf_options): the slack power is one more unknown, started
    # from the previous step's, or from Σ Pg − Σ Pd on a cold start
    system = distributed_slack_system(compiled, dev) if distributed else PowerFlowSystem(compiled, device=dev)
    # on the CPU the Jacobian's factorisation is kept across iterations and steps (chord steps
    # while they contract the exact mismatch, refactorised when they do not)
    chord = system.sparse and system.n_var >= CHORD_MIN_UNKNOWNS
    out = _Steps.empty(steps, compiled.n_bus)
    max_it = max_iteration or NR_MAX_ITERATION
    indices = progress(range(steps), desc="time series", unit="step") if progress_bar else range(steps)
    solve_steps = _chord_steps if chord else _newton_steps
    solve_steps(system, compiled, sbus, tolerance_mva, max_it, indices, out)
    v_all, converged, iterations, mismatch = out.v, out.converged, out.iterations, out.mismatch
    vm = to_bus_order(compiled, v_all.abs())
    va = to_bus_order(compiled, degrees(torch.angle(v_all)))
    vm[~converged] = float("nan")
    va[~converged] = float("nan")
    return BatchResult(
        vm_pu=vm,
        va_degree=va,
        converged=converged,
        iterations=iterations,
        max_mismatch_mva=mismatch,
        islanded=torch.zeros(steps, dtype=torch.bool),
        bus_index=net.bus.index.to_numpy(),
        method="nr (warm start, distributed_slack)" if distributed else "nr (warm start)",
    )


@dataclass
class _Steps:
    """Per-step outputs that the step loops fill in place (NaN voltages where not converged)."""

    v: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    mismatch: torch.Tensor

    @classmethod
    def empty(cls, steps: int, n_bus: int) -> _Steps:
        return cls(
            v=torch.full((steps, n_bus), complex("nan"), dtype=torch.complex128),
            converged=torch.zeros(steps, dtype=torch.bool),
            iterations=torch.zeros(steps, dtype=torch.int64),
            mismatch=torch.full((steps,), float("nan"), dtype=torch.float64),
        )


def _chord_steps(
    system: PowerFlowSystem,
    compiled: Any,
    sbus: torch.Tensor,
    tolerance_mva: float,
    max_iteration: int,
    indices: Iterable[int],
    out: _Steps,
) -> None:
    """The steps on the CPU with one kept factorisation (:func:`~hai.grid.newton.chord_solve`),
    in numpy from step to step (a tensor round trip per step cost about 0.15 ms here)."""
    reuse = JacobianReuse(system)
    tol = tolerance_mva / system.base_mva
    s_all = sbus.numpy()
    out_v, out_ok = out.v.numpy(), out.converged.numpy()
    out_it, out_mis = out.iterations.numpy(), out.mismatch.numpy()
    previous: ChordSolution | None = None
    before: ChordSolution | None = None  # the solution before ``previous``
    third: ChordSolution | None = None  # and the one before that
    for k in indices:
        if previous is None:
            start = initial_voltages(compiled, "dc", sbus[k : k + 1]).cpu().numpy()[0]
            slack0 = float(s_all[k].real.sum()) if system.distributed else None
        else:
            start, slack0 = previous.v, previous.slack
        predictor = _extrapolation(previous, before, third)
        result = chord_solve(
            system,
            start,
            s_all[k],
            reuse,
            tol=tol,
            max_iteration=max_iteration,
            slack0=slack0,
            predictor=predictor,
        )
        out_ok[k] = result.converged
        out_it[k] = result.solves
        out_mis[k] = result.norm * system.base_mva
        if result.converged:
            out_v[k] = result.v
            third, before, previous = before, previous, result
        else:
            third = before = previous = None  # the next step starts cold


def _extrapolation(
    previous: ChordSolution | None, before: ChordSolution | None, third: ChordSolution | None
) -> np.ndarray | None:
    """The next step's voltages extrapolated from the last converged ones, in polar form.

    Quadratic through three solutions (3·v₁ − 3·v₂ + v₃ in magnitude and unwrapped angle),
    linear through two, None with fewer. On the 96-step daily profiles of the benchmark the
    quadratic start halved the refactorisations against the linear one (case1354pegase 9 -> 5,
    case9241pegase 68 -> 35): the chord iteration then stays within its contraction test.
    """
    if previous is None or before is None:
        return None
    if third is None:
        vm, va = 2 * previous.vm - before.vm, 2 * previous.va - before.va
    else:
        vm = 3 * (previous.vm - before.vm) + third.vm
        va = 3 * (previous.va - before.va) + third.va
    return torch.polar(torch.from_numpy(vm), torch.from_numpy(va)).numpy()


def _newton_steps(
    system: PowerFlowSystem,
    compiled: Any,
    sbus: torch.Tensor,
    tolerance_mva: float,
    max_iteration: int,
    indices: Iterable[int],
    out: _Steps,
) -> None:
    """The steps with plain Newton (GPU, dense or small systems), each from the previous solution."""
    previous: torch.Tensor | None = None
    slack: torch.Tensor | None = None
    for k in indices:
        start = previous if previous is not None else initial_voltages(compiled, "dc", sbus[k : k + 1])
        slack0 = None
        if system.distributed:
            slack0 = (
                slack if (previous is not None and slack is not None) else sbus[k : k + 1].real.sum(dim=1)
            )
        result = newton_raphson(
            system,
            start,
            sbus[k : k + 1],
            tolerance_mva=tolerance_mva,
            max_iteration=max_iteration,
            slack0=slack0,
        )
        slack = result.slack
        ok = bool(result.converged[0])
        out.converged[k] = ok
        out.iterations[k] = int(result.iterations[0])
        out.mismatch[k] = float(result.max_mismatch_mva[0])
        if ok:
            out.v[k] = result.v[0].cpu()
            previous = result.v.detach()
        else:
            previous = None  # the next step starts cold

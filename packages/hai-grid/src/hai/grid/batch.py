"""``solve_batch``: many power flows of one net in one tensor program.

Scenarios differ in their injections (loads, static generators) and in their topology (branch
outages). All share Ybus's sparsity pattern: an outage subtracts the branch's four admittance
entries (pandapower's own ``Yf``/``Yt`` rows) from that scenario's Ybus values, so one batched
Newton-Raphson (:mod:`hai.grid.newton`) solves them together. Buses that an outage cuts off from
every slack are NaN, as pandapower's connectivity check makes them; the rest of the grid is
still solved. Scenarios that do not converge are flagged and their voltages are NaN: nothing is
returned from a diverged solve. Outage batches of one operating point on the CPU take the fast
path of :mod:`hai.grid.outages` (base-case factorisation, low-rank updates, warm start), with
full Newton-Raphson for the outages it leaves unconverged.

>>> import numpy as np
>>> from hai.grid.cases import load_case
>>> net = load_case("case14")
>>> scale = np.array([[0.9], [1.0], [1.1]])
>>> result = solve_batch(net, load_p_mw=scale * net.load.p_mw.to_numpy()[None, :])
>>> tuple(result.vm_pu.shape), bool(result.converged.all())
((3, 14), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from hai.grid.bridges import BridgeCuts, bridges
from hai.grid.network import CompiledNetwork, compile_network, degrees, injection_matrix_sparse
from hai.grid.newton import NewtonResult, PowerFlowSystem, distributed_slack_system, newton_raphson
from hai.grid.options import compile_options
from hai.grid.outages import Screen, solve_outages
from hai.grid.powerflow import NR_MAX_ITERATION, _check_options, initial_voltages, previous_results, solve
from hai.shared import InputError, resolve_device

#: Branch element tables that outages may name.
OUTAGE_ELEMENTS = ("line", "trafo", "trafo3w", "impedance")

Outage = tuple[str, int]

#: Iterations of the fixed-Jacobian outage solver before an outage is handed to full Newton.
OUTAGE_MAX_ITERATION = 30
#: Newton iterations for the outages the fixed-Jacobian solver leaves unconverged, unless the
#: caller gives ``max_iteration``: pandapower's ``runpp`` default for Newton-Raphson ("auto" = 10).
OUTAGE_NR_MAX_ITERATION = 10


@dataclass
class BatchResult:
    """Per-scenario voltages in ``net.bus.index`` order and the solver's diagnostics.

    ``vm_pu``/``va_degree``: (batch, n_bus) float64 tensors, NaN for buses that are out of
    service or cut off from every slack, and for whole scenarios that did not converge.
    ``islanded``: the scenario's outages cut at least one bus off. ``screened``: scenarios a
    screening test stopped early (see :func:`hai.grid.run_contingency`); None without screening.
    """

    vm_pu: torch.Tensor
    va_degree: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    max_mismatch_mva: torch.Tensor
    islanded: torch.Tensor
    bus_index: np.ndarray
    method: str
    screened: torch.Tensor | None = None
    #: complex voltages (batch, n_internal) in the solver's bus order, NaN where ``vm_pu`` is; it
    #: includes pandapower's auxiliary buses (the open end of a line behind an open switch),
    #: which net.bus order has no place for. None where a path does not keep them.
    v_internal: torch.Tensor | None = None


def _as_matrix(name: str, values: Any, n_columns: int) -> np.ndarray | None:
    if values is None:
        return None
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    array = np.asarray(array, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise InputError(
            f"{name} must have shape (batch, {n_columns}) (one column per element), got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return array


def _normalise_outages(outages: Sequence[Any] | None) -> list[list[Outage]] | None:
    if outages is None:
        return None
    out: list[list[Outage]] = []
    for item in outages:
        if item is None:
            out.append([])
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append([(item[0], int(item[1]))])
        else:
            out.append([(str(e), int(i)) for e, i in item])
    for scenario in out:
        for element, _ in scenario:
            if element not in OUTAGE_ELEMENTS:
                raise InputError(
                    f"outages name element type {element!r}", hint=f"use one of {', '.join(OUTAGE_ELEMENTS)}"
                )
    return out


def _internal_branch_rows(compiled: CompiledNetwork) -> tuple[np.ndarray, np.ndarray]:
    """ppc branch rows in service (bool) and their internal (ppci) row numbers."""
    branch_is = np.asarray(compiled.ppci["internal"]["branch_is"], dtype=bool)
    return branch_is, np.cumsum(branch_is) - 1


def _branch_rows(
    compiled: CompiledNetwork,
    element: str,
    index: int,
    internal_rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Internal (ppci) branch rows of one pandapower branch element (empty if out of service).

    ``internal_rows``: :func:`_internal_branch_rows`, computed once by a caller with many outages.
    """
    net = compiled.net
    table = net[element]
    if index not in table.index:
        raise InputError(f"outage of {element} {index}: net.{element} has no such index")
    lookup = net._pd2ppc_lookups["branch"]
    if element not in lookup:
        return np.zeros(0, dtype=np.int64)
    start, _end = lookup[element]
    pos = table.index.get_loc(index)
    n = len(table)
    rows = start + pos + np.arange(3 if element == "trafo3w" else 1) * n
    branch_is, internal = internal_rows if internal_rows is not None else _internal_branch_rows(compiled)
    return np.asarray(internal[rows][branch_is[rows]], dtype=np.int64)


def _outage_topology(
    compiled: CompiledNetwork, system: PowerFlowSystem, outages: list[list[Outage]]
) -> tuple[torch.Tensor, np.ndarray]:
    """Ybus values (batch, nnz) with the outaged branches removed, and dead buses (batch, n_bus)."""
    from pandapower.pypower.idx_brch import F_BUS, T_BUS  # type: ignore[import-untyped]

    branch = compiled.ppci["branch"]
    f = np.real(branch[:, F_BUS]).astype(np.int64)
    t = np.real(branch[:, T_BUS]).astype(np.int64)
    n = system.n_bus
    k_all = np.arange(len(f))
    linear = system.ybus_rows_np * n + system.ybus_cols_np
    yf = compiled.yf_scipy.tocsr()
    yt = compiled.yt_scipy.tocsr()
    # each branch's four entries of Ybus: (f,f) Yff, (f,t) Yft, (t,f) Ytf, (t,t) Ytt
    entry_rows = np.stack([f, f, t, t], axis=1)
    entry_cols = np.stack([f, t, f, t], axis=1)
    entry_vals = np.stack(
        [
            np.asarray(yf[k_all, f]).ravel(),
            np.asarray(yf[k_all, t]).ravel(),
            np.asarray(yt[k_all, f]).ravel(),
            np.asarray(yt[k_all, t]).ravel(),
        ],
        axis=1,
    )
    entry_vals[f == t, 1:3] = 0  # a branch from a bus to itself: Yf/Yt hold the sums already
    entry_pos = np.searchsorted(linear, entry_rows * n + entry_cols)
    base = compiled.ybus_scipy.tocoo().data.astype(np.complex128)
    ref = compiled.ref.cpu().numpy()
    values = np.tile(base, (len(outages), 1))
    dead = np.zeros((len(outages), n), dtype=bool)
    bridge = bridges(f, t, n)
    cut_off = BridgeCuts(f, t, n, ref, bridge)
    internal_rows = _internal_branch_rows(compiled)
    for b, scenario in enumerate(outages):
        removed_rows = [_branch_rows(compiled, element, index, internal_rows) for element, index in scenario]
        if not removed_rows:
            continue
        removed = np.unique(np.concatenate(removed_rows))
        if removed.size == 0:
            continue
        np.subtract.at(values[b], entry_pos[removed].ravel(), entry_vals[removed].ravel())
        if removed.size == 1 and not bridge[removed[0]]:
            continue  # the rest of the grid stays connected
        if removed.size == 1:
            dead[b] = cut_off(int(removed[0]))
            continue
        keep = np.ones(len(f), dtype=bool)
        keep[removed] = False
        graph = sp.coo_matrix((np.ones(int(keep.sum())), (f[keep], t[keep])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        dead[b] = ~np.isin(labels, labels[ref])
    return torch.from_numpy(values), dead


def scenario_sbus(
    compiled: CompiledNetwork,
    batch: int,
    load_p_mw: np.ndarray | None,
    load_q_mvar: np.ndarray | None,
    sgen_p_mw: np.ndarray | None,
) -> np.ndarray:
    """Scheduled injections (batch, n_bus) per unit with the given element values (validated)."""
    net = compiled.net
    sbus = compiled.sbus.numpy()[None, :].repeat(batch, axis=0)
    if load_p_mw is not None or load_q_mvar is not None:
        c_load = injection_matrix_sparse(compiled, "load")
        if load_p_mw is not None:
            sbus = sbus - (c_load @ (load_p_mw - net.load.p_mw.to_numpy(dtype=float)[None, :]).T).T
        if load_q_mvar is not None:
            sbus = sbus - 1j * (c_load @ (load_q_mvar - net.load.q_mvar.to_numpy(dtype=float)[None, :]).T).T
    if sgen_p_mw is not None:
        c_sgen = injection_matrix_sparse(compiled, "sgen")
        sbus = sbus + (c_sgen @ (sgen_p_mw - net.sgen.p_mw.to_numpy(dtype=float)[None, :]).T).T
    return np.asarray(sbus)


def to_bus_order(compiled: CompiledNetwork, values: torch.Tensor) -> torch.Tensor:
    """(batch, n_internal) → (batch, len(net.bus)) in ``net.bus.index`` order, NaN where not internal."""
    lookup = compiled.bus_lookup.cpu()
    out = torch.full((values.shape[0], len(lookup)), float("nan"), dtype=values.dtype)
    live = lookup >= 0
    out[:, live] = values[:, lookup[live]]
    return out


def solve_batch(
    net: Any,
    *,
    load_p_mw: Any = None,
    load_q_mvar: Any = None,
    sgen_p_mw: Any = None,
    outages: Sequence[Any] | None = None,
    method: str = "auto",
    tolerance_mva: float = 1e-8,
    max_iteration: int | None = None,
    init: str = "auto",
    device: str | torch.device = "auto",
) -> BatchResult:
    """Solve a batch of scenarios of ``net`` (which is not modified, apart from pandapower's lookups).

    ``load_p_mw``, ``load_q_mvar``: (batch, len(net.load)) in ``net.load`` order, replacing
    ``p_mw``/``q_mvar`` (``scaling`` and ``in_service`` still apply, as in pandapower);
    ``sgen_p_mw``: (batch, len(net.sgen)). ``outages``: one entry per scenario, each ``None``,
    one ``("line", index)`` tuple or a list of them (element types: line, trafo, trafo3w,
    impedance). A single row or a single outage list of length one is broadcast. ``method``
    "auto" is Newton-Raphson for batches (no first-order retry of failed scenarios); outage
    batches at one operating point on the CPU reuse the base-case factorisation with low-rank
    updates per outage (``BatchResult.method`` says which ran).

    >>> from hai.grid.cases import load_case
    >>> net = load_case("case9")
    >>> result = solve_batch(net, outages=[None, ("line", 0)])
    >>> bool(result.islanded[1]), bool(result.vm_pu[1].isnan().any())
    (True, True)
    """
    return batch_with_screening(
        net,
        load_p_mw=load_p_mw,
        load_q_mvar=load_q_mvar,
        sgen_p_mw=sgen_p_mw,
        outages=outages,
        method=method,
        tolerance_mva=tolerance_mva,
        max_iteration=max_iteration,
        init=init,
        device=device,
    )


def batch_with_screening(
    net: Any,
    *,
    load_p_mw: Any = None,
    load_q_mvar: Any = None,
    sgen_p_mw: Any = None,
    outages: Sequence[Any] | None = None,
    method: str = "auto",
    tolerance_mva: float = 1e-8,
    max_iteration: int | None = None,
    init: str = "auto",
    device: str | torch.device = "auto",
    screen: Callable[[CompiledNetwork, np.ndarray], Screen] | None = None,
    compiled: CompiledNetwork | None = None,
) -> BatchResult:
    """:func:`solve_batch` with an optional screening test, built by ``screen(compiled, dead)``
    from the compiled network and the cut-off buses (batch, n_internal) of each scenario.
    ``compiled``: ``net`` already compiled by the caller (with its options checked), so that
    it is not built twice."""
    _check_options(method, init, tolerance_mva, max_iteration)
    dev = resolve_device(device)
    previous = previous_results(net) if init == "results" else None
    if compiled is None:
        compiled = compile_network(net, **compile_options(net, "solve_batch"))
    p = _as_matrix("load_p_mw", load_p_mw, len(net.load))
    q = _as_matrix("load_q_mvar", load_q_mvar, len(net.load))
    g = _as_matrix("sgen_p_mw", sgen_p_mw, len(net.sgen))
    cases = _normalise_outages(outages)
    sizes = {len(a) for a in (p, q, g) if a is not None} | ({len(cases)} if cases is not None else set())
    batch = max(sizes) if sizes else 1
    if sizes - {1, batch}:
        raise InputError(f"the batch sizes of the inputs differ: {sorted(sizes)}")
    sbus = scenario_sbus(compiled, batch, p, q, g)
    sbus_t = torch.from_numpy(np.ascontiguousarray(sbus))
    if compiled.net["_options"].get("distributed_slack"):
        return _solve_distributed_slack(
            compiled, sbus_t, cases, method, init, tolerance_mva, max_iteration, dev, previous
        )
    system = PowerFlowSystem(compiled, device=dev)
    ybus_values = None
    frozen = None
    dead = np.zeros((batch, compiled.n_bus), dtype=bool)
    if cases is not None:
        if len(cases) == 1 and batch > 1:
            cases = cases * batch
        values, dead = _outage_topology(compiled, system, cases)
        ybus_values = values.to(dev)
        if dead.any():
            var_bus = np.r_[system.pvpq.cpu().numpy(), system.pq.cpu().numpy()]
            frozen = torch.from_numpy(dead[:, var_bus]).to(dev)
    test = None if screen is None else screen(compiled, dead)
    same = bool((sbus_t == sbus_t[:1]).all())
    fast = cases is not None and method in ("auto", "nr") and system.sparse and same
    if same:  # the same start for every scenario: compute it once
        v0 = initial_voltages(compiled, init, sbus_t[:1], previous).expand(batch, -1)
    else:
        v0 = initial_voltages(compiled, init, sbus_t, previous)
    if fast and ybus_values is not None:
        result, used = _solve_outages_fast(
            system, v0, sbus_t, ybus_values, frozen, tolerance_mva, max_iteration, test
        )
    else:
        result, used = solve(
            system,
            v0,
            sbus_t,
            method=method,
            tolerance_mva=tolerance_mva,
            max_iteration=max_iteration,
            ybus_values=ybus_values,
            frozen=frozen,
            screen=test,
        )
    v = result.v.cpu()
    dead_t = torch.from_numpy(dead)
    vm_int = torch.where(dead_t, torch.full_like(v.real, float("nan")), v.abs())
    va_int = torch.where(dead_t, torch.full_like(v.real, float("nan")), degrees(torch.angle(v)))
    conv = result.converged.cpu()
    screened = None if result.screened is None else result.screened.cpu()
    usable = conv if screened is None else conv | screened
    vm_int[~usable] = float("nan")
    va_int[~usable] = float("nan")
    vm = to_bus_order(compiled, vm_int)
    va = to_bus_order(compiled, va_int)
    return BatchResult(
        vm_pu=vm,
        va_degree=va,
        converged=conv,
        iterations=result.iterations.cpu(),
        max_mismatch_mva=result.max_mismatch_mva.cpu(),
        islanded=torch.from_numpy(dead.any(axis=1)),
        bus_index=net.bus.index.to_numpy(),
        method=used,
        screened=screened,
        v_internal=torch.polar(vm_int, torch.deg2rad(va_int)),
    )


def _solve_distributed_slack(
    compiled: CompiledNetwork,
    sbus: torch.Tensor,
    cases: list[list[Outage]] | None,
    method: str,
    init: str,
    tolerance_mva: float,
    max_iteration: int | None,
    device: torch.device,
    previous: tuple[np.ndarray, np.ndarray] | None,
) -> BatchResult:
    """Injection scenarios under ``distributed_slack`` (net.user_pf_options): one batched Newton
    with the slack power as one more unknown per scenario (pandapower's formulation, as
    :func:`hai.grid.runpp`), started from each scenario's Σ Pg − Σ Pd."""
    if cases is not None:
        raise InputError(
            "net.user_pf_options distributed_slack=True is not supported by solve_batch with outages",
            hint="remove it from net.user_pf_options, or solve the outages one by one with runpp",
        )
    if method not in ("auto", "nr"):
        raise InputError(f"distributed_slack=True needs method 'nr', got {method!r}")
    system = distributed_slack_system(compiled, device)
    v0 = initial_voltages(compiled, init, sbus, previous)
    result = newton_raphson(
        system,
        v0,
        sbus,
        tolerance_mva=tolerance_mva,
        max_iteration=max_iteration or NR_MAX_ITERATION,
        slack0=sbus.real.sum(dim=1),
    )
    v = result.v.cpu()
    conv = result.converged.cpu()
    vm_int, va_int = v.abs(), degrees(torch.angle(v))
    vm_int[~conv] = float("nan")
    va_int[~conv] = float("nan")
    batch = v.shape[0]
    return BatchResult(
        vm_pu=to_bus_order(compiled, vm_int),
        va_degree=to_bus_order(compiled, va_int),
        converged=conv,
        iterations=result.iterations.cpu(),
        max_mismatch_mva=result.max_mismatch_mva.cpu(),
        islanded=torch.zeros(batch, dtype=torch.bool),
        bus_index=compiled.net.bus.index.to_numpy(),
        method="nr (distributed_slack)",
    )


def _solve_outages_fast(
    system: PowerFlowSystem,
    v0: torch.Tensor,
    sbus: torch.Tensor,
    ybus_values: torch.Tensor,
    frozen: torch.Tensor | None,
    tolerance_mva: float,
    max_iteration: int | None,
    screen: Screen | None,
) -> tuple[NewtonResult, str]:
    """Outages of one operating point: base case by Newton, then every outage warm-started with
    the base Jacobian's factorisation and low-rank updates (:mod:`hai.grid.outages`); outages
    that do not converge are finished by full Newton-Raphson from the base solution, with
    ``max_iteration`` Newton iterations (default :data:`OUTAGE_NR_MAX_ITERATION`, as pandapower);
    those still not converged stay flagged (``converged`` False, voltages NaN)."""
    nr_iter = max_iteration or NR_MAX_ITERATION
    base = newton_raphson(system, v0[:1], sbus[:1], tolerance_mva=tolerance_mva, max_iteration=nr_iter)
    if not bool(base.converged[0]):
        return newton_raphson(
            system,
            v0,
            sbus,
            ybus_values=ybus_values,
            frozen=frozen,
            tolerance_mva=tolerance_mva,
            max_iteration=nr_iter,
            screen=screen,
        ), "nr"
    result = solve_outages(
        system,
        base.v[0],
        sbus[0],
        ybus_values,
        frozen=frozen,
        tolerance_mva=tolerance_mva,
        max_iteration=OUTAGE_MAX_ITERATION,
        screen=screen,
    )
    screened = result.screened
    rest = ~result.converged if screened is None else ~(result.converged | screened)
    if bool(rest.any()):
        idx = torch.nonzero(rest).squeeze(1)
        again = newton_raphson(
            system,
            base.v[:1].expand(len(idx), -1),
            sbus[idx],
            ybus_values=ybus_values[idx],
            frozen=None if frozen is None else frozen[idx],
            tolerance_mva=tolerance_mva,
            max_iteration=max_iteration or OUTAGE_NR_MAX_ITERATION,
            screen=screen if screen is None else _shifted(screen, idx),
        )
        result.v[idx] = again.v.cpu()
        result.converged[idx] = again.converged.cpu()
        result.iterations[idx] += again.iterations.cpu()
        result.max_mismatch_mva[idx] = again.max_mismatch_mva.cpu()
        if screened is not None and again.screened is not None:
            screened[idx] = again.screened.cpu()
    return result, "nr (base-case factorisation, low-rank outage updates)"


def _shifted(screen: Screen, idx: torch.Tensor) -> Screen:
    """The screening test for a sub-batch: its scenario numbers mapped back to the full batch."""

    def test(v: torch.Tensor, scenarios: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        return screen(v, idx.to(scenarios.device)[scenarios], bound)

    return test

"""``run_contingency``: N-1 of lines and transformers as one batch, with pandapower's aggregates.

Every outage is one scenario of :func:`hai.grid.solve_batch` (one Ybus per outage on the shared
pattern). Per outage: bus voltages (NaN where islanded, as pandapower's connectivity check makes
them), line and transformer loadings (``loading_percent`` as pandapower defines it: the larger
of the two ends' currents over ``max_i_ka · df · parallel`` for lines, over the rated currents
``sn_mva/(√3·vn_kv) · parallel · df`` for 2-winding transformers), the islanding and
convergence flags. Aggregates in the form of ``pandapower.contingency.run_contingency``: per bus
``min_vm_pu``/``max_vm_pu`` and per line and trafo ``max_loading_percent`` over the intact grid
and every converged outage, and a list of violations of ``net.bus.min_vm_pu``/``max_vm_pu`` and
``net.line``/``net.trafo`` ``max_loading_percent`` where the net has them. Screening mode stops
outages early once their violation status is certain. Not here: 3-winding transformer loadings.

>>> from hai.grid.cases import load_case
>>> net = load_case("case9")
>>> result = run_contingency(net)
>>> len(result.outages), int(result.islanded.sum()), result.line_max_loading_percent.shape
(9, 3, (9,))
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hai.grid.batch import batch_with_screening
from hai.grid.network import PQ, CompiledNetwork, compile_network
from hai.grid.options import compile_options
from hai.shared import InputError

#: Branch kinds with loadings, limits and outages here.
BRANCHES = ("line", "trafo")
#: Screening: values this close to a limit (pu, percent) are ambiguous whatever the bound, since
#: rounding alone can put them on either side (a PV set point equal to ``max_vm_pu``, say).
#: Outages with such values are solved exactly, by the same operations as without screening.
ROUNDING = 1e-9


@dataclass
class ContingencyResult:
    """Per-outage arrays (rows in ``outages`` order), flags and pandapower-style aggregates.

    ``screened`` (screening mode): outages stopped early because every bus voltage and line
    loading was certainly inside or certainly outside its limit; their values are within
    ``error_bound_vm_pu`` (per outage, pu; loadings correspondingly) of the exact ones, and
    their violations are exactly the exact solution's. All False without screening.
    """

    outages: list[tuple[str, int]]
    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_percent: np.ndarray
    converged: np.ndarray
    islanded: np.ndarray
    bus_min_vm_pu: np.ndarray
    bus_max_vm_pu: np.ndarray
    line_max_loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    trafo_max_loading_percent: np.ndarray
    violations: list[dict[str, Any]] = field(default_factory=list)
    screened: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    error_bound_vm_pu: np.ndarray = field(default_factory=lambda: np.zeros(0))


class _Branches:
    """Currents and loadings (pandapower's ``loading_percent``, ``trafo_loading="current"``) of
    the lines or the 2-winding transformers, from internal voltages."""

    def __init__(self, compiled: CompiledNetwork, element: str) -> None:
        from pandapower.pypower.idx_brch import F_BUS, T_BUS  # type: ignore[import-untyped]

        net = compiled.net
        table = net[element]
        n = len(table)
        self.live = np.zeros(n, dtype=bool)
        self.f = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.y = np.zeros((n, 4), dtype=np.complex128)  # yff, yft, ytf, ytt
        yf = compiled.yf_scipy.tocsr()
        yt = compiled.yt_scipy.tocsr()
        branch = compiled.ppci["branch"]
        lookup = net._pd2ppc_lookups["branch"]
        if element in lookup and n:
            # every element's internal branch row at once (what _branch_rows gives one by one:
            # 8000 scalar sparse lookups took 0.74 s of case1354pegase's N-1)
            start, _end = lookup[element]
            rows = int(start) + np.arange(n)
            branch_is = np.asarray(compiled.ppci["internal"]["branch_is"], dtype=bool)
            internal = np.cumsum(branch_is) - 1
            live = branch_is[rows]
            k = internal[rows[live]]
            f = np.real(branch[k, F_BUS]).astype(np.int64)
            t = np.real(branch[k, T_BUS]).astype(np.int64)
            self.live[live], self.f[live], self.t[live] = True, f, t
            self.y[live] = np.stack(
                [np.asarray(m[k, c]).ravel() for m, c in ((yf, f), (yf, t), (yt, f), (yt, t))], axis=1
            )
        ends = ("from_bus", "to_bus") if element == "line" else ("hv_bus", "lv_bus")
        self.ends = ends
        vn_f = net.bus.vn_kv.loc[table[ends[0]]].to_numpy(dtype=float)
        vn_t = net.bus.vn_kv.loc[table[ends[1]]].to_numpy(dtype=float)
        # per-unit current at each end → kA (pandapower: |S| / (√3·|V|)) → loading_percent
        ka_f = compiled.base_mva / (math.sqrt(3) * vn_f)
        ka_t = compiled.base_mva / (math.sqrt(3) * vn_t)
        if element == "line":
            imax = (table.max_i_ka * table.df * table.parallel).to_numpy(dtype=float)
            self.scale_f, self.scale_t = ka_f / imax * 100.0, ka_t / imax * 100.0
        else:
            rating = (table.sn_mva * table.parallel * table.df).to_numpy(dtype=float) / math.sqrt(3)
            self.scale_f = ka_f * table.vn_hv_kv.to_numpy(dtype=float) / rating * 100.0
            self.scale_t = ka_t * table.vn_lv_kv.to_numpy(dtype=float) / rating * 100.0

    def loading(self, v: np.ndarray) -> np.ndarray:
        """loading_percent (batch, n_element) of internal voltages (batch, n_internal); NaN where
        the element is out of service or a bus of it has no voltage."""
        vf, vt = v[:, self.f], v[:, self.t]
        i_f = np.abs(self.y[:, 0] * vf + self.y[:, 1] * vt) * self.scale_f
        i_t = np.abs(self.y[:, 2] * vf + self.y[:, 3] * vt) * self.scale_t
        out = np.maximum(i_f, i_t)
        out[np.isnan(i_f) | np.isnan(i_t)] = np.nan
        out[:, ~self.live] = np.nan
        return out

    def loading_bound(self, dv: np.ndarray) -> np.ndarray:
        """Bound (batch, n_element) on the loading error when every |ΔV| ≤ ``dv`` (batch,) pu."""
        gain_f = (np.abs(self.y[:, 0]) + np.abs(self.y[:, 1])) * self.scale_f
        gain_t = (np.abs(self.y[:, 2]) + np.abs(self.y[:, 3])) * self.scale_t
        return dv[:, None] * np.maximum(gain_f, gain_t)[None, :]


def _outaged_positions(net: Any, element: str, outages: list[tuple[str, int]]) -> np.ndarray:
    """Per outage, the position of the outaged ``element`` in its table (-1 for other kinds)."""
    table = net[element]
    return np.array([table.index.get_loc(i) if e == element else -1 for e, i in outages], dtype=np.int64)


def _limits(net: Any) -> tuple[tuple[np.ndarray, np.ndarray] | None, dict[str, np.ndarray]]:
    """Bus (min, max) vm_pu limits where the net has both columns; loading limits per branch kind."""
    vm = None
    if "min_vm_pu" in net.bus and "max_vm_pu" in net.bus:
        vm = (net.bus.min_vm_pu.to_numpy(dtype=float), net.bus.max_vm_pu.to_numpy(dtype=float))
    loading = {
        element: net[element].max_loading_percent.to_numpy(dtype=float)
        for element in BRANCHES
        if "max_loading_percent" in net[element] and len(net[element])
    }
    return vm, loading


class _Screening:
    """The screening test factory for :func:`hai.grid.batch.batch_with_screening`.

    A scenario is certain when, with every voltage magnitude and angle within ``bound`` of the
    exact solution, no bus voltage and no line or transformer loading can be on the other side
    of its limit:
    ``|vm − limit| > bound`` and ``|loading − limit| > loading bound``, where the loading bound
    follows from ``|ΔV| ≤ bound·(1 + vm + bound)`` through the line's admittances. The intact grid
    (scenario 0) is always solved exactly. ``bound[b]``: the bound scenario b was screened with.
    """

    def __init__(self, outages: list[tuple[str, int]]) -> None:
        self.outages = outages
        self.bound = np.zeros(len(outages) + 1)

    def __call__(self, compiled: CompiledNetwork, dead: np.ndarray) -> Any:
        outages = self.outages
        net = compiled.net
        vm_all, loading_limits = _limits(net)
        branches = {element: _Branches(compiled, element) for element in loading_limits}
        outaged = {element: np.r_[-1, _outaged_positions(net, element, outages)] for element in branches}
        lookup = compiled.bus_lookup.numpy()
        in_net = lookup >= 0
        vm_limits = None if vm_all is None else (vm_all[0][in_net], vm_all[1][in_net])
        buses = lookup[in_net]
        # slack and PV magnitudes are set points (no error beyond rounding)
        pq_bus = (compiled.bus_type.numpy() == PQ)[buses]

        def test(v: torch.Tensor, scenarios: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
            vv = v.detach().cpu().numpy().copy()
            b = scenarios.cpu().numpy()
            e = bound.detach().cpu().numpy()
            vv[dead[b]] = np.nan
            certain = b > 0
            if vm_limits is not None:
                vm = np.abs(vv[:, buses])
                margin = np.minimum(np.abs(vm - vm_limits[0][None]), np.abs(vm - vm_limits[1][None]))
                bus_bound = np.where(pq_bus[None], e[:, None], 0.0) + ROUNDING
                certain &= np.all(~(margin <= bus_bound), axis=1)
            dv = e * (1.0 + np.nanmax(np.abs(vv), axis=1) + e)
            for element, model in branches.items():
                loading = model.loading(vv)
                out = outaged[element][b]
                rows = np.nonzero(out >= 0)[0]
                loading[rows, out[rows]] = 0.0
                margin = np.abs(loading - loading_limits[element][None]) - model.loading_bound(dv) - ROUNDING
                certain &= np.all(~(margin <= 0), axis=1)
            self.bound[b[certain]] = e[certain]
            return torch.from_numpy(certain)

        return test


def _branch_loading(
    compiled: CompiledNetwork,
    element: str,
    vm: np.ndarray,
    va_deg: np.ndarray,
    outages: list[tuple[str, int]],
    v_internal: np.ndarray | None = None,
) -> np.ndarray:
    """loading_percent (batch, n_element) of the lines or trafos from bus voltages in net.bus
    order, as pandapower computes it. ``v_internal`` (batch, n_internal), where the solver kept
    it, also has the auxiliary buses behind open line switches (else their lines are NaN)."""
    net = compiled.net
    table = net[element]
    if v_internal is None:
        v_bus = vm * np.exp(1j * np.deg2rad(va_deg))
        lookup = compiled.bus_lookup.numpy()
        v_internal = np.full((vm.shape[0], compiled.n_bus), np.nan + 0j)
        live = lookup >= 0
        v_internal[:, lookup[live]] = v_bus[:, live]
    model = _Branches(compiled, element)
    loading = model.loading(v_internal)
    bus_pos = {bus: k for k, bus in enumerate(net.bus.index)}
    for b, (kind, index) in enumerate(outages):
        if kind == element:
            pos = table.index.get_loc(index)
            # pandapower: an out-of-service branch has loading 0, or NaN when a bus of it is
            # isolated, the auxiliary bus behind an open switch included (internal order)
            if model.live[pos]:
                alive = np.isfinite(v_internal[b, [model.f[pos], model.t[pos]]]).all()
            else:
                ends = [bus_pos[table[model.ends[0]].at[index]], bus_pos[table[model.ends[1]].at[index]]]
                alive = np.isfinite(vm[b, ends]).all()
            loading[b, pos] = 0.0 if alive else np.nan
    return loading


def run_contingency(
    net: Any,
    *,
    lines: Any = None,
    trafos: Any = None,
    screening: bool = False,
    tolerance_mva: float = 1e-8,
    max_iteration: int | None = None,
    device: str | torch.device = "auto",
) -> ContingencyResult:
    """N-1 over the in-service lines and transformers of ``net`` (or the given indices).

    ``lines``/``trafos``: indices into ``net.line``/``net.trafo`` (default: all in service; pass
    ``[]`` to leave a kind out). Outages that do not converge are flagged and NaN; they do not
    enter the aggregates. ``screening=True`` stops each outage's iterations as soon as every
    bus voltage and line loading is certainly inside or certainly outside the net's limits
    (``min_vm_pu``/``max_vm_pu``, ``max_loading_percent``) under a conservative bound on the
    remaining error (twice the last step of a contracting iteration); outages still ambiguous
    are solved to ``tolerance_mva``. ``result.screened`` says which outages stopped early.
    ``max_iteration``: Newton iterations for the base case (default 20) and for the outages the
    fast outage solver leaves unconverged (default 10, pandapower's); outages still not
    converged are flagged in ``converged``.

    >>> from hai.grid.cases import load_case
    >>> net = load_case("case30")
    >>> net.bus["min_vm_pu"], net.bus["max_vm_pu"] = 0.96, 1.05
    >>> fast = run_contingency(net, screening=True)
    >>> exact = run_contingency(net)
    >>> key = lambda r: {(v["outage"], v["element"], v["index"]) for v in r.violations}
    >>> key(fast) == key(exact), bool(fast.screened.any())
    (True, True)
    """
    options = compile_options(net, "run_contingency")  # refuses what it does not honour, by name
    line_ids = list(net.line.index[net.line.in_service]) if lines is None else list(lines)
    trafo_ids = list(net.trafo.index[net.trafo.in_service]) if trafos is None else list(trafos)
    for name, ids, table in (("lines", line_ids, net.line), ("trafos", trafo_ids, net.trafo)):
        missing = [i for i in ids if i not in table.index]
        if missing:
            raise InputError(f"{name} names indices that the net does not have: {missing[:5]}")
    outages = [("line", int(i)) for i in line_ids] + [("trafo", int(i)) for i in trafo_ids]
    if not outages:
        raise InputError("no outages to run: the net has no in-service lines or transformers")
    screen = _Screening(outages) if screening else None
    compiled = compile_network(net, **options)
    batch = batch_with_screening(
        net,
        outages=[None, *outages],
        tolerance_mva=tolerance_mva,
        max_iteration=max_iteration,
        device=device,
        screen=screen,
        compiled=compiled,
    )
    vm = batch.vm_pu.numpy()
    va = batch.va_degree.numpy()
    v_internal = None if batch.v_internal is None else batch.v_internal.numpy()
    if v_internal is not None and v_internal.shape[1] != compiled.n_bus:
        v_internal = None
    loading = {
        element: _branch_loading(compiled, element, vm, va, [("none", -1), *outages], v_internal)
        for element in BRANCHES
    }
    converged = batch.converged.numpy()
    if not converged[0]:
        raise InputError("the intact grid does not converge, so N-1 has no base case")
    screened = np.zeros(len(converged), dtype=bool) if batch.screened is None else batch.screened.numpy()
    ok = converged | screened
    with warnings.catch_warnings():  # buses isolated in every outage stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        bus_min = np.nanmin(np.where(ok[:, None], vm, np.nan), axis=0)
        bus_max = np.nanmax(np.where(ok[:, None], vm, np.nan), axis=0)
        branch_max = {
            element: np.nanmax(np.where(ok[:, None], values, np.nan), axis=0)
            if values.shape[1]
            else values[0]
            for element, values in loading.items()
        }
    violations = _violations(net, outages, ok, vm, loading)
    return ContingencyResult(
        outages=outages,
        vm_pu=vm[1:],
        va_degree=va[1:],
        line_loading_percent=loading["line"][1:],
        trafo_loading_percent=loading["trafo"][1:],
        converged=ok[1:],
        islanded=batch.islanded.numpy()[1:],
        bus_min_vm_pu=bus_min,
        bus_max_vm_pu=bus_max,
        line_max_loading_percent=branch_max["line"],
        trafo_max_loading_percent=branch_max["trafo"],
        violations=violations,
        screened=screened[1:],
        error_bound_vm_pu=np.where(screened, screen.bound, 0.0)[1:] if screen else np.zeros(len(outages)),
    )


def _violations(
    net: Any, outages: list[tuple[str, int]], ok: np.ndarray, vm: np.ndarray, loading: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Per solved outage (rows 1.. of ``vm``/``loading``; row 0 is the intact grid), the buses
    outside their vm_pu limits and the branches above max_loading_percent, in outage order."""
    vm_limits, loading_limits = _limits(net)
    over: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]] = []  # (element, key, b, pos, value)
    rows = ok.copy()
    rows[0] = False
    if vm_limits is not None:
        with np.errstate(invalid="ignore"):
            b, pos = np.nonzero(rows[:, None] & ((vm < vm_limits[0]) | (vm > vm_limits[1])))
        over.append(("bus", "vm_pu", b, pos, vm[b, pos]))
    for element, limit in loading_limits.items():
        with np.errstate(invalid="ignore"):
            b, pos = np.nonzero(rows[:, None] & (loading[element] > limit))
        over.append((element, "loading_percent", b, pos, loading[element][b, pos]))
    if not over:
        return []
    # one lexicographic order over (outage, kind, position) in numpy, then one dict per entry
    kinds = np.concatenate([np.full(len(b), k, dtype=np.int64) for k, (_, _, b, _, _) in enumerate(over)])
    scenarios = np.concatenate([b for _, _, b, _, _ in over])
    positions = np.concatenate([pos for _, _, _, pos, _ in over])
    indices = np.concatenate([net[element].index.to_numpy()[pos] for element, _, _, pos, _ in over])
    values = np.concatenate([value for _, _, _, _, value in over])
    order = np.lexsort((positions, kinds, scenarios))
    names = [(element, key) for element, key, _, _, _ in over]
    return [
        {"outage": outages[scenario - 1], "element": names[k][0], "index": int(i), names[k][1]: float(x)}
        for scenario, k, i, x in zip(
            scenarios[order].tolist(),
            kinds[order].tolist(),
            indices[order].tolist(),
            values[order].tolist(),
            strict=True,
        )
    ]

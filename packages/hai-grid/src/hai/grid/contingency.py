"""``run_contingency``: N-1 of lines and transformers as one batch, with pandapower's aggregates.

Every outage is one scenario of :func:`hai.grid.solve_batch` (one Ybus per outage on the shared
pattern). Per outage: bus voltages (NaN where islanded, as pandapower's connectivity check makes
them), line loadings (``loading_percent`` as pandapower defines it: the larger of the from/to
currents over ``max_i_ka · df · parallel``), the islanding and convergence flags. Aggregates in
the form of ``pandapower.contingency.run_contingency``: per bus ``min_vm_pu``/``max_vm_pu`` and
per line ``max_loading_percent`` over the intact grid and every converged outage, and a list of
violations of ``net.bus.min_vm_pu``/``max_vm_pu`` and ``net.line.max_loading_percent`` where the
net has them. Not yet here: the issue's screening mode and transformer loadings.

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

from hai.grid.batch import _branch_rows, solve_batch
from hai.grid.network import compile_network
from hai.shared import InputError


@dataclass
class ContingencyResult:
    """Per-outage arrays (rows in ``outages`` order), flags and pandapower-style aggregates."""

    outages: list[tuple[str, int]]
    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_percent: np.ndarray
    converged: np.ndarray
    islanded: np.ndarray
    bus_min_vm_pu: np.ndarray
    bus_max_vm_pu: np.ndarray
    line_max_loading_percent: np.ndarray
    violations: list[dict[str, Any]] = field(default_factory=list)


def _line_loading(net: Any, vm: np.ndarray, va_deg: np.ndarray, outages: list[tuple[str, int]]) -> np.ndarray:
    """loading_percent (batch, n_line) from bus voltages in net.bus order, as pandapower computes it."""
    compiled = compile_network(net)
    yf = compiled.yf_scipy.tocsr()
    yt = compiled.yt_scipy.tocsr()
    from pandapower.pypower.idx_brch import F_BUS, T_BUS  # type: ignore[import-untyped]

    lines = net.line
    loading = np.full((vm.shape[0], len(lines)), np.nan)
    v_bus = vm * np.exp(1j * np.deg2rad(va_deg))
    lookup = compiled.bus_lookup.numpy()
    v_internal = np.full((vm.shape[0], compiled.n_bus), np.nan + 0j)
    live = lookup >= 0
    v_internal[:, lookup[live]] = v_bus[:, live]
    branch = compiled.ppci["branch"]
    for pos, index in enumerate(lines.index):
        rows = _branch_rows(compiled, "line", int(index))
        if rows.size == 0:
            continue
        k = int(rows[0])
        f = int(np.real(branch[k, F_BUS]))
        t = int(np.real(branch[k, T_BUS]))
        i_f = yf[k, f] * v_internal[:, f] + yf[k, t] * v_internal[:, t]
        i_t = yt[k, f] * v_internal[:, f] + yt[k, t] * v_internal[:, t]
        vn = float(net.bus.vn_kv.at[lines.from_bus.at[index]])
        i_ka = np.maximum(np.abs(i_f), np.abs(i_t)) * compiled.base_mva / (math.sqrt(3) * vn)
        imax = float(lines.max_i_ka.at[index] * lines.df.at[index] * lines.parallel.at[index])
        loading[:, pos] = i_ka / imax * 100.0
    bus_pos = {bus: k for k, bus in enumerate(net.bus.index)}
    for b, (element, index) in enumerate(outages):
        if element == "line":
            ends = [bus_pos[lines.from_bus.at[index]], bus_pos[lines.to_bus.at[index]]]
            # pandapower: an out-of-service line has loading 0, or NaN when a bus of it is isolated
            loading[b, lines.index.get_loc(index)] = 0.0 if np.isfinite(vm[b, ends]).all() else np.nan
    return loading


def run_contingency(
    net: Any,
    *,
    lines: Any = None,
    trafos: Any = None,
    tolerance_mva: float = 1e-8,
    device: str | torch.device = "auto",
) -> ContingencyResult:
    """N-1 over the in-service lines and transformers of ``net`` (or the given indices).

    ``lines``/``trafos``: indices into ``net.line``/``net.trafo`` (default: all in service; pass
    ``[]`` to leave a kind out). Outages that do not converge are flagged and NaN; they do not
    enter the aggregates.
    """
    line_ids = list(net.line.index[net.line.in_service]) if lines is None else list(lines)
    trafo_ids = list(net.trafo.index[net.trafo.in_service]) if trafos is None else list(trafos)
    for name, ids, table in (("lines", line_ids, net.line), ("trafos", trafo_ids, net.trafo)):
        missing = [i for i in ids if i not in table.index]
        if missing:
            raise InputError(f"{name} names indices that the net does not have: {missing[:5]}")
    outages = [("line", int(i)) for i in line_ids] + [("trafo", int(i)) for i in trafo_ids]
    if not outages:
        raise InputError("no outages to run: the net has no in-service lines or transformers")
    batch = solve_batch(net, outages=[None, *outages], tolerance_mva=tolerance_mva, device=device)
    vm = batch.vm_pu.numpy()
    va = batch.va_degree.numpy()
    loading = _line_loading(net, vm, va, [("none", -1), *outages])
    converged = batch.converged.numpy()
    if not converged[0]:
        raise InputError("the intact grid does not converge, so N-1 has no base case")
    ok = converged
    with warnings.catch_warnings():  # buses isolated in every outage stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        bus_min = np.nanmin(np.where(ok[:, None], vm, np.nan), axis=0)
        bus_max = np.nanmax(np.where(ok[:, None], vm, np.nan), axis=0)
        line_max = np.nanmax(np.where(ok[:, None], loading, np.nan), axis=0)
    violations: list[dict[str, Any]] = []
    for b, outage in enumerate(outages, start=1):
        if not ok[b]:
            continue
        if "min_vm_pu" in net.bus and "max_vm_pu" in net.bus:
            low = vm[b] < net.bus.min_vm_pu.to_numpy(dtype=float)
            high = vm[b] > net.bus.max_vm_pu.to_numpy(dtype=float)
            for pos in np.nonzero(low | high)[0]:
                violations.append(
                    {
                        "outage": outage,
                        "element": "bus",
                        "index": int(net.bus.index[pos]),
                        "vm_pu": float(vm[b, pos]),
                    }
                )
        if "max_loading_percent" in net.line:
            over = loading[b] > net.line.max_loading_percent.to_numpy(dtype=float)
            for pos in np.nonzero(over)[0]:
                violations.append(
                    {
                        "outage": outage,
                        "element": "line",
                        "index": int(net.line.index[pos]),
                        "loading_percent": float(loading[b, pos]),
                    }
                )
    return ContingencyResult(
        outages=outages,
        vm_pu=vm[1:],
        va_degree=va[1:],
        line_loading_percent=loading[1:],
        converged=converged[1:],
        islanded=batch.islanded.numpy()[1:],
        bus_min_vm_pu=bus_min,
        bus_max_vm_pu=bus_max,
        line_max_loading_percent=line_max,
        violations=violations,
    )

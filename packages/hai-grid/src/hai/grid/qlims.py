"""Generator reactive-power limits (``enforce_q_lims=True``) exactly as pandapower enforces them.

pandapower's ``_run_ac_pf_with_qlims_enforced`` (pandapower 3.5, BSD-3-Clause, itself from
pypower's ``runpf``) is an outer loop around Newton-Raphson on its internal case (ppci): solve;
extract the generators' Q (``ppci_to_pfsoln``); every in-service generator that is not a
reference machine and lies above ``QMAX`` or below ``QMIN`` is fixed at that limit, switched off
with its P and Q moved into the bus load, and its bus becomes PQ; solve again from the last
voltages; repeat until no limit is violated; then the limited generators are restored (on, at
their limit) for the result tables. This module is that loop with hai's Newton-Raphson as the
inner solver, step for step, so results agree with ``pandapower.runpp(enforce_q_lims=True)``;
pandapower's extraction fills ``net.res_*`` from the final case.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from hai.grid.network import PQ as PQ_TYPE
from hai.grid.network import PV as PV_TYPE
from hai.grid.network import REF as REF_TYPE
from hai.grid.network import CompiledNetwork
from hai.grid.newton import PowerFlowSystem, newton_raphson


def _inner_solve(
    compiled: CompiledNetwork,
    ppci: dict[str, Any],
    v_start: np.ndarray | None,
    *,
    device: torch.device,
    tolerance_mva: float,
    max_iteration: int,
    distributed_slack: bool = False,
) -> tuple[bool, int, float]:
    """One Newton-Raphson on the current ppci (bus types, loads, gen status) by hai's solver."""
    from pandapower.pf.ppci_variables import _get_pf_variables_from_ppci  # type: ignore[import-untyped]
    from pandapower.pypower.makeSbus import makeSbus  # type: ignore[import-untyped]

    base_mva, bus, gen, branch, svc, tcsc, ssc, vsc, ref, pv, pq, *_, v0, ref_gens = (
        _get_pf_variables_from_ppci(ppci, True)
    )
    sbus = np.asarray(makeSbus(base_mva, bus, gen), dtype=np.complex128)
    bus_type = np.full(len(bus), PQ_TYPE, dtype=np.int64)
    bus_type[pv] = PV_TYPE
    bus_type[ref] = REF_TYPE
    current = copy.copy(compiled)
    current.sbus = torch.from_numpy(sbus)
    current.v0 = torch.from_numpy(np.asarray(v0, dtype=np.complex128).copy())
    current.bus_type = torch.from_numpy(bus_type)
    current.ref = torch.from_numpy(np.asarray(ref, dtype=np.int64))
    current.pv = torch.from_numpy(np.asarray(pv, dtype=np.int64))
    current.pq = torch.from_numpy(np.asarray(pq, dtype=np.int64))
    slack0 = None
    if distributed_slack:
        from pandapower.pypower.idx_bus import PD, SL_FAC  # type: ignore[import-untyped]
        from pandapower.pypower.idx_gen import PG  # type: ignore[import-untyped]

        # the weights and pandapower's start for the slack power, from the current case (the
        # limited generators' P moved into the bus loads), as newtonpf reads them
        weights = np.real(ppci["bus"][:, SL_FAC]).astype(float)
        system = PowerFlowSystem(current, device=device, slack_weights=weights)
        start_slack = (ppci["gen"][:, PG].sum() - ppci["bus"][:, PD].sum()) / base_mva
        slack0 = torch.tensor([start_slack], dtype=torch.float64)
    else:
        system = PowerFlowSystem(current, device=device)
    start = np.asarray(v0, dtype=np.complex128) if v_start is None else v_start
    result = newton_raphson(
        system,
        torch.from_numpy(start.copy())[None],
        current.sbus[None],
        tolerance_mva=tolerance_mva,
        max_iteration=max_iteration,
        slack0=slack0,
    )
    v = result.v[0].cpu().numpy()
    ppci["internal"].update(
        {
            "bus": bus,
            "gen": gen,
            "branch": branch,
            "svc": svc,
            "tcsc": tcsc,
            "ssc": ssc,
            "vsc": vsc,
            "baseMVA": base_mva,
            "V": v,
            "pv": pv,
            "pq": pq,
            "ref": ref,
            "Sbus": sbus,
            "ref_gens": ref_gens,
            "Ybus": compiled.ybus_scipy,
            "Yf": compiled.yf_scipy,
            "Yt": compiled.yt_scipy,
            "J": None,
            "Vm_it": None,
            "Va_it": None,
            "r_theta_kelvin_per_mw": None,
            "T": None,
        }
    )
    return bool(result.converged[0]), int(result.iterations[0]), float(result.max_mismatch_mva[0])


def solve_with_q_limits(
    compiled: CompiledNetwork,
    v_start: np.ndarray,
    *,
    device: torch.device,
    tolerance_mva: float,
    max_iteration: int,
    distributed_slack: bool = False,
) -> tuple[bool, int, float, int]:
    """Run pandapower's Q-limit loop with hai's Newton; fill ``net.res_*`` when it converged.

    ``tolerance_mva`` is in MVA (hai's solver unit). Returns (converged, Newton iterations over
    all passes, final ∞-norm mismatch in MVA, number of generators held at a limit).
    """
    from pandapower.pf.ppci_variables import (
        _get_pf_variables_from_ppci,
        _store_results_from_pf_in_ppci,
    )
    from pandapower.pf.run_newton_raphson_pf import ppci_to_pfsoln  # type: ignore[import-untyped]
    from pandapower.powerflow import _ppci_to_net  # type: ignore[import-untyped]
    from pandapower.pypower.bustypes import bustypes  # type: ignore[import-untyped]
    from pandapower.pypower.idx_bus import BUS_TYPE, PD, PQ, PV, QD
    from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, PG, QG, QMAX, QMIN

    start_time = time.perf_counter()
    net = compiled.net
    options = net["_options"]
    ppci = compiled.ppci
    _, bus, gen, _branch, *_rest = _get_pf_variables_from_ppci(ppci)
    ref_gens = ppci["internal"]["ref_gens"]
    ref = np.asarray(compiled.ref.cpu().numpy())
    bus_backup_p_q = bus[:, [PD, QD]].copy()
    gen_backup_p = gen[:, PG].copy()
    limited = np.zeros(0, dtype=np.int64)
    fixed_qg = np.zeros(gen.shape[0])
    changed_gens = np.zeros(0, dtype=np.int64)
    total_iterations = 0
    first: np.ndarray | None = v_start
    while True:
        success, iterations, mismatch = _inner_solve(
            compiled,
            ppci,
            first,
            device=device,
            tolerance_mva=tolerance_mva,
            max_iteration=max_iteration,
            distributed_slack=distributed_slack,
        )
        first = None  # later passes start from the last voltages, as pandapower's do
        total_iterations += iterations
        if not success:
            return False, total_iterations, mismatch, len(limited)
        gen[:, PG] = gen_backup_p
        bus[:, PD] = bus_backup_p_q[:, 0]
        bus, gen, branch = ppci_to_pfsoln(ppci, options, limited)
        on = gen[:, GEN_STATUS] > 0
        mx = np.setdiff1d(np.flatnonzero(on & (gen[:, QG] > gen[:, QMAX])), ref_gens)
        mn = np.setdiff1d(np.flatnonzero(on & (gen[:, QG] < gen[:, QMIN])), ref_gens)
        if len(mx) == 0 and len(mn) == 0:
            break
        fixed_qg[mx] = gen[mx, QMAX]
        fixed_qg[mn] = gen[mn, QMIN]
        both = np.r_[mx, mn].astype(np.int64)
        gen[both, QG] = fixed_qg[both]
        changed_gens = gen[both, GEN_BUS].astype(np.int64)
        bus[np.setdiff1d(changed_gens, ref), BUS_TYPE] = PQ
        ref, _, _ = bustypes(bus, gen)
        limited = np.r_[limited, both].astype(np.int64)
        for k in limited:  # one at a time, since they may be at the same bus
            gen[k, GEN_STATUS] = 0
            bi = int(gen[k, GEN_BUS])
            bus[bi, [PD, QD]] = bus[bi, [PD, QD]] - gen[k, [PG, QG]]
    if len(limited):
        bus[np.setdiff1d(changed_gens, ref), BUS_TYPE] = PV
        gen[limited, QG] = fixed_qg[limited]
        gen[limited, GEN_STATUS] = 1
        bus[:, [PD, QD]] = bus_backup_p_q
    ppci = _store_results_from_pf_in_ppci(
        ppci, bus, gen, branch, True, total_iterations, time.perf_counter() - start_time
    )
    _ppci_to_net(ppci, net)
    return True, total_iterations, mismatch, len(limited)

"""hai.grid against pandapower (and lightsim2grid when installed), side by side in one run.

Workloads per case (default case118, case1354pegase and case9241pegase):

* single snapshot: ``hai.grid.runpp`` vs ``pandapower.runpp`` (Newton-Raphson, numba when
  installed, ``tolerance_mva`` 1e-8), each the median of ``--repeats`` runs after a warm-up;
  both include building the bus-branch model and writing ``net.res_*``;
* N-1 over all in-service lines: ``hai.grid.solve_batch(outages=...)`` on all of them vs a
  ``pandapower.runpp`` loop on the first ``--pp-outages`` outages (per-outage time × count gives
  the loop's total; the loop is linear in the outage count);
* a 96-step time series (loads scaled by a daily profile): ``solve_batch`` on all steps vs a
  ``pandapower.runpp`` loop on all steps;
* N-1 screening: ``run_contingency(screening=True)`` vs the exact ``run_contingency`` on all
  lines and transformers, with the net's limits (bus ``min_vm_pu``/``max_vm_pu`` of the case,
  ``max_loading_percent`` set to ``--loading-limit``): times and the violation recall and
  precision of screening against the exact violations.

Max deviations in vm_pu are against pandapower on the scenarios both ran. Exact-mode parity of
the snapshot: ``hai.grid.runpp`` against ``pandapower.runpp(tolerance_mva=1e-10)``, max |Δvm| (pu)
and |Δva| (degrees), reported as ``parity_dvm_pu``/``parity_dva_deg``.

Large cases run on a subset (:data:`SUBSETS`, ``--full`` for everything): N-1 over
``outages`` evenly spaced in-service lines (hai, lightsim2grid and the pandapower loop all on the
same subset; the loop timed on its first ``pp_outages`` and scaled), the time series with hai on
all steps and the pandapower loop timed on the first ``pp_steps`` steps and scaled, no
screening row. lightsim2grid rows
appear only when ``import lightsim2grid`` works. Prints a table and writes
``bench_powerflow.json`` to ``--out``.

    python packages/hai-grid/benchmarks/bench_powerflow.py --out build/bench [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp  # type: ignore[import-untyped]
import torch

import hai.grid
from hai.shared import resolve_device, write_json

warnings.filterwarnings("ignore")

#: Per large case: N-1 on ``outages`` evenly spaced lines, pandapower loops on ``pp_outages``
#: outages and ``pp_steps`` time steps (scaled to the full count), no screening row.
SUBSETS: dict[str, dict[str, int]] = {"case9241pegase": {"outages": 300, "pp_outages": 15, "pp_steps": 16}}
#: Night load level of the daily profile per case (default 0.75). case9241pegase's loads scaled
#: without its generation have no power flow solution below about 0.9 (pandapower.runpp does not
#: converge at 0.75 either), so its profile runs from 0.9 to 1.0.
PROFILE_LOW = {"case9241pegase": 0.9}


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(steps: int, low: float = 0.75) -> np.ndarray:
    """Daily load scaling from ``low`` (night) to 1.0."""
    hours = np.arange(steps) * 24.0 / steps
    return low + (1.0 - low) * np.sin((hours - 8.0) / 24.0 * 2 * np.pi) ** 2


def ls2g_times(net: Any, outages: list[tuple[str, int]], repeats: int) -> dict[str, Any] | None:
    """lightsim2grid: raw ``ac_pf`` (model built beforehand) and native N-1 over the same lines."""
    try:
        from lightsim2grid.contingencyAnalysis import ContingencyAnalysisCPP  # type: ignore[import-untyped]
        from lightsim2grid.gridmodel import init_from_pandapower  # type: ignore[import-untyped]
    except ImportError:
        return None
    solved = copy.deepcopy(net)
    pp.runpp(solved)
    model = init_from_pandapower(solved)
    v0 = np.ones(len(net.bus), dtype=complex)
    snapshot = median_time(lambda: model.ac_pf(v0.copy(), 10, 1e-8), repeats)
    voltage = model.ac_pf(v0.copy(), 10, 1e-8)
    dvm = float(np.nanmax(np.abs(np.abs(voltage) - solved.res_bus.vm_pu.to_numpy())))
    positions = [int(net.line.index.get_loc(i)) for _, i in outages]  # ls2g branches: lines first

    def contingency() -> None:
        analysis = ContingencyAnalysisCPP(model)
        analysis.add_multiple_n1(positions)
        analysis.compute(v0.copy(), 10, 1e-8)

    n1 = median_time(contingency, 1)
    return {"snapshot_s": snapshot, "snapshot_max_dvm_pu": dvm, "n1_s": n1}


def screening_row(name: str, net: Any, device: torch.device, loading_limit: float) -> dict[str, Any]:
    """Exact N-1 and screening N-1 with the net's voltage limits and a loading limit."""
    limited = copy.deepcopy(net)
    if "min_vm_pu" not in limited.bus or limited.bus.min_vm_pu.isna().all():
        limited.bus["min_vm_pu"], limited.bus["max_vm_pu"] = 0.94, 1.06
    limited.line["max_loading_percent"] = loading_limit
    start = time.perf_counter()
    exact = hai.grid.run_contingency(limited, device=device)
    t_exact = time.perf_counter() - start
    start = time.perf_counter()
    fast = hai.grid.run_contingency(limited, device=device, screening=True)
    t_fast = time.perf_counter() - start
    truth = {(tuple(v["outage"]), v["element"], v["index"]) for v in exact.violations}
    found = {(tuple(v["outage"]), v["element"], v["index"]) for v in fast.violations}
    both = len(truth & found)
    return {
        "case": name,
        "workload": f"N-1 screening ({len(exact.outages)})",
        "hai_s": t_fast,
        "exact_s": t_exact,
        "screened": int(fast.screened.sum()),
        "violations": len(truth),
        "recall": both / len(truth) if truth else 1.0,
        "precision": both / len(found) if found else 1.0,
        "loading_limit_percent": loading_limit,
    }


def bench_case(
    name: str,
    device: torch.device,
    repeats: int,
    pp_outages: int,
    steps: int,
    loading_limit: float,
    subset: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    net = hai.grid.load_case(name)
    pp_steps = steps
    if subset is not None:
        pp_outages, pp_steps = min(pp_outages, subset["pp_outages"]), min(steps, subset["pp_steps"])

    def run_pp(n: Any) -> None:
        pp.runpp(n, tolerance_mva=1e-8)

    # single snapshot
    ours, theirs = copy.deepcopy(net), copy.deepcopy(net)
    t_hai = median_time(lambda: hai.grid.runpp(ours, device=device), repeats)
    t_pp = median_time(lambda: run_pp(theirs), repeats)
    dev = float(np.nanmax(np.abs(ours.res_bus.vm_pu.to_numpy() - theirs.res_bus.vm_pu.to_numpy())))
    pp.runpp(theirs, tolerance_mva=1e-10)  # exact-mode parity: the 1e-6 pu / 1e-4 degrees
    parity_vm = np.abs(ours.res_bus.vm_pu.to_numpy() - theirs.res_bus.vm_pu.to_numpy())
    parity_va = np.abs(ours.res_bus.va_degree.to_numpy() - theirs.res_bus.va_degree.to_numpy())
    rows.append(
        {
            "case": name,
            "workload": "snapshot",
            "hai_s": t_hai,
            "pandapower_s": t_pp,
            "max_dvm_pu": dev,
            "parity_dvm_pu": float(np.nanmax(parity_vm)),
            "parity_dva_deg": float(np.nanmax(parity_va)),
        }
    )

    # N-1 over all in-service lines (or an evenly spaced subset of them)
    outages = [("line", int(i)) for i in net.line.index[net.line.in_service]]
    n_lines = len(outages)
    if subset is not None and subset["outages"] < n_lines:
        pick = np.linspace(0, n_lines - 1, subset["outages"]).round().astype(int)
        outages = [outages[k] for k in pick]
    start = time.perf_counter()
    result = hai.grid.solve_batch(net, outages=outages, device=device)
    t_hai = time.perf_counter() - start
    ref_vm = []
    start = time.perf_counter()
    # a pandapower user's N-1 loop: toggle in_service on one copy (no deep copy per outage)
    n = copy.deepcopy(net)
    for element, index in outages[:pp_outages]:
        n[element].loc[index, "in_service"] = False
        try:
            run_pp(n)
            ref_vm.append(n.res_bus.vm_pu.to_numpy())
        except pp.LoadflowNotConverged:
            ref_vm.append(np.full(len(net.bus), np.nan))
        finally:
            n[element].loc[index, "in_service"] = True
    t_loop = (time.perf_counter() - start) / max(1, min(pp_outages, len(outages))) * len(outages)
    diff = np.abs(result.vm_pu.numpy()[: len(ref_vm)] - np.array(ref_vm))
    rows.append(
        {
            "case": name,
            "workload": f"N-1 ({len(outages)} lines)" + ("" if len(outages) == n_lines else f" of {n_lines}"),
            "hai_s": t_hai,
            "pandapower_s": t_loop,
            "pandapower_note": f"loop timed on {min(pp_outages, len(outages))} outages, scaled",
            "max_dvm_pu": float(np.nanmax(diff)) if np.isfinite(diff).any() else None,
            "hai_converged": int(result.converged.sum()),
        }
    )

    # 96-step time series
    scale = profile(steps, PROFILE_LOW.get(name, 0.75))[:, None]
    load_p = scale * net.load.p_mw.to_numpy()[None, :]
    load_q = scale * net.load.q_mvar.to_numpy()[None, :]
    start = time.perf_counter()
    series = hai.grid.solve_batch(net, load_p_mw=load_p, load_q_mvar=load_q, device=device)
    t_hai = time.perf_counter() - start
    start = time.perf_counter()
    n = copy.deepcopy(net)
    worst = 0.0
    for k in range(pp_steps):
        n.load["p_mw"] = load_p[k]
        n.load["q_mvar"] = load_q[k]
        run_pp(n)
        worst = max(worst, float(np.nanmax(np.abs(series.vm_pu[k].numpy() - n.res_bus.vm_pu.to_numpy()))))
    t_loop = (time.perf_counter() - start) / pp_steps * steps
    rows.append(
        {
            "case": name,
            "workload": f"time series ({steps} steps)",
            "hai_s": t_hai,
            "pandapower_s": t_loop,
            "pandapower_note": f"loop timed on {pp_steps} steps, scaled" if pp_steps < steps else "",
            "max_dvm_pu": worst,
            "hai_converged": int(series.converged.sum()),
        }
    )
    if subset is None:
        rows.append(screening_row(name, net, device, loading_limit))
    ls2g = ls2g_times(net, outages, repeats)
    if ls2g is not None:
        rows[0]["lightsim2grid_s"] = ls2g["snapshot_s"]
        rows[0]["lightsim2grid_max_dvm_pu"] = ls2g["snapshot_max_dvm_pu"]
        rows[1]["lightsim2grid_s"] = ls2g["n1_s"]
    for row in rows:
        if "lightsim2grid_s" in row:
            row["ratio_hai_over_lightsim2grid"] = row["hai_s"] / row["lightsim2grid_s"]
        if "pandapower_s" in row:
            row["ratio_pandapower_over_hai"] = row["pandapower_s"] / row["hai_s"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="build/bench", help="folder for bench_powerflow.json")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--cases", nargs="+", default=["case118", "case1354pegase", "case9241pegase"])
    parser.add_argument("--full", action="store_true", help="no subsets for large cases (SUBSETS)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pp-outages", type=int, default=60, help="outages in the timed pandapower loop")
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument(
        "--loading-limit", type=float, default=80.0, help="line max_loading_percent of the screening run"
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    try:
        import lightsim2grid  # type: ignore[import-untyped]

        ls2g = (
            f"lightsim2grid {lightsim2grid.__version__}: raw ac_pf (model prebuilt), ContingencyAnalysisCPP"
        )
    except ImportError:
        ls2g = "not installed"
    rows = []
    load_before = os.getloadavg()
    for name in args.cases:
        subset = None if args.full else SUBSETS.get(name)
        rows.extend(
            bench_case(name, device, args.repeats, args.pp_outages, args.steps, args.loading_limit, subset)
        )
    header = f"{'case':<16} {'workload':<22} {'hai s':>9} {'pandapower s':>13} {'pp/hai':>7}"
    print(header + f" {'ls2g s':>9} {'hai/ls2g':>9} {'max dvm pu':>11}")
    for row in rows:
        if "recall" in row:
            print(
                f"{row['case']:<16} {row['workload']:<22} {row['hai_s']:9.4f} exact {row['exact_s']:.4f} s, "
                f"{row['screened']} screened, {row['violations']} violations, recall {row['recall']:.3f}, "
                f"precision {row['precision']:.3f}"
            )
            continue
        dvm = row["max_dvm_pu"]
        ls_s = f"{row['lightsim2grid_s']:9.4f}" if "lightsim2grid_s" in row else f"{'-':>9}"
        ls_r = f"{row['ratio_hai_over_lightsim2grid']:9.2f}" if "lightsim2grid_s" in row else f"{'-':>9}"
        print(
            f"{row['case']:<16} {row['workload']:<22} {row['hai_s']:9.4f} {row['pandapower_s']:13.4f} "
            f"{row['ratio_pandapower_over_hai']:7.2f} {ls_s} {ls_r} "
            f"{dvm if dvm is None else f'{dvm:.1e}':>11}"
        )
        if "parity_dvm_pu" in row:
            print(
                f"{'':<16} exact-mode parity vs pandapower.runpp(tolerance_mva=1e-10): "
                f"max |dvm| {row['parity_dvm_pu']:.1e} pu, max |dva| {row['parity_dva_deg']:.1e} deg"
            )
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "pandapower": pp.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "lightsim2grid": ls2g,
        "load_average_1_5_15min_before": load_before,
        "load_average_1_5_15min_after": os.getloadavg(),
    }
    path = write_json(Path(args.out) / "bench_powerflow.json", {"meta": meta, "rows": rows})
    print(f"load average before {load_before}, after {os.getloadavg()}")
    print(f"lightsim2grid: {ls2g}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

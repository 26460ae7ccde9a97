"""hai.grid against every anchor a pandapower user would compare it with, side by side in one run.

Issue 13, item 4. Per network (default case1354pegase, case9241pegase and SimBench
1-EHV-mixed--0-sw) and workload, each anchor runs in the same process right after hai:

* **snapshot**: ``hai.grid.runpp`` against ``pandapower.runpp(lightsim2grid=False)`` (numba when
  it can be imported), ``pandapower.runpp(lightsim2grid=True)`` and lightsim2grid's own solver
  (``LSGrid.ac_pf`` on a model built beforehand: solver time only). Medians of ``--repeats``
  after one warm-up run (numba compiles there). N-1 and series: hai's and lightsim2grid's the
  same way (medians of ``--repeats`` after one warm-up call; a single call of hai's N-1 on
  case9241pegase varied 1.4-4.3 s here, with the variation in the kernel's page-fault time),
  pandapower's loops once (they take seconds to minutes). hai and pandapower include the model
  build and writing ``net.res_*``.
* **N-1** over ``--outages`` lines evenly spaced among the in-service ones: ``hai.grid.run_contingency``
  (bus voltages, line and trafo loadings per outage, pandapower-style aggregates) against a
  pandapower user's loop that toggles ``in_service`` on one net (no deep copy) around
  ``pandapower.runpp``, against ``pandapower.contingency.run_contingency`` (the same outages,
  its min/max aggregates, plus its N-0 run), and lightsim2grid's ``ContingencyAnalysisCPP``
  (model built beforehand; the time covers creating the analysis, adding the outages and
  computing; ``handle_disconnected_grid=True``, without which it returns zero voltages for
  every outage that cuts a bus off instead of solving the rest of the grid).
* **time series** of ``--steps`` steps: ``hai.grid.run_timeseries`` against a pandapower loop
  (write the step's loads and sgens, ``pandapower.runpp``) and lightsim2grid's ``TimeSeriesCPP``
  (model built beforehand; modify the injections, compute). The pegase cases scale their loads
  with a daily profile (case9241pegase from 0.9 to 1.0: below 0.9 without its generation it has
  no solution); the SimBench net runs the first day (96 quarter hours) of its own load and sgen
  profiles.

lightsim2grid's N-1 and time-series rows come twice: as its users run them on a model built
beforehand, and "incl. model build" with ``init_from_pandapower``'s time added, since every hai
call builds its model from the pandapower net (hai's times always include that).

Every solver converges to the same criterion: ∞-norm of the per-unit mismatch below 1e-8
(pandapower's ``tolerance_mva=1e-8``; hai's batch APIs take MVA, so 1e-8 × ``sn_mva``;
lightsim2grid's ``tol=1e-8``), at most 10 Newton iterations for the anchors. Max |Δvm| is
against pandapower on the scenarios both ran. Where a loop is timed on its first
``--pp-subset`` items of a large case (:data:`PP_SUBSET`), the time is scaled to the full count
and the row says so. lightsim2grid rows are "–" where it cannot take the net (SimBench EHV: 7
ext_grids; pandapower refuses ``lightsim2grid=True`` with several ext_grids and lightsim2grid's
``ac_pf`` returns no solution there). Ratios are hai / anchor: above 1 hai is slower.

    OMP_NUM_THREADS=1 python packages/hai-grid/benchmarks/bench_anchors.py --out build/bench
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
from hai.shared import write_json

warnings.filterwarnings("ignore")

TOL_PU = 1e-8
MAX_IT = 10
SIMBENCH_EHV = "1-EHV-mixed--0-sw"
#: Pandapower loops timed on this many outages / steps of the large case, then scaled.
PP_SUBSET: dict[str, dict[str, int]] = {"case9241pegase": {"outages": 30, "steps": 24}}
PROFILE_LOW = {"case9241pegase": 0.9}


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median time of ``repeats`` calls after one warm-up call, and the last call's output: for
    the fast N-1 and series rows (hai's and lightsim2grid's), where one call is noise-prone."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def load_net(name: str) -> Any:
    if name == SIMBENCH_EHV:
        import simbench  # type: ignore[import-untyped]

        return simbench.get_simbench_net(name)
    return hai.grid.load_case(name)


def injections(name: str, net: Any, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, n) load p, load q, sgen p for the time series."""
    if name == SIMBENCH_EHV:
        import simbench

        profiles = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
        load_p = profiles[("load", "p_mw")][net.load.index].to_numpy(dtype=float)[:steps]
        load_q = profiles[("load", "q_mvar")][net.load.index].to_numpy(dtype=float)[:steps]
        sgen_p = profiles[("sgen", "p_mw")][net.sgen.index].to_numpy(dtype=float)[:steps]
        return load_p, load_q, sgen_p
    low = PROFILE_LOW.get(name, 0.75)
    hours = np.arange(steps) * 24.0 / steps
    scale = (low + (1.0 - low) * np.sin((hours - 8.0) / 24.0 * 2 * np.pi) ** 2)[:, None]
    sgen_p = np.tile(net.sgen.p_mw.to_numpy(dtype=float), (steps, 1))
    return scale * net.load.p_mw.to_numpy()[None], scale * net.load.q_mvar.to_numpy()[None], sgen_p


def run_pp(net: Any, **kwargs: Any) -> None:
    pp.runpp(net, tolerance_mva=TOL_PU, max_iteration=MAX_IT, lightsim2grid=False, **kwargs)


def ls2g_model(net: Any) -> Any | None:
    """lightsim2grid's model of ``net`` (solved by pandapower first), or None if it cannot take it."""
    try:
        from lightsim2grid.gridmodel import init_from_pandapower  # type: ignore[import-untyped]
    except ImportError:
        return None
    solved = copy.deepcopy(net)
    for table in ("gen", "sgen", "load", "ext_grid", "storage"):  # SimBench stores limits as objects
        for column in solved[table].columns:
            if solved[table][column].dtype == object and column.startswith(("min_", "max_")):
                solved[table][column] = solved[table][column].astype(float)
    run_pp(solved)
    try:
        model = init_from_pandapower(solved)
        # the model build a user pays once per network (hai pays its own in every call)
        MODEL_BUILD_S[id(model)] = median_time(lambda: init_from_pandapower(solved), 3)
    except Exception:
        return None
    v = model.ac_pf(np.ones(len(net.bus), dtype=complex), MAX_IT, TOL_PU)
    return model if len(v) else None


#: seconds of lightsim2grid's ``init_from_pandapower`` per model (median of 3)
MODEL_BUILD_S: dict[int, float] = {}


def with_model_build(anchors: dict[str, dict[str, Any]], key: str, model: Any) -> None:
    """Add the row "<key> incl. model build": hai's time covers its model build, this one too."""
    build = MODEL_BUILD_S.get(id(model))
    if build is not None and anchors[key].get("s"):
        anchors[f"{key} incl. model build"] = {
            "s": anchors[key]["s"] + build,
            "max_dvm_pu": anchors[key].get("max_dvm_pu"),
            "note": f"+ init_from_pandapower {build:.4f} s",
        }


def max_dvm(a: np.ndarray, b: np.ndarray) -> float | None:
    d = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return float(np.nanmax(d)) if np.isfinite(d).any() else None


def row(
    name: str, workload: str, hai_s: float, anchors: dict[str, dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    for anchor in anchors.values():
        if anchor.get("s"):
            anchor["hai_over_anchor"] = hai_s / anchor["s"]
    return {"case": name, "workload": workload, "hai_s": hai_s, "anchors": anchors, **extra}


def bench_snapshot(name: str, net: Any, model: Any | None, repeats: int) -> dict[str, Any]:
    ours, theirs = copy.deepcopy(net), copy.deepcopy(net)
    t_hai = median_time(lambda: hai.grid.runpp(ours), repeats)
    t_pp = median_time(lambda: run_pp(theirs), repeats)
    anchors: dict[str, dict[str, Any]] = {
        "pandapower.runpp": {
            "s": t_pp,
            "max_dvm_pu": max_dvm(ours.res_bus.vm_pu, theirs.res_bus.vm_pu),
        }
    }
    if model is not None:
        with_ls = copy.deepcopy(net)
        t_ls = median_time(
            lambda: pp.runpp(with_ls, tolerance_mva=TOL_PU, max_iteration=MAX_IT, lightsim2grid=True), repeats
        )
        anchors["pandapower.runpp(lightsim2grid=True)"] = {
            "s": t_ls,
            "max_dvm_pu": max_dvm(with_ls.res_bus.vm_pu, theirs.res_bus.vm_pu),
        }
        v0 = np.ones(len(net.bus), dtype=complex)
        t_raw = median_time(lambda: model.ac_pf(v0.copy(), MAX_IT, TOL_PU), repeats)
        v = model.ac_pf(v0.copy(), MAX_IT, TOL_PU)
        anchors["lightsim2grid ac_pf (model prebuilt)"] = {
            "s": t_raw,
            "max_dvm_pu": max_dvm(np.abs(v), theirs.res_bus.vm_pu),
        }
    return row(name, "snapshot", t_hai, anchors)


def bench_n1(
    name: str, net: Any, model: Any | None, n_outages: int, pp_subset: int | None, repeats: int
) -> dict[str, Any]:
    in_service = net.line.index[net.line.in_service.to_numpy(dtype=bool)]
    pick = np.linspace(0, len(in_service) - 1, min(n_outages, len(in_service))).round().astype(int)
    lines = [int(i) for i in in_service[pick]]
    t_hai, result = median_timed(
        lambda: hai.grid.run_contingency(net, lines=lines, trafos=[], tolerance_mva=TOL_PU * net.sn_mva),
        repeats,
    )
    k = len(lines) if pp_subset is None else min(pp_subset, len(lines))
    scaled = "" if k == len(lines) else f"timed on the first {k} outages, scaled to {len(lines)}"
    # a pandapower user's loop: toggle in_service on one net (no deep copy per outage)
    loop_net = copy.deepcopy(net)
    run_pp(loop_net)  # warm-up (numba compiles here)
    ref_vm = []

    def loop() -> None:
        for index in lines[:k]:
            loop_net.line.at[index, "in_service"] = False
            try:
                run_pp(loop_net)
                ref_vm.append(loop_net.res_bus.vm_pu.to_numpy(dtype=float))
            except pp.LoadflowNotConverged:
                ref_vm.append(np.full(len(net.bus), np.nan))
            finally:
                loop_net.line.at[index, "in_service"] = True

    t_loop, _ = timed(loop)
    anchors: dict[str, dict[str, Any]] = {
        "pandapower loop (toggle in_service)": {
            "s": t_loop * len(lines) / k,
            "note": scaled,
            "max_dvm_pu": max_dvm(result.vm_pu[:k], np.array(ref_vm)),
        }
    }
    from pandapower.contingency import run_contingency  # type: ignore[import-untyped]

    cont_net = copy.deepcopy(net)
    t_cont, cont = timed(
        lambda: run_contingency(
            cont_net,
            {"line": {"index": lines[:k]}},
            pf_options={"tolerance_mva": TOL_PU, "max_iteration": MAX_IT, "lightsim2grid": False},
            pf_options_nminus1={"tolerance_mva": TOL_PU, "max_iteration": MAX_IT, "lightsim2grid": False},
        )
    )
    hai_max_vm = np.nanmax(result.vm_pu[:k], axis=0)
    anchors["pandapower.contingency.run_contingency"] = {
        "s": t_cont * len(lines) / k,
        "note": scaled + (" (includes its N-0 run)" if scaled else "includes its N-0 run"),
        # its bus max_vm_pu aggregates the N-1 cases (and the N-0 case)
        "max_dvm_pu": max_dvm(
            np.fmax(hai_max_vm, cont_net.res_bus.vm_pu.to_numpy(dtype=float)), cont["bus"]["max_vm_pu"]
        ),
    }
    if model is not None:
        from lightsim2grid.contingencyAnalysis import ContingencyAnalysisCPP  # type: ignore[import-untyped]

        positions = [int(net.line.index.get_loc(i)) for i in lines]  # lightsim2grid: lines first
        v0 = model.ac_pf(np.ones(len(net.bus), dtype=complex), MAX_IT, TOL_PU)
        holder: dict[str, Any] = {}

        def contingency() -> None:
            analysis = ContingencyAnalysisCPP(model)
            # by default it skips outages that cut a bus off (all-zero voltages: 43 of the 150 on
            # case1354pegase); pandapower and hai solve the rest of the grid there, so must it
            analysis.handle_disconnected_grid = True
            analysis.add_multiple_n1(positions)
            analysis.compute(v0.copy(), MAX_IT, TOL_PU)
            holder["v"] = analysis.get_voltages()

        t_ca, _ = median_timed(contingency, repeats)
        vm_ls = np.abs(holder["v"])
        unsolved = (vm_ls == 0).all(axis=1)
        vm_ls[vm_ls == 0] = np.nan  # cut-off buses (NaN in pandapower and hai)
        anchors["lightsim2grid ContingencyAnalysisCPP"] = {
            "s": t_ca,
            "max_dvm_pu": max_dvm(vm_ls[:k], np.array(ref_vm)),
            "note": f"{int(unsolved.sum())} outages not solved" if unsolved.any() else "",
        }
        with_model_build(anchors, "lightsim2grid ContingencyAnalysisCPP", model)
    return row(
        name,
        f"N-1 ({len(lines)} lines)",
        t_hai,
        anchors,
        hai_converged=int(np.sum(result.converged)),
    )


def bench_series(
    name: str, net: Any, model: Any | None, steps: int, pp_subset: int | None, repeats: int
) -> dict[str, Any]:
    load_p, load_q, sgen_p = injections(name, net, steps)
    steps = len(load_p)
    t_hai, series = median_timed(
        lambda: hai.grid.run_timeseries(
            net, load_p, load_q, sgen_p if len(net.sgen) else None, tolerance_mva=TOL_PU * net.sn_mva
        ),
        repeats,
    )
    k = steps if pp_subset is None else min(pp_subset, steps)
    loop_net = copy.deepcopy(net)
    run_pp(loop_net)
    worst: list[float] = []

    def loop() -> None:
        for s in range(k):
            loop_net.load["p_mw"] = load_p[s]
            loop_net.load["q_mvar"] = load_q[s]
            if len(net.sgen):
                loop_net.sgen["p_mw"] = sgen_p[s]
            run_pp(loop_net)
            d = max_dvm(series.vm_pu[s].numpy(), loop_net.res_bus.vm_pu.to_numpy(dtype=float))
            worst.append(np.nan if d is None else d)

    t_loop, _ = timed(loop)
    anchors: dict[str, dict[str, Any]] = {
        "pandapower loop (runpp per step)": {
            "s": t_loop * steps / k,
            "note": "" if k == steps else f"timed on the first {k} steps, scaled to {steps}",
            "max_dvm_pu": float(np.nanmax(worst)) if worst else None,
        }
    }
    if model is not None:
        from lightsim2grid.timeSerie import TimeSeriesCPP  # type: ignore[import-untyped]

        gen_p = np.tile(np.array([g.target_p_mw for g in model.get_generators()]), (steps, 1))
        n_sgen = len(list(model.get_static_generators()))
        v0 = model.ac_pf(np.ones(len(net.bus), dtype=complex), MAX_IT, TOL_PU)
        holder: dict[str, Any] = {}

        def ls_series() -> None:
            ts = TimeSeriesCPP(model)
            ts.modify_gen_p(np.ascontiguousarray(gen_p))
            ts.modify_sgen_p(np.ascontiguousarray(sgen_p if n_sgen else np.zeros((steps, 0))))
            ts.modify_load_p(np.ascontiguousarray(load_p))
            ts.modify_load_q(np.ascontiguousarray(load_q))
            ts.compute(v0.copy(), MAX_IT, TOL_PU)
            holder["v"] = ts.get_voltages()

        t_ts, _ = median_timed(ls_series, repeats)
        anchors["lightsim2grid TimeSeriesCPP"] = {
            "s": t_ts,
            "max_dvm_pu": max_dvm(np.abs(holder["v"]), series.vm_pu.numpy()),
            "note": "max |dvm| against hai on all steps",
        }
        with_model_build(anchors, "lightsim2grid TimeSeriesCPP", model)
    converged = int(series.converged.sum())
    return row(name, f"time series ({steps} steps)", t_hai, anchors, hai_converged=converged)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="build/bench", help="folder for bench_anchors.json")
    parser.add_argument("--cases", nargs="+", default=["case1354pegase", "case9241pegase", SIMBENCH_EHV])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--outages", type=int, default=150)
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--full", action="store_true", help="no pandapower subsets (PP_SUBSET)")
    args = parser.parse_args(argv)
    try:
        import numba  # type: ignore[import-untyped]

        numba_version = numba.__version__
    except ImportError:
        numba_version = "not importable (pandapower runs without it)"
    try:
        import lightsim2grid  # type: ignore[import-untyped]

        ls2g_version = lightsim2grid.__version__
    except ImportError:
        ls2g_version = "not installed"
    load_before = os.getloadavg()
    rows = []
    for name in args.cases:
        net = load_net(name)
        model = ls2g_model(net)
        subset = None if args.full else PP_SUBSET.get(name)
        rows.append(bench_snapshot(name, net, model, args.repeats))
        rows.append(
            bench_n1(
                name, net, model, args.outages, None if subset is None else subset["outages"], args.repeats
            )
        )
        rows.append(
            bench_series(
                name, net, model, args.steps, None if subset is None else subset["steps"], args.repeats
            )
        )
        for r in rows[-3:]:
            print_row(r)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pandapower": pp.__version__,
        "numba": numba_version,
        "lightsim2grid": ls2g_version,
        "load_average_1_5_15min_before": load_before,
        "load_average_1_5_15min_after": os.getloadavg(),
    }
    path = write_json(Path(args.out) / "bench_anchors.json", {"meta": meta, "rows": rows})
    print(f"numba {numba_version}; lightsim2grid {ls2g_version}; torch threads {torch.get_num_threads()}")
    print(f"load average before {load_before}, after {os.getloadavg()}; wrote {path}")
    return 0


def print_row(r: dict[str, Any]) -> None:
    print(f"{r['case']:<18} {r['workload']:<24} hai {r['hai_s']:9.4f} s")
    for anchor, a in r["anchors"].items():
        ratio = a.get("hai_over_anchor")
        dvm = a.get("max_dvm_pu")
        print(
            f"{'':<18}   {anchor:<42} {a['s']:9.4f} s  hai/anchor {ratio:7.2f}  "
            f"max|dvm| {'-' if dvm is None else f'{dvm:.1e}'}  {a.get('note', '')}"
        )


if __name__ == "__main__":
    raise SystemExit(main())

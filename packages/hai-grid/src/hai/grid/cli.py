"""``hai grid ...``: power flow of a pandapower case from the command line.

Thin: each handler parses, calls the public API and prints (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from hai.shared import atomic_write
from hai.shared.checks import arg_positive_float, arg_positive_int
from hai.shared.cli import OneLineArgumentParser, print_json
from hai.shared.files import check_output_path

#: Result tables whose ``pl_mw`` are the network's losses (pandapower's branch elements).
LOSS_TABLES = ("res_line", "res_trafo", "res_trafo3w", "res_impedance", "res_dcline")


def _save_png(fig: Any, path: str) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def network_losses_mw(net: Any) -> float:
    """Active power losses (MW, positive): the sum of ``pl_mw`` over every branch result table.

    >>> from hai.grid import load_case, runpp
    >>> net = load_case("case9")
    >>> _ = runpp(net)
    >>> round(network_losses_mw(net), 3)
    4.955
    """
    total = 0.0
    for table in LOSS_TABLES:
        df = net.get(table) if hasattr(net, "get") else None
        if df is not None and len(df) and "pl_mw" in df:
            total += float(df.pl_mw.sum(skipna=True))
    return total


def _cmd_pf(args: argparse.Namespace) -> int:
    from hai.grid.cases import load_case
    from hai.grid.powerflow import runpp

    check_output_path(args.plot)
    net = load_case(args.case)
    start = time.perf_counter()
    info = runpp(
        net,
        method=args.method,
        tolerance_mva=args.tolerance_mva,
        init=args.init,
        device=args.device,
        **({} if args.max_iteration is None else {"max_iteration": args.max_iteration}),
    )
    seconds = time.perf_counter() - start
    if args.plot:
        from hai.grid.plots import plot_power_flow

        _save_png(plot_power_flow(net, title=f"{args.case}: AC power flow (hai.grid)"), args.plot)
    res = net.res_bus
    losses = network_losses_mw(net)
    summary = {
        "case": args.case,
        "converged": info.converged,
        "method": info.method,
        "iterations": info.iterations,
        "max_mismatch_mva": info.max_mismatch_mva,
        "device": info.device,
        "seconds": seconds,
        "n_bus": len(net.bus),
        "vm_pu_min": float(res.vm_pu.min()),
        "vm_pu_max": float(res.vm_pu.max()),
        "losses_mw": losses,
    }
    if args.json:
        print_json(
            {
                **summary,
                "res_bus": {
                    "index": [int(i) for i in res.index],
                    "vm_pu": res.vm_pu.tolist(),
                    "va_degree": res.va_degree.tolist(),
                    "p_mw": res.p_mw.tolist(),
                    "q_mvar": res.q_mvar.tolist(),
                },
            }
        )
        return 0
    print(
        f"{args.case}: converged with {info.method} in {info.iterations} iterations "
        f"({seconds * 1e3:.1f} ms on {info.device}), ∞-norm mismatch {info.max_mismatch_mva:.2e} MVA"
    )
    vm_range = f"{summary['vm_pu_min']:.4f} … {summary['vm_pu_max']:.4f}"
    print(f"buses {len(net.bus)}, vm_pu {vm_range}, losses {losses:.3f} MW")
    print(f"{'bus':>6} {'vm_pu':>8} {'va_degree':>10} {'p_mw':>10} {'q_mvar':>10}")
    for index, row in res.iterrows():
        print(f"{index:>6} {row.vm_pu:8.5f} {row.va_degree:10.4f} {row.p_mw:10.3f} {row.q_mvar:10.3f}")
    return 0


def daily_profile(steps: int) -> list[float]:
    """A load factor per step over one day: 0.75 at night, 1.0 in the afternoon."""
    import numpy as np

    hours = np.arange(steps) * 24.0 / steps
    return (0.75 + 0.25 * np.sin((hours - 8.0) / 24.0 * 2 * np.pi) ** 2).tolist()


def _cmd_timeseries(args: argparse.Namespace) -> int:
    import numpy as np

    from hai.grid.cases import load_case
    from hai.grid.timeseries import run_timeseries

    check_output_path(args.plot)
    net = load_case(args.case)
    factors = np.asarray(daily_profile(args.steps))[:, None]
    load_p = factors * net.load.p_mw.to_numpy(dtype=float)[None, :]
    load_q = factors * net.load.q_mvar.to_numpy(dtype=float)[None, :]
    start = time.perf_counter()
    series = run_timeseries(net, load_p, load_q, device=args.device, progress_bar=True)
    seconds = time.perf_counter() - start
    vm = series.vm_pu.numpy()
    rows = [
        {
            "step": k,
            "load_factor": float(factors[k, 0]),
            "converged": bool(series.converged[k]),
            "iterations": int(series.iterations[k]),
            "vm_pu_min": float(np.nanmin(vm[k])) if series.converged[k] else None,
            "vm_pu_max": float(np.nanmax(vm[k])) if series.converged[k] else None,
        }
        for k in range(args.steps)
    ]
    if args.plot:
        from hai.grid.plots import plot_series_voltages

        _save_png(plot_series_voltages(vm, title=f"{args.case}: {args.steps}-step time series"), args.plot)
    if args.json:
        print_json({"case": args.case, "steps": args.steps, "seconds": seconds, "results": rows})
        return 0
    converged = int(series.converged.sum())
    print(f"{args.case}: {converged}/{args.steps} steps converged in {seconds:.2f} s (warm starts)")
    print(f"{'step':>5} {'load':>6} {'iter':>5} {'vm_min':>8} {'vm_max':>8}")
    for row in rows:
        lo = "nan" if row["vm_pu_min"] is None else f"{row['vm_pu_min']:.5f}"
        hi = "nan" if row["vm_pu_max"] is None else f"{row['vm_pu_max']:.5f}"
        print(f"{row['step']:>5} {row['load_factor']:6.3f} {row['iterations']:>5} {lo:>8} {hi:>8}")
    return 0


def _cmd_n1(args: argparse.Namespace) -> int:
    import numpy as np

    from hai.grid.cases import load_case
    from hai.grid.contingency import run_contingency

    check_output_path(args.plot)
    net = load_case(args.case)
    start = time.perf_counter()
    result = run_contingency(net, device=args.device, screening=args.screening)
    seconds = time.perf_counter() - start
    if args.plot:
        from hai.grid.plots import plot_contingency_voltages

        fig = plot_contingency_voltages(result.vm_pu, title=f"{args.case}: N-1 bus voltages")
        _save_png(fig, args.plot)
    with np.errstate(all="ignore"):
        min_vm = [None if np.isnan(v) else float(v) for v in np.nanmin(result.vm_pu, axis=1)]
    summary = {
        "case": args.case,
        "outages": len(result.outages),
        "converged": int(result.converged.sum()),
        "islanded": int(result.islanded.sum()),
        "seconds": seconds,
        "violations": len(result.violations),
        "screened": int(result.screened.sum()),
    }
    if args.json:
        print_json(
            {
                **summary,
                "per_outage": [
                    {
                        "element": element,
                        "index": index,
                        "converged": bool(result.converged[b]),
                        "islanded": bool(result.islanded[b]),
                        "screened": bool(result.screened[b]),
                        "min_vm_pu": min_vm[b],
                    }
                    for b, (element, index) in enumerate(result.outages)
                ],
                "bus_min_vm_pu": result.bus_min_vm_pu.tolist(),
                "bus_max_vm_pu": result.bus_max_vm_pu.tolist(),
                "line_max_loading_percent": result.line_max_loading_percent.tolist(),
                "trafo_max_loading_percent": result.trafo_max_loading_percent.tolist(),
                "violations": result.violations,
            }
        )
        return 0
    print(
        f"{args.case}: {summary['outages']} outages in {seconds:.2f} s, {summary['converged']} converged, "
        f"{summary['islanded']} islanding, {summary['violations']} limit violations"
        + (f", {summary['screened']} screened (stopped early)" if args.screening else "")
    )
    lowest = [np.inf if v is None else v for v in min_vm]
    order = [int(b) for b in np.argsort(lowest, kind="stable")[:10]]
    print(f"{'outage':>14} {'min vm_pu':>10} {'islanded':>9} {'converged':>10}")
    for b in order:
        element, index = result.outages[b]
        vm = "nan" if min_vm[b] is None else f"{min_vm[b]:.5f}"
        flags = f"{bool(result.islanded[b])!s:>9} {bool(result.converged[b])!s:>10}"
        print(f"{element + ' ' + str(index):>14} {vm:>10} {flags}")
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``hai grid`` subcommands to ``parser``."""
    sub = parser.add_subparsers(
        dest="grid_command", metavar="COMMAND", required=True, parser_class=OneLineArgumentParser
    )
    p = sub.add_parser("pf", help="AC power flow of a pandapower case (case118) or JSON file")
    p.add_argument("case", metavar="CASE", help="pandapower case name (case118) or a pandapower .json file")
    p.add_argument("--method", default="auto", choices=["auto", "nr", "dpf", "dpf+nr"])
    p.add_argument("--init", default="auto", choices=["auto", "dc", "flat"])
    p.add_argument(
        "--tolerance-mva",
        type=arg_positive_float,
        default=1e-8,
        help="pandapower's tolerance_mva: bound on the ∞-norm per-unit mismatch (default 1e-8, at most 0.1)",
    )
    p.add_argument(
        "--max-iteration",
        type=arg_positive_int(maximum=100_000),
        default=None,
        help="Newton steps (default 10, pandapower's) or first-order steps for --method dpf (1000)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--plot", metavar="PNG", help="save the voltage profile and branch loadings")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_pf)

    p = sub.add_parser("n1", help="N-1 of all in-service lines and transformers, as one batch")
    p.add_argument("case", metavar="CASE", help="pandapower case name (case118) or a pandapower .json file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--plot", metavar="PNG", help="save the per-bus voltage range over outages")
    p.add_argument(
        "--screening",
        action="store_true",
        help="stop each outage once its limit violations are certain (approximate values, exact violations)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_n1)

    p = sub.add_parser("timeseries", help="a daily load profile on a case, warm-started step by step")
    p.add_argument("case", metavar="CASE", help="pandapower case name (case118) or a pandapower .json file")
    p.add_argument(
        "--steps", type=arg_positive_int(maximum=100_000), default=96, help="steps over one day (default 96)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--plot", metavar="PNG", help="save the min/max bus voltage per step")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_timeseries)

    # AutoPQ: `hai grid autopq fit|predict|evaluate|tune` and `hai grid risk` (their own module)
    from hai.grid.autopq.cli import register as register_autopq
    from hai.grid.autopq.cli import register_risk

    register_autopq(sub)
    register_risk(sub)

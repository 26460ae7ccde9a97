"""``hai scale energy-sweep`` and ``hai scale energy-report``.

Registered by :func:`hai.scale.cli.register` through :func:`add_energy_commands`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hai.shared import InputError, atomic_path, write_json
from hai.shared.checks import arg_positive_float
from hai.shared.cli import print_json


def _workload(text: str) -> str:
    from hai.scale.energy.spec import WORKLOADS, is_user_workload

    if text in WORKLOADS or is_user_workload(text):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown workload {text!r}: one of {', '.join(WORKLOADS)}, or module:function"
    )


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,2, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _print_report(out: dict[str, Any]) -> None:
    kind = out["device_kind"]
    print(f"{len(out['points'])} point(s) on {out['machine'].get('cpu', '?')} ({kind})")
    for p in out["points"]:
        energy = "energy unavailable" if p["energy_j"] is None else f"{p['energy_j']:.1f} J"
        print(
            f"  {p['name']:<14} {p['wall_s']:8.2f} s  {p['device_hours']:.3e} {kind}-h  "
            f"{p['samples_per_device_hour']:.3g} samples/{kind}-h  {energy}"
        )
    if out["fit"] is None:
        print("no fit: energy unavailable (" + "; ".join(out["energy_unavailable"]) + ")")
    else:
        fit = out["fit"]
        lo, hi = fit["slope_ci"]
        slope, intercept = fit["slope"], fit["intercept"]
        print(f"E = {slope:.4g} J per {kind}-hour (95 % CI {lo:.4g}..{hi:.4g}) + {intercept:.4g} J")
        print(f"R² = {fit['r2']:.4f} over {fit['n']} points")


def _write_figure(rows: list[dict[str, Any]], path: Path) -> None:
    from hai.scale.energy import report_figures

    fig = report_figures(rows)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from hai.scale.energy import SweepSpec, report, run_sweep

    spec = SweepSpec(
        workload=args.workload,
        world_sizes=args.world_sizes,
        global_batches=args.global_batches,
        local_batches=args.local_batches,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
    )
    if args.submitit:
        from hai.scale.energy import submit_sweep

        jobs = submit_sweep(spec, args.table.parent / f"{args.table.stem}-slurm", partition=args.partition)
        print(f"submitted {len(jobs)} job(s); collect them with hai.scale.energy.collect_submitted")
        return 0
    table = run_sweep(spec, args.table, timeout_s=args.timeout)
    out = report(table.rows)
    if args.json:
        print_json(out)
    else:
        _print_report(out)
        print(f"table: {args.table}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from hai.scale.energy import read_table, report

    table = read_table(args.table)
    out = report(table.rows)
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise InputError(f"--out {args.out} is a file", hint="give a folder for the report")
        write_json(args.out / "energy_report.json", out)
        try:
            _write_figure(table.rows, args.out / "energy_sweep.png")
        except ImportError:
            print("(no figure: matplotlib is not installed)")
    if args.json:
        print_json(out)
    else:
        _print_report(out)
    return 0


def add_energy_commands(sub: Any) -> None:
    """Add ``energy-sweep`` and ``energy-report`` to the ``hai scale`` subparsers ``sub``."""
    from hai.scale.energy.spec import WORKLOADS

    p = sub.add_parser(
        "energy-sweep",
        help="sweep world size × global batch × local batch; time and energy of each training",
        description="Run (or resume) an energy sweep of data-parallel training into a results table.",
    )
    p.add_argument(
        "--workload",
        default="digits",
        type=_workload,
        help=f"{', '.join(WORKLOADS)} or your own as module:function (default digits)",
    )
    p.add_argument("--world-sizes", type=_ints, default=(1, 2), help="e.g. 1,2 (default)")
    p.add_argument("--global-batches", type=_ints, default=(64, 128, 256), help="default 64,128,256")
    p.add_argument("--local-batches", type=_ints, default=(16, 32), help="default 16,32")
    p.add_argument("--epochs", type=arg_positive_float, default=3.0, help="default 3")
    p.add_argument("--lr", type=arg_positive_float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", type=Path, default=Path("energy_sweep.jsonl"), help="results table (resumed)")
    p.add_argument("--timeout", type=arg_positive_float, default=1800.0, help="seconds per point")
    p.add_argument("--submitit", action="store_true", help="submit every point to SLURM through submitit")
    p.add_argument("--partition", default=None, help="SLURM partition (with --submitit)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=_cmd_sweep, _parser=p)

    r = sub.add_parser(
        "energy-report",
        help="table, fit and figures of an energy-sweep results table",
        description="Report an energy sweep: per point, the fit E = a·device-hours + b, and figures.",
    )
    r.add_argument("table", type=Path, help="the results table of hai scale energy-sweep")
    r.add_argument("--out", type=Path, default=None, help="folder for energy_report.json and the figure")
    r.add_argument("--json", action="store_true", help="print the report as one JSON object")
    r.set_defaults(handler=_cmd_report, _parser=r)

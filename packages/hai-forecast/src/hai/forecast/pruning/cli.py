"""``hai forecast prune-study`` and ``hai forecast zoo``: the pruning study and the zoo's models.

Thin: parse, load the data (a built-in name or a CSV), call :func:`hai.forecast.pruning.run_study`,
print the table (``--json`` for machines). :func:`add_commands` adds both to the subparsers of
``hai forecast``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hai.shared import InputError
from hai.shared.checks import arg_nonnegative_int, arg_positive_int
from hai.shared.cli import print_json

DATA_HELP = (
    "synthetic (7 columns, daily and weekly seasons), simbench (7 SimBench load profiles, ECL-like), "
    "a hai.forecast data set name (vic_elec, simbench_load:H0-A, …) or a CSV path"
)


def load_study_data(
    spec: str, time_column: str = "0", columns: list[str] | None = None, sep: str | None = None
) -> Any:
    """The series named by ``spec`` (see ``--data``)."""
    from hai.forecast.data import read_csv
    from hai.forecast.datasets import load
    from hai.forecast.zoo.data import simbench_panel, synthetic_multiseasonal

    if spec.endswith(".csv") or os.path.isfile(spec):
        if not os.path.isfile(spec):
            raise InputError(f"no such CSV file: {spec}")
        tc: str | int = int(time_column) if time_column.isdigit() else time_column
        kwargs: dict[str, Any] = {"sep": sep} if sep else {}
        return read_csv(spec, time_column=tc, columns=columns, fill="interpolate", **kwargs)
    if spec == "synthetic":
        return synthetic_multiseasonal()
    if spec == "simbench":
        return simbench_panel()
    return load(spec).y


def _sparsity(text: str) -> float:
    from hai.forecast.pruning.unstructured import check_sparsity

    try:
        return check_sparsity(float(text))
    except (ValueError, InputError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_prune_study(args: argparse.Namespace) -> int:
    from hai.forecast.pruning.study import StudySpec, run_study

    if args.horizon % args.cycle_length or args.history % args.cycle_length:
        raise InputError(
            f"--history {args.history} and --horizon {args.horizon} must be multiples of --cycle-length "
            f"{args.cycle_length}",
            hint="e.g. --history 96 --horizon 96/192/336/720 with --cycle-length 24",
        )
    y = load_study_data(args.data, args.time_column, args.value_column, args.sep)
    spec = StudySpec(
        models=tuple(args.models),
        methods=tuple(args.methods),
        sparsities=tuple(args.sparsity),
        finetune_epochs=args.finetune_epochs,
        epochs=args.epochs,
        cycle_length=args.cycle_length,
        history_cycles=args.history // args.cycle_length,
        horizon_cycles=args.horizon // args.cycle_length,
        stride=args.stride,
        eval_stride=args.eval_stride,
        scope=args.scope,
        structured_targets=tuple(args.targets) if args.targets else None,
        lr=args.lr,
        seed=args.seed,
        data=Path(args.data).name if os.path.isfile(args.data) else args.data,
    )
    result = run_study(y, args.out, spec, show_progress=not args.json)
    columns = [
        "model",
        "method",
        "sparsity",
        "status",
        "weight_sparsity",
        "parameter_fraction",
        "mse_dense",
        "mse_pruned",
        "mse_finetuned",
        "mae_finetuned",
        "mse_seasonal_naive",
        "macs",
        "macs_ratio",
        "latency_s",
        "latency_ratio",
        "size_bytes",
        "sparse_size_bytes",
    ]
    table = result.table
    failed = table[table["status"] != "ok"] if "status" in table else table.iloc[:0]
    if args.json:
        from hai.forecast.pruning.study import summary_rows

        print_json(
            {"out": str(result.out), "figures": [str(p) for p in result.figures], "rows": summary_rows(table)}
        )
    else:
        shown = [c for c in columns if c in table.columns]
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        for row in failed.to_dict(orient="records"):
            print(f"failed: {row['model']} {row['method']} {row['sparsity']:g}: {row.get('error')}")
        print(f"table: {result.out / 'table.csv'}" + "".join(f"\nfigure: {p}" for p in result.figures))
    if len(failed):
        # the finished cells are kept; exit 1 so a script sees that the table is incomplete
        print(
            f"hai forecast prune-study: {len(failed)} of {len(table)} cells failed (status 'failed' in "
            f"{result.out / 'table.csv'}); rerun the same command to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    import sys

    from hai.forecast.zoo import SMALL, ZOO

    rows = []
    for name, cls in ZOO.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        rows.append(
            {
                "name": name,
                "class": f"{cls.__module__}.{cls.__name__}",
                "reference": doc,
                "small": SMALL[name],
            }
        )
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']:<12} {row['reference']}")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``prune-study`` and ``zoo`` to ``hai forecast``'s subparsers ``sub``."""
    from hai.forecast.pruning.structured import TARGETS
    from hai.forecast.pruning.study import METHODS
    from hai.forecast.pruning.unstructured import SCOPES
    from hai.forecast.zoo import ZOO

    p = sub.add_parser(
        "prune-study", help="prune zoo models at several sparsities, fine-tune, measure the savings"
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=["patchtst", "autoformer"],
        choices=list(ZOO),
        metavar="MODEL",
        help=f"zoo models ({', '.join(ZOO)})",
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument(
        "--sparsity",
        nargs="+",
        type=_sparsity,
        default=[0.0, 0.25, 0.5, 0.75, 0.9, 0.95],
        help="fractions of weights (unstructured) or of heads/FFN channels (structured) removed, in [0, 1)",
    )
    p.add_argument("--finetune-epochs", type=arg_nonnegative_int(), default=3)
    p.add_argument(
        "--epochs", type=arg_nonnegative_int(), default=10, help="training epochs of the dense models"
    )
    p.add_argument("--data", default="synthetic", help=DATA_HELP)
    p.add_argument("--time-column", default="0", help="CSV: the timestamp column (name or number)")
    p.add_argument(
        "--value-column", action="append", default=None, help="CSV: a value column (repeat; default all)"
    )
    p.add_argument("--sep", default=None, help="CSV: the field separator")
    p.add_argument("--cycle-length", type=arg_positive_int(), default=24)
    p.add_argument("--history", type=arg_positive_int(), default=96, help="input steps (the protocol's 96)")
    p.add_argument("--horizon", type=arg_positive_int(), default=96, help="forecast steps (96/192/336/720)")
    p.add_argument("--stride", type=arg_positive_int(), default=1, help="steps between training windows")
    p.add_argument(
        "--eval-stride",
        type=arg_positive_int(),
        default=None,
        help="steps between test windows (default: the cycle length)",
    )
    p.add_argument("--scope", choices=list(SCOPES), default="global", help="unstructured pruning scope")
    p.add_argument(
        "--targets",
        nargs="+",
        choices=list(TARGETS),
        default=None,
        help="structured pruning: what to remove (default: each model's heads and FFN channels where "
        "its graph allows); a target a model cannot prune is refused before training",
    )
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    p.add_argument("--out", required=True, help="folder for the cells, the table and the figures (resumable)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(handler=_cmd_prune_study, _parser=p)

    z = sub.add_parser("zoo", help="list the zoo's forecasters and the papers they follow")
    z.add_argument("--json", action="store_true")
    z.set_defaults(handler=_cmd_zoo, _parser=z)

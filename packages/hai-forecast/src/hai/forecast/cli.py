"""``hai forecast ...``: train, backtest and predict from the command line.

Thin: each handler parses, calls the public API, prints (``--json`` for machines) and draws
the forecast / baseline / truth figure where asked.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from hai.shared import InputError, MissingPackageError, OutputError, atomic_path
from hai.shared.checks import arg_nonnegative_int, arg_positive_float, arg_positive_int
from hai.shared.cli import OneLineArgumentParser, print_json

MODEL_CHOICES = (
    "recycle",
    "transformer",
    "persistence",
    "seasonal_naive",
    "weekly_naive",
    "last_profile",
    "same_type_mean",
    "ten_day_mean",
    "ridge_arx",
    "lightgbm",
)


def _load_data(spec: str, args: argparse.Namespace) -> tuple[Any, str | None, str | None, str, Any]:
    """(series, country, subdiv, label, covariates or None) from a data-set name or a CSV path.

    A CSV with several numeric columns needs ``--value-column`` (the targets) or
    ``--covariates`` (the inputs, the other columns being the targets): an extra column such
    as a temperature is never forecast by accident.
    """
    from hai.forecast.data import read_csv, read_csv_with_covariates
    from hai.forecast.datasets import load

    if spec.endswith(".csv") or os.path.isfile(spec):
        time_column: str | int = args.time_column
        if isinstance(time_column, str) and time_column.isdigit():
            time_column = int(time_column)
        kwargs: dict[str, Any] = {"sep": args.sep} if args.sep is not None else {}
        if args.decimal is not None:
            kwargs["decimal"] = args.decimal
        options: dict[str, Any] = {
            "time_column": time_column,
            "columns": args.value_column,
            "fill": args.fill,
            "tz": args.tz,
            **kwargs,
        }
        covariates = None
        if args.covariates:
            frame, covariates = read_csv_with_covariates(spec, list(args.covariates), **options)
        else:
            frame = read_csv(spec, **options)
            if frame.shape[1] > 1 and args.value_column is None:
                names = ", ".join(map(str, frame.columns))
                raise InputError(
                    f"{Path(spec).name} has {frame.shape[1]} numeric columns ({names}): which are to be "
                    "forecast, and which are inputs?",
                    hint="name the target(s) with --value-column (repeat for several) and future-known "
                    "inputs such as a temperature with --covariates",
                )
        y: Any = frame.iloc[:, 0] if frame.shape[1] == 1 else frame
        return y, args.country, args.subdiv, Path(spec).name, covariates
    csv_only = [
        flag
        for flag, value in (
            ("--time-column", args.time_column != "0"),
            ("--value-column", args.value_column),
            ("--covariates", args.covariates),
            ("--sep", args.sep),
            ("--decimal", args.decimal),
            ("--tz", args.tz),
        )
        if value
    ]
    if csv_only:
        raise InputError(
            f"{', '.join(csv_only)} apply to CSV files, and --data {spec} is a built-in data set"
        )
    data = load(spec)
    country = args.country if args.country is not None else data.country
    subdiv = args.subdiv if args.subdiv is not None else data.subdiv
    return data.y, country, subdiv, data.name, None


def _make_model(args: argparse.Namespace, country: str | None, subdiv: str | None) -> Any:
    from hai.forecast import REGRESSIONS, ReCycle, StepTransformer, make_baseline

    common: dict[str, Any] = {
        "cycle_length": args.cycle_length,
        "horizon_cycles": args.horizon_cycles,
        "country": country,
        "subdiv": subdiv,
        "fill": args.fill,
    }
    if args.model in ("recycle", "transformer"):
        neural: dict[str, Any] = {
            **common,
            "history_cycles": args.history_cycles,
            "d_model": args.d_model,
            "nhead": args.nhead,
            "dim_feedforward": args.dim_feedforward,
            "loss": args.loss,
            "calibration": args.calibration,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "patience": args.patience,
            "seed": args.seed,
            "device": args.device,
            "threads": args.threads or None,
        }
        if args.model == "recycle":
            return ReCycle(baseline=args.baseline, use_network=not args.no_network, **neural)
        return StepTransformer(**neural)
    if args.model in REGRESSIONS:
        if args.model == "ridge_arx":
            common["alpha"] = args.alpha
        else:
            common["seed"] = args.seed
        return REGRESSIONS[args.model](**common)
    return make_baseline(args.model, **common)


def _plot_format(path: str | os.PathLike[str]) -> str:
    """The figure format named by ``path``'s suffix, checked before any work is done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise MissingPackageError(
            f"writing the figure {path} needs matplotlib, which is not installed",
            hint="pip install 'hai-forecast[demo]', or leave out the figure",
        ) from None
    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix not in supported:
        raise InputError(
            f"cannot write a figure as {path}: matplotlib does not know the format {suffix!r}",
            hint=f"use one of {', '.join(sorted(supported))}",
        )
    return suffix


def _check_output(path: str | os.PathLike[str]) -> None:
    """Refuse an output path that cannot be a file before training for minutes."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder", hint="give a file name, not a folder")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {target}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise OutputError(f"cannot write {target}: permission denied in {parent}")
            break


def _check_out_folder(path: str | os.PathLike[str]) -> None:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: it is a file, not a folder", hint="give a folder")
    for name in ("backtest.json", "backtest.png"):
        _check_output(folder / name)


def _figure(window: Any, title: str, path: Path) -> Path:
    """Draw ``window``'s columns and write the figure to ``path`` atomically."""
    fmt = _plot_format(path)
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(9, 3.6))
    ax = fig.subplots()
    styles = {
        "truth": ("k", "-"),
        "forecast": ("C0", "-"),
        "baseline": ("C1", "--"),
        "seasonal_naive": ("C2", ":"),
    }
    quantiles = [c for c in window.columns if str(c).startswith("q")]
    if len(quantiles) >= 2:
        ax.fill_between(
            window.index,
            window[quantiles[0]],
            window[quantiles[-1]],
            color="C0",
            alpha=0.2,
            label=f"{quantiles[0]}–{quantiles[-1]}",
        )
    for column in window.columns:
        if column in quantiles:
            continue
        color, line = styles.get(column, ("C3", "-"))
        ax.plot(window.index, window[column], color=color, linestyle=line, label=column.replace("_", " "))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=fmt)
    return path


def _test_fraction(args: argparse.Namespace, *, allow_zero: bool) -> float:
    value = args.test_fraction
    low_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and low_ok and value < 1):
        allowed = "in [0, 1) (0 trains on the whole series)" if allow_zero else "strictly between 0 and 1"
        raise InputError(f"--test-fraction must be a number {allowed}, got {value}")
    return float(value)


def _cmd_train(args: argparse.Namespace) -> int:
    from hai.forecast import save_model

    test_fraction = _test_fraction(args, allow_zero=True)
    _check_output(args.out)
    y, country, subdiv, label, covariates = _load_data(args.data, args)
    n_cycles = len(y) // args.cycle_length
    n_test = 0 if test_fraction == 0 else max(1, round(n_cycles * test_fraction))
    if n_cycles - n_test < 1:
        raise InputError(
            f"the series has {n_cycles} whole cycles of {args.cycle_length} steps: nothing is left to train "
            f"on after holding out {n_test}",
            hint="give a longer series or a smaller --test-fraction",
        )
    n_train = (n_cycles - n_test) * args.cycle_length
    train = y.iloc[len(y) % args.cycle_length :].iloc[:n_train]
    model = _make_model(args, country, subdiv).fit(train, covariates=covariates)
    save_model(model, args.out)
    result: dict[str, Any] = {
        "model": model.name,
        "data": label,
        "train_steps": len(train),
        "train_end": str(train.index[-1]),
        "checkpoint": str(args.out),
        "covariates": list(model.covariates_),
        "fit": model.fit_cost_.to_dict(),
    }
    if hasattr(model, "history_"):
        result.update(
            n_parameters=model.n_parameters_,
            best_epoch=model.best_epoch_,
            epochs_run=max((r.epoch for r in model.history_), default=0),
            epoch_time_s=model.epoch_time_s_,
            history=[r.to_dict() for r in model.history_],
        )
    if args.json:
        print_json(result)
        return 0
    with_covariates = f", covariates {', '.join(model.covariates_)}" if model.n_covariates else ""
    steps = f"{len(train)} steps{with_covariates}"
    print(f"{model.name} trained on {label} up to {result['train_end']} ({steps})")
    if hasattr(model, "history_") and model.history_:
        last = model.history_[-1]
        print(
            f"epochs: {result['epochs_run']} (best {model.best_epoch_}), "
            f"{model.epoch_time_s_:.3f} s per epoch, last validation loss {last.val_loss}"
        )
    print(f"saved {args.out}")
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from hai.forecast import backtest
    from hai.shared import write_json

    test_fraction = _test_fraction(args, allow_zero=False)
    if args.out:
        _check_out_folder(args.out)
        _plot_format("backtest.png")
    y, country, subdiv, label, covariates = _load_data(args.data, args)
    model = _make_model(args, country, subdiv)
    references: Any = "auto" if args.references == ["auto"] else [r for r in args.references if r != "none"]
    result = backtest(model, y, test_fraction=test_fraction, references=references, covariates=covariates)
    summary = {"data": label, **result.to_dict()}
    files: dict[str, str] = {}
    if args.out:
        out = Path(args.out)
        files["json"] = str(write_json(out / "backtest.json", summary))
        png = _figure(result.window(-1), f"{model.name} on {label}: last test window", out / "backtest.png")
        files["png"] = str(png)
    if args.json:
        print_json({**summary, "files": files})
        return 0
    with_covariates = f" with the covariates {', '.join(model.covariates_)}" if model.n_covariates else ""
    print(
        f"{model.name} on {label}{with_covariates}: {result.n_origins} forecasts "
        f"from {result.origins[0]} to {result.origins[-1]}"
    )
    rows = [("model", result.metrics)]
    if "baseline_metrics" in result.extra:
        rows.append((f"baseline ({result.extra['baseline']})", result.extra["baseline_metrics"]))
    rows += [(name, ref["metrics"]) for name, ref in result.references.items() if "metrics" in ref]
    print(f"{'':<28} {'MAE':>10} {'RMSE':>10} {'MAPE %':>8} {'MASE':>6} {'MASE-d':>6} {'NSE':>6} {'RPE':>6}")
    for name, m in rows:
        print(
            f"{name:<28} {m['mae']:>10.4g} {m['rmse']:>10.4g} {m['mape']:>8.2f} {m['mase']:>6.3f} "
            f"{m['mase_day']:>6.3f} {m['nse']:>6.3f} {m['rpe']:>6.3f}"
        )
    scores = result.extra.get("baseline_scores")
    if scores:
        listed = ", ".join(f"{name} {mae:.4g}" for name, mae in scores.items())
        print(f"baseline auto chose {result.extra['baseline']} (validation MAE: {listed})")
    for interval, covered in result.extra.get("interval_coverage", {}).items():
        lo, hi = (float(q[1:]) for q in interval.split("-"))
        print(f"interval {interval}: covers {covered:.1%} of the test values (nominal {hi - lo:.0%})")
    for name, ref in result.references.items():
        if "error" in ref:
            print(f"{name:<28} unavailable: {ref['error']}")
    print("MASE: over the weekly naive forecast (same hour last week); MASE-d: over the day before")
    if result.fit_cost is not None:
        energy = result.fit_cost.total_energy_j
        print(
            f"training {result.fit_cost.wall_s:.2f} s, energy "
            + (f"{energy:.1f} J" if energy is not None else "unavailable")
        )
    for kind, path in files.items():
        print(f"wrote {path} ({kind})")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from hai.forecast import NeuralForecaster, load_model

    for path in (args.out, args.plot):
        if path:
            _check_output(path)
    if args.plot:
        _plot_format(args.plot)
    model = load_model(args.checkpoint, device=args.device)
    if args.quantiles and not (isinstance(model, NeuralForecaster) and model.loss == "quantile"):
        raise InputError(
            f"--quantiles needs a model trained with --loss quantile; {args.checkpoint} holds a "
            f"{model.name} trained with "
            + (f"loss {model.loss!r}" if isinstance(model, NeuralForecaster) else "no loss"),
            hint="train with `hai forecast train --loss quantile`",
        )
    if model.n_covariates and not args.covariates:
        raise InputError(
            f"{args.checkpoint} holds a {model.name} trained with the covariates "
            f"{', '.join(model.covariates_)}, and no --covariates were given",
            hint=f"add --covariates {' '.join(model.covariates_)} (the CSV's last rows: their values "
            "over the forecast horizon, the targets left blank)",
        )
    if args.covariates and not model.n_covariates:
        raise InputError(
            f"{args.checkpoint} holds a {model.name} trained without covariates, and --covariates were given",
            hint="leave out --covariates, or train with them",
        )
    y, _, _, label, covariates = _load_data(args.data, args)
    forecast = model.predict(y, covariates=covariates)
    frame = (
        forecast.to_frame("forecast") if hasattr(forecast, "to_frame") and forecast.ndim == 1 else forecast
    )
    if hasattr(model, "baseline_") and frame.shape[1] == 1:
        frame["baseline"] = model.baseline_.predict(y).to_numpy()
    quantiles = None
    if args.quantiles:
        assert isinstance(model, NeuralForecaster)
        quantiles = model.predict_quantiles(y, covariates=covariates)
        frame = frame.join(quantiles)
    files: dict[str, str] = {}
    if args.out:
        with atomic_path(args.out) as tmp:
            frame.to_csv(tmp, index_label="time")
        files["csv"] = str(args.out)
    if args.plot:
        import pandas as pd  # type: ignore[import-untyped]

        recent = y.iloc[-2 * model.horizon :]
        recent = (
            recent.to_frame("truth") if recent.ndim == 1 else recent.iloc[:, :1].set_axis(["truth"], axis=1)
        )
        files["png"] = str(
            _figure(pd.concat([recent, frame]), f"{model.name} forecast after {label}", Path(args.plot))
        )
    if args.json:
        document: dict[str, Any] = {
            "model": model.name,
            "start": str(frame.index[0]),
            "end": str(frame.index[-1]),
            "forecast": {str(k): v for k, v in frame.iloc[:, 0].items()},
        }
        if quantiles is not None:
            document["quantiles"] = {
                str(c): {str(k): v for k, v in quantiles[c].items()} for c in quantiles.columns
            }
        print_json({**document, "files": files})
        return 0
    print(frame.to_string())
    for kind, path in files.items():
        print(f"wrote {path} ({kind})")
    return 0


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="vic_elec",
        help="vic_elec, simbench_load:H0-A, simbench_pv:PV3, synthetic, or a CSV file (default vic_elec)",
    )
    p.add_argument("--country", default=None, help="holiday calendar, e.g. DE (default: the data set's)")
    p.add_argument("--subdiv", default=None, help="holiday subdivision, e.g. VIC")
    p.add_argument(
        "--fill", default="raise", choices=("raise", "interpolate", "ffill"), help="gaps/NaNs (default raise)"
    )
    p.add_argument(
        "--time-column",
        default="0",
        help="CSV: the timestamp column, a name or a number (default 0, the first)",
    )
    p.add_argument(
        "--value-column",
        action="append",
        default=None,
        metavar="NAME",
        help="CSV: a column to forecast (repeat for several; default: every numeric column)",
    )
    p.add_argument(
        "--covariates",
        nargs="+",
        default=None,
        metavar="COLUMN",
        help="CSV: future-known input columns (e.g. temperature) for recycle, ridge_arx and lightgbm, "
        "never forecast; for predict the CSV's last rows hold their values over the horizon with the "
        "targets blank (default: none; a CSV with several numeric columns then needs --value-column)",
    )
    p.add_argument("--sep", default=None, help="CSV: the field separator (default ,)")
    p.add_argument("--decimal", default=None, help="CSV: the decimal mark (default .)")
    p.add_argument(
        "--tz",
        default=None,
        help="CSV: the time zone of the timestamps (default: timestamps with UTC offsets become UTC)",
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from hai.forecast.baselines import BASELINES

    p.add_argument("--model", default="recycle", choices=MODEL_CHOICES, help="default recycle")
    p.add_argument(
        "--baseline",
        default="auto",
        choices=(*BASELINES, "auto"),
        help="ReCycle's residual base (default auto: the recent-historic profile with the lowest "
        "validation MAE, one network per candidate)",
    )
    p.add_argument(
        "--no-network", action="store_true", help="ReCycle without its network: the baseline alone"
    )
    p.add_argument(
        "--cycle-length", type=arg_positive_int(100_000), default=24, help="steps per cycle (default 24)"
    )
    p.add_argument(
        "--history-cycles", type=arg_positive_int(10_000), default=7, help="cycles of history (default 7)"
    )
    p.add_argument(
        "--horizon-cycles", type=arg_positive_int(10_000), default=1, help="cycles forecast (default 1)"
    )
    p.add_argument("--d-model", type=arg_positive_int(8192), default=32, help="token width (default 32)")
    p.add_argument("--nhead", type=arg_positive_int(256), default=1, help="attention heads (default 1)")
    p.add_argument(
        "--dim-feedforward", type=arg_positive_int(65_536), default=96, help="feed-forward width (default 96)"
    )
    p.add_argument("--loss", default="l1", choices=("l1", "mse", "quantile"), help="default l1")
    p.add_argument(
        "--calibration",
        default="conformal",
        choices=("conformal", "none"),
        help="--loss quantile: calibrate the intervals on the validation days (default conformal)",
    )
    p.add_argument(
        "--epochs",
        type=arg_positive_int(100_000),
        default=200,
        help="maximum epochs (default 200; the baseline alone: --no-network)",
    )
    p.add_argument(
        "--patience", type=arg_positive_int(100_000), default=20, help="early-stopping patience (default 20)"
    )
    p.add_argument("--batch-size", type=arg_positive_int(1_000_000), default=32, help="default 32")
    p.add_argument("--lr", type=arg_positive_float, default=1e-3, help="learning rate (default 0.001)")
    p.add_argument(
        "--alpha", type=arg_positive_float, default=10.0, help="ridge_arx: the ridge penalty (default 10)"
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="last part held out: backtest in (0, 1), train in [0, 1) with 0 training on all (default 0.2)",
    )
    p.add_argument("--seed", type=arg_nonnegative_int(2**32 - 1), default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument(
        "--threads",
        type=arg_nonnegative_int(4096),
        default=1,
        help="torch CPU threads (default 1; 0 keeps torch's setting)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``hai forecast`` subcommands to ``parser``."""
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=OneLineArgumentParser)

    train = sub.add_parser(
        "train",
        help="train a forecaster on the first part of a series and save a checkpoint",
        description="Fit ReCycle, the token-per-step transformer or a baseline on all but the last "
        "--test-fraction of the series and write a safetensors checkpoint.",
    )
    _add_data_options(train)
    _add_model_options(train)
    train.add_argument("--out", default="forecast-model.safetensors", help="checkpoint path")
    train.set_defaults(handler=_cmd_train, _parser=train)

    bt = sub.add_parser(
        "backtest",
        help="rolling-origin backtest on the last part of a series (MAE, RMSE, MAPE, MASE, NSE, RPE)",
        description="Fit on the first part, forecast from every cycle of the test part, score the "
        "forecasts; with --out write backtest.json and a figure of forecast, baseline and truth.",
    )
    _add_data_options(bt)
    _add_model_options(bt)
    bt.add_argument("--out", default=None, help="folder for backtest.json and backtest.png")
    bt.add_argument(
        "--references",
        nargs="+",
        default=["auto"],
        choices=("auto", "none", "weekly_naive", "seasonal_naive", "last_profile", "ridge_arx", "lightgbm"),
        help="models scored on the same windows beside --model (default auto: weekly_naive, ridge_arx "
        "and lightgbm when installed; none: no references)",
    )
    bt.set_defaults(handler=_cmd_backtest, _parser=bt)

    pr = sub.add_parser(
        "predict",
        help="forecast the horizon after the end of a series with a saved model",
        description="Load a checkpoint from `hai forecast train` and forecast what follows the series.",
    )
    pr.add_argument("--checkpoint", required=True, help="a checkpoint written by `hai forecast train`")
    _add_data_options(pr)
    pr.add_argument("--device", default=None, help="override the saved device")
    pr.add_argument("--out", default=None, help="write the forecast as CSV")
    pr.add_argument(
        "--plot", default=None, help="write a figure of recent truth, forecast and baseline (PNG, PDF, SVG …)"
    )
    pr.add_argument(
        "--quantiles",
        action="store_true",
        help="add the quantile forecasts (q0.1, q0.5, q0.9 …) of a model trained with --loss quantile",
    )
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.set_defaults(handler=_cmd_predict, _parser=pr)

    from hai.forecast.pruning.cli import add_commands as add_pruning_commands

    add_pruning_commands(sub)

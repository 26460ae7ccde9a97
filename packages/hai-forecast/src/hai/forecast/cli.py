"""``hai forecast ...``: train, backtest and predict from the command line.

Thin: each handler parses, calls the public API, prints (``--json`` for machines) and draws
the forecast / baseline / truth figure where asked.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hai.shared.cli import print_json

MODEL_CHOICES = (
    "recycle",
    "transformer",
    "persistence",
    "seasonal_naive",
    "last_profile",
    "same_type_mean",
    "ten_day_mean",
)


def _load_data(spec: str, args: argparse.Namespace) -> tuple[Any, str | None, str | None, str]:
    """(series, country, subdiv, label) from a data-set name or a CSV path."""
    from hai.forecast.data import read_csv
    from hai.forecast.datasets import load

    if spec.endswith(".csv") or os.path.isfile(spec):
        frame = read_csv(spec, fill=args.fill)
        y: Any = frame.iloc[:, 0] if frame.shape[1] == 1 else frame
        return y, args.country, args.subdiv, Path(spec).name
    data = load(spec)
    country = args.country if args.country is not None else data.country
    subdiv = args.subdiv if args.subdiv is not None else data.subdiv
    return data.y, country, subdiv, data.name


def _make_model(args: argparse.Namespace, country: str | None, subdiv: str | None) -> Any:
    from hai.forecast import ReCycle, StepTransformer, make_baseline

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
    return make_baseline(args.model, **common)


def _figure(window: Any, title: str, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure as MplFigure
    except ImportError:
        return None
    fig = MplFigure(figsize=(9, 3.6))
    ax = fig.subplots()
    styles = {
        "truth": ("k", "-"),
        "forecast": ("C0", "-"),
        "baseline": ("C1", "--"),
        "seasonal_naive": ("C2", ":"),
    }
    for column in window.columns:
        color, line = styles.get(column, ("C3", "-"))
        ax.plot(window.index, window[column], color=color, linestyle=line, label=column.replace("_", " "))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _cmd_train(args: argparse.Namespace) -> int:
    from hai.forecast import save_model

    y, country, subdiv, label = _load_data(args.data, args)
    n_cycles = len(y) // args.cycle_length
    n_train = (n_cycles - max(1, round(n_cycles * args.test_fraction))) * args.cycle_length
    train = y.iloc[len(y) % args.cycle_length :].iloc[:n_train]
    model = _make_model(args, country, subdiv).fit(train)
    save_model(model, args.out)
    result: dict[str, Any] = {
        "model": model.name,
        "data": label,
        "train_steps": len(train),
        "train_end": str(train.index[-1]),
        "checkpoint": str(args.out),
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
    print(f"{model.name} trained on {label} up to {result['train_end']} ({len(train)} steps)")
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

    y, country, subdiv, label = _load_data(args.data, args)
    model = _make_model(args, country, subdiv)
    result = backtest(model, y, test_fraction=args.test_fraction)
    summary = {"data": label, **result.to_dict()}
    files: dict[str, str] = {}
    if args.out:
        out = Path(args.out)
        files["json"] = str(write_json(out / "backtest.json", summary))
        png = _figure(result.window(-1), f"{model.name} on {label}: last test window", out / "backtest.png")
        if png is not None:
            files["png"] = str(png)
    if args.json:
        print_json({**summary, "files": files})
        return 0
    print(
        f"{model.name} on {label}: {result.n_origins} forecasts "
        f"from {result.origins[0]} to {result.origins[-1]}"
    )
    rows = [("model", result.metrics)]
    if "baseline_metrics" in result.extra:
        rows.append((f"baseline ({result.extra['baseline']})", result.extra["baseline_metrics"]))
    print(f"{'':<28} {'MAE':>10} {'RMSE':>10} {'MAPE %':>8} {'MASE':>6} {'NSE':>6} {'RPE':>6}")
    for name, m in rows:
        print(
            f"{name:<28} {m['mae']:>10.4g} {m['rmse']:>10.4g} {m['mape']:>8.2f} {m['mase']:>6.3f} "
            f"{m['nse']:>6.3f} {m['rpe']:>6.3f}"
        )
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
    from hai.forecast import load_model

    model = load_model(args.checkpoint, device=args.device)
    y, _, _, label = _load_data(args.data, args)
    forecast = model.predict(y)
    frame = (
        forecast.to_frame("forecast") if hasattr(forecast, "to_frame") and forecast.ndim == 1 else forecast
    )
    if hasattr(model, "baseline_") and frame.shape[1] == 1:
        frame["baseline"] = model.baseline_.predict(y).to_numpy()
    files: dict[str, str] = {}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index_label="time")
        files["csv"] = str(out)
    if args.plot:
        import pandas as pd  # type: ignore[import-untyped]

        recent = y.iloc[-2 * model.horizon :]
        recent = (
            recent.to_frame("truth") if recent.ndim == 1 else recent.iloc[:, :1].set_axis(["truth"], axis=1)
        )
        png = _figure(pd.concat([recent, frame]), f"{model.name} forecast after {label}", Path(args.plot))
        if png is not None:
            files["png"] = str(png)
    if args.json:
        print_json(
            {
                "model": model.name,
                "start": str(frame.index[0]),
                "end": str(frame.index[-1]),
                "forecast": {str(k): v for k, v in frame.iloc[:, 0].items()},
                "files": files,
            }
        )
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


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from hai.forecast.baselines import BASELINES

    p.add_argument("--model", default="recycle", choices=MODEL_CHOICES, help="default recycle")
    p.add_argument(
        "--baseline",
        default="last_profile",
        choices=(*BASELINES, "auto"),
        help="ReCycle's residual base ('auto': the lowest validation MAE of the recent-historic profiles)",
    )
    p.add_argument(
        "--no-network", action="store_true", help="ReCycle without its network: the baseline alone"
    )
    p.add_argument("--cycle-length", type=int, default=24, help="steps per cycle (default 24)")
    p.add_argument("--history-cycles", type=int, default=7, help="cycles of history (default 7)")
    p.add_argument("--horizon-cycles", type=int, default=1, help="cycles forecast (default 1)")
    p.add_argument("--d-model", type=int, default=32, help="token width (default 32)")
    p.add_argument("--nhead", type=int, default=1, help="attention heads (default 1)")
    p.add_argument("--dim-feedforward", type=int, default=96, help="feed-forward width (default 96)")
    p.add_argument("--loss", default="l1", choices=("l1", "mse", "quantile"), help="default l1")
    p.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    p.add_argument("--patience", type=int, default=20, help="early-stopping patience (default 20)")
    p.add_argument("--batch-size", type=int, default=32, help="default 32")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 0.001)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="last part held out (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1; 0 keeps torch's setting)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``hai forecast`` subcommands to ``parser``."""
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

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
    pr.add_argument("--plot", default=None, help="write a PNG of recent truth, forecast and baseline")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.set_defaults(handler=_cmd_predict, _parser=pr)

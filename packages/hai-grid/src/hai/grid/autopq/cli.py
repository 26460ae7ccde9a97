"""``hai grid autopq fit|predict|evaluate|tune``: thin edges over :class:`hai.grid.AutoPQ`.

``DATA`` is a CSV whose first column is the time stamp (``--column`` picks the value column)
or a SimBench profile ``load:H0-A``, ``pv:PV3``, ``wind:WP4``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from hai.shared import InputError, atomic_write
from hai.shared.checks import arg_nonnegative_int, arg_positive_int
from hai.shared.cli import print_json
from hai.shared.files import check_output_path

LIMITS = {"none": (None, None), "nonnegative": (0.0, None)}


def _save_png(fig: Any, path: str) -> None:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")


def _limits(args: argparse.Namespace) -> tuple[float | None, float | None]:
    if args.limits == "auto":
        return (
            (0.0, None)
            if str(args.data).strip().lower().startswith(("pv:", "wind:", "simbench:pv", "simbench:wind"))
            else (None, None)
        )
    return LIMITS[args.limits]


def _holidays(args: argparse.Namespace) -> str | None:
    from hai.grid.autopq.data import SIMBENCH_HOLIDAYS

    text = str(args.holidays).strip()
    if text.lower() == "none":
        return None
    if text.lower() == "auto":
        source = str(args.data).strip().lower().removeprefix("simbench:")
        return SIMBENCH_HOLIDAYS if source.startswith("load:") and not Path(args.data).exists() else None
    return text


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "forecaster": args.forecaster,
        "config": args.config,
        "epochs": args.epochs,
        "seed": args.seed,
        "forecast_limits": _limits(args),
        "holidays": _holidays(args),
        "latent_noise": args.latent_noise,
        "calibrate": args.calibrate,
        "storage": args.storage,
        "study_name": args.study_name,
        "workers": args.workers,
    }
    if args.trials is not None:
        kwargs["n_trials"] = args.trials
    return kwargs


def _fit(args: argparse.Namespace) -> Any:
    from hai.grid.autopq.data import load_series
    from hai.grid.autopq.estimator import AutoPQ

    check_output_path(args.out)
    y = load_series(args.data, args.column)
    model = AutoPQ(**_model_kwargs(args)).fit(y)
    if args.out:
        model.save(args.out)
    return model


def _summary(model: Any) -> dict[str, Any]:
    return {
        "forecaster": model.forecaster_.name,
        "forecaster_params": model.forecaster_.params,
        "sampling_std": model.sampling_std_,
        "calibrated": bool(model.calibrate),
        "trials": len(model.study_.trials),
        "selection_mae": model.selection_,
        "validation": model.val_scores_,
        "cost": model.cost_.to_dict(),
    }


def _print_scores(title: str, scores: dict[str, Any]) -> None:
    print(title)
    for key in ("crps", "pinball", "mae_median", "coverage_80", "width_80", "coverage_98", "width_98"):
        print(f"  {key:12s} {scores[key]:.4f}")


def _cmd_fit(args: argparse.Namespace) -> int:
    model = _fit(args)
    out = _summary(model)
    if args.json:
        print_json({**out, "model": args.out})
        return 0
    energy = model.cost_.total_energy_j
    print(
        f"forecaster {out['forecaster']}, sampling_std {out['sampling_std']:.3f} "
        f"after {out['trials']} trials, "
        f"{model.cost_.wall_s:.1f} s, energy {'unavailable' if energy is None else f'{energy:.0f} J'}"
    )
    _print_scores("validation:", out["validation"])
    if args.out:
        print(f"model saved to {args.out}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    if args.storage is None:
        raise InputError(
            "tune needs --storage", hint="e.g. --storage study.log (journal file) or sqlite:///study.db"
        )
    args.config = "advanced"
    return _cmd_fit(args)


def _load(path: str) -> Any:
    from hai.grid.autopq.estimator import AutoPQ

    return AutoPQ.load(path)


def _cmd_predict(args: argparse.Namespace) -> int:
    from hai.grid.autopq.data import load_series

    check_output_path(args.csv)
    check_output_path(args.plot)
    model = _load(args.model)
    history = model.series_ if args.history is None else load_series(args.history, args.column)
    q = model.predict(history)
    if args.csv:
        with atomic_write(args.csv) as fh:
            q.to_csv(fh, index_label="time")
    if args.plot:
        from hai.grid.autopq.plots import plot_fan_chart

        _save_png(plot_fan_chart(q, history=history.iloc[-72:], title="next-day quantiles"), args.plot)
    if args.json:
        print_json(
            {
                "index": [str(t) for t in q.index],
                "levels": list(q.columns),
                "quantiles": q.to_numpy().tolist(),
            }
        )
        return 0
    print(q.loc[:, [0.05, 0.1, 0.5, 0.9, 0.95]].round(4).to_string())
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]

    from hai.grid.autopq import metrics
    from hai.grid.autopq.quantiles import LEVELS

    check_output_path(args.plot)
    check_output_path(args.pit)
    model = _load(args.model)
    scores = model.evaluate(part=args.part)
    if args.plot or args.pit:
        y = model.series_
        origins = model.split_.origins(args.part, horizon=24, history=model.history_)
        daily = origins[pd.DatetimeIndex(y.index[origins]).hour == 0][:3]
        if args.plot and len(daily):
            from hai.grid.autopq.plots import plot_fan_chart

            q = model.quantiles_at(y, daily).reshape(-1, len(LEVELS))
            steps = (daily[:, None] + np.arange(24)).ravel()
            frame = pd.DataFrame(q, index=y.index[steps], columns=list(LEVELS))
            _save_png(
                plot_fan_chart(frame, actual=y.iloc[steps], title=f"{args.part}: day-ahead quantiles"),
                args.plot,
            )
        if args.pit:
            from hai.grid.autopq.plots import plot_pit

            q = model.quantiles_at(y, origins)
            truth = y.to_numpy()[origins[:, None] + np.arange(24)]
            _save_png(plot_pit(*metrics.pit_histogram(truth, q)), args.pit)
    if args.json:
        print_json(scores)
        return 0
    _print_scores(f"{args.part} ({scores['forecaster']}, sampling_std {scores['sampling_std']:.3f}):", scores)
    return 0


def _fit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data", metavar="DATA", help="CSV (time stamp first) or SimBench profile load:H0-A, pv:PV3"
    )
    p.add_argument("--column", help="value column of the CSV (default: the only one)")
    p.add_argument(
        "--forecaster", default="auto", help="auto, seasonal_naive, profile, linear, mlp, lightgbm, ets"
    )
    p.add_argument(
        "--epochs", type=arg_positive_int(maximum=100_000), default=30, help="cINN epochs (default 30)"
    )
    p.add_argument("--trials", type=arg_positive_int(maximum=100_000), default=None, help="optuna trials")
    p.add_argument(
        "--limits",
        default="auto",
        choices=["auto", "none", "nonnegative"],
        help="forecast limits (auto: ≥ 0 for PV and wind)",
    )
    p.add_argument(
        "--holidays",
        default="auto",
        metavar="CODE",
        help="public holidays counted as Sundays: a country code with optional subdivision (DE, DE-NW), "
        "none, or auto (DE-NW for SimBench load profiles, none otherwise)",
    )
    p.add_argument(
        "--latent-noise",
        default="additive",
        choices=["additive", "multiplicative"],
        help="latent codes around the point forecast's: z + σε (default) or z(1 + σε) (the reference's)",
    )
    p.add_argument(
        "--storage", default=None, help="optuna storage: study.log (journal), study.db, or an RDB URL"
    )
    p.add_argument("--study-name", default=None, help="study name in the storage (default autopq)")
    p.add_argument(
        "--workers", type=arg_positive_int(maximum=256), default=1, help="processes sharing the study"
    )
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip the spread calibration on the validation part (the reference's quantiles)",
    )
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    p.add_argument("--out", metavar="MODEL", help="save the fitted model (.safetensors)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: Any) -> None:
    """Add ``autopq`` (with fit, predict, evaluate, tune) to the ``hai grid`` subparsers."""
    group = sub.add_parser("autopq", help="AutoPQ quantile forecasts from point forecasts (cINN, optuna)")
    cmds = group.add_subparsers(
        dest="autopq_command", metavar="COMMAND", required=True, parser_class=type(group)
    )

    p = cmds.add_parser("fit", help="fit AutoPQ on a series and save the model")
    _fit_arguments(p)
    p.add_argument("--config", default="default", choices=["default", "advanced"])
    p.set_defaults(handler=_cmd_fit)

    p = cmds.add_parser("tune", help="advanced search on a shared optuna storage, with N worker processes")
    _fit_arguments(p)
    p.set_defaults(handler=_cmd_tune, config="advanced")

    p = cmds.add_parser("predict", help="quantiles of the next 24 hours after a history")
    p.add_argument("model", metavar="MODEL", help="a model saved by fit --out")
    p.add_argument(
        "--history", metavar="DATA", help="history (CSV or SimBench profile; default: the fitted series)"
    )
    p.add_argument("--column", help="value column of the CSV")
    p.add_argument("--csv", metavar="CSV", help="write the quantiles (rows: time, columns: levels)")
    p.add_argument("--plot", metavar="PNG", help="save a fan chart")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_predict)

    p = cmds.add_parser("evaluate", help="CRPS, pinball, coverage and width on the test (or validation) part")
    p.add_argument("model", metavar="MODEL", help="a model saved by fit --out")
    p.add_argument("--part", default="test", choices=["test", "val"])
    p.add_argument("--plot", metavar="PNG", help="save a fan chart of three days")
    p.add_argument("--pit", metavar="PNG", help="save the PIT histogram")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_evaluate)


def _cmd_risk(args: argparse.Namespace) -> int:
    from hai.grid.autopq.risk import plot_risk, simbench_risk

    check_output_path(args.plot)
    out = simbench_risk(
        args.net,
        args.day,
        n_scenarios=args.scenarios,
        weeks=args.weeks,
        seed=args.seed,
        device=args.device,
        forecaster=args.forecaster,
        epochs=args.epochs,
        n_trials=args.trials,
    )
    risk = out.risk
    top = risk.riskiest_lines(args.top)
    if args.plot:
        _save_png(
            plot_risk(risk, k=args.top, title=f"{args.net} {out.day.date()}: P(line overload)"), args.plot
        )
    bus_any = risk.bus_voltage.max(axis=1)
    if args.json:
        print_json(
            {
                "net": args.net,
                "day": str(out.day.date()),
                "scenarios": risk.n_scenarios,
                "hours": [str(t) for t in risk.line_overload.index],
                "riskiest_lines": {str(k): float(v) for k, v in top.items()},
                "line_overload": {str(c): risk.line_overload[c].tolist() for c in top.index},
                "trafo_overload": {
                    str(c): risk.trafo_overload[c].tolist() for c in risk.trafo_overload.columns
                },
                "max_bus_voltage_violation": bus_any.tolist(),
                "p_not_converged": risk.p_not_converged.tolist(),
                "forecasters": out.forecasters,
                "correlation": risk.correlation.round(6).to_dict(),
            }
        )
        return 0
    print(
        f"{args.net} on {out.day.date()}: {risk.n_scenarios} scenarios x 24 h, {len(out.quantiles)} profiles"
    )
    print("riskiest lines (max over hours of P(loading > max_loading_percent)):")
    for k, v in top.items():
        print(f"  line {k}: {v:.3f}")
    worst = int(np.argmax(bus_any.to_numpy()))
    print(f"voltage: max P(any bus outside limits) {bus_any.max():.3f} at {bus_any.index[worst]}")
    print(f"not converged: max {risk.p_not_converged.max():.3f} per hour")
    return 0


def register_risk(sub: Any) -> None:
    """Add ``risk`` (the probabilistic power flow of a SimBench net) to ``hai grid``."""
    p = sub.add_parser("risk", help="probability of overloads and voltage violations tomorrow, hour by hour")
    p.add_argument("--net", required=True, help="SimBench code, e.g. 1-MV-rural--0-sw")
    p.add_argument("--day", default="2016-06-15", help="forecast day in 2016 (default 2016-06-15)")
    p.add_argument("--scenarios", type=arg_positive_int(maximum=100_000), default=200)
    p.add_argument(
        "--weeks", type=arg_positive_int(maximum=52), default=6, help="history per profile (weeks)"
    )
    p.add_argument("--forecaster", default="profile", help="point forecaster per profile (default profile)")
    p.add_argument("--epochs", type=arg_positive_int(maximum=100_000), default=10)
    p.add_argument("--trials", type=arg_positive_int(maximum=100_000), default=10)
    p.add_argument("--top", type=arg_positive_int(maximum=1000), default=10, help="lines listed and plotted")
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (the batched power flow)")
    p.add_argument("--plot", metavar="PNG", help="save the risk map of the riskiest lines")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_risk)

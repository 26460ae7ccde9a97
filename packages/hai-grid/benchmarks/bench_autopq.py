"""AutoPQ against climatology, seasonal naive, conformal and LightGBM quantile regression.

On SimBench 2016 profiles (hourly, the reference's split: test = last 20 %), every method
forecasts the 24 hours after every hourly origin of the test part; scores over all of them:

* ``climatology``: empirical quantiles of the training + validation values of the same
  weekday × hour; with a holiday calendar also ``climatology, holidays as Sundays`` (the
  same with :func:`hai.grid.autopq.data.day_of_week`);
* ``seasonal naive``: the value 168 h before plus empirical quantiles of its residuals per
  hour of day (training + validation);
* ``conformal``: split conformal around AutoPQ's point forecaster: empirical quantiles of
  its validation residuals per horizon step, added to its test forecasts;
* ``LightGBM QR``: one ``LGBMRegressor(objective="quantile")`` per level on the lag and
  calendar features plus the horizon step and the target hour's calendar, sorted per step;
* ``AutoPQ default`` / ``AutoPQ advanced``: :class:`hai.grid.AutoPQ` (the cINN is the same
  size as the reference's; the advanced search runs ``--advanced-trials`` trials) with hai's
  defaults (additive latent noise, the spread calibration on the validation part), and the
  same fits ``uncalibrated`` (``quantiles_at(..., calibrated=False)``);
* ``AutoPQ default, reference``: a separate default fit with the reference's procedure
  (``latent_noise="multiplicative", calibrate=False``).

The SimBench load profiles follow the public holidays of North Rhine-Westphalia
(``SIMBENCH_HOLIDAYS``): AutoPQ and LightGBM QR get that calendar for ``load:`` series
(``--no-holidays``: none, as before 2026-12-07); PV and wind have none.

Time and energy of each fit through hai.shared's meter (energy "unavailable" without a
sensor). Prints a Markdown table and writes JSON::

    OMP_NUM_THREADS=1 python packages/hai-grid/benchmarks/bench_autopq.py \
        --series load:H0-A load:G1-A pv:PV3 --out bench_autopq.json
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np


def _windows(values: np.ndarray, origins: np.ndarray, h: int, offset: int = 0) -> np.ndarray:
    return values[origins[:, None] + offset + np.arange(h)[None, :]]


def _empirical(groups: np.ndarray, values: np.ndarray, levels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(g): np.quantile(values[groups == g], levels) for g in np.unique(groups)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", nargs="+", default=["load:H0-A", "load:G1-A", "pv:PV3"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--advanced-trials", type=int, default=20)
    parser.add_argument("--no-advanced", action="store_true")
    parser.add_argument("--no-lightgbm", action="store_true")
    parser.add_argument("--no-holidays", action="store_true", help="no holiday calendar for load series")
    parser.add_argument("--weeks", type=int, default=0, help="use only the last N weeks (0: the whole year)")
    parser.add_argument("--out", default="bench_autopq.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import pandas as pd

    from hai.grid.autopq import metrics
    from hai.grid.autopq.data import SIMBENCH_HOLIDAYS, day_of_week, simbench_profile
    from hai.grid.autopq.estimator import AutoPQ
    from hai.grid.autopq.forecasters import lag_features
    from hai.grid.autopq.quantiles import LEVELS
    from hai.shared import measure, write_json

    levels = np.asarray(LEVELS)
    h = 24
    rows: list[dict[str, Any]] = []
    for spec in args.series:
        y = simbench_profile(spec)
        if args.weeks:
            y = y.iloc[-args.weeks * 168 :]
        limits = (0.0, None) if spec.startswith(("pv:", "wind:")) else (None, None)
        holidays = SIMBENCH_HOLIDAYS if spec.startswith("load:") and not args.no_holidays else None
        values = y.to_numpy(dtype=float)
        index = pd.DatetimeIndex(y.index)
        print(f"== {spec}: {len(y)} hours", flush=True)

        def add(
            method: str,
            q: np.ndarray,
            cost: Any,
            truth: np.ndarray,
            extra: dict[str, Any] | None = None,
            spec: str = spec,
        ) -> None:
            s = metrics.score(truth, q)
            s.update(series=spec, method=method, fit_s=cost.wall_s, cpu_s=cost.cpu_s)
            s["energy_j"] = cost.total_energy_j
            s.update(extra or {})
            rows.append(s)
            print(
                f"{method:<18} crps {s['crps']:.4f} pinball {s['pinball']:.4f} cov80 {s['coverage_80']:.3f} "
                f"cov98 {s['coverage_98']:.3f} mae {s['mae_median']:.4f} fit {cost.wall_s:.1f} s",
                flush=True,
            )

        # AutoPQ default (also fixes the split, origins and the point forecaster for conformal)
        with measure() as cost:
            model = AutoPQ(
                "auto",
                "default",
                epochs=args.epochs,
                n_trials=args.trials,
                forecast_limits=limits,
                holidays=holidays,
            ).fit(y)
        split = model.split_
        test = split.origins("test", horizon=h, history=168)
        truth = _windows(values, test, h)
        start = time.perf_counter()
        q_apq = model.quantiles_at(y, test)
        predict_s = time.perf_counter() - start
        add(
            "AutoPQ default",
            q_apq,
            cost,
            truth,
            {
                "forecaster": model.forecaster_.name,
                "sampling_std": model.sampling_std_,
                "predict_s": predict_s,
            },
        )
        # the same fit without the spread calibration
        add(
            "AutoPQ default, uncalibrated",
            model.quantiles_at(y, test, calibrated=False),
            cost,
            truth,
            {"forecaster": model.forecaster_.name, "sampling_std": model.sampling_std_},
        )
        # the reference's procedure: multiplicative latent noise, no calibration (its own fit)
        with measure() as cost:
            ref = AutoPQ(
                "auto",
                "default",
                epochs=args.epochs,
                n_trials=args.trials,
                forecast_limits=limits,
                holidays=holidays,
                latent_noise="multiplicative",
                calibrate=False,
            ).fit(y)
        add(
            "AutoPQ default, reference (multiplicative noise, uncalibrated)",
            ref.quantiles_at(y, test),
            cost,
            truth,
            {"forecaster": ref.forecaster_.name, "sampling_std": ref.sampling_std_},
        )

        known = np.arange(split.val_end)
        # climatology: weekday x hour empirical quantiles of train + val
        for name, calendar in (("climatology", None), ("climatology, holidays as Sundays", holidays)):
            if name != "climatology" and calendar is None:
                continue
            with measure(energy=False) as cost:
                slot = day_of_week(index, calendar) * 24 + index.hour.to_numpy()
                table = _empirical(slot[known], values[known], levels)
                q = np.stack([table[int(k)] for k in slot[_windows(np.arange(len(y)), test, h).ravel()]])
                q = q.reshape(len(test), h, -1)
            add(name, q, cost, truth)

        # seasonal naive (168 h) with residual quantiles per hour of day
        with measure(energy=False) as cost:
            past = known[known >= 168]
            resid = values[past] - values[past - 168]
            table = _empirical(index.hour.to_numpy()[past], resid, levels)
            steps = _windows(np.arange(len(y)), test, h).ravel()
            point = values[steps - 168]
            q = (point[:, None] + np.stack([table[int(k)] for k in index.hour.to_numpy()[steps]])).reshape(
                len(test), h, -1
            )
            q = np.clip(q, limits[0] if limits[0] is not None else -np.inf, np.inf)
        add("seasonal naive", q, cost, truth)

        # split conformal around AutoPQ's point forecaster (validation residuals per step)
        with measure(energy=False) as cost:
            val = split.origins("val", horizon=h, history=model.history_)
            resid = _windows(values, val, h) - model.forecaster_.predict(y, val)
            offsets = np.quantile(resid, levels, axis=0).T  # (h, levels)
            q = model.forecaster_.predict(y, test)[:, :, None] + offsets[None]
            q = np.clip(q, limits[0] if limits[0] is not None else -np.inf, np.inf)
        add("conformal", q, cost, truth, {"forecaster": model.forecaster_.name})

        if not args.no_lightgbm:
            import lightgbm

            with measure() as cost:
                train = split.origins("train", horizon=h, history=168)[::3]
                base_tr = lag_features(values, index, train, holidays)
                base_te = lag_features(values, index, test, holidays)

                def stack(
                    base: np.ndarray,
                    origins: np.ndarray,
                    index: pd.DatetimeIndex = index,
                    holidays: str | None = holidays,
                ) -> np.ndarray:
                    hh = np.repeat(np.arange(h)[None, :], len(origins), 0)
                    t = index[(origins[:, None] + np.arange(h)).ravel()]
                    cal = np.stack([t.hour, day_of_week(t, holidays)], axis=1)
                    return np.hstack([np.repeat(base, h, axis=0), hh.reshape(-1, 1), cal])

                x_tr, y_tr = stack(base_tr, train), _windows(values, train, h).ravel()
                x_te = stack(base_te, test)
                preds = []
                for a in levels:
                    reg = lightgbm.LGBMRegressor(
                        objective="quantile",
                        alpha=float(a),
                        n_estimators=100,
                        learning_rate=0.1,
                        verbose=-1,
                        n_jobs=1,
                    )
                    preds.append(reg.fit(x_tr, y_tr).predict(x_te))
                q = np.sort(np.stack(preds, axis=1), axis=1).reshape(len(test), h, -1)
                q = np.clip(q, limits[0] if limits[0] is not None else -np.inf, np.inf)
            add("LightGBM QR", q, cost, truth)

        if not args.no_advanced:
            with measure() as cost:
                adv = AutoPQ(
                    "auto",
                    "advanced",
                    epochs=args.epochs,
                    n_trials=args.advanced_trials,
                    forecast_limits=limits,
                    holidays=holidays,
                ).fit(y)
            extra = {"forecaster": adv.forecaster_.name, "sampling_std": adv.sampling_std_}
            add("AutoPQ advanced", adv.quantiles_at(y, test), cost, truth, extra)
            q_raw = adv.quantiles_at(y, test, calibrated=False)
            add("AutoPQ advanced, uncalibrated", q_raw, cost, truth, extra)

    print()
    print("| series | method | CRPS | pinball | cov 80 % | cov 98 % | MAE median | fit s | energy J |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        energy = "unavailable" if r["energy_j"] is None else f"{r['energy_j']:.0f}"
        print(
            f"| {r['series']} | {r['method']} | {r['crps']:.4f} | {r['pinball']:.4f} | "
            f"{r['coverage_80']:.3f} | {r['coverage_98']:.3f} | {r['mae_median']:.4f} | "
            f"{r['fit_s']:.1f} | {energy} |"
        )
    for spec in args.series:
        apq = next(r for r in rows if r["series"] == spec and r["method"] == "AutoPQ default")
        others = (
            "climatology",
            "climatology, holidays as Sundays",
            "seasonal naive",
            "conformal",
            "LightGBM QR",
        )
        for other in others:
            ref = next((r for r in rows if r["series"] == spec and r["method"] == other), None)
            if ref is not None:
                change = apq["crps"] / ref["crps"] - 1.0
                print(f"{spec}: AutoPQ default CRPS {100 * change:+.1f} % relative to {other} (-: lower)")
    write_json(args.out, {"rows": rows, "args": vars(args)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

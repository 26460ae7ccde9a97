"""The accuracy table: ReCycle against the baselines practitioners use, on the project's series.

For each series (default: the hourly Victoria demand, the SimBench H0-A household and G1-A
business load profiles), day-ahead forecasts from every midnight of the last 20 % of the days
(rolling origin, 7-day history for the networks), every model fitted on the days before: ReCycle
as constructed by default (``ReCycle()`` with the data set's holiday calendar: ``baseline="auto"``,
the recent-historic profile with the lowest validation MAE, width 32, 200 epochs, patience 20;
its best configuration here), ReCycle on the fixed ``last_profile`` base (the default before
issue 22), ridge ARX
(:class:`hai.forecast.RidgeARX`, 24 per-hour ridge regressions), gradient-boosted lags
(LightGBM, when installed), the naive forecasts (same hour yesterday; same hour last week, the
MASE scale), the recent-historic profiles, and the token-per-step transformer. The networks run
``--seeds`` seeds (mean ± standard deviation over them); everything else is deterministic.

Columns: MASE over the week-lag naive forecast (the headline), MASE over the day-lag one, MAE,
RMSE, fit seconds (wall, one torch thread, one LightGBM thread). After each table one line says
whether ReCycle (default) beats ridge ARX and LightGBM. Writes ``OUT/bench_accuracy.json``.

    python packages/hai-forecast/benchmarks/bench_accuracy.py --out bench-out [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from hai.forecast import (
    GradientBoostedLags,
    LastProfile,
    Persistence,
    ReCycle,
    RidgeARX,
    SameTypeMean,
    SeasonalNaive,
    StepTransformer,
    TenDayMean,
    WeeklyNaive,
    backtest,
    datasets,
)
from hai.shared import atomic_write

KEYS = ("mase", "mase_day", "mae", "rmse")


def _models(cal: dict[str, Any], seeds: list[int], epochs: int) -> list[tuple[str, list[Any]]]:
    neural = {"epochs": epochs, **cal}
    rows: list[tuple[str, list[Any]]] = [
        ("ReCycle default (baseline auto)", [ReCycle(seed=s, **neural) for s in seeds]),
        ("ReCycle last_profile", [ReCycle(baseline="last_profile", seed=s, **neural) for s in seeds]),
        ("ridge ARX (alpha 10)", [RidgeARX(**cal)]),
    ]
    if importlib.util.find_spec("lightgbm") is not None:
        rows.append(("LightGBM on lags", [GradientBoostedLags(**cal)]))
    rows += [
        ("weekly naive (week lag)", [WeeklyNaive(**cal)]),
        ("seasonal naive (day lag)", [SeasonalNaive(**cal)]),
        ("last profile (RHP)", [LastProfile(**cal)]),
        ("same-type mean (RHP, k=3)", [SameTypeMean(**cal)]),
        ("ten-day mean (RHP)", [TenDayMean(**cal)]),
        ("persistence", [Persistence(**cal)]),
        ("StepTransformer", [StepTransformer(seed=s, **neural) for s in seeds]),
    ]
    return rows


def _summary(results: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"n_runs": len(results)}
    for key in KEYS:
        values = [r.metrics[key] for r in results]
        out[key] = statistics.fmean(values)
        out[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    out["fit_s"] = statistics.fmean(r.fit_cost.wall_s for r in results)
    if "baseline" in results[0].extra:
        out["baselines_chosen"] = [r.extra["baseline"] for r in results]
    return out


def run_series(name: str, seeds: list[int], epochs: int, only: list[str] | None = None) -> dict[str, Any]:
    data = datasets.load(name)
    cal = {"country": data.country, "subdiv": data.subdiv}
    rows = {}
    for label, models in _models(cal, seeds, epochs):
        if only and not any(word.lower() in label.lower() for word in only):
            continue
        rows[label] = _summary([backtest(m, data.y) for m in models])
    n_origins = backtest(WeeklyNaive(**cal), data.y).n_origins
    return {"series": name, "description": data.description, "n_origins": n_origins, "rows": rows}


def _cell(row: dict[str, Any], key: str, spec: str) -> str:
    text = format(row[key], spec)
    return text + (f" ± {format(row[f'{key}_sd'], spec)}" if row.get(f"{key}_sd") else "")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"**{report['series']}** ({report['n_origins']} day-ahead forecasts)",
        "",
        "| model | MASE (week lag) | MASE (day lag) | MAE | RMSE | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in report["rows"].items():
        lines.append(
            f"| {label} | {_cell(row, 'mase', '.3f')} | {_cell(row, 'mase_day', '.3f')} | "
            f"{_cell(row, 'mae', '.4g')} | {_cell(row, 'rmse', '.4g')} | {row['fit_s']:.2f} |"
        )
    rows = report["rows"]
    best = rows.get("ReCycle default (baseline auto)")
    verdicts = []
    for label in ("ridge ARX (alpha 10)", "LightGBM on lags"):
        if label in rows and best is not None:
            other = rows[label]["mase"]
            change = (best["mase"] / other - 1) * 100
            word = "beats" if best["mase"] < other else "does NOT beat"
            verdicts.append(
                f"ReCycle {word} {label}: MASE {best['mase']:.3f} vs {other:.3f} ({change:+.0f} %)"
            )
    return "\n".join([*lines, "", *verdicts])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-out")
    parser.add_argument(
        "--series", nargs="+", default=["vic_elec", "simbench_load:H0-A", "simbench_load:G1-A"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=200, help="epoch cap of the networks (default 200)")
    parser.add_argument(
        "--only", nargs="+", default=None, help="run only the rows whose label holds one of these words"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    print(f"load average at the start: {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    reports = []
    for name in args.series:
        report = run_series(name, args.seeds, args.epochs, args.only)
        reports.append(report)
        print("\n" + markdown(report), flush=True)
    seconds = time.perf_counter() - start
    print(f"\n{seconds:.0f} s; load average at the end: {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    document = {
        "machine": platform.platform(),
        "torch": torch.__version__,
        "seconds": seconds,
        "seeds": args.seeds,
        "reports": reports,
    }
    with atomic_write(Path(args.out) / "bench_accuracy.json") as fh:
        json.dump(document, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

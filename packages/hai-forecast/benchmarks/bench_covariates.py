"""What a future-known covariate buys: each model with and without the temperature.

The series is :func:`hai.forecast.synthetic_with_temperature` (a cyclic load plus 0.2 × a
temperature whose daily level wanders, so the load's own lags cannot foresee it; 120 days, 20 %
held out, day-ahead from each midnight). No series of the project carries a temperature, so
this is the only measurement. Rows: ridge ARX, LightGBM (when installed), ReCycle at its
defaults (``baseline="auto"``, width 32, at most 200 epochs) and on the fixed ``last_profile``
base, over ``--seeds`` network seeds; MAE and MASE (week lag) without and with the covariate.
Writes ``OUT/bench_covariates.json``.

    OMP_NUM_THREADS=1 python packages/hai-forecast/benchmarks/bench_covariates.py --out bench-out
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from hai.forecast import GradientBoostedLags, ReCycle, RidgeARX, backtest, synthetic_with_temperature
from hai.shared import atomic_write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    y, temperature = synthetic_with_temperature(120)
    makers: dict[str, Any] = {"ridge ARX (alpha 10)": lambda seed: RidgeARX()}
    if importlib.util.find_spec("lightgbm") is not None:
        makers["LightGBM on lags"] = lambda seed: GradientBoostedLags()
    makers["ReCycle default (baseline auto)"] = lambda seed: ReCycle(seed=seed)
    makers["ReCycle last_profile"] = lambda seed: ReCycle(baseline="last_profile", seed=seed)
    start = time.perf_counter()
    rows: dict[str, Any] = {}
    print("| model | MAE without | MAE with temperature | MASE without | MASE with |")
    print("|---|---|---|---|---|")
    for label, make in makers.items():
        seeds = args.seeds if label.startswith("ReCycle") else [0]
        row: dict[str, Any] = {}
        for key, covariates in (("without", None), ("with", temperature)):
            results = [backtest(make(s), y, covariates=covariates) for s in seeds]
            for metric in ("mae", "mase"):
                values = [r.metrics[metric] for r in results]
                row[f"{metric}_{key}"] = statistics.fmean(values)
                row[f"{metric}_{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows[label] = row

        def cell(key: str, row: dict[str, Any] = row) -> str:
            sd = row[f"{key}_sd"]
            return f"{row[key]:.4f}" + (f" ± {sd:.4f}" if sd else "")

        print(
            f"| {label} | {cell('mae_without')} | {cell('mae_with')} | {cell('mase_without')} | "
            f"{cell('mase_with')} |",
            flush=True,
        )
    seconds = time.perf_counter() - start
    print(f"\n{seconds:.0f} s")
    with atomic_write(Path(args.out) / "bench_covariates.json") as fh:
        json.dump({"seconds": seconds, "seeds": args.seeds, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

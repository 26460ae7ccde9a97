"""ReCycle against its baseline, seasonal naive and a token-per-step transformer, side by side.

For each data set (default: the hourly Victoria demand and the SimBench H0-A household and G1-A
business load profiles): 7-day history, 1-day horizon, the last 20 % of the days as rolling-origin test
windows (one per day), the rest for training (its last 20 % for early stopping). Rows:

- the baselines (seasonal naive, last profile, same-type mean of 3, ten-day mean),
- ReCycle over ``--baseline`` (default last_profile) for each seed in ``--seeds`` (mean ± std),
- the token-per-step transformer, same window, scaling, loss and training loop, capped at
  ``--transformer-epochs`` epochs (its epochs are ~10x dearer; the cap is the time budget).

Columns: MAE, MASE (MAE over seasonal naive's on the same windows), wall and CPU time per
training epoch (medians; forward + backward over the training windows; CPU time is what other
jobs on a shared machine cannot inflate), training time, training energy (RAPL/NVML via
hai.shared.measure, or "unavailable" with the reason), and the ratios. Writes
``OUT/bench_recycle.json``. A last section times one training epoch of both models on the
same windows at growing widths (``--sweep``), since ReCycle's small epochs are dominated by
fixed per-step overhead on a CPU.

    python packages/hai-forecast/benchmarks/bench_recycle.py --out bench-out [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hai.forecast import BacktestResult, ReCycle, StepTransformer, backtest, datasets, make_baseline
from hai.shared import resolve_device, write_json

BASELINE_ROWS = ("seasonal_naive", "last_profile", "same_type_mean", "ten_day_mean")


def _energy(result: BacktestResult) -> tuple[float | None, str]:
    cost = result.fit_cost
    if cost is None:
        return None, "not measured"
    if cost.total_energy_j is not None:
        return cost.total_energy_j, f"{cost.total_energy_j:.1f} J"
    reasons = "; ".join(f"{k}: {v}" for k, v in cost.unavailable.items()) or "no sensor"
    return None, f"unavailable ({reasons})"


def _row(name: str, result: BacktestResult) -> dict[str, Any]:
    energy, energy_text = _energy(result)
    return {
        "model": name,
        "mae": result.metrics["mae"],
        "mase": result.metrics["mase"],
        "rmse": result.metrics["rmse"],
        "nse": result.metrics["nse"],
        "rpe": result.metrics["rpe"],
        "epoch_s": result.extra.get("epoch_time_s"),
        "epoch_cpu_s": result.extra.get("epoch_cpu_s"),
        "epochs_run": result.extra.get("epochs_run"),
        "best_epoch": result.extra.get("best_epoch"),
        "n_parameters": result.extra.get("n_parameters"),
        "fit_s": None if result.fit_cost is None else result.fit_cost.wall_s,
        "energy_j": energy,
        "energy": energy_text,
    }


def run_dataset(name: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    data = datasets.load(name)
    cal = {"country": data.country, "subdiv": data.subdiv}
    rows: list[dict[str, Any]] = []
    for baseline in BASELINE_ROWS:
        rows.append(_row(baseline, backtest(make_baseline(baseline, **cal), data.y)))
    recycle_runs = []
    for seed in args.seeds:
        model = ReCycle(baseline=args.baseline, epochs=args.epochs, seed=seed, device=device, **cal)
        result = backtest(model, data.y)
        recycle_runs.append(_row(f"ReCycle ({args.baseline}), seed {seed}", result))
        n_windows = (model.n_train_windows_, model.n_val_windows_)
    maes = [r["mae"] for r in recycle_runs]
    recycle = {
        "model": f"ReCycle ({args.baseline}), mean of {len(maes)} seeds",
        "mae": statistics.fmean(maes),
        "mae_std": statistics.stdev(maes) if len(maes) > 1 else 0.0,
        "mase": statistics.fmean(r["mase"] for r in recycle_runs),
        "epoch_s": statistics.fmean(r["epoch_s"] for r in recycle_runs),
        "epoch_cpu_s": statistics.fmean(r["epoch_cpu_s"] for r in recycle_runs),
        "fit_s": statistics.fmean(r["fit_s"] for r in recycle_runs),
        "energy": recycle_runs[0]["energy"],
        "energy_j": None
        if any(r["energy_j"] is None for r in recycle_runs)
        else statistics.fmean(r["energy_j"] for r in recycle_runs),
        "n_parameters": recycle_runs[0]["n_parameters"],
    }
    transformer = StepTransformer(epochs=args.transformer_epochs, seed=args.seeds[0], device=device, **cal)
    t_row = _row(
        f"token-per-step transformer (≤{args.transformer_epochs} epochs)", backtest(transformer, data.y)
    )
    base_mae = next(r["mae"] for r in rows if r["model"] == args.baseline)
    naive_mae = next(r["mae"] for r in rows if r["model"] == "seasonal_naive")
    ratios = {
        "recycle_mae_over_its_baseline": recycle["mae"] / base_mae,
        "recycle_mae_over_seasonal_naive": recycle["mae"] / naive_mae,
        "transformer_epoch_time_over_recycle": t_row["epoch_s"] / recycle["epoch_s"],
        "transformer_epoch_cpu_time_over_recycle": t_row["epoch_cpu_s"] / recycle["epoch_cpu_s"],
        "transformer_fit_time_over_recycle": t_row["fit_s"] / recycle["fit_s"],
        "recycle_mae_over_transformer": recycle["mae"] / t_row["mae"],
        "recycle_seeds_below_baseline": sum(m < base_mae for m in maes),
    }
    if recycle["energy_j"] is not None and t_row["energy_j"] is not None:
        ratios["transformer_energy_over_recycle"] = t_row["energy_j"] / recycle["energy_j"]
    return {
        "data": name,
        "description": data.description,
        "n_steps": len(data.y),
        "train_windows": n_windows[0],
        "validation_windows": n_windows[1],
        "rows": [*rows, *recycle_runs, recycle, t_row],
        "ratios": ratios,
    }


def cost_sweep(name: str, args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    """Median time per training epoch of both models on the same windows, as the width grows."""
    data = datasets.load(name)
    cal = {"country": data.country, "subdiv": data.subdiv}
    train = data.y.iloc[: int(len(data.y) * 0.8)]
    rows = []
    for width in args.sweep:
        nhead, ff = max(1, width // 32), 3 * width
        common = {
            "d_model": width,
            "nhead": nhead,
            "dim_feedforward": ff,
            "epochs": args.sweep_epochs,
            "patience": None,
            "device": device,
            **cal,
        }
        recycle = ReCycle(**common).fit(train)
        transformer = StepTransformer(**common).fit(train)
        rows.append(
            {
                "d_model": width,
                "nhead": nhead,
                "dim_feedforward": ff,
                "recycle_epoch_s": recycle.epoch_time_s_,
                "transformer_epoch_s": transformer.epoch_time_s_,
                "ratio": transformer.epoch_time_s_ / recycle.epoch_time_s_,
                "recycle_epoch_cpu_s": recycle.epoch_cpu_s_,
                "transformer_epoch_cpu_s": transformer.epoch_cpu_s_,
                "cpu_ratio": transformer.epoch_cpu_s_ / recycle.epoch_cpu_s_,
                "recycle_parameters": recycle.n_parameters_,
                "transformer_parameters": transformer.n_parameters_,
            }
        )
    return rows


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    print(f"\n## {report['data']}: {report['description']}")
    print(
        f"train/validation windows {report['train_windows']}/{report['validation_windows']}, "
        "7-day history, 1-day horizon, last 20 % of the days as test origins"
    )
    print(
        f"{'model':<48} {'MAE':>10} {'MASE':>6} {'s/epoch':>8} {'CPU s/ep':>8} {'epochs':>6} "
        f"{'fit s':>7}  energy"
    )
    for r in report["rows"]:
        mae = _fmt(r["mae"], ".5g") + (f" ± {r['mae_std']:.2g}" if "mae_std" in r else "")
        print(
            f"{r['model']:<48} {mae:>10} {_fmt(r['mase'], '.3f'):>6} {_fmt(r['epoch_s'], '.4f'):>8} "
            f"{_fmt(r['epoch_cpu_s'], '.4f'):>8} "
            f"{_fmt(r.get('epochs_run'), 'd'):>6} {_fmt(r['fit_s'], '.1f'):>7}  {r['energy'].split(' (')[0]}"
        )
    for key, value in report["ratios"].items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-out", help="folder for bench_recycle.json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument(
        "--data",
        default="vic_elec,simbench_load:H0-A,simbench_load:G1-A",
        help="comma-separated data sets (default: Victoria, SimBench household H0-A and business G1-A)",
    )
    parser.add_argument(
        "--baseline", default="last_profile", help="ReCycle's residual base (default last_profile)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="ReCycle seeds (default 0,1,2)")
    parser.add_argument(
        "--epochs", type=int, default=200, help="ReCycle's maximum epochs (default 200, patience 20)"
    )
    parser.add_argument(
        "--transformer-epochs", type=int, default=20, help="the transformer's maximum epochs (default 20)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--sweep",
        default="32,64,128",
        help="widths for the time-per-epoch sweep ('' to skip; default 32,64,128)",
    )
    parser.add_argument("--sweep-epochs", type=int, default=5, help="epochs per sweep point (default 5)")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.sweep = [int(s) for s in args.sweep.split(",") if s.strip()]
    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    started = time.perf_counter()
    reports = [run_dataset(name.strip(), args, device) for name in args.data.split(",") if name.strip()]
    for report in reports:
        print_table(report)
    sweep_data = args.data.split(",")[0].strip()
    sweep = cost_sweep(sweep_data, args, device) if args.sweep else []
    if sweep:
        print(
            f"\n## time per epoch as the width grows ({sweep_data}, {args.sweep_epochs} epochs each, median)"
        )
        print(
            f"{'d_model':>7} {'heads':>5} {'ff':>5} {'ReCycle s':>10} {'transformer s':>14} {'ratio':>6} "
            f"{'ReCycle CPU s':>14} {'transformer CPU s':>18} {'CPU ratio':>9}"
        )
        for r in sweep:
            print(
                f"{r['d_model']:>7} {r['nhead']:>5} {r['dim_feedforward']:>5} {r['recycle_epoch_s']:>10.4f} "
                f"{r['transformer_epoch_s']:>14.4f} {r['ratio']:>6.1f} {r['recycle_epoch_cpu_s']:>14.4f} "
                f"{r['transformer_epoch_cpu_s']:>18.4f} {r['cpu_ratio']:>9.1f}"
            )
    total = time.perf_counter() - started
    machine = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "threads": args.threads,
        "cpu_count": __import__("os").cpu_count(),
        "platform": platform.platform(),
    }
    print(f"\n{device}, torch {torch.__version__}, {args.threads} thread(s), total {total:.0f} s")
    path = write_json(
        Path(args.out) / "bench_recycle.json",
        {
            "settings": dict(vars(args)),
            "machine": machine,
            "total_s": total,
            "datasets": reports,
            "cost_sweep": sweep,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ReCycle against its baseline, seasonal naive and a token-per-step transformer, side by side.

For each data set (default: the hourly Victoria demand and the SimBench H0-A household and G1-A
business load profiles): 7-day history, 1-day horizon, the last 20 % of the days as rolling-origin
test windows (one per day), the rest for training (its last 20 % for early stopping and for
``baseline="auto"``'s choice). Both networks get the same settings, printed at the top (width,
depth, heads, feed-forward size, dropout, batch size, optimiser, loss, epoch cap, patience).

Per series it prints the MAE and MASE (MAE over seasonal naive's on the same windows) of the
baselines, of ReCycle (``--baseline``, default ``auto``; each seed in ``--seeds``, and their
mean) and of the transformer (first seed), the epochs run, the training time and energy, and
then the **time per training epoch** of both models measured on the *same* training windows
(ReCycle's, which need the baseline's context; the transformer could use a few more): ``--rounds``
timings of each, interleaved ReCycle / transformer / ReCycle / … so that load from other jobs on a
shared machine hits both alike; each timing trains a fresh copy for two epochs and times the
second (Adam's state already built, as in a real fit); the medians of wall and CPU time and their
ratios. Energy comes from hai.shared's meter (RAPL / NVML) or is reported unavailable with the
reason. ``--batches`` repeats the epoch timing of every series at batch sizes 32, 64 and 128
(both models at the same batch; ReCycle over the last profile, so the windows are the same for
each batch), ``--sweep`` at other widths (first series). The load average of the machine is
printed at the start and the end. Writes ``OUT/bench_recycle.json``.

    python packages/hai-forecast/benchmarks/bench_recycle.py --out bench-out [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from hai.forecast import BacktestResult, ReCycle, StepTransformer, backtest, datasets, make_baseline
from hai.forecast.neural import NeuralForecaster
from hai.forecast.training import flat_parameters, train_network
from hai.shared import RngStreams, resolve_device, write_json

BASELINE_ROWS = ("seasonal_naive", "last_profile", "same_type_mean", "ten_day_mean")


def _energy(result: BacktestResult) -> tuple[float | None, str]:
    cost = result.fit_cost
    if cost is None:
        return None, "not measured"
    if cost.total_energy_j is not None:
        return cost.total_energy_j, f"{cost.total_energy_j:.1f} J"
    reasons = "; ".join(f"{k}: {v}" for k, v in cost.unavailable.items()) or "no sensor"
    return None, f"unavailable ({reasons})"


def _row(name: str, result: BacktestResult, baseline: str = "-") -> dict[str, Any]:
    energy, energy_text = _energy(result)
    return {
        "model": name,
        "baseline": baseline,
        "mae": result.metrics["mae"],
        "mase": result.metrics["mase"],
        "rmse": result.metrics["rmse"],
        "nse": result.metrics["nse"],
        "epochs_run": result.extra.get("epochs_run"),
        "best_epoch": result.extra.get("best_epoch"),
        "n_parameters": result.extra.get("n_parameters"),
        "fit_s": None if result.fit_cost is None else result.fit_cost.wall_s,
        "energy_j": energy,
        "energy": energy_text,
    }


def _train_part(y: Any, test_fraction: float = 0.2, cycle_length: int = 24) -> Any:
    """The part of ``y`` that ``backtest`` trains on (whole cycles before the test part)."""
    skip = len(y) % cycle_length
    n_cycles = (len(y) - skip) // cycle_length
    return y.iloc[skip : skip + (n_cycles - max(1, round(n_cycles * test_fraction))) * cycle_length]


def time_epochs(recycle: ReCycle, transformer: StepTransformer, y: Any, rounds: int) -> dict[str, Any]:
    """Median wall/CPU seconds of one training epoch of each model on the same windows, interleaved.

    Each timing trains a fresh copy of the net for two epochs and records the second, so Adam's
    state (built on the first step) is not part of it, as in a real fit.
    """
    frames = [m._prepare(y) for m in (recycle, transformer)]
    origins, _, _ = recycle._window_origins(len(frames[0]))
    models: list[NeuralForecaster] = [recycle, transformer]
    batches = [m._training_batch(f, origins) for m, f in zip(models, frames, strict=True)]
    times: list[list[tuple[float, float]]] = [[], []]
    for r in range(rounds + 1):  # round 0 warms up
        for i, model in enumerate(models):
            assert model.net_ is not None
            net = copy.deepcopy(model.net_)
            result = train_network(
                net,
                model._loss_of,
                batches[i],
                None,
                epochs=2,
                batch_size=int(model.batch_size),
                lr=float(model.lr),
                generator=RngStreams(r).torch("shuffle"),
            )
            if r:
                times[i].append((result.history[-1].train_s, result.history[-1].train_cpu_s))
    med = [(statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for ts in times]
    return {
        "windows": len(origins),
        "rounds": rounds,
        "recycle_epoch_s": med[0][0],
        "recycle_epoch_cpu_s": med[0][1],
        "transformer_epoch_s": med[1][0],
        "transformer_epoch_cpu_s": med[1][1],
        "ratio": med[1][0] / med[0][0],
        "cpu_ratio": med[1][1] / med[0][1],
    }


class _OpCounter(TorchDispatchMode):
    """Counts the tensor operations that reach the dispatcher (views and autograd's own ops included)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def _tiny_op_us(n: int = 2000) -> float:
    """CPU µs per operation of a chain of scalar multiplies, forward and backward: pure per-op cost."""
    x = torch.ones(1, requires_grad=True)
    best = float("inf")
    for _ in range(5):
        c0 = time.process_time()
        y = x
        for _ in range(n):
            y = y * 1.0
        y.backward()
        best = min(best, (time.process_time() - c0) / (2 * n))  # one forward + one backward op each
    return best * 1e6


def step_anatomy(recycle: ReCycle, transformer: StepTransformer, y: Any, steps: int = 30) -> dict[str, Any]:
    """Where one training step's time goes, for each model on a batch of its own batch size.

    Per model: the tensor operations dispatched in one step (forward, backward and Adam), the
    floating-point operations of forward and backward (``torch.utils.flop_counter``), the median
    CPU time per step (blocks interleaved between the models) and what these imply: µs per
    operation and GFLOP/s. ``tiny_op_us`` is the CPU cost of one operation that does no
    arithmetic to speak of (a scalar multiply, forward and backward), so ``ops × tiny_op_us``
    estimates the part of a step that no kernel can make faster: the dispatch floor (a rough
    one: views cost less than a multiply with its autograd node, Adam's Python more).
    """
    frames = [m._prepare(y) for m in (recycle, transformer)]
    origins, _, _ = recycle._window_origins(len(frames[0]))
    models: list[NeuralForecaster] = [recycle, transformer]
    out: dict[str, Any] = {"tiny_op_us": _tiny_op_us()}
    steppers = []
    stack = contextlib.ExitStack()
    for model, frame in zip(models, frames, strict=True):
        assert model.net_ is not None
        net = copy.deepcopy(model.net_).train()
        batch = model._training_batch(frame, origins[: int(model.batch_size)])
        params, zero_grad = stack.enter_context(flat_parameters(net))  # as train_network does
        optimizer = torch.optim.Adam(
            params, lr=float(model.lr), weight_decay=float(model.weight_decay), fused=True
        )

        def step(
            net: Any = net,
            batch: Any = batch,
            optimizer: Any = optimizer,
            model: Any = model,
            zero: Any = zero_grad,
        ) -> Any:
            zero()
            loss = model._loss_of(net, batch)
            loss.backward()
            optimizer.step()
            return loss

        step()  # Adam's state
        with _OpCounter() as counter:
            step()
        with FlopCounterMode(display=False) as flops:
            zero_grad()
            model._loss_of(net, batch).backward()
        steppers.append(step)
        out[type(model).__name__] = {
            "batch": len(batch["target"]),
            "ops_per_step": counter.count,
            "mflop_per_step": flops.get_total_flops() / 1e6,
        }
    cpu: list[list[float]] = [[], []]
    for _ in range(5):
        for i, step in enumerate(steppers):
            n = steps if i == 0 else max(1, steps // 6)
            c0 = time.process_time()
            for _ in range(n):
                step()
            cpu[i].append((time.process_time() - c0) / n)
    stack.close()
    for i, model in enumerate(models):
        row = out[type(model).__name__]
        row["cpu_ms_per_step"] = statistics.median(cpu[i]) * 1e3
        row["us_per_op"] = row["cpu_ms_per_step"] * 1e3 / row["ops_per_step"]
        row["gflop_per_s"] = row["mflop_per_step"] / row["cpu_ms_per_step"]
        row["dispatch_floor_ms"] = row["ops_per_step"] * out["tiny_op_us"] / 1e3
    r, t = out["ReCycle"], out["StepTransformer"]
    out["step_cpu_ratio"] = t["cpu_ms_per_step"] / r["cpu_ms_per_step"]
    out["flop_ratio"] = t["mflop_per_step"] / r["mflop_per_step"]
    # The best ratio a step of ReCycle could reach against this transformer step if ReCycle's
    # operations cost nothing beyond the floor.
    out["ratio_at_dispatch_floor"] = t["cpu_ms_per_step"] / r["dispatch_floor_ms"]
    return out


def print_anatomy(a: dict[str, Any], name: str) -> None:
    print(f"\n## one training step, {name} (CPU time; forward + backward + Adam)")
    print(
        f"{'model':<16} {'batch':>5} {'ops':>5} {'MFLOP':>8} {'CPU ms':>7} {'µs/op':>6} {'GFLOP/s':>8} "
        f"{'floor ms':>8}"
    )
    for key in ("ReCycle", "StepTransformer"):
        r = a[key]
        print(
            f"{key:<16} {r['batch']:>5} {r['ops_per_step']:>5} {r['mflop_per_step']:>8.1f} "
            f"{r['cpu_ms_per_step']:>7.2f} {r['us_per_op']:>6.1f} {r['gflop_per_s']:>8.2f} "
            f"{r['dispatch_floor_ms']:>8.2f}"
        )
    print(
        f"a bare operation costs {a['tiny_op_us']:.1f} µs (floor ms = ops × that); step CPU ratio "
        f"{a['step_cpu_ratio']:.1f}x at a FLOP ratio of {a['flop_ratio']:.0f}x; even at its dispatch floor "
        f"ReCycle's step would be {a['ratio_at_dispatch_floor']:.1f}x faster than the transformer's"
    )


def run_dataset(name: str, args: argparse.Namespace, common: dict[str, Any]) -> dict[str, Any]:
    data = datasets.load(name)
    cal = {"country": data.country, "subdiv": data.subdiv}
    rows = [_row(b, backtest(make_baseline(b, **cal), data.y)) for b in BASELINE_ROWS]
    recycle_runs, models = [], []
    for seed in args.seeds:
        model = ReCycle(baseline=args.baseline, seed=seed, **common, **cal)
        result = backtest(model, data.y)
        row = _row(f"ReCycle, seed {seed}", result, model.baseline_.name)
        row["baseline_mae"] = result.extra["baseline_metrics"]["mae"]
        row["baseline_scores"] = dict(model.baseline_scores_)
        recycle_runs.append(row)
        models.append(model)
    maes = [r["mae"] for r in recycle_runs]
    chosen = sorted({r["baseline"] for r in recycle_runs})
    recycle = {
        "model": f"ReCycle, mean of {len(maes)} seeds",
        "baseline": "/".join(chosen),
        "mae": statistics.fmean(maes),
        "mae_std": statistics.stdev(maes) if len(maes) > 1 else 0.0,
        "mase": statistics.fmean(r["mase"] for r in recycle_runs),
        "fit_s": statistics.fmean(r["fit_s"] for r in recycle_runs),
        "energy": recycle_runs[0]["energy"],
        "energy_j": None
        if any(r["energy_j"] is None for r in recycle_runs)
        else statistics.fmean(r["energy_j"] for r in recycle_runs),
        "n_parameters": recycle_runs[0]["n_parameters"],
    }
    transformer = StepTransformer(seed=args.seeds[0], **common, **cal)
    t_row = _row(f"token-per-step transformer, seed {args.seeds[0]}", backtest(transformer, data.y))
    naive_mae = rows[0]["mae"]
    timing = time_epochs(models[0], transformer, _train_part(data.y), args.rounds)
    anatomy = step_anatomy(models[0], transformer, _train_part(data.y))
    ratios: dict[str, Any] = {
        "recycle_mae_over_its_baseline": statistics.fmean(r["mae"] / r["baseline_mae"] for r in recycle_runs),
        "recycle_mae_over_seasonal_naive": recycle["mae"] / naive_mae,
        "recycle_mae_over_transformer": recycle["mae"] / t_row["mae"],
        "recycle_seed0_mae_over_transformer": recycle_runs[0]["mae"] / t_row["mae"],
        "recycle_seeds_below_their_baseline": sum(r["mae"] < r["baseline_mae"] for r in recycle_runs),
        "transformer_epoch_time_over_recycle": timing["ratio"],
        "transformer_epoch_cpu_time_over_recycle": timing["cpu_ratio"],
        "transformer_fit_time_over_recycle": t_row["fit_s"] / recycle["fit_s"],
    }
    if recycle["energy_j"] is not None and t_row["energy_j"] is not None:
        ratios["transformer_energy_over_recycle"] = t_row["energy_j"] / recycle["energy_j"]
    return {
        "data": name,
        "description": data.description,
        "n_steps": len(data.y),
        "train_windows": models[0].n_train_windows_,
        "validation_windows": models[0].n_val_windows_,
        "rows": [*rows, *recycle_runs, recycle, t_row],
        "epoch_timing": timing,
        "step_anatomy": anatomy,
        "ratios": ratios,
    }


def timing_at(
    name: str, args: argparse.Namespace, common: dict[str, Any], d_model: int, batch_size: int
) -> dict[str, Any]:
    """Interleaved time per training epoch of both models on the same windows of ``name``.

    ReCycle runs over the last profile here: the network and its cost do not depend on the
    baseline, only the number of windows does (through the baseline's context).
    """
    data = datasets.load(name)
    train = _train_part(data.y)
    nhead, ff = max(1, d_model // 32), 3 * d_model
    params = {
        **common,
        "d_model": d_model,
        "nhead": nhead,
        "dim_feedforward": ff,
        "batch_size": batch_size,
        "epochs": 0,
        "country": data.country,
        "subdiv": data.subdiv,
    }
    recycle = ReCycle(baseline="last_profile", **params).fit(train)
    transformer = StepTransformer(**params).fit(train)
    timing = time_epochs(recycle, transformer, train, args.rounds)
    return {
        "data": name,
        "d_model": d_model,
        "nhead": nhead,
        "dim_feedforward": ff,
        "batch_size": batch_size,
        **timing,
    }


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def _print_timings(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'data':<20} {'d_model':>7} {'heads':>5} {'batch':>5} {'windows':>7} {'ReCycle s':>10} "
        f"{'transformer s':>14} {'ratio':>6} {'CPU ratio':>9}"
    )
    for r in rows:
        print(
            f"{r['data']:<20} {r['d_model']:>7} {r.get('nhead', 1):>5} {r['batch_size']:>5} "
            f"{r['windows']:>7} "
            f"{r['recycle_epoch_s']:>10.4f} {r['transformer_epoch_s']:>14.4f} {r['ratio']:>6.1f} "
            f"{r['cpu_ratio']:>9.1f}"
        )


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    print(f"\n## {report['data']}: {report['description']}")
    print(
        f"train/validation windows {report['train_windows']}/{report['validation_windows']} (ReCycle), "
        "7-day history, 1-day horizon, last 20 % of the days as test origins"
    )
    print(f"{'model':<40} {'baseline':<15} {'MAE':>18} {'MASE':>6} {'epochs':>7} {'fit s':>6}  energy")
    for r in report["rows"]:
        mae = _fmt(r["mae"], ".5g") + (f" ± {r['mae_std']:.2g}" if "mae_std" in r else "")
        epochs = "-" if r.get("epochs_run") is None else f"{r['epochs_run']}/{r['best_epoch']}"
        print(
            f"{r['model']:<40} {r['baseline']:<15} {mae:>18} {_fmt(r['mase'], '.3f'):>6} {epochs:>7} "
            f"{_fmt(r['fit_s'], '.1f'):>6}  {r['energy'].split(' (')[0]}"
        )
    t = report["epoch_timing"]
    print(
        f"time per training epoch on the same {t['windows']} windows (median of {t['rounds']} interleaved "
        f"epochs): ReCycle {t['recycle_epoch_s']:.4f} s (CPU {t['recycle_epoch_cpu_s']:.4f} s), transformer "
        f"{t['transformer_epoch_s']:.4f} s (CPU {t['transformer_epoch_cpu_s']:.4f} s)"
    )
    for key, value in report["ratios"].items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    print_anatomy(report["step_anatomy"], report["data"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-out", help="folder for bench_recycle.json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument(
        "--data",
        default="vic_elec,simbench_load:H0-A,simbench_load:G1-A",
        help="comma-separated data sets (default: Victoria, SimBench household H0-A and business G1-A)",
    )
    parser.add_argument("--baseline", default="auto", help="ReCycle's residual base (default auto)")
    parser.add_argument(
        "--seeds", default="0,1,2", help="ReCycle seeds (default 0,1,2; the transformer: the first)"
    )
    parser.add_argument("--epochs", type=int, default=100, help="epoch cap of both models (default 100)")
    parser.add_argument(
        "--patience", type=int, default=20, help="early-stopping patience of both (default 20)"
    )
    parser.add_argument("--d-model", type=int, default=32, help="width of both models (default 32)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of both models (default 32)")
    parser.add_argument(
        "--dropout", type=float, default=0.0, help="dropout of both models (default 0, as the reference)"
    )
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved timing epochs per model (default 7)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--sweep", default="64,128", help="other widths to time (default 64,128; '' to skip)")
    parser.add_argument(
        "--batches", default="32,64,128", help="batch sizes to time on every series ('' to skip)"
    )
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.sweep = [int(s) for s in args.sweep.split(",") if s.strip()]
    args.batches = [int(s) for s in args.batches.split(",") if s.strip()]
    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    common = {
        "d_model": args.d_model,
        "nhead": 1,
        "num_encoder_layers": 1,
        "num_decoder_layers": 1,
        "dim_feedforward": 3 * args.d_model,
        "dropout": args.dropout,
        "batch_size": args.batch_size,
        "lr": 1e-3,
        "weight_decay": 0.01,
        "loss": "l1",
        "epochs": args.epochs,
        "patience": args.patience,
        "device": device,
        "threads": args.threads,
    }
    print(
        "both models: d_model {d_model}, {nhead} head, {num_encoder_layers} encoder + {num_decoder_layers} "
        "decoder layer, feed-forward {dim_feedforward}, dropout {dropout}, batch {batch_size}, Adam (fused) "
        "lr {lr} weight decay {weight_decay}, {loss} loss, at most {epochs} epochs, patience {patience} "
        "on the last 20 % of the training days; one torch thread per process unless --threads".format(
            **common
        )
    )
    started = time.perf_counter()
    load_start = os.getloadavg()
    print(f"load average (1/5/15 min) at the start: {_load(load_start)}")
    reports = []
    for name in (n.strip() for n in args.data.split(",")):
        if name:
            reports.append(run_dataset(name, args, common))
            print_table(reports[-1])
    names = [n.strip() for n in args.data.split(",") if n.strip()]
    by_batch = [timing_at(n, args, common, args.d_model, b) for n in names for b in args.batches]
    sweep = [timing_at(names[0], args, common, w, args.batch_size) for w in args.sweep] if names else []
    if by_batch:
        print(f"\n## time per epoch by batch size (width {args.d_model}, both models at the same batch)")
        _print_timings(by_batch)
    if sweep:
        print(f"\n## time per epoch at other widths ({names[0]}, batch {args.batch_size}, same windows)")
        _print_timings(sweep)
    load_end = os.getloadavg()
    print(f"load average (1/5/15 min) at the start {_load(load_start)}, at the end {_load(load_end)}")
    total = time.perf_counter() - started
    energy = reports[0]["rows"][-1]["energy"] if reports else "-"
    print(f"\nenergy: {energy}")
    print(f"{device}, torch {torch.__version__}, {args.threads} thread(s), total {total:.0f} s")
    machine = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "platform": platform.platform(),
    }
    path = write_json(
        Path(args.out) / "bench_recycle.json",
        {
            "settings": {**vars(args), "models": common},
            "machine": machine,
            "total_s": total,
            "datasets": reports,
            "batch_sweep": by_batch,
            "cost_sweep": sweep,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""AB-training against DDP and DDP + PowerSGD (the anchors), side by side in one run.

The same MLP on the 8x8 digits, the same batches (each rank draws from a generator seeded by
seed, step and rank), the same number of steps and the same AdamW learning rate, on
``--nproc`` local gloo processes. For each method and seed it records the payload bytes each
rank handed to collectives (counted where they are issued: hai.scale.abtrain.comm), the test
accuracy of the final model, the wall time and the time per epoch. It prints the table with
the ratios to DDP and writes ``bench_abtrain.json`` to ``--out``.

    python packages/hai-scale/benchmarks/bench_abtrain.py --out build/bench
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

from hai.scale.abtrain import ABSchedule
from hai.scale.abtrain.run import launch_ab
from hai.scale.abtrain.trainer import ABTrainConfig
from hai.scale.data import digits_classification
from hai.shared import write_json


def run(args: argparse.Namespace) -> dict[str, Any]:
    schedule = ABSchedule(
        warmup_steps=args.warmup, steps_between_syncs=args.sync_every, ddp_steps_after_sync=args.ddp_after
    )
    train_size = digits_classification(seed=0).x_train.shape[0]
    steps_per_epoch = train_size / (args.nproc * args.batch_size)
    rows: dict[str, list[dict[str, Any]]] = {}
    for method in ("ddp", "powersgd", "ab"):
        for seed in range(args.seeds):
            config = ABTrainConfig(
                method=method,
                steps=args.steps,
                batch_size=args.batch_size,
                hidden=tuple(args.hidden),
                lr=args.lr,
                schedule=schedule,
                group_size=args.group_size,
                powersgd_rank=args.powersgd_rank,
                seed=seed,
            )
            results = launch_ab(config, nproc=args.nproc, timeout_s=900)
            first = results[0]
            rows.setdefault(method, []).append(
                {
                    "seed": seed,
                    "bytes_per_rank": statistics.mean(r["comm"]["total_bytes"] for r in results),
                    "test_accuracy": first["test_accuracy"],
                    "wall_s": max(r["wall_s"] for r in results),
                    "compression_ratio": first["comm"].get("compression_ratio"),
                    "bytes_by_phase": first["comm"]["bytes"],
                }
            )
            print(f"  {method:<9} seed {seed}: acc {first['test_accuracy']:.4f}", file=sys.stderr)
    summary: dict[str, dict[str, Any]] = {}
    for method, runs in rows.items():
        summary[method] = {
            "bytes_per_rank": statistics.mean(r["bytes_per_rank"] for r in runs),
            "test_accuracy": statistics.mean(r["test_accuracy"] for r in runs),
            "test_accuracy_sd": statistics.pstdev(r["test_accuracy"] for r in runs),
            "wall_s": statistics.mean(r["wall_s"] for r in runs),
            "s_per_epoch": statistics.mean(r["wall_s"] for r in runs) / (args.steps / steps_per_epoch),
            "compression_ratio": runs[0]["compression_ratio"],
        }
    ddp = summary["ddp"]
    for row in summary.values():
        row["bytes_vs_ddp"] = row["bytes_per_rank"] / ddp["bytes_per_rank"]
        row["accuracy_minus_ddp_points"] = 100 * (row["test_accuracy"] - ddp["test_accuracy"])
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "config": {**vars(args), "out": str(args.out), "epochs": args.steps / steps_per_epoch},
        "summary": summary,
        "runs": rows,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "| method | bytes/rank | vs DDP | test acc. | vs DDP (points) | s/epoch | compression |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, row in report["summary"].items():
        ratio = "" if row["compression_ratio"] is None else f"{row['compression_ratio']:.3f}"
        lines.append(
            f"| {method} | {row['bytes_per_rank'] / 1e6:.2f} MB | {row['bytes_vs_ddp']:.3f} | "
            f"{row['test_accuracy']:.4f} ± {row['test_accuracy_sd']:.4f} | "
            f"{row['accuracy_minus_ddp_points']:+.2f} | {row['s_per_epoch']:.3f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--nproc", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--sync-every", type=int, default=40)
    parser.add_argument("--ddp-after", type=int, default=10)
    parser.add_argument("--group-size", type=int, default=1)
    parser.add_argument("--powersgd-rank", type=int, default=4)
    args = parser.parse_args()
    report = run(args)
    print(
        f"machine: {report['machine']}; {args.nproc} gloo processes, {report['config']['epochs']:.1f} epochs"
    )
    print(table(report))
    write_json(args.out / "bench_abtrain.json", report)


if __name__ == "__main__":
    main()

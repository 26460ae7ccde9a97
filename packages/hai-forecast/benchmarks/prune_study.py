"""The pruning study on small CPU runs: synthetic multivariate, SimBench, vic_elec, or your CSV.

Runs :func:`hai.forecast.pruning.run_study` (Kiefer et al., arXiv 2412.12883, repeated in
miniature) for a few zoo models, both methods and a few sparsities on each data set, and
prints one markdown table per data set: test MSE (scaled) dense / pruned / fine-tuned, the
seasonal naive MSE, measured weight sparsity, parameter fraction, MACs ratio, CPU latency ratio
(one thread, median of repeats after warm-up) and the dense / sparse size ratio. Everything is
measured on this machine; nothing is assumed. Each data set's cells live in ``OUT/<data>/``
(resumable). Writes ``OUT/prune_study.json``.

    python packages/hai-forecast/benchmarks/prune_study.py --out prune-out \
        [--data synthetic simbench vic_elec path/to.csv] [--models autoformer fedformer patchtst]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]
import torch

from hai.forecast.pruning.cli import load_study_data
from hai.forecast.pruning.study import StudySpec, run_study
from hai.shared import atomic_write


def markdown(table: pd.DataFrame, data: str) -> str:
    head = (
        "| model | method | s | weight sparsity | params | MSE dense | MSE pruned | MSE fine-tuned | "
        "MSE s-naive | MACs ratio | latency ms | latency ratio | size ratio (sparse) |"
    )
    lines = [f"**{data}**", "", head, "|" + "---|" * 13]
    for r in table.to_dict(orient="records"):
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['method']} | {r['sparsity']:g} | failed: {r.get('error')} |")
            continue
        lines.append(
            f"| {r['model']} | {r['method']} | {r['sparsity']:g} | {r['weight_sparsity']:.3f} | "
            f"{r['parameter_fraction']:.3f} | {r['mse_dense']:.4f} | {r['mse_pruned']:.4f} | "
            f"{r['mse_finetuned']:.4f} | {r['mse_seasonal_naive']:.4f} | {r['macs_ratio']:.2f} | "
            f"{r['latency_s'] * 1e3:.2f} | {r['latency_ratio']:.2f} | "
            f"{r['size_ratio']:.2f} ({r['sparse_size_ratio']:.2f}) |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", nargs="+", default=["synthetic", "simbench"])
    parser.add_argument("--models", nargs="+", default=["autoformer", "fedformer", "patchtst"])
    parser.add_argument("--methods", nargs="+", default=["unstructured", "structured"])
    parser.add_argument("--sparsity", nargs="+", type=float, default=[0.0, 0.5, 0.75, 0.9])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--horizon-cycles", type=int, default=4)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument(
        "--simbench-weeks", type=int, default=20, help="the first N weeks of the SimBench year"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    results = {}
    for data in args.data:
        y = load_study_data(data)
        if data == "simbench":
            y = y.iloc[: 24 * 7 * args.simbench_weeks]
        spec = StudySpec(
            models=tuple(args.models),
            methods=tuple(args.methods),
            sparsities=tuple(args.sparsity),
            epochs=args.epochs,
            finetune_epochs=args.finetune_epochs,
            horizon_cycles=args.horizon_cycles,
            stride=args.stride,
            data=Path(data).name,
        )
        t0 = time.perf_counter()
        result = run_study(y, out / Path(data).stem.replace(":", "_"), spec)
        seconds = time.perf_counter() - t0
        shape = f"{y.shape[0]} steps x {y.shape[1] if y.ndim > 1 else 1} columns"
        print(f"\n{markdown(result.table, f'{data}: {shape}')}")
        print(f"({seconds:.0f} s)")
        results[data] = {
            "steps": int(y.shape[0]),
            "seconds": seconds,
            "rows": result.table.to_dict(orient="records"),
        }
    with atomic_write(out / "prune_study.json") as fh:
        json.dump(results, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

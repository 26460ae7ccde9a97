"""Epochs to a target test accuracy: sample-parallel (independent augmentations) vs data-parallel.

Both runs use W = 2 processes started by torchrun (``hai.scale.launch``), the same Bayesian
network, global batch, S weight samples, learning rate and seed; each evaluates the mean
predictive over 16 samples on the held-out digits after every epoch and stops at the target.

* **sample**: each rank evaluates S/2 samples on the whole batch; every weight sample sees its
  own augmentation of the batch (``augment_per="sample"``), so a step sees S augmented views
  of each example — the setting of Özdemir et al. (PASC26);
* **data**: each rank evaluates all S samples on half the batch; each example is augmented once
  per step and all samples share that view (``augment_per="step"``), as DDP training does.

Because hai's noise and augmentations are keyed by (seed, step, sample) and not by rank, the
difference measured here comes from the augmentation policy alone, not from the process layout
(running either policy on 1 process gives the same numbers up to rounding).

    python packages/hai-scale/examples/exp_epochs_to_accuracy.py --out build/bench
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from hai.scale import BNNConfig, launch
from hai.shared import write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/bench", help="output folder (default build/bench)")
    parser.add_argument("--target", type=float, default=0.95, help="target test accuracy (default 0.95)")
    parser.add_argument("--max-epochs", type=int, default=25, help="give up after (default 25)")
    parser.add_argument("--samples", type=int, default=4, help="weight samples per step (default 4)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0… (default 3)")
    parser.add_argument("--model", default="cnn", choices=("mlp", "cnn"), help="default cnn")
    parser.add_argument("--nproc", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--device", default="cpu", help="default cpu")
    args = parser.parse_args()
    runs = []
    for seed in range(args.seeds):
        for mode, per in (("sample", "sample"), ("data", "step")):
            config = BNNConfig(
                data="digits",
                model=args.model,
                mode=mode,
                samples=args.samples,
                batch_size=64,
                epochs=args.max_epochs,
                lr=3e-3,
                augment=True,
                augment_per=per,
                eval_samples=16,
                target_accuracy=args.target,
                seed=seed,
                device=args.device,
            )
            start = time.perf_counter()
            result = launch(config, args.nproc)
            wall = time.perf_counter() - start
            reached = result["accuracy"] >= args.target
            runs.append(
                {
                    "seed": seed,
                    "mode": mode,
                    "augment_per": per,
                    "epochs_to_target": result["epochs"] if reached else None,
                    "final_accuracy": result["accuracy"],
                    "final_ece": result["ece"],
                    "step_time_s": result["step_time_s"],
                    "wall_s": wall,
                    "accuracy_per_epoch": [h["test_accuracy"] for h in result["history"]],
                }
            )
            r = runs[-1]
            print(
                f"seed {seed} {mode:<6} (augment per {per:<6}): epochs to {args.target:.2f}: "
                f"{r['epochs_to_target'] or 'not reached'}, accuracy {r['final_accuracy']:.3f}, "
                f"ECE {r['final_ece']:.3f}, {r['step_time_s'] * 1e3:.1f} ms/step, {wall:.0f} s",
                flush=True,
            )
    summary = {}
    for mode in ("sample", "data"):
        epochs = [r["epochs_to_target"] for r in runs if r["mode"] == mode]
        reached = [e for e in epochs if e is not None]
        summary[mode] = {
            "reached": f"{len(reached)}/{len(epochs)}",
            "mean_epochs": statistics.fmean(reached) if reached else None,
            "epochs": epochs,
        }
        print(f"{mode:<6}: reached {len(reached)}/{len(epochs)}, epochs {epochs}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(
        out / "exp_epochs_to_accuracy.json",
        {"settings": vars(args), "torch": torch.__version__, "runs": runs, "summary": summary},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

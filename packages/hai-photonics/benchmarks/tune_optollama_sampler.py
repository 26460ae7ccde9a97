"""Choose OptoLlama's sampler settings on validation targets (not the benchmark's held-out ones).

Best-of-k mean MAE of each sampler / temperature / top-p setting on random targets of their own
seed (777; ``bench_inverse.py`` scores seed 12345), with the mean number of layers of the chosen
designs (an undertrained model collapses to short stacks)::

    OMP_NUM_THREADS=1 python packages/hai-photonics/benchmarks/tune_optollama_sampler.py \\
        --targets 100 --checkpoint /tmp/hai-ship/optollama-small.safetensors

The designer's defaults are set from this run (the output is recorded in the package README).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hai.photonics.dataset import random_stacks
from hai.photonics.inverse.checkpoints import shipped_model_path
from hai.photonics.inverse.designers import OptoLlamaDesigner
from hai.photonics.simulate import OPTOLLAMA, simulate_ids
from hai.photonics.stacks import Vocabulary

VALIDATION_SEED = 777
SETTINGS = [
    ("confidence", 0.65, 0.9),
    ("confidence", 1.0, 0.9),
    ("confidence", 1.0, None),
    ("remask", 0.65, 0.9),
    ("remask", 1.0, 0.9),
    ("remask", 1.0, None),
    ("length", 0.65, 0.9),
    ("length", 1.0, 0.9),
    ("length", 1.0, None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped OptoLlama")
    parser.add_argument("--samplers", default="confidence,remask,length", help="comma-separated subset")
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocab = Vocabulary()
    ids = random_stacks(args.targets, np.random.default_rng(VALIDATION_SEED), vocab)
    targets = simulate_ids(ids, vocab, OPTOLLAMA).stacked().clamp(0, 1).float()
    checkpoint = args.checkpoint or shipped_model_path("optollama")
    chosen = set(args.samplers.split(","))
    for sampler, temperature, top_p in SETTINGS:
        if sampler not in chosen:
            continue
        designer = OptoLlamaDesigner(checkpoint, sampler=sampler, temperature=temperature, top_p=top_p)
        start = time.process_time()
        designs = designer.design(targets, k=args.k)
        layers = float(np.mean([len(s.layers) for s in designs.stacks]))
        row = {
            "sampler": sampler,
            "temperature": temperature,
            "top_p": top_p,
            "k": args.k,
            "mae_mean": round(float(designs.mae.mean()), 5),
            "mean_layers": round(layers, 2),
            "cpu_s_per_design": round((time.process_time() - start) / args.targets, 3),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

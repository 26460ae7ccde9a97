"""Compare template, OptoGPT and OptoLlama on held-out random targets (best-of-1, best-of-k,
with and without thickness refinement): mean spectral MAE, valid fraction, time per design.

    python packages/hai-photonics/benchmarks/bench_inverse.py --targets 1000 --library /tmp/inv/train

Targets are random stacks from another seed than the training data (seed 1), simulated with the
OptoLlama preset. The template library is the training data set when ``--library`` is given.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hai.photonics.dataset import Dataset, load_dataset, random_stacks
from hai.photonics.inverse.designers import OptoGPTDesigner, OptoLlamaDesigner, TemplateDesigner
from hai.photonics.simulate import OPTOLLAMA, simulate_ids
from hai.photonics.stacks import Vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--refine-targets", type=int, default=50, help="targets refined (refinement is slow)")
    parser.add_argument("--library", default=None, help="template library (default: 200k random, seed 0)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = Vocabulary()
    ids = random_stacks(args.targets, np.random.default_rng(1), vocab)
    targets = simulate_ids(ids, vocab, OPTOLLAMA).stacked().clamp(0, 1).float()
    if args.library:
        library = load_dataset(args.library)
    else:
        lib_ids = random_stacks(200_000, np.random.default_rng(0), vocab)
        library = Dataset(
            simulate_ids(lib_ids, vocab, OPTOLLAMA).stacked().clamp(0, 1).half(), lib_ids, vocab, OPTOLLAMA, 0
        )
    designers = {
        "template": TemplateDesigner().fit(library),
        "optogpt": OptoGPTDesigner.shipped(),
        "optollama": OptoLlamaDesigner.shipped(),
    }
    rows = []
    for name, designer in designers.items():
        for k in (1, args.k):
            start = time.perf_counter()
            d = designer.design(targets, k=k)
            row = {
                "designer": name,
                "k": k,
                "mae": round(float(d.mae.mean()), 5),
                "valid_fraction": d.valid_fraction,
                "s_per_design": round((time.perf_counter() - start) / args.targets, 4),
            }
            if args.refine_targets:
                n = min(args.refine_targets, args.targets)
                r = designer.design(targets[:n], k=k, refine=True)
                row["refined_subset"] = n
                row["mae_subset_before"] = round(float(r.mae_before_refine.mean()), 5)
                row["mae_subset_refined"] = round(float(r.mae.mean()), 5)
            rows.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

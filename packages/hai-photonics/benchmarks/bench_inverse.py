"""Template vs OptoGPT vs OptoLlama on held-out random targets and the four preset targets:
mean spectral MAE (R, A, T) of best-of-1 and best-of-k designs, with and without thickness
refinement, valid-sequence fraction, time per design; the ratios the OptoLlama paper reports
(template / OptoLlama and OptoGPT / OptoLlama, best of 10) are computed from the same numbers.

    OMP_NUM_THREADS=1 python packages/hai-photonics/benchmarks/bench_inverse.py \\
        --targets 1000 --library /tmp/hai-ship/data-n300000-seed0 --out build/bench/inverse.json

By default the models are the ones shipped in the package (``train_shipped_model.py``) and the
template library is their training data (give it with ``--library``, or it is regenerated from
the OptoLlama checkpoint's recipe JSON: the stack count and data seed of its training data).
``--designers`` runs a subset, so that designers can run in parallel processes. Held-out targets
are random stacks drawn from another stream (seed 12345) and simulated with the OptoLlama preset
(300–2000 nm, air on both sides). Refinement is run on the first ``--refine-targets`` targets
(it is the slow part).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hai.photonics.dataset import generate_dataset, load_dataset, random_stacks
from hai.photonics.inverse.checkpoints import shipped_model_path
from hai.photonics.inverse.designers import OptoGPTDesigner, OptoLlamaDesigner, TemplateDesigner
from hai.photonics.inverse.targets import PRESET_TARGETS, preset_target
from hai.photonics.simulate import OPTOLLAMA, simulate_ids
from hai.photonics.stacks import Vocabulary
from hai.shared import write_json

HELD_OUT_SEED = 12345


def _row(name: str, k: int, designs: Any, seconds: float, cpu: float, n: int) -> dict[str, Any]:
    return {
        "designer": name,
        "k": k,
        "targets": n,
        "mae_mean": round(float(designs.mae.mean()), 5),
        "mae_median": round(float(designs.mae.median()), 5),
        "valid_fraction": round(designs.valid_fraction, 4),
        "s_per_design": round(seconds / n, 4),
        "cpu_s_per_design": round(cpu / n, 4),  # process CPU time: the wall time on a shared machine
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200, help="held-out random targets")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--refine-targets", type=int, default=40, help="targets also refined")
    parser.add_argument("--library", default=None, help="template library: a data set folder")
    parser.add_argument("--optollama", default=None, help="OptoLlama checkpoint (default: shipped)")
    parser.add_argument("--optogpt", default=None, help="OptoGPT checkpoint (default: shipped)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--designers",
        default="template,optogpt,optollama",
        help="comma-separated subset (run subsets in parallel processes; the ratios need all three)",
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = Vocabulary()

    def load_library() -> Any:
        if args.library:
            return load_dataset(args.library)
        # the OptoLlama checkpoint's own training data, from the recipe next to it
        recipe_path = checkpoints["optollama"].with_suffix(".json")
        data = json.loads(recipe_path.read_text(encoding="utf-8"))["data"] if recipe_path.is_file() else {}
        n, seed = int(data.get("n_stacks", 100_000)), int(data.get("data_seed", 0))
        folder = Path(f"build/bench/inverse-library-n{n}-seed{seed}")
        return load_dataset(generate_dataset(folder, n, seed=seed, shard_size=25_000).path)

    ids = random_stacks(args.targets, np.random.default_rng(HELD_OUT_SEED), vocab)
    held_out = simulate_ids(ids, vocab, OPTOLLAMA).stacked().clamp(0, 1).float()
    presets = torch.stack([preset_target(name, OPTOLLAMA)[0] for name in PRESET_TARGETS])
    checkpoints = {
        "optollama": Path(args.optollama or shipped_model_path("optollama")),
        "optogpt": Path(args.optogpt or shipped_model_path("optogpt")),
    }
    chosen = [name.strip() for name in args.designers.split(",") if name.strip()]
    unknown = sorted(set(chosen) - {"template", "optogpt", "optollama"})
    if unknown or not chosen:
        parser.error(f"--designers: unknown {unknown}; choose from template, optogpt, optollama")
    builders: dict[str, Any] = {
        "template": lambda: TemplateDesigner().fit(load_library()),
        "optogpt": lambda: OptoGPTDesigner(checkpoints["optogpt"]),
        "optollama": lambda: OptoLlamaDesigner(checkpoints["optollama"]),
    }
    designers: dict[str, Any] = {name: builders[name]() for name in chosen}
    rows: list[dict[str, Any]] = []
    preset_rows: list[dict[str, Any]] = []
    n_ref = min(args.refine_targets, args.targets)
    for name, designer in designers.items():
        for k in (1, args.k):
            start, cpu = time.perf_counter(), time.process_time()
            designs = designer.design(held_out, k=k)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            row = _row(name, k, designs, wall, cpu, args.targets)
            if n_ref:
                start, cpu = time.perf_counter(), time.process_time()
                refined = designer.design(held_out[:n_ref], k=k, refine=True)
                row["refined_targets"] = n_ref
                row["mae_mean_subset_unrefined"] = round(float(refined.mae_before_refine.mean()), 5)
                row["mae_mean_subset_refined"] = round(float(refined.mae.mean()), 5)
                row["s_per_refined_design"] = round((time.perf_counter() - start) / n_ref, 4)
                row["cpu_s_per_refined_design"] = round((time.process_time() - cpu) / n_ref, 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
            on_presets = designer.design(presets, k=k, refine=True)
            preset_rows.append(
                {
                    "designer": name,
                    "k": k,
                    **{
                        f"{p}_mae": round(float(m), 5)
                        for p, m in zip(PRESET_TARGETS, on_presets.mae_before_refine.tolist(), strict=True)
                    },
                    **{
                        f"{p}_mae_refined": round(float(m), 5)
                        for p, m in zip(PRESET_TARGETS, on_presets.mae.tolist(), strict=True)
                    },
                    "designs": [str(s) for s in on_presets.stacks],
                }
            )
    best = {(r["designer"], r["k"]): r["mae_mean"] for r in rows}
    ratios: dict[str, Any] = {
        "paper": {"template_over_optollama": 2.9, "optogpt_over_optollama": 3.45, "stacks": 10_000_000}
    }
    for baseline in ("template", "optogpt"):
        if (baseline, args.k) in best and ("optollama", args.k) in best:
            ratios[f"{baseline}_over_optollama_best_of_{args.k}"] = round(
                best[(baseline, args.k)] / best[("optollama", args.k)], 3
            )
    recipes = {}
    for kind, path in checkpoints.items():
        if kind not in designers:
            continue
        recipe_path = path.with_suffix(".json")
        if recipe_path.is_file():
            recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
            recipes[kind] = {k: v for k, v in recipe.items() if k != "history"}
    result = {
        "held_out": {"targets": args.targets, "seed": HELD_OUT_SEED, "preset": OPTOLLAMA.name},
        "library_size": (
            len(designers["template"].baseline.library_tokens_) if "template" in designers else None
        ),
        "threads": args.threads,
        "rows": rows,
        "presets": preset_rows,
        "ratios": ratios,
        "models": recipes,
    }
    print(json.dumps(ratios))
    for row in preset_rows:
        print(json.dumps({k: v for k, v in row.items() if k != "designs"}))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()

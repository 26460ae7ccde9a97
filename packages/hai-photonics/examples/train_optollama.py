"""Train the small OptoLlama (and the OptoGPT baseline) shipped inside hai-photonics.

The recipe of the shipped files ``hai/photonics/inverse/optollama-small.safetensors`` and
``optogpt-small.safetensors``: 200,000 random stacks (data seed 0, OptoLlama preset: 300–2000 nm,
air on both sides), the ``small`` network (d_model 128, 4 blocks, 4 heads, ≈2.0 M parameters),
batch 256, AdamW lr 1e-3, 100 warm-up steps and cosine decay, 2 % validation, one torch thread;
both models get the same data, steps and time limit. The best validation checkpoint is written in
float16 with the recipe (and the measured wall time) in its metadata.

    python packages/hai-photonics/examples/train_optollama.py --model optollama --work /tmp/inv
    python packages/hai-photonics/examples/train_optollama.py --model optogpt --work /tmp/inv

(the two can run side by side, one core each). ``--ship`` copies the result into the package.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hai.photonics.dataset import generate_dataset
from hai.photonics.inverse.checkpoints import load_model, save_model, shipped_model_path
from hai.photonics.inverse.data import load_training_data
from hai.photonics.inverse.training import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["optollama", "optogpt"], default="optollama")
    parser.add_argument("--work", default="/tmp/hai-inverse", help="folder for the data and checkpoints")
    parser.add_argument("--n", type=int, default=200_000, help="training stacks")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--size", default="small")
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ship", action="store_true", help="write the result into the package")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    t0 = time.perf_counter()
    generate_dataset(work / "train", args.n, seed=args.data_seed, shard_size=50_000)
    data_s = time.perf_counter() - t0
    data = load_training_data(work / "train")
    cfg = TrainConfig(
        model=args.model,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        max_seconds=args.max_seconds,
        eval_every=200,
        patience=5,
        seed=0,
    )
    result = train(data, work / args.model, cfg)
    print(
        f"{args.model}: {result.step} steps, best validation loss {result.best_val:.4f}, "
        f"{result.wall_s:.0f} s ({result.stopped})"
    )
    loaded = load_model(result.best_path, kind=args.model, vocab=data.vocab)
    recipe = {
        **loaded.training,
        "recipe": {
            "script": "packages/hai-photonics/examples/train_optollama.py",
            "data_seed": args.data_seed,
            "data_n": args.n,
            "size": args.size,
            "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "steps_done": result.step,
            "train_wall_s": round(result.wall_s, 1),
            "data_wall_s": round(data_s, 1),
            "threads": args.threads,
            "stopped": result.stopped,
        },
    }
    target = shipped_model_path(args.model) if args.ship else work / f"{args.model}-small.safetensors"
    save_model(
        target,
        loaded.model,
        loaded.vocab,
        loaded.simulation,
        schedule=loaded.schedule,
        training=recipe,
        seed=0,
        half=True,
    )
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

"""Train the small OptoLlama (and the OptoGPT baseline) shipped inside hai-photonics.

The recipe, run on one CPU thread (the numbers of the shipped files are in the JSON written next
to each model, ``src/hai/photonics/inverse/<model>-small.json``)::

    python benchmarks/train_shipped_model.py --stage data --work /tmp/hai-ship
    OMP_NUM_THREADS=1 python benchmarks/train_shipped_model.py --model optollama --work /tmp/hai-ship
    OMP_NUM_THREADS=1 python benchmarks/train_shipped_model.py --model optogpt --work /tmp/hai-ship

(the two trainings ran at the same time, one CPU core each).
``--stage data`` generates the random stacks and their TMM spectra (seeded, resumable);
``--model`` trains one model on them for at most ``--max-seconds`` (both models get the same
data, batch size and wall-time budget on one thread: the same data and compute), then writes
the best validation checkpoint in float16 into the package with a recipe JSON beside it.
A rerun resumes an interrupted training from ``--work``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from hai.photonics.dataset import generate_dataset
from hai.photonics.inverse.checkpoints import load_model, save_model, shipped_model_path
from hai.photonics.inverse.data import load_training_data
from hai.photonics.inverse.model import SIZES
from hai.photonics.inverse.training import TrainConfig, train
from hai.shared import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=["data", "train"], default="train")
    parser.add_argument("--model", choices=["optollama", "optogpt"], default="optollama")
    parser.add_argument("--work", default="/tmp/hai-photonics-shipped")
    parser.add_argument("--n", type=int, default=300_000, help="generated stacks")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--size", default="mini", choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=9000, help="cosine schedule length (steps)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--max-seconds", type=float, default=40 * 60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (data generation and training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="default: the package's shipped-model path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    data_dir = work / f"data-n{args.n}-seed{args.data_seed}"
    if args.stage == "data":
        info = generate_dataset(data_dir, args.n, seed=args.data_seed, shard_size=25_000, device=args.device)
        print(f"{info.n} stacks in {data_dir} ({info.wall_s:.0f} s)")
        return
    data = load_training_data(data_dir)
    cfg = TrainConfig(
        model=args.model,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=200,
        eval_every=args.eval_every,
        patience=1000,  # the time limit ends the run; the best validation checkpoint is kept
        seed=args.seed,
        max_seconds=args.max_seconds,
    )
    start = time.perf_counter()
    result = train(data, work / args.model, cfg, progress_bar=False, device=args.device)
    loaded = load_model(result.best_path, kind=args.model)  # on the CPU
    out = Path(args.out) if args.out else shipped_model_path(args.model)
    training = dict(loaded.training)
    save_model(
        out,
        loaded.model,
        loaded.vocab,
        loaded.simulation,
        schedule=loaded.schedule,
        training=training,
        seed=cfg.seed,
        half=True,
    )
    n_params = sum(p.numel() for p in loaded.model.parameters())
    recipe = {
        "model": args.model,
        "file": out.name,
        "bytes": out.stat().st_size,
        "parameters": n_params,
        "model_config": loaded.model.config.to_dict(),
        "train_config": {k: v for k, v in vars(cfg).items()},
        "data": {"n_stacks": len(data), "data_seed": args.data_seed, "preset": data.config.name},
        "steps_done": result.step,
        "best_val_loss": result.best_val,
        "best_step": int(training.get("step", -1)),
        "stopped": result.stopped,
        "train_wall_s": round(result.wall_s, 1),
        "total_wall_s_this_call": round(time.perf_counter() - start, 1),
        "threads": args.threads,
        "device": args.device,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "history": result.history,
        "command": f"python benchmarks/train_shipped_model.py --model {args.model} --n {args.n} "
        f"--size {args.size} --steps {args.steps} --batch-size {args.batch_size} --max-seconds "
        f"{args.max_seconds:g}",
    }
    write_json(out.with_suffix(".json"), recipe)
    print(json.dumps({k: v for k, v in recipe.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()

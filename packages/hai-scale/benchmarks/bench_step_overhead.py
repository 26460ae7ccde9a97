"""The per-step overhead of sample parallelism at W = 2: the step as it was against the step now.

*old*: DDP copies gradients out of its buckets, and after the backward pass a second all-reduce
sums the loss, which ``float()`` then brings to the host, every step; *new*
(:meth:`hai.scale.SamplingParallel.forward_backward`): the loss value rides in DDP's gradient
all-reduce (one collective per step), gradients are bucket views, no host synchronisation. Both
run in the same pair of gloo processes (one intra-op thread each) on the same batch, in
alternating blocks of ``--steps`` steps after 3 warm-up steps each; a block's time per step is the
slowest rank's, its CPU time per step this rank's; medians over ``--blocks`` blocks per variant.

    python packages/hai-scale/benchmarks/bench_step_overhead.py --out build/bench [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from hai.scale import ELBOLoss, SamplingParallel, digits_classification, small_cnn, to_bayesian
from hai.scale.bnn.layers import kl_divergence
from hai.shared import write_json


def worker(rank: int, init: str, s0: int, batch: int, blocks: int, steps: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init}", rank=rank, world_size=2, timeout=timedelta(seconds=120)
    )
    data = digits_classification(seed=0)
    x, y = data.x_train[:batch], data.y_train[:batch]
    elbo = ELBOLoss(1000)

    def make(old: bool) -> tuple[SamplingParallel, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = to_bayesian(small_cnn(10, (8, 8), channels=(8, 16)))
        engine = SamplingParallel(model, elbo, mode="sample", samples=2 * s0, batch_size=batch)
        if old:
            engine.module = DistributedDataParallel(engine.mc)  # gradients copied out of the buckets
        return engine, torch.optim.Adam(model.parameters(), lr=1e-3)

    def step_old(engine: SamplingParallel, opt: torch.optim.Optimizer, k: int) -> None:
        opt.zero_grad(set_to_none=True)
        wl = engine.workload
        data_sum = elbo.data_sum(engine.local_outputs(x, k), y)
        kl = elbo.kl_term(kl_divergence(engine.model))
        probe = engine.mc.loss_probe.sum() * 0  # unused by the old step, but DDP manages it
        (data_sum * (2 / (wl.samples * batch)) + kl + probe).backward()
        total = data_sum.detach().clone()
        dist.all_reduce(total)  # the second collective
        float(total / (wl.samples * batch) + kl.detach())  # the host synchronisation
        opt.step()

    def step_new(engine: SamplingParallel, opt: torch.optim.Optimizer, k: int) -> None:
        opt.zero_grad(set_to_none=True)
        engine.forward_backward(x, y, k)
        opt.step()

    variants: dict[str, tuple[Callable[..., None], tuple[SamplingParallel, torch.optim.Optimizer]]] = {
        "old": (step_old, make(True)),
        "new": (step_new, make(False)),
    }
    k = 0
    for fn, state in variants.values():
        for _ in range(3):
            fn(*state, k)
            k += 1
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for b in range(blocks):
        for name in ("old", "new") if b % 2 == 0 else ("new", "old"):
            fn, state = variants[name]
            dist.barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                fn(*state, k)
                k += 1
            t = torch.tensor([(time.perf_counter() - t0) / steps], dtype=torch.float64)
            cpu[name].append((time.process_time() - c0) / steps)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            wall[name].append(float(t))
    result = {
        name: {"wall_ms": statistics.median(wall[name]) * 1e3, "cpu_ms": statistics.median(cpu[name]) * 1e3}
        for name in variants
    }
    print(json.dumps({"rank": rank, **result}), flush=True)
    dist.destroy_process_group()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        rank, init, *rest = sys.argv[2:]
        s0, batch, blocks, steps = (int(v) for v in rest)
        worker(int(rank), init, s0, batch, blocks, steps)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/bench", help="output folder (default build/bench)")
    parser.add_argument("--samples-per-rank", type=int, default=4, help="samples per process (default 4)")
    parser.add_argument("--batch", type=int, default=64, help="batch (default 64)")
    parser.add_argument("--blocks", type=int, default=10, help="timed blocks per variant (default 10)")
    parser.add_argument("--steps", type=int, default=10, help="steps per block (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hai-bench-overhead-") as tmp:
        extra = [str(args.samples_per_rank), str(args.batch), str(args.blocks), str(args.steps)]
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(r), f"{tmp}/init", *extra],
                env=dict(os.environ, OMP_NUM_THREADS="1"),
                stdout=subprocess.PIPE,
                text=True,
            )
            for r in range(2)
        ]
        outs = [p.communicate(timeout=900)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("a benchmark worker failed")
    ranks = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    print(f"S0 = {args.samples_per_rank}, B = {args.batch}, W = 2 (sample mode)")
    print(f"{'step':<5} {'wall ms/step':>12} {'CPU ms/step (rank 0 / 1)':>26}")
    for name in ("old", "new"):
        cpu = " / ".join(f"{r[name]['cpu_ms']:.2f}" for r in ranks)
        print(f"{name:<5} {ranks[0][name]['wall_ms']:>12.2f} {cpu:>26}")
    print(f"new / old wall time: {ranks[0]['new']['wall_ms'] / ranks[0]['old']['wall_ms']:.3f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(
        out / "bench_step_overhead.json",
        {"settings": vars(args), "cpus": os.cpu_count(), "torch": torch.__version__, "ranks": ranks},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

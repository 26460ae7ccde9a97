"""Weak and strong scaling of sampling parallelism against data parallelism, W = 1 and 2 processes.

A Bayesian CNN (the 8x8 digits, batch 64, ``hai.scale.small_cnn`` made Bayesian) takes optimizer
steps of the S-sample ELBO through :class:`hai.scale.SamplingParallel`:

* **weak scaling**: S = S0·W (the work per process stays S0 samples × B examples);
  efficiency = T(1) / T(W);
* **strong scaling**: S fixed; efficiency = T(1) / (W·T(W)).

W = 1 is the single-process (``local``) run, the baseline of both modes. Each configuration runs
in fresh processes, ``--repeats`` times in interleaved rounds (one intra-op thread each, gloo
over a file:// rendezvous on CPU, nccl with one GPU per rank on CUDA), times ``--steps`` steps
after ``--warmup`` warm-up steps (median of the per-step maximum over ranks, then the median
over the rounds) and reports two memory figures per process: the bytes autograd saves for the
backward pass of one step (activations, noise and sampled weights, each storage counted once;
what grows with samples × rows) and the peak resident memory (``ru_maxrss``: the whole process,
torch runtime and data included).
Prints a table and writes ``bench_sampling_parallel.json`` to ``--out``.

    python packages/hai-scale/benchmarks/bench_sampling_parallel.py --out build/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hai.scale import (
    ELBOLoss,
    SamplingParallel,
    digits_classification,
    small_cnn,
    synthetic_classification,
    to_bayesian,
)
from hai.scale.parallel.training import max_rss_mib
from hai.shared import MissingPackageError, RngStreams, resolve_device, write_json


def worker(rank: int, world: int, init_file: str, result_file: str, spec: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    device = resolve_device(spec["device"])
    if world > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend,
            init_method=f"file://{init_file}",
            rank=rank,
            world_size=world,
            timeout=timedelta(seconds=120),
        )
    try:
        rss_start = max_rss_mib()
        try:
            data = digits_classification(seed=0)
        except MissingPackageError:
            data = synthetic_classification(1797, n_features=64, n_classes=10, seed=0)
            data.image_shape = (8, 8)
        torch.manual_seed(0)
        model = to_bayesian(small_cnn(10, (8, 8), channels=(8, 16))).to(device)
        engine = SamplingParallel(
            model,
            ELBOLoss(data.x_train.shape[0]),
            mode=spec["mode"],
            samples=spec["samples"],
            batch_size=spec["batch"],
            seed=0,
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x_all, y_all = data.x_train.to(device), data.y_train.to(device)
        order = torch.randperm(x_all.shape[0], generator=RngStreams(0).torch("bench-order"))
        times = []
        for step in range(spec["warmup"] + spec["steps"]):
            idx = order[(step * spec["batch"]) % (x_all.shape[0] - spec["batch"]) :][: spec["batch"]]
            if world > 1:
                dist.barrier()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            engine.forward_backward(x_all[idx], y_all[idx], step)
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        # Bytes autograd keeps for the backward pass of one step (activations, noise, sampled
        # weights; each storage once): the part of the memory that grows with samples × rows.
        seen: dict[tuple[int, int], int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
            return t

        opt.zero_grad(set_to_none=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            engine.forward_backward(x_all[: spec["batch"]], y_all[: spec["batch"]], 10**6)
        saved_mib = sum(seen.values()) / 2**20
        own = torch.tensor(times[spec["warmup"] :], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(own, op=dist.ReduceOp.MAX)  # a step takes as long as its slowest rank
        result = {
            "rank": rank,
            "step_s": statistics.median(own.tolist()),
            "rss_mib": max_rss_mib(),
            "saved_mib": saved_mib,
            "rss_start_mib": rss_start,
            "local_samples": engine.workload.local_samples,
            "local_batch": engine.workload.local_batch,
        }
        Path(f"{result_file}.{rank}").write_text(json.dumps(result))
    finally:
        if world > 1:
            dist.destroy_process_group()


def run_config(spec: dict[str, Any], world: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hai-bench-sp-") as tmp:
        result_file = str(Path(tmp) / "result")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(r),
                    str(world),
                    str(Path(tmp) / "init"),
                    result_file,
                    json.dumps(spec),
                ],
                env=env,
            )
            for r in range(world)
        ]
        for p in procs:
            p.wait(timeout=600)
        if any(p.returncode for p in procs):
            raise RuntimeError(f"benchmark workers failed for {spec} on {world} processes")
        ranks = [json.loads(Path(f"{result_file}.{r}").read_text()) for r in range(world)]
    return {
        **spec,
        "world_size": world,
        "step_s": ranks[0]["step_s"],
        "rss_mib": [r["rss_mib"] for r in ranks],
        "saved_for_backward_mib": [r["saved_mib"] for r in ranks],
        "local_samples": ranks[0]["local_samples"],
        "local_batch": ranks[0]["local_batch"],
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        rank, world, init_file, result_file, spec = sys.argv[2:7]
        worker(int(rank), int(world), init_file, result_file, json.loads(spec))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/bench", help="output folder (default build/bench)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--samples-per-rank", type=int, default=4, help="S0 of weak scaling (default 4)")
    parser.add_argument("--strong-samples", type=int, default=8, help="S of strong scaling (default 8)")
    parser.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up steps (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    worlds = (1, 2)
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        print("note: one GPU only, W = 2 is skipped", file=sys.stderr)
        worlds = (1,)
    base = {"device": str(device.type), "batch": args.batch, "steps": args.steps, "warmup": args.warmup}
    plan = []  # (scaling, mode, world, samples)
    for scaling in ("weak", "strong"):
        s1 = args.samples_per_rank if scaling == "weak" else args.strong_samples
        plan.append((scaling, "local", 1, s1))
        for world in worlds[1:]:
            for mode in ("sample", "data"):
                plan.append((scaling, mode, world, s1 * world if scaling == "weak" else s1))
    # Rounds over all configurations, interleaved, so that load from other jobs on the machine
    # hits every configuration alike; each configuration's time is the median over the rounds.
    runs: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {key: [] for key in plan}
    for round_index in range(args.repeats):
        for key in plan:
            scaling, mode, world, samples = key
            r = run_config({**base, "mode": mode, "samples": samples}, world)
            runs[key].append(r)
            print(
                f"round {round_index + 1}: {scaling} {mode} W={world} S={samples}: "
                f"{r['step_s'] * 1e3:.2f} ms",
                file=sys.stderr,
                flush=True,
            )
    rows = []
    t1: dict[str, float] = {}
    for key in plan:
        scaling, mode, world, samples = key
        step_s = statistics.median(r["step_s"] for r in runs[key])
        if world == 1:
            t1[scaling] = step_s
        speedup = t1[scaling] / step_s
        # weak: the same work per process, so T1/TW; strong: the same total work, T1/(W·TW)
        eff = speedup if scaling == "weak" else speedup / world
        rows.append(
            {
                **runs[key][0],
                "scaling": scaling,
                "step_s": step_s,
                "step_s_rounds": [r["step_s"] for r in runs[key]],
                "efficiency": eff,
                "speedup": speedup,
            }
        )
    header = (
        f"{'scaling':<7} {'mode':<7} {'W':>2} {'S':>3} {'S/rank':>6} {'B/rank':>6} "
        f"{'ms/step':>8} {'efficiency':>10} {'saved MiB/process':>17} {'peak RSS MiB/process':>20}"
    )
    print(header)
    for r in rows:
        rss = "/".join(f"{m:.0f}" for m in r["rss_mib"])
        saved = "/".join(f"{m:.2f}" for m in r["saved_for_backward_mib"])
        print(
            f"{r['scaling']:<7} {r['mode']:<7} {r['world_size']:>2} {r['samples']:>3} "
            f"{r['local_samples']:>6} {r['local_batch']:>6} {r['step_s'] * 1e3:>8.2f} "
            f"{r['efficiency']:>10.2f} {saved:>17} {rss:>20}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(
        out / "bench_sampling_parallel.json",
        {
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor(),
                "cpus": os.cpu_count(),
                "torch": torch.__version__,
                "device": str(device),
            },
            "settings": vars(args),
            "rows": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

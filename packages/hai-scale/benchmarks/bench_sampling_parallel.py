"""Weak and strong scaling of sampling parallelism against data parallelism, W = 1 and 2 processes.

A Bayesian CNN (the 8x8 digits, ``hai.scale.small_cnn`` made Bayesian) takes optimizer steps of
the S-sample ELBO through :class:`hai.scale.SamplingParallel`:

* **weak scaling**: S = S0·W (the work per process stays S0 samples × B examples);
  efficiency = T(1) / T(W);
* **strong scaling**: S fixed; efficiency = T(1) / (W·T(W)).

W = 1 is the single-process (``local``) run, the baseline of both modes.

**Size.** Weak scaling asks whether the fixed cost of a step — one all-reduce of the 2×P
variational parameters' gradients (the loss value rides along), DDP's bookkeeping — is small
next to the work that grows with the samples. The paper's setting is a per-GPU sample count
large enough that this is so; here the defaults are S0 = 8 samples per process on a batch of
B = 128 (1,024 sample-examples per process and step: 31–58 ms of CPU time per step on one core
of a loaded 2-core machine, against 0.9–2.9 ms for a bare all-reduce of the 15,272 gradient
values over gloo on localhost there). The former defaults (S0 = 4, B = 64, 8 ms steps on an idle
core) measure mostly the fixed cost. Strong scaling uses S = 16 (the weak W = 2 total).

**Measurement.** Long-lived worker pools — one process without a process group (W = 1), two
processes joined over gloo (file:// rendezvous; nccl with one GPU per rank on CUDA) and, for
weak scaling, two **unconnected** one-process runs — one intra-op thread each, receive the
configurations as commands, so that all of them run interleaved in one run, ``--repeats``
rounds, right after one another (idle workers wait on a pipe and use no CPU). Per
configuration: ``--warmup`` steps, then ``--blocks`` blocks of ``--steps`` steps; ranks start a
block together and then run as in training (the gradient all-reduce is their only
synchronisation); a block's time per step is the slowest rank's. A configuration's time is the
median over its blocks, then over the rounds; its efficiency is the median over rounds of the
paired (same round) efficiencies. CPU ms is the process CPU time per step of the busiest rank.
"Saved MiB" is what autograd keeps for the backward pass of one step (activations, noise and
sampled weights, each storage counted once), the memory that grows with samples × rows.

The unconnected pair does the W = 2 per-process work with no communication at all, so its
efficiency T(1)/T(pair) is what the machine allows two busy processes (shared caches, memory
bandwidth, the host's scheduling of the virtual cores), and "vs unconn." = T(pair)/T(W), for
sample parallelism (the same per-process work as the pair), is the efficiency of the parallelism
itself: all-reduce, DDP, and waiting for the slower rank at every step. The pair never waits:
its two processes run their blocks independently, and its time is the slower one's median block.
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
from hai.scale.data import ClassificationData
from hai.shared import MissingPackageError, RngStreams, resolve_device, write_json

MARK = "BENCH-RESULT "
PAIR = "unconnected"  # W processes, each a one-process run, at the same time


def measure_config(spec: dict[str, Any], data: ClassificationData, device: torch.device) -> dict[str, Any]:
    """Time one configuration in this process (a rank of the current group, if any)."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    torch.manual_seed(0)
    model = to_bayesian(small_cnn(10, (8, 8), channels=tuple(spec["channels"]))).to(device)
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
    step = 0

    def run(n: int) -> None:
        nonlocal step
        for _ in range(n):
            idx = order[(step * spec["batch"]) % (x_all.shape[0] - spec["batch"]) :][: spec["batch"]]
            opt.zero_grad(set_to_none=True)
            engine.forward_backward(x_all[idx], y_all[idx], step)
            opt.step()
            step += 1

    run(spec["warmup"])
    times, cpu = [], []
    for _ in range(spec["blocks"]):
        if world > 1:
            dist.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        run(spec["steps"])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) / spec["steps"])
        cpu.append((time.process_time() - c0) / spec["steps"])
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
    own = torch.tensor(times, dtype=torch.float64)
    if world > 1:
        dist.all_reduce(own, op=dist.ReduceOp.MAX)  # a block takes as long as its slowest rank
    return {
        "step_s": statistics.median(own.tolist()),
        "cpu_s": statistics.median(cpu),
        "saved_mib": sum(seen.values()) / 2**20,
        "local_samples": engine.workload.local_samples,
        "local_batch": engine.workload.local_batch,
    }


def serve(rank: int, world: int, init_file: str, device_spec: str) -> None:
    """A worker: join the group, then answer one JSON configuration per stdin line until EOF."""
    torch.set_num_threads(1)
    device = resolve_device(device_spec)
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
            timeout=timedelta(seconds=300),
        )
    try:
        try:
            data = digits_classification(seed=0)
        except MissingPackageError:
            data = synthetic_classification(1797, n_features=64, n_classes=10, seed=0)
            data.image_shape = (8, 8)
        for line in sys.stdin:
            result = measure_config(json.loads(line), data, device)
            print(MARK + json.dumps(result), flush=True)
    finally:
        if world > 1:
            dist.destroy_process_group()


class Pool:
    """``world`` long-lived worker processes that time the configurations they are sent.

    ``joined=False`` starts them as independent one-process runs (no process group): they run the
    same command at the same time without communicating, which measures what two busy processes
    cost each other on this machine (shared caches, memory bandwidth, the host's scheduling).
    """

    def __init__(self, world: int, tmp: Path, device: str, *, joined: bool = True) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.world = world
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(r) if joined else "0",
                    str(world) if joined else "1",
                    str(tmp / (f"init-{world}" if joined else f"init-alone-{r}")),
                    device,
                ],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for r in range(world)
        ]

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(json.dumps(spec) + "\n")
            p.stdin.flush()
        ranks = []
        for p in self.procs:
            assert p.stdout is not None
            for line in p.stdout:
                if line.startswith(MARK):
                    ranks.append(json.loads(line[len(MARK) :]))
                    break
            else:
                raise RuntimeError(f"a benchmark worker of the {self.world}-process pool died on {spec}")
        return {
            **spec,
            "world_size": self.world,
            "step_s": max(r["step_s"] for r in ranks),  # the slowest process
            "cpu_s": max(r["cpu_s"] for r in ranks),
            "saved_for_backward_mib": [r["saved_mib"] for r in ranks],
            "local_samples": ranks[0]["local_samples"],
            "local_batch": ranks[0]["local_batch"],
        }

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in self.procs:
            p.wait(timeout=120)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        rank_arg, world_arg, init_file, device_spec = sys.argv[2:6]
        serve(int(rank_arg), int(world_arg), init_file, device_spec)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/bench", help="output folder (default build/bench)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--samples-per-rank", type=int, default=8, help="S0 of weak scaling (default 8)")
    parser.add_argument("--strong-samples", type=int, default=16, help="S of strong scaling (default 16)")
    parser.add_argument("--batch", type=int, default=128, help="global batch (default 128)")
    parser.add_argument("--channels", default="8,16", help="CNN channels (default 8,16)")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block (default 5)")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per process (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up steps (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    worlds: tuple[int, ...] = (1, 2)
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        print("note: one GPU only, W = 2 is skipped", file=sys.stderr)
        worlds = (1,)
    channels = [int(c) for c in args.channels.split(",")]
    base = {
        "device": str(device.type),
        "batch": args.batch,
        "channels": channels,
        "steps": args.steps,
        "blocks": args.blocks,
        "warmup": args.warmup,
    }
    plan = []  # (scaling, mode, world, samples)
    for scaling in ("weak", "strong"):
        s1 = args.samples_per_rank if scaling == "weak" else args.strong_samples
        plan.append((scaling, "local", 1, s1))
        for world in worlds[1:]:
            if scaling == "weak":
                plan.append((scaling, PAIR, world, s1 * world))
            for mode in ("sample", "data"):
                plan.append((scaling, mode, world, s1 * world if scaling == "weak" else s1))
    # Rounds over all configurations, interleaved (W = 1 right before W = 2), so that load from
    # other jobs on the machine hits every configuration alike; a configuration's time is the
    # median over the rounds, its efficiency the median of the per-round (paired) efficiencies.
    runs: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {key: [] for key in plan}
    with tempfile.TemporaryDirectory(prefix="hai-bench-sp-") as tmp:
        pools = {(world, True): Pool(world, Path(tmp), args.device) for world in worlds}
        pools.update({(w, False): Pool(w, Path(tmp), args.device, joined=False) for w in worlds[1:]})
        try:
            for round_index in range(args.repeats):
                for key in plan:
                    scaling, mode, world, samples = key
                    if mode == PAIR:  # each process alone runs the one-process configuration
                        r = pools[world, False].run({**base, "mode": "local", "samples": samples // world})
                        r["mode"], r["samples"] = PAIR, samples
                    else:
                        r = pools[world, True].run({**base, "mode": mode, "samples": samples})
                    runs[key].append(r)
                    print(
                        f"round {round_index + 1}: {scaling} {mode} W={world} S={samples}: "
                        f"{r['step_s'] * 1e3:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            for pool in pools.values():
                pool.close()
    rows = []
    t1: dict[str, list[float]] = {}
    c1: dict[str, list[float]] = {}
    pair: dict[int, list[float]] = {}
    for key in plan:
        scaling, mode, world, samples = key
        rounds = [r["step_s"] for r in runs[key]]
        cpu_rounds = [r["cpu_s"] for r in runs[key]]
        if world == 1:
            t1[scaling], c1[scaling] = rounds, cpu_rounds
        if mode == PAIR:
            pair[world] = rounds
        # CPU time per step of the busiest rank: what the work costs each process, whatever
        # else competes for the cores (waiting inside the all-reduce counts where gloo spins)
        cpu_effs = [a / b for a, b in zip(c1[scaling], cpu_rounds, strict=True)]
        speedups = [a / b for a, b in zip(t1[scaling], rounds, strict=True)]
        # weak: the same work per process, so T1/TW; strong: the same total work, T1/(W·TW)
        effs = [sp if scaling == "weak" else sp / world for sp in speedups]
        # Against W unconnected processes doing the same per-process work at the same time: the
        # cost of the parallelism itself (communication, DDP) without the machine's contention.
        vs_pair = (
            [a / b for a, b in zip(pair[world], rounds, strict=True)]
            if scaling == "weak" and mode == "sample"  # the same per-process work as the pair
            else None
        )
        rows.append(
            {
                **runs[key][0],
                "scaling": scaling,
                "step_s": statistics.median(rounds),
                "step_s_rounds": rounds,
                "efficiency": statistics.median(effs),
                "efficiency_rounds": effs,
                "efficiency_vs_unconnected": statistics.median(vs_pair) if vs_pair else None,
                "efficiency_vs_unconnected_rounds": vs_pair,
                "cpu_s": statistics.median(cpu_rounds),
                "cpu_s_rounds": cpu_rounds,
                "cpu_efficiency": statistics.median(e if scaling == "weak" else e / world for e in cpu_effs),
                "speedup": statistics.median(speedups),
            }
        )
    header = (
        f"{'scaling':<7} {'mode':<11} {'W':>2} {'S':>3} {'S/rank':>6} {'B/rank':>6} "
        f"{'ms/step':>8} {'efficiency':>10} {'rounds':>11} {'vs unconn.':>10} {'CPU ms':>7} "
        f"{'CPU eff.':>8} {'saved MiB/process':>17}"
    )
    print(header)
    for r in rows:
        saved = "/".join(f"{m:.2f}" for m in r["saved_for_backward_mib"])
        spread = f"{min(r['efficiency_rounds']):.2f}-{max(r['efficiency_rounds']):.2f}"
        vs = "" if r["efficiency_vs_unconnected"] is None else f"{r['efficiency_vs_unconnected']:.2f}"
        print(
            f"{r['scaling']:<7} {r['mode']:<11} {r['world_size']:>2} {r['samples']:>3} "
            f"{r['local_samples']:>6} {r['local_batch']:>6} {r['step_s'] * 1e3:>8.2f} "
            f"{r['efficiency']:>10.2f} {spread:>11} {vs:>10} {r['cpu_s'] * 1e3:>7.2f} "
            f"{r['cpu_efficiency']:>8.2f} {saved:>17}"
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

"""One point of an energy sweep, run on every rank: data-parallel training, measured per rank.

``python -m hai.scale.energy.worker --spec SPEC.json --point w2-g64-l16 --out DIR`` (with
``--init/--rank/--world`` from :mod:`hai.scale.local_ranks`, or torchrun's environment). Every
rank measures its own wall time, CPU time and energy with :func:`hai.shared.measure`; rank 0
gathers them, evaluates the model and writes ``DIR/point.json``.

Batches: each update draws ``global_batch`` training indices from a generator seeded by
(seed, epoch, step), the same on every rank; rank r takes its ``accumulation`` slices of
``local_batch`` samples, so the updates are the same for every world size and local batch
(up to floating-point summation order).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from hai.scale.energy.spec import SweepPoint, SweepSpec
from hai.scale.energy.workloads import build_workload
from hai.shared import HaiError, InputError, RngStreams, measure, write_json

__all__ = ["machine_description", "main", "train_point"]


def machine_description() -> dict[str, Any]:
    """The processor, core count and GPUs of this machine, for the results table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpus": gpus,
        "system": platform.system(),
        "torch": torch.__version__,
    }


def train_point(spec: SweepSpec, point: SweepPoint) -> dict[str, Any] | None:
    """Train one point on the current process group; rank 0 returns the row, others None."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != point.world_size:
        raise InputError(f"point {point.name} needs {point.world_size} processes, the job has {world}")
    workload = build_workload(spec.workload, spec.options, spec.seed)
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else None
    model = workload.model.to(device) if device is not None else workload.model
    net = DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr)
    n_train = workload.x_train.shape[0]
    updates_per_epoch = max(1, n_train // point.global_batch)
    total_updates = max(1, round(spec.epochs * updates_per_epoch))
    streams = RngStreams(spec.seed)
    losses: list[float] = []
    threads = torch.get_num_threads()
    with measure() as cost:
        start = time.perf_counter()
        for update in range(total_updates):
            g = streams.torch("batch", update)
            order = torch.randint(0, n_train, (point.global_batch,), generator=g)
            mine = order.reshape(point.world_size, point.accumulation, point.local_batch)[rank]
            opt.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for micro in range(point.accumulation):
                last = micro == point.accumulation - 1
                sync = nullcontext() if last or world == 1 else net.no_sync()  # type: ignore[operator]
                x, y = workload.x_train[mine[micro]], workload.y_train[mine[micro]]
                if device is not None:
                    x, y = x.to(device), y.to(device)
                with sync:
                    loss = workload.loss(net(x), y) / point.accumulation
                    loss.backward()
                loss_sum += float(loss.detach())
            opt.step()
            if loss_sum != loss_sum:
                raise InputError(f"the loss became NaN at update {update}", hint="lower the learning rate")
            losses.append(loss_sum)
        if device is not None:
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    gathered: list[Any] = [None] * world
    record = {"rank": rank, "cost": cost.to_dict(), "threads": threads}
    if world > 1:
        dist.all_gather_object(gathered, record)
    else:
        gathered = [record]
    if rank != 0:
        return None
    with torch.no_grad():
        x_test, y_test = workload.x_test, workload.y_test
        if device is not None:
            x_test, y_test = x_test.to(device), y_test.to(device)
        metric = workload.metric(model(x_test), y_test)
    wall_max = max(r["cost"]["wall_s"] for r in gathered)
    device_kind = "gpu" if device is not None else "cpu-core"
    per_device = 1 if device is not None else threads
    device_hours = point.world_size * per_device * wall_max / 3600
    energy = [r["cost"]["total_energy_j"] for r in gathered]
    unavailable = {
        f"rank{r['rank']}": r["cost"]["energy_unavailable"]
        for r in gathered
        if r["cost"]["energy_unavailable"]
    }
    return {
        "point": point.to_dict(),
        "name": point.name,
        "updates": total_updates,
        "samples": total_updates * point.global_batch,
        "wall_s": wall_max,
        "train_wall_s": wall,
        "device_kind": device_kind,
        "device_hours": device_hours,
        "samples_per_device_hour": total_updates * point.global_batch / device_hours,
        "updates_per_device_hour": total_updates / device_hours,
        "energy_j_per_rank": energy,
        "energy_j": sum(energy) if all(e is not None for e in energy) else None,
        "energy_unavailable": unavailable,
        "final_loss": losses[-1],
        "metric_name": workload.metric_name,
        "metric": metric,
        "ranks": gathered,
        "machine": machine_description(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hai.scale.energy.worker")
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--point", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--init", default=None)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", args.rank))
    try:
        spec = SweepSpec.from_dict(json.loads(args.spec.read_text()))
        point = next((p for p in spec.points() if p.name == args.point), None)
        if point is None:
            raise InputError(f"the sweep has no point {args.point!r}")
        torch.set_num_threads(1)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=args.timeout)}
        if args.init is not None:
            kwargs.update(init_method=args.init, rank=args.rank, world_size=args.world)
        dist.init_process_group(**kwargs)
        try:
            row = train_point(spec, point)
            if row is not None:
                write_json(args.out / "point.json", row)
            # every rank done before gloo is torn down: a rank that destroyed the group while its
            # peer was still closing its pairs aborted once ("terminate called without an active
            # exception", a 2-rank point of the demo)
            dist.barrier()
        finally:
            dist.destroy_process_group()
    except HaiError as exc:
        write_json(args.out / f"error{rank}.json", {"error": str(exc)})
        print(f"hai: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    from hai.scale.rank_exit import exit_rank

    exit_rank(main())

"""Run AB-training (or its DDP / PowerSGD baselines) on N local processes, or as one rank.

``launch_ab(config, nproc=4)`` starts N Python processes on this machine that meet through a
file in a private temporary folder (``file://`` rendezvous: no port is opened, so nothing
listens on any network interface), waits for them with a timeout, and returns every rank's
result. If a rank fails, the others are stopped and the rank's own error is raised; an
interrupt (Ctrl-C, SIGTERM) stops every rank and removes the folder.

On a cluster, start the ranks with torchrun instead, which sets ``RANK``, ``WORLD_SIZE`` and
``MASTER_ADDR``/``MASTER_PORT``::

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m hai.scale.abtrain.run --config config.json --out results/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from hai.scale.abtrain.trainer import ABTrainConfig, train_ab
from hai.shared import HaiError, InputError, write_json
from hai.shared.checks import positive_float, positive_int

__all__ = ["launch_ab", "main"]


def _rank_main(
    config: ABTrainConfig, out: Path, init: str | None, rank: int, world: int, timeout_s: float
) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    kwargs: dict[str, Any] = {"backend": "gloo", "timeout": timedelta(seconds=timeout_s)}
    if init is not None:
        kwargs.update(init_method=init, rank=rank, world_size=world)
    dist.init_process_group(**kwargs)
    try:
        result = train_ab(config)
        write_json(out / f"rank{dist.get_rank()}.json", result.to_dict())
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """One rank: ``python -m hai.scale.abtrain.run --config FILE --out DIR [--init URL ...]``."""
    parser = argparse.ArgumentParser(prog="python -m hai.scale.abtrain.run")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--init", default=None, help="init URL (default: torchrun's environment)")
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        config = ABTrainConfig.from_dict(json.loads(args.config.read_text()))
        _rank_main(config, args.out, args.init, args.rank, args.world, args.timeout)
    except HaiError as exc:
        write_json(args.out / f"error{os.environ.get('RANK', args.rank)}.json", {"error": str(exc)})
        print(f"hai: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch_ab(config: ABTrainConfig, nproc: int = 4, *, timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """Train with ``nproc`` local processes; return each rank's result as a dict (rank order)."""
    nproc = positive_int("nproc", nproc, maximum=256)
    timeout_s = positive_float("timeout", timeout_s)
    if config.method == "ab" and nproc < 2 * config.group_size:
        raise InputError(
            f"AB-training needs at least two groups: {nproc} process(es) in groups of {config.group_size}",
            hint="use more processes or a smaller group size",
        )
    tmp = Path(tempfile.mkdtemp(prefix="hai-ab-"))
    procs: list[subprocess.Popen[bytes]] = []
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave SIGTERM as it is
        previous = None
    try:
        write_json(tmp / "config.json", config.to_dict())
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        for rank in range(nproc):
            cmd = [sys.executable, "-m", "hai.scale.abtrain.run", "--config", str(tmp / "config.json")]
            cmd += ["--out", str(tmp), "--init", f"file://{tmp / 'rendezvous'}", "--rank", str(rank)]
            cmd += ["--world", str(nproc), "--timeout", str(min(timeout_s, 300.0))]
            log = open(tmp / f"rank{rank}.log", "wb")  # noqa: SIM115 - closed when the process ends
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
            log.close()
        deadline = time.monotonic() + timeout_s
        while any(p.poll() is None for p in procs):
            failed = [r for r, p in enumerate(procs) if p.returncode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        failed = [r for r, p in enumerate(procs) if p.returncode not in (None, 0)]
        if failed or any(p.poll() is None for p in procs):
            _stop(procs)
            for rank in failed:
                error = tmp / f"error{rank}.json"
                if error.exists():
                    raise HaiError(json.loads(error.read_text())["error"])
            if failed:
                tail = (tmp / f"rank{failed[0]}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"rank {failed[0]} of the AB-training job failed:\n{tail}")
            raise HaiError(
                f"the AB-training job did not finish within {timeout_s:g} s; every rank was stopped"
            )
        return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(nproc)]
    finally:
        _stop(procs)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

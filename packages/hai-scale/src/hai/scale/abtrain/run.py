"""Run AB-training (or its DDP / PowerSGD baselines) on N local processes, or as one rank.

``launch_ab(config, nproc=4)`` starts N Python processes on this machine through
:func:`hai.scale.local_ranks.run_ranks` (``file://`` rendezvous: no port is opened; a failing
rank stops the others and raises its own error; an interrupt stops every rank and removes the
folder) and returns every rank's result.

On a cluster, start the ranks with torchrun instead, which sets ``RANK``, ``WORLD_SIZE`` and
``MASTER_ADDR``/``MASTER_PORT``::

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m hai.scale.abtrain.run --config config.json --out results/
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from hai.scale.abtrain.trainer import ABTrainConfig, train_ab
from hai.scale.local_ranks import RankJob, rank_folder, run_ranks
from hai.shared import HaiError, InputError, write_json
from hai.shared.checks import positive_int

__all__ = ["launch_ab", "main"]


def _rank_main(
    config: ABTrainConfig,
    out: Path,
    init: str | None,
    rank: int,
    world: int,
    timeout_s: float,
    checkpoint: Path | None = None,
) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    kwargs: dict[str, Any] = {"backend": "gloo", "timeout": timedelta(seconds=timeout_s)}
    if init is not None:
        kwargs.update(init_method=init, rank=rank, world_size=world)
    dist.init_process_group(**kwargs)
    try:
        result = train_ab(config, checkpoint=checkpoint)
        write_json(out / f"rank{dist.get_rank()}.json", result.to_dict())
        dist.barrier()  # every rank done before gloo is torn down (see hai.scale.energy.worker)
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
    parser.add_argument("--checkpoint", type=Path, default=None, help="rank 0 saves the final model here")
    args = parser.parse_args(argv)
    try:
        config = ABTrainConfig.from_dict(json.loads(args.config.read_text()))
        _rank_main(config, args.out, args.init, args.rank, args.world, args.timeout, args.checkpoint)
    except HaiError as exc:
        write_json(args.out / f"error{os.environ.get('RANK', args.rank)}.json", {"error": str(exc)})
        print(f"hai: error: {exc}", file=sys.stderr)
        return 2
    return 0


def launch_ab(
    config: ABTrainConfig,
    nproc: int = 4,
    *,
    timeout_s: float = 600.0,
    checkpoint: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Train with ``nproc`` local processes; return each rank's result as a dict (rank order).

    With ``checkpoint`` the final model is saved there (safetensors, the configuration inside);
    the path is checked before any process starts.
    """
    nproc = positive_int("nproc", nproc, maximum=256)
    if checkpoint is not None:
        from hai.scale.parallel.training import check_output_file

        checkpoint = check_output_file(checkpoint, "checkpoint").absolute()
    if config.method == "ab" and nproc < 2 * config.group_size:
        raise InputError(
            f"AB-training needs at least two groups: {nproc} process(es) in groups of {config.group_size}",
            hint="use more processes or a smaller group size",
        )
    with rank_folder("hai-ab-") as tmp:
        write_json(tmp / "config.json", config.to_dict())

        def command(job: RankJob, rank: int) -> list[str]:
            args = ["-m", "hai.scale.abtrain.run", "--config", str(tmp / "config.json"), "--out", str(tmp)]
            save = ["--checkpoint", str(checkpoint)] if checkpoint is not None else []
            return [*args, *job.rank_args(rank), "--timeout", str(min(timeout_s, 300.0)), *save]

        run_ranks(tmp, nproc, command, timeout_s=timeout_s, what="AB-training job")
        return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(nproc)]


if __name__ == "__main__":  # pragma: no cover
    from hai.scale.rank_exit import exit_rank

    exit_rank(main())

"""``hai scale ab-train``: AB-training, DDP or DDP + PowerSGD on N local processes.

Registered by :func:`hai.scale.cli.register` through :func:`add_ab_train`.
"""

from __future__ import annotations

import argparse
from typing import Any

from hai.shared import InputError, write_json
from hai.shared.checks import arg_fraction, arg_nonnegative_int, arg_positive_float, arg_positive_int
from hai.shared.cli import print_json


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated widths such as 256,256, got {text!r}"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected at least one positive width, got {text!r}")
    return widths


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    first = results[0]
    return {
        "method": first["method"],
        "world_size": first["world_size"],
        "test_accuracy": first["test_accuracy"],
        "final_loss": first["losses"][-1],
        "bytes_per_rank": [r["comm"]["total_bytes"] for r in results],
        "bytes_by_phase_rank0": first["comm"]["bytes"],
        "compression_ratio": first["comm"].get("compression_ratio"),
        "wall_s": max(r["wall_s"] for r in results),
        "identical_ranks": len({r["checksum"] for r in results}) == 1,
    }


def _cmd_ab_train(args: argparse.Namespace) -> int:
    from hai.scale.abtrain.run import launch_ab
    from hai.scale.abtrain.schedule import ABSchedule
    from hai.scale.abtrain.trainer import ABTrainConfig

    schedule = ABSchedule(
        warmup_steps=args.warmup_steps,
        steps_between_syncs=args.sync_every,
        ddp_steps_after_sync=args.ddp_steps,
        lr_rebound_steps=args.rebound_steps,
        sync_mode=args.sync_mode,
        reset_optimizer=not args.keep_optimizer,
    )
    config = ABTrainConfig(
        method=args.method,
        data=args.data,
        model=args.model,
        hidden=args.hidden,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        group_size=args.group_size,
        cutoff=args.cutoff,
        schedule=schedule,
        powersgd_rank=args.powersgd_rank,
        seed=args.seed,
        split_seed=args.split_seed,
        image_size=args.image_size,
    )
    if args.out is not None and args.out.is_dir():
        raise InputError(f"--out {args.out} is a folder", hint="give a file name such as ab.json")
    results = launch_ab(config, nproc=args.nproc, timeout_s=args.timeout, checkpoint=args.checkpoint)
    summary = _summary(results)
    if args.out is not None:
        write_json(args.out, {"config": config.to_dict(), "summary": summary, "ranks": results})
    if args.json:
        print_json(summary)
        return 0
    accuracy = summary["test_accuracy"]
    print(f"{summary['method']} on {summary['world_size']} processes: test accuracy {accuracy:.4f}")
    print(f"bytes handed to collectives per rank: {summary['bytes_per_rank'][0]:,}")
    print("by phase (rank 0): " + ", ".join(f"{k} {v:,}" for k, v in summary["bytes_by_phase_rank0"].items()))
    if summary["compression_ratio"] is not None:
        print(f"compression ratio of the last decomposition: {summary['compression_ratio']:.3f}")
    print(
        f"wall time {summary['wall_s']:.1f} s; every rank holds the same model: {summary['identical_ranks']}"
    )
    return 0


def add_ab_train(sub: Any) -> None:
    """Add ``ab-train`` to the ``hai scale`` subparsers ``sub``."""
    from pathlib import Path

    from hai.scale.abtrain.schedule import SYNC_MODES
    from hai.scale.abtrain.trainer import DATASETS, METHODS, MODELS

    p = sub.add_parser(
        "ab-train",
        help="AB-training (low-rank data parallel), DDP or PowerSGD on N local processes",
        description=(
            "Train with AB-training (Coquelin et al. 2024) or the DDP / DDP+PowerSGD baselines on N local "
            "gloo processes and report the bytes every rank handed to collectives."
        ),
    )
    p.add_argument("--method", default="ab", choices=METHODS, help="ab, ddp or powersgd (default ab)")
    p.add_argument("--nproc", type=arg_positive_int(256), default=4, help="local processes (default 4)")
    p.add_argument("--group-size", type=arg_positive_int(), default=1, help="ranks per AB group (default 1)")
    p.add_argument(
        "--data",
        default="digits",
        choices=DATASETS,
        help="default digits; images: synthetic 3-channel images",
    )
    p.add_argument(
        "--model", default="mlp", choices=MODELS, help="default mlp (resnet18 needs --data images)"
    )
    p.add_argument(
        "--image-size",
        type=arg_positive_int(1024),
        default=32,
        help="side of the synthetic images (default 32)",
    )
    p.add_argument("--hidden", type=_widths, default=(256, 256), help="MLP widths (default 256,256)")
    p.add_argument("--steps", type=arg_positive_int(10_000_000), default=300, help="default 300")
    p.add_argument("--batch-size", type=arg_positive_int(1_000_000), default=32, help="per rank (default 32)")
    p.add_argument("--lr", type=arg_positive_float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--cutoff", type=arg_fraction, default=0.1, help="keep s_i > cutoff*s_0 (default 0.1)")
    p.add_argument("--warmup-steps", type=arg_nonnegative_int(), default=40, help="full-rank DDP steps first")
    p.add_argument("--sync-every", type=arg_positive_int(), default=40, help="group steps between syncs")
    p.add_argument("--ddp-steps", type=arg_nonnegative_int(), default=10, help="DDP steps after a sync")
    p.add_argument("--rebound-steps", type=arg_nonnegative_int(), default=10, help="LR rebound ramp length")
    p.add_argument("--sync-mode", default="full", choices=SYNC_MODES, help="default full")
    p.add_argument(
        "--keep-optimizer",
        action="store_true",
        help="keep AdamW's moments of the parameters that survive a sync/SVD (default: reset, as reset_opt)",
    )
    p.add_argument("--powersgd-rank", type=arg_positive_int(), default=4, help="PowerSGD rank (default 4)")
    p.add_argument("--seed", type=int, default=0, help="model and batch seed (default 0)")
    p.add_argument("--split-seed", type=int, default=0, help="train/test split seed (default 0)")
    p.add_argument("--timeout", type=arg_positive_float, default=600.0, help="seconds for the whole job")
    p.add_argument("--out", type=Path, default=None, help="write every rank's result to this JSON file")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="save the final model here (safetensors, checked first)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(handler=_cmd_ab_train, _parser=p)

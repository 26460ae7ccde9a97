"""``hai photonics train`` and ``hai photonics design``: train an inverse model, design stacks.

Thin: each handler checks its input, calls the public API, and prints (``--json`` for machines).
Files (``--out``, ``--plot``) are written atomically and only after everything succeeded, so a
bad input never overwrites anything. :func:`add_commands` adds both subcommands to the
``hai photonics`` subparsers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hai.shared import InputError, atomic_path, write_json
from hai.shared.checks import arg_fraction, arg_nonnegative_int, arg_positive_float, arg_positive_int
from hai.shared.cli import print_json

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add ``train`` and ``design`` to an argparse subparsers object."""
    p = sub.add_parser("train", help="train OptoLlama or OptoGPT on a data set (resumable)")
    p.add_argument("--model", default="optollama", help="optollama or optogpt")
    p.add_argument("--data", required=True, help="a hai data set folder or the OptoLlama layout")
    p.add_argument("--out", required=True, help="folder for best.safetensors and last.safetensors")
    p.add_argument("--size", default="small", help="tiny, small, base or paper")
    p.add_argument("--steps", type=arg_positive_int(), default=2000)
    p.add_argument("--batch-size", type=arg_positive_int(), default=256)
    p.add_argument("--lr", type=arg_positive_float, default=1e-3)
    p.add_argument("--loss", default="reference", help="reference or mdlm")
    p.add_argument("--val-fraction", type=arg_fraction, default=0.02)
    p.add_argument("--eval-every", type=arg_positive_int(), default=200)
    p.add_argument("--patience", type=arg_positive_int(), default=5)
    p.add_argument("--max-seconds", type=arg_positive_float, default=None)
    p.add_argument("--limit", type=arg_positive_int(), default=None, help="use only the first N stacks")
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    p.add_argument("--threads", type=arg_positive_int(), default=None, help="torch CPU threads")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (under torchrun: LOCAL_RANK)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if --out holds a run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_train, _parser=p)

    p = sub.add_parser("design", help="design stacks for a target spectrum")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--target", help="CSV with wavelength_nm,R,A,T (or wavelength_nm,R,T)")
    source.add_argument("--preset", help="bragg, anti-reflection, band-pass or absorber")
    p.add_argument("--designer", default="optollama", help="optollama, optogpt or template")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped one)")
    p.add_argument("-k", type=arg_positive_int(maximum=1000), default=10, help="candidates (best of k)")
    p.add_argument("--refine", action="store_true", help="refine thicknesses through the TMM")
    p.add_argument("--snap", action="store_true", help="with --refine: snap to the thickness grid")
    p.add_argument(
        "--sampler",
        default="confidence",
        help="OptoLlama: confidence (default), remask (the reference's) or length (end drawn first)",
    )
    p.add_argument("--steps", type=arg_positive_int(), default=None, help="OptoLlama sampling steps")
    p.add_argument("--temperature", type=arg_positive_float, default=None)
    p.add_argument("--top-p", type=arg_fraction, default=0.9)
    p.add_argument("--library", default=None, help="template: a data set folder")
    p.add_argument("--library-size", type=arg_positive_int(), default=20000, help="template: random library")
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    p.add_argument("--out", default=None, help="write the result as JSON to this file")
    p.add_argument("--plot", default=None, help="write a PNG of target vs design")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_design, _parser=p)


def _cmd_train(args: argparse.Namespace) -> int:
    from hai.photonics.inverse.data import load_training_data
    from hai.photonics.inverse.training import TrainConfig, join_process_group, train
    from hai.shared import torch_threads

    cfg = TrainConfig(
        model=args.model,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        val_fraction=args.val_fraction,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        max_seconds=args.max_seconds,
    )
    from hai.photonics.inverse.model import ModelConfig

    ModelConfig.sized(args.size)  # an unknown size fails before the data are read
    data = load_training_data(args.data, limit=args.limit)
    device, joined = join_process_group(args.device)  # under torchrun: one process of a DDP run
    rank = torch.distributed.get_rank() if joined else 0
    try:
        with torch_threads(args.threads):
            result = train(
                data,
                args.out,
                cfg,
                resume=not args.no_resume,
                device=device,
                progress_bar=not args.json,
            )
    finally:
        if joined:
            torch.distributed.destroy_process_group()
    if rank != 0:
        return 0
    summary = {
        "model": args.model,
        "best": str(result.best_path),
        "last": str(result.last_path),
        "step": result.step,
        "best_val_loss": result.best_val,
        "stopped": result.stopped,
        "wall_s": round(result.wall_s, 2),
        "history": result.history,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{args.model}: {result.step} steps ({result.stopped}), best validation loss "
            f"{result.best_val:.4f}, {result.wall_s:.1f} s; model in {result.best_path}"
        )
    return 0


def _designer(args: argparse.Namespace) -> Any:
    from hai.photonics.inverse.designers import (
        DESIGNERS,
        OptoGPTDesigner,
        OptoLlamaDesigner,
        TemplateDesigner,
    )

    if args.designer not in DESIGNERS:
        raise InputError(f"unknown designer {args.designer!r}", hint=f"designers: {', '.join(DESIGNERS)}")
    if args.designer == "template":
        return TemplateDesigner().fit(_library(args))
    from hai.photonics.inverse.checkpoints import shipped_model_path

    checkpoint = args.checkpoint or shipped_model_path(args.designer)
    if args.designer == "optollama":
        kwargs: dict[str, Any] = {"sampler": args.sampler, "top_p": args.top_p, "seed": args.seed}
        if args.steps is not None:
            kwargs["steps"] = args.steps
        if args.temperature is not None:
            kwargs["temperature"] = args.temperature
        return OptoLlamaDesigner(checkpoint, **kwargs)
    gpt_kwargs: dict[str, Any] = {"top_p": args.top_p, "seed": args.seed}
    if args.temperature is not None:
        gpt_kwargs["temperature"] = args.temperature
    return OptoGPTDesigner(checkpoint, **gpt_kwargs)


def _library(args: argparse.Namespace) -> Any:
    from hai.photonics.dataset import Dataset, load_dataset, random_stacks
    from hai.photonics.simulate import OPTOLLAMA, simulate_ids
    from hai.photonics.stacks import Vocabulary

    if args.library:
        return load_dataset(args.library)
    vocab = Vocabulary()
    ids = random_stacks(args.library_size, np.random.default_rng(args.seed), vocab)
    spectra = simulate_ids(ids, vocab, OPTOLLAMA).stacked().clamp(0, 1).half()
    return Dataset(spectra, ids, vocab, OPTOLLAMA, args.seed)


def _cmd_design(args: argparse.Namespace) -> int:
    from hai.photonics.inverse.targets import preset_target, read_target_csv

    if args.snap and not args.refine:
        raise InputError("--snap needs --refine")
    for path in (args.out, args.plot):
        if path is not None and Path(path).is_dir():
            raise InputError(f"{path} is a folder, not a file name")
    if args.designer not in ("optollama", "optogpt", "template"):
        raise InputError(
            f"unknown designer {args.designer!r}", hint="designers: optollama, optogpt, template"
        )
    if args.preset is not None:
        from hai.photonics.inverse.targets import PRESET_TARGETS

        if args.preset not in PRESET_TARGETS:
            raise InputError(
                f"unknown target preset {args.preset!r}", hint=f"presets: {', '.join(PRESET_TARGETS)}"
            )
    designer = _designer(args)
    config = designer.config
    note = None
    if args.preset is not None:
        target, title = preset_target(args.preset, config)
    else:
        target, note = read_target_csv(args.target, config)
        title = Path(args.target).name
    designs = designer.design(target[None], k=args.k, refine=args.refine)
    if args.refine and args.snap:
        from hai.photonics.inverse.refine import refine

        assert designs.ids is not None
        snapped = refine(designs.ids, target[None], designer.vocab, config, snap=True)
        designs.stacks, designs.mae = snapped.stacks, snapped.mae_after
    result: dict[str, Any] = {
        "target": title,
        "designer": args.designer,
        "k": args.k,
        "refined": bool(args.refine),
        **designs.to_dict(),
        "design": str(designs.stacks[0]),
    }
    if note:
        result["note"] = note
    if args.plot:
        _plot(args.plot, target, designs.stacks[0], config, title)
    if args.out:
        write_json(args.out, result)
    if args.json:
        print_json(result)
        return 0
    if note:
        print(f"note: {note}")
    print(f"target: {title}")
    print(f"design ({args.designer}, best of {args.k}): {designs.stacks[0]}")
    line = f"spectral MAE (R, A, T): {float(designs.mae[0]):.4f}"
    if designs.mae_before_refine is not None:
        line += f" (before refinement {float(designs.mae_before_refine[0]):.4f})"
    print(line)
    print(f"valid candidates: {designs.valid_fraction:.0%}; {designs.seconds_per_target:.2f} s")
    return 0


def _plot(path: str, target: torch.Tensor, stack: Any, config: Any, title: str) -> None:
    from hai.photonics.evaluate import evaluate, plot_designs

    evaluation = evaluate(target[None].double(), [stack], config)
    figure = plot_designs(evaluation, titles=[f"{title}: {stack}"[:90]])
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)

"""``hai scale ...``: forward-gradient training, its approximation quality and BNN training.

Thin: each handler parses, calls the public API and prints (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hai.shared import InputError
from hai.shared.checks import arg_positive_float, arg_positive_int
from hai.shared.cli import OneLineArgumentParser, print_json


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InputError(f"expected comma-separated integers such as 1,4,16, got {text!r}") from exc


def _check_out_folder(path: str) -> None:
    """Refuse an output folder that cannot hold the files before any work is done."""
    from pathlib import Path

    from hai.scale.parallel.training import check_output_file
    from hai.shared import OutputError

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: it is a file, not a folder", hint="give a folder")
    for suffix in ("csv", "json", "png"):
        check_output_file(folder / f"fg_quality.{suffix}", "output")


def _str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_tangent_options(p: argparse.ArgumentParser) -> None:
    from hai.scale.forward_grad import DISTRIBUTIONS, SCOPES

    p.add_argument("--distribution", default="normal", choices=DISTRIBUTIONS, help="tangent distribution")
    p.add_argument(
        "--scope",
        default="global",
        choices=SCOPES,
        help="draw tangents over the whole parameter vector or per parameter tensor",
    )
    p.add_argument("--scale-correction", action="store_true", help="apply the published scaling correction")


def _cmd_fg_train(args: argparse.Namespace) -> int:
    from hai.scale.data import load_classification
    from hai.scale.forward_grad import ForwardGradientClassifier

    data = load_classification(args.data, seed=args.seed)
    if args.model == "cnn" and data.image_shape is None:
        raise InputError("the CNN needs image data", hint="use --data digits, or --model mlp")
    clf = ForwardGradientClassifier(
        gradient="backprop" if args.backprop else "forward",
        tangents=args.tangents,
        aggregation=args.aggregation,
        distribution=args.distribution,
        scope=args.scope,
        scale=args.scale_correction,
        architecture=args.model,
        hidden=args.hidden,
        image_shape=data.image_shape,
        optimizer=args.optimizer,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    clf.fit(data.x_train, data.y_train, validation=(data.x_test, data.y_test))
    last = clf.history_[-1]
    result: dict[str, Any] = {
        "data": data.name,
        "model": args.model,
        "gradient": clf.gradient,
        "tangents": args.tangents if clf.gradient == "forward" else None,
        "aggregation": args.aggregation if clf.gradient == "forward" else None,
        "n_parameters": clf.n_parameters_,
        "epochs": args.epochs,
        "steps": clf.n_steps_,
        "loss": clf.loss_,
        "train_accuracy": clf.train_accuracy_,
        "test_loss": last.test_loss,
        "accuracy": last.test_accuracy,
        "wall_s": clf.fit_cost_.wall_s,
        "energy_j": clf.fit_cost_.total_energy_j,
        "history": [h.to_dict() for h in clf.history_],
    }
    if args.json:
        print_json(result)
        return 0
    method = (
        "backprop"
        if clf.gradient == "backprop"
        else f"forward gradient, k={args.tangents}, {args.aggregation}"
    )
    print(f"{data.name}: {args.model} with {clf.n_parameters_} parameters, {method}")
    print(f"{'epoch':>5} {'train loss':>11} {'test loss':>10} {'test acc':>9}")
    for h in clf.history_:
        print(
            f"{h.epoch:>5} {h.train_loss:>11.4f} {h.test_loss or 0.0:>10.4f} {h.test_accuracy or 0.0:>9.3f}"
        )
    print(
        f"final: loss {clf.loss_:.4f} (train), accuracy {last.test_accuracy or 0.0:.3f} (test), "
        f"{clf.fit_cost_.wall_s:.1f} s"
    )
    return 0


def _cmd_fg_quality(args: argparse.Namespace) -> int:
    import torch
    from torch import nn

    from hai.scale.data import load_classification
    from hai.scale.forward_grad import approximation_quality
    from hai.scale.models import mlp, small_cnn
    from hai.shared import RngStreams, resolve_device

    _check_out_folder(args.out)
    data = load_classification(args.data, seed=args.seed)
    if args.model == "mlp":  # refuse a network that cannot be held, before building it
        from hai.scale.forward_grad.training import check_forward_memory, mlp_size

        check_forward_memory(mlp_size(data.n_features, data.n_classes, args.hidden), 0, "mean", "fg-quality")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RngStreams(args.seed).entropy("fg-quality-init") & 0x7FFF_FFFF)
        if args.model == "cnn":
            if data.image_shape is None:
                raise InputError("the CNN needs image data", hint="use --data digits, or --model mlp")
            model = small_cnn(data.n_classes, data.image_shape)
        else:
            model = mlp(data.n_features, data.n_classes, args.hidden)
    device = resolve_device(args.device)
    model = model.to(device).eval()
    x, y = data.x_train[: args.samples].to(device), data.y_train[: args.samples].to(device)
    result = approximation_quality(
        model,
        nn.CrossEntropyLoss(),
        x,
        y,
        tangents=_int_list(args.tangents),
        aggregations=_str_list(args.aggregations),
        distribution=args.distribution,
        scope=args.scope,
        scale=args.scale_correction,
        repeats=args.repeats,
        seed=args.seed,
    )
    paths = result.save(args.out)
    if "png" not in paths:
        print(
            "note: no PNG written, matplotlib is not installed (pip install 'hai-scale[demo]')",
            file=sys.stderr,
        )
    if args.json:
        print_json({**result.to_dict(), "files": {k: str(v) for k, v in paths.items()}})
        return 0
    print(
        f"{data.name}: {args.model} with {result.n_parameters} parameters, |∇f| = {result.gradient_norm:.4g}"
    )
    print(f"{'aggregation':<11} {'k':>5} {'cosine':>14} {'|est|/|∇f|':>18}")
    for r in result.rows:
        print(
            f"{r.aggregation:<11} {r.tangents:>5} {r.cosine_mean:>7.3f} ± {r.cosine_std:<5.3f}"
            f" {r.norm_ratio_mean:>9.3g} ± {r.norm_ratio_std:<7.3g}"
        )
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _cmd_bnn_train(args: argparse.Namespace) -> int:
    import os

    from hai.scale.parallel import init_distributed, launch, train_bnn
    from hai.scale.parallel.training import config_from_args

    config = config_from_args(args)
    under_torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cluster = args.nnodes > 1 or args.rdzv_endpoint is not None
    if (args.nproc > 1 or cluster) and not under_torchrun:
        result = launch(
            config,
            args.nproc,
            timeout_s=args.timeout,
            nnodes=args.nnodes,
            rdzv_endpoint=args.rdzv_endpoint,
            rdzv_id=args.rdzv_id,
        )
        if not result.get("rank0_here", True):
            print(
                f"this node's {args.nproc} process(es) finished; rank 0 of the {result['world_size']} "
                "reports the metrics on its node",
                file=sys.stderr,
            )
            return 0
    else:
        config.validate(int(os.environ.get("WORLD_SIZE", "1")))
        started = init_distributed(config.device, args.timeout)
        try:
            trained = train_bnn(config)
        finally:
            if started:
                import torch.distributed as dist

                dist.destroy_process_group()
        if trained.rank != 0:
            return 0
        result = trained.to_dict()
    if args.json:
        result.pop("reliability", None)
        print_json(result)
        return 0
    print(
        f"{result['data']}: Bayesian {result['model']} with {result['n_parameters']} parameters, "
        f"mode {result['mode']} on {result['world_size']} process(es), S = {result['samples']}"
    )
    if "rmse" in result:
        _print_regression(result)
        return 0
    print(f"{'epoch':>5} {'train loss':>11} {'test acc':>9} {'test NLL':>9} {'ECE':>7}")
    for h in result["history"]:
        print(
            f"{h['epoch']:>5} {h['train_loss']:>11.4f} {h['test_accuracy']:>9.3f} "
            f"{h['test_nll']:>9.4f} {h['test_ece']:>7.4f}"
        )
    times = ", ".join(f"rank {r['rank']}: {r['wall_s']:.1f} s" for r in result["per_rank"])
    print(f"median step time {result['step_time_s'] * 1e3:.1f} ms; wall time {times}")
    return 0


def _print_regression(result: dict[str, Any]) -> None:
    print(f"{'epoch':>5} {'train loss':>11} {'test RMSE':>10} {'test NLL':>9} {'90% cover':>10}")
    for h in result["history"]:
        print(
            f"{h['epoch']:>5} {h['train_loss']:>11.4f} {h['test_rmse']:>10.4f} "
            f"{h['test_nll']:>9.4f} {h['test_coverage']:>10.3f}"
        )

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    learned = "learned " if result.get("noise") == "learned" else ""
    print(
        f"mean predictive std ({learned}noise std {result['noise_std']:.4g} included): "
        f"{fmt(result['std_in_data'])} where the training data lies, "
        f"{fmt(result['std_in_gap'])} inside its gap"
    )
    times = ", ".join(f"rank {r['rank']}: {r['wall_s']:.1f} s" for r in result["per_rank"])
    print(f"median step time {result['step_time_s'] * 1e3:.1f} ms; wall time {times}")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``hai scale`` subcommands to ``parser``."""
    from hai.scale.data import CLASSIFICATION_DATASETS
    from hai.scale.forward_grad import AGGREGATIONS
    from hai.scale.parallel.launch import hidden_widths

    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=OneLineArgumentParser)

    train = sub.add_parser(
        "fg-train",
        help="train a classifier with forward gradients (no backward pass)",
        description="Train an MLP or small CNN on synthetic data or the 8x8 digits with forward gradients.",
    )
    train.add_argument(
        "--data", default="synthetic", choices=CLASSIFICATION_DATASETS, help="data set (default synthetic)"
    )
    train.add_argument(
        "--model", default="mlp", choices=("mlp", "cnn"), help="network (cnn needs --data digits)"
    )
    train.add_argument("--hidden", type=hidden_widths, default=[64], help="MLP hidden widths, e.g. 64,64")
    train.add_argument("--tangents", "-k", type=int, default=16, help="tangents per step (default 16)")
    train.add_argument("--aggregation", default="projection", choices=AGGREGATIONS, help="default projection")
    _add_tangent_options(train)
    train.add_argument("--backprop", action="store_true", help="train with backprop instead (the anchor)")
    train.add_argument("--optimizer", default="adam", choices=("adam", "sgd"), help="default adam")
    train.add_argument("--lr", type=arg_positive_float, default=1e-2, help="learning rate (default 0.01)")
    train.add_argument(
        "--epochs", type=arg_positive_int(), default=10, help="passes over the training data (default 10)"
    )
    train.add_argument("--batch-size", type=arg_positive_int(), default=64, help="default 64")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    train.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    train.set_defaults(handler=_cmd_fg_train, _parser=train)

    quality = sub.add_parser(
        "fg-quality",
        help="cosine similarity and norm ratio of forward gradients against backprop, as k grows",
        description="Compare forward-gradient estimates with the true gradient of a freshly initialised "
        "model on one batch; write CSV, JSON and a PNG figure.",
    )
    quality.add_argument("--out", default="fg-quality", help="output folder (default ./fg-quality)")
    quality.add_argument(
        "--data", default="synthetic", choices=CLASSIFICATION_DATASETS, help="data set (default synthetic)"
    )
    quality.add_argument(
        "--model", default="mlp", choices=("mlp", "cnn"), help="network (cnn needs --data digits)"
    )
    quality.add_argument("--hidden", type=hidden_widths, default=[64], help="MLP hidden widths, e.g. 64,64")
    quality.add_argument(
        "--tangents",
        default="1,2,4,8,16,32,64",
        help="comma-separated k values (default 1,2,4,8,16,32,64)",
    )
    quality.add_argument(
        "--aggregations", default="projection,mean", help="comma-separated (default projection,mean)"
    )
    _add_tangent_options(quality)
    quality.add_argument(
        "--repeats", type=arg_positive_int(), default=10, help="tangent draws per k (default 10)"
    )
    quality.add_argument(
        "--samples", type=arg_positive_int(), default=256, help="training samples in the batch (default 256)"
    )
    quality.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    quality.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    quality.add_argument("--json", action="store_true", help="print the table as one JSON object")
    quality.set_defaults(handler=_cmd_fg_quality, _parser=quality)

    from hai.scale.parallel import add_bnn_arguments

    bnn = sub.add_parser(
        "bnn-train",
        help="train a Bayesian neural network, sample-, data- or hybrid-parallel over N processes",
        description="Train a mean-field Gaussian BNN classifier (or, with --data regression, a Bayesian "
        "regression with the Gaussian likelihood, its noise std fixed or learned) with the S-sample ELBO, "
        "on a named data set or your own (--data FILE.csv --target COLUMN, or FILE.npz with arrays x "
        "and y; 80/20 train/test split by --split-seed). With --nproc N > 1 the "
        "processes are started through torchrun (gloo on CPU, nccl on CUDA); under torchrun, each "
        "process runs one rank.",
    )
    bnn.add_argument(
        "--nproc",
        type=arg_positive_int(maximum=1024),
        default=1,
        help="processes to start on this node (default 1)",
    )
    bnn.add_argument(
        "--nnodes",
        type=arg_positive_int(),
        default=1,
        help="nodes of a cluster job (default 1; needs --rdzv-endpoint)",
    )
    bnn.add_argument(
        "--rdzv-endpoint",
        default=None,
        metavar="HOST:PORT",
        help="cluster: torchrun's c10d rendezvous on one of the nodes (the same on every node)",
    )
    bnn.add_argument(
        "--rdzv-id",
        default=None,
        help="cluster: the job's id, the same on every node (default $SLURM_JOB_ID)",
    )
    add_bnn_arguments(bnn)
    bnn.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    bnn.set_defaults(handler=_cmd_bnn_train, _parser=bnn)

    from hai.scale.abtrain.cli import add_ab_train
    from hai.scale.energy.cli import add_energy_commands

    add_ab_train(sub)
    add_energy_commands(sub)

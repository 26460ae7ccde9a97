"""hai-scale's part of ``hai demo`` on embedded defaults: every method of the distribution.

Shows (1) how the estimate's cosine similarity to the backprop gradient grows with the number
of tangents k, for the projection and the mean, up to k = n where the projection is exact,
(2) short training curves of projection, mean and backprop on the 8x8 digits (synthetic data
without scikit-learn), and (3) a small Bayesian MLP trained with 2 sample-parallel processes
(torchrun, gloo) on the digits: its accuracy, calibration (reliability diagram, ECE) and the
measured step times of one process against two, (4) AB-training against DDP and DDP +
PowerSGD on 2 gloo processes (bytes each hands to collectives, accuracy, the schedule) and
(5) a tiny energy sweep (world size 1, 2 × global batch 32, 64): time, device-hours and
energy where a sensor exists. About 1–2 min on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any

import torch
from torch import nn

from hai.scale.abtrain.demo import ab_part
from hai.scale.data import digits_classification, synthetic_classification
from hai.scale.energy.demo import energy_part
from hai.scale.forward_grad import (
    ForwardGradientClassifier,
    approximation_quality,
    forward_gradient,
    true_gradient,
)
from hai.scale.models import mlp
from hai.scale.parallel import BNNConfig, launch, train_bnn
from hai.shared import DemoContext, Figure, MissingPackageError, RngStreams, Section, Table, resolve_device


def _training_figure(curves: dict[str, ForwardGradientClassifier]) -> Any:
    try:
        from matplotlib.figure import Figure as MplFigure
    except ImportError as exc:
        raise MissingPackageError(
            "the demo's figures need matplotlib", hint="pip install 'hai-scale[demo]'"
        ) from exc
    fig = MplFigure(figsize=(9, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for label, clf in curves.items():
        epochs = [h.epoch for h in clf.history_]
        ax_loss.plot(epochs, [h.train_loss for h in clf.history_], marker="o", label=label)
        ax_acc.plot(epochs, [h.test_accuracy for h in clf.history_], marker="o", label=label)
    ax_loss.set_ylabel("training loss (epoch mean)")
    ax_acc.set_ylabel("test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    ax_loss.legend()
    fig.tight_layout()
    return fig


def _bnn_figure(result: dict[str, Any]) -> Any:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(9, 3.6))
    ax_rel, ax_acc = fig.subplots(1, 2)
    rel = result["reliability"]
    centres = [(lo + hi) / 2 for lo, hi in zip(rel["lower"], rel["upper"], strict=True)]
    acc = [a if a is not None else 0.0 for a in rel["accuracy"]]
    ax_rel.bar(centres, acc, width=0.09, edgecolor="black", label="accuracy in bin")
    ax_rel.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax_rel.set_xlabel("confidence (max mean probability)")
    ax_rel.set_ylabel("accuracy")
    ax_rel.set_title(f"reliability, ECE {result['ece']:.3f}")
    ax_rel.legend(loc="upper left")
    epochs = [h["epoch"] for h in result["history"]]
    ax_acc.plot(epochs, [h["test_accuracy"] for h in result["history"]], marker="o", label="accuracy")
    ax_acc.plot(epochs, [h["test_ece"] for h in result["history"]], marker="s", label="ECE")
    ax_acc.set_xlabel("epoch")
    ax_acc.legend()
    for ax in (ax_rel, ax_acc):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def bnn_part(seed: int, device: torch.device) -> dict[str, Any]:
    """Train a small Bayesian MLP with 2 sample-parallel processes; time one process for comparison."""
    has_digits = importlib.util.find_spec("sklearn") is not None
    two_gpus = device.type == "cuda" and torch.cuda.device_count() >= 2
    config = BNNConfig(
        data="digits" if has_digits else "synthetic",
        model="mlp",
        hidden=(32,),
        mode="sample",
        samples=4,
        batch_size=64,
        epochs=5,
        lr=1e-2,
        eval_samples=16,
        seed=seed,
        device="cuda" if two_gpus else "cpu",
    )
    parallel = launch(config, 2)
    # One torch thread (config.threads), as each of the 2 processes had.
    local = train_bnn(dataclasses.replace(config, mode="local", epochs=1, max_steps=20, eval_samples=2))
    return {"config": config, "parallel": parallel, "local_step_s": local.step_time_s}


def run(context: DemoContext) -> Section:
    """Run the forward-gradient demo and return its report section."""
    seed = context.seed
    device = resolve_device(context.device)
    data = synthetic_classification(seed=seed, dtype=torch.float64)

    # 1. Approximation quality on a tiny float64 MLP, k up to n.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RngStreams(seed).entropy("demo-init") & 0x7FFF_FFFF)
        tiny = mlp(data.n_features, data.n_classes, hidden=(8,)).double().to(device).eval()
    n = sum(p.numel() for p in tiny.parameters())
    loss_fn = nn.CrossEntropyLoss()
    x, y = data.x_train[:256].to(device), data.y_train[:256].to(device)
    ks = sorted({1, 4, 16, 64, n})
    quality = approximation_quality(tiny, loss_fn, x, y, tangents=ks, repeats=10, seed=seed)
    exact = forward_gradient(
        tiny, loss_fn, x, y, tangents=n, generator=RngStreams(seed).torch("demo-exact", device=device)
    ).flat()
    exact_error = float((exact - true_gradient(tiny, loss_fn, x, y)).abs().max())

    # 2. Training curves: projection and mean (k = 16) against backprop, on the digits if
    # scikit-learn is there (the demo extra installs it), else on the synthetic data.
    try:
        train = digits_classification(seed=seed)
    except MissingPackageError:
        train = synthetic_classification(seed=seed)
    settings: dict[str, Any] = {
        "hidden": (64,),
        "epochs": 10,
        "lr": 1e-2,
        "seed": seed,
        "device": str(device),
    }
    curves = {
        "projection, k=16": ForwardGradientClassifier(tangents=16, aggregation="projection", **settings),
        "mean, k=16": ForwardGradientClassifier(tangents=16, aggregation="mean", **settings),
        "backprop": ForwardGradientClassifier(gradient="backprop", **settings),
    }
    for clf in curves.values():
        clf.fit(train.x_train, train.y_train, validation=(train.x_test, train.y_test))

    bnn = bnn_part(seed, device)
    par = bnn["parallel"]

    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    # 3. AB-training against DDP and PowerSGD, and 4. a tiny energy sweep (both on CPU ranks).
    ab_metrics, ab_figures, ab_table, ab_summary = ab_part(seed, with_figure=has_matplotlib)
    energy_metrics, energy_figures, energy_table, energy_summary = energy_part(
        seed, with_figure=has_matplotlib
    )

    figures: list[Figure] = []
    if has_matplotlib:  # the demo extra installs it; without it the section has no figures
        figures = [
            Figure.from_matplotlib(
                quality.figure(),
                "fg-quality",
                f"Cosine and norm ratio against the backprop gradient, MLP with n = {n}",
            ),
            Figure.from_matplotlib(
                _training_figure(curves), "fg-training", f"MLP on the {train.name} data, Adam, lr 0.01"
            ),
            Figure.from_matplotlib(
                _bnn_figure(par),
                "bnn-calibration",
                f"Bayesian MLP on the {par['data']} data, trained sample-parallel on 2 processes "
                f"(S = {par['samples']}): reliability of the 16-sample mean predictive, and test "
                "accuracy and ECE per epoch",
            ),
        ]
    figures += ab_figures + energy_figures
    n_train = next(iter(curves.values())).n_parameters_
    metrics: dict[str, float | int | str | bool | None] = {
        "quality_n_parameters": n,
        "projection_k_equals_n_max_abs_error": exact_error,
        **{f"projection_cosine_k{k}": quality.row("projection", k).cosine_mean for k in ks},
        **{f"mean_cosine_k{k}": quality.row("mean", k).cosine_mean for k in ks},
        "training_n_parameters": n_train,
        **{
            f"test_accuracy_{label.split(',')[0]}": clf.history_[-1].test_accuracy
            for label, clf in curves.items()
        },
        "bnn_world_size": par["world_size"],
        "bnn_samples": par["samples"],
        "bnn_n_parameters": par["n_parameters"],
        "bnn_test_accuracy": par["accuracy"],
        "bnn_test_nll": par["nll"],
        "bnn_test_ece": par["ece"],
        "bnn_step_ms_local": bnn["local_step_s"] * 1e3,
        "bnn_step_ms_sample_parallel": par["step_time_s"] * 1e3,
        **ab_metrics,
        **energy_metrics,
    }
    table = Table(
        caption=f"Forward-gradient quality (float64 MLP, n = {n}, 10 draws per k)",
        columns=["aggregation", "k", "cosine (mean ± std)", "|estimate|/|∇f| (mean)"],
        rows=[
            [
                r.aggregation,
                r.tangents,
                f"{r.cosine_mean:.3f} ± {r.cosine_std:.3f}",
                round(r.norm_ratio_mean, 4),
            ]
            for r in quality.rows
        ],
    )
    training_table = Table(
        caption=f"Training a {n_train}-parameter MLP on the {train.name} data for 10 epochs",
        columns=["method", "final training loss", "test accuracy", "wall time [s]"],
        rows=[
            [
                label,
                round(clf.loss_, 4),
                round(clf.history_[-1].test_accuracy or 0.0, 3),
                round(clf.fit_cost_.wall_s, 2),
            ]
            for label, clf in curves.items()
        ],
    )
    bnn_table = Table(
        caption=(
            f"Bayesian MLP ({par['n_parameters']} variational parameters), S = {par['samples']} weight "
            "samples per step, batch 64: median step time (1 intra-op thread per process)"
        ),
        columns=["mode", "processes", "samples per process", "ms/step", "test accuracy", "ECE"],
        rows=[
            ["local", 1, par["samples"], round(bnn["local_step_s"] * 1e3, 2), None, None],
            [
                "sample",
                par["world_size"],
                par["samples"] // par["world_size"],
                round(par["step_time_s"] * 1e3, 2),
                round(par["accuracy"], 3),
                round(par["ece"], 4),
            ],
        ],
    )
    return Section(
        domain="scale",
        title="Forward gradients, Bayesian sampling parallelism, AB-training and the energy of training",
        summary=(
            "Gradients estimated from forward-mode directional derivatives along k random tangents, "
            "with no backward pass. The orthogonal projection onto the tangents' span is exact at k = n "
            f"(max error {exact_error:.1e} in float64); for k ≪ n its direction is as good as the mean's, "
            "with a length near √(k/n)·|∇f| instead of the mean's much larger one. "
            f"A Bayesian MLP trained with its {par['samples']} weight samples split over "
            f"{par['world_size']} processes reaches test accuracy {par['accuracy']:.3f} with ECE "
            f"{par['ece']:.3f}; a step took {par['step_time_s'] * 1e3:.1f} ms against "
            f"{bnn['local_step_s'] * 1e3:.1f} ms in one process. "
            + ab_summary
            + " "
            + energy_summary
            + (
                ""
                if has_matplotlib
                else " (No figures: matplotlib is not installed; pip install 'hai-scale[demo]'.)"
            )
        ),
        metrics=metrics,
        figures=figures,
        tables=[table, training_table, bnn_table, ab_table, energy_table],
    )

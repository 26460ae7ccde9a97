"""Training a Bayesian classifier with the S-sample ELBO in any parallel mode.

:func:`train_bnn` runs in every process of a job (``torchrun``, ``hai scale bnn-train --nproc N``)
or in a single one. All ranks load the same data, build the same model from the seed, walk the
training set in the same (seeded) order and drop the last incomplete batch, so that every rank
agrees on the global batch of each step; the engine then gives each rank its samples and rows.
Evaluation (accuracy, NLL, ECE of the mean predictive) runs in parallel too and its result is
the same on every rank. Progress bars are drawn on rank 0 only; wall time, CPU time, energy and
peak memory are measured on every rank and gathered.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hai.scale.augment import AUGMENT_PER, Augmentation
from hai.scale.bnn.layers import ESTIMATORS, GaussianPrior, to_bayesian
from hai.scale.bnn.losses import ELBOLoss, PredictiveLoss
from hai.scale.bnn.predictive import classification_metrics, reliability
from hai.scale.data import ClassificationData, load_classification
from hai.scale.models import mlp, small_cnn
from hai.scale.parallel.engine import SamplingParallel, world
from hai.scale.parallel.workload import MODES, workload
from hai.shared import InputError, RngStreams, measure, progress, resolve_device, save_checkpoint

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
LOSSES: tuple[str, ...] = ("elbo", "predictive")


@dataclass
class BNNConfig:
    """Everything a BNN training run depends on (the same on every rank)."""

    data: str = "digits"
    model: str = "mlp"
    hidden: tuple[int, ...] = (64,)
    mode: str = "local"
    samples: int = 4
    loss: str = "elbo"
    group_size: int | None = None
    batch_size: int = 64
    epochs: int = 10
    lr: float = 1e-2
    kl_weight: float = 1.0
    prior_std: float = 1.0
    posterior_std: float = 1e-2
    estimator: str = "reparam"
    augment: bool = False
    augment_per: str = "sample"
    eval_samples: int = 16
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    target_accuracy: float | None = None
    max_steps: int | None = None
    checkpoint: str | None = None

    def validate(self, world_size: int) -> None:
        """Raise :class:`InputError` for settings no rank can run (checked before any collective)."""
        workload(self.mode, self.samples, self.batch_size, world_size, 0, self.group_size)
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        if self.model not in ("mlp", "cnn"):
            raise InputError(f"unknown model {self.model!r}", hint="use mlp or cnn")
        if self.estimator not in ESTIMATORS:
            raise InputError(
                f"unknown estimator {self.estimator!r}", hint=f"use one of {', '.join(ESTIMATORS)}"
            )
        if self.augment_per not in AUGMENT_PER:
            raise InputError(
                f"unknown augment_per {self.augment_per!r}", hint=f"use one of {', '.join(AUGMENT_PER)}"
            )
        if self.dtype not in DTYPES:
            raise InputError(f"unknown dtype {self.dtype!r}", hint="use float32 or float64")
        if self.epochs < 1 or self.eval_samples < 1 or not self.lr > 0:
            raise InputError("epochs and eval_samples must be at least 1 and lr positive")
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError(f"max_steps must be at least 1, got {self.max_steps}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BNNEpoch:
    """Metrics after one epoch (test metrics of the mean predictive over ``eval_samples`` samples)."""

    epoch: int
    step: int
    train_loss: float
    test_accuracy: float
    test_nll: float
    test_ece: float
    test_entropy: float
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BNNResult:
    """What :func:`train_bnn` returns on every rank."""

    config: BNNConfig
    world_size: int
    rank: int
    n_parameters: int
    steps: int
    history: list[BNNEpoch]
    step_time_s: float
    per_rank: list[dict[str, Any]]
    reliability: dict[str, list[Any]]
    workload: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return self.history[-1].train_loss

    @property
    def accuracy(self) -> float:
        return self.history[-1].test_accuracy

    def epochs_to(self, target: float) -> int | None:
        """The first epoch whose test accuracy reached ``target``, or None."""
        return next((h.epoch for h in self.history if h.test_accuracy >= target), None)

    def to_dict(self) -> dict[str, Any]:
        last = self.history[-1]
        return {
            "mode": self.config.mode,
            "world_size": self.world_size,
            "samples": self.config.samples,
            "data": self.config.data,
            "model": self.config.model,
            "n_parameters": self.n_parameters,
            "epochs": len(self.history),
            "steps": self.steps,
            "loss": last.train_loss,
            "accuracy": last.test_accuracy,
            "nll": last.test_nll,
            "ece": last.test_ece,
            "entropy": last.test_entropy,
            "step_time_s": self.step_time_s,
            "per_rank": self.per_rank,
            "workload": self.workload,
            "history": [h.to_dict() for h in self.history],
            "reliability": self.reliability,
            "config": self.config.to_dict(),
        }


def max_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def _device(spec: str, world_size: int) -> torch.device:
    device = resolve_device(spec)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def build_model(config: BNNConfig, data: ClassificationData) -> torch.nn.Module:
    """The Bayesian MLP or CNN of ``config``, initialised from the seed (identical on every rank)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RngStreams(config.seed).entropy("bnn-init") & 0x7FFF_FFFF)
        if config.model == "cnn":
            if data.image_shape is None:
                raise InputError("the CNN needs image data", hint="use --data digits, or --model mlp")
            base = small_cnn(data.n_classes, data.image_shape)
        else:
            base = mlp(data.n_features, data.n_classes, config.hidden)
    return to_bayesian(
        base,
        prior=GaussianPrior(std=config.prior_std),
        posterior_std=config.posterior_std,
        estimator=config.estimator,
        inplace=True,
    )


class _NullBar:
    """Stands in for the progress bar on ranks other than 0."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _gather(obj: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    if world_size == 1:
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


def train_bnn(config: BNNConfig, data: ClassificationData | None = None) -> BNNResult:
    """Train the BNN of ``config`` in this process (one rank of the default process group, if any).

    ``data`` overrides ``config.data`` (any :class:`~hai.scale.data.ClassificationData`; see
    :func:`hai.scale.data.from_datasets` for torch ``Dataset`` objects).
    """
    world_size, rank = world()
    config.validate(world_size)
    device = _device(config.device, world_size)
    dtype = DTYPES[config.dtype]
    if data is None:
        data = load_classification(config.data, seed=config.seed, dtype=dtype)
    x_train, y_train = data.x_train.to(device, dtype), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device, dtype), data.y_test.to(device)
    n_train = x_train.shape[0]
    n_batches = n_train // config.batch_size
    if n_batches < 1:
        raise InputError(f"batch size {config.batch_size} is larger than the training set ({n_train})")
    model = build_model(config, data).to(device, dtype)
    augmentation = Augmentation(image_shape=data.image_shape) if config.augment else None
    loss_cls = PredictiveLoss if config.loss == "predictive" else ELBOLoss
    engine = SamplingParallel(
        model,
        loss_cls(n_train, kl_weight=config.kl_weight),
        mode=config.mode,
        samples=config.samples,
        batch_size=config.batch_size,
        group_size=config.group_size,
        seed=config.seed,
        augmentation=augmentation,
        augment_per=config.augment_per,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[BNNEpoch] = []
    step_times: list[float] = []
    probs = torch.zeros(0)
    step = 0
    total_steps = config.epochs * n_batches
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    bar: Any = _NullBar()
    if rank == 0:
        bar = progress(total=total_steps, desc=f"BNN {config.mode} ×{world_size}", unit="step")
    with measure() as cost:
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            order = torch.randperm(n_train, generator=RngStreams(config.seed).torch("bnn-order", epoch))
            loss_sum, n_losses = torch.zeros((), dtype=dtype, device=device), 0
            for k in range(n_batches):
                if step >= total_steps:
                    break
                idx = order[k * config.batch_size : (k + 1) * config.batch_size].to(device)
                t0 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                loss_sum += engine.forward_backward(x_train[idx], y_train[idx], step)  # no host sync
                n_losses += 1
                optimizer.step()
                if device.type == "cuda":  # an honest step time (kernels run asynchronously)
                    torch.cuda.synchronize(device)
                step_times.append(time.perf_counter() - t0)
                step += 1
                bar.update()
            probs = engine.predict_proba(
                x_test, samples=config.eval_samples, n_classes=data.n_classes, key=epoch
            )
            m = classification_metrics(probs.double(), y_test)
            history.append(
                BNNEpoch(
                    epoch=epoch,
                    step=step,
                    train_loss=float(loss_sum) / n_losses if n_losses else float("nan"),
                    test_accuracy=m["accuracy"],
                    test_nll=m["nll"],
                    test_ece=m["ece"],
                    test_entropy=m["entropy"],
                    wall_s=time.perf_counter() - start,
                )
            )
            bar.set_postfix(loss=f"{history[-1].train_loss:.3f}", acc=f"{m['accuracy']:.3f}")
            reached = config.target_accuracy is not None and m["accuracy"] >= config.target_accuracy
            if reached or step >= total_steps:
                break
    bar.close()
    skip = min(2, len(step_times) - 1)  # the first steps include lazy initialisation
    own = {
        "rank": rank,
        "step_time_s": statistics.median(step_times[skip:]) if step_times else float("nan"),
        "max_rss_mib": max_rss_mib(),
        **cost.to_dict(),
    }
    per_rank = _gather(own, world_size)
    if config.checkpoint is not None and rank == 0:
        save_checkpoint(
            Path(config.checkpoint),
            model.state_dict(),
            config=config.to_dict(),
            seed=config.seed,
            extra={"history": [h.to_dict() for h in history], "world_size": world_size},
        )
    return BNNResult(
        config=config,
        world_size=world_size,
        rank=rank,
        n_parameters=sum(p.numel() for p in model.parameters()),
        steps=step,
        history=history,
        step_time_s=max(r["step_time_s"] for r in per_rank),
        per_rank=per_rank,
        reliability=reliability(probs.double(), y_test, n_bins=10),
        workload=engine.workload.to_dict(),
    )


def config_from_args(args: Any) -> BNNConfig:
    """A :class:`BNNConfig` from parsed ``bnn-train`` arguments."""
    hidden: Sequence[int] = args.hidden
    return BNNConfig(
        data=args.data,
        model=args.model,
        hidden=tuple(hidden),
        mode=args.mode,
        samples=args.samples,
        loss=getattr(args, "loss", "elbo"),
        group_size=args.group_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        kl_weight=args.kl_weight,
        prior_std=args.prior_std,
        posterior_std=args.posterior_std,
        estimator=args.estimator,
        augment=args.augment,
        augment_per=args.augment_per,
        eval_samples=args.eval_samples,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
        target_accuracy=args.target_accuracy,
        max_steps=args.max_steps,
        checkpoint=args.checkpoint,
    )


__all__ = [
    "LOSSES",
    "MODES",
    "BNNConfig",
    "BNNEpoch",
    "BNNResult",
    "build_model",
    "config_from_args",
    "train_bnn",
]

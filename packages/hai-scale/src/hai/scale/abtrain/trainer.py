"""The AB-training loop on torch.distributed, and DDP / DDP + PowerSGD on the same footing.

One function, :func:`train_ab`, runs on every rank of an initialised process group. With
``method="ab"`` it follows :class:`~hai.scale.abtrain.schedule.ABSchedule`: full-rank DDP
warm-up, SVD (ranks agreed over all processes), group training with DDP inside each group of
``group_size`` ranks (A-groups train A with B frozen, B-groups the reverse), a synchronisation
of all ranks, DDP steps on the full weights, a re-decomposition with the cut-off, and so on;
the run ends with a final synchronisation so that every rank holds the same model. With
``"ddp"`` and ``"powersgd"`` it trains the same model on the same batches with plain DDP or
with torch's PowerSGD communication hook. Every collective is counted
(:mod:`~hai.scale.abtrain.comm`) and the schedule is traced step by step.

Batches: every rank draws its own batch of the training split from a generator seeded by
(seed, step, rank), so runs are reproducible and the methods see the same data.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
from torch.nn.parallel import DistributedDataParallel

from hai.scale.abtrain.comm import CommCounter, count_collectives, counting_allreduce_hook
from hai.scale.abtrain.lowrank import ABConv2d, ABLinear, LowRankSummary, to_low_rank
from hai.scale.abtrain.schedule import ABGroups, ABSchedule
from hai.scale.data import CLASSIFICATION_DATASETS, ClassificationData, load_classification
from hai.scale.models import mlp, small_cnn
from hai.scale.resnet import resnet18, synthetic_images
from hai.shared import InputError, RngStreams, measure, save_checkpoint
from hai.shared.checks import fraction, positive_float, positive_int

METHODS = ("ab", "ddp", "powersgd")
MODELS = ("mlp", "cnn", "resnet18")
#: Data sets of ab-train: hai.scale's classification sets and synthetic 3-channel images.
DATASETS = (*CLASSIFICATION_DATASETS, "images")

__all__ = ["DATASETS", "METHODS", "MODELS", "ABResult", "ABTrainConfig", "train_ab"]


def _default_schedule() -> ABSchedule:
    return ABSchedule(warmup_steps=40, steps_between_syncs=40, ddp_steps_after_sync=10, lr_rebound_steps=10)


@dataclass(frozen=True)
class ABTrainConfig:
    """What to train and how. ``batch_size`` is per rank."""

    method: str = "ab"
    data: str = "digits"
    model: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    group_size: int = 1
    cutoff: float = 0.1
    schedule: ABSchedule = field(default_factory=_default_schedule)
    powersgd_rank: int = 4
    powersgd_start: int = 2
    seed: int = 0
    split_seed: int = 0
    #: Side of the synthetic images (``data="images"``: 1,024 samples, 10 classes).
    image_size: int = 32

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}", hint="one of " + ", ".join(METHODS))
        if self.model not in MODELS:
            raise InputError(f"unknown model {self.model!r}", hint="one of " + ", ".join(MODELS))
        if self.data not in DATASETS:
            raise InputError(f"unknown data set {self.data!r}", hint="one of " + ", ".join(DATASETS))
        if self.model == "cnn" and self.data != "digits":
            raise InputError(f"the cnn needs image data; {self.data!r} is not", hint="use data 'digits'")
        if self.model == "resnet18" and self.data not in ("images", "digits"):
            raise InputError(f"resnet18 needs image data; {self.data!r} is not", hint="use data 'images'")
        positive_int("image_size", self.image_size, maximum=1024)
        if not self.hidden:
            raise InputError("hidden needs at least one layer width (an MLP without hidden layers is linear)")
        for width in self.hidden:
            positive_int("hidden width", width)
        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        positive_float("lr", self.lr)
        positive_int("group_size", self.group_size)
        fraction("cutoff", self.cutoff)
        positive_int("powersgd_rank", self.powersgd_rank)
        if self.powersgd_start < 2:
            raise InputError("powersgd_start must be at least 2 (PowerSGD's error feedback needs it)")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ABTrainConfig:
        data = dict(data)
        data["hidden"] = tuple(data.get("hidden", (256, 256)))
        if isinstance(data.get("schedule"), dict):
            data["schedule"] = ABSchedule(**data["schedule"])
        return cls(**data)


@dataclass
class ABResult:
    """What one rank saw: losses per step, test accuracy, bytes per phase, the trace."""

    method: str
    rank: int
    world_size: int
    losses: list[float]
    test_accuracy: float
    comm: dict[str, Any]
    trace: list[dict[str, Any]]
    ranks: list[dict[str, Any]]
    parameters: int
    wall_s: float
    checksum: float
    cost: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_data(config: ABTrainConfig) -> ClassificationData:
    if config.data == "images":
        return synthetic_images(config.image_size, seed=config.split_seed)
    return load_classification(config.data, seed=config.split_seed)


def _build_model(config: ABTrainConfig, data: ClassificationData) -> nn.Module:
    if config.model == "resnet18":
        if data.image_shape is None:
            raise InputError(f"resnet18 needs image data; {data.name!r} is not", hint="use --data images")
        height, width = data.image_shape
        return resnet18(data.n_classes, data.image_shape, channels=data.n_features // (height * width))
    if config.model == "cnn":
        if data.image_shape is None:
            raise InputError(f"the cnn needs image data; {data.name!r} is not", hint="use --data digits")
        return small_cnn(data.n_classes, data.image_shape)
    return mlp(data.n_features, data.n_classes, config.hidden)


def _ab_layers(model: nn.Module) -> list[tuple[str, ABLinear | ABConv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ABLinear | ABConv2d)]


def _factor_names(model: nn.Module) -> set[str]:
    names = set()
    for name, _ in _ab_layers(model):
        prefix = f"{name}." if name else ""
        names |= {prefix + "A", prefix + "B"}
    return names


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def _synchronise(model: nn.Module, mode: str, groups: ABGroups, rank: int) -> None:
    """Average all ranks into one full-rank model (every rank ends with the same weights)."""
    world = dist.get_world_size()
    factor_names = _factor_names(model)
    for name, param in model.named_parameters():
        if name not in factor_names:
            dist.all_reduce(param.data, op=dist.ReduceOp.AVG)
    role = groups.role_of(rank)
    a_ranks = sum(len(g) for g, r in zip(groups.groups, groups.roles, strict=True) if r == "A")
    for name, layer in _ab_layers(model):
        if mode == "full":
            weight = layer.weight_matrix().detach().clone()
            dist.all_reduce(weight, op=dist.ReduceOp.AVG)
        elif mode == "with-stale":
            a, b = layer.A.detach().clone(), layer.B.detach().clone()
            dist.all_reduce(a, op=dist.ReduceOp.AVG)
            dist.all_reduce(b, op=dist.ReduceOp.AVG)
            weight = a @ b
        else:  # only-learned: each factor averaged over the ranks that trained it
            a = layer.A.detach().clone() if role == "A" else torch.zeros_like(layer.A)
            b = layer.B.detach().clone() if role == "B" else torch.zeros_like(layer.B)
            dist.all_reduce(a)
            dist.all_reduce(b)
            weight = (a / a_ranks) @ (b / (world - a_ranks))
        full = layer.to_linear() if isinstance(layer, ABLinear) else layer.to_conv()
        full.weight.copy_(weight.reshape_as(full.weight))
        _set_module(model, name, full)


def _wrap(model: nn.Module, group: Any, group_size: int, method: str, config: ABTrainConfig) -> nn.Module:
    if group_size == 1:
        return model  # training alone: nothing to all-reduce
    net = DistributedDataParallel(model, process_group=group, init_sync=False)
    if method == "powersgd":
        state = powersgd.PowerSGDState(
            process_group=group,
            matrix_approximation_rank=config.powersgd_rank,
            start_powerSGD_iter=config.powersgd_start,
            random_seed=config.seed,
        )
        net.register_comm_hook(state, powersgd.powerSGD_hook)
    else:
        net.register_comm_hook(group, counting_allreduce_hook)
    return net


def _optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)


def _optimizer_state_by_name(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, dict[str, Any]]:
    """AdamW's state of each parameter, by parameter name (the objects change at every event)."""
    return {n: dict(opt.state[p]) for n, p in model.named_parameters() if p in opt.state}


def _restore_optimizer_state(
    model: nn.Module, opt: torch.optim.Optimizer, before: dict[str, dict[str, Any]]
) -> None:
    """Give parameters that kept their name and shape their old moments; factors start afresh."""
    factors = _factor_names(model)
    for name, param in model.named_parameters():
        state = before.get(name)
        if state is None or name in factors or not param.requires_grad:
            continue
        moments = [v for k, v in state.items() if k != "step"]
        if all(v.shape == param.shape for v in moments):
            opt.state[param] = {k: v.clone() for k, v in state.items()}


def _frozen_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}


def _frozen_unchanged(model: nn.Module, frozen: dict[str, torch.Tensor]) -> bool:
    """Whether every factor frozen at the last decomposition is bit for bit what it was."""
    params = dict(model.named_parameters())
    return all(torch.equal(params[n].detach(), value) for n, value in frozen.items())


def _checksum(model: nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def train_ab(
    config: ABTrainConfig,
    data: ClassificationData | None = None,
    model_fn: Callable[[ClassificationData], nn.Module] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> ABResult:
    """Train on every rank of the current process group; return this rank's :class:`ABResult`.

    ``model_fn(data)`` builds another model than the configured MLP/CNN: any torch module whose
    ``nn.Linear`` and ``nn.Conv2d`` layers are to be factored. It is called after seeding, so
    every rank builds the same initial weights. Time and energy of the training are measured
    per rank with :func:`hai.shared.measure` (``cost``). With ``checkpoint``, rank 0 saves the
    final full-rank model (every rank holds the same one after the last sync) there as a
    safetensors file with the configuration, through :func:`hai.shared.save_checkpoint`.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise InputError(
            "train_ab runs inside a torch.distributed process group", hint="use launch_ab or torchrun"
        )
    rank, world = dist.get_rank(), dist.get_world_size()
    groups = ABGroups.build(world, config.group_size) if config.method == "ab" else None
    data = data if data is not None else _load_data(config)
    torch.manual_seed(config.seed)  # the same initial model on every rank
    model = model_fn(data) if model_fn is not None else _build_model(config, data)
    parameters = sum(p.numel() for p in model.parameters())
    # Every rank creates every group, in the same order (torch.distributed requires it).
    subgroups = [dist.new_group(list(g)) for g in groups.groups] if groups is not None else []
    schedule = config.schedule
    streams = RngStreams(config.seed)
    counter = CommCounter()
    losses: list[float] = []
    trace: list[dict[str, Any]] = []
    ranks: list[dict[str, Any]] = []
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    with measure() as cost, count_collectives(counter):
        net = _wrap(model, None, world, config.method, config)
        opt = _optimizer(model, config.lr)
        summary: LowRankSummary | None = None
        frozen: dict[str, torch.Tensor] = {}
        for step in range(config.steps):
            lr = config.lr
            phase = "ddp"
            if groups is not None:
                phase, events, lr = schedule.phase(step), schedule.events(step), schedule.lr(step, config.lr)
                if events:
                    before = _optimizer_state_by_name(model, opt)
                    counter.phase = "sync"
                    if "sync" in events:
                        ranks[-1]["frozen_unchanged"] = _frozen_unchanged(model, frozen)
                        _synchronise(model, schedule.sync_mode, groups, rank)
                    if "svd" in events or "resvd" in events:
                        summary = to_low_rank(model, cutoff=config.cutoff)
                        role = groups.role_of(rank)
                        for _, layer in _ab_layers(model):
                            layer.set_trainable(role)
                        ranks.append(
                            {"step": step, "role": role, "layers": [list(x) for x in summary.layers]}
                        )
                        frozen = _frozen_copies(model)
                        index = groups.group_of(rank)
                        net = _wrap(model, subgroups[index], len(groups.groups[index]), "ddp", config)
                    else:
                        net = _wrap(model, None, world, "ddp", config)
                    opt = _optimizer(model, lr)
                    if not schedule.reset_optimizer:
                        _restore_optimizer_state(model, opt, before)
                trace.append({"step": step, "phase": phase, "events": list(events), "lr": lr})
            counter.phase = phase
            for group in opt.param_groups:
                group["lr"] = lr
            g = streams.torch("batch", step, rank)
            index_batch = torch.randint(0, data.x_train.shape[0], (config.batch_size,), generator=g)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(data.x_train[index_batch]), data.y_train[index_batch])
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if value != value or value in (float("inf"), float("-inf")):
                raise InputError(f"the loss became non-finite at step {step}", hint="lower the learning rate")
            losses.append(value)
        if groups is not None and _ab_layers(model):
            ranks[-1]["frozen_unchanged"] = _frozen_unchanged(model, frozen)
            counter.phase = "final-sync"
            _synchronise(model, schedule.sync_mode, groups, rank)
    wall = time.perf_counter() - start
    with torch.no_grad():
        predictions = model(data.x_test).argmax(dim=1)
        accuracy = float((predictions == data.y_test).float().mean())
    if checkpoint is not None and rank == 0:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        meta = {"kind": "hai.scale.abtrain", "world_size": world, "test_accuracy": accuracy}
        save_checkpoint(checkpoint, state, config=config.to_dict(), seed=config.seed, extra=meta)
    comm = counter.to_dict()
    if summary is not None:
        comm["compression_ratio"] = summary.compression_ratio
    return ABResult(
        method=config.method,
        rank=rank,
        world_size=world,
        losses=losses,
        test_accuracy=accuracy,
        comm=comm,
        trace=trace,
        ranks=ranks,
        parameters=parameters,
        wall_s=wall,
        checksum=_checksum(model),
        cost=cost.to_dict(),
    )

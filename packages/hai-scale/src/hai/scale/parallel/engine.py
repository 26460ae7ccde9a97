"""One training step of a BNN under sampling, data or hybrid parallelism, exact by design.

Every rank gets the same global batch (the loader order is shared) and keeps the rows of its
:class:`~hai.scale.parallel.workload.Workload`; it evaluates its weight samples with noise keyed
by (seed, step, sample index), and augments with a generator keyed the same way. The local loss
is ``W · (Σ local NLL)/(S·B) + β·KL/N``: DDP averages gradients over the W ranks, which gives
exactly the gradient of the S-sample estimator ``(Σ NLL)/(S·B) + β·KL/N`` with the KL counted
once (it is identical on every rank). Only floating-point reduction order differs from one
process evaluating all S samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hai.scale.augment import AUGMENT_PER, Augmentation, augmentation_generator
from hai.scale.bnn.layers import bayesian_layers, kl_divergence, weight_sample
from hai.scale.bnn.losses import ELBOLoss
from hai.scale.parallel.workload import Workload, split_range, workload
from hai.shared import InputError


def world() -> tuple[int, int]:
    """(world size, rank) of the default process group, or (1, 0) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class MonteCarlo(nn.Module):
    """Evaluates ``model`` for a list of weight samples on (augmented) inputs: output (s, b, ...)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        seed: int,
        augmentation: Augmentation | None = None,
        augment_per: str = "sample",
    ) -> None:
        super().__init__()
        self.model = model
        self.seed = seed
        self.augmentation = augmentation
        self.augment_per = augment_per
        self.plan: tuple[Sequence[int], int, slice, int] = ((), 0, slice(0, 0), 0)

    def augment(
        self, x: torch.Tensor, step: int, sample: int | None, rows: slice, batch: int
    ) -> torch.Tensor:
        if self.augmentation is None:
            return x
        gen = augmentation_generator(self.seed, step, sample, x.device)
        return self.augmentation(x, gen, rows=rows, batch_size=batch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sample_ids, step, rows, batch = self.plan
        if self.augment_per == "step":
            x = self.augment(x, step, None, rows, batch)
        outputs = []
        for i in sample_ids:
            xi = self.augment(x, step, i, rows, batch) if self.augment_per == "sample" else x
            with weight_sample(self.model, seed=self.seed, step=step, sample=i, rows=rows, batch_size=batch):
                outputs.append(self.model(xi))
        return torch.stack(outputs)


class SamplingParallel:
    """The S-sample ELBO step of a Bayesian ``model`` spread over the ranks of the default group.

    Without a process group (or with one rank) this is plain single-process training. The
    workload is validated on construction, before any collective call, so bad input raises the
    same :class:`~hai.shared.InputError` on every rank.

    >>> from hai.scale.bnn import ELBOLoss, to_bayesian
    >>> net = to_bayesian(nn.Linear(4, 3))
    >>> engine = SamplingParallel(net, ELBOLoss(100), mode="local", samples=2, batch_size=8, seed=0)
    >>> loss = engine.forward_backward(torch.randn(8, 4), torch.randint(0, 3, (8,)), step=0)
    >>> net.weight_mu.grad is not None
    True
    """

    def __init__(
        self,
        model: nn.Module,
        loss: ELBOLoss,
        *,
        mode: str = "local",
        samples: int = 4,
        batch_size: int = 64,
        group_size: int | None = None,
        seed: int = 0,
        augmentation: Augmentation | None = None,
        augment_per: str = "sample",
    ) -> None:
        self.world_size, self.rank = world()
        self.workload: Workload = workload(mode, samples, batch_size, self.world_size, self.rank, group_size)
        if augment_per not in AUGMENT_PER:
            raise InputError(
                f"unknown augment_per {augment_per!r}", hint=f"use one of {', '.join(AUGMENT_PER)}"
            )
        if not bayesian_layers(model):
            raise InputError("the model has no Bayesian layer", hint="convert it with hai.scale.to_bayesian")
        self.model = model
        self.loss = loss
        self.seed = seed
        self.mc = MonteCarlo(model, seed=seed, augmentation=augmentation, augment_per=augment_per)
        self.module: nn.Module = self.mc
        if self.world_size > 1:
            device = next(model.parameters()).device
            self.module = DistributedDataParallel(
                self.mc, device_ids=[device.index] if device.type == "cuda" else None
            )

    def local_outputs(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """This rank's outputs (local samples, local rows, ...) for the global batch ``x`` at ``step``."""
        wl = self.workload
        if x.shape[0] != wl.batch_size:
            raise InputError(f"expected the global batch of {wl.batch_size} rows, got {x.shape[0]}")
        self.mc.plan = (wl.sample_ids, int(step), wl.rows, wl.batch_size)
        return self.module(x[wl.rows])

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> float:
        """Fill ``.grad`` with the gradient of the global S-sample loss; return that loss (all ranks)."""
        wl = self.workload
        outputs = self.local_outputs(x, step)
        data = self.loss.data_sum(outputs, y[wl.rows])
        kl_term = self.loss.kl_term(kl_divergence(self.model).to(data.dtype))
        scale = wl.samples * wl.batch_size
        (data * (self.world_size / scale) + kl_term).backward()
        total = data.detach().clone()
        if self.world_size > 1:
            dist.all_reduce(total)
        return float(total / scale + kl_term.detach())

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, *, samples: int, n_classes: int, key: int = 0) -> torch.Tensor:
        """Mean class probabilities over ``samples`` weight samples, computed in parallel, on every rank.

        Ranks split the samples and rows as in training (near-equal parts, any sizes); the
        noise of evaluation sample i is keyed by (seed, "bnn-eval", key, i).
        """
        if samples < 1:
            raise InputError(f"evaluation samples must be at least 1, got {samples}")
        wl = self.workload
        n = x.shape[0]
        s0, s1 = split_range(samples, wl.sample_shards, wl.sample_shard)
        r0, r1 = split_range(n, wl.data_shards, wl.data_shard)
        total = torch.zeros(n, n_classes, dtype=x.dtype, device=x.device)
        for i in range(s0, s1) if r1 > r0 else ():
            with weight_sample(
                self.model,
                seed=self.seed,
                step=key,
                sample=i,
                rows=slice(r0, r1),
                batch_size=n,
                name="bnn-eval",
            ):
                total[r0:r1] += torch.softmax(self.model(x[r0:r1]), dim=-1)
        if self.world_size > 1:
            dist.all_reduce(total)
        return total / samples

"""One training step of a BNN under sampling, data or hybrid parallelism, exact by design.

Every rank gets the same global batch (the loader order is shared) and keeps the rows of its
:class:`~hai.scale.parallel.workload.Workload`; it evaluates its weight samples with noise keyed
by (seed, step, sample index), and augments with a generator keyed the same way. With the
:class:`~hai.scale.bnn.ELBOLoss` the local loss is ``W · (Σ local NLL)/(S·B) + β·KL/N``: DDP
averages gradients over the W ranks, which gives exactly the gradient of the S-sample estimator
``(Σ NLL)/(S·B) + β·KL/N`` with the KL counted once (it is identical on every rank). Only
floating-point reduction order differs from one process evaluating all S samples.

With the :class:`~hai.scale.bnn.PredictiveLoss` the ranks that share batch rows (all ranks in
``sample`` mode, a group of G in ``hybrid``, none in ``data``) all-reduce their partial sums
(1/S) Σ_{i local} p(y | x, wᵢ) to the mean predictive p̄ before the logarithm; see
:class:`GroupSum` for the gradient.

One collective per step: the loss value rides along in DDP's gradient all-reduce. A zero
"loss probe" parameter is added to the objective as ``probe · ℓ_r`` (ℓ_r this rank's local loss,
detached), so the probe's gradient is ℓ_r and DDP's average makes it the mean of the ranks'
local losses, which is the global loss; the model's gradients are unchanged (probe = 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hai.scale.augment import AUGMENT_PER, Augmentation, augmentation_generator
from hai.scale.bnn.layers import bayesian_layers, kl_divergence, weight_sample
from hai.scale.bnn.losses import ELBOLoss, PredictiveLoss
from hai.scale.parallel.workload import Workload, split_range, workload
from hai.shared import InputError


def world() -> tuple[int, int]:
    """(world size, rank) of the default process group, or (1, 0) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class GroupSum(torch.autograd.Function):
    """All-reduce (sum) over a process group of G ranks, with the adjoint that DDP's averaging needs.

    Forward: every rank of the group gets y = Σ_r x_r. Every rank then computes the same loss
    ℓ(y) from its copy, so the adjoint of x_r is the sum of the G copies' upstream gradients,
    ∂ℓ/∂x_r = Σ_copies ∂ℓ/∂y = G·∂ℓ/∂y (the copies are identical, so no communication is
    needed). Each rank then backpropagates ``(W/G) · ℓ`` (W/G = the number of groups, which
    split the batch rows), DDP divides the sum over the W ranks by W, and the result is the
    gradient of the one global loss: (1/W)·Σ_r (W/G)·G·∂ℓ/∂y·∂x_r/∂θ = Σ_r ∂ℓ/∂y·∂x_r/∂θ.

    The reference's ``GaussianAggregation`` sums x_r/W and returns grad/W: the exact Jacobian
    of its forward, but then DDP's average divides by W once more, so its data term gets 1/W
    of its gradient while the (identical) KL term keeps all of it.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any, size: int) -> torch.Tensor:
        ctx.size = size
        y = x.clone()
        if size > 1:
            dist.all_reduce(y, group=group)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return grad * ctx.size, None, None


def _check_eval_samples(samples: int) -> None:
    if samples < 1:
        raise InputError(f"evaluation samples must be at least 1, got {samples}")


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
        first = next(model.parameters())
        # Carries the loss value through the gradient all-reduce (see the module docstring).
        self.loss_probe = nn.Parameter(torch.zeros(1, dtype=first.dtype, device=first.device))

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
    >>> net.weight_mu.grad is not None, loss.shape
    (True, torch.Size([]))
    """

    def __init__(
        self,
        model: nn.Module,
        loss: ELBOLoss | PredictiveLoss,
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
        if not isinstance(loss, (ELBOLoss, PredictiveLoss)):
            raise InputError(
                f"unknown loss {type(loss).__name__}",
                hint="use hai.scale.ELBOLoss or hai.scale.PredictiveLoss",
            )
        self.model = model
        self.loss = loss
        self.seed = seed
        self.mc = MonteCarlo(model, seed=seed, augmentation=augmentation, augment_per=augment_per)
        self.module: nn.Module = self.mc
        self.sample_group: Any = None
        wl = self.workload
        if self.world_size > 1:
            if isinstance(loss, PredictiveLoss) and 1 < wl.sample_shards < self.world_size:
                # hybrid: one group per batch shard (every rank must create every group, in order)
                for d in range(wl.data_shards):
                    ranks = list(range(d * wl.sample_shards, (d + 1) * wl.sample_shards))
                    group = dist.new_group(ranks)
                    if d == wl.data_shard:
                        self.sample_group = group
            device = next(model.parameters()).device
            self.module = DistributedDataParallel(
                self.mc,
                device_ids=[device.index] if device.type == "cuda" else None,
                gradient_as_bucket_view=True,
            )

    def local_outputs(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """This rank's outputs (local samples, local rows, ...) for the global batch ``x`` at ``step``."""
        wl = self.workload
        if x.shape[0] != wl.batch_size:
            raise InputError(f"expected the global batch of {wl.batch_size} rows, got {x.shape[0]}")
        self.mc.plan = (wl.sample_ids, int(step), wl.rows, wl.batch_size)
        return self.module(x[wl.rows])

    def local_loss(self, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        """This rank's share ℓ_r of the global loss: DDP's average of its gradients is the global gradient.

        The mean of ℓ_r over the ranks is the global loss (for the predictive loss ℓ_r is
        (W/G)·(its rows' term) + β·KL/N). The returned value is ℓ_r + probe·ℓ_r (detached) with
        the probe 0: the same number, but its backward gives the probe the gradient ℓ_r, as DDP
        expects of every parameter it manages.
        """
        wl = self.workload
        outputs = self.local_outputs(x, step)
        target = y[wl.rows]
        if isinstance(self.loss, PredictiveLoss):
            part = self.loss.likelihood_sum(outputs, target, wl.samples)
            mean = GroupSum.apply(part, self.sample_group, wl.sample_shards)
            data = self.loss.data_sum(mean) * (wl.data_shards / wl.batch_size)
        else:
            data = self.loss.data_sum(outputs, target) * (self.world_size / (wl.samples * wl.batch_size))
        local = data + self.loss.kl_term(kl_divergence(self.model).to(data.dtype))
        return local + self.mc.loss_probe.sum() * local.detach()

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        """Fill ``.grad`` with the gradient of the global S-sample loss; return that loss (all ranks).

        The loss comes back as a detached 0-d tensor (no host synchronisation; ``float()`` it
        when you need the number) and costs no extra collective: it travels with the gradients.
        """
        probe = self.mc.loss_probe
        probe.grad = None
        self.local_loss(x, y, step).backward()
        assert probe.grad is not None
        return probe.grad.detach().sum()

    def _eval_outputs(
        self, x: torch.Tensor, samples: int, key: int
    ) -> Iterator[tuple[int, slice, torch.Tensor]]:
        """This rank's evaluation outputs: (sample i, its rows, the model's output on them).

        Ranks split the samples and rows as in training (near-equal parts, any sizes); the
        noise of evaluation sample i is keyed by (seed, "bnn-eval", key, i).
        """
        wl = self.workload
        n = x.shape[0]
        s0, s1 = split_range(samples, wl.sample_shards, wl.sample_shard)
        r0, r1 = split_range(n, wl.data_shards, wl.data_shard)
        rows = slice(r0, r1)
        for i in range(s0, s1) if r1 > r0 else ():
            with weight_sample(
                self.model, seed=self.seed, step=key, sample=i, rows=rows, batch_size=n, name="bnn-eval"
            ):
                yield i, rows, self.model(x[rows])

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, *, samples: int, n_classes: int, key: int = 0) -> torch.Tensor:
        """Mean class probabilities over ``samples`` weight samples, computed in parallel, on every rank.

        Ranks split the samples and rows as in training (near-equal parts, any sizes); the
        noise of evaluation sample i is keyed by (seed, "bnn-eval", key, i).
        """
        _check_eval_samples(samples)
        total = torch.zeros(x.shape[0], n_classes, dtype=x.dtype, device=x.device)
        for _, rows, logits in self._eval_outputs(x, samples, key):
            total[rows] += torch.softmax(logits, dim=-1)
        if self.world_size > 1:
            dist.all_reduce(total)
        return total / samples

    @torch.no_grad()
    def predict_outputs(self, x: torch.Tensor, *, samples: int, n_outputs: int, key: int = 0) -> torch.Tensor:
        """The raw outputs (samples, N, n_outputs) of ``samples`` weight samples, computed in parallel.

        Ranks split the samples and rows as :meth:`predict_proba` does (same noise keys), write
        their block into a zero tensor and all-reduce it: every rank gets every output, exactly
        (adding zeros is exact), so the result does not depend on the number of ranks. Meant for
        regression (the predictive mean and variance over the samples); memory is S·N·n_outputs.

        >>> from hai.scale.bnn import ELBOLoss, to_bayesian
        >>> net = to_bayesian(nn.Linear(1, 1))
        >>> engine = SamplingParallel(net, ELBOLoss(10, likelihood="gaussian"), samples=2, batch_size=4)
        >>> tuple(engine.predict_outputs(torch.randn(5, 1), samples=3, n_outputs=1).shape)
        (3, 5, 1)
        """
        _check_eval_samples(samples)
        out = torch.zeros(samples, x.shape[0], n_outputs, dtype=x.dtype, device=x.device)
        for i, rows, outputs in self._eval_outputs(x, samples, key):
            out[i, rows] = outputs.reshape(rows.stop - rows.start, n_outputs)
        if self.world_size > 1:
            dist.all_reduce(out)
        return out

"""Forward-gradient estimates for any ``nn.Module``, and a drop-in replacement for ``loss.backward()``.

One step: draw k tangents (:mod:`.tangents`), push them through the model in one vectorised
forward-mode pass (:mod:`.directional`), and combine the k directional derivatives
(:mod:`.aggregation`). :class:`ForwardGradient` writes the estimate into each parameter's
``.grad``, so any torch optimizer steps on it as usual; no backward pass is ever run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hai.scale.forward_grad.aggregation import Aggregation, aggregate, check_aggregation
from hai.scale.forward_grad.directional import LossFn, directional_derivatives, trainable_parameters
from hai.scale.forward_grad.tangents import (
    DISTRIBUTIONS,
    SCOPES,
    Distribution,
    Scope,
    check_tangent_count,
    expected_squared_norm,
    sample_tangent_matrix,
    split_tangents,
)
from hai.shared import InputError, RngStreams


@dataclass
class ForwardGradientEstimate:
    """One forward-gradient estimate.

    ``gradients`` has one tensor per trainable parameter (same shapes, in
    ``named_parameters()`` order); ``derivatives`` are the k directional derivatives;
    ``tangents_used`` is the number of tangents drawn (the projection never needs more than n).
    """

    loss: torch.Tensor
    gradients: list[torch.Tensor]
    derivatives: torch.Tensor
    tangents_used: int
    n_parameters: int

    def flat(self) -> torch.Tensor:
        """The estimate as one flat vector (the parameters concatenated in order)."""
        return torch.cat([g.reshape(-1) for g in self.gradients])


def _check_options(distribution: str, scope: str) -> None:
    if distribution not in DISTRIBUTIONS:
        raise InputError(
            f"unknown tangent distribution {distribution!r}", hint=f"use one of {', '.join(DISTRIBUTIONS)}"
        )
    if scope not in SCOPES:
        raise InputError(f"unknown tangent scope {scope!r}", hint=f"use one of {', '.join(SCOPES)}")


def forward_gradient(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Any,
    targets: Any,
    *,
    tangents: int = 1,
    aggregation: Aggregation | str = "projection",
    distribution: Distribution | str = "normal",
    scope: Scope | str = "global",
    scale: bool = False,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> ForwardGradientEstimate:
    """Estimate the gradient of ``loss_fn(model(inputs), targets)`` from ``tangents`` directional derivatives.

    Nothing is written to the model; see :class:`ForwardGradient` for training. For the
    projection at most n (the parameter count) tangents are drawn, since n independent ones
    already give the exact gradient.

    >>> torch.manual_seed(0) is not None
    True
    >>> model = nn.Linear(2, 1).double()
    >>> x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    >>> est = forward_gradient(model, nn.MSELoss(), x, y, tangents=3)   # k = n = 3: exact
    >>> exact = torch.autograd.grad(nn.MSELoss()(model(x), y), list(model.parameters()))
    >>> bool(torch.allclose(est.flat(), torch.cat([g.reshape(-1) for g in exact])))
    True
    """
    k = check_tangent_count(tangents)
    check_aggregation(str(aggregation))
    _check_options(str(distribution), str(scope))
    params = trainable_parameters(model)
    shapes = [p.shape for _, p in params]
    numels = [p.numel() for _, p in params]
    n = sum(numels)
    dtype = functools.reduce(torch.promote_types, (p.dtype for _, p in params))
    device = params[0][1].device
    drawn = min(k, n) if aggregation == "projection" else k
    flat_v = sample_tangent_matrix(
        shapes, drawn, distribution=distribution, scope=scope, generator=generator, dtype=dtype, device=device
    )
    dd = directional_derivatives(
        model, loss_fn, inputs, targets, split_tangents(flat_v, shapes), chunk_size=chunk_size
    )
    estimate = aggregate(
        flat_v,
        dd.derivatives.to(dtype),
        aggregation,
        scale=scale,
        expected_sq_norm=expected_squared_norm(numels, distribution, scope),
    )
    gradients = [
        block.reshape(p.shape).to(p.dtype)
        for block, (_, p) in zip(torch.split(estimate, numels), params, strict=True)
    ]
    return ForwardGradientEstimate(
        loss=dd.loss, gradients=gradients, derivatives=dd.derivatives, tangents_used=drawn, n_parameters=n
    )


class ForwardGradient:
    """Fill ``.grad`` of a model's parameters with a forward-gradient estimate, instead of ``backward()``.

    ``tangents`` is k, ``aggregation`` one of "projection", "mean", "sum"; ``distribution``
    and ``scope`` choose the tangents (see :func:`sample_tangents`), ``scale`` applies the
    published scaling correction, ``seed`` makes the tangent draws reproducible (None: torch's
    global generator). Calling it with ``(inputs, targets)`` returns the loss and *adds* the
    estimate to each trainable parameter's ``.grad`` (as ``backward()`` accumulates), so zero
    the gradients between steps as usual.

    >>> torch.manual_seed(0) is not None
    True
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> fg = ForwardGradient(model, nn.MSELoss(), tangents=4, seed=0)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.randn(32, 4), torch.randn(32, 1)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     loss = fg(x, y)
    ...     opt.step()
    >>> loss.dim(), model[0].weight.grad.shape
    (0, torch.Size([8, 4]))
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        tangents: int = 1,
        aggregation: Aggregation | str = "projection",
        *,
        distribution: Distribution | str = "normal",
        scope: Scope | str = "global",
        scale: bool = False,
        seed: int | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.tangents = check_tangent_count(tangents)
        self.aggregation = check_aggregation(str(aggregation))
        _check_options(str(distribution), str(scope))
        trainable_parameters(model)  # fail early for a model with nothing to train
        if not callable(loss_fn):
            raise InputError(f"loss_fn must be callable (outputs, targets) -> scalar, got {loss_fn!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.distribution = str(distribution)
        self.scope = str(scope)
        self.scale = scale
        self.seed = seed
        self.chunk_size = chunk_size
        self._generator: torch.Generator | None = None
        self.last_estimate_: ForwardGradientEstimate | None = None

    def _get_generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = RngStreams(self.seed).torch("forward-gradient-tangents", device=device)
        return self._generator

    def estimate(self, inputs: Any, targets: Any) -> ForwardGradientEstimate:
        """The estimate for one batch, without touching ``.grad``."""
        device = next(p.device for _, p in trainable_parameters(self.model))
        return forward_gradient(
            self.model,
            self.loss_fn,
            inputs,
            targets,
            tangents=self.tangents,
            aggregation=self.aggregation,
            distribution=self.distribution,
            scope=self.scope,
            scale=self.scale,
            generator=self._get_generator(device),
            chunk_size=self.chunk_size,
        )

    def __call__(self, inputs: Any, targets: Any) -> torch.Tensor:
        """Compute the loss and add the forward-gradient estimate to each parameter's ``.grad``."""
        est = self.estimate(inputs, targets)
        with torch.no_grad():
            for (_, p), g in zip(trainable_parameters(self.model), est.gradients, strict=True):
                if p.grad is None:
                    p.grad = g.detach().clone()
                else:
                    p.grad.add_(g)
        self.last_estimate_ = est
        return est.loss

    def __repr__(self) -> str:
        return (
            f"ForwardGradient(tangents={self.tangents}, aggregation={self.aggregation!r}, "
            f"distribution={self.distribution!r}, scope={self.scope!r}, scale={self.scale})"
        )

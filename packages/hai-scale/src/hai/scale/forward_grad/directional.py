"""Directional derivatives of a model's loss along k tangents, by forward-mode AD (no backward pass).

The loss is written as a pure function of the trainable parameters with
``torch.func.functional_call``; ``torch.func.jvp`` gives the directional derivative ∇f·v along
one tangent, and ``torch.func.vmap`` runs all k tangents in one vectorised pass (the primal
forward computation is shared, only the tangent computation is batched). Dropout sees the same
random mask for every tangent (``randomness="same"``), so all k derivatives are of one function.
That mask is drawn from torch's global generator, but not necessarily as a plain forward pass
would draw it (on CUDA it differs), so do not expect a backprop pass with the same seed to see it.

Buffers (BatchNorm running statistics) are cloned inside the transformed function, which may
then update them; the updated values come back once and are copied into the module, so a
training-mode BatchNorm updates its statistics once per step, as it would with backprop.

Why hand-written: torch offers ``jvp`` and ``vmap`` but no helper that turns an ``nn.Module``
plus a loss into k directional derivatives.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

from hai.shared import InputError

LossFn = Callable[[Any, Any], torch.Tensor]


@dataclass
class DirectionalDerivatives:
    """The loss at the current parameters and its derivatives along each tangent.

    ``loss`` is a 0-d tensor, ``derivatives`` has shape (k,): derivatives[i] = ∇f·vᵢ.
    """

    loss: torch.Tensor
    derivatives: torch.Tensor


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs of ``model`` that require gradients; InputError if there are none.

    >>> [name for name, _ in trainable_parameters(nn.Linear(2, 1))]
    ['weight', 'bias']
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise InputError(
            f"the model {type(model).__name__} has no trainable parameters, so there is nothing to "
            "estimate a gradient for",
            hint="give it parameters with requires_grad=True (are they all frozen?)",
        )
    return params


def _check_scalar(loss: Any) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise InputError(f"the loss function must return a tensor, got {type(loss).__name__}")
    if loss.dim() != 0:
        raise InputError(
            f"the loss must be a scalar (0-d tensor), got shape {tuple(loss.shape)}",
            hint="reduce it, e.g. with reduction='mean' or loss.mean()",
        )
    return loss


def directional_derivatives(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Any,
    targets: Any,
    tangents: Sequence[torch.Tensor],
    *,
    chunk_size: int | None = None,
) -> DirectionalDerivatives:
    """Loss of ``model`` on ``(inputs, targets)`` and its derivatives along k tangents, forward mode only.

    ``tangents`` holds one ``(k, *param.shape)`` tensor per trainable parameter, in the order of
    ``model.named_parameters()`` (as :func:`sample_tangents` produces them). ``chunk_size`` limits
    how many tangents are pushed through at once (memory versus speed).

    >>> from hai.scale.forward_grad import sample_tangents
    >>> model = nn.Linear(3, 1)
    >>> shapes = [p.shape for p in model.parameters()]
    >>> v = sample_tangents(shapes, 2, generator=torch.Generator().manual_seed(0))
    >>> out = directional_derivatives(model, nn.MSELoss(), torch.ones(4, 3), torch.zeros(4, 1), v)
    >>> tuple(out.derivatives.shape)
    (2,)
    """
    params = trainable_parameters(model)
    names = [name for name, _ in params]
    primals = tuple(p.detach() for _, p in params)
    if len(tangents) != len(primals):
        raise InputError(
            f"got {len(tangents)} tangent tensors for {len(primals)} trainable parameters",
            hint="draw them with sample_tangents([p.shape for p in trainable parameters], k)",
        )
    k = int(tangents[0].shape[0]) if tangents[0].dim() else 0
    for (name, p), t in zip(params, tangents, strict=True):
        if tuple(t.shape) != (k, *p.shape):
            raise InputError(
                f"tangent for parameter {name!r} has shape {tuple(t.shape)}, expected {(k, *p.shape)}"
            )
    if k < 1:
        raise InputError("at least one tangent is needed")
    frozen = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def loss_of(*values: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        local = {name: b.clone() for name, b in buffers.items()}
        state = {**frozen, **dict(zip(names, values, strict=True))}
        outputs = functional_call(model, (state, local), (inputs,))
        return _check_scalar(loss_fn(outputs, targets)), local

    def along(*tangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        result: Any = jvp(loss_of, primals, tangent, has_aux=True)  # (loss, ∇f·v, aux) with has_aux
        loss, derivative, new_buffers = result
        return loss, derivative, new_buffers

    tangent_values = tuple(t.to(dtype=p.dtype) for t, p in zip(tangents, primals, strict=True))
    with warnings.catch_warnings():
        # torch scripts its forward-AD decompositions on first use and warns that torch.jit.script
        # is deprecated; that is torch's own business and nothing a user of this function can act on.
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning
        )
        losses, derivatives, new_buffers = vmap(along, randomness="same", chunk_size=chunk_size)(
            *tangent_values
        )
    with torch.no_grad():
        for name, value in new_buffers.items():
            buffers[name].copy_(value[0])
    return DirectionalDerivatives(loss=losses[0].detach(), derivatives=derivatives.detach())

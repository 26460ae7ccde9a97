"""Unstructured magnitude pruning through ``torch.nn.utils.prune`` (global or per layer).

The pruning study's first method (Kiefer et al., "A Comparative Study of Pruning Methods in
Transformer-based Time Series Forecasting", arXiv 2412.12883): the weights of smallest
magnitude are set to zero, either the smallest ``s`` of all prunable weights together
(``scope="global"``, ``prune.global_unstructured`` with ``L1Unstructured``) or the smallest ``s``
of each weight tensor (``scope="layer"``, ``prune.l1_unstructured``). ``torch.nn.utils.prune``
removes ``round(s · n)`` weights, so the measured density is ``1 − round(s · n) / n`` (the test).

Prunable weights (:func:`prunable_parameters`): the weight matrices of ``Linear`` and ``Conv1d``
layers, ``torch.nn.MultiheadAttention``'s packed input projection, and FEDformer's Fourier
weights; not biases, norms, embeddings or position tables.

``permanent=True`` folds the masks into the weights (``prune.remove``); the masks are returned
either way, and :func:`keep_masks` holds the zeros during fine-tuning through gradient hooks.
The hooks (not prune's forward pre-hooks) are what keeps a pruned network pruned in training:
the existing ReCycle and step-transformer networks call ``F.linear`` on their layers' weights
directly (``hai.forecast.neural.transformer_forward``), which bypasses module hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from hai.forecast.zoo.fedformer import fourier_parameters
from hai.shared import InputError

SCOPES: tuple[str, ...] = ("global", "layer")


def check_sparsity(sparsity: float) -> float:
    """``sparsity`` as a float in [0, 1), or :class:`InputError`."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise InputError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise InputError(
            f"sparsity must be in [0, 1), got {sparsity}", hint="e.g. 0, 0.25, 0.5, 0.75, 0.9, 0.95"
        )
    return s


def prunable_parameters(net: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(qualified module name, module, parameter name)`` of every prunable weight, in module order."""
    fourier = {id(m) for m, _ in fourier_parameters(net)}
    found: list[tuple[str, nn.Module, str]] = []
    for qual, m in net.named_modules():
        if isinstance(m, nn.Linear | nn.Conv1d):
            found.append((qual, m, "weight"))
        elif isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
            found.append((qual, m, "in_proj_weight"))
        elif id(m) in fourier:
            found.extend((qual, m, name) for name in ("weight_real", "weight_imag"))
    return found


def _tensor(module: nn.Module, name: str) -> torch.Tensor:
    value = getattr(module, name)
    assert isinstance(value, torch.Tensor)
    return value


@dataclass(frozen=True)
class UnstructuredResult:
    """The masks (1 keeps, 0 prunes) by ``"module.parameter"``; requested and measured sparsity."""

    masks: dict[str, torch.Tensor]
    sparsity: float
    scope: str
    n_prunable: int
    n_zero: int

    @property
    def measured_sparsity(self) -> float:
        return self.n_zero / self.n_prunable if self.n_prunable else 0.0


def make_permanent(net: nn.Module) -> None:
    """Fold every ``torch.nn.utils.prune`` reparametrisation in ``net`` into its weight (``prune.remove``)."""
    for m in net.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(m, hook._tensor_name)


def prune_unstructured(
    net: nn.Module, sparsity: float, *, scope: str = "global", permanent: bool = True
) -> UnstructuredResult:
    """Zero the ``sparsity`` fraction of smallest-magnitude prunable weights of ``net`` in place."""
    s = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise InputError(f"unknown pruning scope {scope!r}", hint=f"use one of {', '.join(SCOPES)}")
    params = prunable_parameters(net)
    if not params:
        raise InputError(
            f"{type(net).__name__} has no prunable weights (Linear, Conv1d, attention projections)"
        )
    pairs = [(m, name) for _, m, name in params]
    if scope == "global":
        prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=s)
    else:
        for m, name in pairs:
            prune.l1_unstructured(m, name, amount=s)
    masks = {
        f"{qual}.{name}" if qual else name: getattr(m, f"{name}_mask").detach().clone()
        for qual, m, name in params
    }
    if permanent:
        make_permanent(net)
    n = sum(_tensor(m, name).numel() for m, name in pairs)
    zero = sum(int((_tensor(m, name) == 0).sum()) for m, name in pairs)
    return UnstructuredResult(masks, s, scope, n, zero)


def weight_sparsity(net: nn.Module) -> float:
    """The measured fraction of exact zeros among the prunable weights of ``net``."""
    tensors = [_tensor(m, name) for _, m, name in prunable_parameters(net)]
    n = sum(t.numel() for t in tensors)
    return sum(int((t == 0).sum()) for t in tensors) / n if n else 0.0


@contextmanager
def keep_masks(net: nn.Module, masks: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Hold the pruned weights at zero while the block trains ``net``.

    Folds any prune reparametrisation in (:func:`make_permanent`), registers a gradient hook
    ``grad · mask`` on every masked weight (a weight that is zero with zero gradient stays zero
    under Adam, weight decay included) and multiplies the masks in again on exit.
    """
    make_permanent(net)
    handles = []
    targets: list[tuple[torch.Tensor, torch.Tensor]] = []
    if masks:
        by_name = {
            f"{qual}.{name}" if qual else name: _tensor(m, name) for qual, m, name in prunable_parameters(net)
        }
        for key, mask in masks.items():
            if key not in by_name:
                raise InputError(f"the mask {key!r} names no prunable weight of {type(net).__name__}")
            weight, mask = by_name[key], mask.to(by_name[key].device, by_name[key].dtype)
            if weight.shape != mask.shape:
                raise InputError(
                    f"the mask {key!r} has shape {tuple(mask.shape)}, the weight {tuple(weight.shape)}"
                )
            handles.append(weight.register_hook(lambda g, m=mask: g * m))
            targets.append((weight, mask))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for weight, mask in targets:
                weight.mul_(mask)

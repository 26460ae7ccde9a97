"""Structured pruning by hand: whole attention heads and feed-forward channels removed.

The pruning study's second method (Kiefer et al., arXiv 2412.12883) uses Torch-Pruning
(DepGraph, PyPI ``torch-pruning``); it is not installed in this environment, so this module
does the two structured prunings the study's transformers allow, with the dependency groups
written out by hand (no graph tracing):

- ``"heads"``: a head of a :class:`hai.forecast.zoo.layers.AttentionLayer` is the query, key and
  value rows and the output-projection columns of its ``d_head`` channels (plus, for FEDformer,
  its slice of the Fourier weights); removing ``k`` heads of width ``E`` in a layer of width
  ``D`` removes ``4·k·E·D + 3·k·E`` parameters.
- ``"ffn"``: a hidden channel of a feed-forward block (the zoo's
  :class:`~hai.forecast.zoo.layers.FeedForward`, ``torch.nn.TransformerEncoderLayer`` /
  ``DecoderLayer``'s ``linear1``/``linear2``) is its row of the first and column of the second
  layer: ``2·D + 1`` parameters each.

Each group keeps its ``1 − s`` most important units (L1 norm of the unit's weights, Torch-
Pruning's default magnitude importance), uniformly in every layer, at least one. The layers
are replaced by smaller dense ones, so FLOPs, parameters and file size fall for real (measured
by :mod:`hai.forecast.pruning.measure`).

Where a model's graph does not allow a target, :func:`prune_structured` raises
:class:`StructuredPruningError` naming the module: the heads of ``torch.nn.MultiheadAttention``
(the existing step transformer and ReCycle) are packed into one input projection whose width
must equal ``embed_dim``, so they cannot be removed without rewriting the module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from hai.forecast.pruning.unstructured import check_sparsity
from hai.forecast.zoo.layers import AttentionLayer, FeedForward, keep_columns, keep_rows
from hai.shared import InputError

TARGETS: tuple[str, ...] = ("heads", "ffn")


class StructuredPruningError(InputError):
    """The model's graph does not allow the structured pruning asked for (names the module)."""


def _unsupported(net: nn.Module, target: str) -> list[tuple[str, str]]:
    """(module name, reason) of the modules that hold ``target`` units this module cannot remove."""
    found = []
    if target == "heads":
        for qual, m in net.named_modules():
            if isinstance(m, nn.MultiheadAttention):
                found.append(
                    (
                        qual,
                        "torch.nn.MultiheadAttention packs its heads into one input projection whose "
                        "width must equal embed_dim",
                    )
                )
    return found


def _groups(net: nn.Module, target: str) -> list[tuple[str, nn.Module]]:
    if target == "heads":
        return [(q, m) for q, m in net.named_modules() if isinstance(m, AttentionLayer)]
    return [
        (q, m)
        for q, m in net.named_modules()
        if isinstance(m, FeedForward | nn.TransformerEncoderLayer | nn.TransformerDecoderLayer)
    ]


def supported_targets(net: nn.Module) -> tuple[str, ...]:
    """The targets :func:`prune_structured` can prune in ``net`` (units present, none unsupported)."""
    return tuple(t for t in TARGETS if _groups(net, t) and not _unsupported(net, t))


@dataclass(frozen=True)
class StructuredResult:
    """Per pruned module: units ``(before, after)``; the requested sparsity and targets."""

    sparsity: float
    targets: tuple[str, ...]
    units: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def measured_unit_sparsity(self) -> float:
        before = sum(b for b, _ in self.units.values())
        after = sum(a for _, a in self.units.values())
        return 1.0 - after / before if before else 0.0


def _keep(importance: torch.Tensor, sparsity: float) -> list[int]:
    n = len(importance)
    n_keep = max(1, n - round(sparsity * n))
    return sorted(torch.argsort(importance, descending=True)[:n_keep].tolist())


def _ffn_of_layer(layer: nn.Module, sparsity: float) -> tuple[int, int]:
    """Prune the hidden channels of a torch Transformer layer's ``linear1``/``linear2``."""
    l1, l2 = layer.linear1, layer.linear2
    assert isinstance(l1, nn.Linear)
    assert isinstance(l2, nn.Linear)
    with torch.no_grad():
        importance = (l1.weight.abs().sum(1) + l2.weight.abs().sum(0)).cpu()
    keep = torch.as_tensor(_keep(importance, sparsity), dtype=torch.long)
    layer.linear1 = keep_rows(l1, keep)
    layer.linear2 = keep_columns(l2, keep)
    return len(importance), len(keep)


def prune_structured(
    net: nn.Module, sparsity: float, *, targets: tuple[str, ...] | list[str] = TARGETS
) -> StructuredResult:
    """Remove the ``sparsity`` fraction of the least important heads / FFN channels of every layer of ``net``.

    Raises :class:`StructuredPruningError` (naming the module) where a target cannot be pruned.
    """
    s = check_sparsity(sparsity)
    targets = tuple(targets)
    check_targets(net, targets)
    units: dict[str, tuple[int, int]] = {}
    if s == 0.0:
        return StructuredResult(s, targets, units)
    for t in targets:
        for qual, m in _groups(net, t):
            if isinstance(m, AttentionLayer):
                before = m.n_heads
                m.prune_heads(_keep(m.head_importance(), s))
                units[f"{qual}:heads"] = (before, m.n_heads)
            elif isinstance(m, FeedForward):
                before = m.d_ff
                m.prune_hidden(_keep(m.hidden_importance(), s))
                units[f"{qual}:ffn"] = (before, m.d_ff)
            else:
                units[f"{qual}:ffn"] = _ffn_of_layer(m, s)
    return StructuredResult(s, targets, units)


def check_targets(net: nn.Module, targets: tuple[str, ...] | list[str]) -> None:
    """Raise :class:`StructuredPruningError` (naming the module) unless ``net`` allows every target."""
    for t in targets:
        if t not in TARGETS:
            raise InputError(
                f"unknown structured pruning target {t!r}", hint=f"use one of {', '.join(TARGETS)}"
            )
        bad = _unsupported(net, t)
        if bad:
            qual, why = bad[0]
            ok = supported_targets(net)
            raise StructuredPruningError(
                f"cannot prune the {t} of {type(net).__name__}'s module '{qual}': {why}",
                hint=f"prune only {', '.join(ok)} in this model"
                if ok
                else "use unstructured pruning for this model",
            )
        if not _groups(net, t):
            raise StructuredPruningError(f"{type(net).__name__} has no {t} to prune")

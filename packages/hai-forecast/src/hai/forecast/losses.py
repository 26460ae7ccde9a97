"""Training losses: L1, MSE and the quantile (pinball) loss that yields prediction intervals.

Predictions have a trailing quantile axis: ``(…, Q)`` against targets ``(…)``. L1 and MSE use
``Q = 1``.

>>> import torch
>>> round(pinball_loss(torch.zeros(4, 1), torch.ones(4), (0.9,)).item(), 6)  # under by 1 costs 0.9
0.9
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from hai.shared import InputError

LOSSES: tuple[str, ...] = ("l1", "mse", "quantile")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Mean pinball loss of quantile predictions ``(…, Q)`` against ``target`` ``(…)``."""
    q = torch.as_tensor(list(quantiles), dtype=pred.dtype, device=pred.device)
    err = target.unsqueeze(-1) - pred
    return torch.maximum(q * err, (q - 1.0) * err).mean()


def check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    """Quantiles as a sorted tuple in (0, 1) that contains the median (the point forecast)."""
    try:
        qs = tuple(sorted(float(q) for q in quantiles))
    except (TypeError, ValueError) as exc:
        raise InputError(f"quantiles must be numbers in (0, 1), got {quantiles!r}") from exc
    if not qs or any(not 0.0 < q < 1.0 for q in qs) or len(set(qs)) != len(qs):
        raise InputError(f"quantiles must be distinct numbers in (0, 1), got {quantiles!r}")
    if 0.5 not in qs:
        raise InputError("the quantiles must include 0.5, the point forecast", hint="e.g. (0.1, 0.5, 0.9)")
    return qs


def make_loss(name: str, quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> LossFn:
    """The loss ``fn(pred (…, Q), target (…)) -> scalar`` for ``name`` in :data:`LOSSES`.

    >>> make_loss("mse")(torch.zeros(2, 1), torch.full((2,), 2.0)).item()
    4.0
    """
    if name == "l1":
        return lambda pred, target: F.l1_loss(pred[..., 0], target)
    if name == "mse":
        return lambda pred, target: F.mse_loss(pred[..., 0], target)
    if name == "quantile":
        qs = check_quantiles(quantiles)
        return lambda pred, target: pinball_loss(pred, target, qs)
    raise InputError(f"unknown loss {name!r}", hint=f"use one of {', '.join(LOSSES)}")

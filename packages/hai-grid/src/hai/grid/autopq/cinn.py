"""The conditional invertible neural network (cINN) of AutoPQ, built from FrEIA's blocks.

As in the reference (``pywatts_modules/inn_base_functions.py`` of SMEISEN/AutoPQ): the
invertible map ``x ↦ z`` of the 24 horizon values (standardised) is a stack of FrEIA
``GLOWCouplingBlock`` (clamp 0.5) and ``PermuteRandom`` layers; each coupling's subnet is
Linear(·, 32)–Tanh–Linear, and all couplings share one condition computed by
Linear(cond, 8)–Tanh–Linear(8, 4) from the calendar features of every horizon step and the
24 values before the origin. It is trained by maximum likelihood on the realised series
(``mean(z²)/2 − mean(log|det J|)/24``) with Adam (weight decay 1e-5), coupling weights
initialised as ``0.01·N(0, 1)``.

FrEIA 0.2 (2022) works unchanged with current torch (checked with torch 2.13: forward then
reverse reproduces the input to ~1e-7 in float32); it is the ``autopq`` extra.

>>> import torch
>>> net = CINN(horizon=24, cond_features=10, blocks=2)
>>> x, c = torch.randn(3, 24), torch.randn(3, 10)
>>> z, _ = net(x, c)
>>> bool(torch.allclose(net.reverse(z, c), x, atol=1e-5))
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from hai.shared import InputError
from hai.shared._optional import require


def _freia() -> tuple[Any, Any]:
    framework = require("FrEIA.framework", extra="autopq", distribution="hai-grid")
    modules = require("FrEIA.modules", extra="autopq", distribution="hai-grid")
    return framework, modules


def _subnet(hidden: int) -> Callable[[int, int], nn.Module]:
    def build(ch_in: int, ch_out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(ch_in, hidden), nn.Tanh(), nn.Linear(hidden, ch_out))

    return build


class CINN(nn.Module):
    """``forward(x, cond) -> (z, log|det J|)`` and ``reverse(z, cond) -> x``."""

    def __init__(
        self,
        horizon: int,
        cond_features: int,
        *,
        blocks: int = 5,
        hidden: int = 32,
        cond_hidden: int = 8,
        cond_out: int = 4,
        clamp: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        ff, fm = _freia()
        self.horizon, self.cond_features = int(horizon), int(cond_features)
        numpy_state = np.random.get_state()  # noqa: NPY002 - FrEIA's PermuteRandom reseeds the global RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.cond_net = nn.Sequential(
                nn.Linear(cond_features, cond_hidden), nn.Tanh(), nn.Linear(cond_hidden, cond_out)
            )
            inn = ff.SequenceINN(horizon)
            for k in range(blocks):
                inn.append(
                    fm.GLOWCouplingBlock,
                    cond=0,
                    cond_shape=(cond_out,),
                    subnet_constructor=_subnet(hidden),
                    clamp=clamp,
                )
                inn.append(fm.PermuteRandom, seed=seed + k)
            with torch.no_grad():
                for p in inn.parameters():
                    if p.requires_grad:
                        p.copy_(0.01 * torch.randn_like(p))
        np.random.set_state(numpy_state)  # noqa: NPY002
        self.inn = inn

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, log_jac = self.inn(x, c=[self.cond_net(cond)])
        return z, log_jac

    def reverse(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x, _ = self.inn(z, c=[self.cond_net(cond)], rev=True)
        return x


def nll_loss(z: torch.Tensor, log_jac: torch.Tensor) -> torch.Tensor:
    """The reference's maximum-likelihood loss per dimension: ``mean(z²)/2 − mean(log_jac)/d``."""
    return torch.mean(z**2) / 2 - torch.mean(log_jac) / z.shape[-1]


def train_cinn(
    net: CINN,
    x: np.ndarray,
    cond: np.ndarray,
    *,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    seed: int = 0,
) -> list[float]:
    """Train ``net`` on samples ``x`` (n, horizon) with conditions ``cond`` (n, features).

    Returns the mean training loss per epoch.
    """
    if len(x) < 2:
        raise InputError("the cINN needs at least two training windows")
    xt = torch.as_tensor(x, dtype=torch.float32)
    ct = torch.as_tensor(cond, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[float] = []
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(xt), batch_size):
            batch = order[start : start + batch_size]
            z, log_jac = net(xt[batch], ct[batch])
            loss = nll_loss(z, log_jac)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            optimiser.step()
            total += loss.item() * len(batch)
            count += len(batch)
        history.append(total / count)
    net.eval()
    return history

"""PETNet: a spiking neural network that picks the singles of true coincidences.

After Debus et al., "PETNet – Coincident Particle Event Detection using Spiking Neural
Networks" (arXiv 2504.06730): fully connected layers of leaky integrate-and-fire neurons
(snnTorch ``Leaky`` with a learnable decay and an arctan surrogate gradient) read the spike
trains of :mod:`hai.pet.spikes` one time step at a time and spike on the crystals whose single
belongs to a true pair. The loss is a·L_count + b·L_timing: the squared difference of per-crystal
spike counts, plus each predicted spike's squared distance (in steps / T) to the nearest target
spike on its crystal. ``geometry=True`` is hai's geometry-aware variant: a second input block
that, for each crystal, carries the spikes of the crystals facing it across the ring (an
opposite-fan window; the paper's Dirichlet-window encoding is not reproduced).

:class:`PETNet` follows the estimator contract (``fit`` returns self, learned state in
attributes ending in ``_``, ``predict``); ``module_`` is the ``torch.nn.Module``.

>>> import numpy as np
>>> x = np.zeros((4, 6, 3), dtype=np.float32); x[:, 2, 0] = 1
>>> net = PETNet(n_channels=3, hidden=8, epochs=1, batch_size=2, seed=0).fit(x, x)
>>> net.predict(x).shape
(4, 6, 3)
"""

from __future__ import annotations

import copy
import inspect
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import snntorch as snn  # type: ignore[import-untyped]
import torch
from snntorch import surrogate
from torch import nn

from hai.shared import InputError, RngStreams, load_checkpoint, resolve_device, save_checkpoint


def opposite_fan(n_channels: int, crystals_per_ring: int, fan: int) -> torch.Tensor:
    """[C, C] 0/1 matrix: entry (i, j) = 1 when crystal j lies within ±``fan`` crystals of the
    crystal facing crystal i across the ring (any ring)."""
    c = torch.arange(n_channels)
    pos = c % crystals_per_ring
    facing = (pos + crystals_per_ring // 2) % crystals_per_ring
    d = (pos[None, :] - facing[:, None]) % crystals_per_ring
    d = torch.minimum(d, crystals_per_ring - d)
    return (d <= fan).to(torch.float32)


class PETNetModule(nn.Module):
    """Linear → LIF layers → Linear → LIF, looped over the time steps of [batch, T, C] input."""

    def __init__(
        self,
        n_channels: int,
        hidden: int,
        n_layers: int = 1,
        beta: float = 0.95,
        geometry: torch.Tensor | None = None,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        n_in = 2 * n_channels if geometry is not None else n_channels
        sizes = [n_in] + [hidden] * n_layers + [n_channels]
        linears = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
        with torch.no_grad():  # sparse binary inputs rarely reach threshold 1 at torch's default scale
            for fc in linears:
                fc.weight.mul_(init_scale)
        self.fcs = nn.ModuleList(linears)
        grad = surrogate.atan()
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=beta, learn_beta=True, spike_grad=grad) for _ in range(len(sizes) - 1)
        )
        self.register_buffer("geometry", geometry if geometry is not None else torch.zeros(0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output spikes and membrane potentials, both [batch, T, C]."""
        geometry: torch.Tensor = self.geometry  # type: ignore[assignment]
        if geometry.numel():
            x = torch.cat([x, torch.clamp(x @ geometry.T, max=1.0)], dim=-1)
        lifs: list[Any] = list(self.lifs)
        mems = [lif.init_leaky() for lif in lifs]
        spikes, potentials = [], []
        for t in range(x.shape[1]):
            cur = x[:, t]
            for k, (fc, lif) in enumerate(zip(self.fcs, lifs, strict=True)):
                cur, mems[k] = lif(fc(cur), mems[k])
            spikes.append(cur)
            potentials.append(mems[-1])
        return torch.stack(spikes, dim=1), torch.stack(potentials, dim=1)


def _nearest_target_distance(target: torch.Tensor) -> torch.Tensor:
    """For each (batch, step, channel): steps to the nearest target spike on that channel (T if none)."""
    n_steps = target.shape[1]
    t = torch.arange(n_steps, device=target.device, dtype=torch.float32)[None, :, None].expand_as(target)
    big = float(4 * n_steps)
    last = torch.where(target > 0.5, t, torch.full_like(t, -big)).cummax(dim=1).values
    nxt = torch.where(target > 0.5, t, torch.full_like(t, 2 * big)).flip(1).cummin(dim=1).values.flip(1)
    return torch.clamp(torch.minimum(t - last, nxt - t), max=float(n_steps))


def petnet_loss(
    spikes: torch.Tensor, target: torch.Tensor, *, count_weight: float = 1.0, timing_weight: float = 0.1
) -> torch.Tensor:
    """a·L_count + b·L_timing for [batch, T, C] spikes (0 when ``spikes`` equals ``target``).

    >>> y = torch.zeros(1, 10, 2); y[0, 4, 1] = 1
    >>> float(petnet_loss(y, y)), float(petnet_loss(torch.roll(y, 3, 1), y)) > 0
    (0.0, True)
    """
    if spikes.shape != target.shape:
        raise InputError(f"spikes {tuple(spikes.shape)} and target {tuple(target.shape)} differ in shape")
    n_steps = spikes.shape[1]
    count = ((spikes.sum(1) - target.sum(1)) ** 2).mean()
    dist = _nearest_target_distance(target) / n_steps
    timing = (spikes * dist**2).sum(1).mean()
    return count_weight * count + timing_weight * timing


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training: mean losses and wall time."""

    epoch: int
    train_loss: float
    val_loss: float


class PETNet:
    """PETNet as an estimator: ``fit(x, y)`` on spike tensors [samples, T, C], ``predict(x)``.

    Defaults follow the paper's code (hidden = C, beta 0.95, Adam lr 5e-4, batch 128, early
    stopping patience 2, 80/20 split, count weight 1, timing weight 0.1).
    """

    def __init__(
        self,
        n_channels: int,
        *,
        hidden: int | None = None,
        n_layers: int = 1,
        beta: float = 0.95,
        geometry: bool = False,
        crystals_per_ring: int | None = None,
        fan: int = 20,
        init_scale: float = 1.0,
        lr: float = 5e-4,
        epochs: int = 30,
        batch_size: int = 128,
        patience: int = 2,
        validation_fraction: float = 0.2,
        count_weight: float = 1.0,
        timing_weight: float = 0.1,
        seed: int = 42,
        device: str = "auto",
    ) -> None:
        self.n_channels = n_channels
        self.hidden = hidden
        self.n_layers = n_layers
        self.beta = beta
        self.geometry = geometry
        self.crystals_per_ring = crystals_per_ring
        self.fan = fan
        self.init_scale = init_scale
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.count_weight = count_weight
        self.timing_weight = timing_weight
        self.seed = seed
        self.device = device

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        keys = [k for k in inspect.signature(type(self).__init__).parameters if k != "self"]
        return {k: getattr(self, k) for k in keys}

    def _build(self) -> PETNetModule:
        if self.n_channels <= 0 or self.n_layers <= 0:
            raise InputError("n_channels and n_layers must be positive")
        geo = None
        if self.geometry:
            geo = opposite_fan(self.n_channels, self.crystals_per_ring or self.n_channels, self.fan)
        torch.manual_seed(RngStreams(self.seed).entropy("petnet-init") & 0x7FFF_FFFF)
        return PETNetModule(
            self.n_channels, self.hidden or self.n_channels, self.n_layers, self.beta, geo, self.init_scale
        )

    def _check(self, x: np.ndarray, name: str) -> torch.Tensor:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != self.n_channels:
            raise InputError(f"{name} must have shape [samples, steps, {self.n_channels}], got {arr.shape}")
        return torch.from_numpy(arr)

    def fit(self, x: np.ndarray, y: np.ndarray) -> PETNet:
        """Train on input spikes ``x`` and target spikes ``y`` (both [samples, T, C]).

        Keeps the weights of the epoch with the lowest validation loss; stops after
        ``patience`` epochs without improvement. Sets ``module_``, ``history_``, ``device_``.
        """
        xt, yt = self._check(x, "x"), self._check(y, "y")
        if xt.shape != yt.shape:
            raise InputError(f"x {tuple(xt.shape)} and y {tuple(yt.shape)} differ in shape")
        if len(xt) < 2:
            raise InputError("fit needs at least 2 samples (training and validation)")
        device = resolve_device(self.device)
        module = self._build().to(device)
        rng = RngStreams(self.seed).numpy("petnet-split")
        order = rng.permutation(len(xt))
        n_val = min(max(1, round(self.validation_fraction * len(xt))), len(xt) - 1)
        val, train = order[:n_val], order[n_val:]
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr)
        best, best_state, bad = float("inf"), copy.deepcopy(module.state_dict()), 0
        history: list[EpochRecord] = []
        batch_rng = RngStreams(self.seed).numpy("petnet-batches")
        for epoch in range(self.epochs):
            module.train()
            losses = []
            for start in range(0, len(train), self.batch_size):
                idx = train[start : start + self.batch_size]
                spk, _ = module(xt[idx].to(device))
                loss = petnet_loss(
                    spk, yt[idx].to(device), count_weight=self.count_weight, timing_weight=self.timing_weight
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            train = batch_rng.permutation(train)
            val_loss = self._loss(module, xt[val], yt[val], device)
            history.append(EpochRecord(epoch, float(np.mean(losses)), val_loss))
            if val_loss < best:
                best, best_state, bad = val_loss, copy.deepcopy(module.state_dict()), 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        module.load_state_dict(best_state)
        module.eval()
        self.module_, self.history_, self.device_ = module, history, device
        self.metadata_: dict[str, Any] = {}
        return self

    def _loss(self, module: PETNetModule, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
        module.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                spk, _ = module(x[start : start + self.batch_size].to(device))
                loss = petnet_loss(
                    spk,
                    y[start : start + self.batch_size].to(device),
                    count_weight=self.count_weight,
                    timing_weight=self.timing_weight,
                )
                total += float(loss) * len(spk)
        return total / len(x)

    def _fitted(self) -> PETNetModule:
        module = getattr(self, "module_", None)
        if module is None:
            raise InputError("this PETNet is not fitted yet", hint="call fit(x, y) or PETNet.load(path)")
        return module

    def predict(self, x: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Output spikes (uint8 [samples, T, C]) for input spikes ``x``."""
        module = self._fitted()
        xt = self._check(x, "x")
        out = []
        step = batch_size or self.batch_size
        with torch.no_grad():
            for start in range(0, len(xt), step):
                spk, _ = module(xt[start : start + step].to(self.device_))
                out.append(spk.to("cpu").numpy().astype(np.uint8))
        return np.concatenate(out) if out else np.zeros((0, *xt.shape[1:]), dtype=np.uint8)

    def save(self, path: str | os.PathLike[str], *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the fitted weights and parameters as a hai checkpoint (safetensors + JSON).

        ``metadata`` (JSON values, e.g. the spike encoding) comes back as ``metadata_``.
        """
        module = self._fitted()
        history = [r.__dict__ for r in self.history_]
        return save_checkpoint(
            path,
            module.state_dict(),
            config=self.get_params(),
            seed=self.seed,
            extra={"history": history, "metadata": metadata or {}},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> PETNet:
        """A fitted PETNet from a checkpoint written by :meth:`save`."""
        ckpt = load_checkpoint(path, framework="torch")
        params = dict(ckpt.config)
        params["device"] = device
        net = cls(**params)
        module = net._build()
        module.load_state_dict(ckpt.tensors)
        net.device_ = resolve_device(device)
        net.module_ = module.to(net.device_).eval()
        net.history_ = [EpochRecord(**r) for r in ckpt.extra.get("history", [])]
        net.metadata_ = dict(ckpt.extra.get("metadata", {}))
        return net

"""PETNet: a spiking neural network that picks the singles of true coincidences.

After Debus et al., "PETNet – Coincident Particle Event Detection using Spiking Neural
Networks" (arXiv 2504.06730): fully connected layers of leaky integrate-and-fire neurons
(snnTorch ``Leaky`` with a learnable decay and an arctan surrogate gradient) read the spike
trains of :mod:`hai.pet.spikes` one time step at a time and spike on the crystals whose single
belongs to a true pair. The loss is a·L_count + b·L_timing: the squared difference of per-crystal
spike counts, plus each predicted spike's squared distance (in steps / T) to the nearest target
spike on its crystal. ``geometry=True`` is hai's geometry-aware variant: a second input block
that, for each crystal, carries the spikes of the crystals facing it across the ring (an
opposite-fan window; the paper's Dirichlet-window encoding is not reproduced). ``local=True``
is hai's geometry-local network (:class:`LocalPETNetModule`): one small LIF network shared by all
crystals, which learns coincidence detection from a few thousand singles and predicts from the
sparse spikes (:meth:`PETNet.predict_spikes`). The count loss weighs target crystals by
``pos_weight`` (balanced by default, :func:`balanced_pos_weight`), so silence is not a minimum.

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
import functools
import inspect
import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import snntorch as snn  # type: ignore[import-untyped]
import torch
from snntorch import surrogate
from torch import nn

from hai.pet.spikes import SpikeEncoding, encode_spikes, singles_channels, spikes_to_singles
from hai.pet.tables import GateTree
from hai.shared import (
    CheckpointError,
    InputError,
    RngStreams,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
)
from hai.shared.checks import (
    finite_float,
    fraction,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)

#: File name of the small trained PETNet shipped in the package, next to this module (written by
#: ``benchmarks/train_shipped_model.py``, whose recipe is in the JSON of the same stem).
SHIPPED_MODEL = "petnet-clinical.safetensors"


def shipped_model_path() -> Path:
    """The small trained PETNet shipped in the package (geometry-local, clinical preset), the
    default model of ``hai pet detect``; its recipe is ``shipped_model_path().with_suffix(".json")``.

    >>> shipped_model_path().name
    'petnet-clinical.safetensors'
    """
    return Path(__file__).with_name(SHIPPED_MODEL)


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


class LocalPETNetModule(nn.Module):
    """The geometry-local PETNet: one small LIF network, shared by every crystal, reads three
    input channels per crystal and time step and decides whether that crystal's spike is part of
    a coincidence.

    The channels are the crystal's own spike, the number of spikes in the fan of crystals facing
    it across the ring (``geometry``, [C, C] 0/1) and the number of other spikes in the sample;
    a coincidence becomes a coincident pair of spikes in paired channels, the same task for every
    crystal (the ring's rotational symmetry), so it is learnt from a few hundred samples.
    Linear(3 → hidden) → LIF → … → Linear(→ 1) → LIF, looped over time steps.
    """

    n_features = 3

    def __init__(
        self,
        geometry: torch.Tensor,
        hidden: int,
        n_layers: int = 1,
        beta: float = 0.95,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        sizes = [self.n_features] + [hidden] * n_layers + [1]
        linears = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
        with torch.no_grad():
            for fc in linears:
                fc.weight.mul_(init_scale)
                # a constant current integrates to bias / (1 − beta) and fires the neuron tonically
                fc.bias.zero_()
        self.fcs = nn.ModuleList(linears)
        grad = surrogate.atan()
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=beta, learn_beta=True, spike_grad=grad) for _ in range(len(sizes) - 1)
        )
        self.register_buffer("geometry", geometry)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, T, C] spikes → [batch, T, C, 3] (own spike, facing-fan count, other spikes)."""
        geometry: torch.Tensor = self.geometry  # type: ignore[assignment]
        fan = x @ geometry.T
        other = x.sum(-1, keepdim=True) - x - fan
        return torch.stack([x, fan, other], dim=-1)

    def run_rows(
        self, f: torch.Tensor, *, fast: bool = False, parallel: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the shared network on [rows, T, 3] features; spikes and potentials [rows, T].

        ``fast=True`` (inference, no gradients) integrates with in-place tensor operations
        instead of calling ``snn.Leaky`` per step: the same arithmetic (subtractive reset of the
        previous step's spike, threshold 1), so the same spikes, at a fraction of the overhead.
        ``parallel=True`` (inference) integrates each layer over the whole time window at once
        (:func:`lif_time_parallel`): one matrix product, then one vectorised pass per spike.
        """
        if parallel:
            return self._run_rows_parallel(f)
        cur = f
        mem = cur
        lifs: list[Any] = list(self.lifs)
        for fc, lif in zip(self.fcs, lifs, strict=True):
            current = fc(cur)  # all time steps at once; only the leaky integration loops
            if fast:
                cur, mem = _lif_scan(lif, current)
                continue
            m = lif.init_leaky()
            spikes, mems = [], []
            for t in range(current.shape[1]):
                s, m = lif(current[:, t], m)
                spikes.append(s.to(current.dtype))  # snnTorch's spikes are float32
                mems.append(m)
            cur, mem = torch.stack(spikes, dim=1), torch.stack(mems, dim=1)
        return cur[..., 0], mem[..., 0]

    @torch.no_grad()
    def _run_rows_parallel(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`run_rows` with every layer integrated over the whole window at once
        (:func:`lif_time_parallel`), in a [neurons, rows × T] layout so that each layer is two
        large matrix products and nothing loops over steps: the leaky sum of a linear layer's
        current is the layer applied to the leaky sum of its input, ``K(Wx + b) = W(Kx) + b·K1``."""
        rows, n_steps, n_in = f.shape
        fcs: list[nn.Linear] = list(self.fcs)  # type: ignore[arg-type]
        lifs: list[Any] = list(self.lifs)
        spikes: tuple[torch.Tensor, torch.Tensor] | None = None
        mem = f
        for fc, lif in zip(fcs, lifs, strict=True):
            beta = lif.beta.clamp(0, 1).to(f.dtype)
            kernel, reset = _decay_kernels(n_steps, beta, f.dtype, f.device)
            # the leaky sum of the layer's inputs plus a constant-1 input for the bias,
            # [(features + 1) · rows, T], so that [W | b] @ it is the reset-free potential
            if spikes is None:  # the input features
                inputs = torch.ones((n_in + 1, rows, n_steps), dtype=f.dtype, device=f.device)
                inputs[:n_in] = f.permute(2, 0, 1)
                leaky = inputs.reshape(-1, n_steps) @ kernel
            else:  # the previous layer's (sparse) spikes
                leaky = torch.zeros((len(mem) + rows, n_steps), dtype=f.dtype, device=f.device)
                leaky.index_add_(0, spikes[0], kernel[spikes[1]])
                leaky[len(mem) :] = kernel.sum(0)
            weight = torch.cat([fc.weight.to(f.dtype), fc.bias.to(f.dtype)[:, None]], dim=1)
            mem = (weight @ leaky.reshape(-1, rows * n_steps)).reshape(-1, n_steps)
            spikes = _first_crossings(mem, lif.threshold.to(f.dtype), reset)
        assert spikes is not None
        return _dense_spikes(*spikes, mem), mem

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output spikes and membrane potentials, both [batch, T, C]; a crystal without an
        input spike in the sample has no single to select and does not spike."""
        b, n_steps, c = x.shape
        f = self.features(x).permute(0, 2, 1, 3).reshape(b * c, n_steps, self.n_features)
        spk, mem = self.run_rows(f)
        active = (x.sum(1, keepdim=True) > 0).to(spk.dtype)
        return (
            spk.reshape(b, c, n_steps).permute(0, 2, 1) * active,
            mem.reshape(b, c, n_steps).permute(0, 2, 1),
        )


@torch.no_grad()
def _lif_scan(lif: Any, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``snn.Leaky`` (subtractive reset, delayed by one step, as snnTorch's default) over
    [rows, T, n] input currents, without autograd: spikes and potentials [rows, T, n]."""
    beta = lif.beta.clamp(0, 1)
    threshold = lif.threshold
    steps = current.transpose(0, 1).contiguous()  # [T, rows, n]: each step is contiguous
    mems = torch.empty_like(steps)
    mem = torch.zeros_like(steps[0])
    for t in range(len(steps)):
        reset = ((mem - threshold) > 0).to(mem.dtype)
        mem = beta * mem + steps[t] - reset * threshold
        mems[t] = mem
    spikes = ((mems - threshold) > 0).to(mems.dtype)
    return spikes.transpose(0, 1), mems.transpose(0, 1)


def _decay_kernels(
    n_steps: int, beta: torch.Tensor, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``kernel[s, t] = beta^(t−s)`` for s ≤ t (the leaky sum) and ``reset[u, t] = beta^(t−u−1)``
    for t > u (what a reset after a spike at u subtracts, per unit threshold), else 0."""
    t = torch.arange(n_steps, device=device)
    lag = (t[None, :] - t[:, None]).to(dtype)  # t − s
    b = beta.to(dtype=dtype, device=device)
    zero = torch.zeros((), dtype=dtype, device=device)
    kernel = torch.where(lag >= 0, b ** lag.clamp(min=0), zero)
    reset = torch.where(lag > 0, b ** (lag - 1).clamp(min=0), zero)
    return kernel, reset


def _first_crossings(
    mem: torch.Tensor, thr: torch.Tensor, reset: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes, as (neuron, step) index pairs, of neurons with reset-free potentials ``mem``
    [M, T] (changed in place to the potentials with resets): each pass confirms every
    still-crossing neuron's next spike and subtracts its reset from the later steps."""
    n_steps = mem.shape[1]
    t = torch.arange(n_steps, device=mem.device)
    todo = torch.nonzero(mem.amax(1) > thr, as_tuple=True)[0]  # one pass over all neurons
    crossing = mem[todo] > thr
    neurons, steps = [], []
    while len(todo):
        first = crossing.to(torch.uint8).argmax(1)
        neurons.append(todo)
        steps.append(first)
        m = mem[todo] - thr * reset[first]
        mem[todo] = m
        crossing = (m > thr) & (t[None, :] > first[:, None])
        fires = crossing.any(1)
        todo, crossing = todo[fires], crossing[fires]
    if not neurons:
        empty = torch.zeros(0, dtype=torch.long, device=mem.device)
        return empty, empty
    return torch.cat(neurons), torch.cat(steps)


def _dense_spikes(neurons: torch.Tensor, steps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    spikes = torch.zeros_like(like)
    spikes[neurons, steps] = 1
    return spikes


@torch.no_grad()
def lif_time_parallel(
    current: torch.Tensor, beta: torch.Tensor | float, threshold: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``snn.Leaky`` (subtractive reset, delayed by one step) over [rows, T, n] input currents,
    integrated over the whole time window at once: spikes and potentials [rows, T, n].

    The recurrence is ``mem[t] = beta·mem[t-1] + I[t] − thr·spike[t-1]``, ``spike[t] =
    mem[t] > thr``. Without resets the potentials are one matrix product with the decay kernel
    ``beta^(t−s)`` (s ≤ t). A reset only subtracts ``thr·beta^(t−u−1)`` from the steps after
    its spike at u, so the spikes are found in time order, all neurons together: every pass takes
    each neuron's first threshold crossing after its last confirmed spike, confirms it and
    subtracts its reset from the later steps. There are as many passes as the most spikes any
    neuron fires (not T), and only the neurons still crossing take part. The same spikes as the
    step-by-step network up to rounding: a potential within float rounding of the threshold may
    fall the other way (compare in float64 for bit equality).
    """
    rows, n_steps, n = current.shape
    beta_t = torch.as_tensor(beta, dtype=current.dtype, device=current.device)
    thr = torch.as_tensor(threshold, dtype=current.dtype, device=current.device)
    kernel, reset = _decay_kernels(n_steps, beta_t, current.dtype, current.device)
    mem = (current.transpose(1, 2).reshape(rows * n, n_steps) @ kernel).contiguous()
    spikes = _dense_spikes(*_first_crossings(mem, thr, reset), mem)
    shape = (rows, n, n_steps)
    return spikes.reshape(shape).transpose(1, 2), mem.reshape(shape).transpose(1, 2)


def _active_rows(
    module: LocalPETNetModule, x: torch.Tensor, y: torch.Tensor, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Features [rows, T, 3], targets [rows, T, 1] and sample index of the (sample, crystal)
    rows of dense ``x`` that hold an input spike."""
    feats, targets, samples = [], [], []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            xb = x[start : start + chunk].to(module.geometry.device)  # type: ignore[arg-type]
            b, c = torch.nonzero(xb.sum(1) > 0, as_tuple=True)
            feats.append(module.features(xb)[b, :, c].cpu())
            targets.append(y[start : start + chunk][b.cpu(), :, c.cpu()].unsqueeze(-1))
            samples.append(b.cpu().numpy() + start)
    return torch.cat(feats), torch.cat(targets), np.concatenate(samples)


def _sample_blocks(encoding: SpikeEncoding, samples: np.ndarray, max_rows: int) -> list[np.ndarray]:
    """Split ``samples`` into consecutive blocks of at most about ``max_rows`` input spikes."""
    counts = np.bincount(encoding.sample, minlength=encoding.n_samples)[samples]
    block = np.cumsum(counts) // max(max_rows, 1)
    cuts = np.flatnonzero(np.diff(block)) + 1
    return [b for b in np.split(samples, cuts) if len(b)]


def local_features(
    encoding: SpikeEncoding, samples: np.ndarray, geometry: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`LocalPETNetModule.features` for only the (sample, crystal) rows that hold a spike.

    Returns the rows' sample and channel and their float32 features [rows, T, 3] (own spike,
    facing-fan count, other spikes), built from the sparse spikes in O(Σ rows × spikes) per
    sample instead of O(T·C²).
    """
    keep = np.isin(encoding.sample, samples)
    sample, step, channel = encoding.sample[keep], encoding.step[keep], encoding.channel[keep]
    order = np.lexsort((step, channel, sample))
    sample, step, channel = sample[order], step[order], channel[order]
    n_t = encoding.n_steps
    key = sample * encoding.n_channels + channel
    row_key, row_of_spike = np.unique(key, return_inverse=True)
    r_sample, r_channel = row_key // encoding.n_channels, row_key % encoding.n_channels
    n_rows = len(row_key)
    flat = [(row_of_spike * n_t + step) * 3]  # own spike
    # every row against every spike of its sample
    _, spike_start, spikes_per = np.unique(sample, return_index=True, return_counts=True)
    sample_of_row = np.searchsorted(np.unique(sample), r_sample)
    reps = spikes_per[sample_of_row]
    row_idx = np.repeat(np.arange(n_rows), reps)
    offset = np.arange(len(row_idx)) - np.repeat(np.cumsum(reps) - reps, reps)
    j = spike_start[sample_of_row][row_idx] + offset
    other_channel = channel[j] != r_channel[row_idx]
    row_idx, j = row_idx[other_channel], j[other_channel]
    is_fan = geometry[r_channel[row_idx], channel[j]]
    flat.append((row_idx * n_t + step[j]) * 3 + np.where(is_fan, 1, 2))
    feats = np.bincount(np.concatenate(flat), minlength=n_rows * n_t * 3).astype(np.float32)
    return r_sample, r_channel, feats.reshape(n_rows, n_t, 3)


#: Spikes the event-driven inference (``method="event"``) handles at once, cut at sample edges.
EVENT_CHUNK = 1 << 18


@dataclass(frozen=True)
class _Tiling:
    """The spikes of one tiling of the time axis in (sample, step, channel) order: the first
    single behind each spike, its coordinates, and every single's step (as :class:`SpikeEncoding`)."""

    single: np.ndarray
    sample: np.ndarray
    step: np.ndarray
    channel: np.ndarray
    single_step: np.ndarray
    n_samples: int


def _tile(
    t: np.ndarray, channel: np.ndarray, start: float, bin_ns: float, n_steps: int, n_channels: int
) -> _Tiling:
    """:func:`encode_spikes` of time-ordered singles (times ``t``, global crystals ``channel``)
    without the labels, its spikes in time order: the same spikes and the same first single of
    each (one stable sort of the nearly sorted time bins)."""
    bins = np.floor((t - start) / (bin_ns * 1e-9)).astype(np.int64)
    key = bins * n_channels + channel
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    rows = order[first]
    if n_steps & (n_steps - 1) == 0:  # a power of two: shifts and masks (bins ≥ 0)
        shift = n_steps.bit_length() - 1
        single_step = bins & (n_steps - 1)
        sample, step = bins[rows] >> shift, single_step[rows]
    else:
        single_sample, single_step = np.divmod(bins, n_steps)
        sample, step = single_sample[rows], single_step[rows]
    return _Tiling(rows, sample, step, channel[rows], single_step, int(bins[-1] // n_steps) + 1)


@dataclass(frozen=True)
class _EventRun:
    """The local network run event-driven on spikes in (sample, step, channel) order.

    ``pattern[i]`` is the row of ``fired`` that holds the outputs of spike i's (sample, crystal)
    row, or −1 for the spikes of the (sample, crystal) rows ``row_sample, row_channel`` that ran
    as they are (a crystal with several spikes in the sample, or a sample with many spikes),
    rows ``n_patterns + j`` of ``fired``. ``own_step``: each pattern's own spike.
    """

    pattern: np.ndarray
    own_step: np.ndarray
    fired: _Fired
    row_sample: np.ndarray
    row_channel: np.ndarray

    @property
    def n_patterns(self) -> int:
        return len(self.own_step)


def _event_run(
    module: LocalPETNetModule,
    device: torch.device,
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    *,
    geometry: np.ndarray,
    n_steps: int,
    n_channels: int,
    horizon: int,
) -> _EventRun:
    """Run the local network once per distinct input pattern instead of once per row.

    A (sample, crystal) row with one spike, at step s, sees the other spikes of its sample, each
    as a facing-fan or an other spike at its step. Its output up to step s + ``horizon`` depends
    (causally) only on the spikes up to that step, so rows whose own step and whose (step,
    kind) list of those spikes agree have the same outputs there, bit for bit: each such list
    is keyed by one integer (base 2T + 1 digits), the network runs once per distinct key, and
    the rows share its spikes. ``horizon`` ≥ T − 1 keeps every output spike; spikes_to_singles
    with tolerance k only reads outputs up to s + k. Rows with several spikes, or with more
    other spikes than a key holds, run as they are (:func:`local_features`), up to their last
    spike + ``horizon``.
    """
    n = len(sample)
    base = 2 * n_steps + 1
    digits = 1
    while n_steps * base ** (digits + 1) < 1 << 62:
        digits += 1
    starts = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1]])
    counts = np.diff(np.r_[starts, n])
    # a spike alone in its sample has pattern = its step (patterns 0 … T − 1, all run); the
    # spikes of shared samples ("own", in order) are keyed, each with each other spike
    shared = np.flatnonzero(counts > 1)
    n_in = counts[shared]
    start_of = np.repeat(starts[shared], n_in)
    own = start_of + np.arange(len(start_of)) - np.repeat(np.cumsum(n_in) - n_in, n_in)
    reps = np.repeat(n_in, n_in) - 1
    pl = np.repeat(np.arange(len(own)), reps)  # the pair's own spike, as an index into own
    pi = own[pl]
    pj = np.repeat(start_of - np.cumsum(reps) + reps, reps) + np.arange(len(pi))
    pj += pj >= pi  # skip the spike itself
    ci, cj = channel[pi], channel[pj]
    same = ci == cj
    several = np.zeros(len(own), dtype=bool)
    several[pl[same]] = True  # a crystal with several spikes in one sample
    seen = np.flatnonzero(~same & (step[pj] <= step[pi] + horizon))
    pl, pj = pl[seen], pj[seen]
    fan = geometry.reshape(-1)[ci[seen] * n_channels + cj[seen]]
    # pair p of spike i is the p-th digit of i's key: 2·step + 1 (other) or 2·step + 2 (fan)
    key = step[own].astype(np.int64)
    if len(pl):
        group = np.flatnonzero(np.r_[True, pl[1:] != pl[:-1]])
        n_seen = np.diff(np.r_[group, len(pl)])
        position = np.arange(len(pl)) - np.repeat(group, n_seen)
        powers = base ** np.arange(digits, dtype=np.int64)
        value = (2 * step[pj] + 1 + fan) * powers[np.minimum(position, digits - 1)]
        value[position >= digits] = 0
        key[pl[group]] += n_steps * np.add.reduceat(value, group)
        several[pl[group[n_seen > digits]]] = True
    # distinct keys: a direct table for the small ones (at most two other spikes), a sort for the rest
    limit = n_steps * base ** min(2, digits)
    if limit > 1 << 21:
        limit = n_steps
    keyed = np.flatnonzero(~several)
    small = keyed[key[keyed] < limit]
    used = np.zeros(limit, dtype=bool)
    used[key[small]] = True
    distinct = np.flatnonzero(used)
    table = np.empty(limit, dtype=np.int64)  # read only where used
    table[distinct] = np.arange(len(distinct))
    own_pattern = np.full(len(own), -1, dtype=np.int64)
    own_pattern[small] = n_steps + table[key[small]]
    large = keyed[key[keyed] >= limit]
    if len(large):
        _, inverse = np.unique(key[large], return_inverse=True)
        own_pattern[large] = n_steps + len(distinct) + inverse.reshape(-1)
    n_patterns = int(own_pattern.max(initial=n_steps - 1)) + 1
    first = np.empty(n_patterns - n_steps, dtype=np.int64)
    first[own_pattern[keyed] - n_steps] = keyed  # one spike per pattern (an index into own)
    pattern = step.astype(np.int64)
    pattern[own] = own_pattern
    own_step = np.r_[np.arange(n_steps), step[own[first]]]
    # the patterns' input codes [patterns, T]: (own · S + facing fan) · S + other spikes
    size = int(counts.max(initial=1))
    slot = np.full(len(own), -1, dtype=np.int64)
    slot[first] = np.arange(n_steps, n_patterns)
    of_first = np.flatnonzero(slot[pl] >= 0)
    at = np.concatenate(
        [np.arange(n_patterns) * n_steps + own_step, slot[pl[of_first]] * n_steps + step[pj[of_first]]]
    )
    weight = np.concatenate([np.full(n_patterns, size * size), np.where(fan[of_first], size, 1)])
    codes = [np.bincount(at, weights=weight, minlength=n_patterns * n_steps).astype(np.int64)]
    last = [np.minimum(own_step + horizon, n_steps - 1)]
    # rows run as they are
    row_sample = row_channel = np.zeros(0, dtype=np.int64)
    if several.any():
        alone = own[several]
        groups = np.unique(np.searchsorted(starts, alone, side="right") - 1)
        part = np.repeat(starts[groups] - np.cumsum(counts[groups]) + counts[groups], counts[groups])
        part += np.arange(len(part))  # the spikes of those samples
        # local_features on the crystals these samples hit, renumbered (a small geometry block)
        hit, local = np.unique(channel[part], return_inverse=True)
        sub = SpikeEncoding(
            sample=sample[part],
            step=step[part],
            channel=local.reshape(-1),
            label=np.zeros(len(part), dtype=np.uint8),
            single=part,
            single_sample=sample[part],
            single_step=step[part],
            single_channel=local.reshape(-1),
            n_samples=int(sample[-1]) + 1,
            n_steps=n_steps,
            n_channels=len(hit),
            bin_ns=1.0,
            start_s=0.0,
            merged=0,
        )
        block = geometry[np.ix_(hit, hit)]
        r_sample, r_channel, f = local_features(sub, np.unique(sample[alone]), block)
        r_channel = hit[r_channel]
        wanted = np.isin(r_sample * n_channels + r_channel, sample[alone] * n_channels + channel[alone])
        row_sample, row_channel = r_sample[wanted], r_channel[wanted]
        counts_f = f[wanted].astype(np.int64)
        codes.append(((counts_f[..., 0] * size + counts_f[..., 1]) * size + counts_f[..., 2]).reshape(-1))
        last_own = n_steps - 1 - np.argmax(counts_f[:, ::-1, 0] > 0, axis=1)
        last.append(np.minimum(last_own + horizon, n_steps - 1))
    code = np.concatenate(codes).reshape(-1, n_steps)
    triples = _grid(2 * size * size)
    fired = _run_local(module, device, code, triples, np.concatenate(last))
    return _EventRun(pattern, own_step, fired, row_sample, row_channel)


@functools.cache
def _grid(n: int) -> np.ndarray:
    """The feature triples (own spike 0/1, facing fan, other spikes) of the input codes
    0 … n − 1, n = 2·S²: code = (own · S + fan) · S + other (read only)."""
    size = round((n // 2) ** 0.5)
    grid = np.stack(np.unravel_index(np.arange(n), (2, size, size)), axis=1)
    grid.flags.writeable = False
    return grid


def _run_local(
    module: LocalPETNetModule, device: torch.device, code: np.ndarray, triples: np.ndarray, last: np.ndarray
) -> _Fired:
    """Output spikes of the local network on the features ``triples[code]``, integrated step by
    step, at least up to step ``last`` of each row (:func:`_lif_events` on the CPU, else
    ``run_rows(fast=True)``)."""
    if not len(code):
        return _DenseFired(np.zeros(code.shape, dtype=bool))
    fcs: list[nn.Linear] = list(module.fcs)  # type: ignore[arg-type]
    if device.type == "cpu" and all(fc.in_features <= 16 for fc in fcs[1:]):
        if len(triples) > 1 << 16:  # compress the codes to those that occur
            used, inverse = np.unique(code, return_inverse=True)
            code, triples = inverse.reshape(code.shape), triples[used]
        return _lif_events(module, code, triples, last)
    feats = torch.from_numpy(triples[code]).to(device=device, dtype=fcs[0].weight.dtype)
    spk, _ = module.run_rows(feats, fast=True)
    return _DenseFired(np.asarray(spk.to("cpu").numpy() > 0.5))


class _Fired(ABC):
    """Output spikes of rows of the local network, read two ways."""

    @abstractmethod
    def dense(self, rows: np.ndarray) -> np.ndarray:
        """bool [len(rows), T]: the output spikes of ``rows``."""

    def any_between(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """bool per row: an output spike at a step in [lo, hi] (both inclusive; per row)."""
        dense = self.dense(np.arange(len(lo)))
        t = np.arange(dense.shape[1])[None, :]
        return np.asarray((dense & (t >= lo[:, None]) & (t <= hi[:, None])).any(1))


class _DenseFired(_Fired):
    def __init__(self, spikes: np.ndarray) -> None:
        self.spikes = spikes

    def dense(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.spikes[rows])


class _EventFired(_Fired):
    """:func:`_lif_events`' outputs: the quiet network's spikes before each row's ``first`` input,
    then ``fired[k, slot[row]]`` at step first + k, up to the row's ``last`` step."""

    def __init__(
        self, quiet: np.ndarray, first: np.ndarray, last: np.ndarray, fired: np.ndarray, slot: np.ndarray
    ) -> None:
        self.quiet, self.first, self.last, self.fired, self.slot = quiet, first, last, fired, slot

    def dense(self, rows: np.ndarray) -> np.ndarray:
        n_steps = len(self.quiet)
        t = np.arange(n_steps)[None, :]
        first, last = self.first[rows][:, None], self.last[rows][:, None]
        k = np.clip(t - first, 0, max(len(self.fired) - 1, 0))
        fired = (
            self.fired.reshape(-1)[k * self.fired.shape[1] + self.slot[rows][:, None]]
            if len(self.fired)
            else False
        )
        return np.asarray(np.where(t < first, self.quiet[None, :], fired) & (t <= last))

    def any_between(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        hi = np.minimum(hi, self.last)
        # before the first input: the quiet spikes, by their running count
        count = np.r_[0, np.cumsum(self.quiet)]
        a, b = (
            np.clip(lo, 0, len(self.quiet)),
            np.clip(np.minimum(hi, self.first - 1) + 1, 0, len(self.quiet)),
        )
        quiet = (b > a) & (count[np.maximum(b, a)] > count[a])
        if not len(self.fired):
            return np.asarray(quiet)
        order = np.empty_like(self.slot)
        order[self.slot] = np.arange(len(self.slot))  # fired's columns are the rows in this order
        k = np.arange(len(self.fired))[:, None]
        klo = (lo - self.first)[order][None, :]
        khi = (hi - self.first)[order][None, :]
        fired = (self.fired & (k >= klo) & (k <= khi)).any(0)
        return np.asarray(quiet | fired[self.slot])


@dataclass(frozen=True)
class _LifConstants:
    """What :func:`_lif_events` needs of a network, for ``n_steps`` steps: each layer's decay and
    threshold, the current tables of the layers after the first (index: the input spikes as
    bits), and the network's response to no input (potentials and spikes after each step, row
    t + 1; row 0 is the start)."""

    betas: list[np.ndarray]
    thresholds: list[np.ndarray]
    tables: list[np.ndarray]
    quiet_mem: list[np.ndarray]
    quiet_spikes: list[np.ndarray]
    first: dict[int, np.ndarray]  # the first layer's table on _grid(size), by size


_LIF_CACHE: dict[tuple[Any, ...], tuple[list[torch.Tensor], _LifConstants]] = {}


def _lif_constants(module: LocalPETNetModule, n_steps: int) -> _LifConstants:
    """:class:`_LifConstants` of ``module``, cached while its weights are unchanged."""
    fcs: list[nn.Linear] = list(module.fcs)  # type: ignore[arg-type]
    lifs: list[Any] = list(module.lifs)
    tensors = [p for fc in fcs for p in (fc.weight, fc.bias)] + [
        v for lif in lifs for v in (lif.beta, lif.threshold)
    ]
    # the same tensors (held by the cache, so no other tensor can take their ids), unchanged
    # since (a tensor's version counts its in-place writes)
    key = (n_steps, *((id(t), t._version) for t in tensors))
    hit = _LIF_CACHE.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], tensors, strict=True)):
        return hit[1]
    dtype = np.float32 if fcs[0].weight.dtype == torch.float32 else np.float64
    betas = [np.asarray(lif.beta.clamp(0, 1).item(), dtype=dtype) for lif in lifs]
    thresholds = [np.asarray(lif.threshold.item(), dtype=dtype) for lif in lifs]
    tables = [_layer_table(fcs[0], np.zeros((1, fcs[0].in_features), dtype=np.int64))]
    for fc in fcs[1:]:
        bits = (np.arange(1 << fc.in_features)[:, None] >> np.arange(fc.in_features)) & 1
        tables.append(_layer_table(fc, bits))
    widths = [t.shape[1] for t in tables]
    quiet_mem = [np.zeros((n_steps + 1, w), dtype=dtype) for w in widths]
    quiet_spikes = [np.zeros((n_steps + 1, w), dtype=bool) for w in widths]
    mems = [np.zeros((1, w), dtype=dtype) for w in widths]
    spikes = [np.zeros((1, w), dtype=bool) for w in widths]
    for t in range(n_steps):
        _lif_step(betas, thresholds, tables, mems, spikes, tables[0], 1)
        for k in range(len(widths)):
            quiet_mem[k][t + 1], quiet_spikes[k][t + 1] = mems[k][0], spikes[k][0]
    constants = _LifConstants(betas, thresholds, tables[1:], quiet_mem, quiet_spikes, {})
    if len(_LIF_CACHE) >= 16:
        _LIF_CACHE.clear()
    _LIF_CACHE[key] = (tensors, constants)
    return constants


def _lif_step(
    betas: list[np.ndarray],
    thresholds: list[np.ndarray],
    tables: list[np.ndarray],
    mems: list[np.ndarray],
    spikes: list[np.ndarray],
    current: np.ndarray,
    n: int,
) -> None:
    """One step of :func:`_lif_scan` for every layer, in place on the first ``n`` rows of the
    potentials ``mems`` and of the last step's spikes ``spikes`` (which are this step's resets);
    ``current`` is the first layer's input current, ``tables[k]`` layer k's by its input bits."""
    for k, (beta, thr) in enumerate(zip(betas, thresholds, strict=True)):
        mem, spk = mems[k][:n], spikes[k][:n]
        np.multiply(beta, mem, out=mem)
        np.add(mem, current, out=mem)
        np.subtract(mem, spk if thr == 1 else spk * thr, out=mem)  # (β·mem + I) − reset·thr, as _lif_scan
        np.greater(mem, thr, out=spk)
        if k + 1 < len(betas):
            current = np.take(tables[k + 1], _bits_index(spk), axis=0)


def _bits_index(spikes: np.ndarray) -> np.ndarray:
    """Row k of bool [rows, width] as the integer Σ_j spikes[k, j]·2^j."""
    width = spikes.shape[1]
    if width == 8 and spikes.flags.c_contiguous:
        return np.packbits(spikes.reshape(-1), bitorder="little")
    return (spikes.astype(np.float32) @ (2.0 ** np.arange(width, dtype=np.float32))).astype(np.intp)


def _lif_events(module: LocalPETNetModule, code: np.ndarray, triples: np.ndarray, last: np.ndarray) -> _Fired:
    """Output spikes of the local network on features ``triples[code]`` ([rows, T] codes), bit
    for bit those of ``run_rows(fast=True)`` (:func:`_lif_scan`) at every step up to ``last``
    (per row; later steps read as no spike).

    A row's steps before its first input are the network's response to no input, the same for
    every row: integrated once (:func:`_lif_constants`). From there each row is integrated step
    by step, all rows at once, only up to its ``last`` step. Each layer's input current takes few
    values (the features are small counts, a hidden layer's input is a spike vector), so the
    currents are looked up in tables of the layer's own outputs (``nn.Linear`` on every possible
    input, the same floats it gives inside the network); the leaky integration repeats
    :func:`_lif_scan`'s float operations in the same order, a spike being the next step's reset.
    """
    rows, n_steps = code.shape
    const = _lif_constants(module, n_steps)
    first_table = const.first.get(len(triples)) if triples is _grid(len(triples)) else None
    if first_table is None:
        first_table = _layer_table(module.fcs[0], triples)  # type: ignore[arg-type]
        if triples is _grid(len(triples)):
            const.first[len(triples)] = first_table
    tables = [first_table, *const.tables]
    active = code != 0
    first = np.where(active.any(1), active.argmax(1), n_steps)
    last = np.minimum(last, n_steps - 1)
    span = np.maximum(last - first + 1, 0)
    order = np.argsort((n_steps - span).astype(np.int16 if n_steps < 1 << 15 else np.int64), kind="stable")
    slot = np.empty(rows, dtype=np.int64)
    slot[order] = np.arange(rows)
    first_o, span_o = first[order], span[order]
    n_active = np.searchsorted(-span_o, -np.arange(int(span_o.max(initial=0))), side="left")
    fired = np.zeros((len(n_active), rows), dtype=bool)
    if len(n_active):
        # each row from its first input on, in steps since then: the codes [k, row]
        at = np.minimum(first_o[None, :] + np.arange(len(n_active))[:, None], n_steps - 1)
        rel = np.take(code.reshape(-1), order[None, :] * n_steps + at)
        mems = [q[first_o] for q in const.quiet_mem]  # the state before each row's first input
        spikes = [q[first_o] for q in const.quiet_spikes]
        for k, n in enumerate(n_active):
            current = np.take(tables[0], rel[k, :n], axis=0)
            _lif_step(const.betas, const.thresholds, tables, mems, spikes, current, int(n))
            fired[k, :n] = spikes[-1][:n, 0]
    return _EventFired(const.quiet_spikes[-1][1:, 0], first, last, fired, slot)


def _layer_table(fc: nn.Linear, inputs: np.ndarray) -> np.ndarray:
    """``fc`` applied to each row of ``inputs`` (every value one of its inputs can take)."""
    x = torch.from_numpy(np.array(inputs)).to(dtype=fc.weight.dtype, device=fc.weight.device)
    with torch.no_grad():
        return fc(x).to("cpu").numpy()


_GEOMETRY_CACHE: dict[int, tuple[torch.Tensor, int, np.ndarray]] = {}


def _fan_matrix(module: LocalPETNetModule) -> np.ndarray:
    """``module.geometry > 0.5`` as a bool array, kept while the buffer is the same tensor,
    unchanged (its version counter counts in-place writes)."""
    geometry: torch.Tensor = module.geometry  # type: ignore[assignment]
    hit = _GEOMETRY_CACHE.get(id(geometry))
    if hit is not None and hit[0] is geometry and hit[1] == geometry._version:
        return hit[2]
    fan = np.ascontiguousarray(geometry.detach().to("cpu").numpy() > 0.5)
    if len(_GEOMETRY_CACHE) >= 2:  # a 960-crystal fan matrix is 0.9 MB, its tensor 3.7 MB
        _GEOMETRY_CACHE.clear()
    _GEOMETRY_CACHE[id(geometry)] = (geometry, geometry._version, fan)
    return fan


def _event_chunks(sample: np.ndarray) -> list[slice]:
    """Consecutive slices of about :data:`EVENT_CHUNK` spikes (sorted by sample), cut at sample edges."""
    n = len(sample)
    cuts = [0]
    while cuts[-1] + EVENT_CHUNK < n:
        at = cuts[-1] + EVENT_CHUNK
        cut = int(np.searchsorted(sample, sample[at], side="left"))
        if cut <= cuts[-1]:  # one sample of more than EVENT_CHUNK spikes
            cut = int(np.searchsorted(sample, sample[at], side="right"))
        cuts.append(cut)
    cuts.append(n)
    return [slice(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _event_spikes(
    module: LocalPETNetModule,
    device: torch.device,
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    *,
    n_steps: int,
    n_channels: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every output spike (sample, step, channel), sorted so, of the local network on the rows
    of spikes in (sample, step, channel) order, run event-driven (:func:`_event_run`)."""
    geometry = _fan_matrix(module)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for part in _event_chunks(sample):
        s, t, c = sample[part], step[part], channel[part]
        run = _event_run(
            module,
            device,
            s,
            t,
            c,
            geometry=geometry,
            n_steps=n_steps,
            n_channels=n_channels,
            horizon=n_steps,
        )
        spikes = run.fired.dense(np.arange(run.n_patterns + len(run.row_sample)))
        keyed = np.flatnonzero(run.pattern >= 0)
        keyed = keyed[np.asarray(spikes.any(1))[run.pattern[keyed]]]
        i, at = np.nonzero(spikes[run.pattern[keyed]])
        out.append((s[keyed[i]], at, c[keyed[i]]))
        r, at = np.nonzero(spikes[run.n_patterns :])
        out.append((run.row_sample[r], at, run.row_channel[r]))
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    s, t, c = (np.concatenate([o[k] for o in out]).astype(np.int64) for k in range(3))
    order = np.lexsort((t, c, s))
    return s[order], t[order], c[order]


def _event_selected(
    module: LocalPETNetModule,
    device: torch.device,
    tilings: list[_Tiling],
    *,
    n_steps: int,
    n_channels: int,
    tolerance_steps: int,
) -> list[np.ndarray]:
    """For each tiling, whether each single is selected: :func:`spikes_to_singles` of the local
    network's output spikes, with the tilings run together and event-driven (:func:`_event_run`,
    outputs read up to ``tolerance_steps`` after each row's spike)."""
    geometry = _fan_matrix(module)
    offsets = np.cumsum([0] + [t.n_samples for t in tilings])
    sample = np.concatenate([t.sample + o for t, o in zip(tilings, offsets, strict=False)])
    bounds = np.cumsum([0] + [len(t.sample) for t in tilings])
    step = np.concatenate([t.step for t in tilings])
    channel = np.concatenate([t.channel for t in tilings])
    selected = np.zeros(len(sample), dtype=bool)
    for part in _event_chunks(sample):
        s, t, c = sample[part], step[part], channel[part]
        run = _event_run(
            module,
            device,
            s,
            t,
            c,
            geometry=geometry,
            n_steps=n_steps,
            n_channels=n_channels,
            horizon=max(tolerance_steps, 0),
        )
        chosen = np.zeros(len(s), dtype=bool)
        keyed = np.flatnonzero(run.pattern >= 0)
        n_rows = len(run.row_sample)
        lo = np.r_[run.own_step - tolerance_steps, np.zeros(n_rows, dtype=np.int64)]
        hi = np.r_[run.own_step + tolerance_steps, np.full(n_rows, -1)]
        chosen[keyed] = run.fired.any_between(lo, hi)[run.pattern[keyed]]
        rest = np.flatnonzero(run.pattern < 0)
        if len(rest):  # nearest own spike within the tolerance, as spikes_to_singles
            r, at = np.nonzero(run.fired.dense(run.n_patterns + np.arange(n_rows)))
            sub = SpikeEncoding(
                sample=s[rest],
                step=t[rest],
                channel=c[rest],
                label=np.zeros(len(rest), dtype=np.uint8),
                single=rest,
                single_sample=s[rest],
                single_step=t[rest],
                single_channel=c[rest],
                n_samples=int(s[-1]) + 1,
                n_steps=n_steps,
                n_channels=n_channels,
                bin_ns=1.0,
                start_s=0.0,
                merged=0,
            )
            coords = (run.row_sample[r], at, run.row_channel[r])
            chosen[spikes_to_singles(coords, sub, tolerance_steps=tolerance_steps)] = True
        selected[part] = chosen
    out = []
    for k, tiling in enumerate(tilings):
        mask = np.zeros(len(tiling.single_step), dtype=bool)
        mask[tiling.single[selected[bounds[k] : bounds[k + 1]]]] = True
        out.append(mask)
    return out


def _nearest_target_distance(target: torch.Tensor) -> torch.Tensor:
    """For each (batch, step, channel): steps to the nearest target spike on that channel (T if none)."""
    n_steps = target.shape[1]
    t = torch.arange(n_steps, device=target.device, dtype=torch.float32)[None, :, None].expand_as(target)
    big = float(4 * n_steps)
    last = torch.where(target > 0.5, t, torch.full_like(t, -big)).cummax(dim=1).values
    nxt = torch.where(target > 0.5, t, torch.full_like(t, 2 * big)).flip(1).cummin(dim=1).values.flip(1)
    return torch.clamp(torch.minimum(t - last, nxt - t), max=float(n_steps))


def balanced_pos_weight(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Weight of target crystals in the count loss that balances targets against the rest:
    (input spikes − target spikes) / target spikes (1 when there are no targets).

    With it, staying silent costs as much as spiking on every input spike, so silence is no
    longer the minimum when targets are rare.

    >>> x = np.zeros((1, 4, 3)); x[0, 0, :] = 1; x[0, 2, 0] = 1; y = np.zeros_like(x); y[0, 0, 1] = 1
    >>> balanced_pos_weight(x, y)
    3.0
    """
    n_in, n_pos = float((np.asarray(x) > 0.5).sum()), float((np.asarray(y) > 0.5).sum())
    return (n_in - n_pos) / n_pos if n_pos else 1.0


def petnet_loss(
    spikes: torch.Tensor,
    target: torch.Tensor,
    *,
    count_weight: float = 1.0,
    timing_weight: float = 0.1,
    pos_weight: float = 1.0,
) -> torch.Tensor:
    """a·L_count + b·L_timing for [batch, T, C] spikes (0 when ``spikes`` equals ``target``).

    L_count is the mean over (sample, crystal) of w·(predicted − target spike count)², with
    w = ``pos_weight`` on crystals that hold a target spike and 1 elsewhere.

    >>> y = torch.zeros(1, 10, 2); y[0, 4, 1] = 1
    >>> float(petnet_loss(y, y)), float(petnet_loss(torch.roll(y, 3, 1), y)) > 0
    (0.0, True)
    >>> float(petnet_loss(torch.zeros_like(y), y, pos_weight=4.0))  # (4·1² + 1·0²) / 2 crystals
    2.0
    """
    if spikes.shape != target.shape:
        raise InputError(f"spikes {tuple(spikes.shape)} and target {tuple(target.shape)} differ in shape")
    n_steps = spikes.shape[1]
    target_count = target.sum(1)
    weight = torch.where(target_count > 0, pos_weight, 1.0)
    count = (weight * (spikes.sum(1) - target_count) ** 2).mean()
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
    stopping patience 2, 80/20 split, count weight 1, timing weight 0.1), except that the
    count loss weights target crystals by ``pos_weight`` ("balanced": :func:`balanced_pos_weight`,
    so that silence is not a minimum when targets are rare; 1 is the paper's loss).

    ``local=True`` selects :class:`LocalPETNetModule` (hidden 8 and beta 0.5 by default: a
    coincidence is short, a long membrane memory makes the output spike late), which needs
    ``crystals_per_ring`` and ``fan`` for its facing-fan channel and predicts fast through
    :meth:`predict_spikes`.
    """

    def __init__(
        self,
        n_channels: int,
        *,
        hidden: int | None = None,
        n_layers: int = 1,
        beta: float | None = None,
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
        pos_weight: float | str = "balanced",
        local: bool = False,
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
        self.pos_weight = pos_weight
        self.local = local
        self.seed = seed
        self.device = device

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        keys = [k for k in inspect.signature(type(self).__init__).parameters if k != "self"]
        return {k: getattr(self, k) for k in keys}

    def _check_params(self) -> None:
        """Raise :class:`InputError` naming the first constructor parameter no network can use."""
        positive_int("n_channels", self.n_channels)
        positive_int("n_layers", self.n_layers)
        if self.hidden is not None:
            positive_int("hidden", self.hidden)
        if self.beta is not None and not 0 <= finite_float("beta", self.beta) <= 1:
            raise InputError(f"beta (the membrane decay) must lie in [0, 1], got {self.beta!r}")
        if self.crystals_per_ring is not None:
            positive_int("crystals_per_ring", self.crystals_per_ring)
        nonnegative_int("fan", self.fan)
        positive_float("init_scale", self.init_scale)
        positive_float("lr", self.lr)
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("patience", self.patience)
        fraction("validation_fraction", self.validation_fraction)
        nonnegative_float("count_weight", self.count_weight)
        nonnegative_float("timing_weight", self.timing_weight)
        if self.pos_weight != "balanced":
            if isinstance(self.pos_weight, str):
                raise InputError(f"pos_weight must be a number or 'balanced', got {self.pos_weight!r}")
            positive_float("pos_weight", self.pos_weight)
        nonnegative_int("seed", self.seed)

    def _build(self) -> PETNetModule | LocalPETNetModule:
        self._check_params()
        geo = None
        if self.geometry:
            geo = opposite_fan(self.n_channels, self.crystals_per_ring or self.n_channels, self.fan)
        torch.manual_seed(RngStreams(self.seed).entropy("petnet-init") & 0x7FFF_FFFF)
        if self.local:
            geo = opposite_fan(self.n_channels, self.crystals_per_ring or self.n_channels, self.fan)
            beta = 0.5 if self.beta is None else self.beta
            return LocalPETNetModule(geo, self.hidden or 8, self.n_layers, beta, self.init_scale)
        beta = 0.95 if self.beta is None else self.beta
        return PETNetModule(
            self.n_channels, self.hidden or self.n_channels, self.n_layers, beta, geo, self.init_scale
        )

    def _check(self, x: np.ndarray, name: str) -> torch.Tensor:
        try:
            arr = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a numeric array [samples, steps, {self.n_channels}]") from None
        if arr.ndim != 3 or arr.shape[2] != self.n_channels:
            raise InputError(f"{name} must have shape [samples, steps, {self.n_channels}], got {arr.shape}")
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"{name} has {int(bad.sum())} NaN or infinite value(s), the first at [sample, step, "
                f"channel] = {list(first)}",
                hint="PETNet reads spike trains: 0/1 values (hai.pet.encode_spikes)",
            )
        return torch.from_numpy(arr)

    def fit(self, x: np.ndarray, y: np.ndarray) -> PETNet:
        """Train on input spikes ``x`` and target spikes ``y`` (both [samples, T, C]).

        Keeps the weights of the epoch with the lowest validation loss; stops after
        ``patience`` epochs without improvement. Sets ``module_``, ``history_``, ``device_`` and
        ``pos_weight_``. The validation split is by sample. The local network trains on the
        (sample, crystal) rows that hold an input spike, ``batch_size`` rows at a time.
        """
        self._check_params()
        xt, yt = self._check(x, "x"), self._check(y, "y")
        if xt.shape != yt.shape:
            raise InputError(f"x {tuple(xt.shape)} and y {tuple(yt.shape)} differ in shape")
        if len(xt) < 2:
            raise InputError("fit needs at least 2 samples (training and validation)")
        device = resolve_device(self.device)
        module = self._build().to(device)
        val, train = self._split(len(xt))
        self.pos_weight_ = self._pos_weight(xt[train], yt[train])

        def forward(batch: torch.Tensor) -> torch.Tensor:
            return module(batch)[0]

        if isinstance(module, LocalPETNetModule):
            local = module
            xt, yt, row_sample = _active_rows(local, xt, yt)
            val, train = self._row_split(row_sample, val)

            def forward(batch: torch.Tensor) -> torch.Tensor:
                return local.run_rows(batch)[0].unsqueeze(-1)

        return self._train(module, device, forward, xt, yt, train, val)

    def fit_encodings(self, encodings: SpikeEncoding | list[SpikeEncoding]) -> PETNet:
        """Train the local network (``local=True``) on sparse spike encodings directly, without
        densifying [samples, T, C]: the same training as ``fit(x, y)`` on the encodings'
        non-empty samples stacked in order (``x = dense(nonempty_samples)`` of each, then
        concatenated), at a memory cost of the input spikes instead of samples × T × C.

        Several encodings (acquisitions) are trained on together; they must share steps and
        channels.
        """
        self._check_params()
        if not self.local:
            raise InputError("fit_encodings trains the local network", hint="use local=True, or fit(x, y)")
        encs = [encodings] if isinstance(encodings, SpikeEncoding) else list(encodings)
        if not encs:
            raise InputError("fit_encodings needs at least one encoding")
        for enc in encs:
            if (enc.n_channels, enc.n_steps) != (self.n_channels, encs[0].n_steps):
                raise InputError(
                    f"the encodings must all have {self.n_channels} channels and {encs[0].n_steps} "
                    f"steps, one has {enc.n_channels} channels and {enc.n_steps} steps"
                )
        device = resolve_device(self.device)
        module = self._build().to(device)
        assert isinstance(module, LocalPETNetModule)
        geometry = module.geometry.to("cpu").numpy() > 0.5  # type: ignore[operator]
        feats, targets, row_samples, offset = [], [], [], 0
        for enc in encs:
            used = enc.nonempty_samples
            r_sample, r_channel, f = local_features(enc, used, geometry)
            target = np.zeros(f.shape[:2], dtype=np.float32)
            hit = enc.label > 0
            row = np.searchsorted(
                r_sample * enc.n_channels + r_channel, enc.sample[hit] * enc.n_channels + enc.channel[hit]
            )
            target[row, enc.step[hit]] = 1.0
            feats.append(f)
            targets.append(target)
            row_samples.append(np.searchsorted(used, r_sample) + offset)
            offset += len(used)
        if offset < 2:
            raise InputError("fit needs at least 2 samples (training and validation)")
        xt = torch.from_numpy(np.concatenate(feats))
        yt = torch.from_numpy(np.concatenate(targets)).unsqueeze(-1)
        row_sample = np.concatenate(row_samples)
        val_samples, _ = self._split(offset)
        val, train = self._row_split(row_sample, val_samples)
        self.pos_weight_ = self._pos_weight(xt[train, :, 0], yt[train])

        def forward(batch: torch.Tensor) -> torch.Tensor:
            return module.run_rows(batch)[0].unsqueeze(-1)

        return self._train(module, device, forward, xt, yt, train, val)

    def _split(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation and training sample indices (by sample, seeded)."""
        rng = RngStreams(self.seed).numpy("petnet-split")
        order = rng.permutation(n_samples)
        n_val = min(max(1, round(self.validation_fraction * n_samples)), n_samples - 1)
        return order[:n_val], order[n_val:]

    @staticmethod
    def _row_split(row_sample: np.ndarray, val_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        in_val = np.isin(row_sample, val_samples)
        val, train = np.flatnonzero(in_val), np.flatnonzero(~in_val)
        if not len(val) or not len(train):
            raise InputError("fit needs input spikes in both the training and the validation samples")
        return val, train

    def _pos_weight(self, x: torch.Tensor, y: torch.Tensor) -> float:
        if self.pos_weight == "balanced":
            return balanced_pos_weight(x, y)
        if isinstance(self.pos_weight, str):
            raise InputError(f"pos_weight must be a number or 'balanced', got {self.pos_weight!r}")
        return float(self.pos_weight)

    def _train(
        self,
        module: PETNetModule | LocalPETNetModule,
        device: torch.device,
        forward: Callable[[torch.Tensor], torch.Tensor],
        xt: torch.Tensor,
        yt: torch.Tensor,
        train: np.ndarray,
        val: np.ndarray,
    ) -> PETNet:
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr)
        best, best_state, bad = float("inf"), copy.deepcopy(module.state_dict()), 0
        history: list[EpochRecord] = []
        batch_rng = RngStreams(self.seed).numpy("petnet-batches")
        for epoch in range(self.epochs):
            module.train()
            losses = []
            for start in range(0, len(train), self.batch_size):
                idx = train[start : start + self.batch_size]
                spk = forward(xt[idx].to(device))
                loss = petnet_loss(
                    spk,
                    yt[idx].to(device),
                    count_weight=self.count_weight,
                    timing_weight=self.timing_weight,
                    pos_weight=self.pos_weight_,
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            train = batch_rng.permutation(train)
            module.eval()
            val_loss = self._loss(forward, xt[val], yt[val], device)
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

    def _loss(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        device: torch.device,
    ) -> float:
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                spk = forward(x[start : start + self.batch_size].to(device))
                loss = petnet_loss(
                    spk,
                    y[start : start + self.batch_size].to(device),
                    count_weight=self.count_weight,
                    timing_weight=self.timing_weight,
                    pos_weight=self.pos_weight_,
                )
                total += float(loss) * len(spk)
        return total / len(x)

    def _fitted(self) -> nn.Module:
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

    def predict_spikes(
        self,
        encoding: SpikeEncoding,
        samples: np.ndarray | None = None,
        *,
        max_rows: int = 20_000,
        method: str = "event",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Output spikes for the samples of a sparse ``encoding`` as coordinates
        (sample, step, channel), ready for :func:`hai.pet.spikes_to_pairs`.

        The local network runs only on the (sample, crystal) rows that hold an input spike, from
        features built sparsely (no dense [samples, T, C] tensor): an output spike elsewhere could
        not select a single anyway, so the selected singles equal those of :meth:`predict`. The
        fully connected network densifies ``batch_size`` samples at a time. ``method`` picks how
        the local network runs: ``"event"`` (default) once per distinct input pattern, step by
        step, shared by the rows that hold it (:func:`_event_run`; ``max_rows`` does not apply,
        it works in chunks of :data:`EVENT_CHUNK` spikes), ``"scan"`` on every row step by step
        (:func:`_lif_scan`), ``"parallel"`` on every row over the whole time window at once
        (:func:`lif_time_parallel`). ``"event"`` and ``"scan"`` give the same spikes; all three
        give the spikes of the snnTorch network (up to float rounding at the threshold).
        """
        module = self._fitted()
        if method not in ("event", "parallel", "scan"):
            raise InputError(f"method must be 'event', 'parallel' or 'scan', got {method!r}")
        max_rows = positive_int("max_rows", max_rows)
        if encoding.n_channels != self.n_channels:
            raise InputError(
                f"the encoding has {encoding.n_channels} channels, this PETNet {self.n_channels}"
            )
        chosen = encoding.nonempty_samples if samples is None else np.unique(np.asarray(samples))
        if isinstance(module, LocalPETNetModule) and method == "event":
            keep = np.flatnonzero(np.isin(encoding.sample, chosen))
            keep = keep[np.lexsort((encoding.channel[keep], encoding.step[keep], encoding.sample[keep]))]
            with torch.no_grad():
                return _event_spikes(
                    module,
                    self.device_,
                    encoding.sample[keep].astype(np.int64),
                    encoding.step[keep].astype(np.int64),
                    encoding.channel[keep].astype(np.int64),
                    n_steps=encoding.n_steps,
                    n_channels=encoding.n_channels,
                )
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        with torch.no_grad():
            if isinstance(module, LocalPETNetModule):
                geometry = module.geometry.to("cpu").numpy() > 0.5  # type: ignore[operator]
                for block in _sample_blocks(encoding, chosen, max_rows):
                    r_sample, r_channel, feats = local_features(encoding, block, geometry)
                    spk, _ = module.run_rows(
                        torch.from_numpy(feats).to(self.device_), fast=True, parallel=method == "parallel"
                    )
                    r, t = np.nonzero(spk.to("cpu").numpy() > 0.5)
                    out.append((r_sample[r], t, r_channel[r]))
            else:
                for start in range(0, len(chosen), self.batch_size):
                    block = chosen[start : start + self.batch_size]
                    spk, _ = module(torch.from_numpy(encoding.dense(block)).to(self.device_))
                    s, t, c = np.nonzero(spk.to("cpu").numpy() > 0.5)
                    out.append((block[s], t, c))
        if not out:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return tuple(np.concatenate([o[k] for o in out]).astype(np.int64) for k in range(3))  # type: ignore[return-value]

    def select_singles(
        self,
        singles: GateTree,
        *,
        crystals_per_sector: int,
        bin_ns: float,
        n_steps: int,
        crystals_per_ring: int | None = None,
        tolerance_steps: int = 0,
        overlap: bool = True,
        method: str = "event",
    ) -> np.ndarray:
        """Rows of ``singles`` that PETNet marks as part of a coincidence, from the singles
        themselves (encoded into ``n_steps`` × ``bin_ns`` samples, run, mapped back).

        A sample is a closed window: a pair that straddles two samples is out of reach, and a
        pair in a sample's last or first steps is often missed (the output spike would come after
        the window ends, or the membrane has not charged). With ``overlap`` (default) the singles
        are encoded a second time with the samples shifted by half a sample, and each single takes
        the decision of the tiling in which it lies further from its sample's edges.
        ``method`` as in :meth:`predict_spikes`; with ``"event"`` (the local network) both
        tilings run together, event-driven, without building a :class:`SpikeEncoding`.
        """
        module = self._fitted()
        if isinstance(module, LocalPETNetModule) and method == "event":
            return self._select_singles_event(
                module,
                singles,
                crystals_per_sector=crystals_per_sector,
                bin_ns=bin_ns,
                n_steps=n_steps,
                crystals_per_ring=crystals_per_ring,
                tolerance_steps=tolerance_steps,
                overlap=overlap,
            )
        opts: dict[str, Any] = {
            "n_crystals": self.n_channels,
            "crystals_per_sector": crystals_per_sector,
            "crystals_per_ring": crystals_per_ring,
            "bin_ns": bin_ns,
            "n_steps": n_steps,
        }

        def run(enc: SpikeEncoding) -> tuple[np.ndarray, np.ndarray]:
            chosen = np.zeros(len(singles), dtype=bool)
            rows = spikes_to_singles(
                self.predict_spikes(enc, method=method), enc, tolerance_steps=tolerance_steps
            )
            chosen[rows] = True
            margin = np.minimum(enc.single_step, enc.n_steps - 1 - enc.single_step)
            return chosen, margin

        first = encode_spikes(singles, **opts)
        chosen, margin = run(first)
        if overlap and first.n_steps > 1:
            shifted = encode_spikes(singles, **opts, start_s=first.start_s - (n_steps // 2) * bin_ns * 1e-9)
            chosen_b, margin_b = run(shifted)
            chosen = np.where(margin_b > margin, chosen_b, chosen)
        return np.flatnonzero(chosen)

    def _select_singles_event(
        self,
        module: LocalPETNetModule,
        singles: GateTree,
        *,
        crystals_per_sector: int,
        bin_ns: float,
        n_steps: int,
        crystals_per_ring: int | None,
        tolerance_steps: int,
        overlap: bool,
    ) -> np.ndarray:
        """:meth:`select_singles` with ``method="event"``: the same encoding checks and tilings."""
        bin_ns = positive_float("bin_ns", bin_ns)
        n_steps = positive_int("n_steps", n_steps)
        n_channels = positive_int("n_crystals", self.n_channels)
        t, channel = singles_channels(
            singles,
            n_crystals=n_channels,
            crystals_per_sector=crystals_per_sector,
            crystals_per_ring=crystals_per_ring,
        )
        start = float(t[0])
        tilings = [_tile(t, channel, start, bin_ns, n_steps, n_channels)]
        if overlap and n_steps > 1:
            shifted = start - (n_steps // 2) * bin_ns * 1e-9
            tilings.append(_tile(t, channel, shifted, bin_ns, n_steps, n_channels))
        with torch.no_grad():
            masks = _event_selected(
                module,
                self.device_,
                tilings,
                n_steps=n_steps,
                n_channels=n_channels,
                tolerance_steps=tolerance_steps,
            )
        chosen = masks[0]
        if len(tilings) > 1:
            margins = [np.minimum(k.single_step, n_steps - 1 - k.single_step) for k in tilings]
            chosen = np.where(margins[1] > margins[0], masks[1], chosen)
        return np.flatnonzero(chosen)

    def predict_pairs(
        self,
        singles: GateTree,
        *,
        window_ns: float,
        crystals_per_sector: int,
        bin_ns: float,
        n_steps: int,
        crystals_per_ring: int | None = None,
        tolerance_steps: int = 0,
        overlap: bool = True,
        method: str = "event",
    ) -> np.ndarray:
        """Coincidence pairs (rows of ``singles``): the singles of :meth:`select_singles`,
        chained in time (gap ≤ ``window_ns``), chains of exactly two (as
        :func:`hai.pet.spikes_to_pairs`)."""
        from hai.pet.sorter import sort_scw

        rows = self.select_singles(
            singles,
            crystals_per_sector=crystals_per_sector,
            bin_ns=bin_ns,
            n_steps=n_steps,
            crystals_per_ring=crystals_per_ring,
            tolerance_steps=tolerance_steps,
            overlap=overlap,
            method=method,
        )
        if len(rows) < 2:
            return np.zeros((0, 2), dtype=np.int64)
        # the chaining reads only the times: no need to copy the other branches of the singles
        return rows[sort_scw(GateTree(singles.name, {"time": singles["time"][rows]}), window_ns).pairs]

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
            extra={"history": history, "metadata": metadata or {}, "pos_weight": self.pos_weight_},
        )

    def _expected_large_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the layers' weights and the geometry buffer, computed without building."""
        c = int(self.n_channels)
        if self.local:
            sizes = [LocalPETNetModule.n_features] + [self.hidden or 8] * self.n_layers + [1]
            shapes: dict[str, tuple[int, ...]] = {"geometry": (c, c)}
        else:
            n_in = 2 * c if self.geometry else c
            sizes = [n_in] + [self.hidden or c] * self.n_layers + [c]
            shapes = {"geometry": (c, c) if self.geometry else (0,)}
        for k, (a, b) in enumerate(itertools.pairwise(sizes)):
            shapes[f"fcs.{k}.weight"] = (b, a)
            shapes[f"fcs.{k}.bias"] = (b,)
        return shapes

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> PETNet:
        """A fitted PETNet from a checkpoint written by :meth:`save`.

        Nothing in the file is executed (safetensors, JSON metadata). A checkpoint of another
        model, a config this class does not know, or tensors whose names, shapes, dtypes or
        values do not fit the network the config describes raise :class:`CheckpointError`
        before any network of the file's size is built.
        """
        ckpt = load_checkpoint(path, framework="torch")
        params = dict(ckpt.config)
        known = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
        unknown = sorted(set(params) - set(known))
        if unknown or "n_channels" not in params:
            what = f"its config has {', '.join(map(repr, unknown[:6]))}" if unknown else "no n_channels"
            raise CheckpointError(
                f"{path} is not a PETNet checkpoint ({what})",
                hint="give a checkpoint written by `hai pet train` or PETNet.save",
            )
        params["device"] = device
        net = cls(**params)
        try:
            net._check_params()
            for flag in ("geometry", "local"):
                if not isinstance(getattr(net, flag), bool):
                    raise InputError(f"{flag} must be true or false, got {getattr(net, flag)!r}")
        except InputError as exc:
            raise CheckpointError(f"{path} holds an invalid PETNet config: {exc.message}") from None
        tensors = ckpt.tensors
        for name, shape in net._expected_large_shapes().items():
            got = tuple(tensors[name].shape) if name in tensors else None
            if got != shape:
                raise CheckpointError(
                    f"{path} does not fit the PETNet its config describes: tensor {name!r} is "
                    f"{'missing' if got is None else f'of shape {list(got)}'}, expected {list(shape)}"
                )
        module = net._build()
        expected = module.state_dict()
        if set(tensors) != set(expected):
            extra, missing = sorted(set(tensors) - set(expected)), sorted(set(expected) - set(tensors))
            raise CheckpointError(
                f"{path} does not fit the PETNet its config describes "
                f"(unexpected tensors: {extra[:5] or 'none'}; missing: {missing[:5] or 'none'})"
            )
        for name, want in expected.items():
            got = tensors[name]
            if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
                raise CheckpointError(
                    f"{path}: tensor {name!r} is {got.dtype} {list(got.shape)}, expected "
                    f"{want.dtype} {list(want.shape)}"
                )
            if got.is_floating_point() and not bool(torch.isfinite(got).all()):
                raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite values")
            if name.endswith("reset_mechanism_val") and not torch.equal(got, want):
                raise CheckpointError(f"{path}: tensor {name!r} is not the subtractive reset PETNet uses")
        module.load_state_dict(tensors)
        net.device_ = resolve_device(device)
        net.module_ = module.to(net.device_).eval()
        try:
            net.history_ = [EpochRecord(**r) for r in ckpt.extra.get("history", [])]
            net.metadata_ = dict(ckpt.extra.get("metadata", {}))
            net.pos_weight_ = nonnegative_float("pos_weight", ckpt.extra.get("pos_weight", 1.0))
        except (TypeError, ValueError, InputError) as exc:
            raise CheckpointError(f"{path} has malformed PETNet metadata: {exc}") from None
        return net

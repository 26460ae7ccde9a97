"""Singles as binary spike trains (crystal × time step) and predicted spikes back to pairs.

PETNet reads the singles of a time window as a binary tensor [time steps × crystals]: a spike
where a crystal saw a single in a time bin; the label keeps the spikes of singles that belong
to true pairs. This module does that encoding with an explicit, recorded bin width, keeps the
tensors sparse (a second of data would not fit densely), counts the singles that merge into
one spike (several singles on one crystal in one bin), and maps predicted spikes back to
singles and coincidence pairs. No library does this for GATE singles, hence hand-written.

>>> from hai.pet.tables import GateTree
>>> s = GateTree("Singles", {"eventID": np.array([0, 0, 1]), "time": np.array([0.0, 1e-9, 9e-9]),
...     "rsectorID": np.array([0, 2, 1]), "crystalID": np.array([0, 0, 0]),
...     "comptonPhantom": np.array([0, 0, 0])})
>>> enc = encode_spikes(s, n_crystals=4, crystals_per_sector=1, bin_ns=1.0, n_steps=5)
>>> enc.n_samples, enc.dense().shape, int(enc.labels_dense().sum())
(2, (2, 5, 4), 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hai.pet.metrics import true_pairs
from hai.pet.sorter import sort_scw
from hai.pet.tables import GateTree, check_singles
from hai.shared import InputError
from hai.shared.checks import finite_float, positive_float, positive_int


@dataclass
class SpikeEncoding:
    """Sparse spike trains of singles.

    Attributes:
        sample, step, channel: coordinates of the input spikes (one per distinct
            sample/step/crystal; sorted by sample, channel, step).
        label: 1 where the spike's single belongs to a true pair.
        single: the row of the (first) single behind each spike.
        single_sample, single_step, single_channel: for every single, where it was encoded.
        n_samples, n_steps, n_channels: dense shape [n_samples, n_steps, n_channels].
        bin_ns: width of one time step; ``start_s``: time of step 0 of sample 0.
        merged: singles that fell on an existing spike (same sample, step and crystal).
    """

    sample: np.ndarray
    step: np.ndarray
    channel: np.ndarray
    label: np.ndarray
    single: np.ndarray
    single_sample: np.ndarray
    single_step: np.ndarray
    single_channel: np.ndarray
    n_samples: int
    n_steps: int
    n_channels: int
    bin_ns: float
    start_s: float
    merged: int

    @property
    def nonempty_samples(self) -> np.ndarray:
        """Indices of the samples that hold at least one spike."""
        return np.unique(self.sample)

    def _dense(self, values: np.ndarray, samples: np.ndarray | None) -> np.ndarray:
        chosen = np.arange(self.n_samples) if samples is None else np.asarray(samples)
        size = len(chosen) * self.n_steps * self.n_channels
        if size > 500_000_000:
            raise InputError(
                f"{len(chosen)} dense samples of {self.n_steps} × {self.n_channels} are too large",
                hint="densify a subset: dense(samples=...), e.g. nonempty_samples in batches",
            )
        out = np.zeros((len(chosen), self.n_steps, self.n_channels), dtype=np.float32)
        position = np.full(self.n_samples, -1)
        position[chosen] = np.arange(len(chosen))
        keep = position[self.sample] >= 0
        out[position[self.sample[keep]], self.step[keep], self.channel[keep]] = values[keep]
        return out

    def dense(self, samples: np.ndarray | None = None) -> np.ndarray:
        """Input spikes of ``samples`` (default all) as float32 [samples, steps, channels]."""
        return self._dense(np.ones(len(self.sample), dtype=np.float32), samples)

    def labels_dense(self, samples: np.ndarray | None = None) -> np.ndarray:
        """Target spikes (true-pair singles) of ``samples`` as float32 [samples, steps, channels]."""
        return self._dense(self.label.astype(np.float32), samples)


def encode_spikes(
    singles: GateTree,
    *,
    n_crystals: int,
    crystals_per_sector: int,
    crystals_per_ring: int | None = None,
    bin_ns: float = 0.5,
    n_steps: int = 1000,
    include_scatter: bool = False,
    start_s: float | None = None,
) -> SpikeEncoding:
    """Encode time-ordered singles as spike trains of ``n_steps`` bins of ``bin_ns`` each.

    The channel of a single is its global crystal ``ring * crystals_per_ring + c`` (from
    ``rsectorID`` and ``crystalID``, see :meth:`hai.pet.Scanner.global_crystal`); consecutive
    samples tile the time from ``start_s`` (s; default the first single's time, at most that).
    """
    bin_ns = positive_float("bin_ns", bin_ns)
    n_steps = positive_int("n_steps", n_steps)
    n_crystals = positive_int("n_crystals", n_crystals)
    t, channel = singles_channels(
        singles,
        n_crystals=n_crystals,
        crystals_per_sector=crystals_per_sector,
        crystals_per_ring=crystals_per_ring,
    )
    start = float(t[0]) if start_s is None else finite_float("start_s", start_s)
    if start > t[0]:
        raise InputError(f"start_s ({start!r} s) is after the first single ({float(t[0])!r} s)")
    bins = np.floor((t - start) / (bin_ns * 1e-9)).astype(np.int64)
    sample, step = np.divmod(bins, n_steps)
    target = np.zeros(len(t), dtype=bool)
    target[true_pairs(singles, include_scatter=include_scatter).ravel()] = True

    key = (sample * n_crystals + channel) * n_steps + step
    order = np.argsort(key, kind="stable")
    first = np.r_[True, key[order][1:] != key[order][:-1]]
    rows = order[first]
    # a spike is a target when any of its singles is
    group = np.cumsum(first) - 1
    label = np.zeros(len(rows), dtype=np.uint8)
    np.maximum.at(label, group, target[order].astype(np.uint8))
    return SpikeEncoding(
        sample=sample[rows],
        step=step[rows],
        channel=channel[rows],
        label=label,
        single=rows,
        single_sample=sample,
        single_step=step,
        single_channel=channel,
        n_samples=int(sample.max()) + 1,
        n_steps=n_steps,
        n_channels=n_crystals,
        bin_ns=float(bin_ns),
        start_s=start,
        merged=int(len(t) - len(rows)),
    )


def singles_channels(
    singles: GateTree,
    *,
    n_crystals: int,
    crystals_per_sector: int,
    crystals_per_ring: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Times (float64 s) and global crystals (the channels of :func:`encode_spikes`) of
    time-ordered singles, after the checks :func:`encode_spikes` makes."""
    n_crystals = positive_int("n_crystals", n_crystals)
    crystals_per_sector = positive_int("crystals_per_sector", crystals_per_sector)
    if crystals_per_ring is not None:
        crystals_per_ring = positive_int("crystals_per_ring", crystals_per_ring)
    singles.require(("time", "rsectorID", "crystalID", "eventID"))
    t = np.asarray(singles["time"], dtype=np.float64)
    if len(t) == 0:
        raise InputError("there are no singles to encode")
    check_singles(singles)
    if np.any(np.diff(t) < 0):
        raise InputError("single times are not monotonic", hint="sort the singles by time first")
    per = crystals_per_sector
    ring_size = crystals_per_ring if crystals_per_ring is not None else n_crystals
    rsector = np.asarray(singles["rsectorID"], dtype=np.int64)
    crystal = np.asarray(singles["crystalID"], dtype=np.int64)
    channel = (crystal // per) * ring_size + rsector * per + crystal % per
    if channel.min() < 0 or channel.max() >= n_crystals:
        raise InputError(
            f"crystal indices fall outside 0 … {n_crystals - 1}", hint="check the scanner geometry"
        )
    return t, channel


Spikes = np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]


def _coords(pred: Spikes, samples: np.ndarray | None, n_samples: int) -> tuple[np.ndarray, ...]:
    if isinstance(pred, tuple):  # (sample, step, channel) coordinates, samples already absolute
        return tuple(np.asarray(p, dtype=np.int64) for p in pred)
    s, step, channel = np.nonzero(np.asarray(pred) > 0.5)
    chosen = np.arange(n_samples) if samples is None else np.asarray(samples)
    return chosen[s], step, channel


def spikes_to_singles(
    pred: Spikes, encoding: SpikeEncoding, *, samples: np.ndarray | None = None, tolerance_steps: int = 0
) -> np.ndarray:
    """Rows of the singles that predicted spikes point at: a dense [samples, steps, channels]
    array (its samples are ``samples``, default all) or (sample, step, channel) coordinates as
    :meth:`hai.pet.PETNet.predict_spikes` returns them.

    A predicted spike selects the input spike on the same channel and sample that is nearest in
    time, if within ``tolerance_steps``.
    """
    ps, pt, pc = _coords(pred, samples, encoding.n_samples)
    span = encoding.n_steps + 2 * tolerance_steps + 1
    in_key = (encoding.sample * encoding.n_channels + encoding.channel) * span + encoding.step
    order = np.argsort(in_key)
    sorted_key = in_key[order]
    q = (ps * encoding.n_channels + pc) * span + pt
    pos = np.searchsorted(sorted_key, q)
    best = np.full(len(q), -1)
    best_d = np.full(len(q), tolerance_steps + 1)
    for cand in (pos - 1, pos):
        ok = (cand >= 0) & (cand < len(sorted_key))
        c = np.clip(cand, 0, max(len(sorted_key) - 1, 0))
        d = np.abs(sorted_key[c] - q) if len(sorted_key) else np.full(len(q), tolerance_steps + 1)
        better = ok & (d < best_d)
        best[better], best_d[better] = c[better], d[better]
    hit = best >= 0
    return np.unique(encoding.single[order[best[hit]]])


def spikes_to_pairs(
    pred: Spikes,
    encoding: SpikeEncoding,
    singles: GateTree,
    *,
    window_ns: float,
    samples: np.ndarray | None = None,
    tolerance_steps: int = 0,
) -> np.ndarray:
    """Coincidence pairs (rows of ``singles``) from predicted spikes: the selected singles are
    chained in time (gap ≤ ``window_ns``) and chains of exactly two become pairs."""
    rows = spikes_to_singles(pred, encoding, samples=samples, tolerance_steps=tolerance_steps)
    if len(rows) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    chosen = singles.select(rows)
    return rows[sort_scw(chosen, window_ns).pairs]


@dataclass(frozen=True)
class SpikeMetrics:
    """Spike-level matches: a predicted spike matches a target on the same channel within the
    tolerance (exact matches first, then offsets 1, 2, …)."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def spike_metrics(pred: np.ndarray, target: np.ndarray, *, tolerance_steps: int = 40) -> SpikeMetrics:
    """Spike-level precision, recall and F1 of dense [samples, steps, channels] spike arrays.

    >>> p = np.zeros((1, 10, 2)); t = np.zeros((1, 10, 2))
    >>> p[0, 3, 0] = p[0, 9, 1] = 1; t[0, 5, 0] = 1
    >>> m = spike_metrics(p, t, tolerance_steps=2)
    >>> (m.tp, m.fp, m.fn)
    (1, 1, 0)
    """
    pred = np.asarray(pred) > 0.5
    target = np.asarray(target) > 0.5
    if pred.shape != target.shape or pred.ndim != 3:
        raise InputError(
            f"pred and target must share one shape [samples, steps, channels]: {pred.shape}, {target.shape}"
        )
    n_steps = pred.shape[1]
    span = n_steps + 2 * tolerance_steps + 1

    def keys(mask: np.ndarray) -> np.ndarray:
        s, t, c = np.nonzero(mask)
        return (s * pred.shape[2] + c) * span + t + tolerance_steps

    p_keys, t_keys = keys(pred), keys(target)
    p_free = np.ones(len(p_keys), dtype=bool)
    t_free = np.ones(len(t_keys), dtype=bool)
    for offset in [0, *(x for d in range(1, tolerance_steps + 1) for x in (d, -d))]:
        shifted = p_keys + offset
        cand = p_free & np.isin(shifted, t_keys[t_free])
        # one target per prediction and vice versa: keep the first prediction per target key
        _, first = np.unique(shifted[cand], return_index=True)
        chosen = np.flatnonzero(cand)[first]
        p_free[chosen] = False
        t_free[np.isin(t_keys, shifted[chosen])] = False
    tp = int((~p_free).sum())
    fp, fn = len(p_keys) - tp, len(t_keys) - tp
    precision = tp / len(p_keys) if len(p_keys) else 0.0
    recall = tp / len(t_keys) if len(t_keys) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SpikeMetrics(tp, fp, fn, precision, recall, f1)

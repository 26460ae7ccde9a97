"""Spread calibration: widen (or narrow) each quantile's distance from the median so that the
validation part is covered at every nominal level.

Why: the reference's ``sampling_std`` is one number tuned on validation CRPS, and with its
multiplicative latent noise ``ẑ·N(1, σ)`` the spread grows with ``|ẑ|``; the σ that minimises
CRPS gave 80 % intervals that covered 35–65 % of the test part (README, *AutoPQ benchmark*).
A single σ cannot fix both the width and the shape of the spread, so after tuning, each level
``τ`` gets its own factor ``s_τ ≥ 0`` per horizon step:

    q'_τ = m + s_τ · (q_τ − m),  m = q_0.5 (the median is left as it is)

with ``s_τ`` the value at which exactly a fraction ``τ`` of the validation observations lies
below ``q'_τ``. That has a closed form: with ``r = (y − m) / (q_τ − m)``, an observation lies
below ``q'_τ`` when ``r > s`` (levels under the median, ``q_τ < m``) or ``r < s`` (above it),
so ``s_τ`` is the ``1 − τ`` resp. ``τ`` empirical quantile of ``r``. Observations whose
quantile equals the median (``q_τ = m``, e.g. PV at night, clipped to 0) are not moved by any
factor and are left out of the fit. It is the scale form of conformalised quantile regression
(Romano et al. 2019, per level and step); scaling the cINN's own spread keeps its conditional
shape (wider where the cINN is less sure), which an additive conformal shift does not. Hand-
written because it is a dozen numpy lines on AutoPQ's own quantile arrays.

>>> import numpy as np
>>> levels = (0.1, 0.5, 0.9)
>>> rng = np.random.default_rng(0)
>>> y = rng.normal(size=(20000, 1))
>>> q = np.broadcast_to(np.array([-0.5, 0.0, 0.5]), (20000, 1, 3))  # too narrow: N(0, 1) has ±1.28
>>> cal = SpreadCalibration.fit(y, q, levels)
>>> np.round(cal.apply(q)[0, 0], 1)  # the 10 % and 90 % quantiles of N(0, 1): ±1.28
array([-1.3,  0. ,  1.3])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hai.shared import InputError

#: Levels whose factor is not fitted (the median stays where the cINN puts it).
MEDIAN = 0.5
#: Fewer usable validation observations than this for a level and step: keep its factor at 1.
MIN_OBSERVATIONS = 20


@dataclass(frozen=True)
class SpreadCalibration:
    """Per horizon step and level factors ``(horizon, len(levels))`` applied by :meth:`apply`."""

    levels: tuple[float, ...]
    factors: np.ndarray

    @classmethod
    def identity(cls, horizon: int, levels: tuple[float, ...]) -> SpreadCalibration:
        return cls(tuple(levels), np.ones((int(horizon), len(levels))))

    @classmethod
    def fit(cls, obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...]) -> SpreadCalibration:
        """Fit on observations ``(n, horizon)`` and their quantiles ``(n, horizon, levels)``."""
        y = np.asarray(obs, dtype=float)
        q = np.asarray(q, dtype=float)
        if q.ndim != 3 or y.shape != q.shape[:2] or q.shape[2] != len(levels):
            raise InputError(
                f"calibration needs observations (n, horizon) and quantiles (n, horizon, {len(levels)}), "
                f"got {y.shape} and {q.shape}"
            )
        if MEDIAN not in levels:
            raise InputError("spread calibration needs the 0.5 level among the quantile levels")
        m = q[..., levels.index(MEDIAN)]
        factors = np.ones((q.shape[1], len(levels)))
        for j, tau in enumerate(levels):
            if tau == MEDIAN:
                continue
            d = q[..., j] - m
            for step in range(q.shape[1]):
                usable = (d[:, step] < 0) if tau < MEDIAN else (d[:, step] > 0)
                if usable.sum() < MIN_OBSERVATIONS:
                    continue
                r = (y[usable, step] - m[usable, step]) / d[usable, step]
                factors[step, j] = max(0.0, float(np.quantile(r, 1.0 - tau if tau < MEDIAN else tau)))
        return cls(tuple(levels), factors)

    def apply(self, q: np.ndarray, limits: tuple[float | None, float | None] = (None, None)) -> np.ndarray:
        """Calibrated quantiles (same shape as ``q``, levels last); no crossing, within ``limits``."""
        q = np.asarray(q, dtype=float)
        if q.shape[-2:] != self.factors.shape:
            raise InputError(
                f"these quantiles have (horizon, levels) {q.shape[-2:]}, the calibration {self.factors.shape}"
            )
        m = q[..., self.levels.index(MEDIAN)][..., None]
        out = np.maximum.accumulate(m + self.factors * (q - m), axis=-1)
        low, high = limits
        if low is not None or high is not None:
            out = np.clip(out, -np.inf if low is None else low, np.inf if high is None else high)
        return out

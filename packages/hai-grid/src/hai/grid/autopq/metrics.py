"""Scores of quantile forecasts: CRPS, pinball loss, interval coverage and width, MAE, PIT.

* CRPS treats the quantiles as ensemble members, as the reference does
  (``properscoring.crps_ensemble``): ``mean|X − y| − ½·mean|X − X'|`` over all member pairs.
* Pinball loss is scikit-learn's ``mean_pinball_loss`` per level, averaged over the levels.
* The 80 % interval is [q10, q90], the 98 % interval [q1, q99].

>>> import numpy as np
>>> round(float(crps_ensemble(np.array([0.0]), np.array([[-1.0, 1.0]]))[0]), 6)
0.5
>>> round(pinball_loss(np.array([1.0]), np.array([[0.0]]), (0.9,)), 6)
0.9
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hai.grid.autopq.quantiles import LEVELS


def crps_ensemble(obs: np.ndarray, members: np.ndarray) -> np.ndarray:
    """CRPS of each observation against its ensemble (members on the last axis)."""
    x = np.sort(np.asarray(members, dtype=float), axis=-1)
    y = np.asarray(obs, dtype=float)
    m = x.shape[-1]
    spread_to_obs = np.abs(x - y[..., None]).mean(axis=-1)
    # Σ_ij |x_i − x_j| / m² from the sorted members: Σ_i (2i − m − 1) x_(i) · 2 / m²
    weights = 2.0 * np.arange(1, m + 1) - m - 1
    pair = 2.0 * (x * weights).sum(axis=-1) / m**2
    return spread_to_obs - 0.5 * pair


def pinball_per_level(obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...] = LEVELS) -> np.ndarray:
    """``mean_pinball_loss`` (scikit-learn's definition) at each level; ``q`` has levels last."""
    y = np.asarray(obs, dtype=float)[..., None]
    diff = y - np.asarray(q, dtype=float)
    alpha = np.asarray(levels, dtype=float)
    loss = np.maximum(alpha * diff, (alpha - 1.0) * diff)
    return loss.reshape(-1, len(levels)).mean(axis=0)


def pinball_loss(obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...] = LEVELS) -> float:
    """Pinball loss averaged over the levels."""
    return float(pinball_per_level(obs, q, levels).mean())


def _level(levels: tuple[float, ...], value: float) -> int:
    for i, level in enumerate(levels):
        if abs(level - value) < 1e-9:
            return i
    raise ValueError(f"level {value} is not among the quantile levels")


def interval(
    obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...], lower: float, upper: float
) -> tuple[float, float]:
    """Coverage (fraction of observations inside) and mean width of ``[q_lower, q_upper]``."""
    lo = np.asarray(q)[..., _level(levels, lower)]
    hi = np.asarray(q)[..., _level(levels, upper)]
    y = np.asarray(obs)
    return float(np.mean((y >= lo) & (y <= hi))), float(np.mean(hi - lo))


def pit_histogram(
    obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...] = LEVELS
) -> tuple[np.ndarray, np.ndarray]:
    """Frequency of observations between consecutive quantiles, divided by the nominal
    probability of each bin (1 everywhere for a calibrated forecast), and the bin edges."""
    y = np.asarray(obs, dtype=float)[..., None]
    below = (y > np.asarray(q)).sum(axis=-1).ravel()  # number of quantiles below each observation
    counts = np.bincount(below, minlength=len(levels) + 1).astype(float)
    edges = np.concatenate([[0.0], levels, [1.0]])
    nominal = np.diff(edges)
    return counts / counts.sum() / nominal, edges


def score(obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...] = LEVELS) -> dict[str, Any]:
    """All scores of quantile forecasts ``q`` (…, levels) of ``obs`` (…), as a dict of floats."""
    cov80, width80 = interval(obs, q, levels, 0.10, 0.90)
    cov98, width98 = interval(obs, q, levels, 0.01, 0.99)
    median = np.asarray(q)[..., _level(levels, 0.5)]
    return {
        "crps": float(crps_ensemble(obs, q).mean()),
        "pinball": pinball_loss(obs, q, levels),
        "mae_median": float(np.mean(np.abs(np.asarray(obs) - median))),
        "coverage_80": cov80,
        "width_80": width80,
        "coverage_98": cov98,
        "width_98": width98,
        "n": int(np.asarray(obs).size),
    }

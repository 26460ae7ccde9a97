"""Spread calibration: closed form on a Gaussian, in-sample coverage, no crossing, limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from hai.grid.autopq.calibration import SpreadCalibration
from hai.grid.autopq.quantiles import LEVELS
from hai.shared import InputError


def _narrow_gaussian(n: int, horizon: int, width: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observations N(μ, 1) and quantiles of N(μ, width²) around the right median."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, horizon)) * 3
    y = mu + rng.normal(size=(n, horizon))
    q = mu[..., None] + width * norm.ppf(np.array(LEVELS))
    return y, q


def test_too_narrow_gaussian_quantiles_become_the_true_ones() -> None:
    y, q = _narrow_gaussian(20_000, 2, width=0.3)
    cal = SpreadCalibration.fit(y, q, LEVELS)
    others = [j for j, level in enumerate(LEVELS) if level != 0.5]
    np.testing.assert_allclose(cal.factors[:, others], 1 / 0.3, rtol=0.06)  # width 0.3 → 1
    np.testing.assert_array_equal(cal.factors[:, 8], 1.0)  # the median is not moved
    y2, q2 = _narrow_gaussian(20_000, 2, width=0.3, seed=1)
    out = cal.apply(q2)
    true = (q2[..., 8:9]) + norm.ppf(np.array(LEVELS))
    np.testing.assert_allclose(out, true, atol=0.08)
    # held-out coverage of the 80 % and 98 % intervals
    inside80 = ((y2 >= out[..., 2]) & (y2 <= out[..., 14])).mean()
    inside98 = ((y2 >= out[..., 0]) & (y2 <= out[..., 16])).mean()
    assert inside80 == pytest.approx(0.80, abs=0.01)
    assert inside98 == pytest.approx(0.98, abs=0.005)


def test_in_sample_every_level_is_met_per_step() -> None:
    rng = np.random.default_rng(3)
    n, horizon = 3000, 4
    y = rng.gamma(2.0, size=(n, horizon)) * np.arange(1, horizon + 1)  # skewed, wider per step
    # quantiles of the wrong (symmetric) shape and a random width per point, right median
    width = rng.uniform(0.1, 1.0, size=(n, horizon, 1))
    q = np.median(y, axis=0)[None, :, None] + width * norm.ppf(np.array(LEVELS))
    out = SpreadCalibration.fit(y, q, LEVELS).apply(q)
    below = (y[..., None] < out).mean(axis=0)
    for j, level in enumerate(LEVELS):
        if level != 0.5:
            np.testing.assert_allclose(below[:, j], level, atol=2 / n)


def test_no_crossing_median_kept_and_limits() -> None:
    y, q = _narrow_gaussian(500, 3, width=2.0)  # too wide: factors below 1
    cal = SpreadCalibration.fit(y, q, LEVELS)
    assert (cal.factors[:, [j for j, v in enumerate(LEVELS) if v != 0.5]] < 1).all()
    out = cal.apply(q, (0.0, None))
    assert (np.diff(out, axis=-1) >= 0).all()
    assert out.min() >= 0.0
    np.testing.assert_array_equal(out[..., 8], np.clip(q[..., 8], 0, None))


def test_quantiles_equal_to_the_median_are_left_out_and_kept() -> None:
    # PV at night: every quantile 0 (clipped), observation 0; the day points set the factors.
    y, q = _narrow_gaussian(400, 1, width=0.5)
    q[:200] = 0.0
    y[:200] = 0.0
    cal = SpreadCalibration.fit(y, q, LEVELS)
    assert np.isfinite(cal.factors).all()
    np.testing.assert_array_equal(cal.apply(q)[:200], 0.0)
    # too few usable observations for a level: factor stays 1
    few = SpreadCalibration.fit(y[190:205], q[190:205], LEVELS)
    np.testing.assert_array_equal(few.factors, 1.0)


def test_identity_changes_nothing_and_bad_shapes_are_refused() -> None:
    _, q = _narrow_gaussian(10, 24, width=1.0)
    np.testing.assert_array_equal(SpreadCalibration.identity(24, LEVELS).apply(q), q)
    with pytest.raises(InputError, match="quantiles"):
        SpreadCalibration.fit(np.zeros((10, 24)), np.zeros((10, 24, 3)), LEVELS)
    with pytest.raises(InputError, match="calibration"):
        SpreadCalibration.identity(12, LEVELS).apply(q)
    with pytest.raises(InputError, match=r"0\.5"):
        SpreadCalibration.fit(np.zeros((10, 1)), np.zeros((10, 1, 2)), (0.1, 0.9))

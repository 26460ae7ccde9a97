"""AutoPQ metrics equal the reference libraries on fixed arrays."""

from __future__ import annotations

import numpy as np
import pytest

from hai.grid.autopq import metrics
from hai.grid.autopq.quantiles import LEVELS


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(40, 24))
    q = np.sort(obs[..., None] + rng.normal(size=(40, 24, 17)), axis=-1)
    return obs, q


def test_crps_equals_properscoring(arrays) -> None:
    properscoring = pytest.importorskip("properscoring")
    obs, q = arrays
    np.testing.assert_allclose(metrics.crps_ensemble(obs, q), properscoring.crps_ensemble(obs, q), rtol=1e-12)


def test_crps_of_a_point_is_the_absolute_error() -> None:
    np.testing.assert_allclose(metrics.crps_ensemble(np.array([1.0, -2.0]), np.zeros((2, 5))), [1.0, 2.0])


def test_pinball_equals_sklearn(arrays) -> None:
    from sklearn.metrics import mean_pinball_loss

    obs, q = arrays
    per_level = metrics.pinball_per_level(obs, q)
    ref = [mean_pinball_loss(obs.ravel(), q[..., i].ravel(), alpha=a) for i, a in enumerate(LEVELS)]
    np.testing.assert_allclose(per_level, ref, rtol=1e-12)
    assert metrics.pinball_loss(obs, q) == pytest.approx(np.mean(ref))


def test_coverage_width_mae_and_pit() -> None:
    obs = np.array([0.5, 5.0, -5.0, 0.0])
    q = np.tile(np.linspace(-1, 1, 17), (4, 1))
    s = metrics.score(obs, q)
    assert s["coverage_98"] == 0.5
    assert s["width_98"] == pytest.approx(2.0)
    assert s["coverage_80"] == 0.5
    assert s["width_80"] == pytest.approx(2 * 0.75)
    assert s["mae_median"] == pytest.approx((0.5 + 5 + 5 + 0) / 4)
    hist, edges = metrics.pit_histogram(obs, q)
    assert len(edges) == 19
    assert np.sum(hist * np.diff(edges)) == pytest.approx(1.0)


def test_calibrated_gaussian_quantiles_cover_nominally() -> None:
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    obs = rng.normal(size=200_000)
    q = np.broadcast_to(norm.ppf(LEVELS), (obs.size, 17))
    s = metrics.score(obs, q)
    assert s["coverage_80"] == pytest.approx(0.8, abs=0.005)
    assert s["coverage_98"] == pytest.approx(0.98, abs=0.002)
    hist, _ = metrics.pit_histogram(obs, q)
    np.testing.assert_allclose(hist, 1.0, atol=0.1)

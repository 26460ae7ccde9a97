"""Rolling-origin backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hai.forecast import (
    AUTO_BASELINES,
    LastProfile,
    ReCycle,
    SeasonalNaive,
    backtest,
    mae,
    make_baseline,
    synthetic_cyclic,
)
from hai.shared import InputError


@pytest.fixture(scope="module")
def y() -> pd.Series:
    return synthetic_cyclic(n_cycles=50, noise=0.05, seed=3)


def test_seasonal_naive_backtest_by_hand(y: pd.Series) -> None:
    result = backtest(SeasonalNaive(), y, test_fraction=0.2)
    assert result.n_origins == 10
    assert result.n_train_steps == 40 * 24
    assert result.origins[0] == y.index[40 * 24]
    values = y.to_numpy()
    truth = np.stack([values[o : o + 24] for o in range(960, 1200, 24)])
    naive = np.stack([values[o - 24 : o] for o in range(960, 1200, 24)])
    np.testing.assert_array_equal(result.truth[..., 0], truth)
    np.testing.assert_array_equal(result.forecast[..., 0], naive)
    assert result.metrics["mae"] == pytest.approx(mae(truth, naive))
    assert result.metrics["mase_day"] == 1.0
    week = np.stack([values[o - 7 * 24 : o - 6 * 24] for o in range(960, 1200, 24)])
    np.testing.assert_array_equal(result.reference_week[..., 0], week)  # type: ignore[index]
    assert result.metrics["mase"] == pytest.approx(mae(truth, naive) / mae(truth, week))
    assert result.fit_cost is not None
    assert result.predict_cost.wall_s >= 0


def test_last_profile_beats_seasonal_naive_on_weekly_data(y: pd.Series) -> None:
    result = backtest(LastProfile(), y)
    assert result.metrics["mase_day"] < 0.9  # weekends are not forecast by the day before
    assert result.reference_week is not None
    window = result.window(0)
    assert list(window.columns) == ["truth", "forecast", "seasonal_naive"]
    assert window.index[0] == result.origins[0]


def test_recycle_backtest_reports_baseline_and_costs(y: pd.Series) -> None:
    model = ReCycle(epochs=2, patience=None, d_model=16, nhead=2, dim_feedforward=32)
    result = backtest(model, y, step_cycles=2)
    assert result.n_origins == 5
    assert result.baseline is not None
    # the default base, auto, chose one of its candidates; result.baseline is that baseline's forecast
    assert result.extra["baseline"] in AUTO_BASELINES
    assert sorted(result.extra["baseline_scores"]) == sorted(AUTO_BASELINES)
    base = backtest(make_baseline(result.extra["baseline"]), y, step_cycles=2)
    np.testing.assert_array_equal(result.baseline, base.forecast)
    assert result.extra["baseline_metrics"]["mae"] == pytest.approx(base.metrics["mae"])
    d = result.to_dict()
    assert d["model"] == "recycle"
    assert d["epochs_run"] == 2
    assert d["fit"]["wall_s"] > 0
    assert set(d["metrics"]) == {"mae", "rmse", "mape", "mase", "mase_day", "nse", "rpe"}
    assert "baseline" in result.window(-1).columns


def test_backtest_errors(y: pd.Series) -> None:
    with pytest.raises(InputError, match="test_fraction"):
        backtest(SeasonalNaive(), y, test_fraction=1.0)
    with pytest.raises(InputError, match="shorter than the horizon"):
        backtest(SeasonalNaive(horizon_cycles=5), y, test_fraction=0.05)
    with pytest.raises(InputError, match=r"hai\.forecast model"):
        backtest(object(), y)  # type: ignore[arg-type]

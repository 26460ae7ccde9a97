"""AutoPQ point forecasters: exact forecasts on known patterns, no look-ahead, references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hai.grid.autopq.data import synthetic_series, windows
from hai.grid.autopq.forecasters import FORECASTERS, lag_features, make_forecaster
from hai.shared import InputError


@pytest.fixture(scope="module")
def load() -> pd.Series:
    return synthetic_series("load", weeks=5, seed=1)


def test_seasonal_naive_and_profile_on_a_weekly_pattern() -> None:
    idx = pd.date_range("2024-01-01", periods=168 * 4, freq="h")
    y = pd.Series(np.tile(np.arange(168.0), 4), index=idx)
    origins = np.array([400, 500])
    truth = windows(y.to_numpy(), origins, 24)
    for name in ("seasonal_naive", "profile"):
        f = make_forecaster(name).fit(y.iloc[:336])
        np.testing.assert_allclose(f.predict(y, origins), truth)
    daily = make_forecaster("seasonal_naive", season=24).fit(y.iloc[:336])
    np.testing.assert_allclose(daily.predict(y, origins), windows(y.to_numpy(), origins, 24, -24))


def test_linear_equals_sklearn_ridge_on_the_lag_features(load: pd.Series) -> None:
    from sklearn.linear_model import Ridge

    train = load.iloc[:500]
    f = make_forecaster("linear", alpha=0.5).fit(train)
    origins = np.arange(168, 500 - 24 + 1)
    ridge = Ridge(alpha=0.5).fit(
        lag_features(train.to_numpy(), train.index, origins), windows(train.to_numpy(), origins, 24)
    )
    test = np.array([600, 700])
    np.testing.assert_allclose(
        f.predict(load, test), ridge.predict(lag_features(load.to_numpy(), load.index, test)), rtol=1e-10
    )


def test_ets_equals_statsmodels_forecast_from_each_origin(load: pd.Series) -> None:
    f = make_forecaster("ets").fit(load.iloc[:500])
    assert 0.0 < f.params_[0] < 1.0  # smoothing_level
    for origin in (72, 600, 800):
        expected = f.model(load.to_numpy()[:origin]).smooth(f.params_).forecast(24)
        np.testing.assert_allclose(f.predict(load, np.array([origin]))[0], expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_no_forecaster_reads_the_future(name: str, load: pd.Series) -> None:
    if name == "lightgbm":
        pytest.importorskip("lightgbm")
    params = {"max_iter": 30} if name == "mlp" else {"n_estimators": 10} if name == "lightgbm" else {}
    f = make_forecaster(name, **params).fit(load.iloc[:500])
    origins = np.array([600, 650])
    blind = load.copy()
    blind.iloc[650:] = np.nan
    a = f.predict(load, origins)
    b = f.predict(blind, origins)
    assert a.shape == (2, 24)
    assert np.isfinite(b).all()
    np.testing.assert_allclose(a, b)
    # and they forecast: better than the series mean
    truth = windows(load.to_numpy(), origins, 24)
    assert np.abs(a - truth).mean() < np.abs(load.mean() - truth).mean()


def test_unknown_forecaster_and_bad_parameters() -> None:
    with pytest.raises(InputError, match="unknown forecaster 'arima'"):
        make_forecaster("arima")
    with pytest.raises(InputError, match="bad hyperparameters"):
        make_forecaster("linear", depth=3)


def test_too_short_training_part(load: pd.Series) -> None:
    with pytest.raises(InputError, match="training hours"):
        make_forecaster("linear").fit(load.iloc[:190])

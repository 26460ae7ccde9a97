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


def _holiday_week_pattern() -> pd.Series:
    """Spring 2016, hourly: 1.0 in working-day daytime, 0.2 on Sundays and on North
    Rhine-Westphalia's holidays (Ascension 5 May, Whit Monday 16 May, Corpus Christi 26 May)."""
    from hai.grid.autopq.data import day_of_week

    idx = pd.date_range("2016-04-01", "2016-06-10 23:00", freq="h")
    sunday = day_of_week(idx, "DE-NW") == 6
    day = (idx.hour >= 8) & (idx.hour < 18)
    return pd.Series(np.where(sunday, 0.2, np.where(day, 1.0, 0.5)), index=idx)


def test_holiday_calendar_gives_holidays_the_sunday_profile() -> None:
    pytest.importorskip("holidays")
    y = _holiday_week_pattern()
    corpus_christi = np.array([y.index.get_loc(pd.Timestamp("2016-05-26 00:00"))])
    train = y.iloc[: corpus_christi[0]]
    with_calendar = make_forecaster("profile", holidays="DE-NW").fit(train).predict(y, corpus_christi)[0]
    without = make_forecaster("profile").fit(train).predict(y, corpus_christi)[0]
    np.testing.assert_allclose(with_calendar, 0.2)  # the day's truth
    assert without[12] > 0.8  # a Thursday's noon without the calendar (ascension pulls it under 1)


def test_lag_features_with_a_holiday_calendar() -> None:
    pytest.importorskip("holidays")
    y = _holiday_week_pattern()
    values, index = y.to_numpy(), pd.DatetimeIndex(y.index)
    origins = np.array([y.index.get_loc(pd.Timestamp(t)) for t in ("2016-05-25 12:00", "2016-05-23 00:00")])
    plain, cal = lag_features(values, index, origins), lag_features(values, index, origins, "DE-NW")
    assert plain.shape == (2, 24 + 24 + 7 + 48)
    assert cal.shape == (2, 24 + 24 + 7 + 48 + 5)
    # the first columns are the plain ones with holidays as Sundays; the first origin's first
    # step is an ordinary Wednesday, so its calendar columns agree
    np.testing.assert_array_equal(cal[0, :103], plain[0, :103])
    # extra columns: weekday sin/cos and weekend flag of the last step, then the weekend flags
    # one week before the first and the last step
    last = index[origins[0] + 23]  # Thursday 26 May 11:00, Corpus Christi: a Sunday
    assert last.dayofweek == 3
    np.testing.assert_allclose(cal[0, 103:106], [np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7), 1.0])
    assert list(cal[0, 106:]) == [-1.0, -1.0]  # 18 and 19 May were working days
    assert list(cal[1, 106:]) == [1.0, 1.0]  # one week before Monday 23 May: Whit Monday


def test_same_hour_features_are_the_last_weeks_max_and_mean() -> None:
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-03-01", periods=24 * 20, freq="h")
    values = rng.random(len(idx))
    origins = np.array([200, 333])
    x = lag_features(values, idx, origins)
    for row, o in enumerate(origins):
        for h in (0, 7, 23):
            days = [values[o + h - 24 * k] for k in range(1, 8)]  # all before the origin
            assert x[row, 55 + h] == max(days)
            assert x[row, 79 + h] == pytest.approx(np.mean(days), rel=1e-12)


def test_learned_forecasters_see_the_holidays() -> None:
    pytest.importorskip("holidays")
    y = _holiday_week_pattern()
    origin = np.array([y.index.get_loc(pd.Timestamp("2016-05-26 00:00"))])
    train = y.iloc[: origin[0]]
    noon = make_forecaster("linear", holidays="DE-NW", alpha=1e-6).fit(train).predict(y, origin)[0, 12]
    assert abs(noon - 0.2) < 0.1, noon

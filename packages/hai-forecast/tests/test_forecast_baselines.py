"""Baselines: closed-form forecasts, day types, timestamps, history errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hai.forecast import (
    BASELINES,
    LastProfile,
    Persistence,
    SameTypeMean,
    SeasonalNaive,
    TenDayMean,
    make_baseline,
    rhp_profile,
    synthetic_cyclic,
)
from hai.shared import InputError


def day_values(n_days: int, start: str = "2024-01-01") -> pd.Series:
    """Hourly series whose value is the day number plus hour / 100 (2024-01-01 is a Monday)."""
    idx = pd.date_range(start, periods=24 * n_days, freq="h")
    values = np.arange(n_days).repeat(24) + np.tile(np.arange(24) / 100, n_days)
    return pd.Series(values, index=idx, name="load")


def day_of(forecast: pd.Series) -> float:
    """The day number a constant-day forecast was copied from."""
    days = np.floor(forecast.to_numpy() + 1e-9)
    assert (days == days[0]).all()
    return float(days[0])


def test_persistence_and_seasonal_naive() -> None:
    y = day_values(3)
    p = Persistence().fit(y).predict(y)
    assert (p == y.iloc[-1]).all()
    s = SeasonalNaive().fit(y).predict(y)
    assert s.tolist() == y.iloc[-24:].tolist()
    assert s.index[0] == pd.Timestamp("2024-01-04 00:00")
    assert s.index[-1] == pd.Timestamp("2024-01-04 23:00")
    assert s.name == "load"


def test_last_profile_follows_day_types() -> None:
    # 14 days from Monday 1 January: the next day is Monday 15 -> the last workday, Friday 12 (day 11)
    y = day_values(14)
    assert day_of(LastProfile().fit(y).predict(y)) == 11
    # cut after Friday 12 (day 11): Saturday 13 -> last Saturday, 6 January (day 5)
    assert day_of(LastProfile().fit(y).predict(y.iloc[: 12 * 24])) == 5
    # cut after Saturday 13: Sunday 14 -> last Sunday, 7 January (day 6)
    assert day_of(LastProfile().fit(y).predict(y.iloc[: 13 * 24])) == 6


def test_holidays_count_as_sundays() -> None:
    # 2024-12-18 (Wed) … 2025-01-01: forecast Thursday 2 January 2025 (workday).
    y = day_values(15, start="2024-12-18")
    hist = y.iloc[: 14 * 24 + 24]  # up to and including Wednesday 1 January (a holiday in DE)
    plain = LastProfile().fit(hist).predict(hist)
    german = LastProfile(country="DE").fit(hist).predict(hist)
    assert day_of(plain) == 14  # 1 January is a Wednesday, a workday without holidays
    assert day_of(german) == 13  # with DE holidays the last workday is Tuesday 31 December
    # a holiday forecast by the last Sunday/holiday: Wednesday 25 December after Tue 24
    hist = y.iloc[: 7 * 24]  # 18 … 24 December
    assert day_of(LastProfile(country="DE").fit(hist).predict(hist)) == 4  # Sunday 22 December


def test_same_type_mean_and_ten_day_mean() -> None:
    y = day_values(21)  # Monday 1 … Sunday 21 January; next: Monday 22
    st = SameTypeMean(k=3).fit(y).predict(y)
    # last three workdays: Wed 17, Thu 18, Fri 19 = days 16, 17, 18 -> mean day 17
    np.testing.assert_allclose(st.to_numpy(), 17 + np.arange(24) / 100)
    td = TenDayMean().fit(y).predict(y)
    np.testing.assert_allclose(td.to_numpy(), np.mean(np.arange(11, 21)) + np.arange(24) / 100)
    np.testing.assert_allclose(TenDayMean(days=2).fit(y).predict(y).to_numpy(), 19.5 + np.arange(24) / 100)


def test_multi_cycle_horizon_uses_history_only() -> None:
    y = day_values(14)
    f = LastProfile(horizon_cycles=3).fit(y).predict(y)  # Mon 15, Tue 16, Wed 17
    assert len(f) == 72
    days = np.floor(f.to_numpy() + 1e-9).reshape(3, 24)[:, 0]
    assert days.tolist() == [11, 11, 11]  # all from the last workday in the history
    s = SeasonalNaive(horizon_cycles=2).fit(y).predict(y)
    assert s.tolist() == y.iloc[-24:].tolist() * 2


def test_rhp_profile_fallback_and_errors() -> None:
    past = np.arange(6.0).reshape(3, 2, 1)
    # no Saturday (1) in the past -> the last cycle
    assert rhp_profile("last_profile", past, np.array([0, 0, 0]), np.array([1]))[0, :, 0].tolist() == [
        4.0,
        5.0,
    ]
    with pytest.raises(InputError, match="unknown baseline"):
        rhp_profile("median", past, np.zeros(3), np.zeros(1))
    with pytest.raises(InputError, match="at least one past cycle"):
        rhp_profile("seasonal_naive", past[:0], np.zeros(0), np.zeros(1))


def test_dataframe_in_dataframe_out() -> None:
    y = synthetic_cyclic(n_cycles=8, n_series=2)
    f = SeasonalNaive().fit(y).predict(y)
    assert isinstance(f, pd.DataFrame)
    assert list(f.columns) == ["load_0", "load_1"]
    np.testing.assert_array_equal(f.to_numpy(), y.iloc[-24:].to_numpy())


def test_history_errors() -> None:
    y = day_values(14)
    model = SameTypeMean(k=2).fit(y)
    with pytest.raises(InputError, match=r"at least 336 steps of history \(14 cycles"):
        model.predict(y.iloc[:-1])
    with pytest.raises(InputError, match="not fitted"):
        LastProfile().predict(y)
    with pytest.raises(InputError, match="step of 0 days 00:30:00"):
        model.predict(y.resample("30min").ffill())
    with pytest.raises(InputError, match="does not match the sampling"):
        LastProfile(cycle_length=48).fit(y)
    with pytest.raises(InputError, match="k must be an integer"):
        SameTypeMean(k=0).fit(y)


def test_registry() -> None:
    assert set(BASELINES) == {
        "persistence",
        "seasonal_naive",
        "weekly_naive",
        "last_profile",
        "same_type_mean",
        "ten_day_mean",
    }
    assert isinstance(make_baseline("ten_day_mean", days=5), TenDayMean)
    assert make_baseline("same_type_mean", k=4).get_params()["k"] == 4
    with pytest.raises(InputError, match="unknown baseline"):
        make_baseline("prophet")

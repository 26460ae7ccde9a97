"""AutoPQ data: hourly checks, aggregation, SimBench profiles, calendar, split, windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hai.grid.autopq import data
from hai.shared import InputError, MissingPackageError


def _series(n: int = 24 * 21, freq: str = "h") -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=n, freq=freq)
    return pd.Series(np.arange(n, dtype=float), index=idx)


def test_split_is_the_references() -> None:
    s = data.split_points(1000)
    assert (s.train_end, s.val_end) == (560, 800)  # test 200 = 20 %, val 240 = 30 % of 800
    origins = s.origins("val", horizon=24, history=168)
    assert origins[0] == 560
    assert origins[-1] == 800 - 24
    assert s.origins("train", horizon=24, history=168)[0] == 168


def test_quarter_hours_are_averaged_per_hour() -> None:
    y = _series(4 * 24 * 15, "15min")
    out = data.hourly_series(y)
    assert len(out) == 24 * 15
    assert out.index.freqstr == "h"
    assert out.iloc[0] == pytest.approx(1.5)
    assert out.iloc[1] == pytest.approx(5.5)


def test_partial_first_hour_is_dropped() -> None:
    y = _series(4 * 24 * 15, "15min").iloc[2:]
    out = data.hourly_series(y)
    assert out.index[0] == pd.Timestamp("2024-01-01 01:00")
    assert out.iloc[0] == pytest.approx(5.5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda y: y.drop(y.index[100]), "not regular"),
        (lambda y: y.iloc[::-1], "strictly increasing"),
        (lambda y: y.where(y.index != y.index[50]), "non-finite"),
        (lambda y: y.iloc[: 24 * 13], "two weeks"),
        (lambda y: y.reset_index(drop=True), "DatetimeIndex"),
        (lambda y: y.resample("2h").mean(), "hourly"),
    ],
)
def test_bad_series_is_refused(mutate, message: str) -> None:
    with pytest.raises(InputError, match=message):
        data.hourly_series(mutate(_series()))


def test_csv_round_trip_and_errors(tmp_path) -> None:
    y = _series()
    path = tmp_path / "load.csv"
    y.rename("mw").to_csv(path, index_label="time")
    back = data.read_csv(path)
    np.testing.assert_array_equal(back.to_numpy(), y.to_numpy())
    assert back.name == "mw"
    with pytest.raises(InputError, match="no column"):
        data.read_csv(path, column="nope")
    with pytest.raises(InputError, match="does not exist"):
        data.read_csv(tmp_path / "missing.csv")


def test_calendar_features() -> None:
    idx = pd.DatetimeIndex(["2024-01-06 06:00", "2024-01-08 00:00"])  # Saturday 6 h, Monday 0 h
    cal = data.calendar_features(idx)
    np.testing.assert_allclose(cal[0, :2], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(cal[1, :4], [0.0, 1.0, 0.0, 1.0], atol=1e-12)
    assert list(cal[:, -1]) == [1.0, -1.0]


def test_windows_and_future_index() -> None:
    values = np.arange(10.0)
    np.testing.assert_array_equal(data.windows(values, np.array([3, 5]), 2, -1), [[2, 3], [4, 5]])
    idx = data.future_index(pd.date_range("2024-01-01", periods=3, freq="h"), 2)
    assert list(idx) == [pd.Timestamp("2024-01-01 03:00"), pd.Timestamp("2024-01-01 04:00")]


def test_horizon_the_data_cannot_support() -> None:
    split = data.split_points(336)
    with pytest.raises(InputError, match="horizon"):
        data.check_horizon(100, 336, split, history=168)


def test_simbench_profiles() -> None:
    pytest.importorskip("simbench")
    y = data.simbench_profile("pv:PV3")
    assert len(y) == 366 * 24
    assert y.index.freqstr == "h"
    assert y.min() >= 0.0
    assert y.max() > 0.0
    assert y[y.index.hour == 0].max() == 0.0  # no sun at midnight CET
    assert "H0-A" in data.simbench_profiles("load")
    with pytest.raises(InputError, match="known"):
        data.simbench_profile("load:NOPE")


def test_simbench_missing_names_the_extra(monkeypatch) -> None:
    import importlib.util

    from hai.shared import MissingPackageError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match="simbench"):
        data.simbench_profile("load:H0-A")


def test_synthetic_series() -> None:
    y = data.synthetic_series("pv", weeks=2)
    assert len(y) == 336
    assert y.min() >= 0
    assert y[y.index.hour == 2].max() == 0.0
    assert data.hourly_series(data.synthetic_series("load", weeks=2)).shape == (336,)


def test_holidays_are_sundays_in_the_calendar() -> None:
    pytest.importorskip("holidays")
    # 2016 in North Rhine-Westphalia: Corpus Christi (Thu 26 May), All Saints (Tue 1 Nov) and
    # Boxing Day (Mon 26 Dec) are holidays; Epiphany, 15 Aug and Reformation Day are not
    days = pd.DatetimeIndex(
        ["2016-05-26 12:00", "2016-11-01 03:00", "2016-12-26 23:00", "2016-01-06 12:00", "2016-08-15 12:00",
         "2016-10-31 12:00", "2016-05-27 12:00"]
    )  # fmt: skip
    assert list(data.is_holiday(days, "DE-NW")) == [True] * 3 + [False] * 4
    assert data.is_holiday(days[3:4], "DE-BY").all()  # Epiphany in Bavaria
    assert data.is_holiday(days[4:5], "de-sl").all()  # 15 August in Saarland (codes in any case)
    assert not data.is_holiday(days, None).any()
    np.testing.assert_array_equal(data.day_of_week(days, "DE-NW"), [6, 6, 6, 2, 0, 0, 4])
    np.testing.assert_array_equal(data.day_of_week(days), days.dayofweek.to_numpy())
    # a holiday's features are those of a Sunday at the same hour of the same month
    sundays = pd.DatetimeIndex(["2016-05-29 12:00", "2016-11-06 03:00", "2016-12-25 23:00"])
    np.testing.assert_allclose(
        data.calendar_features(days[:3], "DE-NW"), data.calendar_features(sundays), atol=1e-12
    )
    np.testing.assert_allclose(data.calendar_features(days[3:], "DE-NW"), data.calendar_features(days[3:]))
    with pytest.raises(InputError, match="unknown holiday calendar 'XX'"):
        data.is_holiday(days, "XX")
    with pytest.raises(InputError, match="unknown holiday calendar"):
        data.is_holiday(days, "DE-ZZ")


def test_simbench_load_profiles_follow_the_simbench_holidays() -> None:
    """SIMBENCH_HOLIDAYS is read off the data: the commercial profile G1-A drops to its Sunday
    level on every weekday holiday of that calendar, and not on other states' holidays."""
    pytest.importorskip("holidays")
    try:
        y = data.simbench_profile("load:G1-A")
    except MissingPackageError:
        pytest.skip("simbench is not installed")
    daily = y.resample("D").mean()
    days = pd.DatetimeIndex(daily.index)
    weekday = days.dayofweek.to_numpy() < 5
    holiday = data.is_holiday(days, data.SIMBENCH_HOLIDAYS)
    sunday_level = daily[days.dayofweek == 6].median()
    working_level = daily[weekday & ~holiday].median()
    assert working_level > 4 * sunday_level
    on_holidays = daily[weekday & holiday]
    assert len(on_holidays) >= 9  # New Year, Good Friday, Easter Monday, Ascension, ... Boxing Day
    assert (on_holidays < 2 * sunday_level).all(), on_holidays
    others = daily[pd.DatetimeIndex(["2016-01-06", "2016-08-15", "2016-10-31"])]  # BW/BY, BY/SL, east
    assert (others > 0.5 * working_level).all(), others

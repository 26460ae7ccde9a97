"""Data layer: validation and its errors, fill policies, CSV, resampling, splits, scaling, calendar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hai.forecast import (
    Scaler,
    as_frame,
    calendar_features,
    chronological_split,
    day_types,
    read_csv,
    regularize,
    resample,
    synthetic_cyclic,
)
from hai.shared import InputError


def hourly(values: list[float], start: str = "2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="h"), name="load")


def test_as_frame_returns_float_frame_with_freq() -> None:
    frame = as_frame(hourly([1.0, 2.0, 3.0]))
    assert list(frame.columns) == ["load"]
    assert frame.dtypes.iloc[0] == np.float64
    assert pd.Timedelta(frame.index.freq) == pd.Timedelta("1h")
    assert frame["load"].tolist() == [1.0, 2.0, 3.0]


def test_unnamed_series_gets_name_y() -> None:
    y = pd.Series([1, 2], index=pd.date_range("2024-01-01", periods=2, freq="h"))
    assert list(as_frame(y).columns) == ["y"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1.0, 2.0], "pandas Series or DataFrame"),
        (pd.Series([1.0, 2.0]), "DatetimeIndex"),
        (pd.Series(["a", "b"], index=pd.date_range("2024-01-01", periods=2, freq="h")), "non-numeric"),
        (pd.Series([1.0], index=pd.date_range("2024-01-01", periods=1, freq="h")), "at least 2"),
    ],
)
def test_bad_input_types(value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        as_frame(value)


def test_duplicate_and_unsorted_timestamps() -> None:
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 01:00"])
    with pytest.raises(InputError, match="duplicate timestamp"):
        as_frame(pd.Series([1.0, 2.0, 3.0], index=idx))
    idx = pd.DatetimeIndex(["2024-01-01 01:00", "2024-01-01 00:00"])
    with pytest.raises(InputError, match="not sorted"):
        as_frame(pd.Series([1.0, 2.0], index=idx))


def test_irregular_timestamps_are_an_error_whatever_the_fill() -> None:
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:30"])
    for fill in ("raise", "interpolate", "ffill"):
        with pytest.raises(InputError, match="irregular timestamps"):
            as_frame(pd.Series([1.0, 2.0, 3.0], index=idx), fill=fill)  # type: ignore[arg-type]


def test_gaps_raise_by_default_and_fill_explicitly() -> None:
    y = hourly([0.0, 1.0, 2.0, 3.0, 4.0]).drop(pd.Timestamp("2024-01-01 02:00"))
    with pytest.raises(InputError, match=r"1 gap\(s\).*fill='interpolate'"):
        as_frame(y)
    assert as_frame(y, fill="interpolate")["load"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert as_frame(y, fill="ffill")["load"].tolist() == [0.0, 1.0, 1.0, 3.0, 4.0]


def test_nans_raise_by_default_and_fill_explicitly() -> None:
    y = hourly([np.nan, 1.0, np.nan, 5.0])
    with pytest.raises(InputError, match=r"2 NaN value\(s\), the first at 2024-01-01 00:00:00"):
        as_frame(y)
    assert as_frame(y, fill="interpolate")["load"].tolist() == [1.0, 1.0, 3.0, 5.0]
    assert as_frame(y, fill="ffill")["load"].tolist() == [1.0, 1.0, 1.0, 5.0]
    with pytest.raises(InputError, match="unknown fill policy"):
        as_frame(y, fill="zero")  # type: ignore[arg-type]


def test_explicit_freq_and_regularize() -> None:
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 03:00"])
    out = regularize(pd.Series([0.0, 3.0], index=idx), "1h")
    assert out["y"].tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(InputError, match="fixed time step"):
        as_frame(hourly([1.0, 2.0]), freq="zz9")


def test_infinite_values_are_rejected() -> None:
    with pytest.raises(InputError, match="infinite"):
        as_frame(hourly([1.0, np.inf]))


def test_resample_means_and_sums() -> None:
    idx = pd.date_range("2024-01-01", periods=8, freq="15min")
    y = pd.Series(np.arange(8.0), index=idx, name="p")
    assert resample(y, "1h")["p"].tolist() == [1.5, 5.5]
    assert resample(y, "1h", how="sum")["p"].tolist() == [6.0, 22.0]
    with pytest.raises(InputError, match="unknown aggregation"):
        resample(y, "1h", how="median")  # type: ignore[arg-type]


def test_read_csv(tmp_path: Path) -> None:
    path = tmp_path / "load.csv"
    path.write_text("when;a;b;label\n2024-01-01 00:00;1,5;2;x\n2024-01-01 01:00;2,5;3;y\n")
    frame = read_csv(path, sep=";", decimal=",")
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1.5, 2.5]
    assert read_csv(path, sep=";", decimal=",", columns=["b"], time_column="when")["b"].tolist() == [2.0, 3.0]
    with pytest.raises(InputError, match="does not exist"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="no column 'time'"):
        read_csv(path, sep=";", time_column="time")
    with pytest.raises(InputError, match="no column\\(s\\) c"):
        read_csv(path, sep=";", columns=["c"])


def test_chronological_split_on_whole_cycles() -> None:
    y = synthetic_cyclic(n_cycles=10)
    s = chronological_split(y, cycle_length=24)
    assert (len(s.train), len(s.validation), len(s.test)) == (6 * 24, 2 * 24, 2 * 24)
    assert s.train.index[-1] < s.validation.index[0] < s.test.index[0]
    assert s.test.index[-1] == y.index[-1]
    with pytest.raises(InputError, match="below 1"):
        chronological_split(y, validation_fraction=0.5, test_fraction=0.5)


def test_scaler_standard_and_minmax_fit_on_training_only() -> None:
    train = np.array([[1.0, 10.0], [3.0, 10.0]])
    s = Scaler().fit(train)
    assert s.offset_.tolist() == [2.0, 10.0]
    assert s.scale_.tolist() == [1.0, 1.0]  # a constant column keeps scale 1
    test = np.array([[5.0, 12.0]])
    assert s.transform(test).tolist() == [[3.0, 2.0]]
    np.testing.assert_allclose(s.inverse_transform(s.transform(test)), test)
    m = Scaler("minmax").fit(np.array([[0.0], [4.0]]))
    assert m.transform(np.array([[1.0]])).tolist() == [[0.25]]
    with pytest.raises(InputError, match="unknown scaling"):
        Scaler("robust").fit(train)  # type: ignore[arg-type]


def test_day_types_with_holidays() -> None:
    days = pd.date_range("2024-12-23", periods=7, freq="D")  # Mon 23 … Sun 29 December
    assert day_types(days).tolist() == [0, 0, 0, 0, 0, 1, 2]
    assert day_types(days, country="DE").tolist() == [0, 0, 2, 2, 0, 1, 2]  # 25 and 26 December
    # Victoria: Melbourne Cup day (first Tuesday of November) is a holiday in VIC only.
    cup = pd.DatetimeIndex(["2012-11-06"])
    assert day_types(cup, country="AU", subdiv="VIC").tolist() == [2]
    assert day_types(cup, country="AU").tolist() == [0]
    with pytest.raises(InputError, match="no calendar"):
        day_types(days, country="XX")


def test_calendar_features() -> None:
    idx = pd.date_range("2024-12-24 22:00", periods=3, freq="h")
    cal = calendar_features(idx, country="DE")
    assert cal["hour"].tolist() == [22, 23, 0]
    assert cal["weekday"].tolist() == [1, 1, 2]
    assert cal["holiday"].tolist() == [False, False, True]
    assert cal["day_type"].tolist() == [0, 0, 2]
    assert cal["month"].tolist() == [12, 12, 12]


def test_synthetic_cyclic_is_deterministic_and_cyclic() -> None:
    a, b = synthetic_cyclic(n_cycles=14, seed=3), synthetic_cyclic(n_cycles=14, seed=3)
    assert a.equals(b)
    assert not a.equals(synthetic_cyclic(n_cycles=14, seed=4))
    clean = synthetic_cyclic(n_cycles=14, noise=0.0, weekly=0.0)
    np.testing.assert_allclose(clean.to_numpy()[:24], clean.to_numpy()[24:48])
    multi = synthetic_cyclic(n_cycles=2, n_series=3)
    assert isinstance(multi, pd.DataFrame)
    assert list(multi.columns) == ["load_0", "load_1", "load_2"]

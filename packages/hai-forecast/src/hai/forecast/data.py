"""Regular time series from pandas: validation, CSV, resampling, splits, scaling, calendar, synthetic data.

Every forecaster in hai.forecast takes a ``pandas.Series`` or ``DataFrame`` with a
``DatetimeIndex`` at a fixed step. :func:`as_frame` is the one gate all inputs pass: it returns
a float64 DataFrame on a regular grid, or raises :class:`hai.shared.InputError` saying what is
wrong (unsorted or duplicate timestamps, irregular steps, gaps, NaNs, non-numeric columns) and
what to do. Gaps and NaNs can be filled explicitly with ``fill="interpolate"`` or ``"ffill"``.

>>> y = synthetic_cyclic(n_cycles=14, seed=0)
>>> frame = as_frame(y)
>>> frame.shape, str(frame.index.freq)
((336, 1), '<Hour>')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.shared import InputError, RngStreams

FillPolicy = Literal["raise", "interpolate", "ffill"]
FILL_POLICIES: tuple[str, ...] = ("raise", "interpolate", "ffill")

#: The largest magnitude a series may hold: its squares (variance, RMSE) stay finite in float64.
MAX_MAGNITUDE = 1e150

#: Day types of the recent-historic-profile baselines: workday, Saturday, Sunday or holiday.
WORKDAY, SATURDAY, SUNDAY_HOLIDAY = 0, 1, 2


def _check_fill(fill: str) -> None:
    if fill not in FILL_POLICIES:
        raise InputError(f"unknown fill policy {fill!r}", hint=f"use one of {', '.join(FILL_POLICIES)}")


def _to_step(freq: Any) -> pd.Timedelta:
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"cannot use {freq!r} as a fixed time step",
            hint="give a fixed frequency such as '1h', '15min' or '30min'",
        ) from exc
    if step <= pd.Timedelta(0):
        raise InputError(f"the time step must be positive, got {freq!r}")
    return step


def as_frame(y: Any, *, freq: Any = None, fill: FillPolicy = "raise", name: str = "y") -> pd.DataFrame:
    """Validate ``y`` and return it as a float64 DataFrame on a regular, gap-free time grid.

    ``y`` is a ``pandas.Series`` or ``DataFrame`` with a ``DatetimeIndex``. The step is
    ``freq`` when given, else the smallest spacing of the index. Missing timestamps (gaps) and
    NaN values raise :class:`InputError` with ``fill="raise"`` (the default); ``"interpolate"``
    fills them linearly in time, ``"ffill"`` carries the last value forward (the first values
    backward). Irregular spacing that is not a multiple of the step is always an error:
    resample first (:func:`resample`).

    >>> idx = pd.date_range("2024-01-01", periods=4, freq="h")
    >>> as_frame(pd.Series([1.0, np.nan, 3.0, 4.0], index=idx), fill="interpolate")["y"].tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    _check_fill(fill)
    if isinstance(y, pd.Series):
        frame = y.to_frame(name=y.name if y.name is not None else name)
    elif isinstance(y, pd.DataFrame):
        frame = y.copy()
    else:
        raise InputError(
            f"expected a pandas Series or DataFrame with a DatetimeIndex, got {type(y).__name__}",
            hint="wrap your values: pd.Series(values, index=pd.date_range(start, periods=n, freq='h'))",
        )
    if frame.shape[1] == 0:
        raise InputError("the DataFrame has no columns")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise InputError(
            f"the index must be a DatetimeIndex, got {type(frame.index).__name__}",
            hint="convert it with df.index = pd.to_datetime(df.index), or use hai.forecast.read_csv",
        )
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise InputError(f"non-numeric column(s): {', '.join(bad)}", hint="select the numeric target columns")
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.astype(np.float64)
    index = frame.index
    if len(index) < 2:
        raise InputError(f"a time series needs at least 2 timestamps, got {len(index)}")
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise InputError(f"duplicate timestamp {first}", hint="aggregate duplicates, e.g. with resample()")
    if not index.is_monotonic_increasing:
        raise InputError("the timestamps are not sorted", hint="sort them with y.sort_index()")
    diffs = index[1:] - index[:-1]
    step = _to_step(freq) if freq is not None else pd.Timedelta(diffs.min())
    ratios = np.asarray(diffs / step, dtype=np.float64)
    irregular = np.abs(ratios - np.round(ratios)) > 1e-9
    if irregular.any() or (ratios < 1 - 1e-9).any():
        where = int(np.argmax(irregular | (ratios < 1 - 1e-9)))
        raise InputError(
            f"irregular timestamps: the spacing {diffs[where]} after {index[where]} is not a multiple "
            f"of the step {step}",
            hint="resample to a fixed step first, e.g. hai.forecast.resample(y, '1h')",
        )
    n_gaps = int((ratios > 1.5).sum())
    if n_gaps:
        first_gap = int(np.argmax(ratios > 1.5))
        if fill == "raise":
            raise InputError(
                f"the series has {n_gaps} gap(s) in its timestamps, the first after {index[first_gap]} "
                f"({diffs[first_gap]} instead of {step})",
                hint="fill them explicitly with fill='interpolate' or fill='ffill'",
            )
    full = pd.date_range(index[0], index[-1], freq=step)
    frame = frame.reindex(full)
    n_nan = int(frame.isna().to_numpy().sum())
    if n_nan:
        if fill == "raise":
            first_nan = frame.index[frame.isna().any(axis=1).to_numpy()][0]
            raise InputError(
                f"the series has {n_nan} NaN value(s), the first at {first_nan}",
                hint="fill them explicitly with fill='interpolate' or fill='ffill', or drop the column",
            )
        if fill == "interpolate":
            frame = frame.interpolate(method="time", limit_direction="both")
        else:
            frame = frame.ffill().bfill()
        if frame.isna().to_numpy().any():
            raise InputError("a column has no values at all", hint="drop the empty column")
    values = frame.to_numpy()
    if not np.isfinite(values).all():
        raise InputError("the series contains infinite values", hint="replace them or mark them as NaN")
    largest = float(np.abs(values).max())
    if largest > MAX_MAGNITUDE:
        raise InputError(
            f"the series has values as large as {largest:.3g}: above {MAX_MAGNITUDE:g} float64 arithmetic "
            "overflows (scaling and the error metrics square the values) and forecasts would not be finite",
            hint="rescale the series, e.g. from W to MW",
        )
    frame.index.freq = full.freq
    return frame


def series_step(y: Any) -> pd.Timedelta:
    """The fixed time step of a validated series (see :func:`as_frame`)."""
    return pd.Timedelta(as_frame(y).index.freq)


def regularize(y: Any, freq: Any = None, *, fill: FillPolicy = "interpolate") -> pd.DataFrame:
    """Put ``y`` on a regular grid of step ``freq`` and fill gaps and NaNs by ``fill``.

    >>> idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 02:00"])
    >>> regularize(pd.Series([0.0, 2.0], index=idx), "1h")["y"].tolist()
    [0.0, 1.0, 2.0]
    """
    return as_frame(y, freq=freq, fill=fill)


def resample(y: Any, rule: Any, *, how: Literal["mean", "sum", "first", "last"] = "mean") -> pd.DataFrame:
    """Resample ``y`` to the fixed step ``rule`` (mean of each bin by default; sums for energy).

    >>> idx = pd.date_range("2024-01-01", periods=8, freq="15min")
    >>> resample(pd.Series(np.arange(8.0), index=idx), "1h")["y"].tolist()
    [1.5, 5.5]
    """
    if how not in ("mean", "sum", "first", "last"):
        raise InputError(f"unknown aggregation {how!r}", hint="use mean, sum, first or last")
    if isinstance(y, pd.Series):
        y = y.to_frame(name=y.name if y.name is not None else "y")
    if not isinstance(y, pd.DataFrame) or not isinstance(y.index, pd.DatetimeIndex):
        raise InputError("resample needs a pandas Series or DataFrame with a DatetimeIndex")
    _to_step(rule)
    out = getattr(y.resample(rule), how)()
    out.columns = [str(c) for c in out.columns]
    return out


def _timestamps(column: pd.Series, path: str, name: str, tz: str | None) -> pd.DatetimeIndex:
    """The time column as a DatetimeIndex; timestamps with UTC offsets become UTC (or ``tz``)."""
    import warnings

    def fail(reason: str) -> InputError:
        parsed = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        where = f"; the first that is not, in row {bad[0] + 1} (line {bad[0] + 2}): {column.iloc[bad[0]]!r}"
        return InputError(
            f"column {name!r} of {path} does not hold timestamps{where if len(bad) else ''} ({reason})",
            hint="name the time column with time_column= (--time-column)",
        )

    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise InputError(
            f"column {name!r} of {path} has an empty timestamp in row {row + 1} (line {row + 2})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns about mixed offsets and inferred formats
            try:
                parsed = pd.to_datetime(column)
            except (ValueError, TypeError) as exc:
                if "tz" not in str(exc).lower() and "offset" not in str(exc).lower():
                    raise
                parsed = pd.to_datetime(column, utc=True)  # offsets that change (daylight saving time)
            if not isinstance(parsed.dtype, pd.DatetimeTZDtype) and parsed.dtype == object:
                parsed = pd.to_datetime(column, utc=True)  # mixed offsets returned as objects
    except (ValueError, TypeError, OverflowError) as exc:
        raise fail(str(exc).splitlines()[0]) from None
    index = pd.DatetimeIndex(parsed)
    try:
        if index.tz is not None:
            index = index.tz_convert(tz or "UTC")  # offsets such as +01:00/+02:00: one clock
        elif tz is not None:
            index = index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except (ValueError, TypeError, KeyError) as exc:  # unknown zone; a local time that DST repeats or skips
        raise InputError(
            f"cannot put the timestamps of {path} on the time zone {tz!r}: {str(exc).splitlines()[0]}",
            hint="give timestamps with UTC offsets, or a zone name such as 'UTC' or 'Europe/Berlin'",
        ) from None
    return index


def _numeric_column(column: pd.Series, path: str, name: str, *, chosen: bool) -> pd.Series | None:
    """The column as numbers, or an error that names the first cell that is not a number.

    A column without a single number (a text label) is None unless the user ``chosen`` it.
    """
    if pd.api.types.is_bool_dtype(column.dtype):
        raise InputError(f"column {name!r} of {path} holds true/false values, not numbers")
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column
    numbers = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & column.notna()).to_numpy())
    if len(bad) and not chosen and numbers.isna().all():
        return None  # a text column (labels, metadata): not a value column
    if len(bad):
        row = int(bad[0])
        raise InputError(
            f"column {name!r} of {path} has a value that is not a number in row {row + 1} "
            f"(line {row + 2}): {column.iloc[row]!r}"
            + (f", and {len(bad) - 1} more" if len(bad) > 1 else ""),
            hint="fix or blank the cell (blank cells are gaps: fill=...), or choose the value columns "
            "with columns=[...] (--value-column)",
        )
    return numbers.astype(np.float64)


def read_csv(
    path: str | os.PathLike[str],
    *,
    time_column: str | int = 0,
    columns: list[str] | None = None,
    freq: Any = None,
    fill: FillPolicy = "raise",
    tz: str | None = None,
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Read a CSV file with a datetime column into a validated, regular DataFrame.

    ``time_column`` names (or numbers) the timestamp column; ``columns`` selects the value
    columns (by default every other column that holds numbers; a column without a single number,
    such as a text label, is left out). A cell that is not a number in a value column is an
    error naming its column, row and value (blank cells are gaps, see ``fill``). Timestamps
    with UTC offsets (``+01:00``/``+02:00`` across daylight saving time) are converted to UTC,
    or to the zone ``tz``; naive timestamps are put on ``tz`` when it is given (a zone with
    daylight saving time makes two days a year 23 and 25 hours long, which a cycle of fixed
    length does not follow: prefer UTC or a fixed offset such as ``"Etc/GMT-1"``). Extra
    keyword arguments go to ``pandas.read_csv`` (``sep=";"``,
    ``decimal=","`` …).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "load.csv"
    >>> _ = p.write_text("time,load\\n2024-01-01 00:00,1\\n2024-01-01 01:00,2\\n")
    >>> read_csv(p)["load"].tolist()
    [1.0, 2.0]
    >>> _ = p.write_text("time,load\\n2024-03-31 01:00+01:00,1\\n2024-03-31 03:00+02:00,2\\n")
    >>> [str(t) for t in read_csv(p).index]
    ['2024-03-31 00:00:00+00:00', '2024-03-31 01:00:00+00:00']
    """
    body = _read_csv_body(path, time_column, columns, tz, read_kwargs)
    return as_frame(body, freq=freq, fill=fill)


def read_csv_with_covariates(
    path: str | os.PathLike[str],
    covariates: list[str],
    *,
    time_column: str | int = 0,
    columns: list[str] | None = None,
    freq: Any = None,
    fill: FillPolicy = "raise",
    tz: str | None = None,
    **read_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(targets, covariates)`` from one CSV file: the ``covariates`` columns are inputs only.

    The targets are ``columns`` (default: every other numeric column). The last rows may hold
    covariates with the targets left blank: the future-known values of a forecast horizon
    (e.g. the temperature forecast for tomorrow); the targets end at their last filled row.
    As :func:`read_csv` otherwise.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "load.csv"
    >>> _ = p.write_text("time,load,temp\\n2024-01-01 00:00,1,5\\n2024-01-01 01:00,2,6\\n"
    ...                  "2024-01-01 02:00,3,7\\n2024-01-01 03:00,,8\\n")
    >>> y, x = read_csv_with_covariates(p, ["temp"])
    >>> list(y.columns), len(y), list(x.columns), len(x)
    (['load'], 3, ['temp'], 4)
    """
    if not covariates:
        raise InputError("no covariate column named")
    wanted = None if columns is None else [*columns, *(c for c in covariates if c not in columns)]
    body = _read_csv_body(path, time_column, wanted, tz, read_kwargs)
    missing = [c for c in covariates if c not in body.columns]
    if missing:
        raise InputError(
            f"{os.fspath(path)} has no numeric column(s) {', '.join(missing)} for the covariates",
            hint=f"numeric columns: {', '.join(map(str, body.columns))}",
        )
    both = [c for c in covariates if columns is not None and c in columns]
    if both:
        raise InputError(
            f"{', '.join(both)} is named both as a value column (a target) and as a covariate",
            hint="a column is one or the other",
        )
    targets = list(columns) if columns is not None else [c for c in body.columns if c not in covariates]
    if not targets:
        raise InputError(f"{os.fspath(path)} has no column left to forecast besides the covariates")
    filled = np.flatnonzero(body[targets].notna().any(axis=1).to_numpy())
    if len(filled) == 0:
        raise InputError(f"{os.fspath(path)} has no value in the column(s) {', '.join(targets)}")
    y = as_frame(body[targets].iloc[: int(filled[-1]) + 1], freq=freq, fill=fill)
    return y, as_frame(body[list(covariates)], freq=freq, fill=fill, name="covariate")


def _read_csv_body(
    path: str | os.PathLike[str],
    time_column: str | int,
    columns: list[str] | None,
    tz: str | None,
    read_kwargs: dict[str, Any],
) -> pd.DataFrame:
    """The numeric value columns of a CSV file on its timestamps (not yet validated as a series)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(
            f"CSV file {path} does not exist" + (" (it is a folder)" if os.path.isdir(path) else "")
        )
    try:
        raw = pd.read_csv(path, **read_kwargs)
    except (ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError and EmptyDataError too
        raise InputError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    except TypeError as exc:  # an unknown keyword for pandas.read_csv
        raise InputError(f"cannot read {path} as CSV: {exc}") from None
    raw.columns = [str(c) for c in raw.columns]
    if isinstance(time_column, int):
        if not 0 <= time_column < raw.shape[1]:
            raise InputError(f"{path} has no column number {time_column}")
        time_column = str(raw.columns[time_column])
    if time_column not in raw.columns:
        raise InputError(f"{path} has no column {time_column!r}", hint=f"columns: {', '.join(raw.columns)}")
    index = _timestamps(raw[time_column], path, time_column, tz)
    body = raw.drop(columns=[time_column])
    if columns is not None:
        missing = [c for c in columns if c not in body.columns]
        if missing:
            raise InputError(
                f"{path} has no column(s) {', '.join(missing)}", hint=f"columns: {', '.join(body.columns)}"
            )
        body = body[list(columns)]
    if body.shape[1] == 0:
        raise InputError(f"{path} has no value column besides {time_column!r}")
    numeric = {c: _numeric_column(body[c], path, c, chosen=columns is not None) for c in body.columns}
    body = pd.DataFrame({c: v for c, v in numeric.items() if v is not None})
    if body.shape[1] == 0:
        raise InputError(f"{path} has no numeric column besides {time_column!r}")
    body.index = index
    body.index.name = None
    return body


@dataclass(frozen=True)
class Split:
    """A chronological train/validation/test split (pandas objects, in time order)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def chronological_split(
    y: Any,
    *,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    cycle_length: int | None = None,
) -> Split:
    """Split ``y`` in time order into train, validation and test parts.

    With ``cycle_length`` the boundaries fall on whole cycles counted from the start.

    >>> s = chronological_split(synthetic_cyclic(n_cycles=10), cycle_length=24)
    >>> len(s.train) // 24, len(s.validation) // 24, len(s.test) // 24
    (6, 2, 2)
    """
    frame = as_frame(y)
    for label, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise InputError(f"{label} must be in [0, 1), got {value}")
    if validation_fraction + test_fraction >= 1.0:
        raise InputError("validation_fraction + test_fraction must be below 1")
    unit = cycle_length or 1
    n_units = len(frame) // unit
    n_test = round(n_units * test_fraction)
    n_val = round(n_units * validation_fraction)
    if n_units - n_test - n_val < 1:
        raise InputError(f"the series ({len(frame)} steps) is too short to split")
    end_train = (n_units - n_test - n_val) * unit
    end_val = (n_units - n_test) * unit
    return Split(frame.iloc[:end_train], frame.iloc[end_train:end_val], frame.iloc[end_val:])


class Scaler:
    """Per-column scaling fitted on training data only: ``"standard"`` (mean/std) or ``"minmax"``.

    ``transform(x) = (x - offset_) / scale_``; ``inverse_transform`` undoes it.

    >>> s = Scaler("minmax").fit(np.array([[0.0], [10.0]]))
    >>> s.transform(np.array([[5.0]])).tolist(), s.inverse_transform(np.array([[0.5]])).tolist()
    ([[0.5]], [[5.0]])
    """

    def __init__(self, method: str = "standard") -> None:
        self.method = method

    def fit(self, x: Any) -> Scaler:
        if self.method not in ("standard", "minmax"):
            raise InputError(f"unknown scaling {self.method!r}", hint="use 'standard' or 'minmax'")
        values = np.asarray(x.to_numpy() if isinstance(x, pd.DataFrame | pd.Series) else x, dtype=np.float64)
        values = values.reshape(len(values), -1)
        if len(values) == 0:
            raise InputError("cannot fit a scaler on no data")
        if self.method == "standard":
            offset, scale = values.mean(axis=0), values.std(axis=0)
        else:
            offset, scale = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
        self.offset_ = offset
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.offset_) / self.scale_

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.scale_ + self.offset_


def holiday_dates(years: range | list[int], country: str | None, subdiv: str | None = None) -> set[Any]:
    """The public holidays of ``country`` (ISO code, optional subdivision) in ``years``, as dates."""
    if country is None:
        return set()
    import holidays

    try:
        calendar = holidays.country_holidays(country, subdiv=subdiv, years=list(years))
    except (NotImplementedError, KeyError) as exc:
        raise InputError(
            f"the holidays package knows no calendar for country={country!r}, subdiv={subdiv!r}",
            hint="use an ISO 3166 code such as 'DE', or 'AU' with subdiv='VIC'",
        ) from exc
    return set(calendar.keys())


def day_types(timestamps: Any, country: str | None = None, subdiv: str | None = None) -> np.ndarray:
    """Day type of each timestamp: 0 workday (Mon–Fri), 1 Saturday, 2 Sunday or public holiday.

    >>> day_types(pd.date_range("2024-12-23", periods=7, freq="D"), country="DE").tolist()
    [0, 0, 2, 2, 0, 1, 2]
    """
    index = pd.DatetimeIndex(timestamps)
    weekday = np.asarray(index.dayofweek)
    types = np.where(weekday == 6, SUNDAY_HOLIDAY, np.where(weekday == 5, SATURDAY, WORKDAY))
    if country is not None and len(index):
        years = range(int(index.year.min()), int(index.year.max()) + 1)
        hol = holiday_dates(years, country, subdiv)
        is_hol = np.array([d in hol for d in index.date], dtype=bool)
        types = np.where(is_hol, SUNDAY_HOLIDAY, types)
    return types.astype(np.int64)


def calendar_features(index: Any, country: str | None = None, subdiv: str | None = None) -> pd.DataFrame:
    """Calendar features per timestamp: hour, weekday, month, holiday flag and day type.

    >>> calendar_features(pd.date_range("2024-12-24", periods=2, freq="D"), "DE")["holiday"].tolist()
    [False, True]
    """
    idx = pd.DatetimeIndex(index)
    types = day_types(idx, country, subdiv)
    hol = (
        holiday_dates(range(int(idx.year.min()), int(idx.year.max()) + 1), country, subdiv)
        if len(idx)
        else set()
    )
    return pd.DataFrame(
        {
            "hour": np.asarray(idx.hour),
            "weekday": np.asarray(idx.dayofweek),
            "month": np.asarray(idx.month),
            "holiday": np.array([d in hol for d in idx.date], dtype=bool),
            "day_type": types,
        },
        index=idx,
    )


def synthetic_cyclic(
    n_cycles: int = 60,
    *,
    cycle_length: int = 24,
    start: str = "2024-01-01",
    freq: str = "1h",
    weekly: float = 0.3,
    trend: float = 0.0,
    noise: float = 0.05,
    n_series: int = 1,
    seed: int = 0,
) -> pd.Series | pd.DataFrame:
    """A synthetic load-like series: a daily double peak, a weekend dip, a slow trend and noise.

    One series gives a ``Series`` named ``"load"``; ``n_series > 1`` a DataFrame with columns
    ``load_0 …`` (each with its own phase shift). Deterministic for a given ``seed``.

    >>> y = synthetic_cyclic(n_cycles=7, seed=1)
    >>> len(y), y.index.freqstr
    (168, 'h')
    """
    if n_cycles < 1 or cycle_length < 2 or n_series < 1:
        raise InputError("need n_cycles >= 1, cycle_length >= 2 and n_series >= 1")
    index = pd.date_range(start, periods=n_cycles * cycle_length, freq=freq)
    rng = RngStreams(seed).numpy("synthetic_cyclic")
    phase = np.arange(len(index)) % cycle_length / cycle_length
    weekday = np.asarray(index.dayofweek)
    weekend = np.where(weekday >= 5, 1.0 - weekly, 1.0)
    t = np.arange(len(index)) / len(index)
    columns = {}
    for i in range(n_series):
        shift = 0.05 * i
        daily = 1.0 + 0.5 * np.exp(-(((phase - 0.35 - shift) / 0.08) ** 2))
        daily += 0.8 * np.exp(-(((phase - 0.8 - shift) / 0.1) ** 2))
        base = (daily * weekend) * (1.0 + trend * t)
        columns[f"load_{i}" if n_series > 1 else "load"] = base + noise * rng.normal(size=len(index))
    frame = pd.DataFrame(columns, index=index)
    return frame["load"] if n_series == 1 else frame


def synthetic_with_temperature(
    n_cycles: int = 120, *, effect: float = 0.2, noise: float = 0.02, seed: int = 0
) -> tuple[pd.Series, pd.Series]:
    """``(load, temperature)``: :func:`synthetic_cyclic` plus ``effect × temperature``.

    The temperature's daily level wanders (an AR(1) process, coefficient 0.6, unit steps), plus
    a daily swing of ±0.5 and noise of 0.1: the load's own lags cannot foresee it, a
    future-known temperature (a weather forecast) explains it. The test case of covariates.

    >>> y, temperature = synthetic_with_temperature(n_cycles=10)
    >>> y.name, temperature.name, bool(y.index.equals(temperature.index))
    ('load', 'temperature', True)
    """
    base = synthetic_cyclic(n_cycles=n_cycles, noise=noise, seed=seed)
    rng = RngStreams(seed).numpy("synthetic_temperature")
    level = np.zeros(n_cycles)
    for day in range(1, n_cycles):
        level[day] = 0.6 * level[day - 1] + rng.normal(0.0, 1.0)
    hours = np.arange(len(base))
    swing = 0.5 * np.sin(2 * np.pi * (hours % 24) / 24)
    values = np.repeat(level, len(base) // n_cycles) + swing + rng.normal(0.0, 0.1, len(hours))
    temperature = pd.Series(values, index=base.index, name="temperature")
    return (base + effect * temperature).rename("load"), temperature

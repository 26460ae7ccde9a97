"""AutoPQ data: an hourly series checked once, its calendar features, windows and split.

A series is a pandas Series of floats with a regular, strictly increasing DatetimeIndex
(hourly or finer; finer data is averaged to hourly means). It comes from the user (a
Series, or a CSV whose first column is the time stamp) or from the SimBench profiles shipped
by the ``simbench`` package (:func:`simbench_profile`, an optional extra).

The split is the reference's: the test set is the last 20 % of the series, the validation
set the last 30 % of the rest, the training set what remains. A *forecast origin* ``o`` is
a position in the series; the forecast from ``o`` covers positions ``o … o+horizon-1`` and
may use only positions before ``o``.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=24 * 21, freq="h")
>>> y = hourly_series(pd.Series(np.arange(len(idx), dtype=float), index=idx))
>>> s = split_points(len(y))
>>> s.train_end, s.val_end, s.n
(282, 403, 504)
>>> calendar_features(idx[:2]).shape
(2, 7)
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.shared import InputError, MissingPackageError
from hai.shared._optional import require

#: Hours in the shortest series accepted: two weeks (a weekly lag needs one week of history).
MIN_HOURS = 14 * 24
#: Calendar features per time stamp (see :func:`calendar_features`).
CALENDAR_NAMES = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "month_sin", "month_cos", "weekend")
_SIMBENCH_FOLDER = ("networks", "1-complete_data-mixed-all-0-sw")
#: The public holidays the SimBench 2016 load profiles follow. The commercial G1 profiles drop
#: to their Sunday level on Corpus Christi (26 May) and All Saints' Day (1 Nov) but not on
#: Epiphany, 15 August or Reformation Day: the calendar of North Rhine-Westphalia (Rhineland-
#: Palatinate has the same 2016 holidays).
SIMBENCH_HOLIDAYS = "DE-NW"


@dataclass(frozen=True)
class Split:
    """Series positions that end the training and validation sets (the reference's split)."""

    n: int
    train_end: int
    val_end: int

    def origins(self, part: str, *, horizon: int, history: int) -> np.ndarray:
        """Forecast origins whose whole horizon lies in ``part`` ("train", "val" or "test").

        Origins need ``history`` positions before them (they may reach into an earlier part:
        that data is known at forecast time).
        """
        start, end = {
            "train": (0, self.train_end),
            "val": (self.train_end, self.val_end),
            "test": (self.val_end, self.n),
        }[part]
        first = max(start, history)
        return np.arange(first, end - horizon + 1, dtype=np.int64)


def split_points(n: int, *, test_fraction: float = 0.2, val_fraction: float = 0.3) -> Split:
    """The reference's split of ``n`` positions: test = last 20 %, validation = last 30 % of the rest."""
    n_test = round(test_fraction * n)
    rest = n - n_test
    n_val = round(val_fraction * rest)
    return Split(n=n, train_end=rest - n_val, val_end=rest)


def hourly_series(
    y: pd.Series | pd.DataFrame, *, name: str | None = None, min_hours: int = MIN_HOURS
) -> pd.Series:
    """Check ``y`` and return it as an hourly float Series (finer data averaged per hour).

    Raises :class:`InputError` for a missing DatetimeIndex, unsorted or repeated time stamps,
    gaps or irregular steps, steps coarser than one hour, NaN or infinite values, and series
    shorter than two weeks.
    """
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise InputError(
                f"expected one series, got a table with {y.shape[1]} columns", hint="select one column"
            )
        y = y.iloc[:, 0]
    if not isinstance(y, pd.Series):
        raise InputError(f"expected a pandas Series with a DatetimeIndex, got {type(y).__name__}")
    if not isinstance(y.index, pd.DatetimeIndex):
        raise InputError(
            "the series needs a DatetimeIndex (time stamps)",
            hint="pass pd.Series(values, index=pd.DatetimeIndex(times)) or a CSV with the time first",
        )
    try:
        values = y.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InputError("the series must be numeric") from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(
            f"the series has {int(bad.sum())} missing or non-finite value(s), "
            f"the first at {y.index[int(np.argmax(bad))]}",
            hint="fill or interpolate them before fitting",
        )
    index = y.index
    if len(index) < 2:
        raise InputError(
            f"the series has {len(index)} value(s); AutoPQ needs at least two weeks of hourly data"
        )
    steps = np.diff(index.asi8)
    if (steps <= 0).any():
        at = int(np.argmax(steps <= 0)) + 1
        raise InputError(
            f"time stamps must be strictly increasing; {index[at]} follows {index[at - 1]}",
            hint="sort the series and drop repeated time stamps",
        )
    step = int(steps[0])
    if (steps != step).any():
        at = int(np.argmax(steps != step)) + 1
        raise InputError(
            f"the time stamps are not regular: a step of {pd.Timedelta(int(steps[at - 1]))} between "
            f"{index[at - 1]} and {index[at]} where the series steps by {pd.Timedelta(step)}",
            hint="fill the gap (or resample) so that every step is the same",
        )
    hour = pd.Timedelta("1h").value
    if step > hour or hour % step:
        raise InputError(
            f"the series steps by {pd.Timedelta(step)}; AutoPQ needs hourly data or a step dividing an hour",
        )
    out = pd.Series(values, index=index, name=name if name is not None else y.name)
    if step < hour:
        out = out.resample("1h").mean()
        counts = pd.Series(1.0, index=index).resample("1h").sum()
        full = counts.to_numpy() == hour // step
        # drop incomplete first/last hours; inner hours are complete because the steps are regular
        out = out[full]
    if len(out) < min_hours:
        what = "two weeks" if min_hours == MIN_HOURS else f"{min_hours} hours"
        raise InputError(
            f"the series covers {len(out)} hours; AutoPQ needs {what} ({min_hours} hourly values)",
            hint="give a longer series",
        )
    out.index = pd.DatetimeIndex(out.index, freq="h")
    return out


def read_csv(path: str | os.PathLike[str], column: str | None = None) -> pd.Series:
    """Read an hourly (or finer) series from a CSV whose first column holds the time stamps.

    ``column`` names the value column (default: the only other column).
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file} does not exist or is not a file")
    try:
        table = pd.read_csv(file, index_col=0)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read {file} as CSV: {exc}") from None
    try:
        table.index = pd.DatetimeIndex(pd.to_datetime(table.index))
    except (ValueError, TypeError) as exc:
        raise InputError(f"the first column of {file} is not a time stamp: {exc}") from None
    if column is None:
        if table.shape[1] != 1:
            raise InputError(
                f"{file} has {table.shape[1]} value columns ({', '.join(map(str, table.columns[:6]))})",
                hint="name one with column=... (--column on the command line)",
            )
        column = str(table.columns[0])
    if column not in table.columns:
        raise InputError(
            f"{file} has no column {column!r}", hint=f"columns: {', '.join(map(str, table.columns))}"
        )
    return hourly_series(table[column], name=column)


def _simbench_folder() -> Path:
    spec = importlib.util.find_spec("simbench")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            "SimBench profiles are read from the Python package 'simbench', which is not installed",
            hint="pip install 'hai-grid[simbench]'",
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*_SIMBENCH_FOLDER)


def simbench_profiles(kind: str) -> list[str]:
    """Names of the SimBench profiles of ``kind`` ("load", "pv" or "wind")."""
    file = _simbench_file(kind)
    header = pd.read_csv(file, sep=";", nrows=0).columns
    if kind == "load":
        return sorted({c.rsplit("_", 1)[0] for c in header if c.endswith("_pload")})
    prefix = "PV" if kind == "pv" else "WP"
    return [c for c in header if c.startswith(prefix)]


def _simbench_file(kind: str) -> Path:
    if kind not in ("load", "pv", "wind"):
        raise InputError(f"unknown SimBench profile kind {kind!r}", hint="use load, pv or wind")
    file = _simbench_folder() / ("LoadProfile.csv" if kind == "load" else "RESProfile.csv")
    if not file.is_file():
        raise MissingPackageError(f"this simbench does not ship {file}", hint="pip install 'simbench>=1.4'")
    return file


def simbench_profile(spec: str) -> pd.Series:
    """A SimBench 2016 profile as an hourly Series: ``"load:H0-A"``, ``"pv:PV3"``, ``"wind:WP4"``.

    Values are SimBench's relative active power (load: ``<name>_pload``); 15-min values are
    averaged per hour. Time stamps are CET (UTC+1) all year, so the grid has no DST gaps.
    """
    kind, _, profile = spec.partition(":")
    kind = kind.strip().lower()
    profile = profile.strip()
    file = _simbench_file(kind)
    names = simbench_profiles(kind)
    if profile not in names:
        raise InputError(f"SimBench has no {kind} profile {profile!r}", hint=f"known: {', '.join(names)}")
    column = f"{profile}_pload" if kind == "load" else profile
    raw = pd.read_csv(file, sep=";", usecols=["time", column])
    local = pd.DatetimeIndex(pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M"))
    # Local German time with DST in the file; on CET (UTC+1) the 15-min grid is regular.
    index = local.tz_localize("Europe/Berlin", ambiguous="infer").tz_convert("Etc/GMT-1").tz_localize(None)
    return hourly_series(pd.Series(raw[column].to_numpy(dtype=float), index=index), name=f"{kind}:{profile}")


def load_series(source: str, column: str | None = None) -> pd.Series:
    """A series from a CSV path or a SimBench spec (``simbench:load:H0-A`` or ``load:H0-A``)."""
    text = source.strip()
    if text.startswith("simbench:"):
        return simbench_profile(text.removeprefix("simbench:"))
    if text.split(":", 1)[0] in ("load", "pv", "wind") and not Path(text).exists():
        return simbench_profile(text)
    return read_csv(text, column)


def _holiday_calendar(spec: str) -> Any:
    """The ``holidays`` package's calendar for ``"DE"`` or ``"DE-NW"`` (country, subdivision)."""
    lib = require("holidays", extra="autopq", distribution="hai-grid")
    country, _, subdiv = spec.strip().partition("-")
    try:
        return lib.country_holidays(country.upper(), subdiv=subdiv.upper() or None)
    except NotImplementedError as exc:  # the package's error for an unknown country or subdivision
        raise InputError(
            f"unknown holiday calendar {spec!r}: {exc}",
            hint="give an ISO 3166 country code with an optional subdivision, e.g. DE or DE-NW",
        ) from None


@functools.lru_cache(maxsize=32)
def _holiday_days(spec: str, first: pd.Timestamp, last: pd.Timestamp) -> np.ndarray:
    calendar = _holiday_calendar(spec)
    days = pd.date_range(first, last, freq="D")
    return np.asarray(days[[d.date() in calendar for d in days]], dtype="datetime64[D]")


def is_holiday(index: pd.DatetimeIndex, holidays: str | None) -> np.ndarray:
    """Whether each time stamp falls on a public holiday of ``holidays`` (``None``: never)."""
    index = pd.DatetimeIndex(index)
    if holidays is None or not len(index):
        return np.zeros(len(index), dtype=bool)
    days = index.normalize()
    table = _holiday_days(str(holidays), days.min(), days.max())
    return np.isin(np.asarray(days, dtype="datetime64[D]"), table)


def day_of_week(index: pd.DatetimeIndex, holidays: str | None = None) -> np.ndarray:
    """Weekday per time stamp (Monday 0 … Sunday 6) with public holidays counted as Sundays,
    the convention of the BDEW standard load profiles."""
    index = pd.DatetimeIndex(index)
    return np.where(is_holiday(index, holidays), 6, index.dayofweek.to_numpy())


def calendar_features(index: pd.DatetimeIndex, holidays: str | None = None) -> np.ndarray:
    """Calendar features per time stamp, shape ``(len(index), 7)``: hour, weekday and month as
    sine/cosine pairs, and a weekend flag (±1); with a holiday calendar (``"DE-NW"``) public
    holidays are Sundays (:func:`day_of_week`)."""
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    weekday = day_of_week(index, holidays).astype(float)
    month = index.month.to_numpy() - 1.0
    two_pi = 2.0 * np.pi
    return np.stack(
        [
            np.sin(two_pi * hour / 24),
            np.cos(two_pi * hour / 24),
            np.sin(two_pi * weekday / 7),
            np.cos(two_pi * weekday / 7),
            np.sin(two_pi * month / 12),
            np.cos(two_pi * month / 12),
            np.where(weekday >= 5, 1.0, -1.0),
        ],
        axis=1,
    )


def windows(values: np.ndarray, origins: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """``values[o + offset : o + offset + length]`` for every origin, shape ``(len(origins), length)``."""
    idx = origins[:, None] + offset + np.arange(length)[None, :]
    return np.asarray(values)[idx]


def future_index(index: pd.DatetimeIndex, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` hourly time stamps after the end of ``index``."""
    return pd.date_range(index[-1] + pd.Timedelta("1h"), periods=horizon, freq="h", tz=index.tz)


def check_horizon(horizon: int, n: int, split: Split, history: int) -> None:
    """Refuse a horizon that leaves no validation or test origin (with ``history`` steps before)."""
    for part in ("train", "val", "test"):
        if len(split.origins(part, horizon=horizon, history=history)) < 1:
            raise InputError(
                f"a horizon of {horizon} h with {history} h of history leaves no {part} window "
                f"in a series of {n} hours",
                hint="give a longer series or a shorter horizon",
            )


def synthetic_series(
    kind: str = "load", *, weeks: int = 6, seed: int = 0, start: str = "2024-01-01"
) -> pd.Series:
    """An hourly synthetic series for tests and the demo (no download).

    ``"load"`` has a daily cycle, a weekend dip and persistent AR(1) noise (0.97 per hour)
    scaled by the cycle; ``"pv"`` is a clear-sky bell times a random daily cloudiness, zero
    at night."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=weeks * 168, freq="h")
    hour = index.hour.to_numpy().astype(float)
    if kind == "load":
        daily = 1.0 + 0.35 * np.sin(2 * np.pi * (hour - 8) / 24) + 0.15 * np.sin(4 * np.pi * hour / 24)
        weekend = np.where(index.dayofweek.to_numpy() >= 5, 0.8, 1.0)
        noise = np.zeros(len(index))
        shocks = rng.standard_normal(len(index))
        for t in range(1, len(index)):
            noise[t] = 0.97 * noise[t - 1] + shocks[t]
        values = 10.0 * daily * weekend + 0.1 * daily * noise
    elif kind == "pv":
        bell = np.clip(np.sin(np.pi * (hour - 6) / 12), 0.0, None) ** 1.5
        cloud = np.repeat(rng.beta(4.0, 1.5, size=weeks * 7), 24)
        values = 5.0 * bell * cloud * (1.0 + 0.05 * rng.standard_normal(len(index)))
        values = np.clip(values, 0.0, None)
    else:
        raise InputError(f"unknown synthetic kind {kind!r}", hint="use load or pv")
    return pd.Series(values, index=pd.DatetimeIndex(index, freq="h"), name=kind)

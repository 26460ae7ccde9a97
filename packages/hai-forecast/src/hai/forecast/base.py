"""The estimator contract every hai.forecast model follows (scikit-learn style).

The constructor only stores parameters; ``fit(y)`` validates the series, learns and returns
``self`` (learned state in attributes ending in ``_``); ``predict(history)`` returns the next
``horizon_cycles × cycle_length`` steps after the end of ``history`` as a pandas object with
timestamps. ``predict_at(y, origins)`` gives forecasts from many origins at once (backtesting).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.cycles import check_cycle_length
from hai.forecast.data import FILL_POLICIES, as_frame, day_types
from hai.shared import InputError, Measurement, measure


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be an integer of at least {minimum}, got {value!r}")


class Forecaster(ABC):
    """Base class: validation, timestamps and the fit/predict contract.

    Subclasses implement ``_fit(frame)`` and ``_predict_origins(frame, origins)`` and the
    ``min_history_cycles`` property.
    """

    name = "forecaster"

    def __init__(
        self,
        cycle_length: int = 24,
        horizon_cycles: int = 1,
        *,
        period: str | None = "1D",
        country: str | None = None,
        subdiv: str | None = None,
        fill: str = "raise",
    ) -> None:
        self.cycle_length = cycle_length
        self.horizon_cycles = horizon_cycles
        self.period = period
        self.country = country
        self.subdiv = subdiv
        self.fill = fill

    # -- parameters -----------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        params: dict[str, Any] = {}
        for cls in type(self).__mro__:
            if cls is object or "__init__" not in cls.__dict__:
                continue
            for name in inspect.signature(cls.__dict__["__init__"]).parameters:
                if name != "self" and name not in params and hasattr(self, name):
                    value = getattr(self, name)
                    params[name] = list(value) if isinstance(value, tuple) else value
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    @abstractmethod
    def min_history_cycles(self) -> int:
        """Whole cycles of history that ``predict`` needs."""
        ...

    @property
    def horizon(self) -> int:
        """Forecast length in steps (``horizon_cycles × cycle_length``)."""
        return int(self.horizon_cycles * self.cycle_length)

    def _check_params(self) -> None:
        _check_positive_int("cycle_length", self.cycle_length, 2)
        _check_positive_int("horizon_cycles", self.horizon_cycles)
        if self.fill not in FILL_POLICIES:
            raise InputError(
                f"unknown fill policy {self.fill!r}", hint=f"use one of {', '.join(FILL_POLICIES)}"
            )

    # -- fit / predict --------------------------------------------------------------------
    def fit(self, y: Any) -> Self:
        """Learn from the series ``y`` (a pandas Series/DataFrame with a regular DatetimeIndex)."""
        self._check_params()
        frame = as_frame(y, fill=self.fill)  # type: ignore[arg-type]
        step = pd.Timedelta(frame.index.freq)
        check_cycle_length(step, self.cycle_length, self.period)
        self.freq_ = step
        self.columns_ = list(frame.columns)
        self.n_features_ = len(self.columns_)
        self.series_name_ = (y.name if y.name is not None else "y") if isinstance(y, pd.Series) else None
        with measure() as cost:
            self._fit(frame)
        self.fit_cost_: Measurement = cost
        return self

    def _fit(self, frame: pd.DataFrame) -> None:  # noqa: B027 - an optional hook, not abstract
        """Learn from a validated frame (baselines learn nothing)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "freq_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet", hint="call fit(y) first")

    def _prepare(self, history: Any) -> pd.DataFrame:
        self._check_fitted()
        frame = as_frame(history, fill=self.fill)  # type: ignore[arg-type]
        step = pd.Timedelta(frame.index.freq)
        if step != self.freq_:
            raise InputError(
                f"the history has a step of {step}, the model was fitted on {self.freq_}",
                hint="resample the history to the training step",
            )
        if frame.shape[1] != self.n_features_:
            raise InputError(
                f"the history has {frame.shape[1]} column(s), the model was fitted on {self.n_features_}"
            )
        if self.series_name_ is None and list(frame.columns) != self.columns_:
            raise InputError(
                f"the history's columns {list(frame.columns)} differ from the training columns "
                f"{self.columns_}"
            )
        return frame

    def predict(self, history: Any) -> pd.Series | pd.DataFrame:
        """Forecast the ``horizon`` steps that follow the end of ``history``.

        Returns a Series (the model was fitted on a Series) or a DataFrame with the training
        columns, indexed by the forecast timestamps.
        """
        frame = self._prepare(history)
        values = self.predict_at(frame, [len(frame)])[0]
        return self._wrap(values, frame.index[-1])

    def predict_at(self, y: Any, origins: Any) -> np.ndarray:
        """Forecasts from each origin in ``origins`` (integer positions into ``y``).

        The forecast from origin ``o`` uses ``y[:o]`` only; the result has shape
        ``(len(origins), horizon, n_columns)``.
        """
        frame = self._prepare(y)
        positions = np.asarray(origins, dtype=np.int64).reshape(-1)
        need = self.min_history_cycles * self.cycle_length
        if len(positions) and (positions.min() < need or positions.max() > len(frame)):
            raise InputError(
                f"a forecast needs at least {need} steps of history ({self.min_history_cycles} cycles of "
                f"{self.cycle_length}); got {int(positions.min())} (series of {len(frame)} steps)",
                hint="give a longer history, or fewer history_cycles",
            )
        return self._predict_origins(frame, positions)

    @abstractmethod
    def _predict_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray: ...

    def _wrap(self, values: np.ndarray, last: pd.Timestamp) -> pd.Series | pd.DataFrame:
        index = pd.date_range(last + self.freq_, periods=len(values), freq=self.freq_)
        if self.series_name_ is not None:
            return pd.Series(values[:, 0], index=index, name=self.series_name_)
        return pd.DataFrame(values, index=index, columns=self.columns_)

    # -- calendar helpers -----------------------------------------------------------------
    def _timestamps(self, frame: pd.DataFrame, positions: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(
            frame.index[0] + pd.to_timedelta(positions.reshape(-1) * self.freq_.value, unit="ns")
        )

    def _calendar(self, frame: pd.DataFrame, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weekday and day type of the timestamps at ``positions`` (any shape, may lie past the end)."""
        stamps = self._timestamps(frame, positions)
        weekday = np.asarray(stamps.dayofweek, dtype=np.int64).reshape(positions.shape)
        types = day_types(stamps, self.country, self.subdiv).reshape(positions.shape)
        return weekday, types

"""Point forecasters behind one small interface, each from a well-kept library.

=================  ===================================================  ==================
name               what                                                 library
=================  ===================================================  ==================
``seasonal_naive``  the value one season ago (168 h: same hour last week)  numpy
``profile``        mean per weekday × hour over the training data       pandas
``linear``         ridge regression on lags and calendar features       scikit-learn
``mlp``            multi-layer perceptron on lags and calendar          scikit-learn
``lightgbm``       gradient-boosted trees, one per horizon step         lightgbm (extra)
``ets``            exponential smoothing, additive daily season         statsmodels (extra)
=================  ===================================================  ==================

A forecaster is fitted on the training part of a series, then forecasts ``horizon`` values
from any origin ``o`` using only values before ``o`` (values after the last origin may be
NaN: they are never read). Inputs of the learned forecasters (:func:`lag_features`): the last
24 h, the 24 h that start one week before the origin, the calendar of the first step, and
for each forecast step the maximum and the mean of the same hour on the 7 days before the
origin. The maximum is there for PV: without weather inputs, the best value of the last week
at an hour tracks the season's clear-sky output, which a cloudy yesterday hides. With it the
median's MAE on SimBench PV3's test part fell from 0.0246 to 0.0211, and the load series
were level (README, *AutoPQ benchmark*).

With a holiday calendar (``holidays="DE-NW"``, :func:`hai.grid.autopq.data.day_of_week`)
public holidays count as Sundays in every calendar feature and in the profile's table, and
the learned forecasters also see the day type of the last step and whether the days one week
before the first and the last step were weekends or holidays (without a calendar these follow
from the first step's calendar, so they are only added with one).

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=24 * 21, freq="h")
>>> y = pd.Series(np.tile(np.arange(168.0), 3), index=idx)
>>> f = make_forecaster("seasonal_naive").fit(y.iloc[:336], horizon=24)
>>> f.predict(y, np.array([336]))[0, :3]
array([0., 1., 2.])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.grid.autopq.data import calendar_features, day_of_week, windows
from hai.shared import InputError
from hai.shared._optional import require

WEEK = 168
DAY = 24


def _origins(n: int, history: int, horizon: int) -> np.ndarray:
    return np.arange(history, n - horizon + 1, dtype=np.int64)


def lag_features(
    values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray, holidays: str | None = None
) -> np.ndarray:
    """Inputs of the learned forecasters: last 24 h, the 24 h from one week before, calendar,
    per step the maximum and mean of the same hour on the last 7 days (and, with a holiday
    calendar, the day types the module docstring lists)."""
    same_hour = np.asarray(values)[
        origins[:, None, None] + np.arange(DAY)[None, :, None] - DAY * np.arange(1, 8)[None, None, :]
    ]  # (n, step, day before): the same hour on each of the 7 days before the origin
    parts = [
        windows(values, origins, DAY, -DAY),
        windows(values, origins, DAY, -WEEK),
        calendar_features(index[origins], holidays),
        same_hour.max(axis=2),
        same_hour.mean(axis=2),
    ]
    if holidays is not None:
        last = origins + DAY - 1
        weekday, weekend = [2, 3], [6]
        parts += [
            calendar_features(index[last], holidays)[:, weekday + weekend],
            calendar_features(index[origins - WEEK], holidays)[:, weekend],
            calendar_features(index[last - WEEK], holidays)[:, weekend],
        ]
    return np.hstack(parts)


class PointForecaster(ABC):
    """Fit on a training series; forecast ``horizon`` steps from given origins."""

    name: ClassVar[str]
    #: positions of history an origin needs
    history: int = WEEK
    #: public holidays as Sundays (``"DE-NW"``; ``None``: none), set by :func:`make_forecaster`
    holidays: str | None = None

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.horizon_ = DAY

    def fit(self, y: pd.Series, *, horizon: int = DAY) -> PointForecaster:
        """Fit on ``y`` (the training part); returns self."""
        self.horizon_ = int(horizon)
        origins = _origins(len(y), self.history, self.horizon_)
        if len(origins) < 2:
            raise InputError(
                f"the {self.name} forecaster needs at least {self.history + self.horizon_ + 1} "
                f"training hours, "
                f"got {len(y)}",
                hint="give a longer series or another forecaster (seasonal_naive, profile)",
            )
        self._fit(np.asarray(y.to_numpy(dtype=float)), pd.DatetimeIndex(y.index), origins)
        return self

    @abstractmethod
    def _fit(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> None: ...

    def predict(self, y: pd.Series, origins: np.ndarray) -> np.ndarray:
        """Forecasts of shape ``(len(origins), horizon)`` for ``y[o : o + horizon]``.

        ``y`` must cover every forecast step (its index gives the calendar); values at and
        after each origin are not read.
        """
        origins = np.asarray(origins, dtype=np.int64)
        if len(origins) and (origins.min() < self.history or origins.max() + self.horizon_ > len(y)):
            raise InputError(
                f"forecast origins need {self.history} h of history and {self.horizon_} h of time stamps "
                "after them"
            )
        return self._predict(np.asarray(y.to_numpy(dtype=float)), pd.DatetimeIndex(y.index), origins)

    @abstractmethod
    def _predict(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> np.ndarray: ...

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


class SeasonalNaive(PointForecaster):
    """``ŷ[o+h] = y[o+h-k·season]``, the last value at the same phase of the season."""

    name = "seasonal_naive"

    def __init__(self, season: int = WEEK) -> None:
        super().__init__(season=int(season))
        self.season = int(season)
        self.history = self.season

    def _fit(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> None:
        pass

    def _predict(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> np.ndarray:
        h = np.arange(self.horizon_)
        back = self.season * (h // self.season + 1)
        return values[origins[:, None] + h[None, :] - back[None, :]]


class Profile(PointForecaster):
    """Mean of the training data per weekday × hour (a weekly load profile; holidays are
    Sundays with a holiday calendar)."""

    name = "profile"
    history = 0

    def _fit(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> None:
        key = day_of_week(index, self.holidays) * 24 + index.hour.to_numpy()
        table = pd.Series(values).groupby(key).mean()
        self.table_ = np.full(WEEK, float(np.mean(values)))
        self.table_[table.index.to_numpy()] = table.to_numpy()

    def _predict(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> np.ndarray:
        key = day_of_week(index, self.holidays) * 24 + index.hour.to_numpy()
        return self.table_[windows(key, origins, self.horizon_)]


class _Regression(PointForecaster):
    """A multi-output regressor on :func:`lag_features`."""

    def _model(self) -> Any:
        raise NotImplementedError

    def _fit(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> None:
        x = lag_features(values, index, origins, self.holidays)
        target = windows(values, origins, self.horizon_)
        self.model_ = self._model().fit(x, target)

    def _predict(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> np.ndarray:
        if not len(origins):
            return np.zeros((0, self.horizon_))
        return np.asarray(
            self.model_.predict(lag_features(values, index, origins, self.holidays)), dtype=float
        )


class Linear(_Regression):
    """scikit-learn ``Ridge`` (one linear model per horizon step, fitted jointly)."""

    name = "linear"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=float(alpha))

    def _model(self) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.params["alpha"])


class MLP(_Regression):
    """scikit-learn ``MLPRegressor`` on standardised inputs and outputs."""

    name = "mlp"

    def __init__(
        self, hidden: int = 64, layers: int = 1, alpha: float = 1e-4, max_iter: int = 200, seed: int = 0
    ) -> None:
        super().__init__(
            hidden=int(hidden), layers=int(layers), alpha=float(alpha), max_iter=int(max_iter), seed=int(seed)
        )

    def _model(self) -> Any:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        p = self.params
        mlp = MLPRegressor(
            hidden_layer_sizes=(p["hidden"],) * p["layers"],
            alpha=p["alpha"],
            max_iter=p["max_iter"],
            early_stopping=True,
            random_state=p["seed"],
        )
        return TransformedTargetRegressor(make_pipeline(StandardScaler(), mlp), transformer=StandardScaler())


class LightGBM(_Regression):
    """LightGBM ``LGBMRegressor``, one per horizon step (scikit-learn's ``MultiOutputRegressor``)."""

    name = "lightgbm"

    def __init__(
        self, n_estimators: int = 100, learning_rate: float = 0.1, num_leaves: int = 31, seed: int = 0
    ) -> None:
        require("lightgbm", extra="lightgbm", distribution="hai-grid")
        super().__init__(
            n_estimators=int(n_estimators),
            learning_rate=float(learning_rate),
            num_leaves=int(num_leaves),
            seed=int(seed),
        )

    def _model(self) -> Any:
        lightgbm = require("lightgbm", extra="lightgbm", distribution="hai-grid")
        from sklearn.multioutput import MultiOutputRegressor

        p = self.params
        return MultiOutputRegressor(
            lightgbm.LGBMRegressor(
                n_estimators=p["n_estimators"],
                learning_rate=p["learning_rate"],
                num_leaves=p["num_leaves"],
                random_state=p["seed"],
                n_jobs=1,
                verbose=-1,
            )
        )


class ETS(PointForecaster):
    """statsmodels ``ETSModel``: additive error, no trend, additive daily season (24 h).

    Fitted on the last ``fit_hours`` of the training data (heuristic initial states, smoothing
    parameters by maximum likelihood). Forecasts from every origin come from one pass of the
    fitted model over the series (``ETSModel.smooth`` with the fitted parameters and initial
    states, started at the phase of the fitted window): with no trend and ``h ≤ 24`` the
    forecast is ``level[o-1] + season[o-1+h-24]``, what ``smooth(...).forecast`` returns from
    that origin (tested).
    """

    name = "ets"
    history = 2 * DAY

    def __init__(self, fit_hours: int = 24 * 56) -> None:
        super().__init__(fit_hours=int(fit_hours))

    def model(self, values: np.ndarray) -> Any:
        """The statsmodels model over ``values`` with the fitted initial states (after fit)."""
        ets = require(
            "statsmodels.tsa.exponential_smoothing.ets", extra="statsmodels", distribution="hai-grid"
        )
        return ets.ETSModel(
            values,
            error="add",
            trend=None,
            seasonal="add",
            seasonal_periods=DAY,
            initialization_method="known",
            initial_level=self.initial_level_,
            initial_seasonal=self.initial_seasonal_,
        )

    def _fit(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> None:
        if self.horizon_ > DAY:
            raise InputError(f"the ets forecaster supports horizons up to {DAY} h, got {self.horizon_}")
        ets = require(
            "statsmodels.tsa.exponential_smoothing.ets", extra="statsmodels", distribution="hai-grid"
        )
        window = values[-self.params["fit_hours"] :]
        # the phase of the window's first step, so that the seasonal states line up later
        self.phase_ = int(index[-len(window)].hour)
        import warnings

        model = ets.ETSModel(
            window,
            error="add",
            trend=None,
            seasonal="add",
            seasonal_periods=DAY,
            initialization_method="heuristic",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of the optimiser
            result = model.fit(disp=False)
        self.params_ = np.asarray(result.params, dtype=float)
        self.initial_level_ = float(result.initial_level)
        self.initial_seasonal_ = np.asarray(result.initial_seasonal, dtype=float)

    def _predict(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray) -> np.ndarray:
        if not len(origins):
            return np.zeros((0, self.horizon_))
        # start the filter at the fitted initial states' phase: the first hour equal to phase_
        start = int((self.phase_ - int(index[0].hour)) % DAY)
        end = int(origins.max())
        states = np.asarray(self.model(values[start:end]).smooth(self.params_).states, dtype=float)
        level, season = states[:, 0], states[:, 1]
        pos = origins - start - 1  # state index after observing y[o-1]
        h = np.arange(1, self.horizon_ + 1)
        return level[pos][:, None] + season[pos[:, None] + h[None, :] - DAY]


FORECASTERS: dict[str, type[PointForecaster]] = {
    cls.name: cls for cls in (SeasonalNaive, Profile, Linear, MLP, LightGBM, ETS)
}


def make_forecaster(name: str, *, holidays: str | None = None, **params: Any) -> PointForecaster:
    """A forecaster by name (see the module docstring), with its hyperparameters and the
    holiday calendar of the series (``"DE-NW"``; ``None``: none)."""
    if name not in FORECASTERS:
        raise InputError(f"unknown forecaster {name!r}", hint=f"use one of {', '.join(FORECASTERS)} or auto")
    try:
        forecaster = FORECASTERS[name](**params)
    except TypeError as exc:
        raise InputError(f"bad hyperparameters for the {name} forecaster: {exc}") from None
    forecaster.holidays = holidays
    return forecaster

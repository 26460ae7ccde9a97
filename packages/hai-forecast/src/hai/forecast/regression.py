"""The practitioners' strong baselines: ridge ARX per hour of the day, gradient-boosted trees on lags.

Both forecast the value at step ``t`` from values at least one horizon ``H`` old, so the same
features serve every lead time and every forecast origin (any hour, not only cycle starts).
With ``L`` the cycle length, the features of ``t`` are

- ``same_type_lag``: the value one cycle of ``t``'s day type back (workday, Saturday, Sunday or
  holiday, as the RHP baselines), the ``last_profile`` forecast: the *reference*;
- relative to the reference: the most recent same-phase value (``y[t−H]`` for day-ahead), the
  same phase one week back (``y[t−7L]``), the mean of the last three cycles of ``t``'s day type
  at that phase, and the level (the mean of the cycle that ends one horizon before ``t``);
- the calendar of ``t``: weekday (one-hot) and public holiday (``country``/``subdiv`` through
  the ``holidays`` package; a holiday on a Monday–Saturday);
- with future-known ``covariates`` given to ``fit``/``predict`` (temperature …), per covariate
  its value at ``t`` relative to its value at the reference's step (``<name>_change``: what
  moves the target away from its reference) and its value at ``t`` (``<name>``).

Both learn the residual of the target over the reference, so a model that learns nothing is
the last-profile baseline and a level shift between training and test does not pull the
forecast back to the training mean (a plain ARX on absolute lags did, on the Victoria demand:
MASE about 1.0 against 0.67 for the residual form).

:class:`RidgeARX` fits one ridge regression per phase of the cycle (for hourly data: 24 models,
one per hour of the day) on the standardised features, the intercept unpenalised: the closed
form of ``sklearn.pipeline.make_pipeline(StandardScaler(), Ridge(alpha))``, computed with numpy
(scikit-learn is not needed; the tests check the coefficients against it). It fits in a fraction
of a second.

:class:`GradientBoostedLags` fits one LightGBM regressor (the optional extra ``lightgbm``) on
the same features plus the phase.

Each column of a DataFrame gets its own models.

>>> from hai.forecast import LastProfile, backtest, synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=60, seed=0)
>>> ridge, profile = backtest(RidgeARX(), y), backtest(LastProfile(), y)
>>> round(ridge.metrics["mase"], 3), round(profile.metrics["mase"], 3)  # over the week-lag naive
(0.88, 0.962)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.base import Forecaster, _check_positive_int
from hai.forecast.data import SUNDAY_HOLIDAY
from hai.shared import InputError, MissingPackageError


def _check_positive_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not value > 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if not np.isfinite(float(value)):
        raise InputError(f"{name} must be finite, got {value!r}")


class LagRegression(Forecaster):
    """The shared feature builder of :class:`RidgeARX` and :class:`GradientBoostedLags`."""

    name = "lag_regression"
    supports_covariates = True

    #: Cycles searched back for the same day type (three weeks hold three cycles of each type).
    type_window = 21

    @property
    def min_history_cycles(self) -> int:
        return self._first + self.type_window - 1

    @property
    def _first(self) -> int:
        """The most recent cycle at least one horizon old, in cycles back."""
        return -(-self.horizon // int(self.cycle_length))

    @property
    def feature_names(self) -> list[str]:
        """The names of the columns of :meth:`features` (values relative to ``same_type_lag``)."""
        names = getattr(self, "covariates_", [])
        covariates = [f"{name}{part}" for name in names for part in ("_change", "")]
        return [*VALUE_FEATURES, *(f"weekday_{d}" for d in range(7)), "holiday", *covariates]

    def _phase(self, frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        stamps = self._timestamps(frame, positions)
        if stamps.tz is not None:
            stamps = stamps.tz_localize(None)
        return np.asarray((stamps.asi8 // self.freq_.value) % int(self.cycle_length), dtype=np.int64)

    def features(self, frame: pd.DataFrame, positions: Any, column: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(x, reference)``: the feature rows ``(len(positions), n_features)`` for the targets at
        ``positions`` and the reference they are relative to (``same_type_lag``).

        Every value read is at least one horizon old: a row for ``t`` reads ``frame`` before
        ``t − H + 1`` only, so positions may lie up to one horizon past the end of ``frame``.
        """
        t = np.asarray(positions, dtype=np.int64).reshape(-1)
        values = frame.to_numpy(dtype=np.float64)[:, column]
        H, L = self.horizon, int(self.cycle_length)
        back = self._first + np.arange(self.type_window)  # cycles back, all at least H old
        weekday, target_type = self._calendar(frame, t)
        _, past_type = self._calendar(frame, t[:, None] - L * back[None, :])
        match = past_type == target_type[:, None]
        match[:, -1] |= ~match.any(axis=1)  # no cycle of that type in reach: the oldest one
        lagged = values[t[:, None] - L * back[None, :]]
        rows = np.arange(len(t))
        reference_back = back[np.argmax(match, axis=1)]
        reference = lagged[rows, np.argmax(match, axis=1)]
        first3 = match & (np.cumsum(match, axis=1) <= 3)
        same_mean = (lagged * first3).sum(axis=1) / first3.sum(axis=1)
        week = -(-self._first // 7) * 7  # the most recent same weekday at least H old
        level = values[t[:, None] - H - np.arange(L)[None, :]].mean(axis=1)
        relative = (
            np.column_stack([lagged[:, 0], values[t - week * L], same_mean, level]) - reference[:, None]
        )
        holiday = (target_type == SUNDAY_HOLIDAY) & (weekday != 6)
        x = np.column_stack([relative, np.eye(7)[weekday], holiday.astype(np.float64)])
        if self.n_covariates:
            now = self._covariates_at(frame, t)  # (n, K): future-known at the target's step
            then = self._covariates_at(frame, t - L * reference_back)
            pairs = np.stack([now - then, now], axis=-1).reshape(len(t), -1)  # name_change, name
            x = np.column_stack([x, pairs])
        return x, reference

    def _training_positions(self, frame: pd.DataFrame) -> np.ndarray:
        first = self.min_history_cycles * int(self.cycle_length)
        if len(frame) - first < 2 * int(self.cycle_length):
            raise InputError(
                f"{self.name} needs more than {first + 2 * int(self.cycle_length)} steps to fit "
                f"({self.min_history_cycles} cycles of lags and two cycles of targets); the series has "
                f"{len(frame)}",
                hint="give a longer series",
            )
        return np.arange(first, len(frame), dtype=np.int64)

    def _targets(self, origins: np.ndarray) -> np.ndarray:
        return (origins[:, None] + np.arange(self.horizon)[None, :]).reshape(-1)


#: The value features, each minus ``same_type_lag`` (the value one cycle of the target's day type
#: back, at least a horizon old; the ``last_profile`` baseline's forecast).
VALUE_FEATURES = ("lag_recent", "lag_week", "same_type_mean", "level")


def ridge_closed_form(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """``(coef, intercept)`` of ridge regression on standardised ``x``, in the units of ``x``.

    Equals ``make_pipeline(StandardScaler(), Ridge(alpha)).fit(x, y)`` (features with zero spread
    are left unscaled, as StandardScaler does).

    >>> x = np.array([[0.0], [1.0], [2.0]])
    >>> coef, b = ridge_closed_form(x, 2 * x[:, 0] + 1, 1e-12)
    >>> round(float(coef[0]), 6), round(b, 6)
    (2.0, 1.0)
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    y_mean = float(y.mean())
    gram = z.T @ z + alpha * np.eye(z.shape[1])
    w = np.linalg.solve(gram, z.T @ (y - y_mean))
    coef = w / scale
    return coef, y_mean - float(mean @ coef)


class RidgeARX(LagRegression):
    """Ridge ARX: one ridge regression per phase of the cycle on lags ≥ horizon and the calendar.

    The target is the residual over ``same_type_lag`` (the last-profile forecast); ``alpha`` is
    the ridge penalty on the standardised features.

    >>> from hai.forecast import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=30, seed=1)
    >>> model = RidgeARX(alpha=10.0).fit(y)
    >>> model.coef_.shape  # (columns, phases, features)
    (1, 24, 12)
    >>> model.predict(y).shape
    (24,)
    """

    name = "ridge_arx"

    def __init__(
        self,
        cycle_length: int = 24,
        horizon_cycles: int = 1,
        *,
        alpha: float = 10.0,
        period: str | None = "1D",
        country: str | None = None,
        subdiv: str | None = None,
        fill: str = "raise",
    ) -> None:
        super().__init__(
            cycle_length, horizon_cycles, period=period, country=country, subdiv=subdiv, fill=fill
        )
        self.alpha = alpha

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_float("alpha", self.alpha)

    def _fit(self, frame: pd.DataFrame) -> None:
        t = self._training_positions(frame)
        phase = self._phase(frame, t)
        L = int(self.cycle_length)
        self.coef_ = np.zeros((frame.shape[1], L, len(self.feature_names)))
        self.intercept_ = np.zeros((frame.shape[1], L))
        values = frame.to_numpy(dtype=np.float64)
        for c in range(frame.shape[1]):
            x, reference = self.features(frame, t, c)
            target = values[t, c] - reference
            for p in range(L):
                rows = phase == p
                self.coef_[c, p], self.intercept_[c, p] = ridge_closed_form(
                    x[rows], target[rows], float(self.alpha)
                )

    def _predict_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        t = self._targets(origins)
        phase = self._phase(frame, t)
        out = np.empty((len(t), frame.shape[1]))
        for c in range(frame.shape[1]):
            x, reference = self.features(frame, t, c)
            residual = np.einsum("nf,nf->n", x, self.coef_[c, phase]) + self.intercept_[c, phase]
            out[:, c] = reference + residual
        return out.reshape(len(origins), self.horizon, frame.shape[1])


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise MissingPackageError(
            "GradientBoostedLags needs LightGBM, which is not installed",
            hint="pip install 'hai-forecast[lightgbm]'",
        ) from None
    return lightgbm


class GradientBoostedLags(LagRegression):
    """Gradient-boosted trees (LightGBM) on the relative lags, the phase and the calendar.

    The target is the residual over ``same_type_lag``, as for :class:`RidgeARX`, so trees (which
    cannot extrapolate) follow a change of level. ``n_estimators``, ``learning_rate``,
    ``num_leaves`` and ``min_child_samples`` are LightGBM's; ``threads`` is its ``n_jobs`` (one by
    default), ``seed`` its ``random_state``. Needs the optional extra ``lightgbm``
    (``pip install 'hai-forecast[lightgbm]'``).
    """

    name = "lightgbm"

    def __init__(
        self,
        cycle_length: int = 24,
        horizon_cycles: int = 1,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 10,
        threads: int = 1,
        seed: int = 0,
        period: str | None = "1D",
        country: str | None = None,
        subdiv: str | None = None,
        fill: str = "raise",
    ) -> None:
        super().__init__(
            cycle_length, horizon_cycles, period=period, country=country, subdiv=subdiv, fill=fill
        )
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.threads = threads
        self.seed = seed

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("n_estimators", "min_child_samples", "threads"):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("num_leaves", self.num_leaves, 2)
        _check_positive_int("seed", self.seed, 0)
        _check_positive_float("learning_rate", self.learning_rate)

    def _rows(self, frame: pd.DataFrame, t: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        x, reference = self.features(frame, t, c)
        return np.column_stack([x, self._phase(frame, t).astype(np.float64)]), reference

    def _fit(self, frame: pd.DataFrame) -> None:
        lgb = _lightgbm()
        t = self._training_positions(frame)
        values = frame.to_numpy(dtype=np.float64)
        self.models_: list[Any] = []
        for c in range(frame.shape[1]):
            x, reference = self._rows(frame, t, c)
            model = lgb.LGBMRegressor(
                n_estimators=int(self.n_estimators),
                learning_rate=float(self.learning_rate),
                num_leaves=int(self.num_leaves),
                min_child_samples=int(self.min_child_samples),
                n_jobs=int(self.threads),
                random_state=int(self.seed),
                verbose=-1,
            )
            model.fit(x, values[t, c] - reference)
            self.models_.append(model)

    def _predict_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        t = self._targets(origins)
        out = np.empty((len(t), frame.shape[1]))
        for c, model in enumerate(self.models_):
            x, reference = self._rows(frame, t, c)
            out[:, c] = reference + model.predict(x)
        return out.reshape(len(origins), self.horizon, frame.shape[1])


#: The lag-regression baselines by name.
REGRESSIONS: dict[str, type[LagRegression]] = {"ridge_arx": RidgeARX, "lightgbm": GradientBoostedLags}

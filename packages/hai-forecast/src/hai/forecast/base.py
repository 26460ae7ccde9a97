"""The estimator contract every hai.forecast model follows (scikit-learn style).

The constructor only stores parameters; ``fit(y)`` validates the series, learns and returns
``self`` (learned state in attributes ending in ``_``); ``predict(history)`` returns the next
``horizon_cycles × cycle_length`` steps after the end of ``history`` as a pandas object with
timestamps. ``predict_at(y, origins)`` gives forecasts from many origins at once (backtesting).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.cycles import check_cycle_length
from hai.forecast.data import FILL_POLICIES, as_frame, day_types
from hai.shared import InputError, Measurement, measure


def wall_phase(timestamp: Any, step: pd.Timedelta, cycle_length: int) -> int:
    """Steps from the start of a cycle to ``timestamp`` on its wall clock (cycles from 1970-01-01).

    For daily cycles this is the time of day in steps: 05:00 on an hourly grid is 5.

    >>> wall_phase(pd.Timestamp("2024-03-01 05:00"), pd.Timedelta("1h"), 24)
    5
    """
    ts = pd.Timestamp(timestamp)
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return int(((ts - pd.Timestamp(0)) // step) % int(cycle_length))


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be an integer of at least {minimum}, got {value!r}")


class Forecaster(ABC):
    """Base class: validation, timestamps and the fit/predict contract.

    Subclasses implement ``_fit(frame)`` and ``_predict_origins(frame, origins)`` and the
    ``min_history_cycles`` property.
    """

    name = "forecaster"

    #: Whether ``fit``/``predict`` take future-known ``covariates`` (ReCycle, the lag regressions).
    supports_covariates = False

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

    # -- parameters (scikit-learn's estimator contract, duck-typed: sklearn is not needed) --
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor parameter names, over the class and its bases (sklearn's name)."""
        names: list[str] = []
        for klass in cls.__mro__:
            if klass is object or "__init__" not in klass.__dict__:
                continue
            for name, param in inspect.signature(klass.__dict__["__init__"]).parameters.items():
                if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    continue
                if name not in names:
                    names.append(name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters and their current values (scikit-learn's ``get_params``).

        The values are the objects given to the constructor (or :meth:`set_params`), unchanged,
        so ``sklearn.base.clone`` works. No parameter is an estimator, so ``deep`` changes nothing.

        >>> from hai.forecast import SameTypeMean
        >>> SameTypeMean(k=2).get_params(deep=False)["k"]
        2
        """
        del deep  # no nested estimators
        return {name: getattr(self, name) for name in self._get_param_names() if hasattr(self, name)}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters by name and return ``self`` (scikit-learn's ``set_params``).

        An unknown name raises :class:`InputError` (a ``ValueError``, as in scikit-learn). The
        values are checked when the model is fitted, as for the constructor.

        >>> from hai.forecast import SameTypeMean
        >>> SameTypeMean().set_params(k=4).k
        4
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise InputError(
                    f"invalid parameter {name!r} for {type(self).__name__}",
                    hint=f"valid parameters: {', '.join(valid)}",
                )
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        """scikit-learn ≥ 1.6 tags: a regressor on a time series (fit takes the target only).

        Called by scikit-learn only, so it imports scikit-learn only then.
        """
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=False, single_output=True, multi_output=True),
            regressor_tags=RegressorTags(),
            input_tags=InputTags(one_d_array=True, two_d_array=True, allow_nan=self.fill != "raise"),
            requires_fit=True,
            non_deterministic=False,
        )

    def _more_tags(self) -> dict[str, Any]:
        """scikit-learn < 1.6 tags (the dictionary form of :meth:`__sklearn_tags__`)."""
        return {"allow_nan": self.fill != "raise", "multioutput": True, "requires_y": False}

    _estimator_type = "regressor"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
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

    # -- covariates -----------------------------------------------------------------------
    def _covariate_frame(
        self, covariates: Any, *, fitting: bool, step: pd.Timedelta | None = None
    ) -> pd.DataFrame | None:
        """``covariates`` as a validated frame (the fitted columns, in order), or None.

        Refuses covariates for a model that takes none, or that was fitted without them, and a
        model fitted with covariates called without them.
        """
        names = list(getattr(self, "covariates_", []) or [])
        if covariates is None:
            if names and not fitting:
                raise InputError(
                    f"this {type(self).__name__} was fitted with the covariates {', '.join(names)}, and "
                    "none were given",
                    hint="pass covariates= covering the history and the forecast horizon",
                )
            return None
        if not self.supports_covariates:
            raise InputError(
                f"{self.name} takes no covariates",
                hint="use recycle, ridge_arx or lightgbm for covariates, or leave them out",
            )
        if not fitting and not names:
            raise InputError(
                f"this {type(self).__name__} was fitted without covariates, and covariates were given",
                hint="leave them out, or refit with covariates",
            )
        if isinstance(covariates, pd.Series):
            covariates = covariates.to_frame(covariates.name if covariates.name is not None else "covariate")
        if not isinstance(covariates, pd.DataFrame):
            raise InputError(
                f"covariates must be a pandas DataFrame (or Series) indexed by time, got "
                f"{type(covariates).__name__}"
            )
        covariates = covariates.set_axis([str(c) for c in covariates.columns], axis=1)
        if not fitting:
            missing = [c for c in names if c not in covariates.columns]
            if missing:
                raise InputError(
                    f"the covariates lack the column(s) {', '.join(missing)} the model was fitted with",
                    hint=f"give the columns {', '.join(names)}",
                )
            covariates = covariates[names]
        frame = as_frame(covariates, fill=self.fill, name="covariate")  # type: ignore[arg-type]
        expected = step if step is not None else self.freq_
        if pd.Timedelta(frame.index.freq) != expected:
            raise InputError(
                f"the covariates have a step of {pd.Timedelta(frame.index.freq)}, the series {expected}",
                hint="resample the covariates to the series' step",
            )
        return frame

    @contextmanager
    def _using_covariates(self, covariates: pd.DataFrame | None) -> Iterator[None]:
        """Make ``covariates`` the ones :meth:`_covariates_at` reads for the duration of a call."""
        before = getattr(self, "_active_covariates", None)
        self._active_covariates = covariates
        try:
            yield
        finally:
            self._active_covariates = before

    @property
    def n_covariates(self) -> int:
        """The number of covariate columns the model was fitted with (0: none)."""
        return len(getattr(self, "covariates_", []) or [])

    def _covariates_at(self, frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        """The covariates at ``positions`` of ``frame`` (any shape; may lie past its end):
        ``positions.shape + (n_covariates,)``, looked up by timestamp."""
        cov: pd.DataFrame | None = getattr(self, "_active_covariates", None)
        if cov is None:
            raise InputError("covariates are needed here, and none were given")
        positions = np.asarray(positions, dtype=np.int64)
        try:
            shift = frame.index[0] - cov.index[0]
        except TypeError:
            raise InputError(
                f"the covariates' timestamps ({cov.index.tz or 'no time zone'}) and the series' "
                f"({frame.index.tz or 'no time zone'}) are in different time zones",
                hint="give both in the same zone (or both without one)",
            ) from None
        if shift % self.freq_ != pd.Timedelta(0):
            raise InputError(
                f"the covariates' timestamps (from {cov.index[0]}) are not on the series' grid "
                f"(from {frame.index[0]}, step {self.freq_})"
            )
        index = positions + int(shift // self.freq_)
        outside = (index < 0) | (index >= len(cov))
        if outside.any():
            first = frame.index[0] + int(positions[outside].reshape(-1)[0]) * self.freq_
            last = frame.index[0] + (int(positions.max())) * self.freq_
            raise InputError(
                f"the covariates ({', '.join(map(str, cov.columns))}) have no value for {first}: they "
                f"cover {cov.index[0]} to {cov.index[-1]}, and this model needs them up to {last}",
                hint="give covariates for every step of the history and of the forecast horizon "
                "(future-known values: a forecast, a calendar, a plan)",
            )
        return cov.to_numpy(dtype=np.float64)[index]

    # -- fit / predict --------------------------------------------------------------------
    def fit(self, y: Any, covariates: Any = None) -> Self:
        """Learn from the series ``y`` (a pandas Series/DataFrame with a regular DatetimeIndex).

        ``covariates``: future-known exogenous inputs (temperature, a price, a plan), a
        DataFrame (or Series) on the same time grid covering at least every step of ``y``; only
        for models with ``supports_covariates`` (ReCycle, :class:`~hai.forecast.RidgeARX`,
        :class:`~hai.forecast.GradientBoostedLags`). The model then needs them at ``predict``
        too, for the history and the forecast horizon. They are inputs, never targets.
        """
        self._check_params()
        frame = as_frame(y, fill=self.fill)  # type: ignore[arg-type]
        if hasattr(self, "covariates_"):
            del self.covariates_  # a refit starts afresh
        cov = self._covariate_frame(covariates, fitting=True, step=pd.Timedelta(frame.index.freq))
        if cov is not None:
            both = [c for c in cov.columns if c in [str(k) for k in frame.columns]]
            if both:
                raise InputError(
                    f"{', '.join(both)} is both a target column and a covariate",
                    hint="drop it from the series (targets) or from the covariates",
                )
        step = pd.Timedelta(frame.index.freq)
        check_cycle_length(step, self.cycle_length, self.period)
        self.freq_ = step
        self.columns_ = list(frame.columns)
        self.n_features_ = len(self.columns_)
        self.series_name_ = (y.name if y.name is not None else "y") if isinstance(y, pd.Series) else None
        # The whole cycles that fitting uses end at the end of the series (a leading remainder is
        # dropped); the networks learn cycles that start at this time of the cycle.
        self.cycle_start_: pd.Timestamp = frame.index[len(frame) % int(self.cycle_length)]
        self.covariates_: list[str] = [] if cov is None else list(cov.columns)
        with self._using_covariates(cov):
            if cov is not None:
                self._covariates_at(frame, np.array([0, len(frame) - 1]))  # they cover the series
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

    def predict(self, history: Any, covariates: Any = None) -> pd.Series | pd.DataFrame:
        """Forecast the ``horizon`` steps that follow the end of ``history``.

        Returns a Series (the model was fitted on a Series) or a DataFrame with the training
        columns, indexed by the forecast timestamps. A model fitted with covariates needs them
        for the history and the whole forecast horizon.
        """
        frame = self._prepare(history)
        values = self.predict_at(frame, [len(frame)], covariates=covariates)[0]
        return self._wrap(values, frame.index[-1])

    def predict_at(self, y: Any, origins: Any, covariates: Any = None) -> np.ndarray:
        """Forecasts from each origin in ``origins`` (integer positions into ``y``).

        The forecast from origin ``o`` uses ``y[:o]`` only (and the covariates up to the end of
        its horizon); the result has shape ``(len(origins), horizon, n_columns)``.
        """
        frame = self._prepare(y)
        cov = self._covariate_frame(covariates, fitting=False)
        with self._using_covariates(cov):
            return self._predict_checked(frame, origins)

    def _predict_checked(self, frame: pd.DataFrame, origins: Any) -> np.ndarray:
        positions = np.asarray(origins, dtype=np.int64).reshape(-1)
        need = self.min_history_cycles * self.cycle_length
        if len(positions) and (positions.min() < need or positions.max() > len(frame)):
            raise InputError(
                f"a forecast needs at least {need} steps of history ({self.min_history_cycles} cycles of "
                f"{self.cycle_length}); got {int(positions.min())} (series of {len(frame)} steps)",
                hint="give a longer history, or fewer history_cycles",
            )
        self._check_origins(frame, positions)
        if self.n_covariates and len(positions):  # the horizon first: the likeliest gap
            self._covariates_at(frame, int(positions.max()) + np.arange(self.horizon))
        forecast = self._predict_origins(frame, positions)
        if not np.isfinite(forecast).all():
            raise InputError(
                f"the {self.name} forecast is not finite ({int((~np.isfinite(forecast)).sum())} NaN or "
                "infinite values): the series' values or the model's weights overflow float arithmetic",
                hint="rescale the series (e.g. kW to MW), or retrain the model",
            )
        return forecast

    def _check_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> None:  # noqa: B027
        """Refuse origins the model cannot forecast from (the networks: not at a cycle start)."""

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

"""Baselines: persistence, seasonal naive and the recent-historic-profile (RHP) family.

They are forecasters in their own right (same ``fit``/``predict`` contract as every model) and
ReCycle's residual base. Day types follow ReCycle's ``loose_rhp``: 0 workday (Mon–Fri),
1 Saturday, 2 Sunday or public holiday (``country``/``subdiv`` through the ``holidays``
package; without a country only Sundays are type 2).

================  =====================================================================  ========
name              forecast of each horizon cycle                                          context
================  =====================================================================  ========
persistence       the last observed value, repeated                                       1 cycle
seasonal_naive    the last observed cycle (lag one cycle), repeated                       1 cycle
weekly_naive      the cycle one week earlier (lag seven cycles; the MASE scale)           7 cycles
last_profile      the most recent cycle of the same day type                             7 cycles
same_type_mean    the mean of the last ``k`` cycles of the same day type (k = 3)        7·k cycles
ten_day_mean      the mean of the last ``days`` cycles (days = 10)                       ``days``
================  =====================================================================  ========

A day-type profile with no cycle of its type inside the context (a long holiday streak) falls
back to the last cycle. Forecasts for later horizon cycles use the history only.

>>> from hai.forecast.data import synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=21, seed=0)
>>> LastProfile().fit(y).predict(y).shape
(24,)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.base import Forecaster, _check_positive_int
from hai.forecast.cycles import compress
from hai.shared import InputError


def rhp_profile(
    method: str,
    past: np.ndarray,
    past_types: np.ndarray,
    future_types: np.ndarray,
    *,
    k: int = 3,
) -> np.ndarray:
    """Baseline profiles for future cycles from past cycles (the numpy core of every baseline).

    ``past`` has shape ``(n, L, C)`` (oldest first), ``past_types`` ``(n,)``, ``future_types``
    ``(F,)``; returns ``(F, L, C)``. ``method`` is a name from :data:`BASELINES`; ``k`` is
    the number of cycles averaged by ``same_type_mean`` and ``ten_day_mean``.

    >>> past = np.arange(6.0).reshape(3, 2, 1)  # cycles [0,1], [2,3], [4,5]
    >>> rhp_profile("same_type_mean", past, np.array([0, 1, 0]), np.array([0]), k=2)[0, :, 0].tolist()
    [2.0, 3.0]
    """
    n = past.shape[0]
    n_future = len(future_types)
    if n < 1:
        raise InputError("a baseline needs at least one past cycle")
    if method == "persistence":
        return np.broadcast_to(past[-1, -1], (n_future, past.shape[1], past.shape[2])).copy()
    if method == "seasonal_naive":
        return np.broadcast_to(past[-1], (n_future, *past.shape[1:])).copy()
    if method == "weekly_naive":
        if n < k:
            raise InputError(f"the weekly naive forecast needs {k} past cycles, got {n}")
        return np.stack([past[n - k + f % k] for f in range(n_future)])
    if method == "ten_day_mean":
        return np.broadcast_to(past[-k:].mean(axis=0), (n_future, *past.shape[1:])).copy()
    if method not in ("last_profile", "same_type_mean"):
        raise InputError(f"unknown baseline {method!r}", hint=f"use one of {', '.join(BASELINES)}")
    count = 1 if method == "last_profile" else k
    out = np.empty((n_future, *past.shape[1:]), dtype=np.float64)
    cache: dict[int, np.ndarray] = {}
    for i, day_type in enumerate(np.asarray(future_types).tolist()):
        if day_type not in cache:
            same = np.flatnonzero(past_types == day_type)[-count:]
            cache[day_type] = past[same].mean(axis=0) if len(same) else past[-1]
        out[i] = cache[day_type]
    return out


class Baseline(Forecaster):
    """A baseline forecaster: learns nothing, forecasts from the last ``context_cycles`` cycles."""

    method = "seasonal_naive"

    @property
    def context_cycles(self) -> int:
        """Whole cycles of history the baseline looks at."""
        return 1

    @property
    def min_history_cycles(self) -> int:
        return self.context_cycles

    @property
    def _k(self) -> int:
        return 1

    def profile(self, past: np.ndarray, past_types: np.ndarray, future_types: np.ndarray) -> np.ndarray:
        """Profiles ``(F, L, C)`` for cycles of ``future_types`` from ``past`` cycles ``(n, L, C)``."""
        return rhp_profile(self.method, past, past_types, future_types, k=self._k)

    def profiles_from(self, frame: pd.DataFrame, origins: np.ndarray, n_cycles: int) -> np.ndarray:
        """Baseline forecasts of ``n_cycles`` cycles from each origin: ``(len(origins), n_cycles * L, C)``."""
        L, ctx = self.cycle_length, self.context_cycles
        values = frame.to_numpy()
        past_pos = origins[:, None] - L * np.arange(ctx, 0, -1)[None, :]
        future_pos = origins[:, None] + L * np.arange(n_cycles)[None, :]
        _, past_types = self._calendar(frame, past_pos)
        _, future_types = self._calendar(frame, future_pos)
        out = np.empty((len(origins), n_cycles * L, values.shape[1]), dtype=np.float64)
        for i, origin in enumerate(origins.tolist()):
            past = compress(values[origin - ctx * L : origin], L)
            out[i] = self.profile(past, past_types[i], future_types[i]).reshape(n_cycles * L, -1)
        return out

    def _predict_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return self.profiles_from(frame, origins, int(self.horizon_cycles))


class Persistence(Baseline):
    """The last observed value, repeated over the horizon.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=2)
    >>> bool((Persistence().fit(y).predict(y) == y.iloc[-1]).all())
    True
    """

    name = method = "persistence"


class SeasonalNaive(Baseline):
    """The last observed cycle repeated (a lag of one cycle): the scale of MASE.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=2)
    >>> SeasonalNaive().fit(y).predict(y).tolist() == y.iloc[-24:].tolist()
    True
    """

    name = method = "seasonal_naive"


class WeeklyNaive(Baseline):
    """The cycle seven cycles earlier (for daily cycles: the same hour last week): MASE's scale.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=14)
    >>> WeeklyNaive().fit(y).predict(y).tolist() == y.iloc[-7 * 24 : -6 * 24].tolist()
    True
    """

    name = method = "weekly_naive"

    @property
    def context_cycles(self) -> int:
        return 7

    @property
    def _k(self) -> int:
        return 7


class LastProfile(Baseline):
    """The most recent cycle of the same day type (workday, Saturday, Sunday/holiday).

    A Monday is forecast by the last Friday, a Saturday by the last Saturday.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=14)  # starts on Monday 2024-01-01
    >>> LastProfile().fit(y).predict(y).tolist() == y.iloc[-72:-48].tolist()  # next Monday <- Friday
    True
    """

    name = method = "last_profile"

    @property
    def context_cycles(self) -> int:
        return 7


class SameTypeMean(Baseline):
    """The mean of the last ``k`` cycles of the same day type (ReCycle's ``loose_rhp``).

    >>> from hai.forecast.data import synthetic_cyclic
    >>> SameTypeMean(k=3).fit(synthetic_cyclic(n_cycles=21)).min_history_cycles
    21
    """

    name = method = "same_type_mean"

    def __init__(
        self,
        cycle_length: int = 24,
        horizon_cycles: int = 1,
        *,
        k: int = 3,
        period: str | None = "1D",
        country: str | None = None,
        subdiv: str | None = None,
        fill: str = "raise",
    ) -> None:
        super().__init__(
            cycle_length, horizon_cycles, period=period, country=country, subdiv=subdiv, fill=fill
        )
        self.k = k

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("k", self.k)

    @property
    def context_cycles(self) -> int:
        return 7 * int(self.k)

    @property
    def _k(self) -> int:
        return int(self.k)


class TenDayMean(Baseline):
    """The mean of the last ``days`` cycles (ten by default), whatever their day type.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> TenDayMean().fit(synthetic_cyclic(n_cycles=10)).min_history_cycles
    10
    """

    name = method = "ten_day_mean"

    def __init__(
        self,
        cycle_length: int = 24,
        horizon_cycles: int = 1,
        *,
        days: int = 10,
        period: str | None = "1D",
        country: str | None = None,
        subdiv: str | None = None,
        fill: str = "raise",
    ) -> None:
        super().__init__(
            cycle_length, horizon_cycles, period=period, country=country, subdiv=subdiv, fill=fill
        )
        self.days = days

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("days", self.days)

    @property
    def context_cycles(self) -> int:
        return int(self.days)

    @property
    def _k(self) -> int:
        return int(self.days)


BASELINES: dict[str, type[Baseline]] = {
    "persistence": Persistence,
    "seasonal_naive": SeasonalNaive,
    "weekly_naive": WeeklyNaive,
    "last_profile": LastProfile,
    "same_type_mean": SameTypeMean,
    "ten_day_mean": TenDayMean,
}


def make_baseline(name: str, **params: Any) -> Baseline:
    """A baseline by name (see :data:`BASELINES`), with its parameters.

    >>> make_baseline("same_type_mean", k=2).context_cycles
    14
    """
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r}", hint=f"use one of {', '.join(BASELINES)}")
    return BASELINES[name](**params)

"""Rolling-origin backtests: fit on the first part, forecast from every cycle of the test part.

``backtest(model, y, test_fraction=0.2)`` fits ``model`` on the series before the test part
(unless ``fit=False``), then forecasts from each whole-cycle origin inside the test part (every
``step_cycles`` cycles) with all data before the origin as history, and scores the forecasts
against the truth: MAE, RMSE, MAPE, MASE (``mase`` against the weekly naive forecast, the
same hour seven cycles earlier, and ``mase_day`` against the day-lag seasonal naive forecast,
both on the same windows), NSE and relative peak error, with the training and inference cost
from :func:`hai.shared.measure`. ``references=("weekly_naive", "ridge_arx", "lightgbm")`` scores
those models on the same split and windows too (``result.references``: name → metrics and fit
seconds), so every table can show the practitioners' baselines beside the model;
``references="auto"`` is the weekly naive forecast, ridge ARX and, when LightGBM is installed,
gradient-boosted lags (one the training part is too short for is recorded with its ``error``).

>>> from hai.forecast import SeasonalNaive, synthetic_cyclic
>>> result = backtest(SeasonalNaive(), synthetic_cyclic(n_cycles=30), test_fraction=0.2)
>>> result.n_origins, result.metrics["mase_day"], round(result.metrics["mase"], 3)
(6, 1.0, 2.701)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.base import Forecaster
from hai.forecast.baselines import SeasonalNaive, WeeklyNaive
from hai.forecast.data import as_frame
from hai.forecast.metrics import evaluate
from hai.forecast.neural import NeuralForecaster
from hai.shared import InputError, Measurement, measure


@dataclass
class BacktestResult:
    """Scores and forecasts of a backtest; arrays have shape ``(origins, horizon, columns)``."""

    model: str
    metrics: dict[str, float]
    origins: pd.DatetimeIndex  # first forecast timestamp of each window
    truth: np.ndarray
    forecast: np.ndarray
    reference: np.ndarray  # seasonal naive (lag one cycle), the scale of mase_day
    baseline: np.ndarray | None  # the model's own baseline (ReCycle), else None
    columns: list[str]
    freq: pd.Timedelta
    fit_cost: Measurement | None
    predict_cost: Measurement
    n_train_steps: int
    extra: dict[str, Any] = field(default_factory=dict)
    reference_week: np.ndarray | None = None  # weekly naive (lag seven cycles), the scale of mase
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> metrics, fit_s

    @property
    def n_origins(self) -> int:
        return len(self.origins)

    def window(self, i: int = -1, column: int = 0) -> pd.DataFrame:
        """Truth, forecast, seasonal naive (and baseline) of window ``i`` as a DataFrame."""
        index = pd.date_range(self.origins[i], periods=self.truth.shape[1], freq=self.freq)
        data = {
            "truth": self.truth[i, :, column],
            "forecast": self.forecast[i, :, column],
            "seasonal_naive": self.reference[i, :, column],
        }
        if self.baseline is not None:
            data["baseline"] = self.baseline[i, :, column]
        return pd.DataFrame(data, index=index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (metrics, costs, sizes; no arrays)."""
        return {
            "model": self.model,
            "metrics": dict(self.metrics),
            "n_origins": self.n_origins,
            "first_origin": str(self.origins[0]),
            "last_origin": str(self.origins[-1]),
            "horizon": int(self.truth.shape[1]),
            "columns": list(self.columns),
            "n_train_steps": self.n_train_steps,
            "fit": None if self.fit_cost is None else self.fit_cost.to_dict(),
            "predict": self.predict_cost.to_dict(),
            **({"references": dict(self.references)} if self.references else {}),
            **self.extra,
        }


def interval_coverage(
    model: NeuralForecaster, y: Any, origins: np.ndarray, truth: np.ndarray, covariates: Any = None
) -> dict[str, float]:
    """Fraction of ``truth`` inside each central interval ``q(τ)…q(1 − τ)`` of a quantile model."""
    quantiles = model.predict_quantiles_at(y, origins, covariates=covariates)
    qs = model._quantiles
    out: dict[str, float] = {}
    for i, tau in enumerate(qs):
        j = next((j for j, other in enumerate(qs) if abs(other - (1 - tau)) < 1e-9), None)
        if tau < 0.5 and j is not None:
            inside = (truth >= quantiles[..., i]) & (truth <= quantiles[..., j])
            out[f"q{tau:g}-q{qs[j]:g}"] = float(inside.mean())
    return out


def reference_names(references: str | Sequence[str | Forecaster] | None) -> list[str | Forecaster]:
    """The reference models ``references`` names (``"auto"``: weekly naive, ridge ARX, LightGBM)."""
    if references is None:
        return []
    if isinstance(references, str):
        if references == "auto":
            names: list[str | Forecaster] = ["weekly_naive", "ridge_arx"]
            if importlib.util.find_spec("lightgbm") is not None:
                names.append("lightgbm")
            return names
        return [references]
    return list(references)


def _reference_model(ref: str | Forecaster, model: Forecaster) -> Forecaster:
    from hai.forecast.baselines import BASELINES
    from hai.forecast.regression import REGRESSIONS

    if isinstance(ref, Forecaster):
        return ref
    known: dict[str, Any] = {**BASELINES, **REGRESSIONS}
    if ref not in known:
        raise InputError(f"unknown reference model {ref!r}", hint=f"use one of {', '.join(known)} or auto")
    return known[ref](
        model.cycle_length,
        model.horizon_cycles,
        period=model.period,
        country=model.country,
        subdiv=model.subdiv,
        fill=model.fill,
    )


def backtest(
    model: Forecaster,
    y: Any,
    *,
    test_fraction: float = 0.2,
    step_cycles: int = 1,
    fit: bool = True,
    references: str | Sequence[str | Forecaster] | None = (),
    covariates: Any = None,
) -> BacktestResult:
    """Fit ``model`` on the first ``1 − test_fraction`` of ``y`` and score rolling-origin forecasts.

    The split falls on a whole cycle; origins are every ``step_cycles`` cycles from the split
    while a full horizon of truth remains. With ``fit=False`` the model must be fitted already
    (and should not have seen the test part). ``references`` are fitted on the same training
    part and scored on the same windows (see the module's text). ``covariates``: future-known
    inputs covering all of ``y`` (see :meth:`Forecaster.fit`), given to the model and to the
    references that take covariates (ridge ARX, LightGBM); the naive forecasts ignore them.
    """
    if not isinstance(model, Forecaster):
        raise InputError(f"expected a hai.forecast model, got {type(model).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not isinstance(step_cycles, int) or step_cycles < 1:
        raise InputError(f"step_cycles must be a positive integer, got {step_cycles!r}")
    reference_models = [_reference_model(r, model) for r in reference_names(references)]
    if references == "auto":  # the model itself is not its own reference
        reference_models = [r for r in reference_models if r.name != model.name]
    frame = as_frame(y, fill=model.fill)  # type: ignore[arg-type]
    L = int(model.cycle_length)
    frame = frame.iloc[len(frame) % L :]
    n_cycles = len(frame) // L
    n_test = max(1, round(n_cycles * test_fraction))
    split = (n_cycles - n_test) * L
    train_input: Any = frame.iloc[:split]
    if isinstance(y, pd.Series):
        train_input = train_input.iloc[:, 0].rename(y.name)
        full_input: Any = frame.iloc[:, 0].rename(y.name)
    else:
        full_input = frame
    fit_cost = None
    if fit:
        model.fit(train_input, covariates=covariates)
        fit_cost = model.fit_cost_
    origins = np.arange(split, len(frame) - model.horizon + 1, step_cycles * L)
    if len(origins) == 0:
        raise InputError(
            f"the test part ({n_test} cycles) is shorter than the horizon ({model.horizon_cycles} cycles)",
            hint="raise test_fraction or lower horizon_cycles",
        )
    with measure() as predict_cost:
        forecast = model.predict_at(full_input, origins, covariates=covariates)
    values = frame.to_numpy()
    truth = np.stack([values[o : o + model.horizon] for o in origins.tolist()])
    naive = SeasonalNaive(L, model.horizon_cycles, period=model.period, fill=model.fill).fit(train_input)
    reference = naive.predict_at(full_input, origins)
    weekly = WeeklyNaive(L, model.horizon_cycles, period=model.period, fill=model.fill).fit(train_input)
    # A week of history before the first origin: else the weekly scale is unavailable (NaN).
    week = weekly.predict_at(full_input, origins) if split >= 7 * L else np.full_like(truth, np.nan)
    baseline = None
    if hasattr(model, "baseline_"):
        baseline = model.baseline_.predict_at(full_input, origins)
    metrics = evaluate(truth, forecast, week, y_reference_day=reference)
    scored: dict[str, dict[str, Any]] = {}
    for ref in reference_models:
        ref_covariates = covariates if ref.supports_covariates else None
        try:
            ref.fit(train_input, covariates=ref_covariates)
        except InputError as exc:
            if references != "auto":
                raise
            scored[ref.name] = {"error": str(exc)}  # "auto": a reference the series is too short for
            continue
        scored[ref.name] = {
            "metrics": evaluate(
                truth,
                ref.predict_at(full_input, origins, covariates=ref_covariates),
                week,
                y_reference_day=reference,
            ),
            "fit_s": ref.fit_cost_.wall_s,
            **({"covariates": list(ref.covariates_)} if ref.n_covariates else {}),
        }
    extra: dict[str, Any] = {"covariates": list(model.covariates_)} if model.n_covariates else {}
    if baseline is not None:
        extra["baseline_metrics"] = evaluate(truth, baseline, week, y_reference_day=reference)
        with_base: Any = model  # a ReCycle: the base in use ("auto": its choice) and the scores
        extra["baseline"] = with_base.baseline_.name
        if getattr(with_base, "baseline_scores_", None):
            extra["baseline_scores"] = dict(with_base.baseline_scores_)
    if isinstance(model, NeuralForecaster) and model.loss == "quantile":
        extra["interval_coverage"] = interval_coverage(model, full_input, origins, truth, covariates)
    if isinstance(model, NeuralForecaster):
        extra["epoch_time_s"] = model.epoch_time_s_
        extra["epoch_cpu_s"] = model.epoch_cpu_s_
        extra["best_epoch"] = model.best_epoch_
        extra["epochs_run"] = max((r.epoch for r in model.history_), default=0)
        extra["n_parameters"] = model.n_parameters_
    return BacktestResult(
        model=model.name,
        metrics=metrics,
        origins=pd.DatetimeIndex(frame.index[origins]),
        truth=truth,
        forecast=forecast,
        reference=reference,
        baseline=baseline,
        columns=list(frame.columns),
        freq=pd.Timedelta(frame.index.freq),
        fit_cost=fit_cost,
        predict_cost=predict_cost,
        n_train_steps=split,
        extra=extra,
        reference_week=week,
        references=scored,
    )

"""``AutoPQ``: the estimator (scikit-learn's contract) that ties data, forecasters, cINN and tuning.

``fit(y)`` splits the series (the reference's split), trains the cINN on the realised
training windows, fits the point forecaster(s) on the training part and runs the optuna
study on the validation CRPS, then (``calibrate=True``, the default) fits a spread calibration
on the validation part (:mod:`hai.grid.autopq.calibration`: per level and horizon step, the
distance of each quantile from the median is scaled so that the validation part is covered at
every nominal level; ``calibrate=False`` is the reference's procedure); ``predict(history)``
forecasts the 24 hours after ``history`` as a DataFrame of the 17 quantile levels;
``evaluate()`` scores the test part.

Two choices depart from the reference, each with a switch back to it:
``latent_noise="additive"`` draws latent codes ``ẑ + σ·ε`` around the point forecast's code
rather than ``ẑ·(1 + σ·ε)`` (:mod:`hai.grid.autopq.quantiles` says why; ``"multiplicative"``
is the reference), and ``calibrate=True`` is the default. ``holidays="DE-NW"`` (a country code
with an optional subdivision, from the ``holidays`` package) counts public holidays as Sundays
in every calendar feature.

``forecaster="auto"`` picks, in the default configuration, the candidate with the lowest
validation MAE among seasonal naive, profile, ridge and (when installed) LightGBM, then tunes
``sampling_std``; in the advanced configuration the study searches all installed
forecasters with their hyperparameters jointly with ``sampling_std``.

>>> from hai.grid.autopq.data import synthetic_series
>>> y = synthetic_series("load", weeks=3)
>>> model = AutoPQ("profile", epochs=1, n_trials=2, blocks=2, sample_size=20).fit(y)  # tiny, for speed
>>> q = model.predict(y)
>>> q.shape, q.index[0] == y.index[-1] + pd.Timedelta("1h")
((24, 17), True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch

from hai.grid.autopq import metrics
from hai.grid.autopq.calibration import SpreadCalibration
from hai.grid.autopq.data import check_horizon, future_index, hourly_series, is_holiday, split_points
from hai.grid.autopq.forecasters import FORECASTERS, PointForecaster, make_forecaster
from hai.grid.autopq.quantiles import HISTORY, LEVELS, NOISES, QuantileForecaster
from hai.grid.autopq.tuning import (
    DEFAULT_TRIALS,
    Problem,
    advanced_objective,
    available_forecasters,
    best_choice,
    create_study,
    default_objective,
    open_storage,
    run_workers,
)
from hai.shared import CheckpointError, InputError, load_checkpoint, measure, save_checkpoint, torch_threads
from hai.shared.checks import positive_int

AUTO_CANDIDATES = ("seasonal_naive", "profile", "linear", "lightgbm")
ADVANCED_CANDIDATES = ("seasonal_naive", "profile", "linear", "mlp", "lightgbm", "ets")
CONFIGS = ("default", "advanced")


def _limits(value: Any) -> tuple[float | None, float | None]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise InputError(
            f"forecast_limits must be a pair (low, high) with None for no limit, got {value!r}"
        ) from None
    out = tuple(None if v is None else float(v) for v in (low, high))
    if out[0] is not None and out[1] is not None and out[0] >= out[1]:
        raise InputError(f"forecast_limits must have low < high, got {value!r}")
    return out  # type: ignore[return-value]


class AutoPQ:
    """Calibrated quantile forecasts from a point forecast (cINN), tuned with optuna.

    Parameters are stored as given; learned state ends in ``_``: ``forecaster_`` (the fitted
    point forecaster), ``sampling_std_``, ``quantile_model_`` (cINN), ``calibration_`` (the
    spread factors; all 1 with ``calibrate=False``), ``study_`` (optuna), ``val_scores_``
    (in-sample for the calibration, which is fitted on the same part), ``cost_`` (time and
    energy of ``fit``), ``selection_`` (validation MAE of the auto candidates).
    """

    def __init__(
        self,
        forecaster: str = "auto",
        config: str = "default",
        *,
        horizon: int = 24,
        forecaster_params: dict[str, Any] | None = None,
        n_trials: int | None = None,
        epochs: int = 30,
        blocks: int = 5,
        sample_size: int = 100,
        forecast_limits: tuple[float | None, float | None] = (None, None),
        holidays: str | None = None,
        latent_noise: str = "additive",
        calibrate: bool = True,
        storage: str | os.PathLike[str] | None = None,
        study_name: str | None = None,
        workers: int = 1,
        seed: int = 0,
        threads: int | None = 1,
    ) -> None:
        self.forecaster = forecaster
        self.config = config
        self.horizon = horizon
        self.forecaster_params = forecaster_params
        self.n_trials = n_trials
        self.epochs = epochs
        self.blocks = blocks
        self.sample_size = sample_size
        self.forecast_limits = forecast_limits
        self.holidays = holidays
        self.latent_noise = latent_noise
        self.calibrate = calibrate
        self.storage = storage
        self.study_name = study_name
        self.workers = workers
        self.seed = seed
        self.threads = threads

    # -- checks -------------------------------------------------------------------------
    def _check(self) -> None:
        if self.config not in CONFIGS:
            raise InputError(f"unknown config {self.config!r}", hint="use default or advanced")
        if self.forecaster != "auto" and self.forecaster not in FORECASTERS:
            raise InputError(
                f"unknown forecaster {self.forecaster!r}", hint=f"use auto or one of {', '.join(FORECASTERS)}"
            )
        positive_int("horizon", self.horizon, maximum=24 * 7)
        positive_int("epochs", self.epochs, maximum=100_000)
        positive_int("blocks", self.blocks, maximum=64)
        positive_int("sample_size", self.sample_size, maximum=100_000)
        positive_int("workers", self.workers, maximum=256)
        if self.n_trials is not None:
            positive_int("n_trials", self.n_trials, maximum=100_000)
        if self.workers > 1 and self.storage is None:
            raise InputError(
                "several workers need a shared storage", hint="give storage='study.log' or a database URL"
            )
        _limits(self.forecast_limits)
        if self.latent_noise not in NOISES:
            raise InputError(
                f"unknown latent_noise {self.latent_noise!r}",
                hint="use additive (hai's default) or multiplicative (the reference's)",
            )
        if self.holidays is not None:
            if not isinstance(self.holidays, str) or not self.holidays.strip():
                raise InputError(
                    f"holidays must be a country code such as DE or DE-NW, got {self.holidays!r}",
                    hint="or None for no holiday calendar",
                )
            is_holiday(pd.DatetimeIndex([pd.Timestamp("2000-01-01")]), self.holidays)  # unknown -> InputError

    def _candidates(self) -> tuple[str, ...]:
        if self.forecaster != "auto":
            return (self.forecaster,)
        return available_forecasters(AUTO_CANDIDATES if self.config == "default" else ADVANCED_CANDIDATES)

    # -- fit ----------------------------------------------------------------------------
    def fit(self, y: pd.Series) -> AutoPQ:
        """Fit on an hourly (or finer) series with a DatetimeIndex; returns self."""
        self._check()
        with torch_threads(self.threads), measure() as cost:
            self._fit(hourly_series(y))
        self.cost_ = cost
        return self

    def _history(self, names: tuple[str, ...]) -> int:
        needs = [make_forecaster(n, **self._params_for(n)).history for n in names]
        return max([HISTORY, *needs])

    def _params_for(self, name: str) -> dict[str, Any]:
        params = dict(self.forecaster_params or {}) if self.forecaster != "auto" else {}
        if name in ("mlp", "lightgbm"):
            params.setdefault("seed", self.seed)
        return params

    def _fit(self, y: pd.Series) -> None:
        horizon = int(self.horizon)
        names = self._candidates()
        history = self._history(names)
        split = split_points(len(y))
        check_horizon(horizon, len(y), split, history)
        qf = QuantileForecaster(
            horizon,
            blocks=self.blocks,
            epochs=self.epochs,
            limits=_limits(self.forecast_limits),
            holidays=self.holidays,
            noise=self.latent_noise,
            seed=self.seed,
        )
        train_origins = split.origins("train", horizon=horizon, history=HISTORY)
        qf.fit(y.to_numpy(dtype=float), pd.DatetimeIndex(y.index), train_origins)
        problem = Problem(y, split, qf, history, sample_size=int(self.sample_size), seed=int(self.seed))
        self.series_, self.split_, self.quantile_model_, self.history_ = y, split, qf, history
        self.problem_ = problem
        n_trials = int(self.n_trials or DEFAULT_TRIALS[self.config])
        storage = open_storage(self.storage)
        study = create_study(storage, self.study_name, seed=int(self.seed))
        self.selection_: dict[str, float] = {}
        done = sum(1 for t in study.trials if t.state.name == "COMPLETE")
        if self.config == "default":
            forecaster = self._select(problem, names)
            remaining = max(0, n_trials - done)
            study.optimize(default_objective(problem, forecaster), n_trials=remaining)
            self.forecaster_, self.sampling_std_ = forecaster, float(study.best_params["sampling_std"])
        else:
            remaining = max(0, n_trials - done)
            if self.workers > 1:
                run_workers(
                    problem_state(self),
                    storage=str(self.storage),
                    study_name=study.study_name,
                    n_trials=remaining,
                    workers=int(self.workers),
                    names=names,
                    seed=int(self.seed),
                )
                study = create_study(open_storage(self.storage), study.study_name, seed=int(self.seed))
            else:
                study.optimize(advanced_objective(problem, names), n_trials=remaining)
            name, params, std = best_choice(study)
            self.forecaster_ = problem.fit_forecaster(name or names[0], params)
            self.sampling_std_ = std
        self.study_ = study
        point = problem.point(self.forecaster_, "val")
        q_val = problem.quantiles_for(point, "val", self.sampling_std_)
        truth = problem.truth("val")
        if self.calibrate:
            self.calibration_ = SpreadCalibration.fit(truth, q_val, LEVELS)
        else:
            self.calibration_ = SpreadCalibration.identity(horizon, LEVELS)
        self.val_scores_ = metrics.score(truth, self.calibration_.apply(q_val, qf.limits))

    def _select(self, problem: Problem, names: tuple[str, ...]) -> PointForecaster:
        best: tuple[float, PointForecaster] | None = None
        for name in names:
            f = problem.fit_forecaster(name, self._params_for(name))
            mae = float(np.mean(np.abs(problem.point(f, "val") - problem.truth("val"))))
            self.selection_[name] = mae
            if best is None or mae < best[0]:
                best = (mae, f)
        assert best is not None
        return best[1]

    # -- predict ------------------------------------------------------------------------
    def _fitted(self) -> None:
        if not hasattr(self, "sampling_std_"):
            raise InputError("this AutoPQ is not fitted yet", hint="call fit(y) first")

    def quantiles_at(self, y: pd.Series, origins: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Quantiles ``(len(origins), horizon, 17)`` from the given origins of ``y``
        (``calibrated=False``: before the spread calibration, as the reference gives them)."""
        self._fitted()
        with torch_threads(self.threads):
            point = self.forecaster_.predict(y, origins)
            q = self.quantile_model_.predict(
                y.to_numpy(dtype=float),
                pd.DatetimeIndex(y.index),
                origins,
                point,
                sampling_std=self.sampling_std_,
                sample_size=int(self.sample_size),
                seed=int(self.seed),
            )
        return self.calibration_.apply(q, self.quantile_model_.limits) if calibrated else q

    def predict(self, history: pd.Series) -> pd.DataFrame:
        """Quantiles of the ``horizon`` hours after ``history`` (rows: time, columns: levels)."""
        self._fitted()
        h = hourly_series(history, min_hours=self.history_)
        horizon = self.quantile_model_.horizon
        future = future_index(pd.DatetimeIndex(h.index), horizon)
        extended = pd.concat([h, pd.Series(np.nan, index=future)])
        q = self.quantiles_at(extended, np.array([len(h)]))[0]
        frame = pd.DataFrame(q, index=future, columns=list(LEVELS))
        frame.columns.name = "quantile"
        frame.index.name = h.index.name or "time"
        return frame

    def evaluate(self, y: pd.Series | None = None, part: str = "test") -> dict[str, Any]:
        """Scores of the quantile forecasts on ``part`` ("test" or "val") of the fitted series
        (or of ``y``'s same part)."""
        self._fitted()
        if part not in ("val", "test"):
            raise InputError(f"part must be val or test, got {part!r}")
        series = self.series_ if y is None else hourly_series(y)
        split = self.split_ if y is None else split_points(len(series))
        origins = split.origins(part, horizon=self.quantile_model_.horizon, history=self.history_)
        if not len(origins):
            raise InputError(f"the {part} part of the series has no forecast window")
        q = self.quantiles_at(series, origins)
        truth = series.to_numpy(dtype=float)[origins[:, None] + np.arange(q.shape[1])]
        out = metrics.score(truth, q)
        out.update(
            forecaster=self.forecaster_.name,
            sampling_std=self.sampling_std_,
            calibrated=bool(self.calibrate),
            part=part,
        )
        return out

    # -- persistence --------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to one safetensors file (cINN weights, the series, settings).

        Point forecasters are refitted on load from the stored training part (deterministic),
        so nothing is pickled.
        """
        self._fitted()
        tensors = {f"cinn.{k}": v for k, v in self.quantile_model_.net_.state_dict().items()}
        tensors["series"] = torch.as_tensor(self.series_.to_numpy(dtype=float))
        tensors["calibration"] = torch.as_tensor(self.calibration_.factors)
        config = {
            "params": self.get_params(),
            "quantile_model": self.quantile_model_.config(),
            "mean": self.quantile_model_.mean_,
            "scale": self.quantile_model_.scale_,
            "forecaster": self.forecaster_.name,
            "forecaster_params": self.forecaster_.params,
            "sampling_std": self.sampling_std_,
            "history": self.history_,
            "start": str(self.series_.index[0]),
            "name": None if self.series_.name is None else str(self.series_.name),
            "val_scores": self.val_scores_,
        }
        return save_checkpoint(path, tensors, config=config, seed=int(self.seed))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AutoPQ:
        """Read a model written by :meth:`save`."""
        ckpt = load_checkpoint(path, framework="torch")
        c = ckpt.config
        try:
            params = dict(c["params"])
            params.pop("storage", None)
            model = cls(**{k: v for k, v in params.items() if k != "storage"})
            qc = dict(c["quantile_model"])
            qf = QuantileForecaster(
                qc["horizon"],
                blocks=qc["blocks"],
                epochs=qc["epochs"],
                batch_size=qc["batch_size"],
                lr=qc["lr"],
                limits=_limits(qc["limits"]),
                holidays=qc.get("holidays"),  # written before holiday calendars: none
                noise=qc.get("noise", "multiplicative"),  # written before the choice: the reference's
                seed=qc["seed"],
            )
            net = qf.build(c["mean"], c["scale"])
            net.load_state_dict(
                {k.removeprefix("cinn."): v for k, v in ckpt.tensors.items() if k.startswith("cinn.")}
            )
            net.eval()
            values = ckpt.tensors["series"].numpy()
            index = pd.date_range(pd.Timestamp(c["start"]), periods=len(values), freq="h")
            y = pd.Series(values, index=index, name=c["name"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} is not an AutoPQ model: {exc}") from None
        split = split_points(len(y))
        model.series_, model.split_, model.quantile_model_ = y, split, qf
        model.latent_noise, model.holidays = qf.noise, qf.holidays
        model.history_ = int(c["history"])
        model.sampling_std_ = float(c["sampling_std"])
        factors = ckpt.tensors.get("calibration")
        if factors is None:  # written before the calibration existed: the reference's quantiles
            model.calibration_ = SpreadCalibration.identity(qf.horizon, LEVELS)
            model.calibrate = False
        else:
            if tuple(factors.shape) != (qf.horizon, len(LEVELS)):
                shape = tuple(factors.shape)
                raise CheckpointError(f"{path} is not an AutoPQ model: calibration of shape {shape}")
            model.calibration_ = SpreadCalibration(LEVELS, factors.numpy().astype(float))
        model.val_scores_ = dict(c.get("val_scores", {}))
        with torch_threads(model.threads):
            model.forecaster_ = make_forecaster(
                c["forecaster"], holidays=qf.holidays, **c["forecaster_params"]
            ).fit(y.iloc[: split.train_end], horizon=qf.horizon)
        model.problem_ = Problem(
            y, split, qf, model.history_, sample_size=int(model.sample_size), seed=model.seed
        )
        return model

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (scikit-learn's ``get_params``)."""
        return {
            "forecaster": self.forecaster,
            "config": self.config,
            "horizon": self.horizon,
            "forecaster_params": self.forecaster_params,
            "n_trials": self.n_trials,
            "epochs": self.epochs,
            "blocks": self.blocks,
            "sample_size": self.sample_size,
            "forecast_limits": list(self.forecast_limits),
            "holidays": self.holidays,
            "latent_noise": self.latent_noise,
            "calibrate": self.calibrate,
            "storage": None if self.storage is None else str(self.storage),
            "study_name": self.study_name,
            "workers": self.workers,
            "seed": self.seed,
            "threads": self.threads,
        }

    def __repr__(self) -> str:
        return f"AutoPQ(forecaster={self.forecaster!r}, config={self.config!r})"


def problem_state(model: AutoPQ) -> dict[str, Any]:
    """What a tuning worker process needs to rebuild the model's :class:`Problem` (picklable)."""
    qf = model.quantile_model_
    y = model.series_
    return {
        "values": y.to_numpy(dtype=float),
        "start": str(y.index[0]),
        "quantile_model": qf.config(),
        "mean": qf.mean_,
        "scale": qf.scale_,
        "state_dict": {k: v.detach().clone() for k, v in qf.net_.state_dict().items()},
        "history": model.history_,
        "sample_size": int(model.sample_size),
        "seed": int(model.seed),
        "threads": model.threads,
    }


def problem_from_state(state: dict[str, Any]) -> Problem:
    """Rebuild a :class:`Problem` in a worker process from :func:`problem_state`."""
    if state.get("threads"):
        torch.set_num_threads(int(state["threads"]))
    qc = state["quantile_model"]
    qf = QuantileForecaster(
        qc["horizon"],
        blocks=qc["blocks"],
        epochs=qc["epochs"],
        limits=_limits(qc["limits"]),
        holidays=qc.get("holidays"),
        noise=qc.get("noise", "multiplicative"),
        seed=qc["seed"],
    )
    net = qf.build(state["mean"], state["scale"])
    net.load_state_dict(state["state_dict"])
    net.eval()
    values = np.asarray(state["values"], dtype=float)
    y = pd.Series(values, index=pd.date_range(pd.Timestamp(state["start"]), periods=len(values), freq="h"))
    return Problem(
        y,
        split_points(len(y)),
        qf,
        int(state["history"]),
        sample_size=state["sample_size"],
        seed=state["seed"],
    )

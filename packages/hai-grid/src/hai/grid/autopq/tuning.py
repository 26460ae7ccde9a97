"""AutoPQ's automation with optuna: studies on a storage that several processes can share.

* **default** configuration: only ``sampling_std`` ~ U(0.01, 3.0) (the reference's prior) is
  tuned, on the validation CRPS, for a fixed point forecaster (TPE, 30 trials by default).
* **advanced** configuration: forecaster × its hyperparameters × ``sampling_std``, jointly
  (TPE over a conditional space, 60 trials by default). The reference runs a Propulate
  island GA with an inner Hyperopt loop; a joint TPE search over the same kind of space is
  what optuna offers without MPI.

A study lives on an optuna storage: ``None`` keeps it in memory; a file path ending in
``.db``/``.sqlite`` or an ``sqlite:///`` URL is an SQLite database; any other RDB URL
(``postgresql://…``) is passed to SQLAlchemy; a path ending in ``.log``/``.journal`` (or
``journal:PATH``) is an optuna journal file, safe for several processes on one machine.
Finished trials are kept in the storage, so an interrupted study resumes where it stopped
(``load_if_exists``). Every trial records its wall time, CPU time and energy (hai.shared's
meter; ``None`` with the reason when no sensor can be read) as user attributes.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.grid.autopq import metrics
from hai.grid.autopq.data import Split, windows
from hai.grid.autopq.forecasters import PointForecaster, make_forecaster
from hai.grid.autopq.quantiles import QuantileForecaster
from hai.shared import InputError, measure
from hai.shared._optional import optional, require

#: sampling_std's prior in the reference (hyperopt ``uniform(0.01, 3.0)``)
SAMPLING_STD_RANGE = (0.01, 3.0)
DEFAULT_TRIALS = {"default": 30, "advanced": 60}


def _optuna() -> Any:
    return require("optuna", extra="autopq", distribution="hai-grid")


def open_storage(url: str | os.PathLike[str] | None) -> Any:
    """An optuna storage for ``url`` (see the module docstring); ``None`` for in-memory.

    Raises :class:`InputError` when the storage cannot be opened.
    """
    if url is None:
        return None
    optuna = _optuna()
    text = str(url)
    try:
        if text.startswith("journal:") or text.endswith((".log", ".journal")):
            path = Path(text.removeprefix("journal:"))
            if path.is_dir():
                raise InputError(f"the journal storage {path} is a folder", hint="give a file name")
            if not path.parent.is_dir():
                raise InputError(f"cannot open the journal storage {path}: {path.parent} is not a folder")
            journal = optuna.storages.journal
            return optuna.storages.JournalStorage(journal.JournalFileBackend(str(path)))
        if "://" not in text:
            if not text.endswith((".db", ".sqlite", ".sqlite3")):
                raise InputError(
                    f"cannot tell the storage kind of {text!r}",
                    hint="use a .db/.sqlite file, a .log/.journal file, or an RDB URL such as sqlite:///study.db",
                )
            path = Path(text)
            if not path.parent.is_dir():
                raise InputError(f"cannot open the storage {text}: {path.parent} is not a folder")
            text = f"sqlite:///{path}"
        return optuna.storages.RDBStorage(text, engine_kwargs={"pool_pre_ping": True})
    except InputError:
        raise
    except Exception as exc:  # SQLAlchemy/optuna raise many kinds for a bad URL or file
        raise InputError(
            f"cannot open the optuna storage {str(url)!r}: {type(exc).__name__}: {exc}".splitlines()[0],
            hint="check the URL, that the database server runs and the file is writable",
        ) from None


def create_study(storage: Any, study_name: str | None, *, seed: int = 0) -> Any:
    """Create (or resume) a study minimising the validation CRPS."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    name = study_name or "autopq"
    try:
        return optuna.create_study(
            storage=storage, study_name=name, sampler=sampler, direction="minimize", load_if_exists=True
        )
    except Exception as exc:
        raise InputError(f"cannot create the study {name!r}: {exc}".splitlines()[0]) from None


def search_space(trial: Any, names: tuple[str, ...], seed: int = 0) -> tuple[str, dict[str, Any]]:
    """The advanced configuration's choice of forecaster and hyperparameters for one trial."""
    name = trial.suggest_categorical("forecaster", list(names))
    if name == "seasonal_naive":
        return name, {"season": trial.suggest_categorical("season", [24, 168])}
    if name == "linear":
        return name, {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    if name == "mlp":
        return name, {
            "hidden": trial.suggest_int("hidden", 16, 128, log=True),
            "layers": trial.suggest_int("layers", 1, 2),
            "alpha": trial.suggest_float("mlp_alpha", 1e-6, 1e-1, log=True),
            "max_iter": 200,
            "seed": seed,
        }
    if name == "lightgbm":
        return name, {
            "n_estimators": trial.suggest_int("n_estimators", 20, 200, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "seed": seed,
        }
    return name, {}


def available_forecasters(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` without those whose optional library is not installed."""
    needs = {"lightgbm": "lightgbm", "ets": "statsmodels"}
    return tuple(n for n in names if n not in needs or optional(needs[n]) is not None)


@dataclass
class Problem:
    """Everything a trial needs: the series, its split, the trained cINN, validation origins."""

    y: pd.Series
    split: Split
    quantiles: QuantileForecaster
    history: int
    sample_size: int = 100
    seed: int = 0
    _points: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return self.quantiles.horizon

    def origins(self, part: str) -> np.ndarray:
        return self.split.origins(part, horizon=self.horizon, history=self.history)

    def fit_forecaster(self, name: str, params: dict[str, Any]) -> PointForecaster:
        forecaster = make_forecaster(name, holidays=self.quantiles.holidays, **params)
        return forecaster.fit(self.y.iloc[: self.split.train_end], horizon=self.horizon)

    def point(self, forecaster: PointForecaster, part: str) -> np.ndarray:
        key = f"{forecaster!r}/{part}"
        if key not in self._points:
            self._points[key] = forecaster.predict(self.y, self.origins(part))
        return self._points[key]

    def quantiles_for(self, point: np.ndarray, part: str, sampling_std: float) -> np.ndarray:
        return self.quantiles.predict(
            self.y.to_numpy(dtype=float),
            pd.DatetimeIndex(self.y.index),
            self.origins(part),
            point,
            sampling_std=sampling_std,
            sample_size=self.sample_size,
            seed=self.seed,
        )

    def truth(self, part: str) -> np.ndarray:
        return windows(self.y.to_numpy(dtype=float), self.origins(part), self.horizon)

    def crps(self, point: np.ndarray, part: str, sampling_std: float) -> float:
        q = self.quantiles_for(point, part, sampling_std)
        return float(metrics.crps_ensemble(self.truth(part), q).mean())


def _record(trial: Any, cost: Any) -> None:
    trial.set_user_attr("wall_s", cost.wall_s)
    trial.set_user_attr("cpu_s", cost.cpu_s)
    trial.set_user_attr("energy_j", cost.total_energy_j)
    if cost.total_energy_j is None:
        trial.set_user_attr("energy_unavailable", "; ".join(f"{k}: {v}" for k, v in cost.unavailable.items()))


def default_objective(problem: Problem, forecaster: PointForecaster) -> Callable[[Any], float]:
    """Validation CRPS as a function of ``sampling_std`` alone."""
    point = problem.point(forecaster, "val")

    def objective(trial: Any) -> float:
        with measure() as cost:
            std = trial.suggest_float("sampling_std", *SAMPLING_STD_RANGE)
            value = problem.crps(point, "val", std)
        _record(trial, cost)
        return value

    return objective


def advanced_objective(problem: Problem, names: tuple[str, ...]) -> Callable[[Any], float]:
    """Validation CRPS over forecaster × hyperparameters × ``sampling_std``."""
    cache: dict[str, PointForecaster] = {}

    def objective(trial: Any) -> float:
        with measure() as cost:
            name, params = search_space(trial, names, problem.seed)
            key = f"{name}{sorted(params.items())}"
            if key not in cache:
                cache[key] = problem.fit_forecaster(name, params)
            std = trial.suggest_float("sampling_std", *SAMPLING_STD_RANGE)
            value = problem.crps(problem.point(cache[key], "val"), "val", std)
        _record(trial, cost)
        if not math.isfinite(value):
            raise _optuna().TrialPruned("non-finite CRPS")
        return value

    return objective


def best_choice(study: Any) -> tuple[str | None, dict[str, Any], float]:
    """(forecaster, hyperparameters, sampling_std) of the best trial of an advanced study."""
    params = dict(study.best_trial.params)
    std = float(params.pop("sampling_std"))
    name = params.pop("forecaster", None)
    if name == "mlp" and "mlp_alpha" in params:
        params["alpha"] = params.pop("mlp_alpha")
    return name, params, std


def _worker(
    problem_state: dict[str, Any],
    storage: str,
    study_name: str,
    n_trials: int,
    names: tuple[str, ...],
    seed: int,
) -> None:
    from hai.grid.autopq.estimator import problem_from_state

    problem = problem_from_state(problem_state)
    study = create_study(open_storage(storage), study_name, seed=seed)
    study.optimize(advanced_objective(problem, names), n_trials=n_trials)


def run_workers(
    problem_state: dict[str, Any],
    *,
    storage: str,
    study_name: str,
    n_trials: int,
    workers: int,
    names: tuple[str, ...],
    seed: int = 0,
) -> None:
    """Run an advanced study in ``workers`` processes sharing ``storage`` (``n_trials`` in all)."""
    if workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers}")
    open_storage(storage)  # refuse a bad URL before starting processes
    per_worker = [n_trials // workers + (1 if k < n_trials % workers else 0) for k in range(workers)]
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(
            target=_worker,
            args=(problem_state, storage, study_name, count, names, seed + 1 + k),
            daemon=False,
        )
        for k, count in enumerate(per_worker)
        if count > 0
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(
            f"{len(failed)} tuning worker(s) failed (exit codes {failed}); see their output above"
        )

"""The long-horizon evaluation protocol: 7:1:2 split, test windows, MSE/MAE, seasonal naive.

As the Time-Series-Library's ``exp_long_term_forecasting`` (thuml/Time-Series-Library): the
series is split in time order 7:1:2; the model is fitted on the first 80 % with the last
eighth of it (10 % of the series) for validation, so its scaler is fitted on the training 70 %
only; test windows have their origin in the last 20 % (their history may reach back into the
validation part) and are scored by MSE and MAE in the *scaled* units of the training scaler,
averaged over windows, steps and columns. ``stride`` thins the test origins (1: every step;
the cycle length: the cycle-aligned variant, which ReCycle and the step transformer need).
The seasonal naive reference repeats the last cycle before the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.data import as_frame
from hai.forecast.neural import NeuralForecaster
from hai.shared import InputError

TRAIN, VALIDATION, TEST = 0.7, 0.1, 0.2


@dataclass(frozen=True)
class ProtocolSplit:
    """The frame, the part a model is fitted on (train + validation), the first test origin."""

    frame: pd.DataFrame
    fit_part: pd.DataFrame
    test_start: int
    validation_fraction: float


def split(y: Any, cycle_length: int = 24) -> ProtocolSplit:
    """The 7:1:2 split on whole cycles (boundaries rounded down to a cycle)."""
    frame = as_frame(y)
    n = len(frame)
    unit = int(cycle_length)
    end_val = round(n * (TRAIN + VALIDATION)) // unit * unit
    end_train = round(n * TRAIN) // unit * unit
    if end_train < 2 * unit or end_val <= end_train:
        raise InputError(f"the series ({n} steps) is too short for a 7:1:2 split in cycles of {unit}")
    return ProtocolSplit(frame, frame.iloc[:end_val], end_val, (end_val - end_train) / end_val)


def window_origins(n_steps: int, test_start: int, history: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Origins ``o ≥ test_start`` with ``o + horizon ≤ n_steps`` every ``stride`` steps."""
    first = max(int(test_start), int(history))
    origins = np.arange(first, int(n_steps) - int(horizon) + 1, int(stride))
    if len(origins) == 0:
        raise InputError(
            f"a horizon of {horizon} steps is longer than the test part allows ({n_steps - test_start} steps "
            f"from step {test_start} of {n_steps})",
            hint="give a longer series or a shorter horizon",
        )
    return origins


def truth(frame: pd.DataFrame, origins: np.ndarray, horizon: int) -> np.ndarray:
    values = frame.to_numpy(dtype=np.float64)
    return np.stack([values[o : o + horizon] for o in origins.tolist()])


def seasonal_naive(frame: pd.DataFrame, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last ``season`` steps before each origin, repeated over the horizon."""
    values = frame.to_numpy(dtype=np.float64)
    steps = np.arange(horizon) % season
    return np.stack([values[o - season + steps] for o in origins.tolist()])


@dataclass(frozen=True)
class Scores:
    """MSE and MAE in scaled units over ``n_windows`` test windows."""

    mse: float
    mae: float
    n_windows: int


def scaled_scores(forecast: np.ndarray, target: np.ndarray, scale: np.ndarray) -> Scores:
    err = (np.asarray(forecast) - np.asarray(target)) / np.asarray(scale)[None, None, :]
    return Scores(float(np.mean(err**2)), float(np.mean(np.abs(err))), len(forecast))


def evaluate(model: NeuralForecaster, frame: pd.DataFrame, origins: np.ndarray) -> Scores:
    """The fitted ``model``'s MSE/MAE on the windows at ``origins``, scaled by its training scaler."""
    forecast = model.predict_at(frame, origins)
    return scaled_scores(forecast, truth(frame, origins, model.horizon), model.scaler_.scale_)

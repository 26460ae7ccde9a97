"""hai-forecast: cyclic load forecasting with ReCycle, recent-historic-profile baselines and backtests.

ReCycle (the Residual Cyclic Transformer) compresses each primary cycle (one day of hourly
values) into one token, learns the residual over a recent-historic-profile baseline and
forecasts the whole horizon at once. The baselines are forecasters in their own right, and a
token-per-step transformer is the reference ReCycle's cost is measured against.

>>> from hai.forecast import ReCycle, backtest, synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=40, seed=0)
>>> model = ReCycle(cycle_length=24, history_cycles=7, horizon_cycles=1, epochs=3).fit(y)
>>> model.predict(y).index[0]
Timestamp('2024-02-10 00:00:00')
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hai-forecast")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from hai.forecast import datasets
from hai.forecast.backtest import BacktestResult, backtest
from hai.forecast.base import Forecaster
from hai.forecast.baselines import (
    BASELINES,
    Baseline,
    LastProfile,
    Persistence,
    SameTypeMean,
    SeasonalNaive,
    TenDayMean,
    WeeklyNaive,
    make_baseline,
    rhp_profile,
)
from hai.forecast.checkpoints import MODELS, load_model, save_model
from hai.forecast.cycles import check_cycle_length, compress, cycle_length_for, expand, whole_cycles
from hai.forecast.data import (
    Scaler,
    Split,
    as_frame,
    calendar_features,
    chronological_split,
    day_types,
    read_csv,
    read_csv_with_covariates,
    regularize,
    resample,
    synthetic_cyclic,
    synthetic_with_temperature,
)
from hai.forecast.datasets import Dataset
from hai.forecast.losses import LOSSES, make_loss, pinball_loss
from hai.forecast.metrics import evaluate, mae, mape, mase, mase_insample, nse, relative_peak_error, rmse
from hai.forecast.neural import NeuralForecaster
from hai.forecast.recycle import AUTO_BASELINES, ReCycle, ReCycleNet
from hai.forecast.regression import REGRESSIONS, GradientBoostedLags, LagRegression, RidgeARX
from hai.forecast.training import EpochRecord, TrainingResult, train_network
from hai.forecast.transformer import StepTransformer, StepTransformerNet

__all__ = [
    "AUTO_BASELINES",
    "BASELINES",
    "LOSSES",
    "MODELS",
    "REGRESSIONS",
    "BacktestResult",
    "Baseline",
    "Dataset",
    "EpochRecord",
    "Forecaster",
    "GradientBoostedLags",
    "LagRegression",
    "LastProfile",
    "NeuralForecaster",
    "Persistence",
    "ReCycle",
    "ReCycleNet",
    "RidgeARX",
    "SameTypeMean",
    "Scaler",
    "SeasonalNaive",
    "Split",
    "StepTransformer",
    "StepTransformerNet",
    "TenDayMean",
    "TrainingResult",
    "WeeklyNaive",
    "__version__",
    "as_frame",
    "backtest",
    "calendar_features",
    "check_cycle_length",
    "chronological_split",
    "compress",
    "cycle_length_for",
    "datasets",
    "day_types",
    "evaluate",
    "expand",
    "load_model",
    "mae",
    "make_baseline",
    "make_loss",
    "mape",
    "mase",
    "mase_insample",
    "nse",
    "pinball_loss",
    "read_csv",
    "read_csv_with_covariates",
    "regularize",
    "relative_peak_error",
    "resample",
    "rhp_profile",
    "rmse",
    "save_model",
    "synthetic_cyclic",
    "synthetic_with_temperature",
    "train_network",
    "whole_cycles",
]

"""The estimator the zoo's networks share: sliding windows of values, the long-horizon protocol.

The long-horizon benchmark protocol of the Time-Series-Library (thuml/Time-Series-Library,
``data_provider/data_loader.py``): an input window of ``seq_len`` steps (96), a horizon of
``pred_len`` steps (96/192/336/720), windows at every step (``stride=1``), the scaler fitted on
the training part only, multivariate in and out (every column is input and target), MSE loss.
Here the window lengths are given in cycles (``history_cycles × cycle_length`` steps; with
hourly data and ``cycle_length=24`` the protocol's 96 is ``history_cycles=4`` and its horizons
are ``horizon_cycles`` 4/8/14/30), so the existing estimator contract
(:class:`hai.forecast.NeuralForecaster`: fit/predict/predict_at, validation split, early
stopping, :func:`hai.forecast.training.train_network`) applies unchanged.

Unlike ReCycle and the step transformer, the zoo's networks see values only (no calendar),
so they forecast from any origin, not just cycle starts. The network maps the scaled history
``(B, history, C)`` to the scaled forecast ``(B, horizon, C)``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch
from torch import nn

from hai.forecast.base import _check_positive_int
from hai.forecast.neural import NeuralForecaster
from hai.forecast.training import Batch
from hai.shared import InputError


class WindowForecaster(NeuralForecaster):
    """Base of the zoo's forecasters (Informer, Autoformer, FEDformer, Crossformer, PatchTST).

    Parameters are those of :class:`hai.forecast.NeuralForecaster` (``d_model``, ``nhead``,
    ``num_encoder_layers``, ``num_decoder_layers``, ``dim_feedforward``, ``dropout``, ``epochs``,
    ``lr`` …) plus ``stride``: training windows start every ``stride`` steps (1: the protocol).
    The defaults differ where the protocol says so: input 96 steps (``history_cycles=4``),
    horizon 96 (``horizon_cycles=4``), MSE loss, no weight decay, ``patience=3``.
    """

    name = "window"

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 4,
        horizon_cycles: int = 4,
        *,
        stride: int = 1,
        loss: str = "mse",
        weight_decay: float = 0.0,
        patience: int | None = 3,
        epochs: int = 10,
        lr: float = 1e-3,
        period: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(
            cycle_length,
            history_cycles,
            horizon_cycles,
            loss=loss,
            weight_decay=weight_decay,
            patience=patience,
            epochs=epochs,
            lr=lr,
            period=period,
            **params,
        )
        self.stride = stride

    @property
    def history_steps(self) -> int:
        return int(self.history_cycles) * int(self.cycle_length)

    @abstractmethod
    def _build_net(self) -> nn.Module: ...

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("stride", self.stride)
        if self.loss == "quantile":
            raise InputError(
                f"{type(self).__name__} gives point forecasts only", hint="use loss='mse' or 'l1'"
            )

    def _window_origins(self, n_steps: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Origins every ``stride`` steps: training windows end before the validation part."""
        T, F = self.history_steps, self.horizon
        n_val = round(n_steps * self.validation_fraction)
        val_start = n_steps - n_val
        if n_steps < T + F or val_start < T + F:
            raise InputError(
                f"the series has {n_steps} steps; a {type(self).__name__} window needs {T} of history and "
                f"{F} of horizon, before the last {n_val} steps kept for validation",
                hint="give a longer series, or lower history_cycles/horizon_cycles",
            )
        origins = np.arange(T, n_steps - F + 1, int(self.stride))
        train = origins[origins + F <= val_start]
        val = origins[origins >= val_start]
        return train, val, val_start

    def _check_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> None:
        """Any origin will do: the networks see values only."""

    def _inputs(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[Batch, np.ndarray]:
        T = self.history_steps
        values = frame.to_numpy()
        hist = np.stack([values[o - T : o] for o in origins.tolist()])
        base = np.broadcast_to(self.scaler_.offset_, (len(origins), self.horizon, values.shape[1])).copy()
        return {"history": self._tensor(self.scaler_.transform(hist))}, base

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch["history"]).unsqueeze(-1)

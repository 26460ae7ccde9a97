"""ReCycle: the Residual Cyclic Transformer (Weyrauch et al., IEEE CAI 2024, arXiv 2405.03429).

Three ideas, as in the reference implementation (Helmholtz-AI-Energy/ReCycle):

1. **Primary cycle compression**: one token is one whole cycle (one day of hourly values is a
   token of width 24 × columns), so attention runs over ``history_cycles`` tokens, not
   ``history_cycles × cycle_length``.
2. **Residual learning** over a recent-historic-profile baseline: the encoder sees each history
   cycle minus its own baseline profile (``residual_input``); the decoder sees the baseline of
   the forecast cycles (``meta_token``) and the output is added to it (``residual_forecast``).
3. A **one-shot encoder–decoder transformer** (``torch.nn.Transformer``, no causal mask) with
   weekday and day-type embeddings: the whole horizon comes out at once.

The output layer starts at zero, so an untrained ReCycle forecasts its baseline; with
``use_network=False`` it *is* the baseline, exactly (the explainable fallback).

>>> from hai.forecast.data import synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=40, seed=0)
>>> model = ReCycle(epochs=2).fit(y)
>>> model.predict(y).shape
(24,)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch
from torch import nn

from hai.forecast.baselines import BASELINES, Baseline, make_baseline
from hai.forecast.neural import NeuralForecaster, one_shot_transformer
from hai.forecast.training import Batch
from hai.shared import InputError


class ReCycleNet(nn.Module):
    """The one-shot encoder–decoder over cycle tokens.

    ``forward(history, history_calendar, future, future_calendar)`` takes history residual
    tokens ``(B, H, L·C)``, future baseline tokens ``(B, F, L·C)`` and calendars ``(…, 2)``
    (weekday, day type); it returns the residual ``(B, F·L, C, Q)``.
    """

    def __init__(
        self,
        cycle_length: int,
        n_features: int,
        history_cycles: int,
        horizon_cycles: int,
        *,
        d_model: int = 32,
        nhead: int = 1,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 96,
        dropout: float = 0.1,
        n_quantiles: int = 1,
    ) -> None:
        super().__init__()
        token = cycle_length * n_features
        self.cycle_length, self.n_features, self.n_quantiles = cycle_length, n_features, n_quantiles
        self.history_cycles = history_cycles
        self.encoder_in = nn.Linear(token, d_model)
        self.decoder_in = nn.Linear(token, d_model)
        self.weekday = nn.Embedding(7, d_model)
        self.day_type = nn.Embedding(3, d_model)
        self.position = nn.Parameter(torch.randn(history_cycles + horizon_cycles, d_model) * 0.02)
        self.transformer = one_shot_transformer(
            d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout
        )
        self.head = nn.Linear(d_model, token * n_quantiles)
        nn.init.zeros_(self.head.weight)  # start at the baseline: zero residual
        nn.init.zeros_(self.head.bias)

    def _calendar(self, calendar: torch.Tensor) -> torch.Tensor:
        return self.weekday(calendar[..., 0]) + self.day_type(calendar[..., 1])

    def forward(
        self,
        history: torch.Tensor,
        history_calendar: torch.Tensor,
        future: torch.Tensor,
        future_calendar: torch.Tensor,
    ) -> torch.Tensor:
        H = history.shape[1]
        src = self.encoder_in(history) + self._calendar(history_calendar) + self.position[:H]
        tgt = (
            self.decoder_in(future) + self._calendar(future_calendar) + self.position[H : H + future.shape[1]]
        )
        hidden = self.transformer(src, tgt)
        out = self.head(hidden)  # (B, F, L*C*Q)
        B, F = out.shape[:2]
        return out.reshape(B, F * self.cycle_length, self.n_features, self.n_quantiles)


class ReCycle(NeuralForecaster):
    """Residual Cyclic Transformer forecaster (scikit-learn style).

    Parameters: ``cycle_length`` steps per cycle (24 for hourly data with daily cycles; must
    match the sampling and ``period``, default one day), ``history_cycles`` cycles of input,
    ``horizon_cycles`` cycles forecast at once, ``baseline`` one of
    :data:`hai.forecast.BASELINES` (``"last_profile"`` by default; ``baseline_params`` such as
    ``{"k": 3}`` for ``same_type_mean``), ``use_network`` (False: the baseline alone), and the
    network/training parameters of :class:`~hai.forecast.neural.NeuralForecaster`: ``d_model``
    32, ``nhead`` 1, one encoder and one decoder layer, ``dim_feedforward`` 96 (the reference
    implementation's defaults are one head and 96), ``dropout``
    0.1, ``loss`` ``"l1"``/``"mse"``/``"quantile"`` (with ``quantiles``), ``epochs`` 200,
    ``batch_size`` 32, ``lr`` 1e-3, ``patience`` 20 (early stopping on the last
    ``validation_fraction`` 0.2 of the cycles), ``scaling``, ``seed``, ``device``,
    ``country``/``subdiv`` for holidays, ``fill`` for gaps.

    After ``fit``: ``net_`` (the :class:`ReCycleNet`), ``scaler_``, ``baseline_``,
    ``history_`` (per-epoch losses and times), ``best_epoch_``, ``epoch_time_s_`` and
    ``epoch_cpu_s_`` (median wall and CPU seconds of a training pass),
    ``fit_cost_`` (wall/CPU time and energy), ``n_parameters_``.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=30)
    >>> fallback = ReCycle(use_network=False).fit(y)
    >>> bool((fallback.predict(y) == fallback.baseline_.predict(y)).all())
    True
    """

    name = "recycle"

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 7,
        horizon_cycles: int = 1,
        *,
        baseline: str = "last_profile",
        baseline_params: dict[str, Any] | None = None,
        use_network: bool = True,
        **params: Any,
    ) -> None:
        super().__init__(cycle_length, history_cycles, horizon_cycles, **params)
        self.baseline = baseline
        self.baseline_params = baseline_params
        self.use_network = use_network

    def _make_baseline(self) -> Baseline:
        if self.baseline not in BASELINES:
            raise InputError(f"unknown baseline {self.baseline!r}", hint=f"use one of {', '.join(BASELINES)}")
        return make_baseline(
            self.baseline,
            cycle_length=self.cycle_length,
            horizon_cycles=self.horizon_cycles,
            period=self.period,
            country=self.country,
            subdiv=self.subdiv,
            fill=self.fill,
            **(self.baseline_params or {}),
        )

    @property
    def context_cycles(self) -> int:
        return self._make_baseline().context_cycles

    @property
    def uses_network(self) -> bool:
        return bool(self.use_network)

    def _fit(self, frame: pd.DataFrame) -> None:
        baseline = self._make_baseline()
        baseline.fit(frame)
        self.baseline_: Baseline = baseline
        self.baseline_.series_name_ = self.series_name_  # answer in the same pandas shape as the model
        super()._fit(frame)

    def _build_net(self) -> nn.Module:
        return ReCycleNet(
            int(self.cycle_length),
            self.n_features_,
            int(self.history_cycles),
            int(self.horizon_cycles),
            d_model=int(self.d_model),
            nhead=int(self.nhead),
            num_encoder_layers=int(self.num_encoder_layers),
            num_decoder_layers=int(self.num_decoder_layers),
            dim_feedforward=int(self.dim_feedforward),
            dropout=float(self.dropout),
            n_quantiles=self.n_quantiles,
        )

    def _inputs(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[Batch, np.ndarray]:
        L, H, F = int(self.cycle_length), int(self.history_cycles), int(self.horizon_cycles)
        C = frame.shape[1]
        base = self.baseline_.profiles_from(frame, origins, F)  # (N, F*L, C)
        if not self.uses_network:
            return {}, base
        values = frame.to_numpy()
        hist_starts = origins[:, None] - L * np.arange(H, 0, -1)[None, :]  # (N, H)
        unique = np.unique(hist_starts)
        profiles = self.baseline_.profiles_from(frame, unique, 1)  # (U, L, C)
        hist_rhp = profiles[np.searchsorted(unique, hist_starts)]  # (N, H, L, C)
        hist = np.stack([values[o - H * L : o] for o in origins.tolist()]).reshape(len(origins), H, L, C)
        scale = self.scaler_.scale_
        residual = ((hist - hist_rhp) / scale).reshape(len(origins), H, L * C)
        # The decoder sees the baseline's shape relative to the window's own mean level (instance
        # normalisation): levels outside the training range (a colder winter) stay in range.
        level = hist.mean(axis=(1, 2))[:, None, :]  # (N, 1, C)
        future = ((base - level) / scale).reshape(len(origins), F, L * C)
        fut_starts = origins[:, None] + L * np.arange(F)[None, :]
        hw, ht = self._calendar(frame, hist_starts)
        fw, ft = self._calendar(frame, fut_starts)
        inputs = {
            "history": self._tensor(residual),
            "history_calendar": self._tensor(np.stack([hw, ht], axis=-1), torch.long),
            "future": self._tensor(future),
            "future_calendar": self._tensor(np.stack([fw, ft], axis=-1), torch.long),
        }
        return inputs, base

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch["history"], batch["history_calendar"], batch["future"], batch["future_calendar"])

    def predict_baseline(self, history: Any) -> pd.Series | pd.DataFrame:
        """The baseline's forecast from the same history (what the network adds its residual to)."""
        self._check_fitted()
        return self.baseline_.predict(history)

"""A token-per-step transformer forecaster: the reference for ReCycle's cost claim.

The same window, scaling, one-shot encoder–decoder (``torch.nn.Transformer``), losses and
training loop as :class:`hai.forecast.ReCycle`, but every time step is a token (``history_cycles
× cycle_length`` encoder tokens, ``horizon`` decoder queries) and there is no baseline: the
decoder queries are calendar and position embeddings, and the output is the forecast itself.
Attention therefore costs ``(H·L)²`` instead of ``H²``.

>>> from hai.forecast.data import synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=20, seed=0)
>>> StepTransformer(epochs=1, d_model=16, nhead=2).fit(y).predict(y).shape
(24,)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch
from torch import nn

from hai.forecast.neural import NeuralForecaster, one_shot_transformer, transformer_forward
from hai.forecast.training import Batch


class StepTransformerNet(nn.Module):
    """Encoder–decoder with one token per time step.

    ``forward(history, history_calendar, future_calendar)``: history ``(B, H·L, C)`` scaled
    values, calendars ``(B, ·, 3)`` (step within the cycle, weekday, day type); returns
    ``(B, F·L, C, Q)``.
    """

    def __init__(
        self,
        cycle_length: int,
        n_features: int,
        history_steps: int,
        horizon_steps: int,
        *,
        d_model: int = 32,
        nhead: int = 1,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 96,
        dropout: float = 0.0,
        n_quantiles: int = 1,
    ) -> None:
        super().__init__()
        self.n_features, self.n_quantiles = n_features, n_quantiles
        self.value_in = nn.Linear(n_features, d_model)
        self.phase = nn.Embedding(cycle_length, d_model)
        self.weekday = nn.Embedding(7, d_model)
        self.day_type = nn.Embedding(3, d_model)
        self.position = nn.Parameter(torch.randn(history_steps + horizon_steps, d_model) * 0.02)
        self.transformer = one_shot_transformer(
            d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout
        )
        self.head = nn.Linear(d_model, n_features * n_quantiles)

    def _calendar(self, calendar: torch.Tensor) -> torch.Tensor:
        return self.phase(calendar[..., 0]) + self.weekday(calendar[..., 1]) + self.day_type(calendar[..., 2])

    def forward(
        self, history: torch.Tensor, history_calendar: torch.Tensor, future_calendar: torch.Tensor
    ) -> torch.Tensor:
        T, F = history.shape[1], future_calendar.shape[1]
        embedded = self._calendar(torch.cat([history_calendar, future_calendar], 1)) + self.position[: T + F]
        src = self.value_in(history) + embedded[:, :T]
        out = self.head(transformer_forward(self.transformer, src, embedded[:, T:]))
        return out.reshape(out.shape[0], out.shape[1], self.n_features, self.n_quantiles)


class StepTransformer(NeuralForecaster):
    """Token-per-step transformer forecaster with ReCycle's parameters (no baseline).

    Same constructor as :class:`hai.forecast.ReCycle` minus ``baseline``/``use_network``.
    """

    name = "transformer"

    def __init__(
        self, cycle_length: int = 24, history_cycles: int = 7, horizon_cycles: int = 1, **params: Any
    ) -> None:
        super().__init__(cycle_length, history_cycles, horizon_cycles, **params)

    def _build_net(self) -> nn.Module:
        L = int(self.cycle_length)
        return StepTransformerNet(
            L,
            self.n_features_,
            int(self.history_cycles) * L,
            self.horizon,
            d_model=int(self.d_model),
            nhead=int(self.nhead),
            num_encoder_layers=int(self.num_encoder_layers),
            num_decoder_layers=int(self.num_decoder_layers),
            dim_feedforward=int(self.dim_feedforward),
            dropout=float(self.dropout),
            n_quantiles=self.n_quantiles,
        )

    def _step_calendar(self, frame: pd.DataFrame, starts: np.ndarray) -> np.ndarray:
        """(N, n_cycles·L, 3): step within the cycle, weekday and day type of each step's cycle."""
        L = int(self.cycle_length)
        weekday, types = self._calendar(frame, starts)  # per cycle (N, n_cycles)
        n, k = starts.shape
        phase = np.broadcast_to(np.arange(L), (n, k, L))
        per_step = np.stack(
            [phase, np.repeat(weekday[..., None], L, axis=-1), np.repeat(types[..., None], L, axis=-1)],
            axis=-1,
        )
        return per_step.reshape(n, k * L, 3)

    def _inputs(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[Batch, np.ndarray]:
        L, H, F = int(self.cycle_length), int(self.history_cycles), int(self.horizon_cycles)
        values = frame.to_numpy()
        hist = np.stack([values[o - H * L : o] for o in origins.tolist()])
        hist_starts = origins[:, None] - L * np.arange(H, 0, -1)[None, :]
        fut_starts = origins[:, None] + L * np.arange(F)[None, :]
        base = np.broadcast_to(self.scaler_.offset_, (len(origins), F * L, values.shape[1])).copy()
        inputs = {
            "history": self._tensor(self.scaler_.transform(hist)),
            "history_calendar": self._tensor(self._step_calendar(frame, hist_starts), torch.long),
            "future_calendar": self._tensor(self._step_calendar(frame, fut_starts), torch.long),
        }
        return inputs, base

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch["history"], batch["history_calendar"], batch["future_calendar"])

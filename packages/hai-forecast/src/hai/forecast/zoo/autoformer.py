"""Autoformer: series decomposition and auto-correlation (Wu et al., NeurIPS 2021).

H. Wu, J. Xu, J. Wang, M. Long, "Autoformer: Decomposition Transformers with
Auto-Correlation for Long-Term Series Forecasting", arXiv 2106.13008. Follows the
Time-Series-Library code (thuml/Time-Series-Library, ``models/Autoformer.py``,
``layers/Autoformer_EncDec.py``, ``layers/AutoCorrelation.py``):

- **Series decomposition** inside every layer: the trend is a moving average of width
  ``moving_avg`` over the series padded at both ends with its first/last value (so the output
  has the input's length); the seasonal part is the rest. The moving average is exact: each
  trend value is the mean of the ``moving_avg`` padded values around it (the test).
- **Auto-correlation** in place of attention: the correlation of queries and keys over all lags
  by FFT (Wiener–Khinchin), the ``⌊factor · ln L⌋`` lags with the largest mean correlation,
  and the values rolled by those lags, weighted by the softmax of their correlations.
- The decoder starts from the trend and seasonal parts of the last ``label_len`` history steps
  (the horizon's trend initialised with the history mean, its seasonal part with zeros) and
  accumulates the trend its layers take out.

Differences from the reference: no timestamp embedding; the lag aggregation is the reference's
inference variant (lags chosen per sample) in training as well (the reference's training
variant chooses them per batch). :class:`AutoformerNet` takes the correlation blocks as
factories: :mod:`hai.forecast.zoo.fedformer` builds the same network with Fourier blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hai.forecast.base import _check_positive_int
from hai.forecast.zoo.base import WindowForecaster
from hai.forecast.zoo.layers import AttentionLayer, FeedForward
from hai.shared import InputError


def moving_average(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Moving average over time of ``x`` ``(B, L, C)`` with an odd ``kernel``, ends padded by replication."""
    if kernel < 1 or kernel % 2 == 0:
        raise InputError(f"the moving average needs an odd kernel, got {kernel}")
    pad = (kernel - 1) // 2
    padded = torch.cat([x[:, :1].expand(-1, pad, -1), x, x[:, -1:].expand(-1, pad, -1)], dim=1)
    return F.avg_pool1d(padded.transpose(1, 2), kernel, stride=1).transpose(1, 2)


class SeriesDecomp(nn.Module):
    """``x → (seasonal, trend)`` with ``trend = moving_average(x, kernel)`` and ``seasonal = x − trend``."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trend = moving_average(x, self.kernel)
        return x - trend, trend


class AutoCorrelation(nn.Module):
    """Auto-correlation with time-delay aggregation over per-head tensors ``(B, L, H, E)``."""

    def __init__(self, factor: int = 1) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, L, H, E = q.shape
        S = k.shape[1]
        if L > S:  # keys and values padded with zeros / cut to the queries' length, as the reference
            k = torch.cat([k, k.new_zeros(B, L - S, H, E)], dim=1)
            v = torch.cat([v, v.new_zeros(B, L - S, H, E)], dim=1)
        else:
            k, v = k[:, :L], v[:, :L]
        qf = torch.fft.rfft(q.permute(0, 2, 3, 1), dim=-1)
        kf = torch.fft.rfft(k.permute(0, 2, 3, 1), dim=-1)
        corr = torch.fft.irfft(qf * torch.conj(kf), n=L, dim=-1)  # (B, H, E, L)
        top_k = max(1, min(L, int(self.factor * math.log(L))))
        weights, delays = torch.topk(corr.mean(dim=(1, 2)), top_k, dim=-1)  # (B, top_k)
        weights = torch.softmax(weights, dim=-1)
        values = v.permute(0, 2, 3, 1).repeat(1, 1, 1, 2)  # (B, H, E, 2L): rolls are slices
        base = torch.arange(L, device=q.device)
        out = torch.zeros_like(values[..., :L])
        for i in range(top_k):
            index = (base[None, :] + delays[:, i : i + 1]).view(B, 1, 1, L).expand(-1, H, E, -1)
            out = out + torch.gather(values, -1, index) * weights[:, i].view(B, 1, 1, 1)
        return out.permute(0, 3, 1, 2)


class SeasonalNorm(nn.Module):
    """LayerNorm minus its mean over time (the reference's ``my_Layernorm``)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return x - x.mean(dim=1, keepdim=True)


class DecompEncoderLayer(nn.Module):
    """Correlation, decomposition, feed-forward, decomposition: the seasonal part goes on."""

    def __init__(
        self, attention: AttentionLayer, d_model: int, d_ff: int, kernel: int, dropout: float
    ) -> None:
        super().__init__()
        self.attention = attention
        self.ffn = FeedForward(d_model, d_ff, dropout, activation="gelu")
        self.decomp1, self.decomp2 = SeriesDecomp(kernel), SeriesDecomp(kernel)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.decomp1(x + self.dropout(self.attention(x, x, x)))
        x, _ = self.decomp2(x + self.dropout(self.ffn(x)))
        return x


class DecompDecoderLayer(nn.Module):
    """Self- and cross-correlation and feed-forward, each followed by a decomposition; returns
    the seasonal part and the trend taken out, projected to the output columns."""

    def __init__(
        self,
        self_attention: AttentionLayer,
        cross_attention: AttentionLayer,
        d_model: int,
        c_out: int,
        d_ff: int,
        kernel: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.ffn = FeedForward(d_model, d_ff, dropout, activation="gelu")
        self.decomp1, self.decomp2, self.decomp3 = (
            SeriesDecomp(kernel),
            SeriesDecomp(kernel),
            SeriesDecomp(kernel),
        )
        self.dropout = nn.Dropout(dropout)
        self.trend_projection = nn.Conv1d(d_model, c_out, 3, padding=1, padding_mode="circular", bias=False)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, trend1 = self.decomp1(x + self.dropout(self.self_attention(x, x, x)))
        x, trend2 = self.decomp2(x + self.dropout(self.cross_attention(x, memory, memory)))
        x, trend3 = self.decomp3(x + self.dropout(self.ffn(x)))
        trend = self.trend_projection((trend1 + trend2 + trend3).transpose(1, 2)).transpose(1, 2)
        return x, trend


AttentionFactory = Callable[[], AttentionLayer]


class AutoformerNet(nn.Module):
    """The decomposition encoder–decoder; the correlation blocks come from the three factories
    (encoder self, decoder self, decoder cross)."""

    def __init__(
        self,
        n_features: int,
        history_steps: int,
        horizon_steps: int,
        *,
        label_len: int,
        encoder_attention: AttentionFactory,
        decoder_attention: AttentionFactory,
        cross_attention: AttentionFactory,
        d_model: int = 32,
        e_layers: int = 2,
        d_layers: int = 1,
        d_ff: int = 64,
        moving_avg: int = 25,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.label_len, self.horizon = label_len, horizon_steps
        self.decomp = SeriesDecomp(moving_avg)
        # The reference's DataEmbedding_wo_pos: values only (and timestamps, left out here).
        self.enc_embedding = nn.Linear(n_features, d_model)
        self.dec_embedding = nn.Linear(n_features, d_model)
        self.encoder = nn.ModuleList(
            DecompEncoderLayer(encoder_attention(), d_model, d_ff, moving_avg, dropout)
            for _ in range(e_layers)
        )
        self.enc_norm = SeasonalNorm(d_model)
        self.decoder = nn.ModuleList(
            DecompDecoderLayer(
                decoder_attention(), cross_attention(), d_model, n_features, d_ff, moving_avg, dropout
            )
            for _ in range(d_layers)
        )
        self.dec_norm = SeasonalNorm(d_model)
        self.projection = nn.Linear(d_model, n_features)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        B, _, C = history.shape
        seasonal, trend = self.decomp(history)
        mean = history.mean(dim=1, keepdim=True).expand(-1, self.horizon, -1)
        trend = torch.cat([trend[:, -self.label_len :], mean], dim=1)
        seasonal = torch.cat([seasonal[:, -self.label_len :], history.new_zeros(B, self.horizon, C)], dim=1)
        x = self.enc_embedding(history)
        for layer in self.encoder:
            x = layer(x)
        memory = self.enc_norm(x)
        y = self.dec_embedding(seasonal)
        for dec in self.decoder:
            y, residual_trend = dec(y, memory)
            trend = trend + residual_trend
        out = trend + self.projection(self.dec_norm(y))
        return out[:, -self.horizon :]


class Autoformer(WindowForecaster):
    """Autoformer forecaster (series decomposition, auto-correlation).

    ``moving_avg`` is the (odd) width of the decomposition's moving average (the reference's
    25), ``factor`` sets the lags aggregated (``⌊factor · ln L⌋``, the reference's 1 → 4 of 96),
    ``label_len`` the history steps the decoder starts from (default half the history).

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=20, n_series=2, seed=0)
    >>> Autoformer(epochs=1, d_model=8, nhead=2, stride=8).fit(y).predict(y).shape
    (96, 2)
    """

    name = "autoformer"

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 4,
        horizon_cycles: int = 4,
        *,
        moving_avg: int = 25,
        factor: int = 1,
        label_len: int | None = None,
        nhead: int = 2,
        num_encoder_layers: int = 2,
        dim_feedforward: int = 64,
        **params: Any,
    ) -> None:
        super().__init__(
            cycle_length,
            history_cycles,
            horizon_cycles,
            nhead=nhead,
            num_encoder_layers=num_encoder_layers,
            dim_feedforward=dim_feedforward,
            **params,
        )
        self.moving_avg = moving_avg
        self.factor = factor
        self.label_len = label_len

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("factor", self.factor)
        _check_positive_int("moving_avg", self.moving_avg)
        if self.moving_avg % 2 == 0:
            raise InputError(f"moving_avg must be odd, got {self.moving_avg}")
        if self.label_len is not None:
            _check_positive_int("label_len", self.label_len)
            if self.label_len > self.history_steps:
                raise InputError(
                    f"label_len={self.label_len} exceeds the history of {self.history_steps} steps"
                )

    @property
    def _label_len(self) -> int:
        return int(self.label_len or self.history_steps // 2)

    def _attention_factories(self) -> tuple[AttentionFactory, AttentionFactory, AttentionFactory]:
        d, h, factor = int(self.d_model), int(self.nhead), int(self.factor)

        def make() -> AttentionLayer:
            return AttentionLayer(AutoCorrelation(factor), d, h)

        return make, make, make

    def _build_net(self) -> nn.Module:
        encoder, decoder, cross = self._attention_factories()
        return AutoformerNet(
            self.n_features_,
            self.history_steps,
            self.horizon,
            label_len=self._label_len,
            encoder_attention=encoder,
            decoder_attention=decoder,
            cross_attention=cross,
            d_model=int(self.d_model),
            e_layers=int(self.num_encoder_layers),
            d_layers=int(self.num_decoder_layers),
            d_ff=int(self.dim_feedforward),
            moving_avg=int(self.moving_avg),
            dropout=float(self.dropout),
        )

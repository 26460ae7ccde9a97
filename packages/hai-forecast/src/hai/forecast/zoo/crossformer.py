"""Crossformer: dimension-segment-wise embedding and two-stage attention (Zhang & Yan, ICLR 2023).

Y. Zhang, J. Yan, "Crossformer: Transformer Utilizing Cross-Dimension Dependency for
Multivariate Time Series Forecasting", ICLR 2023 (openreview vSVLM2j9eie). Follows the
Time-Series-Library code (thuml/Time-Series-Library, ``models/Crossformer.py``,
``layers/Crossformer_EncDec.py``; ``TwoStageAttentionLayer`` in ``layers/SelfAttention_Family.py``):

- **Dimension-segment-wise (DSW) embedding**: each column's history is cut into segments of
  ``seg_len`` steps (the history padded at the front with its first value to whole segments),
  and each segment is one token ``(B, C, n_segments, d_model)``, plus a learned position per
  column and segment.
- **Two-stage attention (TSA)**: attention across time (the segments of one column), then
  across dimensions through ``router`` tokens (``factor`` per segment): the routers gather from
  all columns, the columns read back from the routers (cost linear in the number of columns).

Difference from the reference, for brevity: one scale only. The encoder is a stack of TSA
layers without segment merging, and a linear head per column maps its flattened tokens to
the horizon (the reference merges segments between scales and runs a hierarchical decoder with
its own TSA layers, summing per-scale forecasts).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hai.forecast.base import _check_positive_int
from hai.forecast.zoo.base import WindowForecaster
from hai.forecast.zoo.layers import AttentionLayer, FeedForward, FullAttention


class DSWEmbedding(nn.Module):
    """``(B, L, C) → (B, C, ⌈L / seg_len⌉, d_model)``: one token per column and segment."""

    def __init__(self, seg_len: int, d_model: int) -> None:
        super().__init__()
        self.seg_len = seg_len
        self.linear = nn.Linear(seg_len, d_model)

    def n_segments(self, length: int) -> int:
        return math.ceil(length / self.seg_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        pad = self.n_segments(L) * self.seg_len - L
        if pad:
            x = torch.cat([x[:, :1].expand(-1, pad, -1), x], dim=1)
        segments = x.transpose(1, 2).reshape(B, C, -1, self.seg_len)
        return self.linear(segments)


class TwoStageAttention(nn.Module):
    """Cross-time attention per column, then cross-dimension attention through routers."""

    def __init__(
        self, n_segments: int, factor: int, d_model: int, n_heads: int, d_ff: int, dropout: float
    ) -> None:
        super().__init__()
        self.time_attention = AttentionLayer(FullAttention(dropout), d_model, n_heads)
        self.dim_sender = AttentionLayer(FullAttention(dropout), d_model, n_heads)
        self.dim_receiver = AttentionLayer(FullAttention(dropout), d_model, n_heads)
        self.router = nn.Parameter(torch.randn(n_segments, factor, d_model))
        self.dropout = nn.Dropout(dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm3, self.norm4 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.mlp1 = FeedForward(d_model, d_ff, dropout, "gelu")
        self.mlp2 = FeedForward(d_model, d_ff, dropout, "gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, S, D = x.shape
        t = x.reshape(B * C, S, D)
        t = self.norm1(t + self.dropout(self.time_attention(t, t, t)))
        t = self.norm2(t + self.dropout(self.mlp1(t)))
        send = t.reshape(B, C, S, D).transpose(1, 2).reshape(B * S, C, D)
        router = self.router.repeat(B, 1, 1)  # (B·S, factor, D)
        buffer = self.dim_sender(router, send, send)
        receive = self.dim_receiver(send, buffer, buffer)
        d = self.norm3(send + self.dropout(receive))
        d = self.norm4(d + self.dropout(self.mlp2(d)))
        return d.reshape(B, S, C, D).transpose(1, 2)


class CrossformerNet(nn.Module):
    """DSW embedding, TSA encoder layers, a linear head per column over its flattened tokens."""

    def __init__(
        self,
        n_features: int,
        history_steps: int,
        horizon_steps: int,
        *,
        seg_len: int = 12,
        factor: int = 5,
        d_model: int = 32,
        n_heads: int = 2,
        e_layers: int = 2,
        d_ff: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding = DSWEmbedding(seg_len, d_model)
        n_seg = self.embedding.n_segments(history_steps)
        self.position = nn.Parameter(torch.randn(1, n_features, n_seg, d_model))
        self.norm = nn.LayerNorm(d_model)
        self.encoder = nn.ModuleList(
            TwoStageAttention(n_seg, factor, d_model, n_heads, d_ff, dropout) for _ in range(e_layers)
        )
        self.head = nn.Linear(n_seg * d_model, horizon_steps)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embedding(history) + self.position)
        for layer in self.encoder:
            x = layer(x)
        return self.head(x.flatten(2)).transpose(1, 2)


class Crossformer(WindowForecaster):
    """Crossformer forecaster (DSW embedding, two-stage attention).

    ``seg_len`` steps per segment (the reference's 12 for hourly data at input 96), ``factor``
    routers per segment (the reference's 10; 5 here for the small default models).

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=20, n_series=2, seed=0)
    >>> Crossformer(epochs=1, d_model=8, nhead=2, stride=8).fit(y).predict(y).shape
    (96, 2)
    """

    name = "crossformer"

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 4,
        horizon_cycles: int = 4,
        *,
        seg_len: int = 12,
        factor: int = 5,
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
        self.seg_len = seg_len
        self.factor = factor

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("seg_len", self.seg_len)
        _check_positive_int("factor", self.factor)

    def _build_net(self) -> nn.Module:
        return CrossformerNet(
            self.n_features_,
            self.history_steps,
            self.horizon,
            seg_len=int(self.seg_len),
            factor=int(self.factor),
            d_model=int(self.d_model),
            n_heads=int(self.nhead),
            e_layers=int(self.num_encoder_layers),
            d_ff=int(self.dim_feedforward),
            dropout=float(self.dropout),
        )

"""PatchTST: patches of one channel as tokens, channel independence (Nie et al., ICLR 2023).

Y. Nie, N. H. Nguyen, P. Sinthong, J. Kalagnanam, "A Time Series is Worth 64 Words: Long-term
Forecasting with Transformers", arXiv 2211.14730. Follows the Time-Series-Library code
(thuml/Time-Series-Library, ``models/PatchTST.py``; ``PatchEmbedding`` in ``layers/Embed.py``):

- **Instance normalisation** (RevIN without affine parameters): each window and column is
  standardised by its own mean and standard deviation, and the forecast is scaled back.
- **Patching**: the series is padded at the end by repeating its last value ``patch_stride``
  times and cut into patches of ``patch_len`` with step ``patch_stride``:
  ``(L − patch_len) // patch_stride + 2`` patches (12 for 96/16/8), each one token.
- **Channel independence**: every column runs through the same encoder on its own
  (``(B·C, n_patches, d_model)``), and a flatten head maps its tokens to the horizon.

Differences from the reference: LayerNorm in the encoder layers (the reference's default is
BatchNorm); the position table is the fixed sinusoidal one (as the reference's
Time-Series-Library port).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hai.forecast.base import _check_positive_int
from hai.forecast.zoo.base import WindowForecaster
from hai.forecast.zoo.layers import AttentionLayer, EncoderLayer, FullAttention, sinusoidal_positions
from hai.shared import InputError


def n_patches(length: int, patch_len: int, stride: int) -> int:
    """Patches of a length-``length`` series (end-padded by ``stride``).

    >>> n_patches(96, 16, 8)
    12
    """
    return (length - patch_len) // stride + 2


class PatchEmbedding(nn.Module):
    """``(B, L, C) → (B·C, n_patches, d_model)``: end padding, unfold, linear, positions."""

    positions: torch.Tensor

    def __init__(self, patch_len: int, stride: int, d_model: int, max_patches: int = 1024) -> None:
        super().__init__()
        self.patch_len, self.stride = patch_len, stride
        self.linear = nn.Linear(patch_len, d_model, bias=False)
        self.register_buffer("positions", sinusoidal_positions(max_patches, d_model), persistent=False)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, C) → (B, C, n_patches, patch_len)``."""
        series = x.transpose(1, 2)
        series = torch.cat([series, series[..., -1:].expand(-1, -1, self.stride)], dim=-1)
        return series.unfold(-1, self.patch_len, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patches(x)
        B, C, N, P = p.shape
        return self.linear(p.reshape(B * C, N, P)) + self.positions[:N]


class PatchTSTNet(nn.Module):
    """RevIN, patch embedding, channel-independent encoder, flatten head."""

    def __init__(
        self,
        n_features: int,
        history_steps: int,
        horizon_steps: int,
        *,
        patch_len: int = 16,
        patch_stride: int = 8,
        d_model: int = 32,
        n_heads: int = 2,
        e_layers: int = 2,
        d_ff: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding = PatchEmbedding(patch_len, patch_stride, d_model)
        self.encoder = nn.ModuleList(
            EncoderLayer(AttentionLayer(FullAttention(dropout), d_model, n_heads), d_model, d_ff, dropout)
            for _ in range(e_layers)
        )
        self.n_patches = n_patches(history_steps, patch_len, patch_stride)
        self.head = nn.Linear(self.n_patches * d_model, horizon_steps)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        B, _L, C = history.shape
        mean = history.mean(dim=1, keepdim=True)
        std = torch.sqrt(history.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
        x = self.embedding((history - mean) / std)
        for layer in self.encoder:
            x = layer(x)
        out = self.head(x.reshape(B, C, -1)).transpose(1, 2)  # (B, horizon, C)
        return out * std + mean


class PatchTST(WindowForecaster):
    """PatchTST forecaster (patching, channel independence, RevIN).

    ``patch_len`` and ``patch_stride`` (the reference's 16 and 8).

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=20, n_series=2, seed=0)
    >>> PatchTST(epochs=1, d_model=8, nhead=2, stride=8).fit(y).predict(y).shape
    (96, 2)
    """

    name = "patchtst"

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 4,
        horizon_cycles: int = 4,
        *,
        patch_len: int = 16,
        patch_stride: int = 8,
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
        self.patch_len = patch_len
        self.patch_stride = patch_stride

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("patch_len", self.patch_len)
        _check_positive_int("patch_stride", self.patch_stride)
        if self.patch_len > self.history_steps:
            raise InputError(f"patch_len={self.patch_len} exceeds the history of {self.history_steps} steps")

    def _build_net(self) -> nn.Module:
        return PatchTSTNet(
            self.n_features_,
            self.history_steps,
            self.horizon,
            patch_len=int(self.patch_len),
            patch_stride=int(self.patch_stride),
            d_model=int(self.d_model),
            n_heads=int(self.nhead),
            e_layers=int(self.num_encoder_layers),
            d_ff=int(self.dim_feedforward),
            dropout=float(self.dropout),
        )

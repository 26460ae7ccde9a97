"""Informer: ProbSparse self-attention and self-attention distilling (Zhou et al., AAAI 2021).

H. Zhou et al., "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
Forecasting", arXiv 2012.07436. Follows the Time-Series-Library code (thuml/Time-Series-Library,
``models/Informer.py``; ``ProbAttention`` in ``layers/SelfAttention_Family.py``; ``ConvLayer``
in ``layers/Transformer_EncDec.py``):

- **ProbSparse attention**: ``U = factor · ⌈ln L_K⌉`` keys are sampled per query, the query
  sparsity measure ``M = max − mean`` of the sampled scores picks the ``u = factor · ⌈ln L_Q⌉``
  most active queries, only those get full attention; the others get the mean of the values.
  With ``u ≥ L_Q`` every query is active and the result is full attention (the test).
- **Distilling**: between encoder layers a ``Conv1d`` (kernel 3, circular) + BatchNorm + ELU
  + max-pool (stride 2) halves the sequence.
- **Generative decoder**: the decoder input is the last ``label_len`` history steps followed
  by zero placeholders for the horizon; the horizon comes out in one forward pass.

Differences from the reference: no timestamp embedding; the decoder's self-attention is
ProbSparse *without* the causal mask (the placeholders hold no future values, and the
reference's masked variant fills inactive queries with a cumulative sum); in eval mode the key
sample is drawn from a fixed seed, so a trained model forecasts deterministically (the
reference samples anew on every call).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hai.forecast.base import _check_positive_int
from hai.forecast.zoo.base import WindowForecaster
from hai.forecast.zoo.layers import AttentionLayer, DataEmbedding, DecoderLayer, EncoderLayer, FullAttention


class ProbAttention(nn.Module):
    """ProbSparse attention over per-head tensors ``(B, L, H, E)`` (no mask)."""

    def __init__(self, factor: int = 5, dropout: float = 0.0) -> None:
        super().__init__()
        self.factor = factor
        self.dropout = nn.Dropout(dropout)

    def n_active(self, length_q: int, length_k: int) -> tuple[int, int]:
        """(sampled keys per query, active queries) for these lengths, as in the reference."""
        sample_k = min(self.factor * math.ceil(math.log(length_k)), length_k)
        top_u = min(self.factor * math.ceil(math.log(length_q)), length_q)
        return sample_k, top_u

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, L_Q, H, E = q.shape
        L_K = k.shape[1]
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, L, E)
        sample_k, top_u = self.n_active(L_Q, L_K)
        generator = None if self.training else torch.Generator(device=q.device).manual_seed(0)
        index_sample = torch.randint(L_K, (L_Q, sample_k), device=q.device, generator=generator)
        k_sample = k[:, :, index_sample, :]  # (B, H, L_Q, sample_k, E)
        qk_sample = torch.einsum("bhqe,bhqse->bhqs", q, k_sample)
        sparsity = qk_sample.max(-1).values - qk_sample.sum(-1) / L_K
        top = sparsity.topk(top_u, dim=-1, sorted=False).indices  # (B, H, u)
        # Inactive queries: the mean of the values (the reference's initial context).
        context = v.mean(dim=2, keepdim=True).expand(B, H, L_Q, E).clone()
        q_top = torch.gather(q, 2, top[..., None].expand(-1, -1, -1, E))
        scores = torch.matmul(q_top, k.transpose(-2, -1)) / math.sqrt(E)
        attn = self.dropout(torch.softmax(scores, dim=-1))
        context.scatter_(2, top[..., None].expand(-1, -1, -1, E), torch.matmul(attn, v))
        return context.transpose(1, 2)


class DistilLayer(nn.Module):
    """Self-attention distilling: ``MaxPool(ELU(BatchNorm(Conv1d(x))))``, the length halved."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel_size=3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm1d(d_model)
        self.activation = nn.ELU()
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.activation(self.norm(self.conv(x.transpose(1, 2)))))
        return y.transpose(1, 2)


class InformerNet(nn.Module):
    """Encoder (ProbSparse layers with distilling between them) and generative decoder."""

    def __init__(
        self,
        n_features: int,
        history_steps: int,
        horizon_steps: int,
        *,
        label_len: int,
        d_model: int = 32,
        n_heads: int = 2,
        e_layers: int = 2,
        d_layers: int = 1,
        d_ff: int = 64,
        dropout: float = 0.0,
        factor: int = 5,
        distil: bool = True,
    ) -> None:
        super().__init__()
        self.label_len, self.horizon = label_len, horizon_steps
        self.enc_embedding = DataEmbedding(n_features, d_model, history_steps, dropout)
        self.dec_embedding = DataEmbedding(n_features, d_model, label_len + horizon_steps, dropout)

        def prob() -> AttentionLayer:
            return AttentionLayer(ProbAttention(factor, dropout), d_model, n_heads)

        self.encoder = nn.ModuleList(EncoderLayer(prob(), d_model, d_ff, dropout) for _ in range(e_layers))
        self.distil = nn.ModuleList(DistilLayer(d_model) for _ in range(e_layers - 1)) if distil else None
        self.enc_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(
            DecoderLayer(
                prob(), AttentionLayer(FullAttention(dropout), d_model, n_heads), d_model, d_ff, dropout
            )
            for _ in range(d_layers)
        )
        self.dec_norm = nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, n_features)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        x = self.enc_embedding(history)
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if self.distil is not None and i < len(self.distil):
                x = self.distil[i](x)
        memory = self.enc_norm(x)
        B, _, C = history.shape
        dec_in = torch.cat([history[:, -self.label_len :], history.new_zeros(B, self.horizon, C)], dim=1)
        y = self.dec_embedding(dec_in)
        for layer in self.decoder:
            y = layer(y, memory)
        return self.projection(self.dec_norm(y))[:, -self.horizon :]


class Informer(WindowForecaster):
    """Informer forecaster (ProbSparse attention, distilling, generative decoder).

    ``factor`` sets the sampled keys and active queries (``factor · ⌈ln L⌉``); ``label_len``
    the history steps the decoder starts from (default half the history, as the reference's
    48 of 96); ``distil`` the distilling layers. Other parameters: see
    :class:`hai.forecast.zoo.base.WindowForecaster`.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=20, n_series=2, seed=0)
    >>> Informer(epochs=1, d_model=8, nhead=2, stride=8).fit(y).predict(y).shape
    (96, 2)
    """

    name = "informer"

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 4,
        horizon_cycles: int = 4,
        *,
        factor: int = 5,
        label_len: int | None = None,
        distil: bool = True,
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
        self.factor = factor
        self.label_len = label_len
        self.distil = distil

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("factor", self.factor)
        if self.label_len is not None:
            _check_positive_int("label_len", self.label_len)
            if self.label_len > self.history_steps:
                from hai.shared import InputError

                raise InputError(
                    f"label_len={self.label_len} exceeds the history of {self.history_steps} steps"
                )

    def _build_net(self) -> nn.Module:
        return InformerNet(
            self.n_features_,
            self.history_steps,
            self.horizon,
            label_len=int(self.label_len or self.history_steps // 2),
            d_model=int(self.d_model),
            n_heads=int(self.nhead),
            e_layers=int(self.num_encoder_layers),
            d_layers=int(self.num_decoder_layers),
            d_ff=int(self.dim_feedforward),
            dropout=float(self.dropout),
            factor=int(self.factor),
            distil=bool(self.distil),
        )

"""Building blocks the zoo's networks share: embeddings, multi-head attention, feed-forward, layers.

They follow the layer structure of the Time-Series-Library (thuml/Time-Series-Library,
``layers/Embed.py``, ``layers/SelfAttention_Family.py``, ``layers/Transformer_EncDec.py``):
an :class:`AttentionLayer` owns the query/key/value/output projections and hands per-head
tensors ``(B, L, H, E)`` to an *inner* attention (full, ProbSparse, auto-correlation, Fourier),
and a :class:`FeedForward` is the position-wise two-layer network (the reference's kernel-1
``Conv1d`` pair, written as ``Linear`` layers: the same arithmetic). Two differences from the
reference, both for brevity: the value embedding is a ``Linear`` layer (the reference uses a
circular kernel-3 ``Conv1d``) and no timestamp features are embedded (the zoo's windows carry
values only).

Both :class:`AttentionLayer` and :class:`FeedForward` can drop whole heads / hidden channels
in place (``prune_heads``, ``prune_hidden``): what :mod:`hai.forecast.pruning.structured` uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """The fixed sine/cosine position table ``(length, d_model)`` of Vaswani et al. (2017)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return table


class DataEmbedding(nn.Module):
    """Value embedding (``Linear``) plus the fixed sinusoidal position table, then dropout."""

    positions: torch.Tensor

    def __init__(self, c_in: int, d_model: int, max_len: int = 4096, dropout: float = 0.0) -> None:
        super().__init__()
        self.value = nn.Linear(c_in, d_model)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.value(x) + self.positions[: x.shape[1]])


class FullAttention(nn.Module):
    """Scaled dot-product attention over per-head tensors ``(B, L, H, E)`` (no mask)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = dropout

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return out.transpose(1, 2)


def keep_rows(layer: nn.Linear, rows: torch.Tensor) -> nn.Linear:
    new = nn.Linear(layer.in_features, len(rows), bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(layer.weight[rows])
        if layer.bias is not None:
            new.bias.copy_(layer.bias[rows])
    return new.to(layer.weight.device, layer.weight.dtype)


def keep_columns(layer: nn.Linear, columns: torch.Tensor) -> nn.Linear:
    new = nn.Linear(len(columns), layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(layer.weight[:, columns])
        if layer.bias is not None:
            new.bias.copy_(layer.bias)
    return new.to(layer.weight.device, layer.weight.dtype)


class AttentionLayer(nn.Module):
    """Multi-head projections around an inner attention: ``out(inner(q(x), k(y), v(y)))``.

    ``n_heads`` heads of width ``d_head`` (``d_model // n_heads`` unless given). The inner
    attention takes and returns ``(B, L, H, E)``; an inner one with per-head parameters (the
    Fourier blocks) has its own ``prune_heads``.
    """

    def __init__(self, inner: nn.Module, d_model: int, n_heads: int, d_head: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.n_heads = n_heads
        self.d_head = d_head or d_model // n_heads
        width = self.n_heads * self.d_head
        self.query = nn.Linear(d_model, width)
        self.key = nn.Linear(d_model, width)
        self.value = nn.Linear(d_model, width)
        self.out = nn.Linear(width, d_model)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        B, L, _ = queries.shape
        S = keys.shape[1]
        H, E = self.n_heads, self.d_head
        q = self.query(queries).view(B, L, H, E)
        k = self.key(keys).view(B, S, H, E)
        v = self.value(values).view(B, S, H, E)
        return self.out(self.inner(q, k, v).reshape(B, L, H * E))

    def prune_heads(self, keep: Sequence[int]) -> None:
        """Keep only the heads ``keep`` (indices into the current heads); the others are removed."""
        heads = torch.as_tensor(sorted(int(h) for h in keep), dtype=torch.long)
        idx = (heads[:, None] * self.d_head + torch.arange(self.d_head)[None, :]).reshape(-1)
        self.query = keep_rows(self.query, idx)
        self.key = keep_rows(self.key, idx)
        self.value = keep_rows(self.value, idx)
        self.out = keep_columns(self.out, idx)
        prune_inner = getattr(self.inner, "prune_heads", None)
        if callable(prune_inner):  # per-head parameters of the inner attention (FEDformer)
            prune_inner(heads)
        self.n_heads = len(heads)

    def head_importance(self) -> torch.Tensor:
        """L1 norm of each head's projection weights (query, key, value rows and output columns)."""
        E = self.d_head
        total = torch.zeros(self.n_heads)
        with torch.no_grad():
            for proj in (self.query, self.key, self.value):
                total += proj.weight.abs().reshape(self.n_heads, E, -1).sum(dim=(1, 2)).cpu()
            total += self.out.weight.abs().reshape(-1, self.n_heads, E).sum(dim=(0, 2)).cpu()
        return total


class FeedForward(nn.Module):
    """Position-wise ``ff2(dropout(act(ff1(x))))`` with ``d_ff`` hidden channels."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu") -> None:
        super().__init__()
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.gelu if activation == "gelu" else F.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff2(self.dropout(self.activation(self.ff1(x))))

    @property
    def d_ff(self) -> int:
        return self.ff1.out_features

    def prune_hidden(self, keep: Sequence[int]) -> None:
        """Keep only the hidden channels ``keep``."""
        idx = torch.as_tensor(sorted(int(i) for i in keep), dtype=torch.long)
        self.ff1 = keep_rows(self.ff1, idx)
        self.ff2 = keep_columns(self.ff2, idx)

    def hidden_importance(self) -> torch.Tensor:
        """L1 norm of each hidden channel's weights (its ``ff1`` row and ``ff2`` column)."""
        with torch.no_grad():
            return (self.ff1.weight.abs().sum(1) + self.ff2.weight.abs().sum(0)).cpu()


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: ``norm2(x' + ffn(x'))`` with ``x' = norm1(x + attn(x, x, x))``."""

    def __init__(
        self,
        attention: AttentionLayer,
        d_model: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.attention = attention
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, x, x)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, cross-attention on the encoder output, feed-forward."""

    def __init__(
        self,
        self_attention: AttentionLayer,
        cross_attention: AttentionLayer,
        d_model: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attention(x, x, x)))
        x = self.norm2(x + self.dropout(self.cross_attention(x, memory, memory)))
        return self.norm3(x + self.dropout(self.ffn(x)))

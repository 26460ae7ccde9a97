"""Transformer pieces shared by OptoLlama and OptoGPT: spectrum tokens, time embedding, DiT blocks.

Follows OptoLlama's ``optollama/model/optollama.py``: R, A and T each become one token
(Linear(W→d)–SiLU–Linear–LayerNorm plus a sinusoidal code of the channel), the stack positions
self-attend (bidirectionally, or causally for OptoGPT) and cross-attend to the three spectrum
tokens, and a Fourier embedding of the diffusion time modulates every block through AdaLN
(shift, scale) with per-branch α-gates (DiT). Hand-written (about 100 lines of torch, as the
reference is) because ``transformers`` has no masked-diffusion model and the 21-position
sequences need none of its machinery.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

__all__ = ["Block", "FourierTime", "SpectrumEncoder", "sinusoidal"]


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """The transformer's sinusoidal code (len(positions), dim) of integer or real positions."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half, 1))
    angle = positions.to(torch.float32)[:, None] * freq.to(positions.device)[None, :]
    code = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    return nn.functional.pad(code, (0, dim - 2 * half))


class SpectrumEncoder(nn.Module):
    """(B, 3, W) spectra → (B, 3, d) tokens: a shared MLP per channel plus the channel's code."""

    def __init__(self, width: int, d_model: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(width, d_model), nn.SiLU(), nn.Linear(d_model, d_model), nn.LayerNorm(d_model)
        )
        self.register_buffer("code", sinusoidal(torch.arange(3), d_model), persistent=False)

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return self.mlp(spectra) + self.code


class FourierTime(nn.Module):
    """t ∈ [0, 1] (B,) → (B, d): sin/cos features at geometric frequencies, then an MLP."""

    def __init__(self, d_model: int, n_freq: int = 64) -> None:
        super().__init__()
        self.register_buffer("freq", torch.exp(torch.linspace(0, math.log(1000.0), n_freq)), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq, d_model), nn.SiLU(), nn.Linear(d_model, d_model))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        freq = cast(torch.Tensor, self.freq)
        angle = t.to(torch.float32)[:, None] * freq[None, :]
        return self.mlp(torch.cat([torch.sin(angle), torch.cos(angle)], dim=1))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class Block(nn.Module):
    """Self-attention, cross-attention to the spectrum tokens, MLP; each pre-LN, AdaLN-modulated
    by the conditioning vector (shift, scale, α-gate per branch) when one is given."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(d_model, elementwise_affine=False) for _ in range(3)])
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        hidden = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        self.drop = nn.Dropout(dropout)
        ada = nn.Linear(d_model, 9 * d_model)
        nn.init.normal_(ada.weight, std=0.02)  # OptoLlama: Gaussian, not DiT's zero init
        nn.init.zeros_(ada.bias)
        self.ada = nn.Sequential(nn.SiLU(), ada)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        cond: torch.Tensor | None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if cond is None:
            zero = x.new_zeros(x.shape[0], x.shape[2])
            mods = [zero, zero, zero + 1] * 3
        else:
            mods = list(self.ada(cond).chunk(9, dim=1))
            for i in (2, 5, 8):
                mods[i] = 1 + mods[i]  # α-gates start near 1
        h = _modulate(self.norms[0](x), mods[0], mods[1])
        h = self.self_attn(h, h, h, attn_mask=attn_mask, need_weights=False)[0]
        x = x + mods[2][:, None, :] * self.drop(h)
        h = _modulate(self.norms[1](x), mods[3], mods[4])
        h = self.cross_attn(h, memory, memory, need_weights=False)[0]
        x = x + mods[5][:, None, :] * self.drop(h)
        h = _modulate(self.norms[2](x), mods[6], mods[7])
        return x + mods[8][:, None, :] * self.drop(self.mlp(h))

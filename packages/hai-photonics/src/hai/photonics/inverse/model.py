"""OptoLlama: a bidirectional transformer that denoises masked stack tokens given a spectrum.

Follows ``jnitzz/OptoLlama`` (``optollama/model/optollama.py``, ``configs/optollama.yaml``;
Schaible et al., arXiv 2604.01106): token + position embeddings of the 21 positions, DiT blocks
that self-attend over the positions and cross-attend to the R, A, T tokens, AdaLN from a Fourier
embedding of the diffusion time, and a final AdaLN + linear head over the vocabulary. Sizes run
from ``tiny`` (tests, seconds on a CPU) to ``paper`` (d_model 1024, 6 blocks, 8 heads, ≈155 M
parameters with the 904-token vocabulary). Hand-written for the reasons given in
:mod:`hai.photonics.inverse.layers`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from hai.photonics.inverse.layers import Block, FourierTime, SpectrumEncoder, _modulate
from hai.shared import InputError

__all__ = ["SIZES", "ModelConfig", "OptoLlama"]

#: d_model, n_blocks, n_heads of the named sizes.
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (64, 2, 4),
    "mini": (128, 2, 4),
    "small": (128, 4, 4),
    "base": (256, 6, 8),
    "paper": (1024, 6, 8),
}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an OptoLlama or OptoGPT network (the vocabulary and spectrum width included)."""

    vocab_size: int = 904
    seq_len: int = 21
    width: int = 171
    d_model: int = 128
    n_blocks: int = 4
    n_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "width", "d_model", "n_blocks", "n_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise InputError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not 0 <= self.dropout < 1 or not self.mlp_ratio > 0:
            raise InputError("model config: need 0 <= dropout < 1 and mlp_ratio > 0")

    @classmethod
    def sized(cls, size: str, **kwargs: Any) -> ModelConfig:
        """A named size (``tiny``, ``mini``, ``small``, ``base``, ``paper``) with other fields given."""
        if size not in SIZES:
            raise InputError(f"unknown model size {size!r}", hint=f"sizes: {', '.join(SIZES)}")
        d, n, h = SIZES[size]
        return cls(d_model=d, n_blocks=n, n_heads=h, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**data)


class OptoLlama(nn.Module):
    """``forward(tokens (B, L), t (B,), spectra (B, 3, W)) → logits (B, L, V)``."""

    kind = "optollama"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.embed = nn.Embedding(config.vocab_size, d)
        self.pos = nn.Parameter(torch.randn(config.seq_len, d) * 0.02)
        self.spectrum = SpectrumEncoder(config.width, d)
        self.time = FourierTime(d)
        self.blocks = nn.ModuleList(
            [Block(d, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.n_blocks)]
        )
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        final = nn.Linear(d, 2 * d)
        nn.init.normal_(final.weight, std=0.02)
        nn.init.zeros_(final.bias)
        self.final_ada = nn.Sequential(nn.SiLU(), final)
        self.head = nn.Linear(d, config.vocab_size)

    def forward(self, tokens: torch.Tensor, t: torch.Tensor, spectra: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[None, : tokens.shape[1]]
        memory = self.spectrum(spectra.to(x.dtype))
        cond = self.time(t.to(x.device))
        for block in self.blocks:
            x = block(x, memory, cond)
        shift, scale = self.final_ada(cond).chunk(2, dim=1)
        logits: torch.Tensor = self.head(_modulate(self.norm(x), shift, scale))
        return logits

"""The masking schedule and the losses of masked-diffusion training (OptoLlama, MDLM).

Follows OptoLlama's ``SquareNoise``: a token is masked with probability β(t) = (1 − ε) t², t is
drawn antithetically in (ε, 1] (MDLM's ``_sample_t``: one uniform offset, B evenly spaced points),
and the reference loss is plain cross-entropy over **all non-PAD positions** (masked or not).
MDLM's NELBO is the option ``loss="mdlm"``: cross-entropy over the masked non-PAD positions only,
weighted by α′/(1 − α) = β′(t)/β(t) (1/t for the linear schedule β = t, as in LLaDA; 2/t for the
square schedule), divided by the sequence's number of non-PAD tokens. ``include_pad`` (hai's
default in training, not the reference's) also scores the PAD positions, so that the model learns
where a stack ends and samplers never feed it layer tokens behind the end it has not seen in
training. Hand-written: a few lines, and no library ships masked-diffusion schedules for arbitrary
token models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hai.shared import InputError

__all__ = ["LOSSES", "NoiseSchedule", "antithetic_t", "diffusion_loss", "mask_tokens"]

LOSSES = ("reference", "mdlm")


@dataclass(frozen=True)
class NoiseSchedule:
    """β(t) = (1 − ε) t^power: the probability that a token is masked at time t ∈ [0, 1].

    ``power`` 2 is OptoLlama's square schedule; ``power`` 1 is MDLM/LLaDA's linear one.

    >>> NoiseSchedule().beta(torch.tensor(0.5, dtype=torch.float64)).item()
    0.24975
    """

    eps: float = 1e-3
    power: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.eps < 1 or not self.power > 0:
            raise InputError("need 0 <= eps < 1 and power > 0 for the noise schedule")

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.eps) * t**self.power

    def dbeta(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.eps) * self.power * t ** (self.power - 1)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """MDLM's ELBO weight α′/(1 − α) = β′/β = power / t."""
        return self.dbeta(t) / self.beta(t)

    def time_of(self, masked_fraction: torch.Tensor) -> torch.Tensor:
        """The time t at which β(t) equals ``masked_fraction`` (the inverse of :meth:`beta`)."""
        return (masked_fraction.clamp(0, 1 - self.eps) / (1 - self.eps)) ** (1 / self.power)


def antithetic_t(n: int, eps: float = 1e-3, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` times in [ε, 1): ε + (1 − ε)·((u + i/n) mod 1) with one uniform u (MDLM)."""
    u = torch.rand((), generator=generator)
    return eps + (1 - eps) * ((u + torch.arange(n, dtype=torch.float64) / n) % 1.0)


def mask_tokens(
    tokens: torch.Tensor,
    t: torch.Tensor,
    schedule: NoiseSchedule,
    mask_id: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each token (PAD included, so the length is not given away) by ``mask_id`` with
    probability β(t) of its row; returns the noisy tokens and the boolean mask."""
    p = schedule.beta(t.to(torch.float64))[:, None].expand(tokens.shape)
    masked = torch.rand(tokens.shape, generator=generator, dtype=torch.float64) < p
    masked = masked.to(tokens.device)
    return torch.where(masked, torch.full_like(tokens, mask_id), tokens), masked


def diffusion_loss(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    masked: torch.Tensor,
    t: torch.Tensor,
    pad_id: int,
    *,
    schedule: NoiseSchedule | None = None,
    loss: str = "reference",
    include_pad: bool = False,
    normaliser: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """The training loss of logits (B, L, V) for clean ``tokens`` (B, L).

    ``reference``: mean cross-entropy over all non-PAD positions. ``mdlm``: per sequence,
    β′/β · Σ_masked non-PAD CE / #non-PAD, averaged over the batch. ``include_pad`` also
    trains the PAD positions (the model then predicts where the stack ends; see ``sampling``).
    ``normaliser`` replaces the mean's denominator (the number of scored positions, or of
    sequences): a data-parallel process passes the whole batch's count over the processes.
    """
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}", hint=f"losses: {', '.join(LOSSES)}")
    ce = F.cross_entropy(logits.transpose(1, 2).float(), tokens, reduction="none")  # (B, L)
    real = torch.ones_like(tokens, dtype=torch.bool) if include_pad else tokens != pad_id
    if loss == "reference":
        return (ce * real).sum() / (real.sum().clamp_min(1) if normaliser is None else normaliser)
    schedule = schedule or NoiseSchedule()
    weight = schedule.weight(t.to(ce.device, torch.float64)).to(ce.dtype)
    per_seq = (ce * (real & masked)).sum(dim=1) / real.sum(dim=1).clamp_min(1)
    return (weight * per_seq).sum() / (tokens.shape[0] if normaliser is None else normaliser)

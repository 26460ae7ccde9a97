"""The evidence lower bound (ELBO) of a mean-field BNN, estimated with S weight samples.

For a data set of N examples, a batch of B and S weight samples the negative ELBO per example is

    L = (1/(S·B)) Σ_i Σ_b −log p(y_b | x_b, w_i)  +  β·KL(q ‖ p)/N,

i.e. the reference's ``dataset_size · NLL + heat · KL`` divided by N (same gradients up to the
constant N, and a loss that reads like a cross-entropy). ``β`` is the KL weight.

:class:`PredictiveLoss` is the reference's mean-predictive ("UP") loss instead: the likelihood of
the *mean* predictive over the S samples,

    L = −(1/B) Σ_b log[(1/S) Σ_i p(y_b | x_b, w_i)]  +  β·KL(q ‖ p)/N,

(the reference's ``KL − dataset_size · mean log p(y | mean)``, divided by N). By Jensen's
inequality it is at most the ELBO loss with the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from hai.shared import InputError

LIKELIHOODS: tuple[str, ...] = ("categorical", "gaussian")


@dataclass(frozen=True)
class LogStd:
    """A learned Gaussian noise: ``value`` is the (trainable, 0-d) tensor log σ."""

    value: torch.Tensor


NoiseStd = float | LogStd


def check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise InputError(f"unknown likelihood {likelihood!r}", hint=f"use one of {', '.join(LIKELIHOODS)}")


def _gaussian_scale(noise_std: NoiseStd) -> tuple[Any, Any]:
    """(σ, log σ) of a fixed noise std (a positive number) or a learned one (a tensor ``log σ``,
    passed as :class:`LogStd`, so that its gradient flows)."""
    if isinstance(noise_std, LogStd):
        return torch.exp(noise_std.value), noise_std.value
    if not noise_std > 0:
        raise InputError(f"noise_std must be positive, got {noise_std}")
    return noise_std, math.log(noise_std)


def log_likelihood(
    outputs: torch.Tensor, target: torch.Tensor, likelihood: str = "categorical", noise_std: NoiseStd = 1.0
) -> torch.Tensor:
    """log p(y_b | output_i) for every sample i and example b: an (S, B) tensor.

    ``outputs`` is (S, B, C) logits for ``"categorical"`` (``target`` (B,) class indices) or
    (S, B) / (S, B, 1) means for ``"gaussian"`` with a fixed noise std (``target`` (B,)).

    >>> log_likelihood(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2])).shape
    torch.Size([2, 3])
    """
    check_likelihood(likelihood)
    if outputs.dim() < 2 or outputs.shape[1] != target.shape[0]:
        raise InputError(
            f"outputs must be (samples, batch, ...) with batch {target.shape[0]}, got {tuple(outputs.shape)}"
        )
    s, b = outputs.shape[:2]
    if likelihood == "categorical":
        logp = torch.log_softmax(outputs.reshape(s, b, -1), dim=-1)
        return logp.gather(-1, target.reshape(1, b, 1).expand(s, b, 1)).squeeze(-1)
    std, log_std = _gaussian_scale(noise_std)
    z = (outputs.reshape(s, b) - target.to(outputs.dtype).unsqueeze(0)) / std
    return -0.5 * z * z - (log_std + 0.5 * math.log(2 * math.pi))


def nll_sum(
    outputs: torch.Tensor, target: torch.Tensor, likelihood: str = "categorical", noise_std: NoiseStd = 1.0
) -> torch.Tensor:
    """Σ over samples and examples of −log p(y | output).

    ``outputs`` is (S, B, C) logits for ``"categorical"`` (``target`` (B,) class indices) or
    (S, B) / (S, B, 1) means for ``"gaussian"`` with a fixed noise std (``target`` (B,)).

    >>> float(nll_sum(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2])))  # 6 × log 4
    8.317766...
    """
    check_likelihood(likelihood)
    if outputs.dim() < 2 or outputs.shape[1] != target.shape[0]:
        raise InputError(
            f"outputs must be (samples, batch, ...) with batch {target.shape[0]}, got {tuple(outputs.shape)}"
        )
    if likelihood == "categorical":
        s, b = outputs.shape[:2]
        return F.cross_entropy(outputs.reshape(s * b, -1), target.repeat(s).reshape(s * b), reduction="sum")
    std, log_std = _gaussian_scale(noise_std)
    mean = outputs.reshape(outputs.shape[0], outputs.shape[1])
    z = (mean - target.to(mean.dtype).unsqueeze(0)) / std
    return (0.5 * z * z).sum() + mean.numel() * (log_std + 0.5 * math.log(2 * math.pi))


class _VariationalLoss:
    """What both losses share: the data set size N, the KL weight β and the likelihood."""

    def __init__(
        self,
        dataset_size: int,
        *,
        kl_weight: float = 1.0,
        likelihood: str = "categorical",
        noise_std: float = 1.0,
        log_noise_std: torch.Tensor | None = None,
    ) -> None:
        if dataset_size < 1:
            raise InputError(f"dataset_size must be positive, got {dataset_size}")
        if not kl_weight >= 0:
            raise InputError(f"kl_weight must be non-negative, got {kl_weight}")
        check_likelihood(likelihood)
        self.dataset_size = int(dataset_size)
        self.kl_weight = float(kl_weight)
        self.likelihood = likelihood
        self.fixed_noise_std = float(noise_std)
        # a learned noise: the trainable log σ (a parameter of the model, so DDP averages its gradient)
        self.log_noise_std = log_noise_std

    @property
    def noise_std(self) -> float:
        """The likelihood's noise std: the fixed one, or the learned one's current value."""
        if self.log_noise_std is None:
            return self.fixed_noise_std
        return float(torch.exp(self.log_noise_std.detach()))

    @property
    def noise(self) -> NoiseStd:
        """What the likelihood functions take: the fixed std, or the learned :class:`LogStd`."""
        return self.fixed_noise_std if self.log_noise_std is None else LogStd(self.log_noise_std)

    def kl_term(self, kl: torch.Tensor) -> torch.Tensor:
        """β·KL/N."""
        return kl * (self.kl_weight / self.dataset_size)


class ELBOLoss(_VariationalLoss):
    """Negative ELBO per example from S samples of the outputs and the analytic KL.

    >>> loss = ELBOLoss(dataset_size=100, kl_weight=1.0)
    >>> value = loss(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2]), kl=torch.tensor(50.0))
    >>> round(float(value), 4)  # log 4 + 50/100
    1.8863
    """

    def data_sum(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ_i Σ_b −log p(y_b | x_b, w_i) over the given samples and rows."""
        return nll_sum(outputs, target, self.likelihood, self.noise)

    def __call__(self, outputs: torch.Tensor, target: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        s, b = outputs.shape[:2]
        return self.data_sum(outputs, target) / (s * b) + self.kl_term(kl)


class PredictiveLoss(_VariationalLoss):
    """Negative log-likelihood of the mean predictive over S samples per example, plus β·KL/N.

    The reference's ``UP_AllGaussLoss`` (divided by the data set size N). Under sampling
    parallelism the per-rank sums of p(y | x, wᵢ) are all-reduced to the world mean before the
    logarithm (see :class:`hai.scale.SamplingParallel`).

    >>> loss = PredictiveLoss(dataset_size=100)
    >>> value = loss(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2]), kl=torch.tensor(50.0))
    >>> round(float(value), 4)  # −log(1/4) + 50/100
    1.8863
    """

    def likelihood_sum(self, outputs: torch.Tensor, target: torch.Tensor, samples: int) -> torch.Tensor:
        """(1/S) Σ_i p(y_b | x_b, w_i) over the given samples, per example (B,); S is the global count.

        Computed as exp(logsumexp − log S), so a sample with a tiny likelihood cannot overflow.
        """
        ll = log_likelihood(outputs, target, self.likelihood, self.noise)
        return torch.exp(torch.logsumexp(ll, dim=0) - math.log(samples))

    def data_sum(self, mean_likelihood: torch.Tensor) -> torch.Tensor:
        """−Σ_b log p̄(y_b | x_b) from the mean-predictive likelihoods (clamped at the smallest normal)."""
        return -torch.log(mean_likelihood.clamp_min(torch.finfo(mean_likelihood.dtype).tiny)).sum()

    def __call__(self, outputs: torch.Tensor, target: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        ll = log_likelihood(outputs, target, self.likelihood, self.noise)
        log_mean = torch.logsumexp(ll, dim=0) - math.log(ll.shape[0])
        return -log_mean.mean() + self.kl_term(kl)

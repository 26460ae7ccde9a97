"""The predictive distribution over S weight samples, its uncertainty, and calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import torch
from torch import nn

from hai.scale.bnn.layers import weight_sample
from hai.scale.bnn.losses import check_likelihood
from hai.shared import InputError


@dataclass
class Predictive:
    """S-sample predictive distribution for a batch.

    Classification: ``mean`` (B, C) mean class probabilities, ``samples`` (S, B, C) the per-sample
    probabilities, ``variance`` None. Regression: ``mean`` (B,), ``variance`` (B,) the predictive
    variance (spread of the sample means plus the noise variance), ``samples`` (S, B) the means.
    """

    mean: torch.Tensor
    samples: torch.Tensor
    variance: torch.Tensor | None = None

    def entropy(self) -> torch.Tensor:
        """Predictive entropy per example (classification)."""
        return predictive_entropy(self.mean)

    def mutual_information(self) -> torch.Tensor:
        """Epistemic part of the entropy: H[mean] − mean of H[sample] (classification)."""
        return mutual_information(self.samples)


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    *,
    samples: int = 16,
    seed: int = 0,
    step: int = 0,
    likelihood: str = "categorical",
    noise_std: float = 1.0,
) -> Predictive:
    """Evaluate ``model`` on ``x`` for ``samples`` weight samples keyed by (seed, step, i).

    >>> from hai.scale.bnn.layers import to_bayesian
    >>> net = to_bayesian(nn.Linear(3, 4))
    >>> p = predict(net, torch.randn(5, 3), samples=8)
    >>> tuple(p.mean.shape), bool(torch.allclose(p.mean.sum(1), torch.ones(5)))
    ((5, 4), True)
    """
    check_likelihood(likelihood)
    if samples < 1:
        raise InputError(f"samples must be at least 1, got {samples}")
    outs = []
    for i in range(samples):
        with weight_sample(model, seed=seed, step=step, sample=i, name="bnn-predict"):
            outs.append(model(x))
    stacked = torch.stack(outs)
    if likelihood == "categorical":
        probs = torch.softmax(stacked, dim=-1)
        return Predictive(mean=probs.mean(0), samples=probs)
    return gaussian_predictive(stacked.reshape(samples, x.shape[0]), noise_std)


def gaussian_predictive(sample_means: torch.Tensor, noise_std: float) -> Predictive:
    """The regression predictive from (S, B) per-sample means and a fixed observation noise std.

    Mean: the average of the sample means; variance: their spread (population variance, 1/S)
    plus ``noise_std``². The predictive is a mixture of S Gaussians; these are its exact moments.

    >>> p = gaussian_predictive(torch.tensor([[0.0], [2.0]]), noise_std=0.5)
    >>> float(p.mean[0]), float(p.variance[0])  # spread 1 + noise 0.25
    (1.0, 1.25)
    """
    if sample_means.dim() != 2:
        raise InputError(f"expected (samples, batch) means, got shape {tuple(sample_means.shape)}")
    if not noise_std > 0:
        raise InputError(f"noise_std must be positive, got {noise_std}")
    var = sample_means.var(0, unbiased=False) + noise_std**2
    return Predictive(mean=sample_means.mean(0), samples=sample_means, variance=var)


def regression_metrics(
    mean: torch.Tensor, variance: torch.Tensor, target: torch.Tensor, *, level: float = 0.9
) -> dict[str, float]:
    """RMSE of the predictive mean, Gaussian NLL, interval coverage and mean predictive std.

    ``nll`` is the mean over examples of −log N(y | mean, variance) (the predictive taken as one
    Gaussian with the predictive variance); ``coverage`` the fraction of targets inside the
    central ``level`` interval mean ± z·√variance (z the standard normal's (1+level)/2 quantile,
    1.645 for 90 %), which should be close to ``level`` for a calibrated model; ``std`` the mean
    of √variance.

    >>> m = regression_metrics(torch.zeros(2), torch.ones(2), torch.tensor([0.0, 2.0]))
    >>> round(m["rmse"], 4), round(m["nll"], 4), m["coverage"]  # √2; log√(2π) + (0 + 4/2)/2; |2| > 1.645
    (1.4142, 1.9189, 0.5)
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be between 0 and 1 (exclusive), got {level}")
    if mean.dim() != 1 or mean.shape != variance.shape or mean.shape != target.shape:
        raise InputError(
            f"expected mean, variance and target of one shape (B,), got {tuple(mean.shape)}, "
            f"{tuple(variance.shape)}, {tuple(target.shape)}"
        )
    if not bool((variance > 0).all()):
        raise InputError("the predictive variance must be positive")
    err = target.to(mean.dtype) - mean
    z = NormalDist().inv_cdf(0.5 + level / 2)
    nll = 0.5 * (torch.log(variance) + math.log(2 * math.pi)) + 0.5 * err * err / variance
    return {
        "rmse": float(torch.sqrt((err * err).mean())),
        "nll": float(nll.mean()),
        "coverage": float((err.abs() <= z * variance.sqrt()).to(torch.float64).mean()),
        "std": float(variance.sqrt().mean()),
    }


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """−Σ_c p_c log p_c per row, in nats.

    >>> round(float(predictive_entropy(torch.full((1, 4), 0.25))[0]), 6)  # log 4
    1.386294
    """
    return -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)


def mutual_information(sample_probs: torch.Tensor) -> torch.Tensor:
    """BALD mutual information from (S, B, C) per-sample probabilities."""
    return predictive_entropy(sample_probs.mean(0)) - predictive_entropy(sample_probs).mean(0)


def reliability(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> dict[str, list[Any]]:
    """Confidence, accuracy and count per equal-width confidence bin (max-probability confidence)."""
    if n_bins < 1:
        raise InputError(f"n_bins must be at least 1, got {n_bins}")
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise InputError(
            f"expected probs (B, C) and labels (B,), got {tuple(probs.shape)}, {tuple(labels.shape)}"
        )
    conf, pred = probs.max(1)
    correct = (pred == labels).to(probs.dtype)
    index = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    out: dict[str, list[Any]] = {"lower": [], "upper": [], "confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        mask = index == b
        n = int(mask.sum())
        out["lower"].append(b / n_bins)
        out["upper"].append((b + 1) / n_bins)
        out["count"].append(n)
        out["confidence"].append(float(conf[mask].mean()) if n else None)
        out["accuracy"].append(float(correct[mask].mean()) if n else None)
    return out


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE = Σ_bins (n_bin/N)·|accuracy − confidence| with equal-width confidence bins.

    >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    >>> round(expected_calibration_error(probs, torch.tensor([0, 1]), n_bins=10), 4)  # bins .9 and .8
    0.45
    """
    table = reliability(probs, labels, n_bins)
    total = sum(table["count"])
    ece = 0.0
    for n, c, a in zip(table["count"], table["confidence"], table["accuracy"], strict=True):
        if n:
            ece += n / total * abs(a - c)
    return ece


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    """Accuracy, negative log-likelihood of the mean predictive, ECE and mean predictive entropy."""
    acc = float((probs.argmax(1) == labels).to(torch.float64).mean())
    nll = float(-torch.log(probs.gather(1, labels[:, None]).clamp_min(1e-30)).mean())
    return {
        "accuracy": acc,
        "nll": nll,
        "ece": expected_calibration_error(probs, labels, n_bins),
        "entropy": float(predictive_entropy(probs).mean()),
    }


__all__ = [
    "Predictive",
    "classification_metrics",
    "expected_calibration_error",
    "gaussian_predictive",
    "mutual_information",
    "predict",
    "predictive_entropy",
    "regression_metrics",
    "reliability",
]

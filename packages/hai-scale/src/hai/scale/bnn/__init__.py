"""Bayesian neural networks: mean-field Gaussian layers, the ELBO, the predictive and calibration."""

from hai.scale.bnn.layers import (
    ESTIMATORS,
    BayesConv2d,
    BayesianLayer,
    BayesLinear,
    GaussianPrior,
    NoiseKey,
    bayesian_layers,
    gaussian_kl,
    kl_divergence,
    to_bayesian,
    weight_sample,
)
from hai.scale.bnn.losses import LIKELIHOODS, ELBOLoss, PredictiveLoss, log_likelihood, nll_sum
from hai.scale.bnn.predictive import (
    Predictive,
    classification_metrics,
    expected_calibration_error,
    mutual_information,
    predict,
    predictive_entropy,
    reliability,
)

__all__ = [
    "ESTIMATORS",
    "LIKELIHOODS",
    "BayesConv2d",
    "BayesLinear",
    "BayesianLayer",
    "ELBOLoss",
    "GaussianPrior",
    "NoiseKey",
    "Predictive",
    "PredictiveLoss",
    "bayesian_layers",
    "classification_metrics",
    "expected_calibration_error",
    "gaussian_kl",
    "kl_divergence",
    "log_likelihood",
    "mutual_information",
    "nll_sum",
    "predict",
    "predictive_entropy",
    "reliability",
    "to_bayesian",
    "weight_sample",
]

"""hai-scale: scalable and backprop-free learning.

Bayesian neural networks (:mod:`hai.scale.bnn`) trained with sampling parallelism and its hybrid
with data parallelism (:mod:`hai.scale.parallel`): the Monte-Carlo weight samples of the ELBO
are spread over processes, exact by design (the noise of sample i depends only on the seed, the
step and i).

Multi-tangent forward gradients (:mod:`hai.scale.forward_grad`): gradient estimates from
forward-mode directional derivatives along random tangents, with no backward pass, as a
drop-in for ``loss.backward()`` in any torch training loop.

>>> import torch
>>> from torch import nn
>>> from hai.scale import ForwardGradient
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> fg = ForwardGradient(model, nn.CrossEntropyLoss(), tangents=4, seed=0)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> opt.zero_grad(); loss = fg(torch.randn(16, 4), torch.randint(0, 3, (16,))); opt.step()
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hai-scale")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from hai.scale.augment import AUGMENT_PER, Augmentation, augmentation_generator
from hai.scale.bnn import (
    ESTIMATORS,
    LIKELIHOODS,
    BayesConv2d,
    BayesianLayer,
    BayesLinear,
    ELBOLoss,
    GaussianPrior,
    Predictive,
    PredictiveLoss,
    bayesian_layers,
    classification_metrics,
    expected_calibration_error,
    gaussian_predictive,
    kl_divergence,
    mutual_information,
    predict,
    predictive_entropy,
    regression_metrics,
    reliability,
    to_bayesian,
    weight_sample,
)
from hai.scale.data import (
    DATASETS,
    ClassificationData,
    RegressionData,
    digits_classification,
    from_datasets,
    load_classification,
    load_dataset,
    synthetic_classification,
    synthetic_regression,
)
from hai.scale.forward_grad import (
    AGGREGATIONS,
    DISTRIBUTIONS,
    SCOPES,
    DirectionalDerivatives,
    EpochRecord,
    ForwardGradient,
    ForwardGradientClassifier,
    ForwardGradientEstimate,
    QualityResult,
    QualityRow,
    aggregate,
    approximation_quality,
    chi_mean,
    cosine_similarity,
    directional_derivatives,
    expected_squared_norm,
    flatten_tangents,
    forward_gradient,
    norm_ratio,
    project,
    sample_tangent_matrix,
    sample_tangents,
    scaling_correction,
    split_tangents,
    trainable_parameters,
    true_gradient,
)
from hai.scale.models import mlp, small_cnn
from hai.scale.parallel import (
    MODES,
    BNNConfig,
    BNNEpoch,
    BNNResult,
    SamplingParallel,
    Workload,
    launch,
    local_workload,
    train_bnn,
    workload,
    workloads,
)

__all__ = [
    "AGGREGATIONS",
    "AUGMENT_PER",
    "DATASETS",
    "DISTRIBUTIONS",
    "ESTIMATORS",
    "LIKELIHOODS",
    "MODES",
    "SCOPES",
    "Augmentation",
    "BNNConfig",
    "BNNEpoch",
    "BNNResult",
    "BayesConv2d",
    "BayesLinear",
    "BayesianLayer",
    "ClassificationData",
    "DirectionalDerivatives",
    "ELBOLoss",
    "EpochRecord",
    "ForwardGradient",
    "ForwardGradientClassifier",
    "ForwardGradientEstimate",
    "GaussianPrior",
    "Predictive",
    "PredictiveLoss",
    "QualityResult",
    "QualityRow",
    "RegressionData",
    "SamplingParallel",
    "Workload",
    "__version__",
    "aggregate",
    "approximation_quality",
    "augmentation_generator",
    "bayesian_layers",
    "chi_mean",
    "classification_metrics",
    "cosine_similarity",
    "digits_classification",
    "directional_derivatives",
    "expected_calibration_error",
    "expected_squared_norm",
    "flatten_tangents",
    "forward_gradient",
    "from_datasets",
    "gaussian_predictive",
    "kl_divergence",
    "launch",
    "load_classification",
    "load_dataset",
    "local_workload",
    "mlp",
    "mutual_information",
    "norm_ratio",
    "predict",
    "predictive_entropy",
    "project",
    "regression_metrics",
    "reliability",
    "sample_tangent_matrix",
    "sample_tangents",
    "scaling_correction",
    "small_cnn",
    "split_tangents",
    "synthetic_classification",
    "synthetic_regression",
    "to_bayesian",
    "train_bnn",
    "trainable_parameters",
    "true_gradient",
    "weight_sample",
    "workload",
    "workloads",
]

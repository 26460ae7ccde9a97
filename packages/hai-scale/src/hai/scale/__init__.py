"""hai-scale: scalable and backprop-free learning.

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

from hai.scale.data import (
    DATASETS,
    ClassificationData,
    digits_classification,
    load_classification,
    synthetic_classification,
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

__all__ = [
    "AGGREGATIONS",
    "DATASETS",
    "DISTRIBUTIONS",
    "SCOPES",
    "ClassificationData",
    "DirectionalDerivatives",
    "EpochRecord",
    "ForwardGradient",
    "ForwardGradientClassifier",
    "ForwardGradientEstimate",
    "QualityResult",
    "QualityRow",
    "__version__",
    "aggregate",
    "approximation_quality",
    "chi_mean",
    "cosine_similarity",
    "digits_classification",
    "directional_derivatives",
    "expected_squared_norm",
    "flatten_tangents",
    "forward_gradient",
    "load_classification",
    "mlp",
    "norm_ratio",
    "project",
    "sample_tangent_matrix",
    "sample_tangents",
    "scaling_correction",
    "small_cnn",
    "split_tangents",
    "synthetic_classification",
    "trainable_parameters",
    "true_gradient",
]

"""Multi-tangent forward gradients: training without a backward pass.

A forward gradient estimates ∇f from directional derivatives ∇f·vᵢ along random tangents vᵢ,
computed by forward-mode automatic differentiation (Baydin et al. 2022, "Gradients without
Backpropagation"). With k tangents, their orthogonal projection P∇f onto span(v₁…v_k) is a
better estimate than their mean (Flügel et al. 2025, "Beyond Backpropagation: Optimization
with Multi-Tangent Forward Gradients", arXiv 2410.17764; code ``Helmholtz-AI-Energy/frog``).

>>> import torch
>>> from torch import nn
>>> from hai.scale.forward_grad import ForwardGradient
>>> model = nn.Linear(4, 2)
>>> fg = ForwardGradient(model, nn.CrossEntropyLoss(), tangents=4, aggregation="projection", seed=0)
>>> loss = fg(torch.randn(8, 4), torch.randint(0, 2, (8,)))    # fills model.weight.grad, no backward()
>>> model.weight.grad.shape
torch.Size([2, 4])
"""

from hai.scale.forward_grad.aggregation import (
    AGGREGATIONS,
    aggregate,
    chi_mean,
    project,
    scaling_correction,
)
from hai.scale.forward_grad.directional import (
    DirectionalDerivatives,
    directional_derivatives,
    trainable_parameters,
)
from hai.scale.forward_grad.estimator import ForwardGradient, ForwardGradientEstimate, forward_gradient
from hai.scale.forward_grad.quality import (
    QualityResult,
    QualityRow,
    approximation_quality,
    cosine_similarity,
    norm_ratio,
    true_gradient,
)
from hai.scale.forward_grad.tangents import (
    DISTRIBUTIONS,
    SCOPES,
    expected_squared_norm,
    flatten_tangents,
    sample_tangent_matrix,
    sample_tangents,
    split_tangents,
)
from hai.scale.forward_grad.training import EpochRecord, ForwardGradientClassifier

__all__ = [
    "AGGREGATIONS",
    "DISTRIBUTIONS",
    "SCOPES",
    "DirectionalDerivatives",
    "EpochRecord",
    "ForwardGradient",
    "ForwardGradientClassifier",
    "ForwardGradientEstimate",
    "QualityResult",
    "QualityRow",
    "aggregate",
    "approximation_quality",
    "chi_mean",
    "cosine_similarity",
    "directional_derivatives",
    "expected_squared_norm",
    "flatten_tangents",
    "forward_gradient",
    "norm_ratio",
    "project",
    "sample_tangent_matrix",
    "sample_tangents",
    "scaling_correction",
    "split_tangents",
    "trainable_parameters",
    "true_gradient",
]

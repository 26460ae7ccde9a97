"""Combining k directional derivatives into one gradient estimate.

With tangents v₁…v_k (the rows of V, shape k×n) and directional derivatives d = V∇f:

``"mean"``
    (1/k) Σᵢ dᵢ vᵢ, the average of the single-tangent forward gradients (Baydin et al. 2022);
    unbiased when E[v vᵀ] = I.
``"sum"``
    Σᵢ dᵢ vᵢ.
``"projection"``
    the orthogonal projection of ∇f onto span(v₁…v_k), P∇f = Vᵀ(VVᵀ)⁻¹d (Flügel et al.,
    arXiv 2410.17764). It needs only d, never ∇f itself. It is computed from a thin QR
    decomposition Vᵀ = QR as Q R⁻ᵀ d (one triangular solve, no explicit inverse); when R
    shows that the tangents are (numerically) linearly dependent, an SVD with rank truncation
    takes over, which still gives the projection onto their span. If k > n, only the first n
    tangents are used (k ≥ n independent tangents span everything, so the result is ∇f).

The scaling corrections published with frog (``forward_gradient/aggregation.py``) rescale the
estimate so that its expected length matches |∇f|:

* projection: multiply by 1 / (E[χ_k] / E[χ_n]) (1 when k ≥ n), for isotropic tangents;
* mean: multiply by 1 / (E|v|² · √((n+k)/(1+k)) / n); for k = 1 frog uses the exact
  E|(∇f·v)v| factor √(2/(πn)) instead of √((n+1)/2)/n, and so do we;
* sum: the mean's factor divided by k.

Why hand-written: no library offers forward-gradient aggregation; the frog code inverts the
Gram matrix explicitly, which loses accuracy for nearly dependent tangents.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from hai.shared import InputError

Aggregation = Literal["projection", "mean", "sum"]
AGGREGATIONS: tuple[str, ...] = ("projection", "mean", "sum")


def check_aggregation(aggregation: str) -> str:
    """Return ``aggregation`` if it is known, else raise InputError naming the choices."""
    if aggregation not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {aggregation!r}", hint=f"use one of {', '.join(AGGREGATIONS)}")
    return aggregation


def chi_mean(k: int) -> float:
    """E[χ_k] = √2 Γ((k+1)/2) / Γ(k/2), the expected length of a k-dimensional standard normal vector.

    >>> round(chi_mean(1), 6), round(chi_mean(2), 6)
    (0.797885, 1.253314)
    """
    if k < 1:
        raise InputError(f"the chi distribution needs k ≥ 1, got {k}")
    return math.sqrt(2.0) * math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2))


def scaling_correction(
    aggregation: Aggregation | str, k: int, n: int, expected_sq_norm: float | None = None
) -> float:
    """The factor that frog's scaling correction multiplies the estimate with.

    ``expected_sq_norm`` is E|v|² of one tangent (see ``expected_squared_norm``); it matters
    for ``"mean"`` and ``"sum"`` only and defaults to n (normal or Rademacher tangents).

    >>> scaling_correction("projection", 30, 20)
    1.0
    >>> round(scaling_correction("mean", 4, 100, expected_sq_norm=100.0), 6) == round(1 / (104 / 5) ** 0.5, 6)
    True
    """
    check_aggregation(str(aggregation))
    if k < 1 or n < 1:
        raise InputError(f"k and n must be at least 1, got k={k}, n={n}")
    if aggregation == "projection":
        return 1.0 if k >= n else chi_mean(n) / chi_mean(k)
    sq = float(n) if expected_sq_norm is None else float(expected_sq_norm)
    factor = math.sqrt(2.0 / (math.pi * n)) if k == 1 else math.sqrt((n + k) / (1 + k)) / n
    mean_factor = 1.0 / (sq * factor)
    return mean_factor if aggregation == "mean" else mean_factor / k


def project(tangents: torch.Tensor, derivatives: torch.Tensor, *, rcond: float | None = None) -> torch.Tensor:
    """The orthogonal projection of ∇f onto the span of the rows of ``tangents``, from d = V∇f only.

    ``tangents`` is (k, n), ``derivatives`` is (k,). Rows beyond the n-th are ignored. Nearly
    dependent rows (relative singular value below ``rcond``, default k·eps) are dropped.

    >>> v = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    >>> grad = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
    >>> project(v, v @ grad).tolist()
    [3.0, 4.0, 0.0]
    """
    if tangents.dim() != 2 or derivatives.shape != tangents.shape[:1]:
        raise InputError(
            f"tangents must be (k, n) and derivatives (k,), got {tuple(tangents.shape)} "
            f"and {tuple(derivatives.shape)}"
        )
    k, n = tangents.shape
    if k > n:
        tangents, derivatives = tangents[:n], derivatives[:n]
        k = n
    eps = torch.finfo(tangents.dtype).eps
    tol = (k * eps) if rcond is None else rcond
    basis = tangents.T  # n × k
    q, r = torch.linalg.qr(basis)  # q: n × k, r: k × k upper triangular
    diag = torch.diagonal(r).abs()
    if diag.numel() and bool(diag.min() > tol * diag.max()):
        # Vᵀ = QR ⇒ Vᵀ(VVᵀ)⁻¹d = QR(RᵀR)⁻¹d = Q R⁻ᵀ d
        coeff = torch.linalg.solve_triangular(r.T, derivatives.unsqueeze(1), upper=False)
        return (q @ coeff).squeeze(1)
    # Rank-deficient tangents: Vᵀ = U S Wᵀ ⇒ projection = U_r S_r⁻¹ W_rᵀ d over the kept singular values.
    u, s, wh = torch.linalg.svd(basis, full_matrices=False)
    keep = s > tol * s.max() if s.numel() else s > 0
    if not bool(keep.any()):
        return torch.zeros(n, dtype=tangents.dtype, device=tangents.device)
    coeff = (wh[keep] @ derivatives) / s[keep]
    return u[:, keep] @ coeff


def aggregate(
    tangents: torch.Tensor,
    derivatives: torch.Tensor,
    aggregation: Aggregation | str = "projection",
    *,
    scale: bool = False,
    expected_sq_norm: float | None = None,
) -> torch.Tensor:
    """Combine tangents (k, n) and directional derivatives (k,) into one gradient estimate (n,).

    ``scale=True`` applies the published scaling correction (see :func:`scaling_correction`).

    >>> v = torch.eye(3, dtype=torch.float64)
    >>> grad = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    >>> aggregate(v, v @ grad, "projection").tolist(), aggregate(v, v @ grad, "mean").tolist()
    ([1.0, -2.0, 0.5], [0.3333333333333333, -0.6666666666666666, 0.16666666666666666])
    """
    check_aggregation(str(aggregation))
    if tangents.dim() != 2 or derivatives.shape != tangents.shape[:1]:
        raise InputError(
            f"tangents must be (k, n) and derivatives (k,), got {tuple(tangents.shape)} "
            f"and {tuple(derivatives.shape)}"
        )
    k, n = tangents.shape
    derivatives = derivatives.to(tangents.dtype)
    if aggregation == "projection":
        estimate = project(tangents, derivatives)
    else:
        estimate = derivatives @ tangents
        if aggregation == "mean":
            estimate = estimate / k
    if scale:
        estimate = estimate * scaling_correction(aggregation, k, n, expected_sq_norm)
    return estimate

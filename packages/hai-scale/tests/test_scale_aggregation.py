"""Aggregations on plain linear algebra: projection identities, lstsq, rank deficiency, scaling factors."""

from __future__ import annotations

import math

import pytest
import torch

from hai.scale.forward_grad import aggregate, chi_mean, project, scaling_correction
from hai.shared import InputError

F64 = torch.float64


def problem(k: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, n, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


@pytest.mark.parametrize("k", [1, 3, 10, 29])
def test_projection_residual_is_orthogonal_to_every_tangent(k: int) -> None:
    v, grad = problem(k, 30)
    p = aggregate(v, v @ grad, "projection")
    residual = grad - p
    assert float((v @ residual).abs().max()) < 1e-12 * float(grad.norm()) * 30


@pytest.mark.parametrize("k", [1, 5, 20])
def test_projection_is_idempotent_and_equals_lstsq(k: int) -> None:
    v, grad = problem(k, 40, seed=k)
    p = aggregate(v, v @ grad, "projection")
    twice = aggregate(v, v @ p, "projection")
    assert torch.allclose(twice, p, rtol=0, atol=1e-13)
    coeff = torch.linalg.lstsq(v.T, grad.unsqueeze(1)).solution  # min |Vᵀc - ∇f|
    assert torch.allclose(p, (v.T @ coeff).squeeze(1), rtol=0, atol=1e-12)
    # and it is the closest point of the span: shorter than ∇f, longer than any single tangent's part
    assert float(p.norm()) <= float(grad.norm())


def test_projection_with_n_independent_tangents_is_the_gradient() -> None:
    v, grad = problem(25, 25, seed=3)
    assert torch.allclose(aggregate(v, v @ grad, "projection"), grad, rtol=0, atol=1e-10)


def test_projection_with_more_tangents_than_dimensions_keeps_the_first_n() -> None:
    v, grad = problem(12, 8, seed=4)
    full = aggregate(v, v @ grad, "projection")
    assert torch.allclose(full, grad, atol=1e-10)
    # the rows beyond n are ignored: changing them (even to garbage) changes nothing
    d = v @ grad
    d[8:] = 1e6
    assert torch.allclose(aggregate(v, d, "projection"), full, rtol=0, atol=0)


def test_projection_of_dependent_tangents_is_the_projection_onto_their_span() -> None:
    v, grad = problem(4, 10, seed=5)
    v = torch.cat([v, 2.0 * v[:1], v[1:2] - v[2:3]])  # 6 tangents spanning 4 dimensions
    p = project(v, v @ grad)
    reference = v.T @ torch.linalg.pinv(v.T) @ grad
    assert torch.allclose(p, reference, rtol=0, atol=1e-10)
    assert float((v @ (grad - p)).abs().max()) < 1e-10


def test_projection_onto_zero_tangents_is_zero() -> None:
    v = torch.zeros(2, 5, dtype=F64)
    assert torch.equal(project(v, torch.zeros(2, dtype=F64)), torch.zeros(5, dtype=F64))


def test_mean_and_sum_are_averages_of_single_tangent_forward_gradients() -> None:
    v, grad = problem(6, 9, seed=6)
    d = v @ grad
    singles = torch.stack([d[i] * v[i] for i in range(6)])
    assert torch.allclose(aggregate(v, d, "mean"), singles.mean(dim=0), atol=1e-14)
    assert torch.allclose(aggregate(v, d, "sum"), singles.sum(dim=0), atol=1e-14)


def test_with_orthonormal_tangents_mean_is_projection_over_k() -> None:
    q, _ = torch.linalg.qr(torch.randn(20, 5, dtype=F64, generator=torch.Generator().manual_seed(7)))
    v = q.T
    grad = torch.randn(20, dtype=F64, generator=torch.Generator().manual_seed(8))
    d = v @ grad
    assert torch.allclose(aggregate(v, d, "mean") * 5, aggregate(v, d, "projection"), atol=1e-13)


def test_chi_mean_closed_forms() -> None:
    assert chi_mean(1) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-14)
    assert chi_mean(2) == pytest.approx(math.sqrt(math.pi / 2), rel=1e-14)
    assert chi_mean(3) == pytest.approx(2 * math.sqrt(2 / math.pi), rel=1e-14)
    # Monte-Carlo: mean length of 5-dimensional standard normal vectors
    z = torch.randn(200_000, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    assert float(z.norm(dim=1).mean()) == pytest.approx(chi_mean(5), rel=3e-3)
    # large k stays finite (no overflowing Γ) and tends to √(k - 1/2)
    assert chi_mean(100_000) == pytest.approx(math.sqrt(100_000 - 0.5), rel=1e-6)


def test_scaling_correction_factors() -> None:
    n = 100
    assert scaling_correction("projection", 4, n) == pytest.approx(chi_mean(n) / chi_mean(4))
    assert scaling_correction("projection", n, n) == 1.0
    assert scaling_correction("projection", 2 * n, n) == 1.0
    assert scaling_correction("mean", 4, n) == pytest.approx(1 / (n * math.sqrt((n + 4) / 5) / n))
    assert scaling_correction("mean", 4, n, expected_sq_norm=1.0) == pytest.approx(
        1 / (math.sqrt((n + 4) / 5) / n)
    )
    assert scaling_correction("mean", 1, n) == pytest.approx(1 / (n * math.sqrt(2 / (math.pi * n))))
    assert scaling_correction("sum", 4, n) == pytest.approx(scaling_correction("mean", 4, n) / 4)


def test_scale_option_multiplies_by_the_factor() -> None:
    v, grad = problem(3, 50, seed=9)
    d = v @ grad
    for name in ("projection", "mean", "sum"):
        scaled = aggregate(v, d, name, scale=True, expected_sq_norm=50.0)
        assert torch.allclose(scaled, aggregate(v, d, name) * scaling_correction(name, 3, 50, 50.0))


def test_bad_inputs() -> None:
    v, grad = problem(3, 5)
    with pytest.raises(InputError, match="aggregation"):
        aggregate(v, v @ grad, "median")
    with pytest.raises(InputError, match=r"\(k, n\)"):
        aggregate(v, grad, "mean")
    with pytest.raises(InputError):
        scaling_correction("mean", 0, 5)

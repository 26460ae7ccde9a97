"""Tangent samplers: shapes, structure, moments and seeding."""

from __future__ import annotations

import math

import pytest
import torch

from hai.scale.forward_grad import (
    expected_squared_norm,
    flatten_tangents,
    sample_tangent_matrix,
    sample_tangents,
    split_tangents,
)
from hai.shared import InputError

SHAPES = [(4, 3), (4,), (2, 2, 3)]  # 12 + 4 + 12 = 28 entries in 3 tensors
N = 28


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("distribution", ["normal", "rademacher", "orthonormal", "basis"])
@pytest.mark.parametrize("scope", ["global", "per_tensor"])
def test_shapes_dtype_and_seeding(distribution: str, scope: str) -> None:
    a = sample_tangents(
        SHAPES, 5, distribution=distribution, scope=scope, generator=gen(1), dtype=torch.float64
    )
    b = sample_tangents(
        SHAPES, 5, distribution=distribution, scope=scope, generator=gen(1), dtype=torch.float64
    )
    c = sample_tangents(
        SHAPES, 5, distribution=distribution, scope=scope, generator=gen(2), dtype=torch.float64
    )
    assert [tuple(t.shape) for t in a] == [(5, *s) for s in SHAPES]
    assert all(t.dtype == torch.float64 for t in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_rademacher_entries_are_plus_minus_one() -> None:
    v = flatten_tangents(sample_tangents(SHAPES, 50, distribution="rademacher", generator=gen()))
    assert set(v.unique().tolist()) == {-1.0, 1.0}


def test_normal_moments() -> None:
    v = flatten_tangents(sample_tangents(SHAPES, 4000, generator=gen(), dtype=torch.float64))
    # 112,000 i.i.d. N(0,1) entries: mean has standard error 0.003, variance 0.0042
    assert abs(float(v.mean())) < 0.015
    assert abs(float(v.var()) - 1.0) < 0.02
    # E[v vᵀ] = I: the empirical second-moment matrix is close to the identity
    second = v.T @ v / v.shape[0]
    assert float((second - torch.eye(N, dtype=torch.float64)).abs().max()) < 0.1


def test_orthonormal_global_rows_are_orthonormal() -> None:
    v = flatten_tangents(
        sample_tangents(SHAPES, 10, distribution="orthonormal", generator=gen(), dtype=torch.float64)
    )
    assert torch.allclose(v @ v.T, torch.eye(10, dtype=torch.float64), atol=1e-12)


def test_orthonormal_with_more_tangents_than_dimensions_uses_orthonormal_blocks() -> None:
    v = flatten_tangents(
        sample_tangents([(3,)], 7, distribution="orthonormal", generator=gen(), dtype=torch.float64)
    )
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(v[:3] @ v[:3].T, eye, atol=1e-12)
    assert torch.allclose(v[3:6] @ v[3:6].T, eye, atol=1e-12)
    assert torch.allclose(v[6].norm(), torch.tensor(1.0, dtype=torch.float64))


def test_orthonormal_per_tensor_blocks_are_orthonormal_and_tangents_orthogonal() -> None:
    blocks = sample_tangents(
        SHAPES, 4, distribution="orthonormal", scope="per_tensor", generator=gen(), dtype=torch.float64
    )
    for block in blocks:
        flat = block.reshape(4, -1)
        assert torch.allclose(flat @ flat.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    v = flatten_tangents(blocks)
    assert torch.allclose(v @ v.T, len(SHAPES) * torch.eye(4, dtype=torch.float64), atol=1e-12)


def test_basis_global_gives_distinct_unit_vectors_and_whole_basis_at_k_equal_n() -> None:
    v = flatten_tangents(sample_tangents(SHAPES, N, distribution="basis", generator=gen()))
    assert torch.equal(v.sum(dim=1), torch.ones(N))
    assert torch.equal(v.sum(dim=0), torch.ones(N))  # every coordinate exactly once: a permutation
    assert torch.equal(v @ v.T, torch.eye(N))


def test_basis_per_tensor_has_one_unit_entry_in_each_tensor() -> None:
    blocks = sample_tangents(SHAPES, 4, distribution="basis", scope="per_tensor", generator=gen())
    for block in blocks:
        flat = block.reshape(4, -1)
        assert torch.equal(flat.sum(dim=1), torch.ones(4))
        assert int((flat.sum(dim=0) > 1).sum()) == 0  # distinct coordinates within a tensor


@pytest.mark.parametrize(
    ("distribution", "scope"),
    [
        ("normal", "global"),
        ("rademacher", "per_tensor"),
        ("orthonormal", "global"),
        ("orthonormal", "per_tensor"),
        ("basis", "global"),
        ("basis", "per_tensor"),
    ],
)
def test_expected_squared_norm_matches_samples(distribution: str, scope: str) -> None:
    v = flatten_tangents(
        sample_tangents(
            SHAPES, 2000, distribution=distribution, scope=scope, generator=gen(), dtype=torch.float64
        )
    )
    empirical = float((v**2).sum(dim=1).mean())
    expected = expected_squared_norm([math.prod(s) for s in SHAPES], distribution, scope)
    assert empirical == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "4"])
def test_bad_tangent_count_is_an_input_error(k: object) -> None:
    with pytest.raises(InputError, match="number of tangents"):
        sample_tangents(SHAPES, k)  # type: ignore[arg-type]


def test_unknown_distribution_and_scope_are_input_errors() -> None:
    with pytest.raises(InputError, match="distribution"):
        sample_tangents(SHAPES, 2, distribution="uniform")
    with pytest.raises(InputError, match="scope"):
        sample_tangents(SHAPES, 2, scope="layer")
    with pytest.raises(InputError, match="empty"):
        sample_tangents([], 2)


@pytest.mark.parametrize("scope", ["global", "per_tensor"])
def test_tangent_matrix_and_its_views_agree(scope: str) -> None:
    matrix = sample_tangent_matrix(SHAPES, 3, distribution="orthonormal", scope=scope, generator=gen(5))
    parts = sample_tangents(SHAPES, 3, distribution="orthonormal", scope=scope, generator=gen(5))
    assert torch.equal(flatten_tangents(parts), matrix)
    views = split_tangents(matrix, SHAPES)
    assert all(v.data_ptr() >= matrix.data_ptr() for v in views)  # views, not copies
    views[0].zero_()
    assert float(matrix[:, :12].abs().sum()) == 0.0
    with pytest.raises(InputError, match="must be"):
        split_tangents(matrix[:, :5], SHAPES)

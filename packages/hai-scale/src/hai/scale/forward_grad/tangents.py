"""Random tangent directions for forward gradients.

A forward gradient needs k directions v₁…v_k in parameter space. They are drawn here as one
tensor per parameter, shaped ``(k, *param.shape)``, so that they can be fed straight into a
vectorised forward-mode pass. Four distributions are offered, following the samplers of
Flügel et al. (``Helmholtz-AI-Energy/frog``, ``forward_gradient/tangent_sampling.py``):

``"normal"``
    i.i.d. N(0, 1) entries; E[v vᵀ] = I, so the single-tangent forward gradient is unbiased.
``"rademacher"``
    i.i.d. ±1 entries; also E[v vᵀ] = I.
``"orthonormal"``
    normal draws orthonormalised by a QR decomposition: the k tangents are orthonormal
    (blocks of at most n when k > n, each block orthonormal and independent of the others).
``"basis"``
    standard basis vectors eᵢ at coordinates drawn without replacement (k = n gives the whole
    basis in a random order, so the projection is then the exact gradient).

``scope="global"`` draws over the whole flattened parameter vector. ``scope="per_tensor"``
draws each parameter tensor's block on its own: for ``"orthonormal"`` every block is
orthonormalised separately and for ``"basis"`` every tangent has one unit entry in *each*
tensor, so a tangent's squared length is the number of tensors. For ``"normal"`` and
``"rademacher"`` the two scopes give the same distribution.

Why hand-written: torch has the random primitives but no sampler of structured tangent sets
over a module's parameters, and the frog code is a research script, not a library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from hai.shared import InputError

Distribution = Literal["normal", "rademacher", "orthonormal", "basis"]
Scope = Literal["global", "per_tensor"]

DISTRIBUTIONS: tuple[str, ...] = ("normal", "rademacher", "orthonormal", "basis")
SCOPES: tuple[str, ...] = ("global", "per_tensor")


def check_tangent_count(k: object) -> int:
    """Return ``k`` as an int if it is a valid tangent count (an integer ≥ 1), else raise InputError."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(
            f"the number of tangents must be an integer of at least 1, got {k!r}",
            hint="use tangents=1 for the plain forward gradient, or more (e.g. 4, 16) for a better estimate",
        )
    return k


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}", hint=f"use one of {', '.join(allowed)}")
    return value


def _sample_flat(
    k: int,
    n: int,
    distribution: str,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """k tangents of dimension n as a (k, n) tensor."""
    if distribution == "normal":
        return torch.randn(k, n, generator=generator, dtype=dtype, device=device)
    if distribution == "rademacher":
        bits = torch.randint(0, 2, (k, n), generator=generator, device=device)
        return bits.to(dtype) * 2 - 1
    if distribution == "orthonormal":
        blocks = []
        for start in range(0, k, n):
            size = min(n, k - start)
            gaussian = torch.randn(n, size, generator=generator, dtype=dtype, device=device)
            q, r = torch.linalg.qr(gaussian)  # q: (n, size) with orthonormal columns
            # Fix the signs so that the result is Haar-distributed (R with a positive diagonal).
            signs = torch.sign(torch.diagonal(r))
            signs[signs == 0] = 1
            blocks.append((q * signs).T)
        return torch.cat(blocks)
    # basis: distinct coordinates within each block of n tangents
    rows = []
    for start in range(0, k, n):
        size = min(n, k - start)
        rows.append(torch.randperm(n, generator=generator, device=device)[:size])
    index = torch.cat(rows)
    out = torch.zeros(k, n, dtype=dtype, device=device)
    out[torch.arange(k, device=device), index] = 1
    return out


def sample_tangent_matrix(
    shapes: Sequence[torch.Size | Sequence[int]],
    k: int,
    *,
    distribution: Distribution | str = "normal",
    scope: Scope | str = "global",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw ``k`` tangents over tensors of the given ``shapes`` as one (k, n) matrix (rows are tangents).

    Columns follow the tensors in order, each tensor flattened; :func:`split_tangents` turns the
    matrix into per-tensor views. See :func:`sample_tangents` for the options.

    >>> v = sample_tangent_matrix([(2, 3), (2,)], 3, generator=torch.Generator().manual_seed(0))
    >>> tuple(v.shape)
    (3, 8)
    """
    k = check_tangent_count(k)
    _check_choice(str(distribution), DISTRIBUTIONS, "tangent distribution")
    _check_choice(str(scope), SCOPES, "tangent scope")
    sizes = [tuple(int(d) for d in shape) for shape in shapes]
    if not sizes:
        raise InputError("cannot sample tangents for an empty list of parameter shapes")
    numels = [math.prod(s) for s in sizes]
    dev = torch.device(device)
    if scope == "global" or distribution in ("normal", "rademacher"):
        return _sample_flat(k, sum(numels), str(distribution), generator, dtype, dev)
    flat = torch.empty(k, sum(numels), dtype=dtype, device=dev)
    start = 0
    for m in numels:
        flat[:, start : start + m] = _sample_flat(k, m, str(distribution), generator, dtype, dev)
        start += m
    return flat


def split_tangents(matrix: torch.Tensor, shapes: Sequence[torch.Size | Sequence[int]]) -> list[torch.Tensor]:
    """Views of a (k, n) tangent matrix as one ``(k, *shape)`` tensor per shape (no copy).

    >>> parts = split_tangents(torch.arange(10.0).reshape(2, 5), [(2, 2), (1,)])
    >>> [tuple(p.shape) for p in parts], parts[1].tolist()
    ([(2, 2, 2), (2, 1)], [[4.0], [9.0]])
    """
    sizes = [tuple(int(d) for d in shape) for shape in shapes]
    numels = [math.prod(s) for s in sizes]
    if matrix.dim() != 2 or matrix.shape[1] != sum(numels):
        raise InputError(
            f"a tangent matrix for shapes with {sum(numels)} entries must be (k, {sum(numels)}), "
            f"got {tuple(matrix.shape)}"
        )
    k = matrix.shape[0]
    blocks = torch.split(matrix, numels, dim=1)
    return [b.view(k, *s) for b, s in zip(blocks, sizes, strict=True)]


def sample_tangents(
    shapes: Sequence[torch.Size | Sequence[int]],
    k: int,
    *,
    distribution: Distribution | str = "normal",
    scope: Scope | str = "global",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Draw ``k`` tangents over tensors of the given ``shapes``; one ``(k, *shape)`` tensor per shape.

    Pass a seeded ``torch.Generator`` for reproducible draws (on the same device as ``device``).
    The tensors are views of one (k, n) matrix (:func:`sample_tangent_matrix`).

    >>> g = torch.Generator().manual_seed(0)
    >>> v = sample_tangents([(3, 2), (3,)], 4, distribution="orthonormal", generator=g)
    >>> [tuple(t.shape) for t in v]
    [(4, 3, 2), (4, 3)]
    >>> flat = flatten_tangents(v)
    >>> bool(torch.allclose(flat @ flat.T, torch.eye(4), atol=1e-6))
    True
    """
    matrix = sample_tangent_matrix(
        shapes, k, distribution=distribution, scope=scope, generator=generator, dtype=dtype, device=device
    )
    return split_tangents(matrix, shapes)


def flatten_tangents(tangents: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-parameter tangents ``(k, *shape)`` into one ``(k, n)`` matrix (rows are tangents)."""
    if not tangents:
        raise InputError("no tangents given")
    k = tangents[0].shape[0]
    return torch.cat([t.reshape(k, -1) for t in tangents], dim=1)


def expected_squared_norm(
    numels: Sequence[int], distribution: Distribution | str = "normal", scope: Scope | str = "global"
) -> float:
    """E|v|² of one tangent over tensors with ``numels`` entries (needed by the mean's scaling correction).

    >>> expected_squared_norm([6, 3], "normal"), expected_squared_norm([6, 3], "basis", "per_tensor")
    (9.0, 2.0)
    """
    _check_choice(str(distribution), DISTRIBUTIONS, "tangent distribution")
    _check_choice(str(scope), SCOPES, "tangent scope")
    if distribution in ("normal", "rademacher"):
        return float(sum(numels))
    return 1.0 if scope == "global" else float(len(numels))

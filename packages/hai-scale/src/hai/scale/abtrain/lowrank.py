"""Low-rank layers W ≈ A·B from the SVD of a trained weight, and conversion of whole models.

Follows AB-training's layers (Coquelin et al., arXiv 2405.01067; ``madonna``'s
``ABLowRankLayer``/``ABLinear``/``ABConv``): the weight reshaped to a matrix (out × in·kh·kw)
is factored as U S Vᵀ; with ``split_sigma`` (the default) A = U√S and B = √S Vᵀ, otherwise
A = U S and B = Vᵀ. The rank keeps the singular values s_i > ``cutoff``·s_0. In a distributed
run every rank must keep the same rank so that A and B have one shape everywhere:
:func:`agree_rank` takes the maximum over the process group, as the reference does.

Hand-written because no torch library offers SVD-initialised A·B layers that can be trained
one factor at a time and converted back; ``torch.linalg.svd`` does the numerics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from hai.shared import InputError

__all__ = [
    "ABConv2d",
    "ABLinear",
    "LowRankSummary",
    "agree_rank",
    "compression_ratio",
    "rank_for_cutoff",
    "svd_factors",
    "to_full_rank",
    "to_low_rank",
]


def _check_cutoff(cutoff: float) -> float:
    if not (isinstance(cutoff, int | float) and 0.0 < float(cutoff) < 1.0):
        raise InputError(f"the low-rank cut-off must be strictly between 0 and 1, got {cutoff!r}")
    return float(cutoff)


def rank_for_cutoff(singular_values: torch.Tensor, cutoff: float) -> int:
    """How many singular values exceed ``cutoff`` times the largest (at least 1).

    >>> rank_for_cutoff(torch.tensor([10.0, 5.0, 1.0, 0.5]), 0.1)
    2
    """
    cutoff = _check_cutoff(cutoff)
    s = singular_values.detach()
    if s.numel() == 0:
        raise InputError("a weight with no singular values cannot be factored")
    return max(1, int((s > cutoff * s[0]).sum().item()))


def agree_rank(rank: int, group: object | None = None) -> int:
    """The maximum of ``rank`` over the process group (``rank`` itself without torch.distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return rank
    value = torch.tensor([rank], dtype=torch.int64)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=group)
    return int(value.item())


def compression_ratio(rows: int, cols: int, rank: int) -> float:
    """Parameters of the factors over those of the full matrix: r(m+n)/(mn).

    >>> compression_ratio(100, 50, 5)
    0.15
    """
    return rank * (rows + cols) / (rows * cols)


def svd_factors(
    matrix: torch.Tensor, *, cutoff: float = 0.1, rank: int | None = None, split_sigma: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors ``(A, B)`` of a 2-D ``matrix`` with A @ B its best rank-r approximation.

    ``rank`` overrides the cut-off rule (it is clipped to the matrix's smallest side).
    """
    if matrix.ndim != 2:
        raise InputError(f"svd_factors needs a 2-D matrix, got shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all():
        raise InputError("the weight to factor has NaN or infinite entries")
    u, s, vh = torch.linalg.svd(matrix.detach(), full_matrices=False)
    r = rank_for_cutoff(s, cutoff) if rank is None else int(rank)
    if r < 1:
        raise InputError(f"the rank must be at least 1, got {rank!r}")
    r = min(r, s.numel())
    if split_sigma:
        root = s[:r].sqrt()
        return u[:, :r] * root, root[:, None] * vh[:r]
    return u[:, :r] * s[:r], vh[:r].clone()


class _ABLayer(nn.Module):
    """A factored layer: trainable ``A`` (out × r) and ``B`` (r × in·k), an optional bias."""

    A: nn.Parameter
    B: nn.Parameter
    bias: nn.Parameter | None

    def _set_factors(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.A = nn.Parameter(a.contiguous())
        self.B = nn.Parameter(b.contiguous())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    @property
    def rank(self) -> int:
        return int(self.A.shape[1])

    def weight_matrix(self) -> torch.Tensor:
        """A @ B, the full weight as a matrix."""
        return self.A @ self.B

    def set_trainable(self, factor: str) -> None:
        """Train only ``"A"``, only ``"B"``, or ``"both"`` (the bias trains in every case)."""
        if factor not in ("A", "B", "both"):
            raise InputError(f"factor must be 'A', 'B' or 'both', not {factor!r}")
        self.A.requires_grad_(factor in ("A", "both"))
        self.B.requires_grad_(factor in ("B", "both"))

    def refactor(self, *, cutoff: float = 0.1, rank: int | None = None, split_sigma: bool = True) -> int:
        """Re-decompose A @ B with the cut-off (or the given rank); return the new rank."""
        a, b = svd_factors(self.weight_matrix().detach(), cutoff=cutoff, rank=rank, split_sigma=split_sigma)
        self._set_factors(a, b, self.bias.detach() if self.bias is not None else None)
        return self.rank


class ABLinear(_ABLayer):
    """y = x Bᵀ Aᵀ + b, a linear layer in factored form.

    >>> full = nn.Linear(6, 4)
    >>> ab = ABLinear.from_linear(full, rank=4)
    >>> x = torch.randn(3, 6)
    >>> torch.allclose(ab(x), full(x), atol=1e-5)
    True
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.in_features = int(b.shape[1])
        self.out_features = int(a.shape[0])
        self._set_factors(a, b, bias)

    @classmethod
    def from_linear(
        cls, layer: nn.Linear, *, cutoff: float = 0.1, rank: int | None = None, split_sigma: bool = True
    ) -> ABLinear:
        a, b = svd_factors(layer.weight.detach(), cutoff=cutoff, rank=rank, split_sigma=split_sigma)
        return cls(a, b, None if layer.bias is None else layer.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.B), self.A, self.bias)

    def to_linear(self) -> nn.Linear:
        layer = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None).to(self.A)
        with torch.no_grad():
            layer.weight.copy_(self.weight_matrix())
            if self.bias is not None and layer.bias is not None:
                layer.bias.copy_(self.bias)
        return layer

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}"


class ABConv2d(_ABLayer):
    """A 2-D convolution as a rank-r convolution (B) followed by a 1×1 convolution (A).

    >>> full = nn.Conv2d(3, 8, 3, padding=1)
    >>> ab = ABConv2d.from_conv(full, rank=8)
    >>> x = torch.randn(2, 3, 5, 5)
    >>> torch.allclose(ab(x), full(x), atol=1e-5)
    True
    """

    def __init__(
        self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, template: nn.Conv2d
    ) -> None:
        super().__init__()
        if template.groups != 1:
            raise InputError("grouped convolutions are not factored (groups must be 1)")
        if not isinstance(template.padding, tuple):
            raise InputError(f"padding {template.padding!r} is not supported; give numbers")
        self.in_channels = template.in_channels
        self.out_channels = template.out_channels
        self.kernel_size = tuple(template.kernel_size)
        self.stride = tuple(template.stride)
        self.padding = tuple(template.padding)
        self.dilation = tuple(template.dilation)
        self.padding_mode = template.padding_mode
        if self.padding_mode != "zeros":
            raise InputError(f"padding_mode {self.padding_mode!r} is not supported (only 'zeros')")
        self._set_factors(a, b, bias)

    @classmethod
    def from_conv(
        cls, layer: nn.Conv2d, *, cutoff: float = 0.1, rank: int | None = None, split_sigma: bool = True
    ) -> ABConv2d:
        matrix = layer.weight.detach().reshape(layer.out_channels, -1)
        a, b = svd_factors(matrix, cutoff=cutoff, rank=rank, split_sigma=split_sigma)
        return cls(a, b, None if layer.bias is None else layer.bias.detach(), layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        b = self.B.reshape(self.rank, self.in_channels, kh, kw)
        hidden = F.conv2d(x, b, None, self.stride, self.padding, self.dilation)
        return F.conv2d(hidden, self.A[:, :, None, None], self.bias)

    def to_conv(self) -> nn.Conv2d:
        layer = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,  # type: ignore[arg-type]
            stride=self.stride,  # type: ignore[arg-type]
            padding=self.padding,  # type: ignore[arg-type]
            dilation=self.dilation,  # type: ignore[arg-type]
            bias=self.bias is not None,
        ).to(self.A)
        with torch.no_grad():
            layer.weight.copy_(self.weight_matrix().reshape_as(layer.weight))
            if self.bias is not None and layer.bias is not None:
                layer.bias.copy_(self.bias)
        return layer

    def extra_repr(self) -> str:
        return f"{self.in_channels}→{self.out_channels}, kernel={self.kernel_size}, rank={self.rank}"


@dataclass(frozen=True)
class LowRankSummary:
    """What :func:`to_low_rank` converted: per layer (name, rows, cols, rank), and the totals."""

    layers: tuple[tuple[str, int, int, int], ...]

    @property
    def full_parameters(self) -> int:
        return sum(m * n for _, m, n, _ in self.layers)

    @property
    def factored_parameters(self) -> int:
        return sum(r * (m + n) for _, m, n, r in self.layers)

    @property
    def compression_ratio(self) -> float:
        """Factored over full weight parameters of the converted layers (1.0 if none)."""
        return self.factored_parameters / self.full_parameters if self.layers else 1.0


def _matrix_shape(module: nn.Linear | nn.Conv2d) -> tuple[int, int]:
    shape = module.weight.shape
    return int(shape[0]), int(math.prod(shape[1:]))


def to_low_rank(
    model: nn.Module,
    *,
    cutoff: float = 0.1,
    split_sigma: bool = True,
    min_features: int = 2,
    skip: tuple[str, ...] = (),
    group: object | None = None,
) -> LowRankSummary:
    """Replace every ``nn.Linear`` and ``nn.Conv2d`` of ``model`` (in place) by its AB form.

    Layers whose smaller matrix side is below ``min_features`` and the modules named in
    ``skip`` stay full rank. Under torch.distributed the rank of each layer is agreed (max)
    over ``group``, so call it on every rank of the group with the same model.
    """
    _check_cutoff(cutoff)
    converted: list[tuple[str, int, int, int]] = []
    for name, module in list(model.named_modules()):
        if name in skip or not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            continue
        rows, cols = _matrix_shape(module)
        if min(rows, cols) < min_features:
            continue
        matrix = module.weight.detach().reshape(rows, cols)
        rank = agree_rank(rank_for_cutoff(torch.linalg.svdvals(matrix), cutoff), group)
        replacement: nn.Module
        if isinstance(module, nn.Linear):
            replacement = ABLinear.from_linear(module, rank=rank, split_sigma=split_sigma)
        else:
            replacement = ABConv2d.from_conv(module, rank=rank, split_sigma=split_sigma)
        _set_submodule(model, name, replacement)
        converted.append((name, rows, cols, min(rank, rows, cols)))
    return LowRankSummary(tuple(converted))


def to_full_rank(model: nn.Module) -> int:
    """Replace every AB layer of ``model`` (in place) by an ordinary layer with W = A @ B."""
    count = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, ABLinear):
            _set_submodule(model, name, module.to_linear())
            count += 1
        elif isinstance(module, ABConv2d):
            _set_submodule(model, name, module.to_conv())
            count += 1
    return count


def _set_submodule(model: nn.Module, name: str, replacement: nn.Module) -> None:
    if not name:
        raise InputError("the model itself is a single layer; wrap it in nn.Sequential to convert it")
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, replacement)

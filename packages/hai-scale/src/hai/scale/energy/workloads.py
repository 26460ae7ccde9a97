"""The workloads of the energy study, sized by options; nothing is downloaded.

* ``digits``: an MLP on scikit-learn's 8x8 digits (the small real case; accuracy).
* ``afno``: a small FourCastNet-style Adaptive Fourier Neural Operator (Guibas et al. 2022,
  "Adaptive Fourier Neural Operators"; Pathak et al. 2022, FourCastNet) on synthetic gridded
  fields: advected random waves, predict the next field from the current one (test MSE).
  Hand-written (about 40 lines) because no installed library ships an AFNO block.
* ``resnet``: ResNet-18 without pretrained weights (:func:`hai.scale.resnet.resnet18`:
  torchvision's where it imports, else the same architecture written out) on synthetic
  class-patterned images of ``image_size`` (accuracy).

* ``module:function``: the user's own training, ``function(options, seed)`` returning a
  :class:`Workload` (any model, data, loss and metric), imported on every rank from a module on
  the workers' Python path. It is named on the command line or in the sweep by the user, like
  ``torchrun -m``; nothing a file says is imported.

``build_workload(name, options, seed)`` returns a :class:`Workload`; the same seed gives the
same model and data on every rank.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hai.scale.energy.spec import is_user_workload
from hai.shared import InputError
from hai.shared.checks import positive_int

__all__ = ["AFNO2d", "Workload", "build_workload"]


@dataclass
class Workload:
    """Model, splits, loss and the test metric (its name and whether higher is better)."""

    name: str
    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metric_name: str
    metric: Callable[[torch.Tensor, torch.Tensor], float]


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean())


def _mse(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float(((pred - y) ** 2).mean())


class AFNO2d(nn.Module):
    """One AFNO mixing layer: FFT over the grid, a block-diagonal complex MLP on the kept
    modes, soft-shrinkage for sparsity, inverse FFT, plus the residual."""

    def __init__(
        self, channels: int, blocks: int = 4, keep_fraction: float = 1.0, shrink: float = 0.01
    ) -> None:
        super().__init__()
        if channels % blocks:
            raise InputError(f"AFNO channels ({channels}) must be divisible by blocks ({blocks})")
        self.blocks, self.block = blocks, channels // blocks
        self.keep_fraction, self.shrink = keep_fraction, shrink
        scale = 0.02
        self.w1 = nn.Parameter(scale * torch.randn(2, blocks, self.block, self.block))
        self.b1 = nn.Parameter(scale * torch.randn(2, blocks, self.block))
        self.w2 = nn.Parameter(scale * torch.randn(2, blocks, self.block, self.block))
        self.b2 = nn.Parameter(scale * torch.randn(2, blocks, self.block))

    @staticmethod
    def _complex_mul(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        real = torch.einsum("...bi,bio->...bo", x.real, w[0]) - torch.einsum("...bi,bio->...bo", x.imag, w[1])
        imag = torch.einsum("...bi,bio->...bo", x.real, w[1]) + torch.einsum("...bi,bio->...bo", x.imag, w[0])
        return torch.complex(real + b[0], imag + b[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, H, W, C)
        n, h, w, c = x.shape
        spectrum = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(
            n, h, w // 2 + 1, self.blocks, self.block
        )
        hidden = self._complex_mul(spectrum, self.w1, self.b1)
        hidden = torch.complex(torch.relu(hidden.real), torch.relu(hidden.imag))
        out = self._complex_mul(hidden, self.w2, self.b2)
        out = torch.complex(
            nn.functional.softshrink(out.real, self.shrink), nn.functional.softshrink(out.imag, self.shrink)
        )
        modes = max(1, math.ceil(self.keep_fraction * (w // 2 + 1)))
        out[:, :, modes:] = 0
        mixed = torch.fft.irfft2(out.reshape(n, h, w // 2 + 1, c), s=(h, w), dim=(1, 2), norm="ortho")
        return x + mixed


class AFNOBlock(nn.Module):
    """FourCastNet's block: norm, AFNO mixing (with its own skip), norm, MLP, residual."""

    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.mix = AFNO2d(channels, blocks)
        wide = 2 * channels
        self.mlp = nn.Sequential(nn.Linear(channels, wide), nn.GELU(), nn.Linear(wide, channels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.norm1(z)
        z = z + self.mix(y) - y  # AFNO2d returns its input plus the filtered field
        return z + self.mlp(self.norm2(z))


class AFNONet(nn.Module):
    """Patch-free small AFNO: lift 1 → C channels, ``depth`` AFNO blocks, project to 1."""

    def __init__(self, channels: int = 16, depth: int = 2, blocks: int = 4) -> None:
        super().__init__()
        self.lift = nn.Linear(1, channels)
        self.blocks = nn.Sequential(*(AFNOBlock(channels, blocks) for _ in range(depth)))
        self.project = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, H, W)
        return self.project(self.blocks(self.lift(x.unsqueeze(-1)))).squeeze(-1)


def _advected_fields(n: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of random plane waves, and the same waves moved one step along their velocity."""
    grid = torch.arange(size, dtype=torch.float32) / size
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    waves = 4
    kx = torch.randint(1, 4, (n, waves), generator=generator).float()
    ky = torch.randint(0, 4, (n, waves), generator=generator).float()
    phase = 2 * math.pi * torch.rand(n, waves, generator=generator)
    amp = torch.rand(n, waves, generator=generator)
    shift = 0.05

    def field(offset: float) -> torch.Tensor:
        arg = (
            2 * math.pi * (kx[..., None, None] * (xx - offset) + ky[..., None, None] * yy)
            + phase[..., None, None]
        )
        return (amp[..., None, None] * torch.sin(arg)).sum(dim=1)

    return field(0.0), field(shift)


def _user_workload(name: str, options: dict[str, Any], seed: int) -> Workload:
    module_name, _, function_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"workload {name!r}: module {module_name!r} cannot be imported ({exc})",
            hint="put it on PYTHONPATH (every rank imports it) or install it",
        ) from exc
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise InputError(f"workload {name!r}: {module_name} has no function {function_name!r}")
    workload = factory(options, seed)
    if not isinstance(workload, Workload):
        raise InputError(
            f"workload {name!r} returned {type(workload).__name__}, not a hai.scale.energy.Workload",
            hint="return Workload(name, model, x_train, y_train, x_test, y_test, loss, metric_name, metric)",
        )
    return workload


def build_workload(name: str, options: dict[str, Any] | None = None, seed: int = 0) -> Workload:
    """The workload ``name`` with its options (``hidden``, ``channels``, ``grid``, ``image_size``,
    ``samples``...); unknown options are refused by name."""
    options = dict(options or {})
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if is_user_workload(name):
        return _user_workload(name, options, seed)
    allowed = {
        "digits": {"hidden"},
        "afno": {"channels", "depth", "grid", "samples"},
        "resnet": {"image_size", "samples", "classes"},
    }
    if name not in allowed:
        raise InputError(f"unknown workload {name!r}", hint="one of " + ", ".join(allowed))
    unknown = sorted(set(options) - allowed[name])
    if unknown:
        raise InputError(
            f"unknown option(s) {unknown} for workload {name!r}", hint=f"options: {sorted(allowed[name])}"
        )
    if name == "digits":
        from hai.scale.data import digits_classification
        from hai.scale.models import mlp

        data = digits_classification(seed=seed)
        hidden = tuple(positive_int("hidden", h) for h in options.get("hidden", (128, 128)))
        return Workload(
            name, mlp(data.n_features, data.n_classes, hidden), data.x_train, data.y_train,
            data.x_test, data.y_test, nn.functional.cross_entropy, "accuracy", _accuracy,
        )  # fmt: skip
    if name == "afno":
        grid = positive_int("grid", options.get("grid", 16))
        samples = positive_int("samples", options.get("samples", 1024))
        x, y = _advected_fields(samples, grid, generator)
        cut = int(0.8 * samples)
        model = AFNONet(
            positive_int("channels", options.get("channels", 16)),
            positive_int("depth", options.get("depth", 2)),
        )
        return Workload(name, model, x[:cut], y[:cut], x[cut:], y[cut:], nn.functional.mse_loss, "mse", _mse)
    from hai.scale.resnet import resnet18, synthetic_images

    size = positive_int("image_size", options.get("image_size", 32))
    classes = positive_int("classes", options.get("classes", 10))
    samples = positive_int("samples", options.get("samples", 1024))
    images = synthetic_images(size, classes, samples, seed=seed)
    return Workload(
        name, resnet18(classes, (size, size)), images.x_train, images.y_train, images.x_test, images.y_test,
        nn.functional.cross_entropy, "accuracy", _accuracy,
    )  # fmt: skip

"""Stochastic augmentation of image batches: random shifts, rotations and additive noise.

An :class:`Augmentation` takes its randomness from an explicit ``torch.Generator`` and draws
the parameters for a *global* batch, then keeps the rows a process holds. So the augmented
example b of a step is the same whichever process computes it; what differs between weight
samples is the generator's key (see :func:`augmentation_generator`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hai.shared import InputError, RngStreams

AUGMENT_PER: tuple[str, ...] = ("sample", "step")


@dataclass(frozen=True)
class Augmentation:
    """Random shift (± ``max_shift`` pixels), rotation (± ``max_rotation`` degrees) and Gaussian noise.

    Inputs are (B, C, H, W) images, or flat rows (B, H·W) when ``image_shape`` is given. Rows
    without an image shape (tabular data) only get the noise.

    >>> aug = Augmentation(image_shape=(8, 8))
    >>> x = torch.randn(5, 64)
    >>> a = aug(x, torch.Generator().manual_seed(0))
    >>> b = aug(x[2:4], torch.Generator().manual_seed(0), rows=slice(2, 4), batch_size=5)
    >>> tuple(a.shape), bool(torch.allclose(a[2:4], b))
    ((5, 64), True)
    """

    image_shape: tuple[int, int] | None = None
    max_shift: float = 1.0
    max_rotation: float = 15.0
    noise_std: float = 0.1

    def __post_init__(self) -> None:
        if self.max_shift < 0 or self.max_rotation < 0 or self.noise_std < 0:
            raise InputError(f"augmentation strengths must be non-negative, got {self}")

    def __call__(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None,
        *,
        rows: slice | None = None,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        n = x.shape[0] if batch_size is None else int(batch_size)
        sel = rows if rows is not None else slice(0, n)
        if len(range(n)[sel]) != x.shape[0]:
            raise InputError(f"rows {sel} of a batch of {n} do not match the {x.shape[0]} rows given")
        kw = {"generator": generator, "device": x.device, "dtype": x.dtype}
        shift = (torch.rand((n, 2), **kw) * 2 - 1)[sel] * self.max_shift  # type: ignore[arg-type]
        angle = (torch.rand((n,), **kw) * 2 - 1)[sel] * math.radians(self.max_rotation)  # type: ignore[arg-type]
        noise = torch.randn((n, *x.shape[1:]), **kw)[sel] * self.noise_std  # type: ignore[arg-type]
        images = x
        if self.image_shape is not None:
            images = x.reshape(x.shape[0], 1, *self.image_shape)
        if images.dim() == 4 and (self.max_shift > 0 or self.max_rotation > 0):
            h, w = images.shape[-2:]
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.stack(
                [
                    torch.stack([cos, -sin, 2 * shift[:, 0] / w], dim=1),
                    torch.stack([sin, cos, 2 * shift[:, 1] / h], dim=1),
                ],
                dim=1,
            )
            grid = F.affine_grid(theta, list(images.shape), align_corners=False)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return images.reshape(x.shape) + noise


def augmentation_generator(
    seed: int, step: int, sample: int | None, device: torch.device | str = "cpu"
) -> torch.Generator:
    """The generator for the augmentation of weight sample ``sample`` at ``step`` (None: one per step).

    With ``augment_per="sample"`` every weight sample sees its own augmentation of the batch,
    so ranks holding different samples augment differently; with ``"step"`` all samples share
    one augmentation per example and step (what data-parallel training usually does).
    """
    streams = RngStreams(seed)
    if sample is None:
        return streams.torch("bnn-augment-step", step, device=device)
    return streams.torch("bnn-augment", step, sample, device=device)

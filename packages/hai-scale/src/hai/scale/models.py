"""Small plain ``nn.Module`` networks for experiments: an MLP and a CNN for flat image inputs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

from hai.shared import InputError


def mlp(n_inputs: int, n_outputs: int, hidden: Sequence[int] = (64,)) -> nn.Sequential:
    """A fully connected ReLU network ``n_inputs → hidden… → n_outputs``.

    >>> net = mlp(16, 4, hidden=(32,))
    >>> sum(p.numel() for p in net.parameters())
    676
    """
    widths = [int(n_inputs), *(int(h) for h in hidden), int(n_outputs)]
    if any(w < 1 for w in widths):
        raise InputError(f"layer widths must be positive, got {widths}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def small_cnn(
    n_outputs: int, image_shape: tuple[int, int] = (8, 8), channels: tuple[int, int] = (8, 16)
) -> nn.Sequential:
    """conv3x3 → ReLU → maxpool2 → conv3x3 → ReLU → linear, for images given as flat rows (N, H·W).

    >>> net = small_cnn(10)
    >>> sum(p.numel() for p in net.parameters())
    3818
    """
    height, width = (int(s) for s in image_shape)
    if height < 2 or width < 2 or n_outputs < 1 or min(channels) < 1:
        raise InputError(
            f"small_cnn needs images of at least 2x2, positive channels and outputs; got "
            f"image_shape={image_shape}, channels={channels}, n_outputs={n_outputs}"
        )
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, height, width)),
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2 * (height // 2) * (width // 2), n_outputs),
    )

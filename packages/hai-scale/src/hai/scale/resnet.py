"""ResNet-18 without pretrained weights, and synthetic class-patterned images to train it on.

The network is torchvision's ``resnet18(weights=None)`` when torchvision imports. The torchvision
wheel that pip pairs with the CPU build of torch 2.13 used here fails at import (``operator
torchvision::nms does not exist``), so the same architecture (He et al. 2016, "Deep Residual
Learning for Image Recognition": a 7×7/2 stem with 3×3/2 max-pool, BasicBlocks ×[2, 2, 2, 2] of
64–512 channels, global average pool, one linear layer) is also written out here, layer for
layer with torchvision's names and parameter count (11,181,642 for 3 channels and 10 classes).

Inputs are flat rows (N, C·H·W), as every hai.scale data set holds them; the network reshapes.
Nothing is downloaded: the images are random per-class patterns plus noise.
"""

from __future__ import annotations

import torch
from torch import nn

from hai.scale.data import ClassificationData
from hai.shared.checks import positive_int

__all__ = ["resnet18", "synthetic_images"]


class _BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=(1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=(1, 1), bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, padding=(0, 0), bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class _ResNet18(nn.Module):
    def __init__(self, n_classes: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=(3, 3), bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths, inplanes = (64, 128, 256, 512), 64
        for index, planes in enumerate(widths, start=1):
            stride = 1 if index == 1 else 2
            setattr(
                self,
                f"layer{index}",
                nn.Sequential(_BasicBlock(inplanes, planes, stride), _BasicBlock(planes, planes, 1)),
            )
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, n_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _torchvision_resnet18(n_classes: int) -> nn.Module | None:
    try:
        from torchvision.models import resnet18 as tv_resnet18
    except (ImportError, RuntimeError):  # not installed, or built for another torch
        return None
    net = tv_resnet18(weights=None, num_classes=n_classes)
    for m in net.modules():  # the low-rank layers take padding as numbers
        if isinstance(m, nn.Conv2d) and not isinstance(m.padding, tuple):
            m.padding = (int(m.padding), int(m.padding))
    return net


def resnet18(n_classes: int, image_shape: tuple[int, int], channels: int = 3) -> nn.Sequential:
    """ResNet-18 (no pretrained weights) for flat image rows (N, channels·H·W).

    >>> net = resnet18(10, (32, 32))
    >>> sum(p.numel() for p in net.parameters())
    11181642
    >>> net(torch.zeros(2, 3 * 32 * 32)).shape
    torch.Size([2, 10])
    """
    n_classes = positive_int("n_classes", n_classes)
    channels = positive_int("channels", channels)
    height, width = (positive_int("image size", s) for s in image_shape)
    body = _torchvision_resnet18(n_classes) if channels == 3 else None
    if body is None:
        body = _ResNet18(n_classes, channels)
    return nn.Sequential(nn.Unflatten(1, (channels, height, width)), body)


def synthetic_images(
    size: int = 32, n_classes: int = 10, samples: int = 1024, *, seed: int = 0, noise: float = 0.8
) -> ClassificationData:
    """Random per-class 3-channel patterns plus Gaussian noise, as flat rows; 80 % train, 20 % test.

    >>> data = synthetic_images(8, 4, 100)
    >>> data.x_train.shape, data.image_shape, data.n_classes
    (torch.Size([80, 192]), (8, 8), 4)
    """
    size = positive_int("image size", size)
    n_classes = positive_int("classes", n_classes)
    samples = positive_int("samples", samples)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (samples,), generator=generator)
    patterns = torch.randn(n_classes, 3, size, size, generator=torch.Generator().manual_seed(1234))
    images = patterns[labels] + noise * torch.randn(samples, 3, size, size, generator=generator)
    x = images.flatten(1)
    cut = int(0.8 * samples)
    return ClassificationData(
        name=f"images{size}", x_train=x[:cut], y_train=labels[:cut], x_test=x[cut:], y_test=labels[cut:],
        n_classes=n_classes, image_shape=(size, size),
    )  # fmt: skip

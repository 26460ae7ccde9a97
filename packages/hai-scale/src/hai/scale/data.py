"""Small data sets for trying training methods: synthetic blobs, the 8x8 digits, 1-D regression.

Nothing is downloaded: the synthetic sets are generated from a seed, and the digits (1,797 images
of 8x8 pixels, 10 classes) ship inside scikit-learn, the optional extra ``hai-scale[digits]``.
Classification features are standardised with the training split's mean and standard deviation.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.shared import InputError, MissingPackageError, RngStreams

CLASSIFICATION_DATASETS: tuple[str, ...] = ("synthetic", "digits")
REGRESSION_DATASETS: tuple[str, ...] = ("regression",)
DATASETS: tuple[str, ...] = CLASSIFICATION_DATASETS + REGRESSION_DATASETS


@dataclass
class ClassificationData:
    """Train and test splits: float features (N, d) and integer labels (N,) in 0…n_classes-1.

    ``image_shape`` is (height, width) when the features are the pixels of an image, else None.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    image_shape: tuple[int, int] | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def _split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    test_fraction: float,
    seed: int,
    dtype: torch.dtype,
    image_shape: tuple[int, int] | None = None,
) -> ClassificationData:
    order = RngStreams(seed).numpy(f"{name}-split").permutation(len(x))
    n_test = max(1, round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    xs = (x - mean) / std
    return ClassificationData(
        name=name,
        x_train=torch.as_tensor(xs[train], dtype=dtype),
        y_train=torch.as_tensor(y[train], dtype=torch.long),
        x_test=torch.as_tensor(xs[test], dtype=dtype),
        y_test=torch.as_tensor(y[test], dtype=torch.long),
        n_classes=n_classes,
        image_shape=image_shape,
    )


def synthetic_classification(
    n_samples: int = 1200,
    n_features: int = 16,
    n_classes: int = 4,
    *,
    test_fraction: float = 0.25,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ClassificationData:
    """Gaussian clusters, two per class, so that the classes are not linearly separable.

    >>> data = synthetic_classification(200, n_features=5, n_classes=3, seed=1)
    >>> tuple(data.x_train.shape), data.n_classes, sorted(set(data.y_train.tolist()))
    ((150, 5), 3, [0, 1, 2])
    """
    if n_samples < 2 * n_classes or n_features < 1 or n_classes < 2:
        raise InputError(
            f"need n_classes ≥ 2, n_features ≥ 1 and n_samples ≥ 2·n_classes, got "
            f"n_samples={n_samples}, n_features={n_features}, n_classes={n_classes}"
        )
    _check_fraction(test_fraction)
    rng = RngStreams(seed).numpy("synthetic-classification")
    centres = rng.normal(scale=1.6, size=(2 * n_classes, n_features))
    cluster = rng.integers(0, 2 * n_classes, size=n_samples)
    cluster[: 2 * n_classes] = np.arange(2 * n_classes)  # every cluster (and class) appears
    x = centres[cluster] + rng.normal(size=(n_samples, n_features))
    y = cluster % n_classes
    return _split("synthetic", x, y, n_classes, test_fraction=test_fraction, seed=seed, dtype=dtype)


def digits_classification(
    *, test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float32
) -> ClassificationData:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), split and standardised.

    Needs scikit-learn: ``pip install 'hai-scale[digits]'``.
    """
    _check_fraction(test_fraction)
    try:
        datasets = importlib.import_module("sklearn.datasets")
    except ImportError as exc:
        raise MissingPackageError(
            "the digits data set comes with scikit-learn, which is not installed",
            hint="pip install 'hai-scale[digits]', or use the synthetic data",
        ) from exc
    bunch = datasets.load_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    return _split("digits", x, y, 10, test_fraction=test_fraction, seed=seed, dtype=dtype, image_shape=(8, 8))


def load_classification(
    name: str, *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> ClassificationData:
    """The data set called ``name`` ("synthetic" or "digits") with its default size.

    >>> load_classification("synthetic").n_features
    16
    """
    if name == "synthetic":
        return synthetic_classification(seed=seed, dtype=dtype)
    if name == "digits":
        return digits_classification(seed=seed, dtype=dtype)
    if name in REGRESSION_DATASETS:
        raise InputError(
            f"{name!r} is a regression data set, not a classification one",
            hint="load it with load_dataset or synthetic_regression",
        )
    raise InputError(f"unknown data set {name!r}", hint=f"use one of {', '.join(CLASSIFICATION_DATASETS)}")


@dataclass
class RegressionData:
    """Train and test splits of a regression problem: x (N, d) (d = 1 for the synthetic set), y (N,).

    ``noise_std`` is the observation noise (the Gaussian likelihood's std); ``gap`` an interval
    (low, high) of a 1-D input inside the training range that holds no training data, if known.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    noise_std: float
    gap: tuple[float, float] | None = None
    name: str = "regression"

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def synthetic_regression(
    n_samples: int = 256,
    *,
    noise_std: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    test_noise: bool = False,
) -> RegressionData:
    """y = sin(3x) + noise on x ∈ [-1, -0.3] ∪ [0.3, 1] (a gap, where a BNN should be unsure);
    the test inputs cover [-1.5, 1.5] evenly (101 points).

    The test targets are sin(3x) itself, or with ``test_noise`` noisy observations like the
    training targets (what a predictive interval's coverage should be measured on); the training
    data is the same either way.

    >>> d = synthetic_regression(64, seed=1)
    >>> tuple(d.x_train.shape), tuple(d.y_train.shape), d.gap
    ((64, 1), (64,), (-0.3, 0.3))
    """
    if n_samples < 2 or not noise_std > 0:
        raise InputError(f"need n_samples ≥ 2 and noise_std > 0, got {n_samples}, {noise_std}")
    streams = RngStreams(seed)
    rng = streams.numpy("synthetic-regression")
    x = rng.uniform(0.3, 1.0, size=n_samples) * rng.choice([-1.0, 1.0], size=n_samples)
    y = np.sin(3 * x) + rng.normal(scale=noise_std, size=n_samples)
    xt = np.linspace(-1.5, 1.5, 101)
    yt = np.sin(3 * xt)
    if test_noise:
        yt = yt + streams.numpy("synthetic-regression-test").normal(scale=noise_std, size=xt.shape)
    return RegressionData(
        x_train=torch.as_tensor(x[:, None], dtype=dtype),
        y_train=torch.as_tensor(y, dtype=dtype),
        x_test=torch.as_tensor(xt[:, None], dtype=dtype),
        y_test=torch.as_tensor(yt, dtype=dtype),
        noise_std=noise_std,
        gap=(-0.3, 0.3),
    )


def load_dataset(
    name: str, *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> ClassificationData | RegressionData:
    """The data set called ``name``: a classification set, or "regression" (256 noisy points of
    :func:`synthetic_regression`, noise std 0.1, noisy test targets).

    >>> type(load_dataset("regression")).__name__, type(load_dataset("synthetic")).__name__
    ('RegressionData', 'ClassificationData')
    """
    if name == "regression":
        return synthetic_regression(seed=seed, dtype=dtype, test_noise=True)
    if name not in DATASETS:
        raise InputError(f"unknown data set {name!r}", hint=f"use one of {', '.join(DATASETS)}")
    return load_classification(name, seed=seed, dtype=dtype)


def _stack(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        n = len(dataset)
    except TypeError as exc:
        raise InputError("the data set must have a length (a map-style torch Dataset)") from exc
    if n < 1:
        raise InputError("the data set is empty")
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InputError(f"item {i} of the data set is not an (input, label) pair")
        xs.append(torch.as_tensor(item[0]))
        ys.append(int(item[1]))
    return torch.stack(xs).flatten(1), torch.as_tensor(ys, dtype=torch.long)


def from_datasets(
    train: Any,
    test: Any,
    *,
    name: str = "custom",
    n_classes: int | None = None,
    image_shape: tuple[int, int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> ClassificationData:
    """The hook for any torch ``Dataset`` of (input, class) pairs: stack both into a ClassificationData.

    Inputs are flattened to rows; give ``image_shape`` for single-channel images so that the
    CNN and the image augmentations can use them. (Data sets are held in memory whole.)

    >>> from torch.utils.data import TensorDataset
    >>> ds = TensorDataset(torch.randn(10, 4), torch.arange(10) % 2)
    >>> from_datasets(ds, ds).n_classes
    2
    """
    x_train, y_train = _stack(train)
    x_test, y_test = _stack(test)
    k = int(max(int(y_train.max()), int(y_test.max())) + 1) if n_classes is None else n_classes
    if int(y_train.min()) < 0 or int(max(y_train.max(), y_test.max())) >= k:
        raise InputError(f"labels must lie in 0…{k - 1}")
    return ClassificationData(name, x_train.to(dtype), y_train, x_test.to(dtype), y_test, k, image_shape)

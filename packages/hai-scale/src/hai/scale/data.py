"""Small data sets for trying training methods: synthetic blobs, the 8x8 digits, 1-D regression.

Nothing is downloaded: the synthetic sets are generated from a seed, and the digits (1,797 images
of 8x8 pixels, 10 classes) ship inside scikit-learn, the optional extra ``hai-scale[digits]``.
Classification features are standardised with the training split's mean and standard deviation.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
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
    classes: tuple[str, ...] | None = None  # the file's class labels of 0…n_classes-1, if read from one

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

    ``noise_std`` is the observation noise (the Gaussian likelihood's std; None where it is not
    known, as for a data file, so that it is learned or given); ``gap`` an interval
    (low, high) of a 1-D input inside the training range that holds no training data, if known.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    noise_std: float | None
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


# ---------------------------------------------------------------------------------------------
# User data: a CSV or NPZ file

DATA_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".npz")
TASKS: tuple[str, ...] = ("classification", "regression")
FILE_TEST_FRACTION = 0.2
MAX_AUTO_CLASSES = 20  # a whole-number target with more distinct values is taken as regression
MIN_FILE_ROWS = 5


def is_data_file(name: str) -> bool:
    """Whether ``name`` names a data file (``.csv`` or ``.npz``) rather than a named data set."""
    return str(name).lower().endswith(DATA_FILE_SUFFIXES)


def _read_csv(path: Path, target: str | None) -> tuple[np.ndarray, list[str], list[str]]:
    """(features (N, d) float64, target cells as text, feature names) of a CSV file with a header."""
    import csv

    if target is None:
        raise InputError(
            f"{path}: a CSV file needs the name of its target column", hint="add --target COLUMN"
        )
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not a text CSV file ({exc.reason})", hint="give a UTF-8 CSV file"
        ) from None
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV file: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError(f"{path} is empty", hint="give a CSV file with a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise InputError(
            f"{path} has no column {target!r} (its columns: {', '.join(header)})",
            hint="give --target one of the header's column names",
        )
    if header.count(target) > 1:
        raise InputError(f"{path} has more than one column named {target!r}")
    t = header.index(target)
    names = [h for i, h in enumerate(header) if i != t]
    if not names:
        raise InputError(f"{path} has no feature column besides the target {target!r}")
    x = np.empty((len(rows) - 1, len(names)))
    labels: list[str] = []
    for r, row in enumerate(rows[1:], start=2):  # line numbers as an editor shows them
        if len(row) != len(header):
            raise InputError(f"{path}, row {r}: {len(row)} cells, but the header has {len(header)}")
        j = 0
        for i, cell in enumerate(row):
            if i == t:
                labels.append(cell.strip())
                continue
            try:
                value = float(cell)
            except ValueError:
                what = "is empty" if not cell.strip() else f"{cell.strip()!r} is not a number"
                raise InputError(
                    f"{path}, row {r}, column {header[i]!r}: {what}",
                    hint="feature columns must hold numbers (encode categories as numbers)",
                ) from None
            if not math.isfinite(value):
                raise InputError(
                    f"{path}, row {r}, column {header[i]!r}: {cell.strip()!r} is not a finite number",
                    hint="remove or fill in the rows with missing values",
                )
            x[r - 2, j] = value
            j += 1
    return x, labels, names


def _read_npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, d), y (N,)) of an NPZ file with arrays ``x`` and ``y`` (or ``target``), never unpickled."""
    import zipfile

    name = target or "y"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(
                    f"{path} is not an NPZ archive", hint="save it with numpy.savez(path, x=..., y=...)"
                )
            missing = [k for k in ("x", name) if k not in archive.files]
            if missing:
                raise InputError(
                    f"{path} has no array {' or '.join(map(repr, missing))} "
                    f"(its arrays: {', '.join(archive.files) or 'none'})",
                    hint="save it with numpy.savez(path, x=features, y=targets)",
                )
            x, y = archive["x"], archive[name]
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(
            f"{path} is not a readable NPZ file of plain arrays ({exc})",
            hint="save it with numpy.savez(path, x=features, y=targets); pickled objects are never loaded",
        ) from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise InputError(
            f"{path}: x must be (N, d) and {name} (N,), got {x.shape} and {y.shape}",
            hint="reshape the arrays before saving them",
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InputError(f"{path}: x must hold numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        raise InputError(
            f"{path}: x[{bad[0][0]}, {bad[0][1]}] is {x[bad[0][0], bad[0][1]]} (not a finite number)",
            hint="remove or fill in the rows with missing values",
        )
    return x, y


def _target_values(labels: np.ndarray | list[str]) -> np.ndarray | None:
    """The targets as float64 if every one is a number, else None."""
    try:
        return np.asarray([float(v) for v in labels], dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _task_of(values: np.ndarray | None) -> str:
    if values is None:
        return "classification"
    whole = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return "classification" if whole and len(np.unique(values)) <= MAX_AUTO_CLASSES else "regression"


def load_data_file(
    path: str | Path,
    *,
    target: str | None = None,
    task: str | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ClassificationData | RegressionData:
    """User data from a CSV file (a header row; numeric feature columns and the ``target`` column)
    or an NPZ file (arrays ``x`` (N, d) and ``y`` (N,), read with ``allow_pickle=False``),
    split 80/20 into train and test rows by ``seed``.

    ``task`` is "classification" (the target's distinct values, sorted, become classes
    0…K-1; they may be words) or "regression" (numeric targets, kept as they are); None decides
    from the target: whole numbers with at most 20 distinct values or words mean
    classification, other numbers regression. Features are standardised with the training
    rows' mean and std. A regression file has no known noise std (``noise_std`` None): train it
    with a learned noise (the default) or give one. Anything wrong with the file raises
    :class:`InputError` naming the row and column.

    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> rows = "".join(f"{i},{i % 3},{'yes' if i > 4 else 'no'}\\n" for i in range(10))
    >>> _ = open(f, "w").write("a,b,label\\n" + rows)
    >>> d = load_data_file(f, target="label")
    >>> type(d).__name__, d.n_classes, d.classes, tuple(d.x_train.shape), tuple(d.x_test.shape)
    ('ClassificationData', 2, ('no', 'yes'), (8, 2), (2, 2))
    """
    file = Path(path)
    if task is not None and task not in TASKS:
        raise InputError(f"unknown task {task!r}", hint=f"use one of {', '.join(TASKS)}")
    if not is_data_file(str(file)):
        raise InputError(f"{file}: a data file must end in .csv or .npz")
    if not file.is_file():
        raise InputError(f"data file {file} does not exist" if not file.exists() else f"{file} is not a file")
    if file.suffix.lower() == ".csv":
        x, cells, _ = _read_csv(file, target)
        labels: np.ndarray | list[str] = cells
        values = _target_values(cells)
        shown = target
    else:
        x, raw = _read_npz(file, target)
        shown = target or "y"
        if raw.dtype.kind in "US":
            labels, values = [str(v) for v in raw], None
        elif np.issubdtype(raw.dtype, np.number) or raw.dtype == np.bool_:
            labels, values = raw, raw.astype(np.float64)
        else:
            raise InputError(f"{file}: {shown} must hold numbers or words, got dtype {raw.dtype}")
    n = len(x)
    if n < MIN_FILE_ROWS:
        raise InputError(
            f"{file} has {n} data rows; at least {MIN_FILE_ROWS} are needed for a train/test split"
        )
    if values is not None:
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            where = f"row {bad[0] + 2}" if file.suffix.lower() == ".csv" else f"{shown}[{bad[0]}]"
            raise InputError(
                f"{file}, {where}, target {shown!r}: {labels[bad[0]]!r} is not a finite number",
                hint="remove or fill in the rows with missing values",
            )
    else:
        empty = [i for i, v in enumerate(labels) if str(v) == ""]
        if empty:
            raise InputError(f"{file}, row {empty[0] + 2}, column {shown!r}: the target is empty")
    chosen = task or _task_of(values)
    if chosen == "regression":
        if values is None:
            first = next(v for v in labels if _target_values([v]) is None)
            raise InputError(
                f"{file}: regression needs numeric targets, but {shown!r} holds {first!r}",
                hint="use --task classification, or a numeric target column",
            )
        return _regression_split(file.name, x, values, seed=seed, dtype=dtype)
    keys = [str(v) for v in labels] if values is None else list(values)
    classes_sorted = sorted(set(keys))
    if len(classes_sorted) < 2:
        raise InputError(
            f"{file}: the target {shown!r} holds one class only ({classes_sorted[0]!r})",
            hint="classification needs at least two classes",
        )
    index = {c: i for i, c in enumerate(classes_sorted)}
    y = np.asarray([index[k] for k in keys], dtype=np.int64)
    shown_classes = tuple(
        str(int(c)) if isinstance(c, float) and c == round(c) else str(c) for c in classes_sorted
    )
    data = _split("file", x, y, len(classes_sorted), test_fraction=FILE_TEST_FRACTION, seed=seed, dtype=dtype)
    data.name = file.name
    data.classes = shown_classes
    return data


def _regression_split(
    name: str, x: np.ndarray, y: np.ndarray, *, seed: int, dtype: torch.dtype
) -> RegressionData:
    order = RngStreams(seed).numpy("file-split").permutation(len(x))
    n_test = max(1, round(FILE_TEST_FRACTION * len(x)))
    test, train = order[:n_test], order[n_test:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    xs = (x - mean) / std
    return RegressionData(
        x_train=torch.as_tensor(xs[train], dtype=dtype),
        y_train=torch.as_tensor(y[train], dtype=dtype),
        x_test=torch.as_tensor(xs[test], dtype=dtype),
        y_test=torch.as_tensor(y[test], dtype=dtype),
        noise_std=None,
        name=name,
    )

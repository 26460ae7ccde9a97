"""Training a Bayesian classifier or regressor with the S-sample ELBO in any parallel mode.

:func:`train_bnn` runs in every process of a job (``torchrun``, ``hai scale bnn-train --nproc N``)
or in a single one. All ranks load the same data, build the same model from the seed, walk the
training set in the same (seeded) order and drop the last incomplete batch, so that every rank
agrees on the global batch of each step; the engine then gives each rank its samples and rows.
Evaluation runs in parallel too and its result is the same on every rank: accuracy, NLL and ECE
of the mean predictive for classification; for regression (a :class:`~hai.scale.data.RegressionData`,
one output, Gaussian likelihood) the RMSE of the predictive mean, the Gaussian NLL, the coverage
of the central 90 % interval, and at the end the mean predictive std where the training data
lies and inside its gap. Progress bars are drawn on rank 0 only; wall time, CPU time, energy and
peak memory are measured on every rank and gathered.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hai.scale.augment import AUGMENT_PER, Augmentation
from hai.scale.bnn.layers import ESTIMATORS, GaussianPrior, to_bayesian
from hai.scale.bnn.losses import ELBOLoss, PredictiveLoss
from hai.scale.bnn.predictive import (
    Predictive,
    classification_metrics,
    gaussian_predictive,
    regression_metrics,
    reliability,
)
from hai.scale.data import (
    DATASETS,
    REGRESSION_DATASETS,
    TASKS,
    ClassificationData,
    RegressionData,
    is_data_file,
    load_data_file,
    load_dataset,
)
from hai.scale.models import mlp, small_cnn
from hai.scale.parallel.engine import SamplingParallel, world
from hai.scale.parallel.workload import MODES, workload
from hai.shared import (
    CheckpointError,
    InputError,
    OutputError,
    RngStreams,
    load_checkpoint,
    measure,
    progress,
    resolve_device,
    save_checkpoint,
    torch_threads,
)
from hai.shared.checks import (
    check_memory,
    finite_float,
    nonnegative_float,
    positive_float,
    positive_int,
)
from hai.shared.files import output_error, to_jsonable

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
LOSSES: tuple[str, ...] = ("elbo", "predictive")
COVERAGE_LEVEL = 0.9  # the central predictive interval whose coverage regression reports


@dataclass
class BNNConfig:
    """Everything a BNN training run depends on (the same on every rank)."""

    data: str = "digits"
    model: str = "mlp"
    hidden: tuple[int, ...] = (64,)
    mode: str = "local"
    samples: int = 4
    loss: str = "elbo"
    group_size: int | None = None
    batch_size: int = 64
    epochs: int = 10
    lr: float = 1e-2
    kl_weight: float = 1.0
    prior_std: float = 1.0
    posterior_std: float = 1e-2
    estimator: str = "reparam"
    augment: bool = False
    augment_per: str = "sample"
    eval_samples: int = 16
    seed: int = 0
    split_seed: int = 0  # the named data set's generation and train/test split, apart from ``seed``
    device: str = "cpu"
    dtype: str = "float32"
    target_accuracy: float | None = None
    max_steps: int | None = None
    checkpoint: str | None = None
    noise_std: float | str | None = None  # regression: the noise std, "learned", or None: the data's
    threads: int | None = 1  # torch CPU threads per process while training (None: torch's setting)
    checkpoint_every: int | None = None  # also save the training state every N steps
    checkpoint_minutes: float | None = None  # ... and every M minutes (rank 0's clock)
    resume: bool = False  # continue from ``checkpoint`` if that file exists
    target: str | None = None  # ``data`` a CSV file: its target column (NPZ: the targets' array, "y")
    task: str | None = None  # ``data`` a file: "classification", "regression" or None (from the target)

    def validate(self, world_size: int, local_size: int | None = None) -> None:
        """Raise :class:`InputError` for settings no rank can run (checked before any collective).

        Numbers must be finite and in range, the MLP needs at least one hidden layer, a training
        step's memory (:func:`step_memory_bytes`) must fit this machine and the checkpoint path
        must be writable, so that a bad setting fails before anything is trained.
        """
        for name in ("samples", "batch_size", "epochs", "eval_samples"):
            positive_int(name, getattr(self, name))
        if self.group_size is not None:
            positive_int("group_size", self.group_size)
        workload(self.mode, self.samples, self.batch_size, world_size, 0, self.group_size)
        threads = self.threads
        if threads is not None and (
            not isinstance(threads, numbers.Integral) or isinstance(threads, bool) or threads < 1
        ):
            raise InputError(
                f"threads must be a positive integer, got {self.threads}", hint="or None for torch's setting"
            )
        if threads is not None and threads > 4 * (os.cpu_count() or 1):
            raise InputError(
                f"threads must be at most {4 * (os.cpu_count() or 1)} (4 per CPU core), got {threads}",
                hint="more threads than cores only slow training down",
            )
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        if self.model not in ("mlp", "cnn"):
            raise InputError(f"unknown model {self.model!r}", hint="use mlp or cnn")
        if self.estimator not in ESTIMATORS:
            raise InputError(
                f"unknown estimator {self.estimator!r}", hint=f"use one of {', '.join(ESTIMATORS)}"
            )
        if self.augment_per not in AUGMENT_PER:
            raise InputError(
                f"unknown augment_per {self.augment_per!r}", hint=f"use one of {', '.join(AUGMENT_PER)}"
            )
        if self.dtype not in DTYPES:
            raise InputError(f"unknown dtype {self.dtype!r}", hint="use float32 or float64")
        positive_float("lr", self.lr)
        nonnegative_float("kl_weight", self.kl_weight)
        positive_float("prior_std", self.prior_std)
        positive_float("posterior_std", self.posterior_std)
        if self.max_steps is not None:
            positive_int("max_steps", self.max_steps)
        if (
            self.noise_std is not None
            and self.noise_std != LEARNED
            and not (
                isinstance(self.noise_std, numbers.Real)
                and not isinstance(self.noise_std, bool)
                and math.isfinite(self.noise_std)
                and self.noise_std > 0
            )
        ):
            raise InputError(f"noise_std must be positive and finite, or {LEARNED!r}, got {self.noise_std!r}")
        if self.target_accuracy is not None:
            target = finite_float("target_accuracy", self.target_accuracy)
            if not 0.0 <= target <= 1.0:
                raise InputError(f"target_accuracy must be between 0 and 1, got {self.target_accuracy!r}")
        if self.model == "mlp":
            check_hidden(self.hidden)
        if self.data in REGRESSION_DATASETS:
            self.check_task("regression")
        if self.data in DATA_SHAPES:
            n_features, n_outputs, image_shape = DATA_SHAPES[self.data]
            self.check_memory(n_features, n_outputs, image_shape, world_size, local_size)
        elif is_data_file(self.data):
            if self.task is not None and self.task not in TASKS:
                raise InputError(f"unknown task {self.task!r}", hint=f"use one of {', '.join(TASKS)}")
            if self.model == "cnn":
                raise InputError(
                    "the CNN needs image data, and a data file's rows are not images", hint="use --model mlp"
                )
            data = load_config_data(self)  # every check of the file, before anything starts
            regression = isinstance(data, RegressionData)
            self.check_task("regression" if regression else "classification")
            n_outputs = 1 if isinstance(data, RegressionData) else data.n_classes
            self.check_memory(data.n_features, n_outputs, None, world_size, local_size)
        else:
            raise InputError(
                f"unknown data set {self.data!r}",
                hint=f"use one of {', '.join(DATASETS)}, or a data file (.csv or .npz)",
            )
        if not is_data_file(self.data):
            for name in ("target", "task"):
                if getattr(self, name) is not None:
                    raise InputError(
                        f"{name} applies to a data file (.csv or .npz), not the data set {self.data!r}",
                        hint=f"leave out --{name}",
                    )
        if self.checkpoint_every is not None:
            positive_int("checkpoint_every", self.checkpoint_every)
        if self.checkpoint_minutes is not None:
            positive_float("checkpoint_minutes", self.checkpoint_minutes)
        wants = [
            name
            for name, value in (
                ("checkpoint_every", self.checkpoint_every),
                ("checkpoint_minutes", self.checkpoint_minutes),
                ("resume", self.resume or None),
            )
            if value is not None
        ]
        if wants and self.checkpoint is None:
            raise InputError(f"{' and '.join(wants)} need a checkpoint file", hint="add --checkpoint FILE")
        if self.checkpoint is not None:
            check_output_file(self.checkpoint, "checkpoint")

    def check_memory(
        self,
        n_features: int,
        n_outputs: int,
        image_shape: tuple[int, int] | None,
        world_size: int,
        local_size: int | None = None,
    ) -> None:
        """Raise :class:`InputError` if the ranks on this machine would need more memory than it has.

        The ranks on this machine are ``local_size``, else ``LOCAL_WORLD_SIZE`` (torchrun sets
        it), else ``world_size``.
        """
        local = local_size or int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        per_rank = step_memory_bytes(self, n_features, n_outputs, image_shape, world_size)
        params, _ = network_size(self, n_features, n_outputs, image_shape)
        check_memory(
            local * per_rank,
            f"training this network ({params:,} weights) with {self.samples} weight samples × "
            f"{self.batch_size} rows on {local} process(es)",
        )

    def check_task(self, task: str) -> None:
        """Raise :class:`InputError` for settings that do not apply to ``task`` (its data)."""
        if task == "regression":
            if self.model == "cnn":
                raise InputError(
                    "the CNN needs image data, and regression data is not", hint="use --model mlp"
                )
            if self.augment:
                raise InputError(
                    "the augmentations (shifts, rotations, noise) are for image data, not regression data",
                    hint="leave out --augment",
                )
            if self.target_accuracy is not None:
                raise InputError(
                    "target_accuracy applies to classification, not regression",
                    hint="leave out --target-accuracy (stop with --epochs or --max-steps)",
                )
        elif self.noise_std is not None:
            raise InputError(
                "noise_std applies to regression only (the Gaussian likelihood)",
                hint="leave out --noise-std and --noise",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LEARNED = "learned"  # BNNConfig.noise_std: the Gaussian likelihood's noise std is trained
NOISE_PARAMETER = "noise_log_std"  # the model's parameter log σ of a learned noise
_FILE_CACHE: dict[tuple[Any, ...], ClassificationData | RegressionData] = {}


def load_config_data(config: BNNConfig) -> ClassificationData | RegressionData:
    """The data of ``config``: a named data set, or its data file read and split (cached per file
    and settings, so that validation and training read it once)."""
    dtype = DTYPES.get(config.dtype, torch.float32)
    if not is_data_file(config.data):
        return load_dataset(config.data, seed=config.split_seed, dtype=dtype)
    path = Path(config.data)
    try:
        stat = path.stat()
        key: tuple[Any, ...] = (
            str(path.resolve()),
            stat.st_mtime_ns,
            stat.st_size,
            config.target,
            config.task,
            config.split_seed,
            dtype,
        )
    except OSError:
        key = ()
    if key and key in _FILE_CACHE:
        return _FILE_CACHE[key]
    data = load_data_file(path, target=config.target, task=config.task, seed=config.split_seed, dtype=dtype)
    if key:
        _FILE_CACHE.clear()
        _FILE_CACHE[key] = data
    return data


def check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    """The MLP's hidden widths: at least one layer, each a positive integer (no layer is a linear model)."""
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or len(hidden) == 0:
        raise InputError(
            f"the MLP needs at least one hidden layer, got {hidden!r}", hint="e.g. --hidden 64 or 64,64"
        )
    return tuple(positive_int("hidden width", h) for h in hidden)


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Raise :class:`OutputError` unless a file can be written at ``path`` (checked before training).

    Refuses a folder where the file should be, a file where a folder of its path should be, and a
    first existing folder in which no file can be created (tried with a temporary file, which is
    removed; this also catches read-only file systems, where permission bits say nothing).
    """
    target = Path(path)
    if str(path) == "":
        raise OutputError(f"the {what} path is empty", hint="give a file name")
    if target.is_dir():
        raise OutputError(
            f"cannot write {what} {target}: it is a folder", hint="give a file name, not a folder"
        )
    for parent in target.absolute().parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise OutputError(
                f"cannot write {what} {target}: {parent} is a file, not a folder",
                hint="choose a path whose folders are folders",
            )
        try:
            fd, probe = tempfile.mkstemp(prefix=".hai-probe-", dir=parent)
        except OSError as exc:
            reason = output_error(target, exc).message.rsplit(": ", 1)[-1]
            raise OutputError(
                f"cannot write {what} {target}: no file can be created in {parent} ({reason})",
                hint="choose another output path",
            ) from None
        os.close(fd)
        os.unlink(probe)
        break
    return target


# (n_features, n_outputs, image_shape) of the named data sets, for estimates made before loading them
DATA_SHAPES: dict[str, tuple[int, int, tuple[int, int] | None]] = {
    "synthetic": (16, 4, None),
    "digits": (64, 10, (8, 8)),
    "regression": (1, 1, None),
}
CNN_CHANNELS = (8, 16)  # those of hai.scale.models.small_cnn


def network_size(
    config: BNNConfig, n_features: int, n_outputs: int, image_shape: tuple[int, int] | None
) -> tuple[int, int]:
    """(weights, activations per input row) of the plain network of ``config``, from sizes alone.

    >>> network_size(BNNConfig(hidden=(32,)), 16, 4, None)
    (676, 52)
    >>> network_size(BNNConfig(model="cnn"), 64, 10, (8, 8))
    (3818, 1738)
    """
    if config.model == "cnn" and image_shape is not None:
        height, width = image_shape
        c1, c2 = CNN_CHANNELS
        quarter = (height // 2) * (width // 2)
        params = c1 * 9 + c1 + c2 * c1 * 9 + c2 + c2 * quarter * n_outputs + n_outputs
        activations = n_features + 2 * c1 * height * width + c1 * quarter + 2 * c2 * quarter + n_outputs
        return params, activations
    widths = [n_features, *(int(h) for h in config.hidden), n_outputs]
    return sum(a * b + b for a, b in itertools.pairwise(widths)), sum(widths)


def step_memory_bytes(
    config: BNNConfig,
    n_features: int,
    n_outputs: int,
    image_shape: tuple[int, int] | None,
    world_size: int,
) -> float:
    """A rough lower bound on one rank's memory for a training step of ``config``, in bytes.

    The posterior (mean and spread), its gradients and Adam's two moments: 6 P values for P
    network weights. Each of the rank's weight samples keeps its sampled weights and noise for
    the backward pass (2 P) and, per batch row, each layer's output and its gradient (2 A for
    A activations per row). Computed from the sizes alone, so an absurd size is refused
    without allocating anything.

    >>> cfg = BNNConfig(hidden=(64,), samples=4, batch_size=64)
    >>> int(step_memory_bytes(cfg, 64, 10, None, 1))  # P = 4810, A = 64 + 64 + 10
    551984
    """
    params, activations = network_size(config, n_features, n_outputs, image_shape)
    wl = workload(config.mode, config.samples, config.batch_size, world_size, 0, config.group_size)
    itemsize = torch.finfo(DTYPES.get(config.dtype, torch.float32)).bits // 8
    values = 6 * params + wl.local_samples * (2 * params + 2 * wl.local_batch * activations)
    return float(values * itemsize)


@dataclass
class BNNEpoch:
    """Metrics after one epoch (test metrics of the predictive over ``eval_samples`` samples).

    Classification fills accuracy, NLL, ECE and entropy; regression fills NLL (Gaussian, per
    example), RMSE of the predictive mean and the coverage of the central 90 % interval. The
    fields of the other task are None and left out of :meth:`to_dict`.
    """

    epoch: int
    step: int
    train_loss: float
    test_accuracy: float | None
    test_nll: float
    test_ece: float | None
    test_entropy: float | None
    wall_s: float
    test_rmse: float | None = None
    test_coverage: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class BNNResult:
    """What :func:`train_bnn` returns on every rank."""

    config: BNNConfig
    world_size: int
    rank: int
    n_parameters: int
    steps: int
    history: list[BNNEpoch]
    step_time_s: float
    per_rank: list[dict[str, Any]]
    reliability: dict[str, list[Any]] | None  # classification only
    workload: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    dataset: str | None = None  # the data's name where it is not config.data
    noise_std: float | None = None  # regression: the likelihood's noise std used (learned: its final value)
    noise: str | None = None  # regression: "fixed" or "learned"
    std_in_data: float | None = None  # regression: mean predictive std inside the data's range
    std_in_gap: float | None = None  # regression: ... inside the data's gap (if it has one)
    model: torch.nn.Module | None = field(default=None, repr=False)  # the trained Bayesian network

    @property
    def loss(self) -> float:
        return self.history[-1].train_loss

    @property
    def accuracy(self) -> float | None:
        return self.history[-1].test_accuracy

    @property
    def rmse(self) -> float | None:
        return self.history[-1].test_rmse

    def epochs_to(self, target: float) -> int | None:
        """The first epoch whose test accuracy reached ``target``, or None."""
        return next(
            (h.epoch for h in self.history if h.test_accuracy is not None and h.test_accuracy >= target), None
        )

    def to_dict(self) -> dict[str, Any]:
        last = self.history[-1]
        metrics: dict[str, Any]
        if self.task == "regression":
            metrics = {
                "nll": last.test_nll,
                "rmse": last.test_rmse,
                "coverage": last.test_coverage,
                "std_in_data": self.std_in_data,
                "std_in_gap": self.std_in_gap,
                "noise_std": self.noise_std,
                "noise": self.noise,
            }
        else:
            metrics = {
                "accuracy": last.test_accuracy,
                "nll": last.test_nll,
                "ece": last.test_ece,
                "entropy": last.test_entropy,
            }
        out = {
            "mode": self.config.mode,
            "world_size": self.world_size,
            "samples": self.config.samples,
            "data": self.dataset or self.config.data,
            "model": self.config.model,
            "n_parameters": self.n_parameters,
            "epochs": len(self.history),
            "steps": self.steps,
            "loss": last.train_loss,
            **metrics,
            "step_time_s": self.step_time_s,
            "per_rank": self.per_rank,
            "workload": self.workload,
            "history": [h.to_dict() for h in self.history],
            "reliability": self.reliability,
            "config": self.config.to_dict(),
        }
        if self.reliability is None:
            del out["reliability"]
        return out


def max_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def _device(spec: str, world_size: int) -> torch.device:
    device = resolve_device(spec)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def build_model(config: BNNConfig, data: ClassificationData | RegressionData) -> torch.nn.Module:
    """The Bayesian MLP or CNN of ``config``, initialised from the seed (identical on every rank).

    One output per class for classification, one output (the mean) for regression.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RngStreams(config.seed).entropy("bnn-init") & 0x7FFF_FFFF)
        if isinstance(data, RegressionData):
            config.check_task("regression")
            base = mlp(data.n_features, 1, config.hidden)
        elif config.model == "cnn":
            if data.image_shape is None:
                raise InputError("the CNN needs image data", hint="use --data digits, or --model mlp")
            base = small_cnn(data.n_classes, data.image_shape)
        else:
            base = mlp(data.n_features, data.n_classes, config.hidden)
    model = to_bayesian(
        base,
        prior=GaussianPrior(std=config.prior_std),
        posterior_std=config.posterior_std,
        estimator=config.estimator,
        inplace=True,
    )
    if isinstance(data, RegressionData) and learns_noise(config, data):
        # log σ starts at the training targets' std (all of y taken as noise) and is trained with the
        # weights: a parameter of the model, so that DDP averages its gradient and checkpoints hold it
        start = max(float(data.y_train.double().std(unbiased=False)), 1e-3)
        value = torch.tensor(math.log(start), dtype=next(model.parameters()).dtype)
        model.register_parameter(NOISE_PARAMETER, torch.nn.Parameter(value))
    return model


def learns_noise(config: BNNConfig, data: RegressionData) -> bool:
    """Whether the regression of ``config`` on ``data`` learns its noise std: asked for
    (``noise_std="learned"``), or no std given and the data has none (a data file)."""
    return config.noise_std == LEARNED or (config.noise_std is None and data.noise_std is None)


def build_loss(
    config: BNNConfig, data: ClassificationData | RegressionData, model: torch.nn.Module | None = None
) -> ELBOLoss | PredictiveLoss:
    """The loss of ``config`` for ``data``: categorical, or Gaussian with the data's noise std
    (``config.noise_std`` if set) for regression; N is the training set's size. A learned noise
    std uses the parameter ``noise_log_std`` of ``model`` (see :func:`build_model`).

    >>> from hai.scale.data import synthetic_regression
    >>> loss = build_loss(BNNConfig(noise_std=0.2), synthetic_regression(64))
    >>> type(loss).__name__, loss.likelihood, loss.noise_std, loss.dataset_size
    ('ELBOLoss', 'gaussian', 0.2, 64)
    """
    loss_cls = PredictiveLoss if config.loss == "predictive" else ELBOLoss
    n_train = int(data.x_train.shape[0])
    if isinstance(data, RegressionData):
        if learns_noise(config, data):
            log_std = None if model is None else getattr(model, NOISE_PARAMETER, None)
            if not isinstance(log_std, torch.Tensor):
                raise InputError(
                    "a learned noise std needs the model of build_model(config, data)",
                    hint="pass model=build_model(config, data)",
                )
            return loss_cls(n_train, kl_weight=config.kl_weight, likelihood="gaussian", log_noise_std=log_std)
        fixed = data.noise_std if config.noise_std is None else config.noise_std
        assert isinstance(fixed, float | int)
        return loss_cls(n_train, kl_weight=config.kl_weight, likelihood="gaussian", noise_std=float(fixed))
    return loss_cls(n_train, kl_weight=config.kl_weight)


class _NullBar:
    """Stands in for the progress bar on ranks other than 0."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _gather(obj: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    if world_size == 1:
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


def check_data(data: ClassificationData | RegressionData) -> None:
    """Raise :class:`InputError` unless ``data`` has the shapes training needs (x (N, d); y (N,))."""
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if x.dim() != 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise InputError(
                f"the {split} split must be x (N, d) and y (N,), got {tuple(x.shape)} and {tuple(y.shape)}",
                hint="reshape 1-D inputs to (N, 1)",
            )
    if data.x_test.shape[1] != data.x_train.shape[1]:
        raise InputError(
            f"train and test inputs differ in width: {data.x_train.shape[1]} vs {data.x_test.shape[1]}"
        )
    if isinstance(data, RegressionData) and data.noise_std is not None and not data.noise_std > 0:
        raise InputError(f"the data's noise_std must be positive, got {data.noise_std}")


def uncertainty_regions(
    x_train: torch.Tensor, x_test: torch.Tensor, gap: tuple[float, float] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks over the test rows: inside the training inputs' range (the box of per-feature minima
    and maxima) but outside ``gap``, and inside ``gap`` (1-D inputs only; all False without one).

    >>> data, gap = torch.tensor([[-1.0], [1.0]]), (-0.3, 0.3)
    >>> [m.tolist() for m in uncertainty_regions(data, torch.tensor([[0.0], [0.5], [2.0]]), gap)]
    [[False, True, False], [True, False, False]]
    """
    inside = ((x_test >= x_train.min(0).values) & (x_test <= x_train.max(0).values)).all(1)
    in_gap = torch.zeros_like(inside)
    if gap is not None and x_test.shape[1] == 1:
        in_gap = inside & (x_test[:, 0] > gap[0]) & (x_test[:, 0] < gap[1])
    return inside & ~in_gap, in_gap


def _mean_std(predictive: Predictive, mask: torch.Tensor) -> float | None:
    assert predictive.variance is not None
    return float(predictive.variance[mask].sqrt().mean()) if bool(mask.any()) else None


STATE_PREFIX = "train_state."  # checkpoint tensors that are not the model's (optimizer, partial sums)
# Settings that may change between a run and its resumption without changing the training itself.
RESUMABLE_CHANGES = (
    "epochs",
    "max_steps",
    "target_accuracy",
    "eval_samples",
    "checkpoint",
    "checkpoint_every",
    "checkpoint_minutes",
    "resume",
    "threads",
    "device",
)


def model_tensors(tensors: dict[str, Any]) -> dict[str, Any]:
    """The model's tensors of a BNN checkpoint (``model.load_state_dict`` takes them), without the
    training state that :func:`train_bnn` saves beside them for ``resume``."""
    return {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}


@dataclass
class _Position:
    """Where training stands: the next batch ``batch`` of epoch ``epoch``, after ``step`` steps."""

    epoch: int = 1
    batch: int = 0
    step: int = 0
    n_losses: int = 0
    evaluated: int = 0  # epochs of the history that are complete (a partial last one is redone)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{STATE_PREFIX}optimizer.{index}.{key}"] = torch.as_tensor(value)
    return out


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Any]) -> None:
    saved = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    head = f"{STATE_PREFIX}optimizer."
    for name, value in tensors.items():
        if name.startswith(head):
            index, key = name[len(head) :].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    saved["state"] = state
    optimizer.load_state_dict(saved)


def _history_from(rows: Sequence[dict[str, Any]]) -> list[BNNEpoch]:
    names = [f.name for f in fields(BNNEpoch)]
    values: list[dict[str, Any]] = [{name: row.get(name) for name in names} for row in rows]
    return [BNNEpoch(**v) for v in values]


def _resume_state(
    config: BNNConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[_Position, list[BNNEpoch], torch.Tensor | None]:
    """Load ``config.checkpoint`` into ``model`` and ``optimizer``; return where training stood."""
    assert config.checkpoint is not None
    saved = load_checkpoint(config.checkpoint)
    state = saved.extra.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{config.checkpoint} holds no training state to resume from (not written by train_bnn)",
            hint="leave out --resume, or give the checkpoint of an interrupted run",
        )
    mine = to_jsonable(config.to_dict())
    theirs = saved.config
    changed = sorted(
        k for k in set(mine) | set(theirs) if k not in RESUMABLE_CHANGES and mine.get(k) != theirs.get(k)
    )
    if changed:
        detail = ", ".join(f"{k}: {theirs.get(k)!r} then, {mine.get(k)!r} now" for k in changed)
        raise CheckpointError(
            f"cannot resume from {config.checkpoint}: it was trained with other settings ({detail})",
            hint="resume with the settings of the interrupted run, or start afresh without --resume",
        )
    try:
        model.load_state_dict(model_tensors(saved.tensors))
        _load_optimizer(optimizer, saved.tensors)
        position = _Position(
            **{k: int(state[k]) for k in ("epoch", "batch", "step", "n_losses", "evaluated")}
        )
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{config.checkpoint} is not a resumable BNN checkpoint: {exc}") from exc
    history = _history_from(saved.extra.get("history", [])[: position.evaluated])
    return position, history, saved.tensors.get(f"{STATE_PREFIX}loss_sum")


def train_bnn(config: BNNConfig, data: ClassificationData | RegressionData | None = None) -> BNNResult:
    """Train the BNN of ``config`` in this process (one rank of the default process group, if any).

    ``data`` overrides ``config.data``: any :class:`~hai.scale.data.ClassificationData` (see
    :func:`hai.scale.data.from_datasets` for torch ``Dataset`` objects), or a
    :class:`~hai.scale.data.RegressionData` for a Bayesian regression (an MLP with one output and
    the Gaussian likelihood with the data's ``noise_std``, or ``config.noise_std``).

    >>> from hai.scale.data import synthetic_regression
    >>> config = BNNConfig(hidden=(8,), samples=2, batch_size=32, epochs=1, eval_samples=4)
    >>> result = train_bnn(config, data=synthetic_regression(64, test_noise=True))
    >>> result.task, result.steps, sorted(k for k in result.to_dict() if k.startswith("std_in"))
    ('regression', 2, ['std_in_data', 'std_in_gap'])

    The result holds the trained network (``result.model``, the Bayesian ``nn.Module``) with its
    metrics. A named data set (``config.data``) is generated and split with ``config.split_seed``,
    apart from ``config.seed`` (initialisation, batch order, weight noise), so that a sweep over
    seeds scores every run on the same test rows.

    Training runs on ``config.threads`` torch CPU threads (default 1: the fastest for networks
    this small, and unaffected by other busy processes), the previous setting restored after.
    """
    world_size, _ = world()
    config.validate(world_size)
    with torch_threads(config.threads):
        return _train_bnn(config, data)


def _train_bnn(config: BNNConfig, data: ClassificationData | RegressionData | None) -> BNNResult:
    world_size, rank = world()
    device = _device(config.device, world_size)
    dtype = DTYPES[config.dtype]
    if data is None:
        data = load_config_data(config)
    check_data(data)
    regression = isinstance(data, RegressionData)
    config.check_task("regression" if regression else "classification")
    n_outputs = 1 if isinstance(data, RegressionData) else data.n_classes
    image_shape = None if isinstance(data, RegressionData) else data.image_shape
    config.check_memory(int(data.x_train.shape[1]), n_outputs, image_shape, world_size)
    x_train, x_test = data.x_train.to(device, dtype), data.x_test.to(device, dtype)
    y_dtype = dtype if regression else None  # class indices stay integers
    y_train, y_test = data.y_train.to(device, y_dtype), data.y_test.to(device, y_dtype)
    n_train = x_train.shape[0]
    n_batches = n_train // config.batch_size
    if n_batches < 1:
        raise InputError(f"batch size {config.batch_size} is larger than the training set ({n_train})")
    model = build_model(config, data).to(device, dtype)
    augmentation = None
    if config.augment and isinstance(data, ClassificationData):
        augmentation = Augmentation(image_shape=data.image_shape)
    loss = build_loss(config, data, model)
    engine = SamplingParallel(
        model,
        loss,
        mode=config.mode,
        samples=config.samples,
        batch_size=config.batch_size,
        group_size=config.group_size,
        seed=config.seed,
        augmentation=augmentation,
        augment_per=config.augment_per,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[BNNEpoch] = []
    step_times: list[float] = []
    probs = torch.zeros(0)
    predictive: Predictive | None = None
    pos = _Position()
    saved_loss_sum: torch.Tensor | None = None
    if config.resume and config.checkpoint is not None and Path(config.checkpoint).is_file():
        pos, history, saved_loss_sum = _resume_state(config, model, optimizer)
    total_steps = config.epochs * n_batches
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    last_save = time.monotonic()

    def save(position: _Position, loss_sum: torch.Tensor, complete: bool) -> None:
        """Rank 0 writes the model, the optimizer and the position (atomically: a kill leaves the last)."""
        nonlocal last_save
        last_save = time.monotonic()
        if config.checkpoint is None or rank != 0:
            return
        tensors = {**model.state_dict(), **_optimizer_tensors(optimizer)}
        tensors[f"{STATE_PREFIX}loss_sum"] = loss_sum.detach()
        save_checkpoint(
            Path(config.checkpoint),
            tensors,
            config=config.to_dict(),
            seed=config.seed,
            extra={
                "history": [h.to_dict() for h in history],
                "world_size": world_size,
                "state": {**asdict(position), "complete": complete},
            },
        )

    def evaluate(epoch: int, step: int, train_loss: float, start: float) -> tuple[BNNEpoch, bool]:
        nonlocal probs, predictive
        if isinstance(data, RegressionData):
            outputs = engine.predict_outputs(x_test, samples=config.eval_samples, n_outputs=1, key=epoch)
            predictive = gaussian_predictive(outputs[..., 0].double(), loss.noise_std)  # learned: now
            assert predictive.variance is not None
            r = regression_metrics(
                predictive.mean, predictive.variance, y_test.double(), level=COVERAGE_LEVEL
            )
            bar.set_postfix(loss=f"{train_loss:.3f}", rmse=f"{r['rmse']:.3f}")
            row = BNNEpoch(
                epoch=epoch,
                step=step,
                train_loss=train_loss,
                test_accuracy=None,
                test_nll=r["nll"],
                test_ece=None,
                test_entropy=None,
                wall_s=time.perf_counter() - start,
                test_rmse=r["rmse"],
                test_coverage=r["coverage"],
            )
            return row, False
        probs = engine.predict_proba(x_test, samples=config.eval_samples, n_classes=data.n_classes, key=epoch)
        m = classification_metrics(probs.double(), y_test)
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{m['accuracy']:.3f}")
        row = BNNEpoch(
            epoch=epoch,
            step=step,
            train_loss=train_loss,
            test_accuracy=m["accuracy"],
            test_nll=m["nll"],
            test_ece=m["ece"],
            test_entropy=m["entropy"],
            wall_s=time.perf_counter() - start,
        )
        return row, reached_target(row)

    def reached_target(row: BNNEpoch) -> bool:
        target = config.target_accuracy
        return target is not None and row.test_accuracy is not None and row.test_accuracy >= target

    bar: Any = _NullBar()
    if rank == 0:
        bar = progress(
            total=total_steps,
            initial=min(pos.step, total_steps),
            desc=f"BNN {config.mode} ×{world_size}",
            unit="step",
        )
    step = pos.step
    position = pos
    zero = torch.zeros((), dtype=dtype, device=device)
    final_loss_sum = zero if saved_loss_sum is None else saved_loss_sum
    with measure() as cost:
        finished = bool(history) and (
            pos.epoch > config.epochs or step >= total_steps or reached_target(history[-1])
        )
        if finished and pos.batch == 0:
            # a finished run resumed: nothing to train, the last epoch evaluated again for the result
            last = history[-1]
            evaluate(last.epoch, last.step, last.train_loss, time.perf_counter())
        else:
            for epoch in range(pos.epoch, config.epochs + 1):
                start = time.perf_counter()
                order = torch.randperm(n_train, generator=RngStreams(config.seed).torch("bnn-order", epoch))
                loss_sum, n_losses, next_batch = zero.clone(), 0, 0
                if epoch == pos.epoch and pos.batch > 0:  # resumed inside this epoch
                    next_batch, n_losses = pos.batch, pos.n_losses
                    if saved_loss_sum is not None:
                        loss_sum = saved_loss_sum.to(device, dtype).clone()
                while next_batch < n_batches and step < total_steps:
                    k = next_batch
                    idx = order[k * config.batch_size : (k + 1) * config.batch_size].to(device)
                    t0 = time.perf_counter()
                    optimizer.zero_grad(set_to_none=True)
                    loss_sum += engine.forward_backward(x_train[idx], y_train[idx], step)  # no host sync
                    n_losses += 1
                    optimizer.step()
                    if device.type == "cuda":  # an honest step time (kernels run asynchronously)
                        torch.cuda.synchronize(device)
                    step_times.append(time.perf_counter() - t0)
                    step += 1
                    next_batch = k + 1
                    bar.update()
                    every = config.checkpoint_every is not None and step % config.checkpoint_every == 0
                    minutes = config.checkpoint_minutes
                    if every or (minutes is not None and time.monotonic() - last_save >= 60 * minutes):
                        here = _Position(epoch, next_batch, step, n_losses, len(history))
                        save(here, loss_sum, complete=False)
                train_loss = float(loss_sum) / n_losses if n_losses else float("nan")
                row, reached = evaluate(epoch, step, train_loss, start)
                history.append(row)
                if next_batch < n_batches:  # stopped inside the epoch (max_steps): resuming finishes it
                    position = _Position(epoch, next_batch, step, n_losses, len(history) - 1)
                    final_loss_sum = loss_sum
                else:
                    position = _Position(epoch + 1, 0, step, 0, len(history))
                    final_loss_sum = zero
                if reached or step >= total_steps:
                    break
    bar.close()
    skip = min(2, len(step_times) - 1)  # the first steps include lazy initialisation
    own = {
        "rank": rank,
        "step_time_s": statistics.median(step_times[skip:]) if step_times else float("nan"),
        "max_rss_mib": max_rss_mib(),
        **cost.to_dict(),
    }
    per_rank = _gather(own, world_size)
    if config.checkpoint is not None:
        save(position, final_loss_sum, complete=True)
    result = BNNResult(
        config=config,
        world_size=world_size,
        rank=rank,
        n_parameters=sum(p.numel() for p in model.parameters()),
        steps=step,
        history=history,
        step_time_s=max(r["step_time_s"] for r in per_rank),
        per_rank=per_rank,
        reliability=None if regression else reliability(probs.double(), y_test, n_bins=10),
        workload=engine.workload.to_dict(),
        model=model,
    )
    if isinstance(data, RegressionData):
        assert predictive is not None
        in_data, in_gap = uncertainty_regions(x_train, x_test, data.gap)
        result.task = "regression"
        result.dataset = data.name
        result.noise_std = loss.noise_std
        result.noise = "learned" if loss.log_noise_std is not None else "fixed"
        result.std_in_data = _mean_std(predictive, in_data.cpu())
        result.std_in_gap = _mean_std(predictive, in_gap.cpu())
    if is_data_file(config.data):
        result.dataset = data.name
    return result


def _noise_from_args(args: Any) -> float | str | None:
    """``noise_std`` from ``--noise fixed|learned`` and ``--noise-std``."""
    noise, std = getattr(args, "noise", None), getattr(args, "noise_std", None)
    if noise == LEARNED:
        if std is not None:
            raise InputError(
                "--noise learned trains the noise std; --noise-std fixes it", hint="give one of the two"
            )
        return LEARNED
    if noise == "fixed" and std is None and is_data_file(str(getattr(args, "data", ""))):
        raise InputError(
            "a data file has no known noise std to fix", hint="give --noise-std VALUE, or use --noise learned"
        )
    return std


def config_from_args(args: Any) -> BNNConfig:
    """A :class:`BNNConfig` from parsed ``bnn-train`` arguments."""
    hidden: Sequence[int] = args.hidden
    return BNNConfig(
        data=args.data,
        model=args.model,
        hidden=tuple(hidden),
        mode=args.mode,
        samples=args.samples,
        loss=getattr(args, "loss", "elbo"),
        group_size=args.group_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        kl_weight=args.kl_weight,
        prior_std=args.prior_std,
        posterior_std=args.posterior_std,
        estimator=args.estimator,
        augment=args.augment,
        augment_per=args.augment_per,
        eval_samples=args.eval_samples,
        seed=args.seed,
        split_seed=getattr(args, "split_seed", 0),
        device=args.device,
        dtype=args.dtype,
        target_accuracy=args.target_accuracy,
        max_steps=args.max_steps,
        checkpoint=args.checkpoint,
        noise_std=_noise_from_args(args),
        threads=getattr(args, "threads", 1) or None,
        checkpoint_every=getattr(args, "checkpoint_every", None),
        checkpoint_minutes=getattr(args, "checkpoint_minutes", None),
        resume=bool(getattr(args, "resume", False)),
        target=getattr(args, "target", None),
        task=getattr(args, "task", None),
    )


__all__ = [
    "COVERAGE_LEVEL",
    "LEARNED",
    "LOSSES",
    "MODES",
    "BNNConfig",
    "BNNEpoch",
    "BNNResult",
    "build_loss",
    "build_model",
    "check_data",
    "check_hidden",
    "check_output_file",
    "config_from_args",
    "learns_noise",
    "load_config_data",
    "model_tensors",
    "network_size",
    "step_memory_bytes",
    "train_bnn",
    "uncertainty_regions",
]

"""Train a small classifier with forward gradients (or with backprop, the anchor), scikit-learn style.

:class:`ForwardGradientClassifier` follows the estimator contract: the constructor stores the
settings, ``fit(X, y)`` trains and returns ``self``, learned state sits in attributes ending
in ``_`` (``model_`` is a plain ``nn.Module``), and ``predict``/``score`` evaluate. With
``gradient="forward"`` every step fills ``.grad`` through :class:`ForwardGradient` (no backward
pass); ``gradient="backprop"`` runs ``loss.backward()`` instead, for comparison.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hai.scale.forward_grad.aggregation import check_aggregation
from hai.scale.forward_grad.estimator import ForwardGradient
from hai.scale.forward_grad.tangents import DISTRIBUTIONS, SCOPES, check_tangent_count
from hai.scale.models import mlp, small_cnn
from hai.shared import InputError, Measurement, RngStreams, measure, progress, resolve_device
from hai.shared.checks import check_memory, positive_float, positive_int

GRADIENTS: tuple[str, ...] = ("forward", "backprop")
ARCHITECTURES: tuple[str, ...] = ("mlp", "cnn")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


@dataclass
class EpochRecord:
    """Metrics after one epoch: mean training loss over the epoch's batches and test metrics if given."""

    epoch: int
    step: int
    train_loss: float
    test_loss: float | None
    test_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(dtype) if dtype is not None else t


def mlp_size(n_inputs: int, n_outputs: int, hidden: Sequence[int]) -> int:
    """The number of weights of :func:`hai.scale.models.mlp` ``(n_inputs, n_outputs, hidden)``.

    >>> mlp_size(16, 4, (32,))
    676
    """
    widths = [int(n_inputs), *(int(h) for h in hidden), int(n_outputs)]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def check_forward_memory(
    n_weights: int, tangents: int, aggregation: str, what: str, itemsize: int = 4
) -> None:
    """Refuse (InputError) a network and tangent count whose arrays this machine cannot hold.

    The weights, their gradient and two optimiser moments (4 P values), and the k × P tangent
    matrix with as much again for the directional derivatives' work (2 k P; the projection
    draws at most P tangents).
    """
    drawn = min(tangents, n_weights) if aggregation == "projection" else tangents
    needed = itemsize * (4.0 * n_weights + 2.0 * drawn * n_weights)
    with_k = f" with {tangents} tangents" if tangents else ""
    check_memory(needed, f"{what} of a network of {n_weights:,} weights{with_k}")


class ForwardGradientClassifier:
    """A classifier (MLP or small CNN) trained by forward gradients, or by backprop for comparison.

    >>> from hai.scale.data import synthetic_classification
    >>> data = synthetic_classification(400, n_features=8, n_classes=3, seed=0)
    >>> clf = ForwardGradientClassifier(tangents=4, epochs=3, lr=0.05, seed=0)
    >>> clf = clf.fit(data.x_train, data.y_train)
    >>> 0.0 <= clf.score(data.x_test, data.y_test) <= 1.0
    True
    """

    def __init__(
        self,
        *,
        gradient: str = "forward",
        tangents: int = 4,
        aggregation: str = "projection",
        distribution: str = "normal",
        scope: str = "global",
        scale: bool = False,
        architecture: str = "mlp",
        hidden: Sequence[int] = (64,),
        image_shape: tuple[int, int] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 10,
        batch_size: int = 64,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.gradient = gradient
        self.tangents = tangents
        self.aggregation = aggregation
        self.distribution = distribution
        self.scope = scope
        self.scale = scale
        self.architecture = architecture
        self.hidden = tuple(hidden)
        self.image_shape = image_shape
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.device = device

    def _validate(self) -> None:
        def choice(value: str, allowed: tuple[str, ...], what: str) -> None:
            if value not in allowed:
                raise InputError(f"unknown {what} {value!r}", hint=f"use one of {', '.join(allowed)}")

        choice(self.gradient, GRADIENTS, "gradient")
        choice(self.architecture, ARCHITECTURES, "architecture")
        choice(self.optimizer, OPTIMIZERS, "optimizer")
        choice(self.distribution, DISTRIBUTIONS, "tangent distribution")
        choice(self.scope, SCOPES, "tangent scope")
        check_tangent_count(self.tangents)
        check_aggregation(self.aggregation)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be an integer of at least 1, got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real):
            raise InputError(f"the learning rate must be a number, got {self.lr!r}")
        positive_float("the learning rate lr", self.lr)  # finite too: inf or nan trains to NaN
        if self.architecture == "mlp":
            hidden = self.hidden
            if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or len(hidden) == 0:
                raise InputError(
                    f"the MLP needs at least one hidden layer, got {hidden!r}", hint="e.g. hidden=(64,)"
                )
            for width in hidden:
                positive_int("hidden width", width)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        if self.architecture == "mlp":
            return mlp(n_features, n_classes, self.hidden)
        shape = self.image_shape
        if shape is None:
            side = round(n_features**0.5)
            if side * side != n_features:
                raise InputError(
                    f"the CNN needs image inputs; {n_features} features are not a square image",
                    hint="pass image_shape=(height, width) or use architecture='mlp'",
                )
            shape = (side, side)
        if shape[0] * shape[1] != n_features:
            raise InputError(f"image_shape {shape} does not match {n_features} features")
        return small_cnn(n_classes, shape)

    def fit(self, X: Any, y: Any, *, validation: tuple[Any, Any] | None = None) -> ForwardGradientClassifier:
        """Train on features ``X`` (N, d) and labels ``y`` (N,); ``validation=(X_test, y_test)`` is
        evaluated after every epoch. Returns ``self``."""
        self._validate()
        device = resolve_device(self.device)
        x = _as_tensor(X, torch.float32)
        labels = _as_tensor(y).reshape(-1)
        if x.dim() != 2 or x.shape[0] != labels.shape[0] or x.shape[0] == 0:
            raise InputError(
                f"X must be (N, d) and y (N,) with N ≥ 1, got {tuple(x.shape)} and {tuple(labels.shape)}"
            )
        self.classes_ = torch.unique(labels)
        if self.classes_.numel() < 2:
            raise InputError("y has a single class; a classifier needs at least two")
        targets = torch.searchsorted(self.classes_, labels)
        streams = RngStreams(self.seed)
        if self.architecture == "mlp":  # refuse a network that cannot be held, before building it
            check_forward_memory(
                mlp_size(x.shape[1], self.classes_.numel(), self.hidden),
                self.tangents if self.gradient == "forward" else 0,
                self.aggregation,
                "forward-gradient training",
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(streams.entropy("init") & 0x7FFF_FFFF)
            model = self._build(x.shape[1], self.classes_.numel())
        if self.architecture != "mlp":
            n_weights = sum(p.numel() for p in model.parameters())
            k = self.tangents if self.gradient == "forward" else 0
            check_forward_memory(n_weights, k, self.aggregation, "forward-gradient training")
        model = model.to(device)
        loss_fn = nn.CrossEntropyLoss()
        params = list(model.parameters())
        opt: torch.optim.Optimizer = (
            torch.optim.SGD(params, lr=self.lr)
            if self.optimizer == "sgd"
            else torch.optim.Adam(params, lr=self.lr)
        )
        estimator = (
            ForwardGradient(
                model,
                loss_fn,
                self.tangents,
                self.aggregation,
                distribution=self.distribution,
                scope=self.scope,
                scale=self.scale,
                seed=streams.entropy("tangents") & 0x7FFF_FFFF,
            )
            if self.gradient == "forward"
            else None
        )
        x, targets = x.to(device), targets.to(device)
        shuffle = streams.torch("batches")
        n_batches = -(-x.shape[0] // self.batch_size)
        history: list[EpochRecord] = []
        step = 0
        self.model_ = model
        self.n_parameters_ = sum(p.numel() for p in params if p.requires_grad)
        with measure() as cost:
            bar = progress(total=self.epochs * n_batches, desc=f"{self.gradient} training", unit="step")
            try:
                for epoch in range(1, self.epochs + 1):
                    model.train()
                    order = torch.randperm(x.shape[0], generator=shuffle).to(device)
                    total = 0.0
                    for b in range(n_batches):
                        idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                        opt.zero_grad(set_to_none=True)
                        if estimator is not None:
                            loss = estimator(x[idx], targets[idx])
                        else:
                            loss = loss_fn(model(x[idx]), targets[idx])
                            loss.backward()
                        opt.step()
                        step += 1
                        total += float(loss.detach())
                        bar.update(1)
                    test_loss = test_acc = None
                    if validation is not None:
                        test_loss, test_acc = self._evaluate(*validation)
                    history.append(EpochRecord(epoch, step, total / n_batches, test_loss, test_acc))
                    bar.set_postfix(loss=f"{total / n_batches:.4f}")
            finally:
                bar.close()
        self.history_ = history
        self.n_steps_ = step
        self.fit_cost_: Measurement = cost
        self.loss_, self.train_accuracy_ = self._evaluate(X, y)
        return self

    def _check_fitted(self) -> nn.Module:
        model: nn.Module | None = getattr(self, "model_", None)
        if model is None:
            raise InputError("this classifier is not fitted yet", hint="call fit(X, y) first")
        return model

    def _logits(self, X: Any) -> torch.Tensor:
        model = self._check_fitted()
        device = next(model.parameters()).device
        x = _as_tensor(X, torch.float32).to(device)
        model.eval()
        with torch.no_grad():
            return model(x)

    def _evaluate(self, X: Any, y: Any) -> tuple[float, float]:
        logits = self._logits(X)
        labels = _as_tensor(y).reshape(-1).to(logits.device)
        classes = self.classes_.to(logits.device)
        idx = torch.searchsorted(classes, labels).clamp(max=classes.numel() - 1)
        known = classes[idx] == labels
        loss = (
            nn.functional.cross_entropy(logits[known], idx[known]) if bool(known.any()) else torch.tensor(0.0)
        )
        accuracy = (classes[logits.argmax(dim=1)] == labels).double().mean()
        return float(loss), float(accuracy)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, n_classes), columns in the order of ``classes_``."""
        return torch.softmax(self._logits(X), dim=1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels (N,)."""
        logits = self._logits(X)
        return self.classes_.to(logits.device)[logits.argmax(dim=1)].cpu().numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)``."""
        return self._evaluate(X, y)[1]

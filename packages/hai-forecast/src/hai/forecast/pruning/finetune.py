"""Fine-tuning after pruning: the estimator's own training loop on its own windows, zeros kept.

The study's finding that fine-tuning is necessary (Kiefer et al., arXiv 2412.12883) is tested
by training the pruned network again for a few epochs with the loop it was trained with
(:func:`hai.forecast.training.train_network`: Adam, validation after every epoch, the best
weights restored, the pruned network itself counted as epoch 0, so fine-tuning never ends worse
on validation than it started), on the same training and validation windows, with the scaler
fitted in ``fit`` left as it is. Unstructured masks are held by gradient hooks
(:func:`hai.forecast.pruning.unstructured.keep_masks`); a structurally pruned network is a
smaller dense one and trains as it is.
"""

from __future__ import annotations

from typing import Any

import torch

from hai.forecast.data import as_frame
from hai.forecast.neural import NeuralForecaster
from hai.forecast.pruning.unstructured import keep_masks
from hai.forecast.training import Batch, TrainingResult, evaluate_loss, train_network
from hai.shared import InputError, RngStreams, torch_threads


def training_batches(model: NeuralForecaster, y: Any) -> tuple[Batch, Batch | None]:
    """The training and validation windows ``model.fit(y)`` used (the fitted scaler applied)."""
    if getattr(model, "net_", None) is None:
        raise InputError(
            f"this {type(model).__name__} has no fitted network to fine-tune", hint="call fit(y) first"
        )
    frame = as_frame(y, fill=model.fill)  # type: ignore[arg-type]
    L = int(model.cycle_length)
    frame = frame.iloc[len(frame) % L :]
    train_o, val_o, _ = model._window_origins(len(frame))
    with torch_threads(model.threads):
        train = model._training_batch(frame, train_o)
        val = model._training_batch(frame, val_o) if len(val_o) else None
    return train, val


def validation_loss(model: NeuralForecaster, batches: tuple[Batch, Batch | None]) -> float:
    """The model's loss on the validation windows (the training windows without validation)."""
    assert model.net_ is not None
    data = batches[1] if batches[1] is not None else batches[0]
    with torch_threads(model.threads):
        return evaluate_loss(model.net_, model._loss_of, data, int(model.batch_size))


def finetune(
    model: NeuralForecaster,
    y: Any,
    epochs: int,
    *,
    masks: dict[str, torch.Tensor] | None = None,
    lr: float | None = None,
    seed: int = 0,
    batches: tuple[Batch, Batch | None] | None = None,
) -> TrainingResult:
    """Train the fitted ``model``'s (pruned) network ``epochs`` more epochs on ``y``'s windows, in place."""
    if not isinstance(epochs, int) or epochs < 0:
        raise InputError(f"fine-tuning epochs must be an integer of at least 0, got {epochs!r}")
    train, val = batches if batches is not None else training_batches(model, y)
    net = model.net_
    assert net is not None
    with torch_threads(model.threads), keep_masks(net, masks):
        return train_network(
            net,
            model._loss_of,
            train,
            val,
            epochs=epochs,
            batch_size=int(model.batch_size),
            lr=float(lr if lr is not None else model.lr),
            weight_decay=float(model.weight_decay),
            patience=model.patience,
            generator=RngStreams(seed).torch("finetune"),
        )

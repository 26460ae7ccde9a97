"""Fine-tuning after pruning recovers the loss pruning cost."""

from __future__ import annotations

from hai.forecast.pruning import finetune, prune_unstructured, training_batches
from hai.forecast.pruning.finetune import validation_loss
from hai.forecast.zoo import PatchTST
from hai.forecast.zoo.data import synthetic_multiseasonal


def test_fine_tuning_recovers_loss() -> None:
    y = synthetic_multiseasonal(24 * 30, 3, common=0.0, noise=0.2)
    est = PatchTST(horizon_cycles=1, epochs=6, d_model=16, lr=3e-3, stride=2).fit(y)
    batches = training_batches(est, y)
    dense = validation_loss(est, batches)
    result = prune_unstructured(est.net_, 0.5)
    pruned = validation_loss(est, batches)
    assert pruned > 2 * dense
    history = finetune(est, y, 4, masks=result.masks, batches=batches)
    tuned = validation_loss(est, batches)
    assert history.best_epoch > 0
    assert tuned < pruned - 0.5 * (pruned - dense)  # at least half of the damage undone

"""Metrics against closed forms, and the losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hai.forecast import (
    evaluate,
    mae,
    make_loss,
    mape,
    mase,
    mase_insample,
    nse,
    pinball_loss,
    relative_peak_error,
    rmse,
)
from hai.shared import InputError

TRUE = np.array([[1.0, 2.0, 4.0], [2.0, 2.0, 2.0]])
PRED = np.array([[2.0, 2.0, 1.0], [2.0, 3.0, 2.0]])


def test_closed_forms() -> None:
    err = PRED - TRUE  # [[1, 0, -3], [0, 1, 0]]
    assert mae(TRUE, PRED) == pytest.approx(5 / 6)
    assert rmse(TRUE, PRED) == pytest.approx(math.sqrt(11 / 6))
    assert mape(TRUE, PRED) == pytest.approx(100 * (1 + 0 + 0.75 + 0 + 0.5 + 0) / 6)
    ss_tot = float(np.sum((TRUE - TRUE.mean()) ** 2))
    assert nse(TRUE, PRED) == pytest.approx(1 - float(np.sum(err**2)) / ss_tot)
    # peaks per window: truth 4 and 2, forecast 2 and 3
    assert relative_peak_error(TRUE, PRED) == pytest.approx((2 / 4 + 1 / 2) / 2)
    ref = TRUE + 2.0
    assert mase(TRUE, PRED, ref) == pytest.approx((5 / 6) / 2.0)


def test_edge_cases() -> None:
    assert mape(np.array([0.0, 0.0]), np.array([1.0, 1.0])) != mape(
        np.array([0.0, 0.0]), np.array([1.0, 1.0])
    )
    assert math.isnan(nse(np.ones(3), np.zeros(3)))
    assert math.isnan(mase(np.ones(3), np.zeros(3), np.ones(3)))
    assert nse(TRUE, TRUE) == 1.0
    with pytest.raises(InputError, match="differ in shape"):
        mae(np.ones(3), np.ones(4))


def test_mase_insample() -> None:
    train = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 3.0])  # lag-2 differences: 0, 0, 0, 1 -> scale 0.25
    assert mase_insample(np.array([1.0]), np.array([1.5]), train, season=2) == pytest.approx(2.0)
    with pytest.raises(InputError, match="more than 2"):
        mase_insample(np.ones(1), np.ones(1), np.ones(2), season=2)


def test_evaluate_has_all_metrics() -> None:
    out = evaluate(TRUE, PRED, TRUE + 2.0)
    assert set(out) == {"mae", "rmse", "mape", "mase", "nse", "rpe"}
    assert out["mae"] == mae(TRUE, PRED)


def test_losses() -> None:
    target = torch.tensor([1.0, 3.0])
    pred = torch.tensor([[2.0], [1.0]])
    assert make_loss("l1")(pred, target).item() == pytest.approx(1.5)
    assert make_loss("mse")(pred, target).item() == pytest.approx(2.5)
    q = (0.1, 0.5, 0.9)
    preds = torch.tensor([[0.0, 1.0, 2.0]]).expand(2, 3)
    # target 1: errors 1, 0, -1 -> 0.1, 0, 0.1; target 3: errors 3, 2, 1 -> 0.3, 1.0, 0.9
    expected = (0.1 + 0.0 + 0.1 + 0.3 + 1.0 + 0.9) / 6
    assert pinball_loss(preds, target, q).item() == pytest.approx(expected)
    assert make_loss("quantile", q)(preds, target).item() == pytest.approx(expected)
    with pytest.raises(InputError, match=r"include 0\.5"):
        make_loss("quantile", (0.1, 0.9))
    with pytest.raises(InputError, match="unknown loss"):
        make_loss("huber")

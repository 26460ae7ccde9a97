"""Autoformer: the decomposition's moving average is exact; auto-correlation finds the period."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hai.forecast.zoo.autoformer import AutoCorrelation, Autoformer, SeriesDecomp, moving_average
from hai.shared import InputError


def test_moving_average_is_exact() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 30, 3))
    k = 7
    padded = np.concatenate([np.repeat(x[:, :1], 3, 1), x, np.repeat(x[:, -1:], 3, 1)], axis=1)
    expected = np.stack([padded[:, i : i + k].mean(axis=1) for i in range(30)], axis=1)
    got = moving_average(torch.as_tensor(x), k).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    seasonal, trend = SeriesDecomp(k)(torch.as_tensor(x))
    torch.testing.assert_close(seasonal + trend, torch.as_tensor(x))
    line = torch.arange(30.0).view(1, 30, 1)  # a line's interior is its own moving average
    torch.testing.assert_close(moving_average(line, k)[:, 3:-3], line[:, 3:-3])


def test_even_kernel_is_refused() -> None:
    with pytest.raises(InputError, match="odd"):
        moving_average(torch.zeros(1, 10, 1), 4)
    with pytest.raises(InputError, match="odd"):
        Autoformer(moving_avg=24).fit(torch.zeros(1))  # parameters are checked before the data


def test_autocorrelation_aggregates_at_the_period() -> None:
    L, period = 96, 24
    t = torch.arange(L, dtype=torch.float32)
    s = torch.sin(2 * torch.pi * t / period).view(1, L, 1, 1)
    out = AutoCorrelation(factor=1)(s, s, s)
    # Lags 0, 24, 48, 72 of a 24-periodic series roll it onto itself: the output is the input.
    torch.testing.assert_close(out, s, atol=1e-4, rtol=1e-4)

"""Primary cycle compression: exact round trip, shapes and the cycle-length checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hai.forecast import check_cycle_length, compress, cycle_length_for, expand, whole_cycles
from hai.shared import InputError


def test_round_trip_is_bit_exact_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24 * 9, 3)) * 1e6
    cycles = compress(x, 24)
    assert cycles.shape == (9, 24, 3)
    back = expand(cycles)
    assert back.dtype == x.dtype
    assert np.array_equal(back, x)
    # one token is one cycle: cycle i holds steps 24*i … 24*i+23
    assert np.array_equal(cycles[4, :, 1], x[96:120, 1])


def test_round_trip_is_bit_exact_torch_and_univariate() -> None:
    x = torch.randn(96, dtype=torch.float64)
    cycles = compress(x, 24)
    assert tuple(cycles.shape) == (4, 24, 1)
    assert torch.equal(expand(cycles)[:, 0], x)


def test_not_whole_cycles_is_an_error() -> None:
    with pytest.raises(InputError, match="not a whole number of cycles"):
        compress(np.zeros(50), 24)
    with pytest.raises(InputError, match="positive integer"):
        compress(np.zeros(48), 0)
    with pytest.raises(InputError, match=r"\(N, L, C\)"):
        expand(np.zeros((4, 24)))
    assert whole_cycles(50, 24) == slice(2, 50)
    assert compress(np.arange(50.0)[whole_cycles(50, 24)], 24).shape == (2, 24, 1)


def test_cycle_length_for_sampling() -> None:
    assert cycle_length_for("1h") == 24
    assert cycle_length_for("15min") == 96
    assert cycle_length_for("30min", "7D") == 336
    with pytest.raises(InputError, match="does not divide the cycle period"):
        cycle_length_for("7min")


def test_check_cycle_length() -> None:
    check_cycle_length("1h", 24)
    check_cycle_length("1h", 10, period=None)  # no calendar tie: any length
    with pytest.raises(InputError, match="use cycle_length=96"):
        check_cycle_length("15min", 24)
    with pytest.raises(InputError, match="at least 2"):
        check_cycle_length("1h", 1, period=None)

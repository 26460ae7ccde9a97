"""FEDformer: FFT mode selection, and the Fourier block's output lives on the kept frequencies."""

from __future__ import annotations

import pytest
import torch

from hai.forecast.zoo.fedformer import FourierBlock, FourierCrossAttention, frequency_modes
from hai.shared import InputError


def test_mode_selection() -> None:
    assert frequency_modes(96, 8, "low") == list(range(8))
    random = frequency_modes(96, 8, "random", seed=0)
    assert len(random) == 8
    assert random == sorted(set(random))
    assert all(0 <= m < 48 for m in random)
    assert random == frequency_modes(96, 8, "random", seed=0)
    assert random != frequency_modes(96, 8, "random", seed=1)
    assert frequency_modes(20, 64, "random") == list(range(10))  # at most L // 2 modes
    with pytest.raises(InputError, match="mode selection"):
        frequency_modes(96, 8, "high")


@pytest.mark.parametrize("select", ["low", "random"])
def test_fourier_block_keeps_only_the_selected_frequencies(select: str) -> None:
    torch.manual_seed(0)
    block = FourierBlock(8, 2, 96, modes=6, mode_select=select)
    q = torch.randn(2, 96, 2, 4)
    out = block(q, q, q)
    assert out.shape == q.shape
    spectrum = torch.fft.rfft(out, dim=1).abs().amax(dim=(0, 2, 3))
    kept = torch.zeros(49, dtype=torch.bool)
    kept[block.index] = True
    assert spectrum[~kept].max() < 1e-6 * max(spectrum[kept].max().item(), 1e-12) + 1e-9
    assert spectrum[kept].min() > 0


def test_fourier_cross_attention_shape() -> None:
    cross = FourierCrossAttention(8, 2, 72, 96, modes=6)
    q, k = torch.randn(2, 72, 2, 4), torch.randn(2, 96, 2, 4)
    assert cross(q, k, k).shape == (2, 72, 2, 4)

"""The masking schedule, antithetic times, masking rates and both losses against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hai.photonics.inverse.noise import NoiseSchedule, antithetic_t, diffusion_loss, mask_tokens
from hai.shared import InputError


def test_square_schedule_closed_forms() -> None:
    s = NoiseSchedule(eps=1e-3)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(s.beta(t), (1 - 1e-3) * t**2)
    assert torch.allclose(s.dbeta(t), 2 * (1 - 1e-3) * t)
    assert torch.allclose(s.weight(t), 2 / t)  # α'/(1-α) for the square schedule
    assert torch.allclose(NoiseSchedule(power=1.0).weight(t), 1 / t)  # MDLM/LLaDA's 1/t
    assert torch.allclose(s.time_of(s.beta(t)), t)
    with pytest.raises(InputError):
        NoiseSchedule(eps=1.5)


def test_antithetic_times_are_evenly_spaced() -> None:
    t = antithetic_t(8, 1e-3, generator=torch.Generator().manual_seed(0))
    assert t.min() >= 1e-3
    assert t.max() < 1
    gaps = torch.diff(torch.sort(t).values)
    assert torch.allclose(gaps, torch.full_like(gaps, (1 - 1e-3) / 8))


def test_mask_rate_follows_beta() -> None:
    s = NoiseSchedule()
    tokens = torch.full((4000, 21), 7)
    t = torch.full((4000,), 0.6, dtype=torch.float64)
    noisy, masked = mask_tokens(tokens, t, s, mask_id=1, generator=torch.Generator().manual_seed(1))
    assert (noisy[masked] == 1).all()
    assert (noisy[~masked] == 7).all()
    assert float(masked.double().mean()) == pytest.approx(float(s.beta(torch.tensor(0.6))), abs=0.005)


def test_reference_loss_is_ce_over_non_pad() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 5, 11, generator=g)
    tokens = torch.tensor([[4, 5, 2, 0, 0], [6, 2, 0, 0, 0], [7, 8, 9, 10, 2]])
    masked = torch.rand(3, 5, generator=g) < 0.5
    t = torch.tensor([0.2, 0.5, 0.9])
    loss = diffusion_loss(logits, tokens, masked, t, pad_id=0)
    real = tokens != 0
    expected = F.cross_entropy(logits[real], tokens[real])
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    with_pad = diffusion_loss(logits, tokens, masked, t, pad_id=0, include_pad=True)
    assert float(with_pad) == pytest.approx(
        float(F.cross_entropy(logits.reshape(-1, 11), tokens.reshape(-1)))
    )


def test_mdlm_loss_closed_form_with_uniform_logits() -> None:
    vocab = 11
    logits = torch.zeros(2, 4, vocab)  # CE = log V everywhere
    tokens = torch.tensor([[3, 4, 2, 0], [5, 6, 7, 2]])
    masked = torch.tensor([[True, False, True, True], [True, True, False, False]])
    t = torch.tensor([0.5, 0.25])
    loss = diffusion_loss(logits, tokens, masked, t, pad_id=0, loss="mdlm")
    # row 0: 2 masked non-PAD of 3 non-PAD, weight 2/0.5; row 1: 2 of 4, weight 2/0.25
    expected = 0.5 * (4 * 2 / 3 + 8 * 2 / 4) * math.log(vocab)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InputError):
        diffusion_loss(logits, tokens, masked, t, pad_id=0, loss="nelbo")

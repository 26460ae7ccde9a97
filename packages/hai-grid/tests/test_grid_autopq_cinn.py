"""AutoPQ cINN and quantiles: exact invertibility, training lowers the loss, monotone quantiles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from hai.grid.autopq.cinn import CINN, nll_loss, train_cinn
from hai.grid.autopq.quantiles import LEVELS, clip_limits, empirical_quantiles, sample_latent
from hai.shared import InputError, torch_threads

pytest.importorskip("FrEIA")


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def test_invertible_to_1e_5_after_training() -> None:
    torch.manual_seed(0)
    net = CINN(horizon=24, cond_features=12, blocks=5)
    x = torch.randn(256, 24)
    c = torch.randn(256, 12)
    train_cinn(net, x.numpy() * 0.3 + np.sin(np.arange(24)), c.numpy(), epochs=3)
    z, log_jac = net(x, c)
    assert z.shape == (256, 24)
    assert log_jac.shape == (256,)
    assert torch.max(torch.abs(net.reverse(z, c) - x)) < 1e-5
    zz = torch.randn(64, 24)
    assert torch.max(torch.abs(net(net.reverse(zz, c[:64]), c[:64])[0] - zz)) < 1e-5


def test_log_det_matches_autograd_jacobian() -> None:
    net = CINN(horizon=6, cond_features=3, blocks=3).double()
    with torch.no_grad():
        for p in net.parameters():
            if p.is_floating_point():
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(1, 6, dtype=torch.float64)
    c = torch.randn(1, 3, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: net(v, c)[0], x).reshape(6, 6)
    _, log_jac = net(x, c)
    assert log_jac.item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-10)


def test_training_lowers_the_loss() -> None:
    rng = np.random.default_rng(0)
    cond = rng.normal(size=(256, 4))
    x = cond[:, :1] + 0.1 * rng.normal(size=(256, 24))
    net = CINN(horizon=24, cond_features=4)
    before = float(
        nll_loss(*net(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(cond, dtype=torch.float32)))
    )
    losses = train_cinn(net, x, cond, epochs=10)
    assert losses[-1] < losses[0] - 0.3
    assert losses[-1] < before


def test_quantiles_are_scoreatpercentile_and_monotone() -> None:
    net = CINN(horizon=24, cond_features=5, blocks=2)
    point = torch.randn(8, 24)
    cond = torch.randn(8, 5)
    samples = sample_latent(net, point, cond, sampling_std=0.5, sample_size=100, seed=3)
    assert samples.shape == (100, 8, 24)
    q = empirical_quantiles(samples).numpy()
    ref = np.stack([scipy.stats.scoreatpercentile(samples.numpy(), 100 * a, axis=0) for a in LEVELS], axis=-1)
    np.testing.assert_allclose(q, ref, rtol=1e-5, atol=1e-5)
    assert (np.diff(q, axis=-1) >= 0).all()
    clipped = clip_limits(q - 1.0, (0.0, None))
    assert clipped.min() == 0.0
    assert (np.diff(clipped, axis=-1) >= 0).all()
    # sampling_std = 0: every sample is the point forecast mapped there and back
    same = sample_latent(net, point, cond, sampling_std=0.0, sample_size=5)
    assert torch.max(torch.abs(same - point)) < 1e-5
    again = sample_latent(net, point, cond, sampling_std=0.5, sample_size=100, seed=3)
    assert torch.equal(samples, again)


@pytest.mark.parametrize("noise", ["additive", "multiplicative"])
def test_latent_codes_of_the_samples_are_the_drawn_ones(noise: str) -> None:
    """Mapping the samples forward again gives ẑ + σε (additive) or ẑ(1 + σε) (the reference),
    with ε the seeded standard normal draws."""
    net = CINN(horizon=24, cond_features=5, blocks=3, seed=1)
    with torch.no_grad():
        for p in net.parameters():
            if p.is_floating_point():
                p.add_(0.2 * torch.randn_like(p))
    point, cond = torch.randn(4, 24), torch.randn(4, 5)
    samples = sample_latent(net, point, cond, sampling_std=0.3, sample_size=50, seed=7, noise=noise)
    z, _ = net(point, cond)
    codes, _ = net(samples.reshape(-1, 24), cond.repeat(50, 1))
    eps = torch.randn((50, 4, 24), generator=torch.Generator().manual_seed(7))
    expected = z + 0.3 * eps if noise == "additive" else z * (1 + 0.3 * eps)
    torch.testing.assert_close(codes.reshape(50, 4, 24), expected, atol=2e-5, rtol=1e-5)


def test_additive_noise_keeps_a_spread_where_the_code_is_zero() -> None:
    """The reference's multiplicative noise gives a point whose code is 0 no spread at all."""
    net = CINN(horizon=24, cond_features=5, blocks=2)
    cond = torch.randn(3, 5)
    point = net.reverse(torch.zeros(3, 24), cond).detach()
    flat = sample_latent(net, point, cond, sampling_std=1.0, sample_size=64, noise="multiplicative")
    wide = sample_latent(net, point, cond, sampling_std=1.0, sample_size=64, noise="additive")
    assert float(flat.std(dim=0).max()) < 1e-5
    assert float(wide.std(dim=0).min()) > 0.1
    with pytest.raises(InputError, match="unknown latent noise"):
        sample_latent(net, point, cond, sampling_std=1.0, noise="uniform")

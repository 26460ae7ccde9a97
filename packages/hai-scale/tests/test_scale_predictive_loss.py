"""The mean-predictive loss: closed form, Jensen's bound against the ELBO, and the engine's gradient."""

from __future__ import annotations

import pytest
import torch

from hai.scale.bnn import (
    ELBOLoss,
    PredictiveLoss,
    kl_divergence,
    log_likelihood,
    to_bayesian,
    weight_sample,
)
from hai.scale.models import small_cnn
from hai.scale.parallel import BNNConfig, SamplingParallel
from hai.shared import InputError

S, B, N, SEED, STEP = 3, 6, 40, 5, 2


def test_predictive_loss_is_the_log_of_the_mean_probability() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(S, B, 4, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 4, (B,), generator=gen)
    kl = torch.tensor(7.0, dtype=torch.float64)
    mean_p = torch.softmax(logits, dim=-1).mean(0)[torch.arange(B), y]
    expected = -torch.log(mean_p).mean() + 0.25 * 7.0 / N
    got = PredictiveLoss(N, kl_weight=0.25)(logits, y, kl)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    # Jensen: log of the mean ≥ mean of the logs, so the predictive loss never exceeds the ELBO loss
    elbo = ELBOLoss(N, kl_weight=0.25)(logits, y, kl)
    assert float(got) < float(elbo) - 1e-3
    one = logits[:1]
    torch.testing.assert_close(PredictiveLoss(N)(one, y, kl), ELBOLoss(N)(one, y, kl), atol=1e-12, rtol=0)


def test_gaussian_predictive_loss_is_a_mixture_likelihood() -> None:
    means = torch.tensor([[0.0, 1.0], [2.0, 1.0]], dtype=torch.float64)  # (S=2, B=2)
    y = torch.tensor([1.0, 1.0], dtype=torch.float64)
    ll = log_likelihood(means, y, "gaussian", noise_std=0.5)
    normal = torch.distributions.Normal(means, 0.5)
    torch.testing.assert_close(ll, normal.log_prob(y.unsqueeze(0)), atol=1e-12, rtol=0)
    loss = PredictiveLoss(10, kl_weight=0.0, likelihood="gaussian", noise_std=0.5)
    expected = -torch.log(normal.log_prob(y.unsqueeze(0)).exp().mean(0)).mean()
    torch.testing.assert_close(loss(means, y, torch.tensor(0.0)), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("estimator", ["reparam", "local"])
def test_one_process_gradient_is_autograd_of_the_closed_form(estimator: str) -> None:
    torch.manual_seed(0)
    base = small_cnn(3, (8, 8), channels=(2, 3)).double()
    model = to_bayesian(base, posterior_std=0.3, estimator=estimator)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, 64, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (B,), generator=gen)
    engine = SamplingParallel(
        model, PredictiveLoss(N, kl_weight=0.5), mode="local", samples=S, batch_size=B, seed=SEED
    )
    loss = engine.forward_backward(x, y, STEP)
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    # the closed form: −(1/B) Σ_b log[(1/S) Σ_i softmax(f(x_b; w_i))_{y_b}] + β·KL/N
    probs = []
    for i in range(S):
        with weight_sample(model, seed=SEED, step=STEP, sample=i, rows=slice(0, B), batch_size=B):
            probs.append(torch.softmax(model(x), dim=-1))
    mean = torch.stack(probs).mean(0)[torch.arange(B), y]
    expected = -torch.log(mean).mean() + 0.5 * kl_divergence(model) / N
    grads = torch.autograd.grad(expected, list(model.parameters()))
    assert abs(float(loss) - float(expected.detach())) < 1e-12
    assert len(got) == len(grads)
    for (name, g), ref in zip(got.items(), grads, strict=True):
        torch.testing.assert_close(g, ref, atol=1e-10, rtol=0, msg=name)


def test_unknown_loss_is_refused() -> None:
    with pytest.raises(InputError, match="unknown loss 'bogus'"):
        BNNConfig(loss="bogus").validate(1)
    with pytest.raises(InputError, match="unknown loss"):
        SamplingParallel(to_bayesian(torch.nn.Linear(2, 2)), torch.nn.MSELoss(), samples=1, batch_size=2)  # type: ignore[arg-type]

"""BNN building blocks: layers, estimators, KL, conversion, ELBO, predictive, calibration."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from hai.scale.bnn import (
    BayesConv2d,
    BayesLinear,
    ELBOLoss,
    GaussianPrior,
    bayesian_layers,
    classification_metrics,
    expected_calibration_error,
    gaussian_kl,
    kl_divergence,
    mutual_information,
    nll_sum,
    predict,
    predictive_entropy,
    to_bayesian,
    weight_sample,
)
from hai.shared import InputError

N_DRAWS = 1000


def test_gaussian_kl_matches_torch_distributions() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(20, generator=gen, dtype=torch.float64)
    sigma = torch.rand(20, generator=gen, dtype=torch.float64) + 0.1
    prior = GaussianPrior(mean=0.3, std=0.7)
    expected = torch_kl(Normal(mu, sigma), Normal(torch.tensor(0.3, dtype=torch.float64), 0.7)).sum()
    torch.testing.assert_close(gaussian_kl(mu, sigma, prior), expected)


def test_layer_kl_counts_weights_and_biases() -> None:
    layer = BayesLinear(3, 2, prior=GaussianPrior(std=0.5), posterior_std=0.1).double()
    expected = torch_kl(Normal(layer.weight_mu, layer.weight_sigma), Normal(0.0, 0.5)).sum()
    expected = expected + torch_kl(Normal(layer.bias_mu, layer.bias_sigma), Normal(0.0, 0.5)).sum()  # type: ignore[arg-type]
    torch.testing.assert_close(layer.kl(), expected)
    torch.testing.assert_close(layer.weight_sigma, torch.full((2, 3), 0.1, dtype=torch.float64))
    net = nn.Sequential(layer, nn.ReLU(), BayesLinear(2, 2).double())
    torch.testing.assert_close(kl_divergence(net), layer.kl() + net[2].kl())


def test_to_bayesian_keeps_weights_as_posterior_means() -> None:
    torch.manual_seed(0)
    base = nn.Sequential(
        nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)
    ).double()
    bnn = to_bayesian(base, posterior_std=1e-9)
    assert [type(m).__name__ for m in bnn] == ["Unflatten", "BayesConv2d", "ReLU", "Flatten", "BayesLinear"]
    assert torch.equal(bnn[1].weight_mu, base[1].weight)
    assert torch.equal(bnn[4].bias_mu, base[4].bias)
    x = torch.randn(5, 36, dtype=torch.float64)
    torch.testing.assert_close(bnn(x), base(x), atol=1e-6, rtol=0)
    assert isinstance(base[1], nn.Conv2d)  # the original is untouched
    with pytest.raises(InputError, match=r"no nn\.Linear or nn\.Conv2d"):
        to_bayesian(nn.ReLU())
    with pytest.raises(InputError, match="unknown estimator"):
        to_bayesian(base, estimator="mc-dropout")
    with pytest.raises(InputError, match="positive std"):
        GaussianPrior(std=0.0)
    single = to_bayesian(nn.Linear(2, 2))
    assert isinstance(single, BayesLinear)


def test_reparam_conv_uses_the_sampled_weight() -> None:
    conv = BayesConv2d(2, 3, 3, padding=1, posterior_std=0.2).double()
    x = torch.randn(4, 2, 5, 5, dtype=torch.float64)
    with weight_sample(conv, seed=1, step=2, sample=3):
        w, b = conv.sample_weight()
        out = conv(x)
    torch.testing.assert_close(out, F.conv2d(x, w, b, padding=1))


@pytest.mark.parametrize("layer_kind", ["linear", "conv"])
@pytest.mark.parametrize("estimator", ["local", "flipout"])
def test_estimators_have_the_reparam_marginals(layer_kind: str, estimator: str) -> None:
    """Each output's mean and variance over weight samples equal those of plain reparameterisation."""
    torch.manual_seed(1)
    bias = estimator == "local"  # flipout shares the bias noise across the batch (as bayesian-torch does)
    if layer_kind == "linear":
        ref = BayesLinear(3, 2, bias, posterior_std=0.3).double()
        x = torch.randn(1, 3, dtype=torch.float64).expand(N_DRAWS, 3)
    else:
        ref = BayesConv2d(1, 2, 2, bias=bias, posterior_std=0.3).float()
        x = torch.randn(1, 1, 3, 3).expand(N_DRAWS, 1, 3, 3)
    other = copy.deepcopy(ref)
    other.estimator = estimator
    with torch.no_grad():
        torch.manual_seed(2)
        # local: every row has its own noise, N_DRAWS draws at once; flipout's rows share one
        # perturbation per pass, so one pass per draw
        one_pass = estimator == "local"
        outs = other(x) if one_pass else torch.stack([other(x[:1])[0] for _ in range(N_DRAWS)])
        ref_out = torch.stack([ref(x[:1])[0] for _ in range(N_DRAWS)])
    mean_exact = ref._op(x[:1], ref.weight_mu, ref.bias_mu)[0].detach()
    bias_var = None if ref.bias_sigma is None else ref.bias_sigma**2
    var_exact = ref._op(x[:1] ** 2, ref.weight_sigma**2, bias_var)[0].detach()
    for sample in (outs, ref_out):
        assert torch.allclose(
            sample.mean(0), mean_exact, atol=float(4 * var_exact.max().sqrt() / math.sqrt(N_DRAWS))
        )
        assert torch.allclose(sample.var(0), var_exact, rtol=0.15)


@pytest.mark.parametrize("estimator", ["reparam", "local", "flipout"])
def test_keyed_noise_is_reproducible_and_row_sliceable(estimator: str) -> None:
    net = to_bayesian(
        nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), estimator=estimator
    ).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    with weight_sample(net, seed=0, step=1, sample=2):
        full = net(x)
    with weight_sample(net, seed=0, step=1, sample=2, rows=slice(2, 5), batch_size=6):
        part = net(x[2:5])
    with weight_sample(net, seed=0, step=1, sample=3):
        other = net(x)
    torch.testing.assert_close(part, full[2:5], atol=1e-14, rtol=0)
    assert not torch.allclose(full, other)
    assert all(layer.noise is None for layer in bayesian_layers(net))  # restored
    with (
        pytest.raises(InputError, match="both rows and batch_size"),
        weight_sample(net, seed=0, step=0, sample=0, rows=slice(0, 1)),
    ):
        pass


def test_gradients_reach_means_and_scales() -> None:
    net = to_bayesian(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), estimator="flipout")
    loss = ELBOLoss(50)(net(torch.randn(5, 3)).unsqueeze(0), torch.randint(0, 2, (5,)), kl_divergence(net))
    loss.backward()
    for layer in bayesian_layers(net):
        assert layer.weight_mu.grad is not None
        assert layer.weight_rho.grad is not None
        assert layer.weight_rho.grad.abs().sum() > 0


def test_elbo_terms() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (5,), generator=gen)
    manual = sum(F.cross_entropy(logits[i], y, reduction="sum") for i in range(3))
    torch.testing.assert_close(nll_sum(logits, y), manual)
    kl = torch.tensor(12.0, dtype=torch.float64)
    loss = ELBOLoss(200, kl_weight=0.5)(logits, y, kl)
    torch.testing.assert_close(loss, manual / 15 + 0.5 * 12.0 / 200)
    means = torch.randn(3, 5, dtype=torch.float64)
    target = torch.randn(5, dtype=torch.float64)
    expected = -Normal(means, 0.3).log_prob(target).sum()
    torch.testing.assert_close(nll_sum(means, target, "gaussian", noise_std=0.3), expected)
    with pytest.raises(InputError, match="unknown likelihood"):
        nll_sum(means, target, "poisson")
    with pytest.raises(InputError, match="dataset_size"):
        ELBOLoss(0)


def test_predictive_entropy_mutual_information_and_ece() -> None:
    uniform = torch.full((2, 4), 0.25)
    torch.testing.assert_close(predictive_entropy(uniform), torch.full((2,), math.log(4)))
    same = torch.softmax(torch.randn(1, 3, 5), -1).expand(4, 3, 5)
    torch.testing.assert_close(mutual_information(same), torch.zeros(3), atol=1e-6, rtol=0)
    disagree = torch.eye(3)[:, None, :].expand(3, 2, 3)  # each sample certain of another class
    torch.testing.assert_close(mutual_information(disagree), torch.full((2,), math.log(3)))
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 0, 0])
    # bin 0.9: acc 0.5, conf 0.9; bin 0.6: acc 1.0, conf 0.6 → ECE = ½·0.4 + ½·0.4
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.4)
    m = classification_metrics(probs.double(), labels)
    assert m["accuracy"] == 0.75
    assert m["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.1) + 2 * math.log(0.6)) / 4)


def test_predict_classification_and_regression() -> None:
    net = to_bayesian(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)), posterior_std=0.2)
    x = torch.randn(7, 2)
    p = predict(net, x, samples=6, seed=1)
    assert p.samples.shape == (6, 7, 3)
    torch.testing.assert_close(p.mean.sum(1), torch.ones(7))
    torch.testing.assert_close(p.mean, predict(net, x, samples=6, seed=1).mean)
    assert p.entropy().shape == (7,)
    assert (p.mutual_information() >= -1e-6).all()
    reg = to_bayesian(nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1)), posterior_std=0.2)
    r = predict(reg, torch.randn(9, 1), samples=5, likelihood="gaussian", noise_std=0.1)
    assert r.mean.shape == (9,)
    assert r.variance is not None
    assert (r.variance >= 0.01).all()
    torch.testing.assert_close(r.variance, r.samples.var(0, unbiased=False) + 0.01)
    with pytest.raises(InputError, match="at least 1"):
        predict(net, x, samples=0)

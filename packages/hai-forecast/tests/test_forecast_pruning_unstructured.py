"""Unstructured magnitude pruning: exactly the requested fraction zeroed, masks kept in training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hai.forecast import StepTransformer
from hai.forecast.pruning import (
    finetune,
    make_permanent,
    prunable_parameters,
    prune_unstructured,
    weight_sparsity,
)
from hai.forecast.zoo import PatchTST
from hai.forecast.zoo.data import synthetic_multiseasonal
from hai.forecast.zoo.fedformer import FEDformer
from hai.forecast.zoo.patchtst import PatchTSTNet
from hai.shared import InputError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return PatchTSTNet(3, 96, 24, d_model=8, n_heads=2, e_layers=2, d_ff=16)


def _counts(net: nn.Module) -> list[tuple[int, int]]:
    return [(int((getattr(m, n) == 0).sum()), getattr(m, n).numel()) for _, m, n in prunable_parameters(net)]


@pytest.mark.parametrize("s", [0.0, 0.3, 0.5, 0.9])
def test_global_pruning_zeroes_exactly_s(s: float) -> None:
    net = _net()
    result = prune_unstructured(net, s, scope="global")
    zero, total = map(sum, zip(*_counts(net), strict=True))
    assert zero == round(s * total) == result.n_zero
    assert result.measured_sparsity == pytest.approx(s, abs=1 / total)
    assert not any(hasattr(m, "weight_orig") for m in net.modules())  # permanent by default


def test_layer_pruning_zeroes_s_of_every_tensor() -> None:
    net = _net()
    prune_unstructured(net, 0.4, scope="layer")
    for zero, n in _counts(net):
        assert zero == round(0.4 * n)


def test_global_pruning_removes_the_smallest_magnitudes() -> None:
    net = _net()
    before = torch.cat([getattr(m, n).detach().abs().reshape(-1) for _, m, n in prunable_parameters(net)])
    prune_unstructured(net, 0.5)
    after = torch.cat([getattr(m, n).detach().reshape(-1) for _, m, n in prunable_parameters(net)])
    assert before[after == 0].max() <= before[after != 0].min()


def test_not_permanent_until_asked() -> None:
    net = _net()
    result = prune_unstructured(net, 0.5, permanent=False)
    assert any(hasattr(m, "weight_orig") for m in net.modules())
    make_permanent(net)
    assert not any(hasattr(m, "weight_orig") for m in net.modules())
    assert weight_sparsity(net) == pytest.approx(result.measured_sparsity)


def test_fourier_weights_and_attention_projections_are_prunable() -> None:
    y = synthetic_multiseasonal(24 * 20, 2)
    fed = FEDformer(epochs=0, d_model=8, nhead=2, horizon_cycles=1).fit(y)
    names = {n for _, _, n in prunable_parameters(fed.net_)}
    assert {"weight", "weight_real", "weight_imag"} <= names
    step = StepTransformer(epochs=0, d_model=8, nhead=2, history_cycles=2).fit(y)
    assert "in_proj_weight" in {n for _, _, n in prunable_parameters(step.net_)}


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "half"])
def test_bad_sparsity(bad: object) -> None:
    with pytest.raises(InputError, match=r"sparsity must be"):
        prune_unstructured(_net(), bad)  # type: ignore[arg-type]


def test_unknown_scope() -> None:
    with pytest.raises(InputError, match="scope"):
        prune_unstructured(_net(), 0.5, scope="row")


@pytest.mark.parametrize("model", ["patchtst", "transformer"])
def test_fine_tuning_keeps_the_zeros(model: str) -> None:
    y = synthetic_multiseasonal(24 * 20, 2)
    if model == "patchtst":
        est = PatchTST(horizon_cycles=1, epochs=1, d_model=8, stride=8).fit(y)
    else:  # its transformer calls F.linear on the weights directly: prune's hooks would not run
        est = StepTransformer(history_cycles=2, epochs=1, d_model=8, nhead=2, dim_feedforward=16).fit(y)
    result = prune_unstructured(est.net_, 0.6)
    zeros_before = [
        w == 0 for _, m, n in prunable_parameters(est.net_) for w in [getattr(m, n).detach().clone()]
    ]
    weights_before = [getattr(m, n).detach().clone() for _, m, n in prunable_parameters(est.net_)]
    history = finetune(est, y, 2, masks=result.masks, lr=1e-2)
    assert history.history[-1].epoch == 2
    after = [getattr(m, n).detach() for _, m, n in prunable_parameters(est.net_)]
    for zero, w in zip(zeros_before, after, strict=True):
        assert bool((w[zero] == 0).all())
    assert weight_sparsity(est.net_) == pytest.approx(result.measured_sparsity)
    if history.best_epoch > 0:  # something was learned: the kept weights moved
        assert any(not torch.equal(a, b) for a, b in zip(after, weights_before, strict=True))

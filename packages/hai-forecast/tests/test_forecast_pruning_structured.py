"""Structured pruning: parameters and FLOPs fall as computed analytically, output shapes kept."""

from __future__ import annotations

import pytest
import torch

from hai.forecast import ReCycle, StepTransformer
from hai.forecast.pruning import StructuredPruningError, count_flops, prune_structured, supported_targets
from hai.forecast.zoo import ZOO, make_forecaster
from hai.forecast.zoo.data import synthetic_multiseasonal
from hai.forecast.zoo.layers import AttentionLayer, EncoderLayer, FullAttention
from hai.shared import InputError


def _n(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_parameters_and_flops_fall_as_computed() -> None:
    torch.manual_seed(0)
    D, H, E, F, B, T = 8, 4, 2, 16, 2, 10
    layer = EncoderLayer(AttentionLayer(FullAttention(), D, H), D, F)
    x = torch.randn(B, T, D)
    p0, (f0, _) = _n(layer), count_flops(layer, lambda: layer(x))
    result = prune_structured(layer, 0.5)
    assert result.units == {"attention:heads": (4, 2), "ffn:ffn": (16, 8)}
    kh, kf = 2, 8
    assert p0 - _n(layer) == (4 * kh * E * D + 3 * kh * E) + kf * (2 * D + 1)
    f1, _ = count_flops(layer, lambda: layer(x))
    ffn = 4 * B * T * D * kf  # two linear layers, 2 FLOPs per MAC
    projections = 8 * B * T * D * kh * E  # query, key, value, output
    attention = 4 * B * kh * T * T * E  # scores and weighted values
    assert f0 - f1 == ffn + projections + attention
    assert layer(x).shape == (B, T, D)


def test_the_most_important_heads_are_kept() -> None:
    torch.manual_seed(0)
    att = AttentionLayer(FullAttention(), 8, 4)
    with torch.no_grad():
        att.query.weight[2:4] *= 100.0  # head 1
    prune_structured(torch.nn.Sequential(att), 0.75, targets=("heads",))
    assert att.n_heads == 1
    assert att.query.weight.abs().max() > 10


@pytest.mark.parametrize("name", ["informer", "autoformer", "fedformer", "crossformer", "patchtst"])
def test_every_zoo_model_prunes_and_keeps_its_output_shape(name: str) -> None:
    y = synthetic_multiseasonal(24 * 20, 3)
    est = make_forecaster(name, small=True, epochs=0, horizon_cycles=1).fit(y)
    assert supported_targets(est.net_) == ("heads", "ffn")
    x = torch.randn(2, 96, 3)
    before, (flops, _) = _n(est.net_), count_flops(est.net_, lambda: est.net_(x))
    prune_structured(est.net_, 0.5)
    assert est.net_(x).shape == (2, 24, 3)
    assert _n(est.net_) < before
    assert count_flops(est.net_, lambda: est.net_(x))[0] < flops
    assert est.predict(y).shape == (24, 3)


@pytest.mark.parametrize("cls", [StepTransformer, ReCycle])
def test_multihead_attention_heads_are_refused_by_name(cls: type) -> None:
    y = synthetic_multiseasonal(24 * 20, 1)
    est = cls(epochs=0, history_cycles=2, d_model=8, nhead=2, dim_feedforward=16).fit(y)
    assert supported_targets(est.net_) == ("ffn",)
    with pytest.raises(StructuredPruningError, match=r"'transformer\.encoder\.layers\.0\.self_attn'"):
        prune_structured(est.net_, 0.5, targets=("heads",))
    before = _n(est.net_)
    result = prune_structured(est.net_, 0.5, targets=("ffn",))
    n_layers = len(result.units)
    assert before - _n(est.net_) == n_layers * 8 * (2 * 8 + 1)
    assert est.predict(y).shape == (24, 1)


def test_zoo_lists_all_models_and_bad_targets() -> None:
    assert len(ZOO) == 7
    layer = EncoderLayer(AttentionLayer(FullAttention(), 8, 2), 8, 16)
    with pytest.raises(InputError, match="unknown structured pruning target"):
        prune_structured(layer, 0.5, targets=("embedding",))
    with pytest.raises(StructuredPruningError, match="has no heads"):
        prune_structured(torch.nn.Linear(3, 3), 0.5, targets=("heads",))

"""Informer: ProbSparse attention with all queries active is full attention; distilling halves."""

from __future__ import annotations

import math

import torch

from hai.forecast.zoo.informer import DistilLayer, InformerNet, ProbAttention
from hai.forecast.zoo.layers import FullAttention


def test_probsparse_with_all_queries_equals_full_attention() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 20, 4, 8).unbind(0)
    prob = ProbAttention(factor=100).eval()
    assert prob.n_active(20, 20) == (20, 20)
    torch.testing.assert_close(prob(q, k, v), FullAttention()(q, k, v), atol=1e-5, rtol=1e-5)


def test_probsparse_inactive_queries_get_the_mean_value() -> None:
    torch.manual_seed(1)
    L = 96
    q, k, v = torch.randn(3, 2, L, 2, 4).unbind(0)
    prob = ProbAttention(factor=1).eval()
    sample_k, top_u = prob.n_active(L, L)
    assert (sample_k, top_u) == (math.ceil(math.log(L)), math.ceil(math.log(L)))
    out = prob(q, k, v)
    full = FullAttention()(q, k, v)
    mean = v.mean(dim=1, keepdim=True).expand_as(out)
    is_mean = torch.isclose(out, mean, atol=1e-6).all(dim=-1)  # (B, L, H)
    is_full = torch.isclose(out, full, atol=1e-5).all(dim=-1)
    assert (is_mean | is_full).all()
    assert (is_full & ~is_mean).sum(dim=1).eq(top_u).all()  # exactly u active queries per head
    torch.testing.assert_close(prob(q, k, v), out)  # eval mode: the same sample every call


def test_distilling_halves_the_sequence_and_the_net_forecasts_the_horizon() -> None:
    x = torch.randn(2, 96, 8)
    assert DistilLayer(8)(x).shape == (2, 48, 8)
    net = InformerNet(3, 96, 24, label_len=48, d_model=8, n_heads=2, e_layers=3, d_ff=16)
    assert len(net.distil or []) == 2
    assert net(torch.randn(2, 96, 3)).shape == (2, 24, 3)

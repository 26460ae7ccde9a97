"""Measured costs: FLOPs of known operations, sparse size, latency."""

from __future__ import annotations

import torch
from torch import nn

from hai.forecast.pruning import count_flops, measure_costs, prune_unstructured, state_dict_bytes
from hai.forecast.zoo.fedformer import FourierBlock
from hai.forecast.zoo.layers import FullAttention


def test_flops_of_linear_attention_and_fft() -> None:
    lin = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    assert count_flops(lin, lambda: lin(x)) == (2 * 5 * 4 * 3, 0)
    att = FullAttention()
    q = torch.randn(1, 10, 2, 4)
    assert count_flops(att, lambda: att(q, q, q))[0] == 4 * 1 * 2 * 10 * 10 * 4
    block = FourierBlock(8, 2, 32, modes=4)
    q = torch.randn(1, 32, 2, 4)
    total, fft = count_flops(block, lambda: block(q, q, q))
    assert 0 < fft < total


def test_sparse_size_and_costs() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 8))
    dense = state_dict_bytes(net)
    assert state_dict_bytes(net, sparse=True) == dense  # dense weights stay dense
    prune_unstructured(net, 0.9)
    assert state_dict_bytes(net, sparse=True) < 0.5 * dense
    x = torch.randn(4, 128)
    costs = measure_costs(net, lambda: net(x), 4, warmup=1, repeats=3)
    assert costs.parameters == 128 * 128 + 128 + 128 * 8 + 8
    assert costs.nonzero_parameters < 0.2 * costs.parameters
    assert costs.flops == 2 * 4 * (128 * 128 + 128 * 8)
    assert costs.macs == costs.flops // 2
    assert costs.latency_min_s <= costs.latency_s
    assert costs.batch_size == 4

"""Crossformer: dimension-segment-wise embedding shapes, two-stage attention keeps them."""

from __future__ import annotations

import torch

from hai.forecast.zoo.crossformer import CrossformerNet, DSWEmbedding, TwoStageAttention


def test_segment_embedding_shapes_and_padding() -> None:
    emb = DSWEmbedding(seg_len=12, d_model=8)
    assert emb(torch.randn(2, 96, 5)).shape == (2, 5, 8, 8)
    assert emb.n_segments(100) == 9
    x = torch.randn(2, 100, 5)
    assert emb(x).shape == (2, 5, 9, 8)
    # The front padding repeats the first value: the first segment is 8 copies then 4 values.
    padded = torch.cat([x[:, :1].expand(-1, 8, -1), x], dim=1)
    seg0 = padded[:, :12].transpose(1, 2)
    torch.testing.assert_close(emb(x)[:, :, 0], emb.linear(seg0))


def test_two_stage_attention_and_net_shapes() -> None:
    tsa = TwoStageAttention(n_segments=8, factor=3, d_model=8, n_heads=2, d_ff=16, dropout=0.0)
    assert tsa(torch.randn(2, 5, 8, 8)).shape == (2, 5, 8, 8)
    net = CrossformerNet(5, 96, 24, seg_len=12, d_model=8, n_heads=2, e_layers=1, d_ff=16)
    assert net(torch.randn(2, 96, 5)).shape == (2, 24, 5)

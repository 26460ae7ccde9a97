"""PatchTST: patching shapes and contents, channel independence, instance normalisation."""

from __future__ import annotations

import torch

from hai.forecast.zoo.patchtst import PatchEmbedding, PatchTSTNet, n_patches


def test_patching_shapes_and_contents() -> None:
    emb = PatchEmbedding(16, 8, d_model=8)
    x = torch.arange(96.0).view(1, 96, 1).repeat(2, 1, 3)
    p = emb.patches(x)
    assert p.shape == (2, 3, n_patches(96, 16, 8), 16) == (2, 3, 12, 16)
    torch.testing.assert_close(p[0, 0, 1], torch.arange(8.0, 24.0))
    torch.testing.assert_close(p[0, 0, -1], torch.cat([torch.arange(88.0, 96.0), torch.full((8,), 95.0)]))
    assert emb(x).shape == (6, 12, 8)


def test_channels_are_independent_and_normalised() -> None:
    torch.manual_seed(0)
    net = PatchTSTNet(3, 96, 24, d_model=8, n_heads=2, e_layers=1, d_ff=16).eval()
    x = torch.randn(2, 96, 3)
    out = net(x)
    assert out.shape == (2, 24, 3)
    y = x.clone()
    y[..., 1] = y[..., 1] * 5.0 + 3.0  # rescale one column: only its forecast moves, and affinely
    out2 = net(y)
    torch.testing.assert_close(out2[..., 0], out[..., 0])
    torch.testing.assert_close(out2[..., 1], out[..., 1] * 5.0 + 3.0, atol=1e-4, rtol=1e-4)

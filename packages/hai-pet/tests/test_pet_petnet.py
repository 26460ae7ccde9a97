"""PETNet: LIF layers, loss sanity, a short training that lowers the loss, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hai.pet import PETNet, petnet_loss
from hai.pet.petnet import _nearest_target_distance, opposite_fan
from hai.shared import InputError


def toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8 crystals on a ring, 24 steps: a pair on facing crystals (i, i+4) is the target, a lone
    single elsewhere is not."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 24, 8), dtype=np.float32)
    y = np.zeros_like(x)
    for k in range(n):
        i, t = rng.integers(0, 8), rng.integers(0, 16)
        x[k, t, i] = x[k, t + 1, (i + 4) % 8] = 1
        y[k, t, i] = y[k, t + 1, (i + 4) % 8] = 1
        lone = (i + 2) % 8
        x[k, rng.integers(0, 24), lone] = 1
    return x, y


def test_loss_is_zero_on_the_label_and_grows_with_shift_and_drops() -> None:
    _, y = toy(4, 0)
    target = torch.from_numpy(y)
    assert float(petnet_loss(target, target)) == 0.0
    shifted = [
        float(petnet_loss(torch.roll(target, s, dims=1), target, timing_weight=1.0)) for s in (1, 2, 4)
    ]
    assert 0 < shifted[0] < shifted[1] < shifted[2]
    dropped = target.clone()
    dropped[0] = 0
    dropped_more = dropped.clone()
    dropped_more[1] = 0
    assert 0 < float(petnet_loss(dropped, target)) < float(petnet_loss(dropped_more, target))
    # distance to the nearest target spike on the same channel, capped at T
    d = _nearest_target_distance(torch.tensor([[[0.0], [0.0], [1.0], [0.0], [0.0], [0.0], [1.0]]]))
    assert d[0, :, 0].tolist() == [2, 1, 0, 1, 2, 1, 0]
    assert float(_nearest_target_distance(torch.zeros(1, 5, 1)).max()) == 5.0
    with pytest.raises(InputError, match="differ in shape"):
        petnet_loss(target[:, :3], target)


def test_opposite_fan_links_facing_crystals() -> None:
    g = opposite_fan(16, 8, 1)  # two rings of 8
    assert g.shape == (16, 16)
    assert g[0].nonzero().ravel().tolist() == [3, 4, 5, 11, 12, 13]
    assert torch.equal(g, g.T)


def test_fit_lowers_the_loss_predicts_spikes_and_checkpoints(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    x, y = toy(48, 1)
    net = PETNet(
        8,
        hidden=16,
        geometry=True,
        crystals_per_ring=8,
        fan=0,
        lr=1e-2,
        pos_weight=1.0,  # the unweighted count loss of the paper
        epochs=6,
        patience=6,
        batch_size=8,
        seed=3,
        device="cpu",
    )
    assert net.fit(x, y) is net
    history = net.history_
    assert len(history) == 6
    assert history[-1].train_loss < history[0].train_loss
    assert isinstance(net.module_, torch.nn.Module)
    pred = net.predict(x)
    assert pred.shape == x.shape
    assert pred.dtype == np.uint8
    assert set(np.unique(pred)) <= {0, 1}
    # learnable decay: beta moved away from its start value
    betas = [float(lif.beta.detach()) for lif in net.module_.lifs]
    assert any(abs(b - 0.95) > 1e-6 for b in betas)
    path = net.save(tmp_path / "petnet.safetensors")
    again = PETNet.load(path)
    assert again.get_params()["hidden"] == 16
    assert len(again.history_) == 6
    assert np.array_equal(again.predict(x), pred)
    # same seed, same training
    twin = PETNet(**{**net.get_params()}).fit(x, y)
    assert np.array_equal(twin.predict(x), pred)


def test_bad_input() -> None:
    net = PETNet(8, epochs=1)
    with pytest.raises(InputError, match="not fitted"):
        net.predict(np.zeros((1, 4, 8)))
    with pytest.raises(InputError, match=r"shape \[samples, steps, 8\]"):
        net.fit(np.zeros((4, 5, 7)), np.zeros((4, 5, 7)))
    with pytest.raises(InputError, match="at least 2 samples"):
        net.fit(np.zeros((1, 5, 8)), np.zeros((1, 5, 8)))


def test_init_scale_multiplies_the_default_weights() -> None:
    a = PETNet(8, hidden=4, seed=1)._build()
    b = PETNet(8, hidden=4, seed=1, init_scale=3.0)._build()
    for fa, fb in zip(a.fcs, b.fcs, strict=True):
        assert torch.allclose(fb.weight, 3 * fa.weight)
        assert torch.equal(fb.bias, fa.bias)

"""The geometry-local PETNet: balanced count loss, sparse inference, learning a coincidence task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hai.pet import PETNet, encode_spikes, pair_metrics, petnet_loss, spikes_to_pairs, spikes_to_singles
from hai.pet.petnet import LocalPETNetModule, balanced_pos_weight, opposite_fan
from hai.pet.sorter import coincidence_tree
from hai.pet.tables import GateTree
from hai.shared import InputError

RING = 16


def ring_singles(n_windows: int, seed: int) -> GateTree:
    """Singles on a ring of 16 crystals, one 16 ns window after another. Each window holds a
    lone single, a true pair on facing crystals (i, i + 8) and, later, a decoy: two unrelated
    singles (two events) with the same time structure on crystals that do not face (j, j + 3).
    Without geometry the true pair and the decoy cannot be told apart, so no geometry-blind
    rule exceeds pair precision 1/2, i.e. F1 2/3; silence scores 0."""
    rng = np.random.default_rng(seed)
    times, crystals, events = [], [], []
    ev = 0
    for k in range(n_windows):
        base = 16.0 * k
        i, j = rng.integers(RING, size=2)
        t_pair, t_decoy = base + rng.uniform(1.5, 5.0), base + rng.uniform(9.0, 12.5)
        dt_pair, dt_decoy = rng.uniform(0, 0.6, size=2)
        times += [base + 0.1 * (k > 0), t_pair, t_pair + dt_pair, t_decoy, t_decoy + dt_decoy]
        crystals += [(i + 4) % RING, i, (i + RING // 2) % RING, j, (j + 3) % RING]
        events += [ev, ev + 1, ev + 1, ev + 2, ev + 3]
        ev += 4
    n = len(times)
    return GateTree(
        "Singles",
        {
            "eventID": np.array(events),
            "time": np.array(times) * 1e-9,
            "rsectorID": np.array(crystals),
            "crystalID": np.zeros(n, dtype=np.int64),
            "comptonPhantom": np.zeros(n, dtype=np.int64),
        },
    )


ENC = {"n_crystals": RING, "crystals_per_sector": 1, "crystals_per_ring": RING, "bin_ns": 0.5, "n_steps": 32}


def test_balanced_pos_weight_makes_silence_cost_as_much_as_firing_on_everything() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((6, 10, 5), dtype=np.float32)
    y = np.zeros_like(x)
    for s in range(6):  # one input spike per (sample, crystal) on 3 crystals, targets on 1 or 2
        for c in rng.choice(5, size=3, replace=False):
            x[s, rng.integers(10), c] = 1
        hits = np.argwhere(x[s])
        for t, c in hits[: 1 + s % 2]:
            y[s, t, c] = 1
    n_in, n_pos = x.sum(), y.sum()
    w = balanced_pos_weight(x, y)
    assert w == pytest.approx((n_in - n_pos) / n_pos)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    silent = float(petnet_loss(torch.zeros_like(yt), yt, timing_weight=0.0, pos_weight=w))
    everything = float(petnet_loss(xt, yt, timing_weight=0.0, pos_weight=w))
    assert silent == pytest.approx(everything)
    # closed form: mean over (sample, crystal) of w·(count − target)² on target crystals, 1·(…)² elsewhere
    assert silent == pytest.approx(w * n_pos / (6 * 5))
    assert balanced_pos_weight(x, np.zeros_like(y)) == 1.0
    with pytest.raises(InputError, match="pos_weight"):
        PETNet(5, pos_weight="rare", epochs=1).fit(x, y)


def test_fast_inference_scan_equals_snntorch_leaky() -> None:
    torch.manual_seed(0)
    module = LocalPETNetModule(opposite_fan(8, 8, 1), hidden=6, n_layers=2, beta=0.8, init_scale=3.0)
    f = (torch.rand(40, 24, 3) < 0.3).float() * torch.tensor([1.0, 2.0, 3.0])
    with torch.no_grad():
        slow_spk, slow_mem = module.run_rows(f)
        fast_spk, fast_mem = module.run_rows(f, fast=True)
    assert 0 < float(slow_spk.sum()) < slow_spk.numel()
    assert torch.equal(fast_spk, slow_spk)
    assert torch.allclose(fast_mem, slow_mem)


@pytest.mark.parametrize("local", [True, False])
def test_predict_spikes_selects_the_singles_dense_predict_selects(local: bool) -> None:
    singles = ring_singles(30, 1)
    enc = encode_spikes(singles, **ENC)  # type: ignore[arg-type]
    used = enc.nonempty_samples
    net = PETNet(
        RING,
        hidden=8,
        local=local,
        crystals_per_ring=RING,
        fan=1,
        init_scale=3.0,
        epochs=1,
        seed=0,
        device="cpu",
    ).fit(enc.dense(used), enc.labels_dense(used))
    dense = net.predict(enc.dense(used))
    coords = net.predict_spikes(enc, max_rows=16)  # several blocks
    assert len(coords[0]) > 0
    for tol in (0, 2):
        assert np.array_equal(
            spikes_to_singles(coords, enc, tolerance_steps=tol),
            spikes_to_singles(dense, enc, samples=used, tolerance_steps=tol),
        )
    if local:  # the local network never spikes on a crystal without an input spike
        assert not np.any(dense * (enc.dense(used).sum(1, keepdims=True) == 0))


def test_local_petnet_learns_coincidences_beyond_any_geometry_blind_rule(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    train, test = ring_singles(150, 2), ring_singles(60, 3)
    enc = encode_spikes(train, **ENC)  # type: ignore[arg-type]
    used = enc.nonempty_samples
    net = PETNet(
        RING,
        hidden=8,
        local=True,
        crystals_per_ring=RING,
        fan=1,
        init_scale=2.0,
        lr=2e-2,
        epochs=12,
        patience=12,
        batch_size=64,
        timing_weight=1.0,
        seed=0,
        device="cpu",
    ).fit(enc.dense(used), enc.labels_dense(used))
    assert net.pos_weight_ == pytest.approx(1.5)  # 3 non-target spikes per 2 target spikes
    enc_test = encode_spikes(test, **ENC)  # type: ignore[arg-type]
    pairs = spikes_to_pairs(net.predict_spikes(enc_test), enc_test, test, window_ns=2.0, tolerance_steps=2)
    m = pair_metrics(coincidence_tree(test, pairs), test)
    assert m.n_true == 60
    assert m.f1 > 0.9  # silence: 0; any geometry-blind rule: ≤ 2/3
    again = PETNet.load(net.save(tmp_path / "local.safetensors"))
    assert again.pos_weight_ == net.pos_weight_
    for a, b in zip(again.predict_spikes(enc_test), net.predict_spikes(enc_test), strict=True):
        assert np.array_equal(a, b)

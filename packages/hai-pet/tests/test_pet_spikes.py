"""Spike encoding: counts, merges, labels, decoding back to pairs, spike-level F1."""

from __future__ import annotations

import numpy as np
import pytest

from hai.pet import GateTree, PointSource, get_scanner, pair_metrics, simulate, true_pairs
from hai.pet.sorter import coincidence_tree
from hai.pet.spikes import encode_spikes, spike_metrics, spikes_to_pairs, spikes_to_singles
from hai.shared import InputError


def hand() -> GateTree:
    # event 0: a pair; event 1: a lone single that shares crystal and bin with event 0's first
    return GateTree(
        "Singles",
        {
            "eventID": np.array([0, 1, 0, 2], dtype=np.int32),
            "time": np.array([0.1, 0.4, 2.2, 7.3]) * 1e-9,
            "rsectorID": np.array([0, 0, 3, 1], dtype=np.int32),
            "crystalID": np.array([0, 0, 1, 4], dtype=np.int32),  # 2 crystals per sector, 4 sectors
            "comptonPhantom": np.zeros(4, dtype=np.int32),
        },
    )


def test_encoding_counts_merges_and_labels() -> None:
    enc = encode_spikes(
        hand(), n_crystals=24, crystals_per_sector=2, crystals_per_ring=8, bin_ns=1.0, n_steps=4
    )
    assert enc.merged == 1
    assert len(enc.sample) == 4 - enc.merged
    x, y = enc.dense(), enc.labels_dense()
    assert x.shape == (2, 4, 24)  # 7.3 ns lies in the second sample of 4 ns
    assert x.sum() == 3
    assert y.sum() == 2
    # channels: ring * 8 + rsector * 2 + crystal % 2 ; crystal 4 of sector 1 is ring 2
    assert enc.single_channel.tolist() == [0, 0, 7, 18]
    assert x[0, 0, 0] == 1
    assert x[0, 2, 7] == 1
    assert x[1, 3, 18] == 1
    assert y[0, 0, 0] == 1
    assert y[0, 2, 7] == 1
    with pytest.raises(InputError, match="outside"):
        encode_spikes(hand(), n_crystals=8, crystals_per_sector=2, bin_ns=1.0, n_steps=4)


@pytest.fixture(scope="module")
def quiet_sim() -> tuple[GateTree, object]:
    scanner = get_scanner("clinical", efficiency=1.0, ctr_ps=200.0)
    return simulate(scanner, [PointSource(2e5)], seconds=0.02, seed=4, phantom=None).singles, scanner


def test_spike_round_trip_and_label_decoding(quiet_sim: tuple[GateTree, object]) -> None:
    singles, scanner = quiet_sim
    enc = encode_spikes(
        singles,
        n_crystals=scanner.n_crystals,
        crystals_per_sector=scanner.crystals_per_sector,  # type: ignore[attr-defined]
        crystals_per_ring=scanner.crystals_per_ring,
        bin_ns=0.5,
        n_steps=200,  # type: ignore[attr-defined]
    )
    used = enc.nonempty_samples
    assert enc.dense(used).sum() == len(singles) - enc.merged
    truth = true_pairs(singles)
    labels = enc.labels_dense(used)
    assert labels.sum() == 2 * len(truth)  # no merges among true pairs here
    glob = scanner.global_crystal(singles["rsectorID"], singles["crystalID"])  # type: ignore[attr-defined]
    assert np.array_equal(enc.single_channel, glob)
    # the labels decode back to the true pairs
    pairs = spikes_to_pairs(labels, enc, singles, window_ns=4.0, samples=used)
    m = pair_metrics(coincidence_tree(singles, pairs), singles)
    assert m.precision == 1.0
    assert m.recall > 0.98
    # a one-step shift is found only with a tolerance
    shifted = np.zeros_like(labels)
    shifted[:, 1:] = labels[:, :-1]  # one step later; spikes in the last step fall off
    exact = spikes_to_singles(shifted, enc, samples=used)
    near = spikes_to_singles(shifted, enc, samples=used, tolerance_steps=1)
    assert len(exact) < len(near) == 2 * len(truth) - labels[:, -1].sum()
    with pytest.raises(InputError, match="too large"):
        enc.dense()


def test_spike_metrics_take_exact_matches_first() -> None:
    p = np.zeros((1, 10, 1))
    t = np.zeros((1, 10, 1))
    p[0, [5, 6], 0] = 1
    t[0, [5, 7], 0] = 1
    m = spike_metrics(p, t, tolerance_steps=1)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    m0 = spike_metrics(p, t, tolerance_steps=0)
    assert (m0.tp, m0.fp, m0.fn, m0.precision, m0.recall, m0.f1) == (1, 1, 1, 0.5, 0.5, 0.5)
    other_channel = np.zeros((1, 10, 2))
    other_channel[0, 5, 1] = 1
    target = np.zeros((1, 10, 2))
    target[0, 5, 0] = 1
    assert spike_metrics(other_channel, target).tp == 0

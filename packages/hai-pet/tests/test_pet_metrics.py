"""Pair-level metrics: closed-form counts on hand-built tables and a near-ideal simulation."""

from __future__ import annotations

import numpy as np
import pytest

from hai.pet import (
    GateTree,
    PointSource,
    coincidence_tree,
    get_scanner,
    pair_metrics,
    simulate,
    sort_coincidences,
    true_pairs,
)
from hai.shared import InputError


def table() -> GateTree:
    # events: 0 (pair), 1 (pair, one single scattered), 2 (single), 3 (pair), 4 (three singles), 5 (pair)
    ev = [0, 0, 1, 1, 2, 3, 3, 4, 4, 4, 5, 5]
    n = len(ev)
    return GateTree(
        "Singles",
        {
            "eventID": np.array(ev, dtype=np.int32),
            "time": np.arange(n) * 1e-9,
            "energy": np.full(n, 0.511),
            "rsectorID": np.arange(n, dtype=np.int32) % 7,
            "crystalID": np.arange(n, dtype=np.int32),
            "comptonPhantom": np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.int32),
        },
    )


def test_true_pairs() -> None:
    s = table()
    assert true_pairs(s).tolist() == [[0, 1], [5, 6], [10, 11]]
    assert true_pairs(s, include_scatter=True).tolist() == [[0, 1], [2, 3], [5, 6], [10, 11]]


def test_closed_form_scores() -> None:
    s = table()
    # 2 of 3 true pairs found (one of them twice, once crossed), one scatter, one random
    pred = np.array([[0, 1], [6, 5], [0, 1], [2, 3], [4, 5]])
    m = pair_metrics(coincidence_tree(s, pred), s)
    assert (m.tp, m.fp, m.fn, m.n_predicted, m.n_true) == (2, 3, 1, 5, 3)
    assert m.precision == pytest.approx(2 / 5)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert (m.predicted_trues, m.predicted_scatters, m.predicted_randoms) == (3, 1, 1)
    with_scatter = pair_metrics(coincidence_tree(s, pred), s, include_scatter=True)
    assert (with_scatter.tp, with_scatter.n_true) == (3, 4)
    perfect = pair_metrics(coincidence_tree(s, true_pairs(s)), s)
    assert (perfect.precision, perfect.recall, perfect.f1) == (1.0, 1.0, 1.0)
    none = pair_metrics(coincidence_tree(s, np.zeros((0, 2), dtype=np.int64)), s)
    assert (none.tp, none.precision, none.recall, none.f1) == (0, 0.0, 0.0, 0.0)
    # 3 singles of event 4 make no true pair, so pairing two of them is a false positive
    assert pair_metrics(coincidence_tree(s, np.array([[7, 8]])), s).fp == 1


def test_both_singles_must_match_within_the_time_tolerance() -> None:
    s = table()
    coinc = coincidence_tree(s, np.array([[0, 1], [5, 6]]))
    coinc.columns["time2"] = coinc["time2"] + np.array([0.4e-9, 0.0])
    assert pair_metrics(coinc, s).tp == 1
    assert pair_metrics(coinc, s, time_tolerance_ns=0.5).tp == 2
    coinc.columns["crystalID1"] = coinc["crystalID1"] + np.array([0, 1])
    assert pair_metrics(coinc, s, time_tolerance_ns=0.5).tp == 1
    with pytest.raises(InputError, match="time_tolerance_ns"):
        pair_metrics(coinc, s, time_tolerance_ns=-1)
    with pytest.raises(InputError, match="lacks required branch"):
        pair_metrics(GateTree("Coincidences", {"eventID1": np.zeros(1)}), s)


def test_sorter_finds_every_pair_of_an_ideal_quiet_scanner() -> None:
    ideal = get_scanner("clinical", efficiency=1.0, photofraction=1.0, energy_resolution=0.0, ctr_ps=0.0)
    sim = simulate(ideal, [PointSource(2e5)], seconds=0.05, seed=9, phantom=None)
    r = sort_coincidences(sim.singles, 2.0, policy="takeWinnerOfGoods")
    m = pair_metrics(r.coincidences, sim.singles)
    assert m.n_true > 50
    assert m.recall == 1.0
    assert m.precision == 1.0

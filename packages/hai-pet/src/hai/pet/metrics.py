"""Pair-level precision, recall and F1 of coincidences against the simulation truth.

A *true pair* is an annihilation (``eventID``) that left exactly two singles, neither of which
scattered in the phantom (``comptonPhantom`` = 0); with ``include_scatter=True`` scattered
pairs count as true pairs as well. A predicted coincidence finds a true pair only when both of
its singles are that pair's singles: same ``eventID``, same crystals (``rsectorID``,
``crystalID``) and times within ``time_tolerance_ns``. Each true pair is found at most once;
repeated predictions of it are false positives. (PETNet's paper reports pair-level F1 this
way; a hit-level F1 is a different number.) Hand-written: no library scores GATE coincidences
against GATE's own truth branches.

>>> singles = GateTree("Singles", {"eventID": np.array([0, 0, 1]), "time": np.array([0.0, 1e-9, 2e-9]),
...     "rsectorID": np.array([0, 5, 2]), "crystalID": np.array([0, 0, 0]),
...     "comptonPhantom": np.array([0, 0, 0])})
>>> from hai.pet.sorter import coincidence_tree
>>> coinc = coincidence_tree(singles, np.array([[0, 1], [1, 2]]))
>>> m = pair_metrics(coinc, singles)
>>> (m.tp, m.fp, m.fn, m.precision, m.recall)
(1, 1, 0, 0.5, 1.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hai.pet.tables import GateTree
from hai.shared import InputError


@dataclass(frozen=True)
class PairMetrics:
    """Counts and scores of predicted coincidence pairs against the true pairs."""

    tp: int
    fp: int
    fn: int
    n_predicted: int
    n_true: int
    precision: float
    recall: float
    f1: float
    predicted_trues: int
    predicted_scatters: int
    predicted_randoms: int

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a plain dictionary (for JSON)."""
        return asdict(self)


def true_pairs(singles: GateTree, *, include_scatter: bool = False) -> np.ndarray:
    """(n, 2) row indices of the singles that form true pairs, in time order of the first.

    >>> s = GateTree("Singles", {"eventID": np.array([4, 7, 4, 9]), "comptonPhantom": np.zeros(4, int)})
    >>> true_pairs(s).tolist()
    [[0, 2]]
    """
    singles.require(("eventID",))
    ev = np.asarray(singles["eventID"], dtype=np.int64)
    order = np.argsort(ev, kind="stable")
    ev_sorted = ev[order]
    starts = np.flatnonzero(np.r_[True, ev_sorted[1:] != ev_sorted[:-1]])
    counts = np.diff(np.append(starts, len(ev)))
    two = starts[counts == 2]
    pairs = np.stack([order[two], order[two + 1]], axis=1)
    if not include_scatter and "comptonPhantom" in singles:
        scatter = np.asarray(singles["comptonPhantom"]) > 0
        pairs = pairs[~(scatter[pairs[:, 0]] | scatter[pairs[:, 1]])]
    return pairs[np.argsort(pairs[:, 0], kind="stable")].reshape(-1, 2)


def _scores(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def pair_metrics(
    coincidences: GateTree,
    singles: GateTree,
    *,
    time_tolerance_ns: float = 0.0,
    include_scatter: bool = False,
) -> PairMetrics:
    """Score a ``Coincidences`` tree against the true pairs of the ``singles`` it came from.

    ``time_tolerance_ns`` allows the coincidence times to differ from the singles' (e.g. after
    a float32 round trip); 0 asks for equal times.
    """
    if time_tolerance_ns < 0:
        raise InputError(f"time_tolerance_ns must be ≥ 0, got {time_tolerance_ns!r}")
    need = [f"{f}{k}" for k in (1, 2) for f in ("eventID", "time", "rsectorID", "crystalID")]
    coincidences.require(need)
    singles.require(("eventID", "time", "rsectorID", "crystalID"))
    truth = true_pairs(singles, include_scatter=include_scatter)
    n_pred, n_true = len(coincidences), len(truth)

    ev1 = np.asarray(coincidences["eventID1"], dtype=np.int64)
    ev2 = np.asarray(coincidences["eventID2"], dtype=np.int64)
    same = ev1 == ev2
    comp1 = (
        np.asarray(coincidences["comptonPhantom1"]) if "comptonPhantom1" in coincidences else np.zeros(n_pred)
    )
    comp2 = (
        np.asarray(coincidences["comptonPhantom2"]) if "comptonPhantom2" in coincidences else np.zeros(n_pred)
    )
    scattered = (comp1 > 0) | (comp2 > 0)

    truth_ev = (
        np.asarray(singles["eventID"], dtype=np.int64)[truth[:, 0]] if n_true else np.zeros(0, np.int64)
    )
    t_order = np.argsort(truth_ev, kind="stable")
    pos = np.searchsorted(truth_ev[t_order], ev1)
    pos_c = np.minimum(pos, max(n_true - 1, 0))
    found = same & (pos < n_true)
    if n_true:
        found &= truth_ev[t_order][pos_c] == ev1
    k = t_order[pos_c] if n_true else np.zeros(n_pred, dtype=np.int64)
    matched = np.zeros(n_pred, dtype=bool)
    if n_true and n_pred:
        tol = time_tolerance_ns * 1e-9
        s_time = np.asarray(singles["time"], dtype=np.float64)
        s_sec = np.asarray(singles["rsectorID"], dtype=np.int64)
        s_cry = np.asarray(singles["crystalID"], dtype=np.int64)
        ra, rb = truth[k, 0], truth[k, 1]

        def end_matches(n: int, row: np.ndarray) -> np.ndarray:
            return (
                (np.asarray(coincidences[f"rsectorID{n}"], dtype=np.int64) == s_sec[row])
                & (np.asarray(coincidences[f"crystalID{n}"], dtype=np.int64) == s_cry[row])
                & (np.abs(np.asarray(coincidences[f"time{n}"], dtype=np.float64) - s_time[row]) <= tol)
            )

        straight = end_matches(1, ra) & end_matches(2, rb)
        crossed = end_matches(1, rb) & end_matches(2, ra)
        matched = found & (straight | crossed)
    # each true pair counts once
    matched_truth = k[matched]
    tp = len(np.unique(matched_truth))
    precision, recall, f1 = _scores(tp, n_pred, n_true)
    return PairMetrics(
        tp=tp,
        fp=n_pred - tp,
        fn=n_true - tp,
        n_predicted=n_pred,
        n_true=n_true,
        precision=precision,
        recall=recall,
        f1=f1,
        predicted_trues=int((same & ~scattered).sum()),
        predicted_scatters=int((same & scattered).sum()),
        predicted_randoms=int((~same).sum()),
    )

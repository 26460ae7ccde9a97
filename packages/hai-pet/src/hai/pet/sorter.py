"""GATE's classical coincidence sorter, re-implemented in vectorised numpy.

Why hand-written: outside GATE itself (C++ ``GateCoincidenceSorter``, run inside a Geant4
simulation) and opengate 10 (which needs the whole opengate stack and knows 6 of the 9
policies), no library sorts GATE singles into coincidences. This module reproduces GATE 9's
``GateCoincidenceSorter`` decisions:

* **Windows.** A single at time *t* opens the window ``[t + offset, t + offset + window)``
  (``offset`` > 0 is a delayed window, for estimating randoms). A later single joins every open
  window containing its time. By default a single opens a window only when it lies inside no
  open window (GATE's default); with ``all_singles_open_window=True`` every single opens one
  (GATE's ``allPulseOpenCoincGate``). The single that opened a window is its first member.
* **Good pairs.** A pair is good when the circular difference of the singles' sectors
  (``rsectorID``) is at least ``min_sector_difference``.
* **Energy window.** Singles outside ``[lo, hi]`` keV are dropped before sorting, like GATE's
  thresholder and upholder in the singles chain ahead of the sorter.
* **A window with 2 singles** gives its pair when good. **A multiple** (n > 2 singles) is
  decomposed into its n(n−1)/2 pairs (only the n−1 pairs with the first single when the window
  is delayed or every single opens a window) and handled by the policy: ``killAll``,
  ``takeAllGoods`` (every good pair), ``takeWinnerOfGoods`` (the good pair with the largest
  summed energy), ``takeWinnerIfIsGood`` (the winner of all pairs, if good),
  ``takeWinnerIfAllAreGoods`` (the winner, if every pair is good), ``killAllIfMultipleGoods``
  (the good pair, if exactly one is good), and the three ``keep*`` policies,
  ``keepIfOnlyOneGood``, ``keepIfAnyIsGood``, ``keepIfAllAreGoods``, which keep the whole
  multiple as one "multicoincidence". GATE 9 documents that multicoincidences are not written
  to disk, so hai returns them in :attr:`SortResult.multiples` and never as pairs. Ties of
  the winner go to the first pair in (i, j) order, as in GATE's strict ``E > maxE`` scan.

The windows are found without a Python loop over singles: the stream splits into independent
segments wherever no earlier single's window can reach, and all segments advance together.

>>> singles = GateTree("Singles", {
...     "eventID": np.array([0, 0, 1]), "time": np.array([0.0, 2e-9, 50e-9]),
...     "energy": np.array([0.51, 0.50, 0.40]), "rsectorID": np.array([0, 12, 3]),
...     "crystalID": np.array([0, 0, 0])})
>>> sort_coincidences(singles, window_ns=10, policy="takeWinnerOfGoods").pairs.tolist()
[[0, 1]]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hai.pet.tables import COINCIDENCE_PAIR_FIELDS, REQUIRED_SINGLES, GateTree, check_singles
from hai.shared import InputError
from hai.shared.checks import nonnegative_int, positive_int

#: GATE 9's multiple-coincidence policies, spelled as in GATE macros.
POLICIES: tuple[str, ...] = (
    "killAll",
    "takeAllGoods",
    "killAllIfMultipleGoods",
    "takeWinnerOfGoods",
    "takeWinnerIfIsGood",
    "takeWinnerIfAllAreGoods",
    "keepIfOnlyOneGood",
    "keepIfAnyIsGood",
    "keepIfAllAreGoods",
)
#: GATE's documented default since OpenGATE/Gate PR #704 (older documents: keepIfAllAreGoods).
DEFAULT_POLICY = "takeWinnerIfAllAreGoods"
#: Relative widening of the energy window's edges: about 8 float32 ulps, so that an energy stored
#: in float32 at exactly an edge is inside (float32 rounds by at most 2**-24 relative).
ENERGY_RTOL = 1e-6
#: An energy window whose upper edge is at most this many keV was almost surely given in MeV.
MEV_LOOKING_KEV = 10.0


@dataclass
class SortResult:
    """Coincidences found by a sorter.

    Attributes:
        coincidences: the pairs as a GATE ``Coincidences`` tree.
        pairs: (n, 2) row indices of the pairs' singles in the input table, first the single
            that opened the window.
        window_opener: for each pair, the row of the single that opened its window.
        multiples: for the ``keep*`` policies, the kept multicoincidences (row indices).
        n_windows: windows with at least two singles.
        n_multiple_windows: windows with more than two singles.
        settings: the sorter's parameters.
    """

    coincidences: GateTree
    pairs: np.ndarray
    window_opener: np.ndarray
    multiples: list[np.ndarray] = field(default_factory=list)
    n_windows: int = 0
    n_multiple_windows: int = 0
    settings: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)


def check_policy(policy: str) -> str:
    """Return ``policy`` if GATE knows it, else raise :class:`InputError` listing the names."""
    if policy not in POLICIES:
        lowered = {p.lower(): p for p in POLICIES}
        hint = f"did you mean {lowered[policy.lower()]!r}? " if policy.lower() in lowered else ""
        raise InputError(
            f"unknown multiple-coincidence policy {policy!r}", hint=hint + f"known: {', '.join(POLICIES)}"
        )
    return policy


def _times(singles: GateTree) -> np.ndarray:
    if len(singles) == 0:
        raise InputError("there are no singles to sort (the table is empty)")
    check_singles(singles)
    t = np.asarray(singles["time"], dtype=np.float64)
    bad = np.flatnonzero(np.diff(t) < 0)
    if len(bad):
        raise InputError(
            f"single times are not monotonic: time[{bad[0] + 1}] = {t[bad[0] + 1]!r} s comes after "
            f"time[{bad[0]}] = {t[bad[0]]!r} s ({len(bad)} decrease(s))",
            hint="sort the singles by time first (GATE's presort buffer does this)",
        )
    return t


def energy_window_mask(energy_mev: np.ndarray, energy_window_kev: tuple[float, float]) -> np.ndarray:
    """Which energies (MeV, as GATE stores them) lie in ``[lo, hi]`` keV, edges included.

    The edges are widened by :data:`ENERGY_RTOL` (relative), so that an energy stored in float32
    at exactly an edge (``np.float32(0.35)`` is 349.99999 keV) counts as inside, as it was meant.
    A window whose upper edge is at most :data:`MEV_LOOKING_KEV` keV is refused: it is almost
    certainly given in MeV.

    >>> energy_window_mask(np.array([0.35, 0.65, 0.3499, 0.651], dtype=np.float32), (350, 650)).tolist()
    [True, True, False, False]
    """
    lo, hi = check_energy_window(energy_window_kev)
    e_kev = np.asarray(energy_mev, dtype=np.float64) * 1000.0
    return np.asarray((e_kev >= lo * (1 - ENERGY_RTOL)) & (e_kev <= hi * (1 + ENERGY_RTOL)))


def check_energy_window(energy_window_kev: tuple[float, float] | list[float]) -> tuple[float, float]:
    """``(lo, hi)`` keV as floats, or :class:`InputError` saying what is wrong with them."""
    try:
        lo, hi = (float(x) for x in energy_window_kev)
    except (TypeError, ValueError):
        raise InputError(
            "the energy window (energy_window_kev) must be two numbers (low, high) in keV, "
            f"got {energy_window_kev!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
        raise InputError(
            "the energy window (energy_window_kev) must satisfy 0 ≤ low < high keV, finite, "
            f"got {energy_window_kev!r}",
            hint="e.g. (350, 650) keV",
        )
    if hi <= MEV_LOOKING_KEV:
        raise InputError(
            f"the energy window (energy_window_kev) ({lo:g}, {hi:g}) looks like MeV: it is given in keV",
            hint=f"for {lo:g}–{hi:g} MeV give ({lo * 1000:g}, {hi * 1000:g}) keV",
        )
    return lo, hi


def _openers(t: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Which singles open a window: those inside no window opened by an earlier single."""
    n = len(t)
    idx = np.arange(n)
    lo = np.searchsorted(end, t, side="right")  # first i whose window ends after t_j
    hi = np.minimum(np.searchsorted(start, t, side="right"), idx)  # windows starting by t_j, i < j
    seg_start = np.flatnonzero(lo >= idx)  # nothing earlier can reach: independent segment
    seg_len = np.diff(np.append(seg_start, n))
    opener = np.zeros(n, dtype=bool)
    order = np.argsort(-seg_len, kind="stable")
    seg_start, seg_len = seg_start[order], seg_len[order]
    active = len(seg_start)
    for p in range(int(seg_len.max()) if n else 0):
        while active and seg_len[active - 1] <= p:
            active -= 1
        j = seg_start[:active] + p
        if p == 0:
            opener[j] = True
            continue
        counts = np.concatenate([[0], np.cumsum(opener)])
        lo_j, hi_j = lo[j], np.maximum(hi[j], lo[j])
        opener[j] = counts[hi_j] - counts[lo_j] == 0
    return opener


def _pair_index(n: int, first_only: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.triu_indices(n, k=1)  # lexicographic (i, j), as GATE's double loop
    if first_only:
        keep = a == 0
        return a[keep], b[keep]
    return a, b


def _sector_ok(s1: np.ndarray, s2: np.ndarray, n_sectors: int, min_diff: int) -> np.ndarray:
    d1 = np.mod(s1 - s2, n_sectors)
    d2 = np.mod(s2 - s1, n_sectors)
    return np.minimum(d1, d2) >= min_diff


def sort_coincidences(
    singles: GateTree,
    window_ns: float,
    *,
    policy: str = DEFAULT_POLICY,
    offset_ns: float = 0.0,
    min_sector_difference: int = 0,
    energy_window_kev: tuple[float, float] | None = None,
    all_singles_open_window: bool = False,
    sectors: int | None = None,
) -> SortResult:
    """Sort time-ordered singles into coincidences with GATE 9's sorter semantics.

    Args:
        singles: a GATE ``Singles`` table (needs eventID, time in s, energy in MeV, rsectorID,
            crystalID), sorted by time.
        window_ns: coincidence window width (ns), positive.
        policy: one of :data:`POLICIES` (GATE spelling).
        offset_ns: window offset (ns) ≥ 0; > 0 gives a delayed window (randoms estimate).
        min_sector_difference: GATE's ``minSectorDifference``.
        energy_window_kev: keep singles with lo ≤ E ≤ hi (keV) before sorting (edges
            float32-safe, see :func:`energy_window_mask`; a window that looks like MeV is refused).
        all_singles_open_window: every single opens a window (``allPulseOpenCoincGate``).
        sectors: sectors per ring for the circular difference (needed when
            ``min_sector_difference`` > 0; GATE takes it from the scanner geometry).

    >>> s = GateTree("Singles", {"eventID": np.array([0, 0]), "time": np.array([0.0, 1e-9]),
    ...     "energy": np.array([0.5, 0.5]), "rsectorID": np.array([0, 1]), "crystalID": np.array([0, 0])})
    >>> len(sort_coincidences(s, 4.0, policy="killAll", min_sector_difference=2, sectors=8))
    0
    """
    check_policy(policy)
    if not np.isfinite(window_ns) or window_ns <= 0:
        raise InputError(f"the coincidence window must be a positive number of ns, got {window_ns!r}")
    if not np.isfinite(offset_ns) or offset_ns < 0:
        raise InputError(f"the window offset must be ≥ 0 ns, got {offset_ns!r}")
    min_sector_difference = nonnegative_int("min_sector_difference", min_sector_difference)
    if energy_window_kev is not None:
        energy_window_kev = check_energy_window(energy_window_kev)
    singles.require(REQUIRED_SINGLES)
    t_all = _times(singles)
    energy_kev = np.asarray(singles["energy"], dtype=np.float64) * 1000.0
    rows = np.arange(len(singles))
    if energy_window_kev is not None:
        rows = np.flatnonzero(energy_window_mask(singles["energy"], energy_window_kev))
    sector_all = np.asarray(singles["rsectorID"], dtype=np.int64)
    if sectors is None and min_sector_difference > 0:
        raise InputError(
            "a minimum sector difference needs the number of sectors per ring",
            hint="pass sectors=N, the scanner's rsector count (Scanner.sectors)",
        )
    n_sectors = positive_int("sectors", sectors) if sectors is not None else int(sector_all.max()) + 1
    if n_sectors <= int(sector_all.max()):
        raise InputError(f"sectors ({n_sectors}) must exceed every rsectorID (max {int(sector_all.max())})")
    settings: dict[str, object] = {
        "window_ns": float(window_ns),
        "offset_ns": float(offset_ns),
        "policy": policy,
        "min_sector_difference": int(min_sector_difference),
        "energy_window_kev": None if energy_window_kev is None else list(map(float, energy_window_kev)),
        "all_singles_open_window": bool(all_singles_open_window),
        "sectors": n_sectors,
    }

    t = t_all[rows]
    e = energy_kev[rows]
    sec = sector_all[rows]
    start = t + offset_ns * 1e-9
    end = start + window_ns * 1e-9
    delayed = offset_ns > 0
    first_only = all_singles_open_window or delayed
    opener = np.ones(len(t), dtype=bool) if all_singles_open_window else _openers(t, start, end)
    op = np.flatnonzero(opener)
    a = np.maximum(op + 1, np.searchsorted(t, start[op], side="left"))
    b = np.searchsorted(t, end[op], side="left")
    size = 1 + np.maximum(b - a, 0)

    out_pairs: list[np.ndarray] = []  # (k, 2) local indices
    out_key: list[np.ndarray] = []  # (window opener, pair rank) for GATE's output order
    multiples: list[np.ndarray] = []
    multiple_keys: list[int] = []
    for n in np.unique(size[size >= 2]).tolist():
        w = np.flatnonzero(size == n)
        members = np.concatenate([op[w, None], a[w, None] + np.arange(n - 1)[None, :]], axis=1)
        e_m, s_m = e[members], sec[members]

        def goods(pi: np.ndarray, pj: np.ndarray, s_m: np.ndarray = s_m) -> np.ndarray:
            return _sector_ok(s_m[:, pi], s_m[:, pj], n_sectors, min_sector_difference)

        def emit(mask: np.ndarray, pi: np.ndarray, pj: np.ndarray, members: np.ndarray = members) -> None:
            wk, pk = np.nonzero(mask)
            out_pairs.append(np.stack([members[wk, pi[pk]], members[wk, pj[pk]]], axis=1))
            out_key.append(np.stack([members[wk, 0], pk], axis=1))

        if n == 2:
            pi, pj = np.array([0]), np.array([1])
            emit(goods(pi, pj), pi, pj)
            continue
        if policy == "killAll":
            continue
        ci, cj = _pair_index(n, first_only)  # pairs GATE considers for winners
        if policy == "takeAllGoods":
            emit(goods(ci, cj), ci, cj)
            continue
        gi, gj = _pair_index(n, delayed)  # pairs GATE counts goods over first
        good1 = goods(gi, gj)
        n_good1 = good1.sum(axis=1)
        if policy.startswith("keep"):
            if policy == "keepIfAnyIsGood":
                kept = n_good1 > 0
            elif policy == "keepIfOnlyOneGood":
                kept = n_good1 == 1
            else:
                kept = n_good1 == n * (n - 1) // 2
            for row in np.flatnonzero(kept):
                multiples.append(rows[members[row]])
                multiple_keys.append(int(members[row, 0]))
            continue
        good_c = goods(ci, cj)
        n_good2 = good_c.sum(axis=1)
        alive = (n_good1 > 0) & (n_good2 > 0)
        esum = e_m[:, ci] + e_m[:, cj]
        winner = np.argmax(esum, axis=1)
        pick = np.zeros_like(good_c)
        rows_w = np.arange(len(w))
        if policy == "takeWinnerIfIsGood":
            pick[rows_w, winner] = alive & good_c[rows_w, winner]
        elif policy == "takeWinnerIfAllAreGoods":
            max_goods = n - 1 if first_only else n * (n - 1) // 2
            pick[rows_w, winner] = alive & (n_good2 == max_goods)
        elif policy == "takeWinnerOfGoods":
            best = np.argmax(np.where(good_c, esum, -np.inf), axis=1)
            pick[rows_w, best] = alive
        elif policy == "killAllIfMultipleGoods":
            emit(good1 & (alive & (n_good2 == 1))[:, None], gi, gj)
            continue
        emit(pick, ci, cj)

    if out_pairs:
        local = np.concatenate(out_pairs)
        key = np.concatenate(out_key)
        order = np.lexsort((key[:, 1], key[:, 0]))
        local, key = local[order], key[order]
    else:
        local = np.zeros((0, 2), dtype=np.int64)
        key = np.zeros((0, 2), dtype=np.int64)
    order_m = np.argsort(np.asarray(multiple_keys, dtype=np.int64), kind="stable")
    pairs = rows[local].astype(np.int64).reshape(-1, 2)
    return SortResult(
        coincidences=coincidence_tree(singles, pairs),
        pairs=pairs,
        window_opener=rows[key[:, 0]].astype(np.int64),
        multiples=[multiples[i] for i in order_m],
        n_windows=int((size >= 2).sum()),
        n_multiple_windows=int((size > 2).sum()),
        settings=settings,
    )


def sort_scw(singles: GateTree, window_ns: float) -> SortResult:
    """PETNet's sliding-coincidence-window (SCW) baseline: chain singles whose gap to the
    previous single is ≤ ``window_ns`` and keep the chains of exactly two singles.

    It has no energy window, no geometric cut and kills every multiple, so it matches no GATE
    policy exactly (a chain can be longer than the window).

    >>> s = GateTree("Singles", {"eventID": np.arange(5), "time": np.array([0, 3, 20, 23, 26]) * 1e-9,
    ...     "energy": np.full(5, 0.5), "rsectorID": np.zeros(5, int), "crystalID": np.zeros(5, int)})
    >>> sort_scw(s, 4.0).pairs.tolist()
    [[0, 1]]
    """
    if not np.isfinite(window_ns) or window_ns <= 0:
        raise InputError(f"the coincidence window must be a positive number of ns, got {window_ns!r}")
    singles.require(("time",))
    t = _times(singles)
    breaks = np.flatnonzero(np.diff(t) > window_ns * 1e-9) + 1
    starts = np.concatenate([[0], breaks])
    lengths = np.diff(np.append(starts, len(t)))
    first = starts[lengths == 2]
    pairs = np.stack([first, first + 1], axis=1).astype(np.int64)
    return SortResult(
        coincidences=coincidence_tree(singles, pairs),
        pairs=pairs,
        window_opener=first.astype(np.int64),
        n_windows=int((lengths >= 2).sum()),
        n_multiple_windows=int((lengths > 2).sum()),
        settings={"window_ns": float(window_ns), "policy": "SCW"},
    )


def coincidence_tree(singles: GateTree, pairs: np.ndarray) -> GateTree:
    """A GATE ``Coincidences`` tree from singles and (n, 2) row pairs.

    Every per-single field the singles carry appears with suffixes 1 and 2; ``axialPos`` is
    the mean z of the two singles, ``sinogramTheta`` ∈ [0, π) and ``sinogramS`` the signed
    distance of the line of response from the axis.
    """
    i, j = pairs[:, 0], pairs[:, 1]
    cols: dict[str, np.ndarray] = {}
    if "runID" in singles:
        cols["runID"] = singles["runID"][i]
    for k, rows in ((1, i), (2, j)):
        for name in COINCIDENCE_PAIR_FIELDS:
            if name in singles:
                cols[f"{name}{k}"] = singles[name][rows]
    if all(f"globalPos{c}" in singles for c in "XYZ"):
        x1, y1 = singles["globalPosX"][i], singles["globalPosY"][i]
        x2, y2 = singles["globalPosX"][j], singles["globalPosY"][j]
        cols["axialPos"] = (singles["globalPosZ"][i] + singles["globalPosZ"][j]) / 2
        theta = np.mod(np.arctan2(y2 - y1, x2 - x1) + np.pi / 2, np.pi)
        cols["rotationAngle"] = (
            singles["rotationAngle"][i] if "rotationAngle" in singles else np.zeros(len(i))
        )
        cols["sinogramS"] = x1 * np.cos(theta) + y1 * np.sin(theta)
        cols["sinogramTheta"] = theta
    return GateTree("Coincidences", cols)

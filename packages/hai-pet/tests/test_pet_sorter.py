"""The coincidence sorter against GATE 9's documented semantics (GateCoincidenceSorter).

Hand-built singles (times in ns, energies in keV, sectors out of 10, minSectorDifference 2)
cover pairs, triples, a good and a bad pair in one window, energy-window rejects, the window
opening rules and delayed windows; a literal Python port of GATE's per-single loop checks the
vectorised sorter on random streams for every policy and option.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hai.pet import POLICIES, GateTree, sort_coincidences, sort_scw
from hai.shared import InputError


def singles(times_ns: list[float], energies_kev: list[float], sectors: list[int]) -> GateTree:
    n = len(times_ns)
    return GateTree(
        "Singles",
        {
            "eventID": np.arange(n, dtype=np.int32),
            "time": np.asarray(times_ns, dtype=np.float64) * 1e-9,
            "energy": np.asarray(energies_kev, dtype=np.float64) / 1000.0,
            "rsectorID": np.asarray(sectors, dtype=np.int32),
            "crystalID": np.zeros(n, dtype=np.int32),
        },
    )


def run(s: GateTree, policy: str, **kw: object) -> tuple[list[list[int]], list[list[int]]]:
    opts: dict[str, object] = {"min_sector_difference": 2, "sectors": 10, **kw}
    r = sort_coincidences(s, 10.0, policy=policy, **opts)  # type: ignore[arg-type]
    return r.pairs.tolist(), [m.tolist() for m in r.multiples]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_pair_is_taken_when_good_and_dropped_when_neighbours(policy: str) -> None:
    assert run(singles([0, 5], [511, 480], [0, 5]), policy) == ([[0, 1]], [])
    assert run(singles([0, 5], [511, 480], [0, 1]), policy) == ([], [])
    # the sector difference is circular: 9 and 0 are neighbours
    assert run(singles([0, 5], [511, 480], [9, 0]), policy) == ([], [])


# triple, all three pairs good; sums (0,1)=911, (0,2)=1011, (1,2)=900 -> winner (0,2)
ALL_GOOD = {
    "killAll": ([], []),
    "takeAllGoods": ([[0, 1], [0, 2], [1, 2]], []),
    "killAllIfMultipleGoods": ([], []),
    "takeWinnerOfGoods": ([[0, 2]], []),
    "takeWinnerIfIsGood": ([[0, 2]], []),
    "takeWinnerIfAllAreGoods": ([[0, 2]], []),
    "keepIfOnlyOneGood": ([], []),
    "keepIfAnyIsGood": ([], [[0, 1, 2]]),
    "keepIfAllAreGoods": ([], [[0, 1, 2]]),
}
# triple with one good pair (0,2); the winner (0,1) (sum 1011) is bad
ONE_GOOD = {
    "killAll": ([], []),
    "takeAllGoods": ([[0, 2]], []),
    "killAllIfMultipleGoods": ([[0, 2]], []),
    "takeWinnerOfGoods": ([[0, 2]], []),
    "takeWinnerIfIsGood": ([], []),
    "takeWinnerIfAllAreGoods": ([], []),
    "keepIfOnlyOneGood": ([], [[0, 1, 2]]),
    "keepIfAnyIsGood": ([], [[0, 1, 2]]),
    "keepIfAllAreGoods": ([], []),
}
# triple with goods (0,1) and (0,2), bad (1,2); winner (0,2) (sum 991) is good
TWO_GOOD = {
    "killAll": ([], []),
    "takeAllGoods": ([[0, 1], [0, 2]], []),
    "killAllIfMultipleGoods": ([], []),
    "takeWinnerOfGoods": ([[0, 2]], []),
    "takeWinnerIfIsGood": ([[0, 2]], []),
    "takeWinnerIfAllAreGoods": ([], []),
    "keepIfOnlyOneGood": ([], []),
    "keepIfAnyIsGood": ([], [[0, 1, 2]]),
    "keepIfAllAreGoods": ([], []),
}
# triple whose pairs are all bad (sectors 0, 1, 1)
NONE_GOOD = dict.fromkeys(POLICIES, ([], []))


@pytest.mark.parametrize("policy", POLICIES)
def test_triples_follow_each_policy(policy: str) -> None:
    assert run(singles([0, 2, 4], [511, 400, 500], [0, 3, 6]), policy) == ALL_GOOD[policy]
    assert run(singles([0, 2, 4], [511, 500, 300], [0, 1, 2]), policy) == ONE_GOOD[policy]
    assert run(singles([0, 2, 4], [511, 450, 480], [0, 5, 6]), policy) == TWO_GOOD[policy]
    assert run(singles([0, 2, 4], [511, 450, 480], [0, 1, 1]), policy) == NONE_GOOD[policy]


def test_winner_ties_go_to_the_first_pair_and_quadruples_decompose() -> None:
    assert run(singles([0, 2, 4], [500, 500, 500], [0, 3, 6]), "takeWinnerOfGoods")[0] == [[0, 1]]
    quad = singles([0, 1, 2, 3], [300, 500, 510, 400], [0, 3, 6, 8])
    # pairs: goods all except (2,3) (sectors 6, 8 are 2 apart: good) -> all 6 good
    assert run(quad, "takeAllGoods")[0] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert run(quad, "takeWinnerIfAllAreGoods")[0] == [[1, 2]]
    assert run(quad, "keepIfAllAreGoods") == ([], [[0, 1, 2, 3]])


def test_energy_window_rejects_singles_before_sorting() -> None:
    pair = singles([0, 5], [511, 200], [0, 5])
    assert run(pair, "takeAllGoods", energy_window_kev=(350, 650)) == ([], [])
    assert run(pair, "takeAllGoods", energy_window_kev=(150, 650)) == ([[0, 1]], [])
    # the low single of a triple is dropped, leaving a pair that even killAll takes
    triple = singles([0, 2, 4], [511, 200, 500], [0, 3, 6])
    assert run(triple, "killAll") == ([], [])
    assert run(triple, "killAll", energy_window_kev=(350, 650)) == ([[0, 2]], [])
    # the window is inclusive at both ends
    edge = singles([0, 5], [350, 650], [0, 5])
    assert run(edge, "killAll", energy_window_kev=(350, 650)) == ([[0, 1]], [])


def test_window_opening_rules() -> None:
    s = singles([0, 8, 14], [511, 511, 511], [0, 3, 6])
    # GATE's default: 8 lies in the window [0, 10) opened by 0, so it opens none; 14 opens its own
    assert run(s, "takeAllGoods") == ([[0, 1]], [])
    # every single opens a window: [0,10) {0,8}, [8,18) {8,14}, [14,24) {14}
    assert run(s, "takeAllGoods", all_singles_open_window=True) == ([[0, 1], [1, 2]], [])
    # windows are half-open: a single at exactly t + window is outside
    assert run(singles([0, 10], [511, 511], [0, 5]), "takeAllGoods") == ([], [])
    assert run(singles([0, 9.99], [511, 511], [0, 5]), "takeAllGoods") == ([[0, 1]], [])


def test_every_single_opening_pairs_only_with_the_opener_in_multiples() -> None:
    s = singles([0, 2, 4], [511, 400, 500], [0, 3, 6])
    # window of 0 = {0,1,2}: pairs with the first single only; window of 1 = {1,2}
    assert run(s, "takeAllGoods", all_singles_open_window=True)[0] == [[0, 1], [0, 2], [1, 2]]
    assert run(s, "takeWinnerIfAllAreGoods", all_singles_open_window=True)[0] == [[0, 2], [1, 2]]


def test_delayed_window() -> None:
    # window [100, 110) ns after the opener
    assert run(singles([0, 105], [511, 511], [0, 5]), "takeAllGoods", offset_ns=100.0) == ([[0, 1]], [])
    assert run(singles([0, 5], [511, 511], [0, 5]), "takeAllGoods", offset_ns=100.0) == ([], [])
    # singles inside a delayed window open none (default rule), so 211 pairs with nobody ...
    s = singles([0, 105, 108, 211], [511, 511, 511, 511], [0, 5, 3, 8])
    assert run(s, "takeAllGoods", offset_ns=100.0) == ([[0, 1], [0, 2]], [])
    # ... unless every single opens a window: [205, 215) and [208, 218) both hold 211
    both = run(s, "takeAllGoods", offset_ns=100.0, all_singles_open_window=True)
    assert both == ([[0, 1], [0, 2], [1, 3], [2, 3]], [])
    # 110 is just outside [100, 110) and opens [210, 220), which holds 211
    late = singles([0, 105, 110, 211], [511, 511, 511, 511], [0, 5, 3, 8])
    assert run(late, "takeAllGoods", offset_ns=100.0) == ([[0, 1], [2, 3]], [])
    # the delayed multiple {0; 101, 102} pairs with the opener only
    m = singles([0, 101, 102], [511, 400, 500], [0, 5, 6])
    assert run(m, "takeAllGoods", offset_ns=100.0)[0] == [[0, 1], [0, 2]]
    assert run(m, "takeWinnerIfAllAreGoods", offset_ns=100.0)[0] == [[0, 2]]


def test_coincidence_tree_is_gate_shaped() -> None:
    s = singles([0, 5, 50, 53], [511, 480, 500, 470], [0, 5, 2, 7])
    s.columns["globalPosX"] = np.array([10.0, -10.0, 0.0, 0.0])
    s.columns["globalPosY"] = np.array([0.0, 0.0, 10.0, -10.0])
    s.columns["globalPosZ"] = np.array([1.0, 3.0, 0.0, 0.0])
    r = sort_coincidences(s, 10.0, policy="takeAllGoods")
    c = r.coincidences
    assert c.name == "Coincidences"
    assert len(c) == 2
    assert c["eventID1"].tolist() == [0, 2]
    assert c["eventID2"].tolist() == [1, 3]
    assert c["energy2"].tolist() == pytest.approx([0.480, 0.470])
    assert c["time1"].tolist() == s["time"][[0, 2]].tolist()
    assert c["axialPos"].tolist() == [2.0, 0.0]
    # both lines pass through the axis: s = 0; the x-axis line has theta = pi/2, the y-axis one 0
    assert np.allclose(c["sinogramS"], 0.0, atol=1e-12)
    assert c["sinogramTheta"].tolist() == pytest.approx([np.pi / 2, 0.0])
    assert r.window_opener.tolist() == [0, 2]
    assert r.settings["policy"] == "takeAllGoods"


def test_scw_chains_by_gap_and_kills_multiples() -> None:
    s = singles([0, 8, 14, 40, 45, 100], [511] * 6, [0, 1, 2, 3, 4, 5])
    # 0-8-14 chain (gaps <= 10) is a multiple; 40-45 is a pair; 100 is alone
    assert sort_scw(s, 10.0).pairs.tolist() == [[3, 4]]
    # GATE's default opening rule pairs 0 and 8 instead
    assert sort_coincidences(s, 10.0, policy="killAll").pairs.tolist() == [[0, 1], [3, 4]]


def test_bad_input_gives_clear_errors() -> None:
    s = singles([0, 5], [511, 511], [0, 5])
    with pytest.raises(InputError, match="unknown multiple-coincidence policy 'takewinnerofgoods'") as info:
        sort_coincidences(s, 10.0, policy="takewinnerofgoods")
    assert "did you mean 'takeWinnerOfGoods'" in str(info.value)
    with pytest.raises(InputError, match="positive number of ns"):
        sort_coincidences(s, -1.0)
    with pytest.raises(InputError, match="offset"):
        sort_coincidences(s, 10.0, offset_ns=-5)
    with pytest.raises(InputError, match="not monotonic: time\\[1\\]"):
        sort_coincidences(singles([5, 0], [511, 511], [0, 5]), 10.0)
    with pytest.raises(InputError, match="no singles"):
        sort_coincidences(singles([], [], []), 10.0)
    with pytest.raises(InputError, match="energy window"):
        sort_coincidences(s, 10.0, energy_window_kev=(650, 350))
    bare = GateTree("Singles", {"time": np.array([0.0])})
    with pytest.raises(InputError, match="eventID, energy, rsectorID, crystalID"):
        sort_coincidences(bare, 10.0)
    with pytest.raises(InputError, match="needs the number of sectors"):
        sort_coincidences(s, 10.0, min_sector_difference=2)
    with pytest.raises(InputError, match="must exceed every rsectorID"):
        sort_coincidences(s, 10.0, min_sector_difference=2, sectors=4)
    with pytest.raises(InputError, match="positive"):
        sort_scw(s, 0.0)


# --- a literal port of GateCoincidenceSorter (GATE 9), one single at a time -------------------


def _gate_reference(
    t: np.ndarray,
    e: np.ndarray,
    sec: np.ndarray,
    window: float,
    offset: float,
    policy: str,
    msd: int,
    nsec: int,
    all_open: bool,
) -> tuple[list[tuple[int, int]], list[list[int]]]:
    def forbidden(i: int, j: int) -> bool:
        d1 = (sec[i] - sec[j]) % nsec
        d2 = (sec[j] - sec[i]) % nsec
        return bool(min(d1, d2) < msd)

    open_w: list[list] = []
    done: list[list] = []
    for j in range(len(t)):
        while open_w and t[j] >= open_w[0][1]:
            done.append(open_w.pop(0))
        inside = False
        for w in open_w:
            if w[0] <= t[j] < w[1]:
                w[2].append(j)
                inside = True
            else:
                break
        if all_open or not inside:
            open_w.append([t[j] + offset, t[j] + offset + window, [j]])
    done += open_w
    pairs: list[tuple[int, int]] = []
    multis: list[list[int]] = []
    delayed = offset > 0
    for _, _, c in done:
        n = len(c)
        if n < 2:
            continue
        if n == 2:
            if not forbidden(c[0], c[1]):
                pairs.append((c[0], c[1]))
            continue
        if policy == "killAll":
            continue
        first = all_open or delayed
        if policy == "takeAllGoods":
            for i in range(1 if first else n - 1):
                for j in range(i + 1, n):
                    if not forbidden(c[i], c[j]):
                        pairs.append((c[i], c[j]))
            continue
        goods = sum(
            not forbidden(c[i], c[j]) for i in range(1 if delayed else n - 1) for j in range(i + 1, n)
        )
        if goods == 0:
            continue
        if (
            policy == "keepIfAnyIsGood"
            or (policy == "keepIfOnlyOneGood" and goods == 1)
            or (policy == "keepIfAllAreGoods" and goods == n * (n - 1) // 2)
        ):
            multis.append(list(c))
            continue
        if policy.startswith("keep"):
            continue
        max_e, wi, wj, goods = 0.0, 0, 1, 0
        for i in range(1 if first else n - 1):
            for j in range(i + 1, n):
                goods += not forbidden(c[i], c[j])
                if e[c[i]] + e[c[j]] > max_e:
                    max_e, wi, wj = e[c[i]] + e[c[j]], i, j
        if goods == 0:
            continue
        if policy == "takeWinnerIfIsGood":
            if not forbidden(c[wi], c[wj]):
                pairs.append((c[wi], c[wj]))
        elif policy == "killAllIfMultipleGoods":
            if goods == 1:
                for i in range(1 if delayed else n - 1):
                    for j in range(i + 1, n):
                        if not forbidden(c[i], c[j]):
                            pairs.append((c[i], c[j]))
        elif policy == "takeWinnerIfAllAreGoods":
            if goods == (n - 1 if first else n * (n - 1) // 2):
                pairs.append((c[wi], c[wj]))
        elif policy == "takeWinnerOfGoods":
            max_e = 0.0
            for i in range(1 if first else n - 1):
                for j in range(i + 1, n):
                    if not forbidden(c[i], c[j]) and e[c[i]] + e[c[j]] > max_e:
                        max_e, wi, wj = e[c[i]] + e[c[j]], i, j
            pairs.append((c[wi], c[wj]))
    return pairs, multis


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("offset_ns", "all_open"), [(0.0, False), (0.0, True), (30.0, False)])
def test_vectorised_sorter_matches_gate_loop_on_random_streams(
    policy: str, offset_ns: float, all_open: bool
) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{policy}-{offset_ns}-{all_open}".encode()))
    n = 600
    # bursts make many multiples: gaps mostly short, some long
    gaps = np.where(rng.random(n) < 0.3, rng.exponential(40.0, n), rng.exponential(3.0, n))
    times_ns = np.cumsum(gaps)
    times_ns[50:53] = times_ns[50]  # equal times are processed in input order
    e = rng.uniform(100, 700, n)
    sec = rng.integers(0, 12, n)
    s = singles(times_ns.tolist(), e.tolist(), sec.tolist())
    result = sort_coincidences(
        s,
        10.0,
        policy=policy,
        offset_ns=offset_ns,
        min_sector_difference=3,
        sectors=12,
        all_singles_open_window=all_open,
    )
    t = s["time"]
    pairs, multis = _gate_reference(t, s["energy"], sec, 10e-9, offset_ns * 1e-9, policy, 3, 12, all_open)
    assert [tuple(p) for p in result.pairs.tolist()] == pairs
    assert [m.tolist() for m in result.multiples] == multis
    assert result.n_multiple_windows > 10

"""The PET part of `hai demo`."""

from __future__ import annotations

from pathlib import Path

from hai.pet.demo import run
from hai.shared import DemoContext


def test_demo_sorts_and_scores_every_policy(tmp_path: Path) -> None:
    section = run(DemoContext(workdir=tmp_path, seed=0, device="cpu"))
    assert section.domain == "pet"
    m = section.metrics
    assert m["root_round_trip_identical"] is True
    assert isinstance(m["decays"], int)
    assert m["decays"] > 900_000
    rows = section.tables[0].rows
    assert [r[0] for r in rows][:9] == [
        "killAll",
        "takeAllGoods",
        "killAllIfMultipleGoods",
        "takeWinnerOfGoods",
        "takeWinnerIfIsGood",
        "takeWinnerIfAllAreGoods",
        "keepIfOnlyOneGood",
        "keepIfAnyIsGood",
        "keepIfAllAreGoods",
    ]
    by_policy = {r[0]: r for r in rows}
    # takeAllGoods keeps a superset of the pairs killAll keeps; keep* policies keep multiples
    assert by_policy["takeAllGoods"][1] > by_policy["killAll"][1]  # type: ignore[operator]
    assert by_policy["keepIfAnyIsGood"][2] >= by_policy["keepIfAllAreGoods"][2]  # type: ignore[operator]
    assert by_policy["keepIfAnyIsGood"][2] > 0  # type: ignore[operator]
    for r in rows:
        assert 0.0 < r[-1] < 1.0  # type: ignore[operator]
    # the delayed window estimates the randoms among the prompts within a factor of 2
    randoms, estimate = m["true_randoms_in_prompts"], m["delayed_window_randoms_estimate"]
    assert isinstance(randoms, int)
    assert isinstance(estimate, int)
    assert randoms > 30
    assert 0.5 < estimate / randoms < 2.0
    # the quickly trained PETNet is not silent, and is scored on held-out singles next to the sorter
    assert [r[0] for r in section.tables[1].rows] == ["PETNet", "takeWinnerOfGoods"]
    assert 0.0 < m["petnet_f1"] <= 1.0  # type: ignore[operator]
    assert m["petnet_sorter_f1_same_singles"] == section.tables[1].rows[1][3]
    assert section.figures[0].png.startswith(b"\x89PNG")
    assert (tmp_path / "pet_sim.root").stat().st_size > 100_000

"""The photonics part of `hai demo`."""

from __future__ import annotations

from pathlib import Path

import pytest

from hai.photonics.demo import run
from hai.shared import DemoContext


@pytest.mark.slow
def test_demo_designs_both_targets(tmp_path: Path) -> None:
    section = run(DemoContext(workdir=tmp_path, seed=0, device="cpu"))
    assert section.domain == "photonics"
    m = section.metrics
    assert m["library_size"] == 4000
    assert isinstance(m["bragg_mae"], float)
    assert 0 <= m["bragg_mae"] < 0.3
    assert isinstance(m["anti_reflection_mae"], float)
    assert 0 <= m["anti_reflection_mae"] < 0.1
    assert isinstance(m["bragg_peak_R"], float)
    assert m["bragg_peak_R"] > 0.9
    assert isinstance(m["max_abs_R_plus_A_plus_T_minus_1"], float)
    assert m["max_abs_R_plus_A_plus_T_minus_1"] < 1e-12
    # the anti-reflection design reflects less than bare glass in the visible
    assert isinstance(m["anti_reflection_design_mean_R_400_800nm"], float)
    assert isinstance(m["bare_glass_mean_R_400_800nm"], float)
    assert m["anti_reflection_design_mean_R_400_800nm"] < m["bare_glass_mean_R_400_800nm"]
    assert section.figures
    # the anti-reflection design reflects less than bare glass in the visible
    assert isinstance(m["anti_reflection_design_mean_R_400_800nm"], float)
    assert isinstance(m["bare_glass_mean_R_400_800nm"], float)
    assert m["anti_reflection_design_mean_R_400_800nm"] < m["bare_glass_mean_R_400_800nm"]
    assert section.figures[0].png.startswith(b"\x89PNG")
    assert len(section.tables[0].rows) == 2

"""The grid demo: N-1 of case118 agrees with pandapower and draws its figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from hai.grid.demo import run
from hai.shared import DemoContext, Section


@pytest.mark.slow
def test_demo_runs_and_agrees_with_pandapower(tmp_path: Path) -> None:
    section = run(DemoContext(workdir=tmp_path, seed=0, device="cpu"))
    assert isinstance(section, Section)
    assert section.domain == "grid"
    metrics = section.metrics
    assert metrics["outages"] == 186
    assert metrics["converged"] == 186
    assert metrics["islanded_outages"] == 9
    assert metrics["isolated_buses_agree"] is True
    deviation = metrics["max_vm_deviation_pu"]
    assert isinstance(deviation, float)
    assert deviation < 1e-6
    assert len(section.figures) == 1
    assert section.figures[0].png[:4] == b"\x89PNG"

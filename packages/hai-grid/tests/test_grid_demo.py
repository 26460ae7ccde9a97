"""The grid demo: N-1 of case118 agrees with pandapower and draws its figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from hai.grid.demo import run
from hai.shared import DemoContext, Section


@pytest.mark.slow
def test_demo_runs_and_agrees_with_pandapower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hai.grid.autopq import demo as autopq_demo

    # AutoPQ's part at tiny settings (its own test checks its numbers): here, that it is merged
    monkeypatch.setattr(autopq_demo, "SETTINGS", {"epochs": 2, "n_trials": 2, "blocks": 2, "sample_size": 30})
    monkeypatch.setattr(autopq_demo, "WEEKS", 4)
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
    names = [f.name for f in section.figures]
    assert names[0] == "n1-voltages"
    assert {n for n in names if n.startswith("autopq-")} == {
        "autopq-fan-load", "autopq-pit-load", "autopq-fan-pv", "autopq-pit-pv", "autopq-risk"
    }  # fmt: skip
    assert all(f.png[:4] == b"\x89PNG" for f in section.figures)
    assert metrics["autopq_risk_scenarios"] == 200
    assert "AutoPQ" in section.title

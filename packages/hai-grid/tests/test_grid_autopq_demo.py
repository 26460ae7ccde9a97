"""AutoPQ's demo section: runs end to end (tiny settings) and reports what it measured."""

from __future__ import annotations

import pytest

pytest.importorskip("FrEIA")
pytest.importorskip("optuna")
pytest.importorskip("matplotlib")


@pytest.mark.slow
def test_demo_section(monkeypatch, tmp_path) -> None:
    from hai.grid.autopq import demo
    from hai.shared import DemoContext

    monkeypatch.setattr(demo, "SETTINGS", {"epochs": 2, "n_trials": 2, "blocks": 2, "sample_size": 30})
    monkeypatch.setattr(demo, "WEEKS", 4)
    section = demo.run(DemoContext(workdir=tmp_path))
    m = section.metrics
    assert m["risk_scenarios"] == 200
    assert 0.0 <= m["risk_max_line_overload_probability"] <= 1.0
    assert -1.0 <= m["load_pv_residual_correlation"] <= 1.0
    for name in ("load", "pv"):
        assert m[f"{name}_crps"] > 0
        assert 0.0 <= m[f"{name}_coverage_80"] <= m[f"{name}_coverage_98"] <= 1.0
    assert {f.name for f in section.figures} == {
        "autopq-fan-load", "autopq-pit-load", "autopq-fan-pv", "autopq-pit-pv", "autopq-risk"
    }  # fmt: skip
    assert len(section.tables[0].rows) == 4

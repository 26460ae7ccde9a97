"""The demo end to end, and the examples in the docstrings."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from hai.shared import DemoContext, Section

MODULES = [
    "hai.forecast",
    "hai.forecast.backtest",
    "hai.forecast.baselines",
    "hai.forecast.checkpoints",
    "hai.forecast.cycles",
    "hai.forecast.data",
    "hai.forecast.datasets",
    "hai.forecast.losses",
    "hai.forecast.metrics",
    "hai.forecast.recycle",
    "hai.forecast.transformer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


@pytest.mark.slow
def test_demo_runs_and_reports_real_numbers(tmp_path: Path) -> None:
    from hai.forecast.demo import run

    section = run(DemoContext(workdir=tmp_path, seed=0, device="cpu"))
    assert isinstance(section, Section)
    assert section.domain == "forecast"
    m = section.metrics
    assert m["data"] == "Victoria demand (hourly, 2012)"
    assert m["test_windows"] == 30
    assert m["seasonal_naive_mase_day"] == 1.0  # the day-lag scale; the headline is the week lag
    assert m["seasonal_naive_mase"] > 1.0  # on Victoria the week lag beats the day lag
    assert m["last_profile_mae"] == pytest.approx(335.598, abs=1e-2)
    assert 0.3 < m["recycle_last_profile_mase"] < 0.7  # type: ignore[operator]
    assert m["transformer_epoch_s"] > m["recycle_epoch_s"]  # type: ignore[operator]
    assert m["recycle_training_energy_j"] is None or m["recycle_training_energy_j"] > 0  # type: ignore[operator]
    assert len(section.tables[0].rows) == 6
    assert m["ridge_arx_mase"] == pytest.approx(0.656, abs=0.005)
    # The pruning study's part: its table (2 models x 2 methods x 3 sparsities), figures, metrics.
    assert len(section.figures) == 3
    assert all(f.png[:4] == b"\x89PNG" for f in section.figures)
    assert len(section.tables) == 2
    assert len(section.tables[1].rows) == 12
    assert "Pruning transformer forecasters" in section.summary
    assert m["pruning_patchtst_unstructured_0_mse"] > 0  # type: ignore[operator]
    assert (tmp_path / "prune-study" / "table.csv").is_file()

"""The pruning demo section: a table, figures and a summary from a (tiny) study."""

from __future__ import annotations

from pathlib import Path

from hai.forecast.pruning.demo import DEMO_SPEC, pruning_section
from hai.forecast.pruning.study import StudySpec
from hai.shared import DemoContext


def test_pruning_section(tmp_path: Path) -> None:
    spec = StudySpec(
        **{
            **DEMO_SPEC.__dict__,
            "models": ("patchtst",),
            "epochs": 1,
            "finetune_epochs": 1,
            "sparsities": (0.0, 0.5),
            "stride": 8,
            "latency_repeats": 2,
        }
    )
    section = pruning_section(DemoContext(workdir=tmp_path), spec, n_weeks=6)
    assert section.title.startswith("Pruning")
    assert len(section.tables[0].rows) == 4
    assert "patchtst" in section.summary
    assert (tmp_path / "prune-study" / "table.csv").is_file()

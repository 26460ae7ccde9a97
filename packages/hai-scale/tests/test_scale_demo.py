"""The demo end to end, and the examples in the docstrings."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import pytest

from hai.shared import DemoContext, Section

MODULES = [
    "hai.scale",
    "hai.scale.data",
    "hai.scale.models",
    "hai.scale.augment",
    "hai.scale.bnn.layers",
    "hai.scale.bnn.losses",
    "hai.scale.bnn.predictive",
    "hai.scale.parallel.engine",
    "hai.scale.parallel.workload",
    "hai.scale.forward_grad",
    "hai.scale.forward_grad.aggregation",
    "hai.scale.forward_grad.directional",
    "hai.scale.forward_grad.estimator",
    "hai.scale.forward_grad.quality",
    "hai.scale.forward_grad.tangents",
    "hai.scale.forward_grad.training",
    "hai.scale.energy.spec",
    "hai.scale.resnet",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.slow
@pytest.mark.timeout(900)  # four methods, three of them on several processes
def test_demo_runs_and_reports_real_numbers(tmp_path: Path) -> None:
    from hai.scale.demo import run

    section = run(DemoContext(workdir=tmp_path, seed=0, device="cpu"))
    assert isinstance(section, Section)
    assert section.domain == "scale"
    m = section.metrics
    n = m["quality_n_parameters"]
    assert isinstance(m["projection_k_equals_n_max_abs_error"], float)
    assert m["projection_k_equals_n_max_abs_error"] < 1e-10
    assert m[f"projection_cosine_k{n}"] == pytest.approx(1.0, abs=1e-12)
    cos = [m[f"projection_cosine_k{k}"] for k in (1, 4, 16, 64)]
    assert cos == sorted(cos)
    assert m["test_accuracy_backprop"] > 0.8  # type: ignore[operator]
    assert m["bnn_world_size"] == 2
    assert m["bnn_test_accuracy"] > 0.8  # type: ignore[operator]
    assert 0.0 <= m["bnn_test_ece"] < 0.2  # type: ignore[operator]
    assert m["bnn_step_ms_local"] > 0  # type: ignore[operator]
    assert m["bnn_step_ms_sample_parallel"] > 0  # type: ignore[operator]
    # AB-training hands fewer bytes than DDP; PowerSGD fewer still; all learn
    assert m["ab_ab_bytes_per_rank"] < 0.5 * m["ab_ddp_bytes_per_rank"]  # type: ignore[operator]
    assert m["ab_powersgd_bytes_per_rank"] < m["ab_ab_bytes_per_rank"]  # type: ignore[operator]
    assert all(m[f"ab_{k}_test_accuracy"] > 0.8 for k in ("ddp", "powersgd", "ab"))  # type: ignore[operator]
    points = ("w1-g32-l16", "w1-g64-l16", "w2-g32-l16", "w2-g64-l16")
    assert all(m[f"energy_{p}_wall_s"] > 0 for p in points)  # type: ignore[operator]
    if importlib.util.find_spec("matplotlib") is not None:
        assert len(section.figures) == 5
        assert all(f.png[:4] == b"\x89PNG" for f in section.figures)
    else:
        assert section.figures == []
        assert "matplotlib is not installed" in section.summary
    assert len(section.tables) == 5

import json
from pathlib import Path

import pytest

from hai.shared import Figure, Section, Table, atomic_write, progress, set_quiet, write_json
from hai.shared.energy import Measurement
from hai.shared.progress import progress_enabled
from hai.shared.report import DemoOutcome, write_report

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def test_atomic_write_failure_keeps_old_content(tmp_path: Path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def crash_while_writing() -> None:
        with atomic_write(target) as fh:
            fh.write("partial new content")
            raise RuntimeError("crash in the middle of writing")

    with pytest.raises(RuntimeError):
        crash_while_writing()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_json_turns_nan_into_null(tmp_path: Path):
    write_json(tmp_path / "m.json", {"x": float("nan"), "y": [1.5, float("inf")], "p": tmp_path})
    assert json.loads((tmp_path / "m.json").read_text()) == {"x": None, "y": [1.5, None], "p": str(tmp_path)}
    with pytest.raises(TypeError, match="cannot write object"):
        write_json(tmp_path / "bad.json", {"x": object()})


def test_report_has_sections_figures_metrics_and_failures(tmp_path: Path):
    section = Section(
        domain="toy",
        title="Toy <b>domain</b>",
        summary="a summary",
        metrics={"error": 1.5e-12, "converged": True},
        figures=[Figure("curve", PNG, "a curve")],
        tables=[Table("ratios", ["case", "ratio"], [["a", 2.0]])],
    )
    cost = Measurement(wall_s=1.0, cpu_s=0.5)
    outcomes = [
        DemoOutcome("toy", section, cost),
        DemoOutcome("broken", None, cost, error="ValueError: bad", details="Traceback ..."),
    ]
    files = write_report(tmp_path / "report", outcomes)
    page = files.index_html.read_text()
    assert "Toy &lt;b&gt;domain&lt;/b&gt;" in page  # escaped
    assert "figures/toy-curve.png" in page
    assert (tmp_path / "report" / "figures" / "toy-curve.png").read_bytes() == PNG
    assert "The demo failed: ValueError: bad" in page
    assert "energy unavailable here" in page
    metrics = json.loads(files.metrics_json.read_text())
    assert metrics["domains"]["toy"]["metrics"] == {"error": 1.5e-12, "converged": True}
    assert metrics["domains"]["toy"]["status"] == "ok"
    assert metrics["domains"]["broken"] == {
        "status": "failed",
        "error": "ValueError: bad",
        "cost": cost.to_dict() | {"wall_s": 1.0, "cpu_s": 0.5},
    }
    assert metrics["domains"]["toy"]["cost"]["total_energy_j"] is None


def test_progress_is_silent_when_quiet_or_not_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("HAI_QUIET", raising=False)
    # under pytest stderr is captured, so not a terminal: no bar
    assert not progress_enabled()
    assert sum(progress(range(5), desc="x")) == 10
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert progress_enabled()
    set_quiet(True)
    try:
        assert not progress_enabled()
    finally:
        set_quiet(False)
    monkeypatch.setenv("HAI_QUIET", "1")
    assert not progress_enabled()

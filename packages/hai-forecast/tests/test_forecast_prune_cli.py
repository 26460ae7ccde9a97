"""`hai forecast prune-study` and `hai forecast zoo` through the real `hai` entry point."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from hai.forecast.zoo import ZOO
from hai.forecast.zoo.data import synthetic_multiseasonal
from hai.shared.cli import main


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "panel.csv"
    synthetic_multiseasonal(24 * 20, 2).to_csv(path, index_label="time")
    return path


TINY = ["--epochs", "1", "--finetune-epochs", "1", "--history", "48", "--horizon", "24", "--stride", "8"]


def test_zoo_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(ZOO)
    for row in rows:
        module, _, cls = row["class"].rpartition(".")
        assert getattr(importlib.import_module(module), cls) is ZOO[row["name"]]
        assert row["small"]["d_model"] > 0
    assert main(["forecast", "zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ZOO)
    assert any(line.startswith("informer") and "ProbSparse" in line for line in lines)


def test_prune_study_json_then_resume(csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    argv = ["forecast", "prune-study", "--models", "patchtst", "--sparsity", "0", "0.5", *TINY]
    argv += ["--eval-stride", "48"]
    argv += ["--data", str(csv), "--out", str(out), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["rows"]
    assert [(r["method"], r["sparsity"]) for r in rows] == [
        ("unstructured", 0.0),
        ("unstructured", 0.5),
        ("structured", 0.0),
        ("structured", 0.5),
    ]
    assert all(r["status"] == "ok" for r in rows)
    assert rows[1]["weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert rows[3]["macs_ratio"] > 1.0  # heads and FFN channels removed: fewer MACs, measured
    assert rows[0]["mse_pruned"] == pytest.approx(rows[0]["mse_dense"])  # sparsity 0 changes nothing
    assert {Path(p).name for p in data["figures"]} == {"loss_vs_sparsity.png", "flops_vs_latency.png"}
    cells = {p.name for p in (out / "cells").glob("*.json")}
    assert cells == {f"patchtst__{m}__{s}.json" for m in ("structured", "unstructured") for s in ("0", "0.5")}
    # Run again: every cell is read back, nothing is retrained, the same numbers come out (also
    # from a spec.json written before a setting existed: it reads as the setting's default).
    spec = json.loads((out / "spec.json").read_text())
    del spec["structured_targets"]
    (out / "spec.json").write_text(json.dumps(spec))
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)["rows"]
    assert [r["mse_finetuned"] for r in again] == [r["mse_finetuned"] for r in rows]
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == stamps
    # The table for people.
    assert main(argv[:-1]) == 0
    text = capsys.readouterr().out
    assert "patchtst" in text
    assert f"table: {out / 'table.csv'}" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sparsity", "1.0"], "sparsity must be in [0, 1), got 1.0"),
        (["--sparsity", "-0.1"], "sparsity must be in [0, 1), got -0.1"),
        (["--sparsity", "nan"], "sparsity must be in [0, 1)"),
        (["--sparsity", "half"], "sparsity"),
        (["--models", "itransformer"], "invalid choice: 'itransformer'"),
        (["--methods", "lottery"], "invalid choice: 'lottery'"),
        (["--targets", "channels"], "invalid choice: 'channels'"),
        (["--epochs", "-1"], "--epochs"),
        (["--horizon", "30"], "multiples of --cycle-length 24"),
        (["--horizon", "2400"], "longer than the test part allows"),
        (
            ["--models", "patchtst", "transformer", "--methods", "structured", "--targets", "heads"],
            "transformer: cannot prune the heads of StepTransformerNet's module "
            "'transformer.encoder.layers.0.self_attn'",
        ),
        (["--data", "no-such.csv"], "no such CSV file"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "study"
    argv = ["forecast", "prune-study", "--data", str(csv), *TINY, "--out", str(out), *extra]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not out.exists()  # refused before anything was written


def test_failed_cells_exit_1_and_keep_the_table(
    csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell that fails is recorded and the rest finish; the command exits 1 and says so, and a
    rerun (the cause gone) retries only that cell and exits 0."""
    import hai.forecast.pruning.study as study_module
    from hai.forecast.pruning import StructuredPruningError

    real = study_module.prune_structured

    def fails(net, s, *, targets):  # type: ignore[no-untyped-def]
        if s == 0.5:
            raise StructuredPruningError("cannot prune module 'x'")
        return real(net, s, targets=targets)

    monkeypatch.setattr(study_module, "prune_structured", fails)
    out = tmp_path / "study"
    argv = ["forecast", "prune-study", "--models", "patchtst", "--sparsity", "0", "0.5", *TINY]
    argv += ["--eval-stride", "48", "--methods", "structured"]
    argv += ["--data", str(csv), "--out", str(out), "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["rows"]
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert "1 of 2 cells failed" in captured.err
    assert "rerun the same command" in captured.err
    monkeypatch.setattr(study_module, "prune_structured", real)
    assert main(argv) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["ok", "ok"]

"""The study runner: one table, cells saved as they finish, resume, failed cells, bad input, CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hai.forecast.pruning import study as study_module
from hai.forecast.pruning.cli import add_commands
from hai.forecast.pruning.structured import StructuredPruningError
from hai.forecast.pruning.study import StudySpec, run_study
from hai.forecast.zoo.data import synthetic_multiseasonal
from hai.shared import InputError

SPEC = StudySpec(
    models=("patchtst", "transformer"),
    sparsities=(0.0, 0.5),
    epochs=1,
    finetune_epochs=1,
    horizon_cycles=1,
    history_cycles=2,
    stride=8,
    latency_repeats=2,
    latency_batch=4,
)


@pytest.fixture(scope="module")
def y():
    return synthetic_multiseasonal(24 * 20, 2)


def test_study_table_resume_and_failed_cells(y, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = study_module.prune_structured

    def flaky(net, s, *, targets):
        if type(net).__name__ == "StepTransformerNet" and s == 0.5:
            raise StructuredPruningError("cannot prune module 'x'")
        return real(net, s, targets=targets)

    monkeypatch.setattr(study_module, "prune_structured", flaky)
    result = run_study(y, tmp_path, SPEC, show_progress=False)
    table = result.table
    assert len(table) == 8
    assert (tmp_path / "table.csv").is_file()
    assert (tmp_path / "table.json").is_file()
    failed = table[table["status"] == "failed"]
    assert len(failed) == 1
    assert "module 'x'" in failed["error"].iloc[0]
    ok = table[table["status"] == "ok"]
    unstructured = ok[(ok["method"] == "unstructured") & (ok["sparsity"] == 0.5)]
    assert (unstructured["weight_sparsity"] - 0.5).abs().max() < 1e-3
    assert (unstructured["macs_ratio"] == 1.0).all()  # dense kernels: zeros cost FLOPs too
    structured = ok[(ok["method"] == "structured") & (ok["sparsity"] == 0.5)]
    assert (structured["macs_ratio"] > 1.0).all()
    assert (structured["parameter_fraction"] < 1.0).all()
    assert len(list((tmp_path / "cells").glob("*.json"))) == 8
    # Resume: finished cells are read back; only the failed one runs again (and now succeeds).
    monkeypatch.setattr(study_module, "prune_structured", real)
    calls = []
    cell = study_module._cell
    monkeypatch.setattr(study_module, "_cell", lambda *a, **k: calls.append(a[:3]) or cell(*a, **k))
    again = run_study(y, tmp_path, SPEC, show_progress=False)
    assert calls == [("transformer", "structured", 0.5)]
    assert (again.table["status"] == "ok").all()
    first = json.loads((tmp_path / "cells" / "patchtst__unstructured__0.5.json").read_text())
    assert first["mse_pruned"] == again.table.iloc[1]["mse_pruned"]
    with pytest.raises(InputError, match="other settings"):
        run_study(y, tmp_path, StudySpec(**{**SPEC.__dict__, "epochs": 2}), show_progress=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sparsities": (0.5, 1.0)}, "sparsity must be in"),
        ({"models": ("itransformer",)}, "unknown zoo model"),
        ({"methods": ("lottery",)}, "unknown pruning method"),
        ({"horizon_cycles": 30}, "longer than the test part allows"),
    ],
)
def test_bad_input(y, tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        run_study(y, tmp_path, StudySpec(**{**SPEC.__dict__, **change}), show_progress=False)


def test_cli(y, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="hai forecast")
    add_commands(parser.add_subparsers(dest="command"))
    csv = tmp_path / "y.csv"
    y.to_csv(csv, index_label="time")
    args = parser.parse_args(
        [
            "prune-study",
            "--models",
            "patchtst",
            "--methods",
            "structured",
            "--sparsity",
            "0",
            "0.5",
            "--epochs",
            "1",
            "--finetune-epochs",
            "1",
            "--history",
            "48",
            "--horizon",
            "24",
            "--stride",
            "8",
            "--data",
            str(csv),
            "--out",
            str(tmp_path / "out"),
            "--json",
        ]
    )
    assert args.handler(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["sparsity"] for r in data["rows"]] == [0.0, 0.5]
    with pytest.raises(SystemExit):
        parser.parse_args(["prune-study", "--sparsity", "1.2", "--out", "x"])
    args = parser.parse_args(["prune-study", "--horizon", "100", "--out", str(tmp_path / "o2")])
    with pytest.raises(InputError, match="multiples of --cycle-length"):
        args.handler(args)
    args = parser.parse_args(["zoo", "--json"])
    assert args.handler(args) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} >= {"informer", "patchtst", "recycle"}

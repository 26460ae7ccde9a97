"""`hai scale ...` through the real `hai` entry point (hai.shared.cli.main)."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from hai.shared.cli import main


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    out = capsys.readouterr().out
    data: dict[str, Any] = json.loads(out)
    return data


def test_fg_train_synthetic_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, ["scale", "fg-train", "--epochs", "1", "--data", "synthetic", "--json"])
    assert data["data"] == "synthetic"
    assert data["gradient"] == "forward"
    assert data["tangents"] == 16
    assert data["aggregation"] == "projection"
    assert data["epochs"] == 1
    assert len(data["history"]) == 1
    assert 0.0 < data["loss"] < 5.0
    assert 0.0 <= data["accuracy"] <= 1.0
    assert 0.0 <= data["train_accuracy"] <= 1.0
    assert data["n_parameters"] == 16 * 64 + 64 + 64 * 4 + 4


def test_fg_train_options_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "scale",
        "fg-train",
        "--epochs",
        "2",
        "--tangents",
        "3",
        "--aggregation",
        "mean",
        "--distribution",
        "rademacher",
        "--scope",
        "per_tensor",
        "--scale-correction",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--hidden",
        "8",
        "--seed",
        "4",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "forward gradient, k=3, mean" in out
    assert "final: loss" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]) == 2


def test_fg_train_backprop_on_digits(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    data = run_json(
        capsys, ["scale", "fg-train", "--data", "digits", "--backprop", "--epochs", "2", "--json"]
    )
    assert data["gradient"] == "backprop"
    assert data["tangents"] is None
    assert data["accuracy"] > 0.8


def test_fg_train_bad_tangents_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale", "fg-train", "--tangents", "0", "--epochs", "1"]) == 2
    assert "number of tangents" in capsys.readouterr().err
    assert main(["scale", "fg-train", "--model", "cnn", "--data", "synthetic"]) == 2
    assert "needs image data" in capsys.readouterr().err


def test_fg_train_digits_without_scikit_learn_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> Any:
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    assert main(["scale", "fg-train", "--data", "digits", "--epochs", "1"]) == 2
    assert "hai-scale[digits]" in capsys.readouterr().err


def test_fg_quality_writes_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "q"
    data = run_json(
        capsys,
        [
            "scale",
            "fg-quality",
            "--out",
            str(out),
            "--tangents",
            "1,4,16",
            "--repeats",
            "3",
            "--hidden",
            "8",
            "--samples",
            "64",
            "--json",
        ],
    )
    expected = {"fg_quality.csv", "fg_quality.json"}
    if importlib.util.find_spec("matplotlib") is not None:
        expected.add("fg_quality.png")
    assert {Path(p).name for p in data["files"].values()} == expected
    assert all(Path(p).exists() for p in data["files"].values())
    rows = {(r["aggregation"], r["tangents"]): r for r in data["rows"]}
    assert rows[("projection", 16)]["cosine_mean"] > rows[("projection", 1)]["cosine_mean"]
    assert data["n_parameters"] == 16 * 8 + 8 + 8 * 4 + 4


def test_fg_quality_table_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        main(
            [
                "scale",
                "fg-quality",
                "--out",
                str(tmp_path),
                "--tangents",
                "2",
                "--repeats",
                "2",
                "--aggregations",
                "projection",
            ]
        )
        == 0
    )
    assert "projection" in capsys.readouterr().out
    assert main(["scale", "fg-quality", "--out", str(tmp_path), "--tangents", "0,2"]) == 2
    assert main(["scale", "fg-quality", "--out", str(tmp_path), "--tangents", "a,b"]) == 2
    assert (
        main(["scale", "fg-quality", "--out", str(tmp_path), "--model", "cnn"]) == 2
    )  # synthetic is no image
    assert main(["scale", "fg-quality", "--out", str(tmp_path), "--aggregations", "max"]) == 2


def test_scale_group_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale"]) == 2
    out = capsys.readouterr().err
    assert "fg-train" in out
    assert "fg-quality" in out


def test_fg_quality_without_matplotlib_still_writes_the_data(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    assert main(["scale", "fg-quality", "--out", str(tmp_path), "--tangents", "2", "--repeats", "1"]) == 0
    assert "no PNG written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fg_quality.csv", "fg_quality.json"]

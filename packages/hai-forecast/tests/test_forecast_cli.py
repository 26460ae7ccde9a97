"""`hai forecast ...` through the real `hai` entry point (hai.shared.cli.main)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hai.forecast import AUTO_BASELINES, synthetic_cyclic
from hai.shared.cli import main


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_backtest_baseline_json_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "forecast",
        "backtest",
        "--model",
        "last_profile",
        "--data",
        "vic_elec",
        "--out",
        str(tmp_path),
        "--json",
    ]
    data = run_json(capsys, argv)
    assert data["model"] == "last_profile"
    assert data["data"] == "vic_elec"
    assert data["n_origins"] == 30
    assert data["metrics"]["mase_day"] == pytest.approx(0.5072, abs=1e-3)  # beats seasonal naive on Victoria
    assert data["metrics"]["mase"] == pytest.approx(0.7418, abs=1e-3)  # over the same hour last week
    saved = json.loads((tmp_path / "backtest.json").read_text())
    assert saved["metrics"] == data["metrics"]
    assert (tmp_path / "backtest.png").read_bytes()[:4] == b"\x89PNG"


def test_train_then_predict_from_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv = tmp_path / "load.csv"
    synthetic_cyclic(n_cycles=40, seed=5).to_csv(csv, index_label="time")
    ckpt = tmp_path / "m.safetensors"
    argv = [
        "forecast",
        "train",
        "--data",
        str(csv),
        "--epochs",
        "2",
        "--d-model",
        "16",
        "--out",
        str(ckpt),
        "--json",
    ]
    trained = run_json(capsys, argv)
    assert trained["model"] == "recycle"
    assert trained["epochs_run"] == 2
    assert trained["train_steps"] == 32 * 24  # the last 20 % held out
    out_csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    argv = ["forecast", "predict", "--checkpoint", str(ckpt), "--data", str(csv), "--out", str(out_csv)]
    predicted = run_json(capsys, [*argv, "--plot", str(png), "--json"])
    assert predicted["start"] == "2024-02-10 00:00:00"
    assert len(predicted["forecast"]) == 24
    frame = pd.read_csv(out_csv, index_col="time")
    assert list(frame.columns) == ["forecast", "baseline"]
    assert png.exists()


def test_backtest_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["forecast", "backtest", "--data", "synthetic", "--epochs", "1", "--d-model", "16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "recycle on synthetic: 24 forecasts" in out
    # the default base is auto: the table names the candidate it chose and the validation MAEs
    chosen = re.search(r"^baseline \((\w+)\) ", out, re.MULTILINE)
    assert chosen is not None
    assert chosen.group(1) in AUTO_BASELINES
    assert f"baseline auto chose {chosen.group(1)} (validation MAE: last_profile " in out
    assert "energy" in out


def test_user_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["forecast", "backtest", "--data", "etth1"]) == 2
    assert "unknown data set" in capsys.readouterr().err
    bad = tmp_path / "gappy.csv"
    y = synthetic_cyclic(n_cycles=20).drop(pd.Timestamp("2024-01-05 03:00"))
    y.to_csv(bad, index_label="time")
    assert main(["forecast", "backtest", "--model", "seasonal_naive", "--data", str(bad)]) == 2
    assert "gap" in capsys.readouterr().err
    assert (
        main(
            ["forecast", "backtest", "--model", "seasonal_naive", "--data", str(bad), "--fill", "interpolate"]
        )
        == 0
    )


def test_backtest_recycle_with_auto_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["forecast", "backtest", "--model", "recycle", "--baseline", "auto", "--no-network"]
    data = run_json(capsys, [*argv, "--data", "vic_elec", "--country", "AU", "--subdiv", "VIC", "--json"])
    # without a network, "auto" is the recent-historic profile with the lowest validation MAE;
    # on Victoria's validation days that is the same-type mean (the test days prefer the last profile)
    assert data["baseline"] == "same_type_mean"
    assert data["metrics"] == data["baseline_metrics"]

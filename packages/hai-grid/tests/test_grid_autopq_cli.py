"""``hai grid autopq fit|predict|evaluate|tune``: JSON equal to the API, files, one-line errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("FrEIA")
pytest.importorskip("optuna")

from hai.grid.autopq.data import synthetic_series
from hai.grid.autopq.estimator import AutoPQ
from hai.grid.cli import register
from hai.shared import InputError

TINY = ["--epochs", "2", "--trials", "3", "--forecaster", "profile"]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hai grid")
    register(parser)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("autopq") / "load.csv"
    synthetic_series("load", weeks=4, seed=3).to_csv(path, index_label="time")
    return path


@pytest.fixture(scope="module")
def model_path(csv: Path) -> Path:
    out = csv.with_name("model.safetensors")
    parser = argparse.ArgumentParser(prog="hai grid")
    register(parser)
    args = parser.parse_args(["autopq", "fit", str(csv), *TINY, "--out", str(out), "--json"])
    args.handler(args)
    return out


def test_fit_json_and_saved_model(model_path: Path, csv: Path, capsys) -> None:
    assert _run(["autopq", "fit", str(csv), *TINY, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["forecaster"] == "profile"
    assert out["trials"] == 3
    model = AutoPQ.load(model_path)
    assert model.sampling_std_ == pytest.approx(out["sampling_std"])  # same seed, same result
    assert out["validation"]["crps"] == pytest.approx(model.val_scores_["crps"])


def test_predict_csv_json_and_fan_chart(model_path: Path, tmp_path: Path, capsys) -> None:
    qcsv, png = tmp_path / "q.csv", tmp_path / "fan.png"
    assert _run(["autopq", "predict", str(model_path), "--csv", str(qcsv), "--plot", str(png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    q = np.asarray(out["quantiles"])
    assert q.shape == (24, 17)
    assert (np.diff(q, axis=1) >= 0).all()
    table = pd.read_csv(qcsv, index_col=0)
    np.testing.assert_allclose(table.to_numpy(), q)
    expected = AutoPQ.load(model_path).predict(AutoPQ.load(model_path).series_)
    np.testing.assert_allclose(q, expected.to_numpy())
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_json_and_figures(model_path: Path, tmp_path: Path, capsys) -> None:
    fan, pit = tmp_path / "fan.png", tmp_path / "pit.png"
    assert _run(["autopq", "evaluate", str(model_path), "--json", "--plot", str(fan), "--pit", str(pit)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == pytest.approx(AutoPQ.load(model_path).evaluate())
    assert fan.stat().st_size > 1000
    assert pit.stat().st_size > 1000
    assert _run(["autopq", "evaluate", str(model_path)]) == 0
    assert "crps" in capsys.readouterr().out


def test_errors_are_input_errors(csv: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs --storage"):
        _run(["autopq", "tune", str(csv), *TINY])
    with pytest.raises(InputError, match="unknown forecaster"):
        _run(["autopq", "fit", str(csv), "--forecaster", "arima"])
    with pytest.raises(InputError, match="does not exist"):
        _run(["autopq", "fit", str(tmp_path / "none.csv")])
    with pytest.raises(InputError, match="unknown holiday calendar 'XX'"):
        _run(["autopq", "fit", str(csv), "--holidays", "XX"])


def test_tune_with_a_journal_storage(csv: Path, tmp_path: Path, capsys) -> None:
    storage = tmp_path / "study.log"
    argv = ["autopq", "tune", str(csv), "--epochs", "2", "--trials", "3", "--storage", str(storage), "--json"]
    assert _run(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 3
    assert storage.stat().st_size > 0


def test_hai_command_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "short.csv"
    synthetic_series("load", weeks=1).to_csv(bad, index_label="time")
    proc = subprocess.run(
        [sys.executable, "-m", "hai.shared", "grid", "autopq", "fit", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "two weeks" in proc.stderr


def test_holidays_default_to_the_simbench_calendar_for_simbench_load_profiles(csv: Path) -> None:
    import argparse

    from hai.grid.autopq.cli import _holidays

    def pick(data: str, holidays: str = "auto") -> str | None:
        return _holidays(argparse.Namespace(data=data, holidays=holidays))

    assert pick("load:G1-A") == pick("simbench:load:H0-A") == "DE-NW"
    assert pick("pv:PV3") is None
    assert pick(str(csv)) is None
    assert pick("load:G1-A", "none") is None
    assert pick(str(csv), "DE-BY") == "DE-BY"

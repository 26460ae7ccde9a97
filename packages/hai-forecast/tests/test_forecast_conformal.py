"""Conformal calibration of the quantile outputs: closed form, held-out coverage, CLI, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hai.forecast import ReCycle, backtest, load_model, save_model, synthetic_cyclic
from hai.shared import InputError
from hai.shared.cli import main

SIGMA = 0.1
Z90 = 1.2815515655446004  # the standard normal's 0.9 quantile


@pytest.fixture(scope="module")
def year():
    # No weekly effect and no trend: the day-lag residual is the difference of two noise draws.
    return synthetic_cyclic(n_cycles=365, noise=SIGMA, weekly=0.0, seed=2)


def test_closed_form_without_a_network(year) -> None:
    # The seasonal-naive base alone has no spread: the conformal 80 % interval is base ± the
    # 0.8-quantile of |y_t − y_{t−24}|, whose residual is N(0, 2σ²): ± z_0.9 · √2 · σ.
    model = ReCycle(loss="quantile", use_network=False, baseline="seasonal_naive", validation_fraction=0.3)
    result = backtest(model, year, test_fraction=0.3)
    assert model.quantile_offsets_ is not None
    lo, mid, hi = model.quantile_offsets_[0]
    assert mid == 0.0  # the point forecast is left alone
    assert lo == -hi
    assert hi == pytest.approx(Z90 * np.sqrt(2) * SIGMA, rel=0.03)
    assert 0.78 <= result.extra["interval_coverage"]["q0.1-q0.9"] <= 0.82  # 110 held-out days


def test_a_short_trained_network_is_calibrated_on_held_out_days(year) -> None:
    kwargs = {"loss": "quantile", "epochs": 5, "d_model": 16, "seed": 0, "validation_fraction": 0.3}
    raw = backtest(ReCycle(calibration="none", **kwargs), year, test_fraction=0.3)
    calibrated_model = ReCycle(**kwargs)
    calibrated = backtest(calibrated_model, year, test_fraction=0.3)
    assert raw.extra["interval_coverage"]["q0.1-q0.9"] < 0.6  # far too narrow after 5 epochs
    assert 0.78 <= calibrated.extra["interval_coverage"]["q0.1-q0.9"] <= 0.82
    np.testing.assert_array_equal(calibrated.forecast, raw.forecast)  # the median is unchanged
    # Same seed, same network: the calibrated quantiles are the raw ones plus the offsets.
    uncalibrated_model = ReCycle(calibration="none", **kwargs).fit(year.iloc[: 24 * 255])
    calibrated_model.fit(year.iloc[: 24 * 255])
    a = calibrated_model.predict_quantiles(year.iloc[: 24 * 255])
    b = uncalibrated_model.predict_quantiles(year.iloc[: 24 * 255])
    offsets = calibrated_model.quantile_offsets_
    assert offsets is not None
    np.testing.assert_allclose(a.to_numpy() - b.to_numpy(), np.broadcast_to(offsets[0], a.shape), atol=1e-9)


def test_checkpoint_and_cli_quantiles_are_calibrated(
    year, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "load.csv"
    year.iloc[: 24 * 120].to_csv(csv, index_label="time")
    ckpt = tmp_path / "q.safetensors"
    argv = ["forecast", "train", "--data", str(csv), "--loss", "quantile", "--epochs", "3", "--d-model", "16"]
    assert main([*argv, "--out", str(ckpt), "--json"]) == 0
    capsys.readouterr()
    model = load_model(ckpt)
    assert model.quantile_offsets_ is not None  # type: ignore[attr-defined]
    assert model.quantile_offsets_[0, 2] != 0.0  # type: ignore[attr-defined]
    predict = ["forecast", "predict", "--checkpoint", str(ckpt), "--data", str(csv), "--quantiles"]
    assert main([*predict, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["quantiles"]
    expected = model.predict_quantiles(year.iloc[: 24 * 120])  # type: ignore[attr-defined]
    for column in ("q0.1", "q0.9"):
        assert list(printed[column].values()) == pytest.approx(expected[column].tolist())
    fresh = tmp_path / "again.safetensors"
    save_model(model, fresh)
    np.testing.assert_array_equal(load_model(fresh).quantile_offsets_, model.quantile_offsets_)  # type: ignore[attr-defined]


def test_bad_settings() -> None:
    y = synthetic_cyclic(n_cycles=30)
    with pytest.raises(InputError, match="validation_fraction is 0"):
        ReCycle(loss="quantile", validation_fraction=0.0, epochs=1).fit(y)
    with pytest.raises(InputError, match="unknown calibration"):
        ReCycle(loss="quantile", calibration="platt", epochs=1).fit(y)
    model = ReCycle(loss="quantile", validation_fraction=0.0, calibration="none", epochs=1).fit(y)
    assert model.quantile_offsets_ is None
    assert ReCycle(epochs=1).fit(y).quantile_offsets_ is None  # point models have no intervals


def test_cli_backtest_reports_the_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["forecast", "backtest", "--data", "synthetic", "--loss", "quantile", "--epochs", "2"]
    argv += ["--d-model", "8", "--references", "none"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    coverage = data["interval_coverage"]["q0.1-q0.9"]
    assert 0.0 < coverage <= 1.0
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"interval q0.1-q0.9: covers {coverage:.1%} of the test values (nominal 80%)" in text
    assert main([*argv, "--calibration", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interval_coverage"]["q0.1-q0.9"] != coverage

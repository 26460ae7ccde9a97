"""Ridge ARX and gradient-boosted lags: closed form against scikit-learn, exactness, any origin."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from hai.forecast import LastProfile, backtest, datasets, synthetic_cyclic
from hai.forecast.data import as_frame
from hai.forecast.regression import GradientBoostedLags, RidgeARX, ridge_closed_form
from hai.shared import InputError, MissingPackageError


def weekly_with_trend(n_days: int = 70) -> pd.Series:
    """A weekly-periodic hourly profile plus a linear trend: no lag reproduces it, the trend does."""
    index = pd.date_range("2024-01-01", periods=24 * n_days, freq="h")
    hour = np.asarray(index.hour)
    weekday = np.asarray(index.dayofweek)
    shape = 10 + 3 * np.sin(2 * np.pi * hour / 24) + np.where(weekday >= 5, -2.0, 0.5 * weekday)
    return pd.Series(shape + 0.01 * np.arange(len(index)), index=index, name="load")


def test_closed_form_equals_sklearn_pipeline() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = synthetic_cyclic(n_cycles=40, seed=3)
    model = RidgeARX(alpha=3.0).fit(y)
    frame = as_frame(y)
    t = model._training_positions(frame)
    x, reference = model.features(frame, t)
    target = frame.to_numpy()[t, 0] - reference
    phase = model._phase(frame, t)
    for p in (0, 7, 23):
        rows = phase == p
        pipe = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(x[rows], target[rows])
        ours = x[rows] @ model.coef_[0, p] + model.intercept_[0, p]
        np.testing.assert_allclose(ours, pipe.predict(x[rows]), rtol=1e-9, atol=1e-9)
        coef, _ = ridge_closed_form(x[rows], target[rows], 3.0)
        np.testing.assert_allclose(coef, model.coef_[0, p])


def test_features_are_at_least_a_horizon_old() -> None:
    y = synthetic_cyclic(n_cycles=40, seed=4)
    frame = as_frame(y)
    model = RidgeARX().fit(y)
    t = 36 * 24 + np.array([0, 11, 23])  # a Tuesday
    x, reference = model.features(frame, t)
    names = model.feature_names
    values = frame.to_numpy()[:, 0]
    # 2024-01-01 is a Monday; no holidays without a country: Tue..Fri <- the day before.
    weekday = np.asarray(frame.index[t].dayofweek)
    assert set(weekday.tolist()) <= {1, 2, 3, 4}
    np.testing.assert_allclose(reference, values[t - 24])
    np.testing.assert_allclose(x[:, names.index("lag_week")], values[t - 168] - reference)
    np.testing.assert_allclose(x[:, names.index("lag_recent")], 0.0)  # the day before is the reference
    level = np.array([values[i - 24 - 23 : i - 24 + 1].mean() for i in t])
    np.testing.assert_allclose(x[:, names.index("level")], level - reference)


def test_learns_a_trend_no_lag_has() -> None:
    y = weekly_with_trend()
    result = backtest(RidgeARX(alpha=1e-9), y)
    naive = backtest(LastProfile(), y)
    # The residual over the last same-type day is the trend times the gap: linear in the
    # weekday dummies, so a (nearly) unpenalised ridge forecasts exactly.
    assert result.metrics["mae"] < 1e-6
    assert naive.metrics["mae"] > 0.2
    assert result.metrics["mase"] < 1e-5


def test_any_origin_and_no_look_ahead() -> None:
    y = synthetic_cyclic(n_cycles=40, seed=5)
    model = RidgeARX().fit(y.iloc[: 24 * 30])
    at_midnight = model.predict_at(y, [24 * 32])[0, :, 0]
    later = model.predict_at(y, [24 * 32 + 5])[0, :, 0]
    np.testing.assert_allclose(later[:-5], at_midnight[5:])  # the forecast of a step is its own
    changed = y.copy()
    changed.iloc[24 * 32 :] += 1000.0  # the future
    np.testing.assert_allclose(model.predict_at(changed, [24 * 32])[0, :, 0], at_midnight)


def test_victoria_beats_the_profiles() -> None:
    data = datasets.load("vic_elec")
    ridge = backtest(RidgeARX(country=data.country, subdiv=data.subdiv), data.y)
    profile = backtest(LastProfile(country=data.country, subdiv=data.subdiv), data.y)
    assert ridge.metrics["mase"] == pytest.approx(0.656, abs=0.005)  # over the week-lag naive
    assert ridge.metrics["mase"] < profile.metrics["mase"] - 0.05
    assert ridge.n_origins == profile.n_origins == 30


def test_multicolumn_fits_each_column() -> None:
    a = synthetic_cyclic(n_cycles=30, seed=1)
    frame = pd.DataFrame({"a": a, "b": 2 * synthetic_cyclic(n_cycles=30, seed=2)})
    both = RidgeARX().fit(frame).predict(frame)
    alone = RidgeARX().fit(frame["b"]).predict(frame["b"])
    np.testing.assert_allclose(both["b"].to_numpy(), alone.to_numpy())


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_alpha(alpha: object) -> None:
    with pytest.raises(InputError, match="alpha"):
        RidgeARX(alpha=alpha).fit(synthetic_cyclic(n_cycles=30))  # type: ignore[arg-type]


def test_too_short_series() -> None:
    with pytest.raises(InputError, match="needs more than"):
        RidgeARX().fit(synthetic_cyclic(n_cycles=21))


def test_gradient_boosted_lags_beats_weekly_naive() -> None:
    pytest.importorskip("lightgbm")  # the optional extra; its absence is tested below
    y = weekly_with_trend(56) + 0.3 * np.sin(np.arange(24 * 56) / 5.0)
    result = backtest(GradientBoostedLags(n_estimators=100), y)
    assert result.metrics["mase"] < 0.5
    again = backtest(GradientBoostedLags(n_estimators=100), y)
    np.testing.assert_array_equal(again.forecast, result.forecast)  # seeded, one thread


def test_gradient_boosted_lags_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm now raises ImportError
    with pytest.raises(MissingPackageError, match=r"hai-forecast\[lightgbm\]"):
        GradientBoostedLags().fit(synthetic_cyclic(n_cycles=30))


def test_checkpoints_round_trip(tmp_path) -> None:
    from hai.forecast import load_model, save_model

    y = synthetic_cyclic(n_cycles=40, seed=6)
    models = [RidgeARX(alpha=2.0)]
    try:
        import lightgbm  # noqa: F401

        models.append(GradientBoostedLags(n_estimators=30))
    except ImportError:
        pass
    for model in models:
        model.fit(y.iloc[: 24 * 30])
        path = tmp_path / f"{model.name}.safetensors"
        save_model(model, path)
        loaded = load_model(path)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.predict_at(y, [24 * 33 + 7]), model.predict_at(y, [24 * 33 + 7]))


def test_cli_backtest_shows_the_references(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hai.shared.cli import main

    argv = ["forecast", "backtest", "--model", "last_profile", "--references", "weekly_naive", "ridge_arx"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["references"]) == {"weekly_naive", "ridge_arx"}
    assert data["references"]["weekly_naive"]["metrics"]["mase"] == pytest.approx(1.0)
    assert data["references"]["ridge_arx"]["metrics"]["mase"] == pytest.approx(0.656, abs=0.005)
    assert data["metrics"]["mase"] == pytest.approx(0.7418, abs=1e-3)
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ridge_arx") for line in lines)
    ridge = ["forecast", "backtest", "--model", "ridge_arx", "--alpha", "30", "--references", "none"]
    assert main([*ridge, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["mase"] == pytest.approx(0.667, abs=0.005)
    assert main(["forecast", "backtest", "--model", "ridge_arx", "--json"]) == 0  # auto references
    assert "ridge_arx" not in json.loads(capsys.readouterr().out)["references"]  # not itself

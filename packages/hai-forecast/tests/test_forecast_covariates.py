"""Future-known covariates (temperature ...): ReCycle and the lag regressions use them, the CLI
takes them only when asked (--covariates), never as a second target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hai.forecast import (
    GradientBoostedLags,
    LastProfile,
    ReCycle,
    RidgeARX,
    StepTransformer,
    backtest,
    load_model,
    save_model,
    synthetic_with_temperature,
)
from hai.forecast.data import read_csv_with_covariates
from hai.shared import InputError
from hai.shared.cli import main

#: The load's sensitivity to the temperature: y = profile + EFFECT · temperature.
EFFECT = 0.2
NET = {"epochs": 30, "d_model": 16, "dim_feedforward": 32, "seed": 0}


def load_and_temperature(n_cycles: int = 120, seed: int = 0) -> tuple[pd.Series, pd.Series]:
    """A cyclic load plus EFFECT × a temperature whose daily level wanders (AR(1)): the load's own
    lags cannot foresee it, the future-known temperature explains it."""
    return synthetic_with_temperature(n_cycles, effect=EFFECT, seed=seed)


@pytest.fixture(scope="module")
def data() -> tuple[pd.Series, pd.Series]:
    return load_and_temperature()


def test_ridge_arx_uses_the_covariate(data: tuple[pd.Series, pd.Series]) -> None:
    y, temperature = data
    without = backtest(RidgeARX(), y)
    with_cov = backtest(RidgeARX(), y, covariates=temperature)
    assert with_cov.metrics["mae"] < 0.4 * without.metrics["mae"]
    assert with_cov.extra["covariates"] == ["temperature"]
    model = RidgeARX(alpha=1e-6).fit(y, covariates=temperature)
    names = model.feature_names
    assert names[-2:] == ["temperature_change", "temperature"]
    # the residual over the reference is EFFECT × the temperature's change over the reference's
    change = model.coef_[0, :, names.index("temperature_change")]
    np.testing.assert_allclose(change, EFFECT, atol=0.02)
    # without covariates the features (and checkpoints) are as before
    assert RidgeARX().fit(y).coef_.shape == (1, 24, 12)
    # LightGBM reads the same features
    trees = {"n_estimators": 100, "num_leaves": 7}
    lgb_without = backtest(GradientBoostedLags(**trees), y)
    lgb_with = backtest(GradientBoostedLags(**trees), y, covariates=temperature)
    assert lgb_with.metrics["mae"] < 0.6 * lgb_without.metrics["mae"]


def test_recycle_uses_the_covariate(data: tuple[pd.Series, pd.Series]) -> None:
    y, temperature = data
    without = backtest(ReCycle(baseline="last_profile", **NET), y)
    with_cov = backtest(ReCycle(baseline="last_profile", **NET), y, covariates=temperature)
    assert with_cov.metrics["mae"] < 0.6 * without.metrics["mae"]
    # and it does better than its baseline, which cannot see the temperature
    assert with_cov.metrics["mae"] < 0.6 * with_cov.extra["baseline_metrics"]["mae"]


def test_the_forecast_reads_the_horizon_and_nothing_after_it(data: tuple[pd.Series, pd.Series]) -> None:
    y, temperature = data
    history = y.iloc[: 24 * 100]
    end = history.index[-1]
    for model in (
        RidgeARX().fit(history, covariates=temperature),
        ReCycle(baseline="last_profile", epochs=2, patience=None).fit(history, covariates=temperature),
    ):
        forecast = model.predict(history, covariates=temperature)
        assert forecast.index[0] == end + pd.Timedelta("1h")
        later = temperature.copy()
        later[later.index > forecast.index[-1]] += 50.0  # after the horizon: unused
        assert np.array_equal(model.predict(history, covariates=later).to_numpy(), forecast.to_numpy())
        warmer = temperature.copy()
        warmer[warmer.index > end] += 5.0  # inside the horizon: used
        assert not np.allclose(model.predict(history, covariates=warmer).to_numpy(), forecast.to_numpy())


def test_covariates_missing_or_wrong_are_clear_errors(data: tuple[pd.Series, pd.Series]) -> None:
    y, temperature = data
    history = y.iloc[: 24 * 100]
    model = RidgeARX().fit(history, covariates=temperature)
    up_to_now = temperature.iloc[: 24 * 100]  # nothing for the forecast horizon
    with pytest.raises(InputError, match=r"no value for 2024-04-10 00:00:00.*forecast horizon"):
        model.predict(history, covariates=up_to_now)
    with pytest.raises(InputError, match="fitted with the covariates temperature, and none were given"):
        model.predict(history)
    with pytest.raises(InputError, match="lack the column"):
        model.predict(history, covariates=temperature.rename("humidity"))
    with pytest.raises(InputError, match="fitted without covariates"):
        RidgeARX().fit(history).predict(history, covariates=temperature)
    with pytest.raises(InputError, match="takes no covariates"):
        LastProfile().fit(history, covariates=temperature)
    with pytest.raises(InputError, match="takes no covariates"):
        StepTransformer(epochs=0).fit(history, covariates=temperature)
    with pytest.raises(InputError, match="no value for"):  # they must cover the training series
        RidgeARX().fit(history, covariates=temperature.iloc[24:])
    with pytest.raises(InputError, match="step of 0 days 00:30:00"):
        RidgeARX().fit(history, covariates=temperature.resample("30min").interpolate())
    with pytest.raises(InputError, match="both a target column and a covariate"):
        RidgeARX().fit(history.to_frame(), covariates=history.to_frame())
    with pytest.raises(InputError, match="NaN"):
        RidgeARX().fit(history, covariates=temperature.where(temperature.index != temperature.index[5]))
    with pytest.raises(InputError, match="different time zones"):
        RidgeARX().fit(history, covariates=temperature.tz_localize("UTC"))


def test_checkpoints_round_trip_with_covariates(data: tuple[pd.Series, pd.Series], tmp_path: Path) -> None:
    y, temperature = data
    history = y.iloc[: 24 * 100]
    models = {
        "ridge": RidgeARX().fit(history, covariates=temperature),
        # auto: every candidate gets the covariates; the kept one is saved
        "recycle": ReCycle(epochs=3, patience=None, d_model=16, dim_feedforward=32).fit(
            history, covariates=temperature
        ),
    }
    for name, model in models.items():
        path = tmp_path / f"{name}.safetensors"
        save_model(model, path)
        loaded = load_model(path)
        assert loaded.covariates_ == ["temperature"]
        assert np.array_equal(
            loaded.predict(history, covariates=temperature).to_numpy(),
            model.predict(history, covariates=temperature).to_numpy(),
        )
        with pytest.raises(InputError, match="fitted with the covariates temperature"):
            loaded.predict(history)
    recycle = models["recycle"]
    assert isinstance(recycle, ReCycle)
    assert sorted(recycle.baseline_scores_) == ["last_profile", "same_type_mean", "ten_day_mean"]


def write_csv(path: Path, y: pd.Series, temperature: pd.Series) -> Path:
    """A CSV of the load and the temperature; temperature rows past the load leave the load blank."""
    frame = pd.DataFrame({"load": y}).join(temperature, how="outer")
    frame.to_csv(path, index_label="time")
    return path


def test_read_csv_with_covariates_keeps_the_future_rows(tmp_path: Path) -> None:
    y, temperature = load_and_temperature(n_cycles=10)
    csv = write_csv(tmp_path / "l.csv", y.iloc[:-24], temperature)
    targets, covariates = read_csv_with_covariates(csv, ["temperature"])
    assert list(targets.columns) == ["load"]
    assert targets.index[-1] == y.index[-25]
    assert covariates.index[-1] == y.index[-1]
    np.testing.assert_allclose(covariates["temperature"].to_numpy(), temperature.to_numpy())
    with pytest.raises(InputError, match="both as a value column"):
        read_csv_with_covariates(csv, ["temperature"], columns=["temperature"])
    with pytest.raises(InputError, match="no numeric column"):
        read_csv_with_covariates(csv, ["humidity"])


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip()
    assert "\n" not in line
    assert needle in line
    return line


def test_cli_takes_a_covariate_only_when_asked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    y, temperature = load_and_temperature()
    csv = write_csv(tmp_path / "load.csv", y, temperature)
    ridge = ["--model", "ridge_arx", "--references", "none", "--json"]
    # an extra numeric column is never a second target: the CLI asks which is which
    line = one_line_error(capsys, ["forecast", "backtest", "--data", str(csv), *ridge], "2 numeric columns")
    assert "--value-column" in line
    assert "--covariates" in line
    out = tmp_path / "never"
    one_line_error(capsys, ["forecast", "train", "--data", str(csv), "--out", str(out)], "load, temperature")
    assert not out.exists()
    # as a covariate it lowers the error; naming the target alone ignores it
    assert main(["forecast", "backtest", "--data", str(csv), "--covariates", "temperature", *ridge]) == 0
    with_cov = json.loads(capsys.readouterr().out)
    assert with_cov["columns"] == ["load"]
    assert with_cov["covariates"] == ["temperature"]
    assert main(["forecast", "backtest", "--data", str(csv), "--value-column", "load", *ridge]) == 0
    without = json.loads(capsys.readouterr().out)
    assert without["columns"] == ["load"]
    assert "covariates" not in without
    assert with_cov["metrics"]["mae"] < 0.4 * without["metrics"]["mae"]
    expected = backtest(RidgeARX(), y, covariates=temperature)
    assert with_cov["metrics"]["mae"] == pytest.approx(expected.metrics["mae"], rel=1e-12)
    # covariates on a model without them: one line, exit 2
    baseline = ["forecast", "backtest", "--data", str(csv), "--model", "last_profile"]
    one_line_error(capsys, [*baseline, "--covariates", "temperature"], "takes no covariates")
    one_line_error(
        capsys, ["forecast", "backtest", "--data", "synthetic", "--covariates", "t"], "apply to CSV files"
    )


def test_cli_train_then_predict_with_the_horizon_s_covariates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    y, temperature = load_and_temperature(n_cycles=60)
    history = y.iloc[:-24]
    train_csv = write_csv(tmp_path / "train.csv", history, temperature.iloc[:-24])
    ckpt = tmp_path / "ridge.safetensors"
    train = ["forecast", "train", "--model", "ridge_arx", "--data", str(train_csv), "--test-fraction", "0"]
    assert main([*train, "--covariates", "temperature", "--out", str(ckpt), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["covariates"] == ["temperature"]
    # the last day's rows hold the temperature with the load blank: the forecast horizon
    future_csv = write_csv(tmp_path / "future.csv", history, temperature)
    predict = ["forecast", "predict", "--checkpoint", str(ckpt)]
    assert main([*predict, "--data", str(future_csv), "--covariates", "temperature", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    expected = RidgeARX().fit(history, covariates=temperature).predict(history, covariates=temperature)
    got = np.array(list(document["forecast"].values()))
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-12)
    assert document["start"] == str(y.index[-24])
    # forgetting --covariates, or a CSV without the horizon's temperatures: one line, exit 2
    forgot = [*predict, "--data", str(future_csv), "--value-column", "load"]
    one_line_error(capsys, forgot, "--covariates temperature")
    one_line_error(
        capsys, [*predict, "--data", str(train_csv), "--covariates", "temperature"], "forecast horizon"
    )


def test_edited_covariate_checkpoints_are_refused(data: tuple[pd.Series, pd.Series], tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from hai.forecast import LastProfile
    from hai.shared import CheckpointError

    y, temperature = data
    history = y.iloc[: 24 * 60]
    sources = {
        "ridge": RidgeARX().fit(history, covariates=temperature),
        "recycle": ReCycle(baseline="last_profile", epochs=1, d_model=8, dim_feedforward=8).fit(
            history, covariates=temperature
        ),
        "baseline": LastProfile().fit(history),
    }
    for name, model in sources.items():
        save_model(model, tmp_path / f"{name}.safetensors")

    def rewrite(name: str, edit: object) -> Path:
        with safe_open(str(tmp_path / f"{name}.safetensors"), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            meta = json.loads((f.metadata() or {})["hai"])
        edit(tensors, meta)  # type: ignore[operator]
        target = tmp_path / f"edited-{name}.safetensors"
        save_file(tensors, str(target), metadata={"hai": json.dumps(meta)})
        return target

    def strip_covariates(tensors: dict[str, object], meta: dict[str, dict[str, object]]) -> None:
        meta["extra"].pop("covariates")
        tensors.pop("covariates.offset")
        tensors.pop("covariates.scale")

    cases = {
        # the ridge coefficients of 14 features, read as a model without covariates (12)
        "no covariate names": (
            "ridge",
            lambda t, m: m["extra"].pop("covariates"),
            "ridge.coef",
        ),
        "covariates on a baseline": (
            "baseline",
            lambda t, m: m["extra"].update(covariates=["temperature"]),
            "takes no covariates",
        ),
        "names not strings": ("ridge", lambda t, m: m["extra"].update(covariates=[1]), "malformed"),
        "no covariate scaler": ("recycle", lambda t, m: t.pop("covariates.scale"), "covariates.scale"),
        "a zero covariate scale": (
            "recycle",
            lambda t, m: t.__setitem__("covariates.scale", t["covariates.scale"] * 0),
            "not finite",
        ),
        # the network's input layer is sized for the covariate channels
        "network without covariates": (
            "recycle",
            strip_covariates,
            "encoder_in.weight",
        ),
    }
    for name, edit, needle in cases.values():
        with pytest.raises(CheckpointError, match=needle):
            load_model(rewrite(name, edit))


def test_quantiles_and_interval_coverage_with_covariates(data: tuple[pd.Series, pd.Series]) -> None:
    y, temperature = data
    history = y.iloc[: 24 * 60]
    params = {"baseline": "last_profile", "loss": "quantile", "epochs": 2, "patience": None, "d_model": 8}
    model = ReCycle(dim_feedforward=8, **params).fit(history, covariates=temperature)
    quantiles = model.predict_quantiles(history, covariates=temperature)
    assert list(quantiles.columns) == ["q0.1", "q0.5", "q0.9"]
    # the median column is the point forecast, with the same covariates
    point = model.predict(history, covariates=temperature)
    np.testing.assert_array_equal(quantiles["q0.5"].to_numpy(), point.to_numpy())
    with pytest.raises(InputError, match="fitted with the covariates"):
        model.predict_quantiles(history)
    with pytest.raises(InputError, match="forecast horizon"):
        model.predict_quantiles(history, covariates=temperature.iloc[: 24 * 60 + 12])
    series = y.iloc[: 24 * 70]
    tested = ReCycle(dim_feedforward=8, **params)
    result = backtest(tested, series, covariates=temperature)
    # the backtest's coverage is that of the quantiles with the covariates, counted by hand
    origins = np.array([series.index.get_loc(o) for o in result.origins])
    q = tested.predict_quantiles_at(series, origins, covariates=temperature)
    inside = (result.truth >= q[..., 0]) & (result.truth <= q[..., 2])
    assert result.extra["interval_coverage"]["q0.1-q0.9"] == pytest.approx(float(inside.mean()), abs=1e-12)

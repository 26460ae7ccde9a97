"""AutoPQ estimator: fit/predict/evaluate, limits, persistence, tuning storage, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("FrEIA")
pytest.importorskip("optuna")

from hai.grid.autopq import metrics
from hai.grid.autopq.data import synthetic_series
from hai.grid.autopq.estimator import AutoPQ
from hai.grid.autopq.quantiles import LEVELS
from hai.grid.autopq.tuning import SAMPLING_STD_RANGE, open_storage
from hai.shared import InputError

TINY = {"epochs": 2, "blocks": 2, "n_trials": 3, "sample_size": 50}


@pytest.fixture(scope="module")
def load() -> pd.Series:
    return synthetic_series("load", weeks=4, seed=2)


@pytest.fixture(scope="module")
def fitted(load: pd.Series) -> AutoPQ:
    return AutoPQ("seasonal_naive", **TINY).fit(load)


def test_predict_gives_monotone_quantiles_of_the_next_day(fitted: AutoPQ, load: pd.Series) -> None:
    q = fitted.predict(load.iloc[:-24])
    assert q.shape == (24, 17)
    assert list(q.columns) == list(LEVELS)
    assert q.index[0] == load.index[-24]
    assert q.index[-1] == load.index[-1]
    assert (np.diff(q.to_numpy(), axis=1) >= 0).all()
    assert np.isfinite(q.to_numpy()).all()


def test_study_tuned_sampling_std(fitted: AutoPQ) -> None:
    assert len(fitted.study_.trials) == 3
    assert fitted.sampling_std_ == fitted.study_.best_params["sampling_std"]
    assert SAMPLING_STD_RANGE[0] <= fitted.sampling_std_ <= SAMPLING_STD_RANGE[1]
    origins = fitted.split_.origins("val", horizon=24, history=fitted.history_)
    truth = fitted.series_.to_numpy()[origins[:, None] + np.arange(24)]
    raw = fitted.quantiles_at(fitted.series_, origins, calibrated=False)
    assert fitted.study_.best_value == pytest.approx(metrics.crps_ensemble(truth, raw).mean(), rel=1e-9)
    assert all(t.user_attrs["wall_s"] > 0 for t in fitted.study_.trials)


def test_the_calibration_covers_the_validation_part_at_every_level(fitted: AutoPQ) -> None:
    # Fitted on the validation part, so in-sample: per level and step, the fraction of
    # observations below the calibrated quantile is the level (up to one observation and ties).
    origins = fitted.split_.origins("val", horizon=24, history=fitted.history_)
    truth = fitted.series_.to_numpy()[origins[:, None] + np.arange(24)]
    q = fitted.quantiles_at(fitted.series_, origins)
    below = (truth[..., None] < q).mean(axis=0)  # (step, level)
    outside_median = [j for j, level in enumerate(LEVELS) if level != 0.5]
    error = np.abs(below[:, outside_median] - np.array(LEVELS)[outside_median]).max()
    assert error <= 2.0 / len(origins) + 0.02
    assert fitted.val_scores_["coverage_80"] == pytest.approx(0.8, abs=0.03)
    assert fitted.val_scores_["crps"] == pytest.approx(metrics.crps_ensemble(truth, q).mean(), rel=1e-12)


def test_calibrate_false_gives_the_reference_quantiles(fitted: AutoPQ, load: pd.Series) -> None:
    plain = AutoPQ("seasonal_naive", calibrate=False, **TINY).fit(load)
    origins = fitted.split_.origins("test", horizon=24, history=fitted.history_)
    assert plain.sampling_std_ == fitted.sampling_std_  # same study, the calibration comes after it
    np.testing.assert_array_equal(plain.calibration_.factors, 1.0)
    np.testing.assert_allclose(
        plain.quantiles_at(load, origins), fitted.quantiles_at(load, origins, calibrated=False), rtol=1e-12
    )
    assert plain.evaluate()["calibrated"] is False
    assert fitted.evaluate()["calibrated"] is True


def test_evaluate_equals_the_metrics_of_the_test_quantiles(fitted: AutoPQ, load: pd.Series) -> None:
    scores = fitted.evaluate()
    origins = fitted.split_.origins("test", horizon=24, history=fitted.history_)
    q = fitted.quantiles_at(load, origins)
    truth = load.to_numpy()[origins[:, None] + np.arange(24)]
    assert scores["crps"] == pytest.approx(metrics.crps_ensemble(truth, q).mean(), rel=1e-12)
    assert scores["n"] == truth.size
    assert 0.0 <= scores["coverage_80"] <= scores["coverage_98"] <= 1.0


def test_save_and_load_give_the_same_forecast(fitted: AutoPQ, load: pd.Series, tmp_path) -> None:
    path = fitted.save(tmp_path / "model.safetensors")
    back = AutoPQ.load(path)
    pd.testing.assert_frame_equal(back.predict(load), fitted.predict(load))
    assert back.sampling_std_ == fitted.sampling_std_
    np.testing.assert_array_equal(back.calibration_.factors, fitted.calibration_.factors)
    assert (fitted.calibration_.factors != 1.0).any()


def test_pv_limits_keep_quantiles_non_negative() -> None:
    pv = synthetic_series("pv", weeks=4, seed=1)
    model = AutoPQ("profile", forecast_limits=(0, None), **TINY).fit(pv)
    q = model.predict(pv)
    assert q.to_numpy().min() >= 0.0
    assert (q[0.01] == 0.0).any()  # the limit was active, the order kept
    assert (np.diff(q.to_numpy(), axis=1) >= 0).all()


def test_auto_selects_by_validation_mae(load: pd.Series) -> None:
    model = AutoPQ("auto", **TINY).fit(load)
    assert set(model.selection_) >= {"seasonal_naive", "profile", "linear"}
    assert model.forecaster_.name == min(model.selection_, key=model.selection_.__getitem__)


def test_an_interrupted_study_keeps_its_finished_trials(load: pd.Series, tmp_path, monkeypatch) -> None:
    from hai.grid.autopq import tuning

    storage = tmp_path / "study.log"
    calls = {"n": 0}
    original = tuning.Problem.crps

    def crps(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tuning.Problem, "crps", crps)
    with pytest.raises(KeyboardInterrupt):
        AutoPQ("seasonal_naive", storage=storage, **{**TINY, "n_trials": 5}).fit(load)
    monkeypatch.setattr(tuning.Problem, "crps", original)
    study = tuning.create_study(open_storage(storage), "autopq")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 2
    # resuming runs only the missing trials
    model = AutoPQ("seasonal_naive", storage=storage, **{**TINY, "n_trials": 5}).fit(load)
    assert len([t for t in model.study_.trials if t.state.name == "COMPLETE"]) == 5


def test_advanced_config_searches_forecasters(load: pd.Series) -> None:
    model = AutoPQ("auto", "advanced", **{**TINY, "n_trials": 4}).fit(load)
    best = model.study_.best_params
    assert model.forecaster_.name == best["forecaster"]
    assert model.sampling_std_ == best["sampling_std"]


@pytest.mark.slow
def test_two_workers_share_one_study(load: pd.Series, tmp_path) -> None:
    storage = tmp_path / "shared.log"
    model = AutoPQ(
        "seasonal_naive", "advanced", storage=storage, workers=2, study_name="two", **{**TINY, "n_trials": 4}
    ).fit(load)
    trials = model.study_.trials
    assert len(trials) == 4
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert model.sampling_std_ == model.study_.best_params["sampling_std"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"forecaster": "arima"}, "unknown forecaster"),
        ({"config": "fast"}, "unknown config"),
        ({"horizon": 0}, "horizon"),
        ({"workers": 2}, "shared storage"),
        ({"forecast_limits": (1, 0)}, "low < high"),
        ({"holidays": "XX"}, "unknown holiday calendar 'XX'"),
        ({"holidays": 49}, "country code"),
        ({"latent_noise": "uniform"}, "unknown latent_noise"),
    ],
)
def test_bad_parameters(kwargs, message: str, load: pd.Series) -> None:
    with pytest.raises(InputError, match=message):
        AutoPQ(**kwargs).fit(load)


def test_bad_series_and_horizon(load: pd.Series) -> None:
    with pytest.raises(InputError, match="two weeks"):
        AutoPQ(**TINY).fit(load.iloc[:300])
    with pytest.raises(InputError, match="horizon of 160"):
        AutoPQ("seasonal_naive", horizon=160, **TINY).fit(load)
    with pytest.raises(InputError, match="not fitted"):
        AutoPQ().predict(load)


def test_bad_storage(tmp_path) -> None:
    with pytest.raises(InputError, match="storage"):
        open_storage(tmp_path / "missing" / "study.db")
    with pytest.raises(InputError, match="storage kind"):
        open_storage(tmp_path / "study.txt")
    with pytest.raises(InputError, match="cannot open the optuna storage"):
        open_storage("nosuchdialect://user@host/db")


def test_a_holiday_calendar_is_used_and_kept_by_save_and_load(tmp_path) -> None:
    pytest.importorskip("holidays")
    # working days 1.0 in the daytime, Sundays and NRW's holidays 0.2 (+ a little noise)
    idx = pd.date_range("2016-04-01", "2016-05-25 23:00", freq="h")
    from hai.grid.autopq.data import day_of_week

    sunday = day_of_week(idx, "DE-NW") == 6
    level = np.where(sunday, 0.2, np.where((idx.hour >= 8) & (idx.hour < 18), 1.0, 0.5))
    y = pd.Series(level + 0.01 * np.random.default_rng(0).normal(size=len(idx)), index=idx)
    model = AutoPQ("profile", holidays="DE-NW", **TINY).fit(y)
    plain = AutoPQ("profile", **TINY).fit(y)
    noon = pd.Timestamp("2016-05-26 12:00")  # Corpus Christi, a Thursday
    assert abs(model.predict(y).loc[noon, 0.5] - 0.2) < 0.1
    assert plain.predict(y).loc[noon, 0.5] > 0.8
    back = AutoPQ.load(model.save(tmp_path / "model.safetensors"))
    assert back.holidays == "DE-NW"
    assert back.quantile_model_.holidays == "DE-NW"
    assert back.forecaster_.holidays == "DE-NW"
    assert back.latent_noise == back.quantile_model_.noise == "additive"
    pd.testing.assert_frame_equal(back.predict(y), model.predict(y))

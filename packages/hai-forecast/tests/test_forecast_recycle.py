"""ReCycle: exact baseline fallback, residual learning, training, quantiles, checkpoints, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hai.forecast import (
    AUTO_BASELINES,
    LastProfile,
    ReCycle,
    ReCycleNet,
    SameTypeMean,
    load_model,
    make_baseline,
    save_model,
    synthetic_cyclic,
)
from hai.shared import InputError

SMALL = {"d_model": 16, "nhead": 2, "dim_feedforward": 32, "seed": 0}


@pytest.fixture(scope="module")
def y() -> pd.Series:
    return synthetic_cyclic(n_cycles=60, noise=0.03, trend=0.3, seed=1)


def test_without_network_it_is_the_baseline_exactly(y: pd.Series) -> None:
    model = ReCycle(use_network=False, baseline="same_type_mean", baseline_params={"k": 2}).fit(y)
    assert model.net_ is None
    expected = SameTypeMean(k=2).fit(y).predict(y)
    got = model.predict(y)
    assert got.index.equals(expected.index)
    assert np.array_equal(got.to_numpy(), expected.to_numpy())  # bit for bit, not approx
    assert np.array_equal(model.predict_baseline(y).to_numpy(), expected.to_numpy())


def test_zero_residual_network_returns_the_baseline_exactly(y: pd.Series) -> None:
    model = ReCycle(epochs=3, patience=None, baseline="last_profile", **SMALL).fit(y)
    assert model.net_ is not None
    assert not np.array_equal(model.predict(y).to_numpy(), LastProfile().fit(y).predict(y).to_numpy())
    assert isinstance(model.net_, ReCycleNet)
    with torch.no_grad():
        model.net_.head.weight.zero_()
        model.net_.head.bias.zero_()
    assert np.array_equal(model.predict(y).to_numpy(), LastProfile().fit(y).predict(y).to_numpy())


def test_untrained_recycle_starts_at_its_baseline(y: pd.Series) -> None:
    model = ReCycle(epochs=0, baseline="last_profile", **SMALL).fit(y)
    assert np.array_equal(model.predict(y).to_numpy(), LastProfile().fit(y).predict(y).to_numpy())


def test_training_lowers_the_loss_and_records_history(y: pd.Series) -> None:
    model = ReCycle(epochs=15, patience=None, baseline="seasonal_naive", **SMALL).fit(y)
    history = model.history_
    assert [r.epoch for r in history] == list(range(16))  # epoch 0 = untrained validation loss
    assert history[0].train_loss is None
    assert history[-1].train_loss < history[1].train_loss  # type: ignore[operator]
    assert min(r.val_loss for r in history[1:]) < history[0].val_loss  # type: ignore[type-var]
    assert model.best_epoch_ == min(history, key=lambda r: r.val_loss).epoch  # type: ignore[arg-type, return-value]
    assert model.epoch_time_s_ > 0
    assert model.n_parameters_ == sum(p.numel() for p in model.net_.parameters())  # type: ignore[union-attr]
    assert model.fit_cost_.wall_s > 0


def test_early_stopping_stops_and_restores(y: pd.Series) -> None:
    model = ReCycle(epochs=200, patience=2, lr=5e-2, **SMALL).fit(y)
    last = model.history_[-1].epoch
    assert model.stopped_early_
    assert last < 200
    assert last - model.best_epoch_ == 2


def test_forecast_has_timestamps_and_frame_shape(y: pd.Series) -> None:
    model = ReCycle(epochs=1, horizon_cycles=2, **SMALL).fit(y.iloc[: 24 * 40])
    f = model.predict(y.iloc[: 24 * 40])
    assert isinstance(f, pd.Series)
    assert f.name == "load"
    assert len(f) == 48
    assert f.index[0] == y.index[24 * 40]
    assert pd.Timedelta(f.index.freq) == pd.Timedelta("1h")
    multi = synthetic_cyclic(n_cycles=40, n_series=2)
    fm = ReCycle(epochs=1, **SMALL).fit(multi).predict(multi)
    assert isinstance(fm, pd.DataFrame)
    assert list(fm.columns) == ["load_0", "load_1"]
    assert fm.shape == (24, 2)


def test_quantile_loss_gives_ordered_intervals(y: pd.Series) -> None:
    model = ReCycle(epochs=8, patience=None, loss="quantile", quantiles=(0.1, 0.5, 0.9), **SMALL).fit(y)
    q = model.predict_quantiles(y)
    assert list(q.columns) == ["q0.1", "q0.5", "q0.9"]
    assert (q["q0.1"] <= q["q0.5"]).all()
    assert (q["q0.5"] <= q["q0.9"]).all()
    assert (q["q0.9"] - q["q0.1"]).mean() > 0
    np.testing.assert_array_equal(model.predict(y).to_numpy(), q["q0.5"].to_numpy())
    with pytest.raises(InputError, match="loss='quantile'"):
        ReCycle(epochs=0, **SMALL).fit(y).predict_quantiles(y)


def test_checkpoint_round_trip(y: pd.Series, tmp_path: Path) -> None:
    model = ReCycle(epochs=3, patience=None, **SMALL).fit(y)
    path = tmp_path / "recycle.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, ReCycle)
    assert loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.predict(y).to_numpy(), model.predict(y).to_numpy())
    assert [r.epoch for r in loaded.history_] == [r.epoch for r in model.history_]
    baseline_only = ReCycle(use_network=False).fit(y)
    save_model(baseline_only, tmp_path / "b.safetensors")
    assert np.array_equal(
        load_model(tmp_path / "b.safetensors").predict(y).to_numpy(), baseline_only.predict(y).to_numpy()
    )


def test_seed_makes_training_reproducible(y: pd.Series) -> None:
    a = ReCycle(epochs=2, patience=None, **SMALL).fit(y).predict(y)
    b = ReCycle(epochs=2, patience=None, **SMALL).fit(y).predict(y)
    assert np.array_equal(a.to_numpy(), b.to_numpy())


@pytest.mark.parametrize("threads", [2, None])
def test_fit_trains_on_the_threads_asked_for_and_restores_the_setting(
    y: pd.Series, threads: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hai.forecast.neural as neural

    seen: list[int] = []
    real = neural.train_network

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(neural, "train_network", spy)
    before = torch.get_num_threads()  # 1: the conftest fixture
    ReCycle(epochs=1, threads=threads, **SMALL).fit(y)
    # the default baseline, auto, trains one network per candidate
    assert seen == [before if threads is None else threads] * len(AUTO_BASELINES)
    assert torch.get_num_threads() == before
    with pytest.raises(InputError, match="threads"):
        ReCycle(epochs=1, threads=0).fit(y)


def test_bad_input(y: pd.Series) -> None:
    with pytest.raises(
        InputError, match=r"training needs at least 15 \(history 7 \+ baseline context 7 \+ horizon 1\)"
    ):
        ReCycle(epochs=1).fit(y.iloc[: 24 * 14])
    with pytest.raises(InputError, match="NaN"):
        ReCycle(epochs=1).fit(y.where(y.index != y.index[30]))
    gappy = y.drop(y.index[100:103])
    with pytest.raises(InputError, match="gap"):
        ReCycle(epochs=1).fit(gappy)
    filled = ReCycle(epochs=0, fill="interpolate").fit(gappy)
    assert len(filled.predict(gappy)) == 24
    with pytest.raises(InputError, match="does not match the sampling"):
        ReCycle(cycle_length=25).fit(y)
    half_hourly = pd.Series(
        np.ones(48 * 40), index=pd.date_range("2024-01-01", periods=48 * 40, freq="30min")
    )
    with pytest.raises(InputError, match="use cycle_length=48"):
        ReCycle().fit(half_hourly)
    model = ReCycle(epochs=0, baseline="last_profile").fit(y)
    with pytest.raises(InputError, match=r"at least 336 steps of history"):
        model.predict(y.iloc[:300])
    with pytest.raises(InputError, match="multiple of nhead"):
        ReCycle(d_model=10, nhead=3).fit(y)
    with pytest.raises(InputError, match="unknown baseline"):
        ReCycle(baseline="arima").fit(y)
    with pytest.raises(InputError, match="unknown loss"):
        ReCycle(loss="huber").fit(y)
    with pytest.raises(InputError, match="weight_decay"):
        ReCycle(weight_decay=-0.1).fit(y)


def _validation_origins(y: pd.Series) -> np.ndarray:
    """Whole-cycle origins in the last 20 % of the cycles, after 7 history + 21 context cycles."""
    n_cycles = len(y) // 24
    return np.arange(max(n_cycles - round(n_cycles * 0.2), 7 + 21), n_cycles) * 24


def _validation_maes(y: pd.Series) -> dict[str, float]:
    """Each candidate baseline's MAE over the validation origins, computed directly."""
    origins = _validation_origins(y)
    truth = np.stack([y.to_numpy()[o : o + 24] for o in origins])
    return {
        name: float(np.abs(make_baseline(name).fit(y).predict_at(y, origins)[..., 0] - truth).mean())
        for name in AUTO_BASELINES
    }


@pytest.mark.parametrize(("weekly", "noise"), [(0.6, 0.0), (0.0, 0.4)])
def test_auto_baseline_has_the_lowest_validation_mae(weekly: float, noise: float) -> None:
    # a clean weekly pattern favours the last profile; day-to-day noise favours the ten-day mean
    y = synthetic_cyclic(n_cycles=70, weekly=weekly, noise=noise, trend=0.0, seed=3)
    maes = _validation_maes(y)
    expected = min(AUTO_BASELINES, key=lambda name: maes[name])
    model = ReCycle(baseline="auto", use_network=False).fit(y)
    assert model.baseline_.name == expected
    assert model.baseline_scores_ == pytest.approx(maes, rel=1e-12)
    assert np.array_equal(model.predict(y).to_numpy(), make_baseline(expected).fit(y).predict(y).to_numpy())
    assert model.min_history_cycles == 7 + make_baseline(expected).context_cycles


def test_auto_passes_baseline_params_to_the_baselines_that_take_them() -> None:
    y = synthetic_cyclic(n_cycles=50, noise=0.2, seed=5)
    model = ReCycle(baseline="auto", baseline_params={"k": 2, "days": 5}, use_network=False).fit(y)
    candidates = {"last_profile": {}, "same_type_mean": {"k": 2}, "ten_day_mean": {"days": 5}}
    origins = np.arange(max(50 - 10, 7 + 14), 50) * 24  # context up to 7·k = 14 cycles
    truth = np.stack([y.to_numpy()[o : o + 24] for o in origins])
    for name, params in candidates.items():
        forecast = make_baseline(name, **params).fit(y).predict_at(y, origins)[..., 0]
        assert model.baseline_scores_[name] == pytest.approx(
            float(np.abs(forecast - truth).mean()), rel=1e-12
        )


def test_auto_picks_different_baselines_for_different_series() -> None:
    clean = synthetic_cyclic(n_cycles=70, weekly=0.6, noise=0.0, trend=0.0, seed=3)
    noisy = synthetic_cyclic(n_cycles=70, weekly=0.0, noise=0.4, trend=0.0, seed=3)
    assert ReCycle(baseline="auto", use_network=False).fit(clean).baseline_.name == "last_profile"
    assert ReCycle(baseline="auto", use_network=False).fit(noisy).baseline_.name == "ten_day_mean"


def test_auto_with_network_keeps_the_candidate_with_the_lowest_validation_mae(
    y: pd.Series, tmp_path: Path
) -> None:
    params = {"epochs": 3, "patience": None, **SMALL}
    model = ReCycle(baseline="auto", **params).fit(y)
    origins = _validation_origins(y)
    truth = np.stack([y.to_numpy()[o : o + 24] for o in origins])
    maes, forecasts = {}, {}
    for name in AUTO_BASELINES:  # each candidate fitted on its own, same seed: deterministic
        forecasts[name] = ReCycle(baseline=name, **params).fit(y).predict_at(y, origins)[..., 0]
        maes[name] = float(np.abs(forecasts[name] - truth).mean())
    expected = min(AUTO_BASELINES, key=lambda name: maes[name])
    assert model.baseline_.name == expected
    assert model.baseline_scores_ == pytest.approx(maes, rel=1e-9)
    assert np.array_equal(model.predict_at(y, origins)[..., 0], forecasts[expected])
    assert len(set(maes.values())) == 3  # a real choice, not a tie
    path = tmp_path / "auto.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, ReCycle)
    assert loaded.baseline_.name == model.baseline_.name
    assert loaded.baseline_scores_ == model.baseline_scores_
    assert np.array_equal(loaded.predict(y).to_numpy(), model.predict(y).to_numpy())
    # nothing to compare on: auto (the default) falls back to the last profile, no scores
    fallback = ReCycle(validation_fraction=0.0, epochs=0).fit(y)
    assert fallback.baseline_.name == "last_profile"
    assert fallback.baseline_scores_ == {}
    assert np.array_equal(fallback.predict(y).to_numpy(), LastProfile().fit(y).predict(y).to_numpy())


def test_the_default_is_the_auto_baseline(y: pd.Series) -> None:
    assert ReCycle().baseline == "auto"
    model = ReCycle(use_network=False).fit(y)
    assert sorted(model.baseline_scores_) == sorted(AUTO_BASELINES)
    assert model.baseline_.name == min(AUTO_BASELINES, key=lambda n: model.baseline_scores_[n])
    # a short series: the same-type mean (three weeks of context) has no training window and is
    # left out; 30 days: validation from day 24, last profile and ten-day mean need 7 + 7/10 + 1
    short = ReCycle(use_network=False).fit(y.iloc[: 24 * 30])
    assert sorted(short.baseline_scores_) == ["last_profile", "ten_day_mean"]


def test_loss_on_the_residual_target_is_the_loss_of_the_forecast(y: pd.Series) -> None:
    model = ReCycle(epochs=2, patience=None, loss="mse", **SMALL).fit(y)
    frame = model._prepare(y)
    origins = np.array([24 * 20, 24 * 33])
    batch = model._training_batch(frame, origins)
    _, base = model._inputs(frame, origins)
    truth = np.stack([y.to_numpy()[o : o + 24] for o in origins])[..., None]
    assert model.net_ is not None
    with torch.no_grad():
        out = model._forward(model.net_.eval(), batch)[..., 0].double().numpy()
        got = float(model._loss_of(model.net_, batch))
    scale = model.scaler_.scale_
    expected = np.mean(((base / scale + out) - truth / scale) ** 2)  # scaled forecast vs scaled truth
    assert got == pytest.approx(expected, rel=1e-5)

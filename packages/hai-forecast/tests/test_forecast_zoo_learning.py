"""Every zoo model learns a synthetic multi-seasonal multivariate series below seasonal naive."""

from __future__ import annotations

import pytest

from hai.forecast.zoo import make_forecaster
from hai.forecast.zoo import protocol as P
from hai.forecast.zoo.data import synthetic_multiseasonal

# (epochs, training-window stride): tiny models, a few seconds each on one thread (Informer ~10 s).
SETTINGS = {
    "informer": (15, 2),
    "autoformer": (6, 2),
    "fedformer": (6, 2),
    "crossformer": (6, 2),
    "patchtst": (6, 2),
}


@pytest.fixture(scope="module")
def split() -> P.ProtocolSplit:
    y = synthetic_multiseasonal(24 * 7 * 10, 3, common=0.0, weekly=0.2, noise=0.3, seed=0)
    return P.split(y, 24)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "informer" else n for n in SETTINGS]
)
def test_learns_below_seasonal_naive(name: str, split: P.ProtocolSplit) -> None:
    epochs, stride = SETTINGS[name]
    model = make_forecaster(
        name,
        small=True,
        history_cycles=4,
        horizon_cycles=1,
        epochs=epochs,
        lr=3e-3,
        patience=5,
        stride=stride,
        validation_fraction=split.validation_fraction,
    ).fit(split.fit_part)
    origins = P.window_origins(len(split.frame), split.test_start, model.history_steps, model.horizon, 24)
    scores = P.evaluate(model, split.frame, origins)
    target = P.truth(split.frame, origins, model.horizon)
    naive = P.scaled_scores(P.seasonal_naive(split.frame, origins, 24, 24), target, model.scaler_.scale_)
    assert model.history_[-1].val_loss < model.history_[0].val_loss  # the loss fell
    assert scores.mse < naive.mse
    assert model.predict(split.fit_part).shape == (24, 3)

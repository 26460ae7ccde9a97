"""The long-horizon protocol: 7:1:2 split, test windows, scaling on training data, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from hai.forecast import ReCycle, StepTransformer
from hai.forecast.zoo import ZOO, PatchTST, make_forecaster
from hai.forecast.zoo import protocol as P
from hai.forecast.zoo.data import synthetic_multiseasonal
from hai.shared import InputError


def test_split_is_7_1_2_and_the_scaler_sees_training_data_only() -> None:
    y = synthetic_multiseasonal(24 * 100, 2)
    s = P.split(y, 24)
    assert len(s.fit_part) == 24 * 80
    assert s.test_start == 24 * 80
    assert s.validation_fraction == pytest.approx(0.125)
    model = PatchTST(horizon_cycles=1, epochs=0, d_model=8, validation_fraction=s.validation_fraction).fit(
        s.fit_part
    )
    np.testing.assert_allclose(model.scaler_.offset_, y.iloc[: 24 * 70].mean().to_numpy())


def test_windows_and_seasonal_naive() -> None:
    y = synthetic_multiseasonal(24 * 20, 2)
    origins = P.window_origins(len(y), 24 * 16, 96, 48, 24)
    assert origins.tolist() == [24 * 16, 24 * 17, 24 * 18]
    naive = P.seasonal_naive(y, origins, 48, 24)
    v = y.to_numpy()
    np.testing.assert_array_equal(naive[0, :24], v[24 * 15 : 24 * 16])
    np.testing.assert_array_equal(naive[0, 24:], v[24 * 15 : 24 * 16])
    with pytest.raises(InputError, match="horizon of 720 steps is longer"):
        P.window_origins(len(y), 24 * 16, 96, 720)


def test_registry() -> None:
    assert ZOO["transformer"] is StepTransformer
    assert ZOO["recycle"] is ReCycle
    assert make_forecaster("recycle").loss == "mse"
    assert make_forecaster("informer", horizon_cycles=30).horizon == 720
    with pytest.raises(InputError, match="unknown zoo model"):
        make_forecaster("itransformer")


def test_window_models_refuse_short_series_and_quantiles() -> None:
    y = synthetic_multiseasonal(24 * 6, 2)
    with pytest.raises(InputError, match="window needs"):
        PatchTST(horizon_cycles=4, epochs=1).fit(y)
    with pytest.raises(InputError, match="point forecasts"):
        PatchTST(loss="quantile").fit(y)

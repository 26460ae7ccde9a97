"""scikit-learn's contract: clone, and a grid search over a time-series split."""

from __future__ import annotations

import numpy as np
import pytest

from hai.forecast import LastProfile, ReCycle, SameTypeMean, SeasonalNaive, synthetic_cyclic
from hai.forecast.metrics import mae
from hai.forecast.regression import RidgeARX

sklearn_base = pytest.importorskip("sklearn.base")
model_selection = pytest.importorskip("sklearn.model_selection")


@pytest.mark.parametrize(
    "model",
    [
        ReCycle(d_model=8, epochs=2, baseline="auto", country="DE", loss="quantile"),
        RidgeARX(alpha=3.0, country="DE"),
        SameTypeMean(k=2),
    ],
    ids=lambda m: type(m).__name__,
)
def test_clone_gives_an_unfitted_equal_copy(model: object) -> None:
    copy = sklearn_base.clone(model)
    assert type(copy) is type(model)
    assert copy is not model
    assert copy.get_params(deep=False) == model.get_params(deep=False)  # type: ignore[attr-defined]
    assert sklearn_base.is_regressor(copy)
    y = synthetic_cyclic(n_cycles=60, seed=2)
    fitted = sklearn_base.clone(model).fit(y)  # type: ignore[attr-defined]
    again = sklearn_base.clone(fitted)
    assert not hasattr(again, "freq_")  # clone copies parameters, not learned state
    np.testing.assert_allclose(again.fit(y).predict(y), fitted.predict(y))  # same seed, same forecast


def sweep(base: object, grid: dict, y, n_splits: int = 3) -> dict[tuple, float]:
    """GridSearchCV's loop for forecasters: ParameterGrid × TimeSeriesSplit, day-ahead MAE."""
    splitter = model_selection.TimeSeriesSplit(n_splits=n_splits, test_size=7 * 24)
    scores = {}
    for params in model_selection.ParameterGrid(grid):
        errors = []
        for train, test in splitter.split(y):
            model = sklearn_base.clone(base).set_params(**params).fit(y.iloc[train])  # type: ignore[attr-defined]
            origins = np.arange(test[0], test[-1] + 1 - 23, 24)
            forecast = model.predict_at(y, origins)
            truth = np.stack([y.to_numpy()[o : o + 24] for o in origins])
            errors.append(mae(truth, forecast[..., 0]))
        scores[tuple(sorted(params.items()))] = float(np.mean(errors))
    return scores


def test_grid_search_over_a_time_series_split() -> None:
    y = synthetic_cyclic(n_cycles=56, seed=7)
    # ReCycle without its network is its baseline: the sweep's scores are the baselines' own.
    scores = sweep(ReCycle(use_network=False), {"baseline": ["seasonal_naive", "last_profile"]}, y)
    for name, cls in (("seasonal_naive", SeasonalNaive), ("last_profile", LastProfile)):
        direct = sweep(cls(), {}, y)[()]
        assert scores[(("baseline", name),)] == pytest.approx(direct, rel=1e-12)
    ridge = sweep(RidgeARX(), {"alpha": [0.1, 10.0, 1000.0]}, y)
    assert len(ridge) == 3
    assert min(ridge.values()) < min(scores.values())  # the regression beats both profiles here
    assert ridge[(("alpha", 1000.0),)] != ridge[(("alpha", 0.1),)]  # the parameter reached the fit

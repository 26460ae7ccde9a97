"""Forecast error metrics: MAE, RMSE, MAPE, MASE, Nash–Sutcliffe efficiency, relative peak error.

All functions take arrays of equal shape; :func:`relative_peak_error` reads the second axis as
time (``(windows, steps[, columns])``). MASE here is *relative to a reference forecast on the
same targets*: ``MAE(forecast) / MAE(reference)``. Backtests report two: ``mase`` over the
weekly naive forecast (the same hour last week, the stronger and usual scale for load; the
headline) and ``mase_day`` over the day-lag seasonal naive forecast (the scale this package
used before, 11–41 % weaker on load series, so its scores look better), so MASE < 1 means
"beats that naive forecast on the test windows". :func:`mase_insample` is Hyndman's classic
scaling by the in-sample seasonal-naive MAE of the training series.

>>> import numpy as np
>>> mae(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
1.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hai.shared import InputError


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"truth and forecast differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise InputError("no values to score")
    return a, b


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error.

    >>> rmse(np.array([0.0, 0.0]), np.array([3.0, 4.0])) == (12.5) ** 0.5
    True
    """
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error in percent, over the targets that are not zero.

    Zero targets (PV at night) have no percentage error and are left out; all-zero targets
    give NaN.

    >>> mape(np.array([100.0, 0.0]), np.array([110.0, 5.0]))
    10.0
    """
    a, b = _pair(y_true, y_pred)
    keep = a != 0
    if not keep.any():
        return float("nan")
    return float(100.0 * np.mean(np.abs((a[keep] - b[keep]) / a[keep])))


def mase(y_true: Any, y_pred: Any, y_reference: Any) -> float:
    """MAE of the forecast divided by the MAE of a reference forecast (seasonal naive) on the same targets.

    >>> mase(np.array([1.0, 1.0]), np.array([1.5, 1.5]), np.array([2.0, 2.0]))
    0.5
    """
    ref = mae(y_true, y_reference)
    return mae(y_true, y_pred) / ref if ref > 0 else float("nan")


def mase_insample(y_true: Any, y_pred: Any, y_train: Any, season: int) -> float:
    """Hyndman's MASE: forecast MAE over the in-sample MAE of the seasonal naive forecast (lag ``season``)."""
    train = np.asarray(y_train, dtype=np.float64)
    if len(train) <= season:
        raise InputError(f"the training series needs more than {season} values for MASE")
    scale = float(np.mean(np.abs(train[season:] - train[:-season])))
    return mae(y_true, y_pred) / scale if scale > 0 else float("nan")


def nse(y_true: Any, y_pred: Any) -> float:
    """Nash–Sutcliffe efficiency ``1 − SSE / Σ(y − ȳ)²`` (1 is perfect, 0 is no better than the mean).

    >>> nse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    1.0
    """
    a, b = _pair(y_true, y_pred)
    denom = float(np.sum((a - a.mean()) ** 2))
    return 1.0 - float(np.sum((a - b) ** 2)) / denom if denom > 0 else float("nan")


def relative_peak_error(y_true: Any, y_pred: Any) -> float:
    """Mean over windows (and columns) of ``|max ŷ − max y| / |max y|``, the peak taken along axis 1.

    >>> relative_peak_error(np.array([[1.0, 4.0]]), np.array([[5.0, 2.0]]))
    0.25
    """
    a, b = _pair(y_true, y_pred)
    if a.ndim < 2:
        a, b = a[None], b[None]
    peak_true, peak_pred = a.max(axis=1), b.max(axis=1)
    keep = peak_true != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(peak_pred[keep] - peak_true[keep]) / np.abs(peak_true[keep])))


def evaluate(
    y_true: Any, y_pred: Any, y_reference: Any | None = None, *, y_reference_day: Any | None = None
) -> dict[str, float]:
    """All metrics at once; ``mase`` needs the reference forecasts (weekly naive in backtests),
    ``mase_day`` the day-lag seasonal naive forecasts.

    >>> sorted(evaluate(np.ones((2, 3)), np.ones((2, 3))))
    ['mae', 'mape', 'nse', 'rmse', 'rpe']
    """
    out = {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "nse": nse(y_true, y_pred),
        "rpe": relative_peak_error(y_true, y_pred),
    }
    if y_reference is not None:
        out["mase"] = mase(y_true, y_pred, y_reference)
    if y_reference_day is not None:
        out["mase_day"] = mase(y_true, y_pred, y_reference_day)
    return out

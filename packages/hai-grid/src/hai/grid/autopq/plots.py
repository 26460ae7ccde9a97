"""Figures of AutoPQ forecasts: the fan chart and the PIT histogram.

>>> import numpy as np, pandas as pd
>>> from hai.grid.autopq.quantiles import LEVELS
>>> idx = pd.date_range("2024-01-01", periods=24, freq="h")
>>> values = np.sort(np.random.default_rng(0).normal(size=(24, 17)), axis=1)
>>> q = pd.DataFrame(values, index=idx, columns=LEVELS)
>>> len(plot_fan_chart(q).axes)
1
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.shared import MissingPackageError

#: nested central intervals drawn by the fan chart, widest first
BANDS = ((0.01, 0.99), (0.05, 0.95), (0.10, 0.90), (0.25, 0.75))


def _figure(**kwargs: Any) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingPackageError("plots need matplotlib", hint="pip install 'hai-grid[demo]'") from exc
    return Figure(**kwargs)


def plot_fan_chart(
    quantiles: pd.DataFrame,
    *,
    actual: pd.Series | None = None,
    history: pd.Series | None = None,
    title: str = "",
) -> Any:
    """Quantile bands (98, 90, 80, 50 %) and the median over time, with the observed values."""
    fig = _figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    t = quantiles.index
    for k, (lo, hi) in enumerate(BANDS):
        if lo in quantiles.columns and hi in quantiles.columns:
            ax.fill_between(
                t, quantiles[lo], quantiles[hi], color="C0", alpha=0.15 + 0.12 * k, lw=0,
                label=f"{round(100 * (hi - lo))} %",
            )  # fmt: skip
    if 0.5 in quantiles.columns:
        ax.plot(t, quantiles[0.5], color="C0", lw=1.2, label="median")
    if history is not None:
        ax.plot(history.index, history.to_numpy(), color="0.4", lw=0.8, label="history")
    if actual is not None:
        ax.plot(actual.index, actual.to_numpy(), "k.", ms=3, label="observed")
    ax.set_ylabel(str(quantiles.attrs.get("unit", "value")))
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    ax.set_title(title or "AutoPQ quantile forecast", fontsize=9)
    return fig


def plot_pit(hist: np.ndarray, edges: np.ndarray, *, title: str = "") -> Any:
    """PIT histogram: observed frequency per quantile bin over its nominal probability (1 = calibrated)."""
    fig = _figure(figsize=(5, 3), layout="constrained")
    ax = fig.subplots()
    ax.bar(edges[:-1], hist, width=np.diff(edges), align="edge", color="C1", edgecolor="white")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("probability level")
    ax.set_ylabel("frequency / nominal")
    ax.set_title(title or "PIT histogram", fontsize=9)
    return fig

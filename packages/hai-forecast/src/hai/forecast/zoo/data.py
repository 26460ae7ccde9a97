"""Multivariate series for the zoo and the pruning study, offline: synthetic and SimBench panels.

- :func:`synthetic_multiseasonal`: several columns, each a daily and a weekly season with its
  own phase and amplitude, a slow trend, a shared common factor and noise (the Time-Series-
  Library's benchmark sets are not shipped by any installed package, see the handbook).
- :func:`simbench_panel`: several SimBench 2016 load profiles side by side, an ECL-like set
  (many customers, hourly), read through :func:`hai.forecast.datasets.load`; its extra
  (``simbench``) is named when missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.datasets import load
from hai.shared import InputError, RngStreams

#: SimBench load profiles of the ECL-like panel: households, businesses, agriculture.
SIMBENCH_PANEL: tuple[str, ...] = ("H0-A", "H0-B", "H0-C", "G1-A", "G1-B", "G3-A", "L0-A")


def synthetic_multiseasonal(
    n_steps: int = 24 * 7 * 16,
    n_series: int = 7,
    *,
    cycle_length: int = 24,
    noise: float = 0.1,
    common: float = 2.0,
    weekly: float = 0.7,
    start: str = "2024-01-01",
    freq: str = "1h",
    seed: int = 0,
) -> pd.DataFrame:
    """``n_steps × n_series`` hourly values with daily and weekly seasons (columns ``s0 …``).

    ``weekly`` scales the weekly season, ``common`` a slowly varying factor all columns share
    (a two-day moving average of white noise: what no model can forecast from the history),
    ``noise`` the white noise.

    >>> y = synthetic_multiseasonal(24 * 14, 3)
    >>> y.shape, y.index.freqstr
    ((336, 3), 'h')
    """
    if n_steps < 2 * cycle_length or n_series < 1 or cycle_length < 2:
        raise InputError("need n_steps >= 2 cycles, n_series >= 1 and cycle_length >= 2")
    rng = RngStreams(seed).numpy("synthetic_multiseasonal")
    t = np.arange(n_steps, dtype=np.float64)
    day, week = 2 * np.pi * t / cycle_length, 2 * np.pi * t / (7 * cycle_length)
    factor = np.convolve(rng.normal(size=n_steps + 47), np.ones(48) / 48, mode="valid")[:n_steps]
    columns = {}
    for i in range(n_series):
        phase, amp = rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.5, 1.5, 3)
        season = amp[0] * np.sin(day + phase[0]) + 0.5 * amp[1] * np.sin(2 * day + phase[1])
        season += weekly * amp[2] * np.sin(week + phase[2])
        columns[f"s{i}"] = (
            5.0 + season + 0.3 * t / n_steps + common * factor + noise * rng.normal(size=n_steps)
        )
    return pd.DataFrame(columns, index=pd.date_range(start, periods=n_steps, freq=freq))


def simbench_panel(profiles: Sequence[str] = SIMBENCH_PANEL) -> pd.DataFrame:
    """SimBench 2016 hourly load profiles as columns (8,784 rows); needs the ``simbench`` extra."""
    if not profiles:
        raise InputError("give at least one SimBench load profile")
    series = [load(f"simbench_load:{p}").y.rename(p) for p in profiles]
    return pd.concat(series, axis=1)

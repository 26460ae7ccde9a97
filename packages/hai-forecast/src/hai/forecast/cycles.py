"""Primary cycle compression: a series reshaped to cycles × steps-per-cycle, exactly invertible.

ReCycle's tokens are whole cycles (one day of hourly values is one token of width 24), so the
attention runs over ``T / cycle_length`` tokens instead of ``T``. The reshape is a view: it
changes no value, and :func:`expand` undoes :func:`compress` bit for bit.

>>> import numpy as np
>>> x = np.arange(48.0)
>>> c = compress(x, 24)
>>> c.shape, bool((expand(c)[:, 0] == x).all())
((2, 24, 1), True)
"""

from __future__ import annotations

from typing import Any, TypeVar

import pandas as pd  # type: ignore[import-untyped]

from hai.shared import InputError

ArrayT = TypeVar("ArrayT")


def compress(values: ArrayT, cycle_length: int) -> ArrayT:
    """Reshape ``(T,)`` or ``(T, C)`` values (numpy or torch) to ``(T // L, L, C)`` cycles.

    ``T`` must be a whole number of cycles (see :func:`whole_cycles`).
    """
    if not isinstance(cycle_length, int) or isinstance(cycle_length, bool) or cycle_length < 1:
        raise InputError(f"cycle_length must be a positive integer, got {cycle_length!r}")
    shape = tuple(values.shape)  # type: ignore[attr-defined]
    if len(shape) not in (1, 2):
        raise InputError(f"expected values of shape (T,) or (T, C), got {shape}")
    n = shape[0]
    if n % cycle_length:
        raise InputError(
            f"{n} steps are not a whole number of cycles of length {cycle_length}",
            hint=f"trim {n % cycle_length} leading steps first (hai.forecast.whole_cycles)",
        )
    channels = shape[1] if len(shape) == 2 else 1
    return values.reshape(n // cycle_length, cycle_length, channels)  # type: ignore[attr-defined]


def expand(cycles: ArrayT) -> ArrayT:
    """Undo :func:`compress`: ``(N, L, C)`` cycles back to ``(N * L, C)`` steps, exactly."""
    shape = tuple(cycles.shape)  # type: ignore[attr-defined]
    if len(shape) != 3:
        raise InputError(f"expected cycles of shape (N, L, C), got {shape}")
    return cycles.reshape(shape[0] * shape[1], shape[2])  # type: ignore[attr-defined]


def whole_cycles(n_steps: int, cycle_length: int) -> slice:
    """The slice that keeps the last whole cycles of ``n_steps`` (drops the leading remainder).

    >>> whole_cycles(50, 24)
    slice(2, 50, None)
    """
    return slice(n_steps % cycle_length, n_steps)


def cycle_length_for(step: Any, period: Any = "1D") -> int:
    """Number of steps of size ``step`` in one ``period``; an error when the step does not divide it.

    >>> cycle_length_for("1h"), cycle_length_for("15min"), cycle_length_for("1h", "7D")
    (24, 96, 168)
    """
    step_td, period_td = _timedelta(step, "sampling step"), _timedelta(period, "cycle period")
    ratio = period_td / step_td
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise InputError(
            f"the sampling step {step_td} does not divide the cycle period {period_td}",
            hint="resample to a step that divides the period (e.g. 1h or 15min for daily cycles)",
        )
    return round(ratio)


def check_cycle_length(step: Any, cycle_length: int, period: Any = "1D") -> None:
    """Raise :class:`InputError` unless ``cycle_length`` steps of ``step`` make up one ``period``.

    ``period=None`` accepts any cycle length (a cycle that is not tied to the calendar).
    """
    if not isinstance(cycle_length, int) or isinstance(cycle_length, bool) or cycle_length < 2:
        raise InputError(f"cycle_length must be an integer of at least 2, got {cycle_length!r}")
    if period is None:
        return
    expected = cycle_length_for(step, period)
    if expected != cycle_length:
        raise InputError(
            f"cycle_length={cycle_length} does not match the sampling: one period of "
            f"{_timedelta(period, 'cycle period')} has {expected} steps of {_timedelta(step, 'step')}",
            hint=f"use cycle_length={expected}, resample the series, or pass period=None",
        )


def _timedelta(value: Any, what: str) -> pd.Timedelta:
    try:
        td = (
            pd.Timedelta(value)
            if not isinstance(value, str)
            else pd.Timedelta(pd.tseries.frequencies.to_offset(value))
        )
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot read {value!r} as a {what}", hint="use e.g. '1h', '15min' or '1D'") from exc
    if td <= pd.Timedelta(0):
        raise InputError(f"the {what} must be positive, got {value!r}")
    return td

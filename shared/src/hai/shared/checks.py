"""Boundary checks shared by every domain: numbers from the command line, arrays, sizes.

Each check raises :class:`~hai.shared.errors.InputError` with the argument's name, what was
given and what is allowed, so that the ``hai`` command prints one line and exits with 2.
The ``arg_*`` functions are argparse ``type=`` callables (argparse turns their error into its
own one-line usage error, also exit status 2).

>>> positive_int("epochs", 3)
3
>>> fraction("test_fraction", 0.2)
0.2
>>> fraction("test_fraction", 1.5)
Traceback (most recent call last):
...
hai.shared.errors.InputError: test_fraction must be a number strictly between 0 and 1, got 1.5
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hai.shared.errors import InputError


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    try:
        number = int(value) if isinstance(value, int | np.integer) else int(str(value).strip())
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    return number


def positive_int(name: str, value: Any, *, maximum: int | None = None) -> int:
    """``value`` as an integer ≥ 1 (and ≤ ``maximum``)."""
    number = _integer(name, value)
    if number < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value!r}")
    return number


def nonnegative_int(name: str, value: Any, *, maximum: int | None = None) -> int:
    """``value`` as an integer ≥ 0 (and ≤ ``maximum``)."""
    number = _integer(name, value)
    if number < 0:
        raise InputError(f"{name} must be an integer ≥ 0, got {value!r}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value!r}")
    return number


def finite_float(name: str, value: Any) -> float:
    """``value`` as a finite float."""
    return _number(name, value)


def positive_float(name: str, value: Any) -> float:
    """``value`` as a finite float > 0."""
    number = _number(name, value)
    if number <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return number


def nonnegative_float(name: str, value: Any) -> float:
    """``value`` as a finite float ≥ 0."""
    number = _number(name, value)
    if number < 0:
        raise InputError(f"{name} must be a number ≥ 0, got {value!r}")
    return number


def fraction(name: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1 (a split, a dropout, a quantile)."""
    number = _number(name, value)
    if not 0.0 < number < 1.0:
        raise InputError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return number


def finite_array(name: str, values: Any) -> np.ndarray:
    """``values`` as a float array with no NaN or infinity (the count and first index if any)."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric") from None
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first[0] if len(first) == 1 else first
        raise InputError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN or infinity), the first at index {where}",
            hint="remove or fill them before calling",
        )
    return array


def _argparse_type(check: Callable[..., Any], **kwargs: Any) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return check("the value", text, **kwargs)
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.message.replace("the value ", "", 1)) from None

    parse.__name__ = check.__name__  # argparse names the type in its messages
    return parse


def arg_positive_int(maximum: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer ≥ 1 (≤ ``maximum``)."""
    return _argparse_type(positive_int, maximum=maximum)


def arg_nonnegative_int(maximum: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer ≥ 0 (≤ ``maximum``)."""
    return _argparse_type(nonnegative_int, maximum=maximum)


arg_finite_float: Callable[[str], float] = _argparse_type(finite_float)
arg_positive_float: Callable[[str], float] = _argparse_type(positive_float)
arg_nonnegative_float: Callable[[str], float] = _argparse_type(nonnegative_float)
arg_fraction: Callable[[str], float] = _argparse_type(fraction)


def available_memory_bytes() -> int | None:
    """Memory this process could still allocate (MemAvailable on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def check_memory(needed_bytes: float, what: str, *, fraction_of_free: float = 0.8) -> None:
    """Refuse work whose arrays need more than ``fraction_of_free`` of the available memory."""
    free = available_memory_bytes()
    if free is not None and needed_bytes > fraction_of_free * free:
        raise InputError(
            f"{what} would need about {_size(needed_bytes)} of memory; this machine has {_size(free)} free",
            hint="choose a smaller size",
        )


def check_disk(folder: str | os.PathLike[str], needed_bytes: float, what: str) -> None:
    """Refuse to start writing ``needed_bytes`` under ``folder`` when the disk has less free."""
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return
    if needed_bytes > free:
        raise InputError(
            f"{what} would write about {_size(needed_bytes)}; {path} has {_size(free)} free",
            hint="choose a smaller size or another folder",
        )

"""Progress bars (tqdm) that stay silent when nobody is watching.

A bar is shown only when standard error is a terminal and quiet mode is off. Quiet mode is set
by ``hai --quiet``, by :func:`set_quiet`, or by the environment variable ``HAI_QUIET=1``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Turn all hai progress bars off (True) or back to automatic (False)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether :func:`set_quiet` turned the bars off (the environment is not consulted)."""
    return _quiet


def progress_enabled() -> bool:
    """Whether a progress bar would be drawn now."""
    if _quiet or os.environ.get("HAI_QUIET", "").strip() not in ("", "0"):
        return False
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    **kwargs: Any,
) -> tqdm[T]:
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), silent when not wanted.

    >>> sum(progress(range(3), desc="adding"))
    3
    """
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not progress_enabled(), **kwargs)

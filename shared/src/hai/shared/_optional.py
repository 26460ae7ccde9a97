"""Import optional third-party modules with an error that names the missing extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from hai.shared.errors import MissingPackageError


def require(module: str, *, extra: str, distribution: str = "hai-shared") -> ModuleType:
    """Import ``module`` or raise :class:`MissingPackageError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingPackageError(
            f"this feature needs the Python package '{module.split('.')[0]}', which is not installed",
            hint=f"pip install '{distribution}[{extra}]'",
        ) from exc


def optional(module: str) -> ModuleType | None:
    """Import ``module`` if it is installed, else return None."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None

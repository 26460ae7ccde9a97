"""Shared test setup: the 2-process worker module (``scale_dist_worker.py``, not an importable package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def dist_worker() -> ModuleType:
    """``scale_dist_worker.py`` loaded as a module: its ``spawn`` and reference computations."""
    spec = importlib.util.spec_from_file_location(
        "scale_dist_worker", Path(__file__).parent / "scale_dist_worker.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

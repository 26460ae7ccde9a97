"""The examples in the docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hai.grid",
    "hai.grid.network",
    "hai.grid.newton",
    "hai.grid.dpf",
    "hai.grid.powerflow",
    "hai.grid.batch",
    "hai.grid.results",
    "hai.grid.errors",
    "hai.grid.cases",
    "hai.grid.plots",
    "hai.grid.gradients",
    "hai.grid.timeseries",
    "hai.grid.contingency",
    "hai.grid.outages",
    "hai.grid.identification",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0

"""The examples in hai.shared's docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "hai.shared",
    "hai.shared.errors",
    "hai.shared.files",
    "hai.shared.runtime",
    "hai.shared.energy",
    "hai.shared.checkpoint",
    "hai.shared.progress",
    "hai.shared.report",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

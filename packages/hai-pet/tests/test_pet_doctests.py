"""The examples in the docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hai.pet",
    "hai.pet.scanner",
    "hai.pet.tables",
    "hai.pet.simulate",
    "hai.pet.gate_io",
    "hai.pet.sorter",
    "hai.pet.metrics",
    "hai.pet.spikes",
    "hai.pet.petnet",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0

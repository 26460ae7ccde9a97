"""The examples in the docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hai.photonics",
    "hai.photonics.tmm",
    "hai.photonics.materials",
    "hai.photonics.stacks",
    "hai.photonics.simulate",
    "hai.photonics.dataset",
    "hai.photonics.baseline",
    "hai.photonics.evaluate",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0

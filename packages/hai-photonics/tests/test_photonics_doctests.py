"""The examples in hai.photonics's docstrings run and give what they show (every module, found anew)."""

from __future__ import annotations

import pytest

from hai.shared.testing import count_examples, modules_of, run_docstring_examples

MODULES = modules_of("hai.photonics")


def test_the_package_has_examples() -> None:
    assert sum(count_examples(name) for name in MODULES) > 0


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    assert run_docstring_examples(name).failed == 0

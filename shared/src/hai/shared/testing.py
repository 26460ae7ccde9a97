"""For the distributions' test suites: find a package's modules and run their docstring examples.

Every hai distribution tests that the examples in its docstrings run and print what they show.
Finding the modules here, rather than in a hand-kept list per package, means a new module's
examples are tested from the day it is added.

>>> "hai.shared.files" in modules_of("hai.shared")
True
>>> count_examples("hai.shared.files") > 0
True
>>> run_docstring_examples("hai.shared.files").failed
0
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def modules_of(package: str) -> list[str]:
    """The names of ``package`` and every module below it, sorted, without ``__main__`` modules."""
    root = importlib.import_module(package)
    found = {package}
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            found.add(info.name)
    return sorted(found)


def count_examples(module: str) -> int:
    """How many examples the docstrings of ``module`` hold (found, not run)."""
    tests = doctest.DocTestFinder().find(importlib.import_module(module))
    return sum(len(test.examples) for test in tests)


def run_docstring_examples(module: str) -> doctest.TestResults:
    """Run the examples in the docstrings of ``module`` (ELLIPSIS and NORMALIZE_WHITESPACE on)."""
    return doctest.testmod(importlib.import_module(module), optionflags=OPTIONS, report=True)


__all__ = ["OPTIONS", "count_examples", "modules_of", "run_docstring_examples"]

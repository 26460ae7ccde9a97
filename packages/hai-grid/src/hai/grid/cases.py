"""Networks by name: pandapower's bundled cases (``case118``) or a pandapower JSON file.

Reading a pandapower case builds its tables from JSON, which takes about a second whatever the
size, so each case is read once per process and handed out as a deep copy.

>>> net = load_case("case9")
>>> len(net.bus)
9
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

from hai.shared import InputError


@functools.cache
def _read_file(name: str, _stamp: tuple[int, int]) -> Any:
    from hai.grid.jsonio import from_json

    return from_json(name)


@functools.cache
def _read(name: str) -> Any:
    import pandapower.networks as pn  # type: ignore[import-untyped]

    factory = getattr(pn, name, None) if name.isidentifier() and not name.startswith("_") else None
    # only pandapower's own network factories, not the helpers pandapower.networks imports
    if factory is not None and not str(getattr(factory, "__module__", "")).startswith("pandapower.networks"):
        factory = None
    if factory is None or not callable(factory):
        raise InputError(
            f"unknown case {name!r}",
            hint="give a pandapower case name such as case118 or case1354pegase, or a .json file",
        )
    try:
        net = factory()
    except TypeError as exc:
        raise InputError(f"{name!r} is not a pandapower case without arguments") from exc
    if not hasattr(net, "bus"):
        raise InputError(f"{name!r} is not a pandapower network")
    return net


def load_case(name: str | os.PathLike[str]) -> Any:
    """A fresh copy of the pandapower case ``name`` or of the net in a pandapower JSON file.

    JSON files are read by :func:`hai.grid.jsonio.from_json`, which refuses files naming
    modules or classes pandapower does not write (nothing from a file is imported); a file
    changed on disk is read again.
    """
    text = os.fspath(name)
    path = Path(text)
    if path.suffix.lower() == ".json" or path.is_file() or path.is_dir():
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (0, 0)
        return copy.deepcopy(_read_file(text, stamp))
    return copy.deepcopy(_read(text))

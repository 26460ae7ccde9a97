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
from pathlib import Path
from typing import Any

from hai.shared import InputError


@functools.cache
def _read(name: str) -> Any:
    import pandapower as pp  # type: ignore[import-untyped]
    import pandapower.networks as pn  # type: ignore[import-untyped]

    path = Path(name)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise InputError(f"pandapower JSON file {name} does not exist")
        try:
            return pp.from_json(str(path))
        except Exception as exc:
            raise InputError(f"{name} is not a readable pandapower JSON file: {exc}") from exc
    factory = getattr(pn, name, None) if name.isidentifier() and not name.startswith("_") else None
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


def load_case(name: str) -> Any:
    """A fresh copy of the pandapower case ``name`` or of the net in a pandapower JSON file."""
    return copy.deepcopy(_read(str(name)))

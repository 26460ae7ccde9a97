"""Reading pandapower JSON files without importing or running anything the file names.

pandapower's loader (``pandapower.from_json``) turns every ``{"_module": M, "_class": C,
"_object": ...}`` it meets into an object by ``importlib.import_module(M)`` and
``getattr(module, C)``: a file naming a module of its own (one placed beside the file, ``os``,
``subprocess``) runs that module's code on import, and a ``"_class": "function"`` entry hands
back any function. Tables are JSON text nested inside strings (``_object``), so a foreign entry
can hide several levels deep; a table's ``_object`` that is an absolute path ending in
``.json`` makes pandas read that file; extra keys beside ``_object`` are passed to
``pandas.read_json`` as keyword arguments; GeoJSON ``type`` names are looked up as attributes of
``geojson.factory`` and called.

:func:`from_json` therefore parses the file with the standard library first, walks every value
(every nested JSON string too, however deep) and refuses, with :class:`UnsafeNetworkFile` naming
the module, class or key and where it sits, anything outside this allow-list of what pandapower
itself writes:

- ``pandapower.auxiliary.pandapowerNet``; classes of ``pandapower.*`` modules (pandapower's
  controllers and characteristics; pandapower itself then accepts only its serialisable classes
  and enums);
- ``pandas`` DataFrame, Series and Index types; ``numpy.array`` and numpy scalar types;
  ``builtins`` complex, tuple, set, frozenset; ``networkx.MultiGraph``; ``shapely`` geometries;
  ``geopandas`` GeoDataFrame/GeoSeries;
- never ``"_class": "function"`` or ``"method"`` (hai runs no controllers, so it needs no code
  from a file), never a table whose ``_object`` is not JSON text.

Only then is the text handed to pandapower (``from_json_string``, with its format conversion).

>>> import json, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "evil.json"
>>> _ = path.write_text(json.dumps({"_module": "os", "_class": "system", "_object": "echo hi"}))
>>> from_json(path)
Traceback (most recent call last):
...
hai.grid.errors.UnsafeNetworkFile: ... names module 'os' (class 'system') at the top level; ...
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from hai.grid.errors import UnsafeNetworkFile
from hai.shared import InputError
from hai.shared.checks import check_memory

#: Builtin types pandapower serialises (its own ``_SAFE_BUILTIN_NAMES``).
SAFE_BUILTINS = frozenset({"complex", "tuple", "set", "frozenset"})
#: shapely geometries (pandapower writes them with ``_module`` "shapely").
SHAPELY_CLASSES = frozenset(
    {
        "Point",
        "LineString",
        "LinearRing",
        "Polygon",
        "MultiPoint",
        "MultiLineString",
        "MultiPolygon",
        "GeometryCollection",
    }
)
#: GeoJSON object types (``geojson.loads`` calls ``geojson.factory.<type>(**rest)``).
GEOJSON_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Feature",
        "FeatureCollection",
    }
)
#: Keys pandapower writes beside ``_module``/``_class``/``_object`` (passed on as keyword
#: arguments to ``pandas.read_json`` or the class, so nothing else is let through).
SIDE_KEYS = frozenset(
    {
        "orient",
        "dtype",
        "typ",
        "is_multiindex",
        "is_multicolumn",
        "index_name",
        "column_name",
        "index_names",
        "column_names",
        "name",
        "crs",
        "columns",
    }
)
#: Values of ``orient`` pandas accepts.
ORIENTS = frozenset({"split", "records", "index", "columns", "values", "table"})
#: Nested JSON strings are followed this deep (pandapower's own files nest two or three levels).
MAX_NESTING = 32

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_TABLE_CLASSES = frozenset({"DataFrame", "Series", "GeoDataFrame", "GeoSeries"})


def _where(path: tuple[str, ...]) -> str:
    return "at the top level" if not path else "at " + "/".join(path)


def _pandas_class_ok(name: str) -> bool:
    import pandas as pd  # type: ignore[import-untyped]

    cls = getattr(pd, name, None) if name.isidentifier() and not name.startswith("_") else None
    return isinstance(cls, type) and issubclass(cls, pd.DataFrame | pd.Series | pd.Index)


def _numpy_class_ok(name: str) -> bool:
    import numpy as np

    if name == "array":
        return True
    cls = getattr(np, name, None) if name.isidentifier() and not name.startswith("_") else None
    return isinstance(cls, type) and issubclass(cls, np.generic)


def allowed(module: str, cls: str) -> bool:
    """Whether ``{"_module": module, "_class": cls}`` is a type pandapower writes and hai reads.

    Decided from the names alone: nothing is imported.

    >>> allowed("pandas.core.frame", "DataFrame"), allowed("numpy", "float64")
    (True, True)
    >>> allowed("os", "system"), allowed("builtins", "eval"), allowed("pandapower.toolbox", "function")
    (False, False, False)
    """
    if not _MODULE_NAME.match(module) or not (cls == "" or cls.isidentifier()):
        return False
    if cls in ("function", "method") or cls.startswith("_"):
        return False
    top = module.split(".", 1)[0]
    if module == "builtins":
        return cls in SAFE_BUILTINS
    if top == "numpy":
        return module == "numpy" and _numpy_class_ok(cls)
    if top == "pandas":
        return module in ("pandas", "pandas.core.frame", "pandas.core.series") and _pandas_class_ok(cls)
    if top == "pandapower":
        return bool(cls)
    if module == "networkx":
        return cls == "MultiGraph"
    if top == "shapely":
        return cls in SHAPELY_CLASSES
    if module in ("geopandas", "geopandas.geodataframe", "geopandas.geoseries"):
        return cls in ("GeoDataFrame", "GeoSeries")
    return False


class _Scanner:
    def __init__(self, name: str) -> None:
        self.name = name

    def refuse(self, what: str, path: tuple[str, ...]) -> UnsafeNetworkFile:
        return UnsafeNetworkFile(
            f"{self.name}: refused to load: {what} {_where(path)}; hai reads only the data types "
            "pandapower writes (pandas, numpy, pandapower, shapely/geojson geometries), "
            "and imports nothing a file names",
            hint="load only files from sources you trust; re-save the net with pandapower.to_json",
        )

    def scan(self, value: Any, path: tuple[str, ...] = (), nesting: int = 0, geo: bool = False) -> None:
        # an explicit stack: no recursion limit for deeply nested (hostile) documents
        stack: list[tuple[Any, tuple[str, ...], int, bool]] = [(value, path, nesting, geo)]
        while stack:
            item, where, depth, in_geo = stack.pop()
            if isinstance(item, str):
                text = item.lstrip()
                if text[:1] in ("{", "["):
                    if depth >= MAX_NESTING:
                        raise self.refuse(f"JSON text nested more than {MAX_NESTING} levels deep", where)
                    try:
                        inner = json.loads(item)
                    except (ValueError, RecursionError):
                        continue  # not JSON: pandapower will not parse it either
                    stack.append((inner, where, depth + 1, in_geo))
            elif isinstance(item, list):
                stack.extend((v, (*where, str(i)), depth, in_geo) for i, v in enumerate(item))
            elif isinstance(item, dict):
                self._check_object(item, where, in_geo)
                columns = self._table_columns(item)
                for key, v in item.items():
                    if columns is not None and key == "data" and isinstance(v, list):
                        for r, row in enumerate(v):
                            if isinstance(row, list):
                                for c, cell in enumerate(row):
                                    name = columns[c] if c < len(columns) else ""
                                    stack.append(
                                        (
                                            cell,
                                            (*where, "data", str(r), str(name)),
                                            depth,
                                            in_geo or name == "geo",
                                        )
                                    )
                        continue
                    stack.append((v, (*where, str(key)), depth, in_geo or key == "geo"))

    @staticmethod
    def _table_columns(item: dict[str, Any]) -> list[Any] | None:
        columns = item.get("columns")
        if isinstance(columns, list) and "data" in item:
            return columns
        return None

    def _check_object(self, item: dict[str, Any], where: tuple[str, ...], in_geo: bool) -> None:
        if in_geo and "type" in item:
            kind = item["type"]
            if not isinstance(kind, str) or kind not in GEOJSON_TYPES:
                raise self.refuse(f"a GeoJSON object of type {kind!r}", where)
        if "_module" not in item and "_class" not in item:
            return
        module, cls = item.get("_module", ""), item.get("_class", "")
        if not isinstance(module, str) or not isinstance(cls, str):
            raise self.refuse(f"a non-text _module/_class ({module!r}, {cls!r})", where)
        if not allowed(module, cls):
            raise self.refuse(f"names module {module!r} (class {cls!r})", where)
        for key in item:
            if key not in ("_module", "_class", "_object", "_state") and key not in SIDE_KEYS:
                raise self.refuse(f"passes the unexpected option {key!r} with {module}.{cls}", where)
        orient = item.get("orient")
        if orient is not None and orient not in ORIENTS:
            raise self.refuse(f"an unknown table orientation {orient!r}", where)
        if cls in _TABLE_CLASSES and "_object" in item:
            obj = item["_object"]
            text = obj.lstrip() if isinstance(obj, str) else ""
            if text[:1] not in ("{", "["):
                raise self.refuse(f"a {cls} whose _object is not JSON text ({str(obj)[:40]!r})", where)


def check_json_document(document: Any, name: str = "the file") -> None:
    """Raise :class:`UnsafeNetworkFile` if ``document`` (parsed JSON) names anything not allowed.

    >>> check_json_document({"_module": "pandas.core.frame", "_class": "DataFrame", "_object": "{}"})
    >>> check_json_document({"bus": '{"x": {"_module": "evil", "_class": "X"}}'}, "net.json")
    Traceback (most recent call last):
    ...
    hai.grid.errors.UnsafeNetworkFile: net.json: refused to load: names module 'evil' (class 'X') at bus/x;...
    """
    _Scanner(name).scan(document)


def from_json(path: str | os.PathLike[str]) -> Any:
    """Read a pandapower network from a JSON file, refusing anything but pandapower's data types.

    Raises :class:`~hai.shared.InputError` for a missing file, a folder, a file that is not
    UTF-8 JSON or not a pandapower network, and its subclass :class:`UnsafeNetworkFile` for a
    file that names modules, classes or options outside the allow-list (see the module
    docstring); nothing is imported before the whole file has been checked.
    """
    file = Path(path)
    name = os.fspath(path)
    if file.is_dir():
        raise InputError(f"{name} is a folder, not a pandapower JSON file")
    if not file.is_file():
        raise InputError(f"pandapower JSON file {name} does not exist")
    try:
        size = file.stat().st_size
        # parsed twice (the check here, pandapower's own), each several times the text
        check_memory(20.0 * size, f"reading {name}")
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise InputError(f"{name} is empty, not a pandapower JSON file")
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise InputError(f"{name} is not a pandapower JSON file (not UTF-8 text)") from None
    except RecursionError:
        raise InputError(f"{name} is not a readable pandapower JSON file (nested too deeply)") from None
    except ValueError as exc:
        raise InputError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InputError(
            f"{name} is JSON but not a pandapower network (top level is {type(document).__name__})"
        )
    check_json_document(document, name)
    is_net = document.get("_class") == "pandapowerNet" or ("bus" in document and "_module" not in document)
    if not is_net:
        raise InputError(
            f"{name} is JSON but not a pandapower network (no pandapowerNet object)",
            hint="write networks with pandapower.to_json",
        )
    import warnings

    import pandapower as pp  # type: ignore[import-untyped]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = pp.from_json_string(text, convert=True)
    except RecursionError:
        raise InputError(f"{name} is not a readable pandapower JSON file (nested too deeply)") from None
    except Exception as exc:  # pandapower raises anything from KeyError to UserWarning here
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name} is not a readable pandapower JSON file: {message[:200]}") from None
    if not hasattr(net, "bus") or not hasattr(net, "ext_grid"):
        raise InputError(f"{name} is JSON but not a pandapower network")
    _check_tables(net, name)
    return net


#: Columns every pandapower network has in these tables (what hai's model build reads first).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "bus": ("vn_kv", "in_service"),
    "line": ("from_bus", "to_bus", "length_km", "r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km", "in_service"),
    "trafo": (
        "hv_bus",
        "lv_bus",
        "sn_mva",
        "vn_hv_kv",
        "vn_lv_kv",
        "vk_percent",
        "vkr_percent",
        "in_service",
    ),
    "ext_grid": ("bus", "vm_pu", "va_degree", "in_service"),
    "gen": ("bus", "p_mw", "vm_pu", "in_service"),
    "load": ("bus", "p_mw", "q_mvar", "in_service"),
    "sgen": ("bus", "p_mw", "q_mvar", "in_service"),
    "switch": ("bus", "element", "et", "closed"),
}


def _check_tables(net: Any, name: str) -> None:
    """Every table of an empty pandapower net is a table here, with the columns hai reads."""
    import pandapower as pp
    import pandas as pd

    empty = pp.create_empty_network()
    for key, value in empty.items():
        if isinstance(value, pd.DataFrame) and key in net and not isinstance(net[key], pd.DataFrame):
            raise InputError(f"{name}: net.{key} is not a table ({type(net[key]).__name__})")
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in net:
            raise InputError(f"{name}: the network has no {table} table")
        missing = [c for c in columns if c not in net[table].columns]
        if missing:
            raise InputError(f"{name}: net.{table} lacks the column(s) {', '.join(missing)}")
    if not len(net.bus):
        raise InputError(f"{name}: the network has no buses")

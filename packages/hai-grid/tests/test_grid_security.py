"""Crafted pandapower JSON files: nothing a file names is imported or run, through every loader.

The attacker's module sits beside the file (and the folder is on ``sys.path``, as the working
folder is for ``python -m`` and many launchers); importing it writes a marker file. Every crafted
file must be refused by ``hai.grid.from_json``, ``hai.grid.load_case`` and each ``hai grid``
command with exit status 2 and one line on stderr, and the marker must not appear.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandapower as pp
import pytest

from hai.grid import UnsafeNetworkFile, from_json, load_case
from hai.grid.jsonio import allowed
from hai.shared import InputError
from hai.shared.cli import main

EVIL = "hai_grid_evil_payload"


@pytest.fixture
def attacker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the attacker's module in it, on sys.path and the working folder."""
    marker = tmp_path / "PWNED"
    (tmp_path / f"{EVIL}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nclass Net(dict):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, EVIL, raising=False)
    return tmp_path


def _case9_document() -> dict[str, Any]:
    return json.loads(pp.to_json(load_case("case9")))


def _set_bus_name(document: dict[str, Any], value: Any) -> dict[str, Any]:
    """Put ``value`` into the first bus's name cell (an object column pandapower re-parses)."""
    bus = json.loads(document["_object"]["bus"]["_object"])
    bus["data"][0][bus["columns"].index("name")] = value
    document["_object"]["bus"]["_object"] = json.dumps(bus)
    return document


def _foreign(module: str, cls: str, obj: Any = "{}") -> dict[str, Any]:
    return {"_module": module, "_class": cls, "_object": obj}


def _crafted() -> dict[str, dict[str, Any]]:
    """name -> a JSON document an attacker would write."""
    files: dict[str, dict[str, Any]] = {}
    files["top-level module beside the file"] = _foreign(EVIL, "Net", {})
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign(EVIL, "Net")
    files["module beside the file, as a net entry"] = doc
    files["module beside the file, in a table cell"] = _set_bus_name(_case9_document(), _foreign(EVIL, "Net"))
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("os", "function", "system")
    files["os.system as a function"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("subprocess", "Popen", ["touch", "PWNED"])
    files["subprocess.Popen"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("builtins", "eval", "__import__('os')")
    files["builtins.eval"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("builtins", "function", "exec")
    files["builtins exec as a function"] = doc
    # a string holding JSON holding a string holding the payload
    inner = json.dumps({"x": json.dumps({"y": _foreign(EVIL, "Net")})})
    files["nested two strings deep"] = _set_bus_name(_case9_document(), inner)
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("pandapower.toolbox", "function", "drop_elements")
    files["a pandapower function"] = doc
    doc = _case9_document()
    doc["_object"]["bus"]["_object"] = str(Path("/etc/hostname.json"))
    files["a table read from a path"] = doc
    doc = _case9_document()
    doc["_object"]["bus"]["storage_options"] = {"token": "x"}
    files["an extra read_json option"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("numpy", "load", "x.npy")
    files["numpy.load (not a numpy type)"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("pandas", "read_pickle", "x.pkl")
    files["pandas.read_pickle"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = _foreign("pandas.io.pickle", "DataFrame")
    files["pandas submodule outside the allow-list"] = doc
    doc = _case9_document()
    doc["_object"]["evil"] = {"_module": EVIL}
    files["_module without _class"] = doc
    files["geojson factory call"] = _set_bus_name(_case9_document(), {"geo": {"type": "loads", "s": "{}"}})
    doc = _case9_document()
    bus = json.loads(doc["_object"]["bus"]["_object"])
    bus["data"][0][bus["columns"].index("geo")] = json.dumps({"type": "dump", "obj": 1})
    doc["_object"]["bus"]["_object"] = json.dumps(bus)
    files["geojson factory call in the geo column"] = doc
    return files


CRAFTED = _crafted()


def _write(folder: Path, document: Any, name: str = "net.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(document))
    return path


def _assert_nothing_ran(folder: Path) -> None:
    assert not (folder / "PWNED").exists(), "the attacker's module ran"
    assert EVIL not in sys.modules


def test_the_threat_is_real(attacker: Path) -> None:
    """pandapower's own loader imports (and so runs) the module a file names."""
    path = _write(attacker, CRAFTED["module beside the file, in a table cell"])
    with contextlib.suppress(Exception):  # what it raises after the import does not matter
        pp.from_json(str(path))
    assert (attacker / "PWNED").exists()
    sys.modules.pop(EVIL, None)


LOADERS: dict[str, Callable[[Path], Any]] = {"from_json": from_json, "load_case": lambda p: load_case(str(p))}


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("name", list(CRAFTED))
def test_public_loaders_refuse_crafted_files(attacker: Path, name: str, loader: str) -> None:
    path = _write(attacker, CRAFTED[name])
    with pytest.raises(UnsafeNetworkFile, match="refused to load") as info:
        LOADERS[loader](path)
    assert "\n" not in str(info.value)
    _assert_nothing_ran(attacker)


@pytest.mark.parametrize("name", list(CRAFTED))
def test_error_names_the_module(attacker: Path, name: str) -> None:
    document = CRAFTED[name]
    with pytest.raises(UnsafeNetworkFile) as info:
        from_json(_write(attacker, document))
    text = json.dumps(document)
    for module in (EVIL, "os", "subprocess", "builtins", "pandas.io.pickle"):
        if f'"_module": "{module}"' in text or f'\\"_module\\": \\"{module}\\"' in text:
            assert repr(module) in str(info.value)


@pytest.mark.parametrize("command", ["pf", "n1", "timeseries"])
@pytest.mark.parametrize(
    "name",
    [
        "module beside the file, in a table cell",
        "os.system as a function",
        "nested two strings deep",
        "builtins.eval",
    ],
)
def test_cli_refuses_crafted_files(
    attacker: Path, capsys: pytest.CaptureFixture[str], command: str, name: str
) -> None:
    path = _write(attacker, CRAFTED[name], name=f"{command}.json")
    extra = ["--steps", "2"] if command == "timeseries" else []
    assert main(["grid", command, str(path), *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "refused to load" in lines[0]
    assert captured.out == ""
    _assert_nothing_ran(attacker)


def test_deep_nesting_is_refused_not_a_recursion_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hai.grid.jsonio

    monkeypatch.setattr(hai.grid.jsonio, "MAX_NESTING", 4)  # each level doubles the escapes
    deep: Any = "[]"
    for _ in range(6):
        deep = json.dumps([deep])
    with pytest.raises(UnsafeNetworkFile, match="nested more than"):
        from_json(_write(tmp_path, _set_bus_name(_case9_document(), deep)))
    with pytest.raises(InputError):
        from_json(_write(tmp_path, "[" * 100_000 + "]" * 100_000, name="deep.json"))


def test_genuine_files_still_load(tmp_path: Path) -> None:
    import pandapower.control as control
    import pandapower.networks as pn
    from pandapower.toolbox import nets_equal

    net = pn.mv_oberrhein()  # geodata (geo column), std types
    control.ConstControl(net, element="load", variable="p_mw", element_index=[0], profile_name=["a"])
    path = tmp_path / "oberrhein.json"
    pp.to_json(net, str(path))
    assert nets_equal(from_json(path), pp.from_json(str(path)))


def test_allow_list_decides_without_importing() -> None:
    assert allowed("pandapower.auxiliary", "pandapowerNet")
    for module, cls in [("pandas.core.series", "Series"), ("pandas", "RangeIndex"), ("numpy", "array")]:
        assert allowed(module, cls)
    assert allowed("numpy", "int64")
    assert allowed("builtins", "complex")
    refused = [("numpy", "load"), ("builtins", "exec"), ("pandapower..x", "X"), ("pandapower", "__class__")]
    for module, cls in refused:
        assert not allowed(module, cls)
    assert not allowed("never_imported_module_xyz", "X")
    assert "never_imported_module_xyz" not in sys.modules

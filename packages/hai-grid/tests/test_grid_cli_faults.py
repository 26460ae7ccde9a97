"""``hai grid`` under bad input and failed writes (issue 20): exit status 2, one line, no damage.

Bad numbers, corrupt or foreign JSON files, networks with impossible parameters and output
paths that cannot be written each give one line on stderr and exit status 2; a failed write
(a folder in the way, a file size limit) leaves the old file as it was and no temporary file.
Also the numbers that were wrong: the losses of case9 and "converged" at a huge tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pytest

import hai.grid
from hai.grid import load_case
from hai.shared import InputError
from hai.shared.cli import main


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> str:
    """Run ``hai`` in-process: exit status 2, one line on stderr that contains ``match``."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match.lower() in err[0].lower(), err[0]
    return err[0]


def no_temporary_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- the numbers that were wrong ------------------------------------------------------------


def test_pf_losses_are_pandapowers_branch_losses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "pf", "case9", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ref = load_case("case9")
    pp.runpp(ref, numba=False)
    expected = float(ref.res_line.pl_mw.sum() + ref.res_trafo.pl_mw.sum())
    assert expected == pytest.approx(4.955, abs=1e-3)
    assert data["losses_mw"] == pytest.approx(expected, abs=1e-6)
    assert main(["grid", "pf", "case9"]) == 0
    assert "losses 4.955 MW" in capsys.readouterr().out


def test_huge_tolerance_is_refused_not_converged(capsys: pytest.CaptureFixture[str]) -> None:
    line = fails_with_one_line(
        capsys, ["grid", "pf", "case9", "--tolerance-mva", "1e12", "--init", "flat"], "tolerance_mva"
    )
    assert "converged" not in line.replace("count as converged", "")


# -- bad numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["pf", "case9", "--tolerance-mva", "0"], "--tolerance-mva"),
        (["pf", "case9", "--tolerance-mva", "-1"], "--tolerance-mva"),
        (["pf", "case9", "--tolerance-mva", "nan"], "--tolerance-mva"),
        (["pf", "case9", "--tolerance-mva", "inf"], "--tolerance-mva"),
        (["pf", "case9", "--tolerance-mva", "abc"], "--tolerance-mva"),
        (["pf", "case9", "--max-iteration", "0"], "--max-iteration"),
        (["pf", "case9", "--max-iteration", "-5"], "--max-iteration"),
        (["pf", "case9", "--max-iteration", "1.5"], "--max-iteration"),
        (["pf", "case9", "--max-iteration", "100000000000"], "--max-iteration"),
        (["pf", "case9", "--method", "gauss"], "--method"),
        (["pf", "case9", "--device", "tpu"], "tpu"),
        (["timeseries", "case9", "--steps", "0"], "--steps"),
        (["timeseries", "case9", "--steps", "-3"], "--steps"),
        (["timeseries", "case9", "--steps", "1000000000000"], "--steps"),
        (["pf", "case99"], "unknown case"),
        (["pf", "create_nxgraph"], "unknown case"),
        (["n1", "nothere.json"], "does not exist"),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    fails_with_one_line(capsys, ["grid", *argv], match)


# -- corrupt and foreign files --------------------------------------------------------------


def _case9_text() -> str:
    return pp.to_json(load_case("case9"))


CORRUPT: dict[str, tuple[Any, str]] = {
    "empty": (b"", "empty"),
    "blank": (b"  \n", "empty"),
    "not JSON": (b"this is not json", "not valid JSON"),
    "truncated": (None, "not valid JSON"),
    "not UTF-8": (b"\xff\xfe\x00{", "UTF-8"),
    "a list": (b"[1, 2, 3]", "not a pandapower network"),
    "a number": (b"42", "not a pandapower network"),
    "foreign dict": (b'{"hello": "world"}', "not a pandapower network"),
    "net without tables": (b'{"_module": "pandapower.auxiliary", "_class": "pandapowerNet"}', "no buses"),
    "bus table not a table": (None, "net.bus is not a table"),
    "bus table without vn_kv": (None, "net.bus lacks the column(s) vn_kv"),
}


def _corrupt_bytes(name: str) -> bytes:
    content, _ = CORRUPT[name]
    if content is not None:
        return bytes(content)
    text = _case9_text()
    if name == "truncated":
        return text[: len(text) // 2].encode()
    document = json.loads(text)
    if name == "bus table not a table":
        document["_object"]["bus"]["_object"] = '{"columns": 5}'
    else:
        table = json.loads(document["_object"]["bus"]["_object"])
        at = table["columns"].index("vn_kv")
        table["columns"].pop(at)
        for row in table["data"]:
            row.pop(at)
        document["_object"]["bus"]["_object"] = json.dumps(table)
        document["_object"]["bus"]["dtype"].pop("vn_kv")
    return json.dumps(document).encode()


@pytest.mark.parametrize("command", ["pf", "n1", "timeseries"])
@pytest.mark.parametrize("name", list(CORRUPT))
def test_corrupt_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, name: str) -> None:
    path = tmp_path / "net.json"
    path.write_bytes(_corrupt_bytes(name))
    fails_with_one_line(capsys, ["grid", command, str(path)], CORRUPT[name][1])
    with pytest.raises(InputError):
        hai.grid.from_json(path)


def test_folder_given_as_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "net.json"
    folder.mkdir()
    fails_with_one_line(capsys, ["grid", "pf", str(folder)], "folder")


# -- impossible parameters (issue 12 item 4, issue 20 item 1) -------------------------------


def _set(table: str, column: str, index: int, value: float) -> Any:
    net = load_case("case9")
    net[table].loc[index, column] = value
    return net


def _zero_impedance() -> Any:
    net = load_case("case9")
    net.line.loc[3, ["r_ohm_per_km", "x_ohm_per_km"]] = 0.0
    return net


BAD_PARAMETERS = {
    "zero-impedance line": (_zero_impedance, "net.line at index 3 has zero impedance"),
    "NaN r": (lambda: _set("line", "r_ohm_per_km", 2, np.nan), "net.line.r_ohm_per_km at index 2 is nan"),
    "NaN x": (lambda: _set("line", "x_ohm_per_km", 4, np.nan), "net.line.x_ohm_per_km at index 4 is nan"),
    "NaN c": (lambda: _set("line", "c_nf_per_km", 1, np.nan), "net.line.c_nf_per_km at index 1 is nan"),
    "bus vn_kv 0": (lambda: _set("bus", "vn_kv", 5, 0.0), "net.bus.vn_kv at index 5 is 0.0"),
    "negative length": (lambda: _set("line", "length_km", 0, -1.0), "net.line.length_km at index 0 is -1.0"),
    "zero length": (lambda: _set("line", "length_km", 0, 0.0), "net.line.length_km at index 0 is 0.0"),
    "NaN load": (lambda: _set("load", "p_mw", 1, np.nan), "net.load.p_mw contains NaN"),
    "ext_grid vm 0": (lambda: _set("ext_grid", "vm_pu", 0, 0.0), "net.ext_grid.vm_pu at index 0"),
}


@pytest.mark.parametrize("name", list(BAD_PARAMETERS))
def test_bad_parameters_are_named_at_the_boundary(name: str) -> None:
    make, match = BAD_PARAMETERS[name]
    with pytest.raises(InputError) as info:
        hai.grid.runpp(make())
    assert match in str(info.value)
    with pytest.raises(InputError, match="index"):
        hai.grid.solve_batch(make(), outages=[None])


@pytest.mark.parametrize("name", ["zero-impedance line", "NaN r", "bus vn_kv 0", "negative length"])
def test_bad_parameters_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    make, match = BAD_PARAMETERS[name]
    path = tmp_path / "bad.json"
    pp.to_json(make(), str(path))
    fails_with_one_line(capsys, ["grid", "pf", str(path)], match)
    fails_with_one_line(capsys, ["grid", "n1", str(path)], match)


def test_genuine_equivalents_are_not_refused() -> None:
    """Negative r (case145) and negative vk (the rte cases) are network equivalents, not errors."""
    import pandapower.networks as pn

    from hai.grid.network import _check_parameters

    for factory in (pn.case145, pn.case1888rte):
        _check_parameters(factory())


# -- output paths and failed writes ---------------------------------------------------------


def test_plot_path_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    folder = tmp_path / "pf.png"
    folder.mkdir()
    for command in ("pf", "n1", "timeseries"):
        fails_with_one_line(capsys, ["grid", command, "case9", "--plot", str(folder)], "it is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fails_with_one_line(capsys, ["grid", "pf", "case9", "--plot", str(blocker / "pf.png")], "not a folder")
    no_temporary_files(tmp_path)


CHILD = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys
    from hai.shared.cli import main
    import matplotlib.font_manager  # builds its font cache before the limit (not what is tested)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        results.append({"status": status, "err": err.getvalue()})
    print(json.dumps(results))
    """
)


def test_failed_writes_keep_the_old_files(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    old = {name: tmp_path / f"{name}.png" for name in ("pf", "n1", "timeseries")}
    for path in old.values():
        path.write_bytes(b"old content that must survive " * 8)
    runs = [
        ["grid", "pf", "case9", "--plot", str(old["pf"])],
        ["grid", "n1", "case9", "--plot", str(old["n1"])],
        ["grid", "timeseries", "case9", "--steps", "4", "--plot", str(old["timeseries"])],
    ]
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for argv, result in zip(runs, json.loads(done.stdout.splitlines()[-1]), strict=True):
        lines = result["err"].strip().splitlines()
        assert result["status"] == 2, (argv, lines)
        assert len(lines) == 1, lines
        assert "ulimit -f" in lines[0]
    for path in old.values():
        assert path.read_bytes() == b"old content that must survive " * 8, path
    no_temporary_files(tmp_path)

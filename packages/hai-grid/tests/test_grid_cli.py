"""``hai grid pf``: the command prints pandapower-exact results, as text or JSON, and plots."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandapower as pp
import pytest

from hai.grid import load_case
from hai.grid.cli import register
from hai.shared import InputError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hai grid")
    register(parser)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def test_pf_json_matches_pandapower(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["pf", "case14", "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["converged"] is True
    assert data["max_mismatch_mva"] <= 1e-8 * 100  # tolerance_mva is per unit (pandapower's meaning)
    ref = load_case("case14")
    pp.runpp(ref, tolerance_mva=1e-10)
    assert data["res_bus"]["index"] == [int(i) for i in ref.res_bus.index]
    assert max(abs(a - b) for a, b in zip(data["res_bus"]["vm_pu"], ref.res_bus.vm_pu, strict=True)) < 1e-6
    assert abs(data["vm_pu_min"] - float(ref.res_bus.vm_pu.min())) < 1e-6


def test_pf_text_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "pf.png"
    assert _run(["pf", "case9", "--plot", str(png), "--method", "nr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("case9: converged with nr in 3 iterations")
    assert len(out.splitlines()) == 3 + 9
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pf_reads_a_pandapower_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "net.json"
    pp.to_json(load_case("case9"), str(path))
    assert _run(["pf", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_bus"] == 9


def test_pf_unknown_case_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown case 'case99'"):
        _run(["pf", "case99"])
    with pytest.raises(InputError, match="does not exist"):
        _run(["pf", "missing.json"])


def test_timeseries_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hai.grid.cli import daily_profile

    png = tmp_path / "series.png"
    assert _run(["timeseries", "case9", "--steps", "4", "--json", "--plot", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["converged"] for r in data["results"]] == [True] * 4
    factors = daily_profile(4)
    ref = load_case("case9")
    ref.load["p_mw"] *= factors[2]
    ref.load["q_mvar"] *= factors[2]
    pp.runpp(ref, tolerance_mva=1e-10)
    assert abs(data["results"][2]["vm_pu_min"] - float(ref.res_bus.vm_pu.min())) < 1e-6
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):  # argparse: one usage line, exit status 2
        _run(["timeseries", "case9", "--steps", "0"])


def test_n1_json_agrees_with_pandapower(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "n1.png"
    assert _run(["n1", "case9", "--json", "--plot", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["outages"], data["converged"], data["islanded"]) == (9, 9, 3)
    first = data["per_outage"][0]
    ref = load_case("case9")
    ref[first["element"]].loc[first["index"], "in_service"] = False
    pp.runpp(ref, tolerance_mva=1e-10)
    assert abs(first["min_vm_pu"] - float(ref.res_bus.vm_pu.min())) < 1e-6
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert _run(["n1", "case9"]) == 0
    assert capsys.readouterr().out.startswith("case9: 9 outages in")


def test_n1_screening_flag_reports_the_exact_violations(capsys: pytest.CaptureFixture[str]) -> None:
    # case9 has limits (min_vm_pu 0.9, max_vm_pu 1.1, max_loading_percent 100)
    assert _run(["n1", "case9", "--json"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert _run(["n1", "case9", "--json", "--screening"]) == 0
    screened = json.loads(capsys.readouterr().out)

    def keys(data: dict) -> list[tuple[object, ...]]:  # values of screened outages are approximate
        return [(tuple(v["outage"]), v["element"], v["index"]) for v in data["violations"]]

    assert keys(screened) == keys(exact)
    assert len(keys(exact)) > 0
    assert screened["screened"] == sum(o["screened"] for o in screened["per_outage"])

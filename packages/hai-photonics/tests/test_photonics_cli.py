"""`hai photonics ...` through the real `hai` entry point (hai.shared.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hai.photonics import simulate
from hai.shared.cli import main


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_table_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = run_json(capsys, ["photonics", "simulate", "TiO2_60 SiO2_100", "--json"])
    expected = simulate("TiO2_60 SiO2_100")
    assert len(data["wavelength_nm"]) == 171
    assert data["R"][0] == pytest.approx(expected.R[0, 0].item(), abs=1e-12)
    assert data["stack"] == "TiO2_60 SiO2_100"
    plot = tmp_path / "spectrum.png"
    assert (
        main(
            [
                "photonics",
                "simulate",
                "Ag_20",
                "--preset",
                "optogpt",
                "--pol",
                "p",
                "--angle",
                "30",
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "optogpt" in out
    assert len(out.splitlines()) == 2 + 71
    assert plot.stat().st_size > 1000


def test_bad_input_exits_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["photonics", "simulate", "Gold_60"]) == 2
    assert "unknown material 'Gold'" in capsys.readouterr().err
    assert main(["photonics", "simulate", "TiO2_60", "--pol", "x"]) == 2


def test_dataset_baseline_evaluate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    data = run_json(
        capsys,
        [
            "photonics",
            "dataset",
            "--n",
            "60",
            "--out",
            str(lib),
            "--seed",
            "1",
            "--shard-size",
            "25",
            "--precision",
            "single",
            "--json",
        ],
    )
    assert data["n"] == 60
    assert data["shards"] == 3
    assert data["stacks_per_s"] > 0
    targets = tmp_path / "targets"
    run_json(capsys, ["photonics", "dataset", "--n", "3", "--out", str(targets), "--seed", "2", "--json"])
    designs = tmp_path / "designs.txt"
    base = run_json(
        capsys,
        [
            "photonics",
            "baseline",
            "--library",
            str(lib),
            "--targets",
            str(targets),
            "--out",
            str(designs),
            "--json",
        ],
    )
    assert len(base["designs"]) == 3
    assert designs.read_text().count("\n") == 3
    plot = tmp_path / "eval.png"
    ev = run_json(
        capsys,
        [
            "photonics",
            "evaluate",
            "--targets",
            str(targets),
            "--designs",
            str(designs),
            "--plot",
            str(plot),
            "--json",
        ],
    )
    # the re-simulated designs score what the baseline measured on the stored float16 spectra
    assert ev["mae"] == pytest.approx(base["library_mae"], abs=2e-3)
    assert ev["mae_overall"] == pytest.approx(sum(ev["mae"]) / 3)
    assert plot.stat().st_size > 1000

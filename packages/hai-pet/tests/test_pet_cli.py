"""`hai pet ...` through the real `hai` entry point (hai.shared.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hai.pet import pair_metrics, read_gate, read_singles, sort_coincidences
from hai.shared.cli import main


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_then_sort(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hits = tmp_path / "hits.root"
    sim = run_json(
        capsys,
        [
            "pet",
            "simulate",
            "--preset",
            "safir",
            "--seconds",
            "0.002",
            "--activity-mbq",
            "5",
            "--seed",
            "3",
            "--out",
            str(hits),
            "--json",
        ],
    )
    assert sim["preset"] == "safir"
    assert sim["singles"] > 100
    singles = read_singles(hits, progress_bar=False)
    assert len(singles) == sim["singles"]
    assert len(read_gate(hits, "Hits", progress_bar=False)) == sim["hits"]

    coinc = tmp_path / "coinc.root"
    argv = [
        "pet",
        "sort",
        str(hits),
        "--window-ns",
        "4",
        "--policy",
        "takeWinnerOfGoods",
        "--min-sector-difference",
        "2",
        "--preset",
        "safir",
        "--energy-window-kev",
        "350",
        "650",
        "--metrics",
        "--out",
        str(coinc),
    ]
    out = run_json(capsys, [*argv, "--json"])
    expected = sort_coincidences(
        singles,
        4.0,
        policy="takeWinnerOfGoods",
        min_sector_difference=2,
        sectors=16,
        energy_window_kev=(350, 650),
    )
    assert out["coincidences"] == len(expected) > 10
    assert out["settings"]["sectors"] == 16
    assert out["settings"]["policy"] == "takeWinnerOfGoods"
    written = read_gate(coinc, "Coincidences", progress_bar=False)
    assert written.equals(expected.coincidences)
    assert out["metrics"]["f1"] == pytest.approx(pair_metrics(expected.coincidences, singles).f1)
    # people get one line per result
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "coincidences" in text
    assert "F1" in text
    # the SCW baseline through the same command
    scw = run_json(
        capsys,
        [
            "pet",
            "sort",
            str(hits),
            "--window-ns",
            "4",
            "--policy",
            "SCW",
            "--out",
            str(tmp_path / "scw.root"),
            "--json",
        ],
    )
    assert scw["settings"]["policy"] == "SCW"
    assert np.isfinite(scw["singles_per_s"])


def test_bad_input_exits_with_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = str(tmp_path / "c.root")
    assert (
        main(
            [
                "pet",
                "sort",
                str(tmp_path / "missing.root"),
                "--window-ns",
                "4",
                "--policy",
                "killAll",
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    hits = tmp_path / "hits.root"
    assert main(["pet", "simulate", "--preset", "safir", "--seconds", "0.0005", "--out", str(hits)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # argparse checks the number (hai.shared.checks)
        main(["pet", "sort", str(hits), "--window-ns", "-4", "--policy", "killAll", "--out", out])
    assert info.value.code == 2
    assert "--window-ns: must be a positive number" in capsys.readouterr().err
    assert (
        main(
            [
                "pet",
                "sort",
                str(hits),
                "--window-ns",
                "4",
                "--policy",
                "killAll",
                "--min-sector-difference",
                "2",
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "number of sectors" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # argparse rejects a policy GATE does not spell this way
        main(["pet", "sort", str(hits), "--window-ns", "4", "--policy", "takewinnerofgoods", "--out", out])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["pet", "simulate", "--seconds", "0", "--out", str(hits)])
    assert info.value.code == 2


@pytest.mark.slow
@pytest.mark.parametrize("variant", [[], ["--local", "--fan", "20"]])
def test_train_then_evaluate(capsys: pytest.CaptureFixture[str], tmp_path: Path, variant: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    hits = tmp_path / "hits.root"
    assert (
        main(
            [
                "pet",
                "simulate",
                "--preset",
                "clinical",
                "--seconds",
                "0.0001",
                "--activity-mbq",
                "100",
                "--seed",
                "1",
                "--out",
                str(hits),
            ]
        )
        == 0
    )
    capsys.readouterr()
    model = tmp_path / "petnet.safetensors"
    trained = run_json(
        capsys,
        [
            "pet",
            "train",
            str(hits),
            "--steps",
            "20",
            "--bin-ns",
            "1",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--device",
            "cpu",
            "--out",
            str(model),
            "--json",
            *variant,
        ],
    )
    assert trained["epochs_run"] == 2
    assert trained["samples"] > 10
    assert model.stat().st_size > 1000
    plot = tmp_path / "f1.png"
    out = run_json(
        capsys,
        [
            "pet",
            "evaluate",
            str(hits),
            "--model",
            str(model),
            "--window-ns",
            "4",
            "--policy",
            "takeWinnerOfGoods",
            "--plot",
            str(plot),
            "--json",
        ],
    )
    singles = read_singles(hits, progress_bar=False)
    expected = pair_metrics(sort_coincidences(singles, 4.0, policy="takeWinnerOfGoods").coincidences, singles)
    methods = out["methods"]
    assert set(methods) == {"PETNet", "takeWinnerOfGoods", "SCW"}
    assert methods["takeWinnerOfGoods"]["f1"] == pytest.approx(expected.f1)
    assert out["true_pairs"] == expected.n_true
    assert 0.0 <= methods["PETNet"]["f1"] <= 1.0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert (
        main(["pet", "evaluate", str(hits), "--model", str(hits), "--window-ns", "4", "--policy", "killAll"])
        == 2
    )

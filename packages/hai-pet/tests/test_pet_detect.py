"""`hai pet detect`: PETNet coincidences from a ROOT file, with the model shipped in the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hai.pet import (
    PETNet,
    coincidence_tree,
    encode_spikes,
    get_scanner,
    pair_metrics,
    read_gate,
    read_singles,
    shipped_model_path,
    spikes_to_pairs,
)
from hai.shared.cli import main


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def clinical_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("detect") / "clinical.root"
    argv = ["pet", "simulate", "--preset", "clinical", "--seconds", "2e-5", "--activity-mbq", "1500"]
    assert main([*argv, "--seed", "7", "--out", str(path)]) == 0
    return path


def test_the_shipped_model_is_in_the_package_with_its_recipe() -> None:
    path = shipped_model_path()
    assert path.is_file()
    assert path.parent.name == "pet"
    assert path.stat().st_size < 5_000_000
    recipe = json.loads(path.with_suffix(".json").read_text())
    assert recipe["file"] == path.name
    assert recipe["bytes"] == path.stat().st_size
    assert recipe["preset"] == "clinical"
    assert recipe["petnet"]["local"] is True
    assert (
        len({a["seed"] for a in recipe["training_acquisitions"]}) == len(recipe["training_acquisitions"]) > 1
    )
    assert not {h["seed"] for h in recipe["held_out"]} & {a["seed"] for a in recipe["training_acquisitions"]}
    assert recipe["epochs_run"] == len(recipe["val_loss"]) >= 1
    assert recipe["train_wall_s"] > 0
    net = PETNet.load(path)
    assert net.metadata_["preset"] == "clinical"
    assert net.n_channels == get_scanner("clinical").n_crystals


def test_detect_uses_the_shipped_model_and_equals_its_dense_prediction(
    capsys: pytest.CaptureFixture[str], clinical_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "coinc.root"
    summary = run_json(
        capsys, ["pet", "detect", str(clinical_file), "--out", str(out), "--metrics", "--json"]
    )
    assert summary["shipped_model"] is True
    assert Path(summary["model"]) == shipped_model_path()
    written = read_gate(out, "Coincidences")
    assert len(written) == summary["coincidences"] > 10

    # the reference: the shipped network run densely, step by step in snnTorch (PETNet.predict)
    net = PETNet.load(shipped_model_path())
    meta = net.metadata_
    scanner = get_scanner(meta["preset"])
    singles = read_singles(clinical_file)
    enc = encode_spikes(
        singles,
        n_crystals=scanner.n_crystals,
        crystals_per_sector=scanner.crystals_per_sector,
        crystals_per_ring=scanner.crystals_per_ring,
        bin_ns=meta["bin_ns"],
        n_steps=meta["steps"],
    )
    used = enc.nonempty_samples
    dense = net.predict(enc.dense(used))
    pairs = spikes_to_pairs(
        dense,
        enc,
        singles,
        samples=used,
        window_ns=meta["window_ns"],
        tolerance_steps=meta["tolerance_steps"],
    )
    reference = coincidence_tree(singles, pairs)
    assert len(reference) == len(written)
    for key in ("eventID1", "eventID2", "crystalID1", "crystalID2", "rsectorID1", "rsectorID2"):
        np.testing.assert_array_equal(written[key], reference[key])
    np.testing.assert_array_equal(written["time1"], reference["time1"])
    m = pair_metrics(reference, singles)
    assert summary["metrics"]["f1"] == pytest.approx(m.f1)
    assert summary["metrics"]["tp"] == m.tp
    assert m.f1 > 0.8


def test_detect_with_a_checkpoint_and_explicit_settings(
    capsys: pytest.CaptureFixture[str], clinical_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c.root"
    argv = ["pet", "detect", str(clinical_file), "--checkpoint", str(shipped_model_path())]
    summary = run_json(
        capsys, [*argv, "--window-ns", "3", "--tolerance-steps", "1", "--out", str(out), "--json"]
    )
    assert summary["shipped_model"] is False
    assert summary["window_ns"] == 3.0
    assert summary["tolerance_steps"] == 1
    assert len(read_gate(out, "Coincidences")) == summary["coincidences"]


def test_detect_refuses_a_file_of_another_scanner_and_a_missing_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    safir = tmp_path / "safir.root"
    assert main(["pet", "simulate", "--preset", "safir", "--seconds", "1e-3", "--out", str(safir)]) == 0
    capsys.readouterr()
    out = tmp_path / "c.root"
    assert main(["pet", "detect", str(safir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "do not come from the 'clinical' scanner" in err
    assert "--checkpoint" in err
    assert len(err.splitlines()) == 1
    assert not out.exists()

    import hai.pet.petnet

    monkeypatch.setattr(hai.pet.petnet, "shipped_model_path", lambda: tmp_path / "gone.safetensors")
    assert main(["pet", "detect", str(safir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing from this installation" in err
    assert len(err.splitlines()) == 1

"""`hai pet detect`: PETNet coincidences from a ROOT file, with the model shipped in the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hai.pet import (
    GateTree,
    PETNet,
    coincidence_tree,
    encode_spikes,
    get_scanner,
    pair_metrics,
    read_gate,
    read_singles,
    shipped_model_path,
    sort_scw,
    spikes_to_pairs,
    spikes_to_singles,
)
from hai.shared import InputError
from hai.shared.cli import main


def _dense_selection(
    net: PETNet, singles: Any, start_s: float | None = None
) -> tuple[Any, np.ndarray, np.ndarray]:
    meta = net.metadata_
    scanner = get_scanner(meta["preset"])
    enc = encode_spikes(
        singles,
        n_crystals=scanner.n_crystals,
        crystals_per_sector=scanner.crystals_per_sector,
        crystals_per_ring=scanner.crystals_per_ring,
        bin_ns=meta["bin_ns"],
        n_steps=meta["steps"],
        start_s=start_s,
    )
    used = enc.nonempty_samples
    rows = spikes_to_singles(
        net.predict(enc.dense(used)), enc, samples=used, tolerance_steps=meta["tolerance_steps"]
    )
    chosen = np.zeros(len(singles), dtype=bool)
    chosen[rows] = True
    return enc, chosen, np.minimum(enc.single_step, enc.n_steps - 1 - enc.single_step)


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

    # the reference: the shipped network run densely, step by step in snnTorch (PETNet.predict),
    # on both tilings of the time axis (the second shifted by half a sample); each single takes
    # the decision of the tiling in which it lies further from its sample's edges
    net = PETNet.load(shipped_model_path())
    meta = net.metadata_
    singles = read_singles(clinical_file)
    first, chosen, margin = _dense_selection(net, singles)
    half = (meta["steps"] // 2) * meta["bin_ns"] * 1e-9
    _, chosen_b, margin_b = _dense_selection(net, singles, start_s=first.start_s - half)
    assert (margin_b > margin).any()
    assert (margin_b < margin).any()
    rows = np.flatnonzero(np.where(margin_b > margin, chosen_b, chosen))
    pairs = rows[sort_scw(singles.select(rows), meta["window_ns"]).pairs]
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


def test_no_overlap_is_one_tiling(
    capsys: pytest.CaptureFixture[str], clinical_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "one.root"
    summary = run_json(
        capsys, ["pet", "detect", str(clinical_file), "--no-overlap", "--out", str(out), "--json"]
    )
    assert summary["overlap"] is False
    net = PETNet.load(shipped_model_path())
    meta = net.metadata_
    singles = read_singles(clinical_file)
    enc, _, _ = _dense_selection(net, singles)
    used = enc.nonempty_samples
    pairs = spikes_to_pairs(
        net.predict(enc.dense(used)),
        enc,
        singles,
        samples=used,
        window_ns=meta["window_ns"],
        tolerance_steps=meta["tolerance_steps"],
    )
    written = read_gate(out, "Coincidences")
    np.testing.assert_array_equal(written["eventID1"], coincidence_tree(singles, pairs)["eventID1"])
    np.testing.assert_array_equal(written["time2"], coincidence_tree(singles, pairs)["time2"])


def test_overlap_finds_a_pair_that_straddles_two_samples() -> None:
    """A back-to-back pair at 15.75 and 16.0 ns falls in samples 0 and 1 of the first tiling
    (32 steps of 0.5 ns from the first single at 0 ns), so one tiling cannot see it whole; the
    shifted tiling holds it in one sample."""
    scanner = get_scanner("clinical")
    per = scanner.crystals_per_sector
    # (time ns, crystal in ring, ring, eventID): a lone single, the straddling pair, a pair mid-sample
    specs = [(0.0, 200, 1, 0), (15.75, 10, 0, 1), (16.0, 130, 1, 1), (40.0, 50, 2, 2), (40.5, 170, 3, 2)]
    c = np.array([sp[1] for sp in specs])
    ring = np.array([sp[2] for sp in specs])
    singles = GateTree(
        "Singles",
        {
            "eventID": np.array([sp[3] for sp in specs]),
            "time": np.array([sp[0] for sp in specs]) * 1e-9,
            "energy": np.full(len(specs), 0.511),
            "rsectorID": c // per,
            "crystalID": ring * per + c % per,
            "comptonPhantom": np.zeros(len(specs), dtype=int),
        },
    )
    net = PETNet.load(shipped_model_path())
    opts = {
        "window_ns": 1.0,
        "crystals_per_sector": per,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": 0.5,
        "n_steps": 32,
        "tolerance_steps": 2,
    }
    assert net.predict_pairs(singles, overlap=False, **opts).tolist() == [[3, 4]]
    assert net.predict_pairs(singles, **opts).tolist() == [[1, 2], [3, 4]]


def test_encode_spikes_start_s() -> None:
    singles = GateTree(
        "Singles",
        {
            "eventID": np.array([0, 0, 1]),
            "time": np.array([10.1e-9, 11.1e-9, 30.3e-9]),
            "rsectorID": np.array([0, 12, 3]),
            "crystalID": np.array([0, 0, 0]),
        },
    )
    opts = {"n_crystals": 240, "crystals_per_sector": 10, "bin_ns": 0.5, "n_steps": 16}
    enc = encode_spikes(singles, **opts)  # from the first single: bins 0, 2 and 40.4
    assert enc.single_sample.tolist() == [0, 0, 2]
    assert enc.single_step.tolist() == [0, 2, 8]
    enc = encode_spikes(singles, **opts, start_s=6e-9)  # bins 8.2, 10.2 and 48.6
    assert enc.start_s == 6e-9
    assert enc.single_sample.tolist() == [0, 0, 3]
    assert enc.single_step.tolist() == [8, 10, 0]
    with pytest.raises(InputError, match="after the first single"):
        encode_spikes(singles, **opts, start_s=10.5e-9)
    with pytest.raises(InputError, match="start_s"):
        encode_spikes(singles, **opts, start_s=float("nan"))

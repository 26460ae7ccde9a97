"""Bad PET input is refused by name (issues 12.4, 20.3, 19.4): NaN or infinite energies, times
and positions, negative IDs, sources at NaN or with negative activity, NaN PETNet input, an
energy window given in MeV; and the energy window's edges are float32-safe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hai.pet import (
    CylinderSource,
    GateTree,
    LineSource,
    PETNet,
    PointSource,
    WaterCylinder,
    encode_spikes,
    simulate,
    sort_coincidences,
    sort_scw,
    write_gate,
)
from hai.pet.sorter import energy_window_mask
from hai.shared import InputError
from hai.shared.cli import main


def singles(**overrides: np.ndarray) -> GateTree:
    """Two true pairs 100 ns apart, on opposite sectors of an 8-sector ring."""
    cols: dict[str, np.ndarray] = {
        "eventID": np.array([0, 0, 1, 1]),
        "time": np.array([0.0, 1e-9, 100e-9, 101e-9]),
        "energy": np.array([0.511, 0.511, 0.45, 0.5]),
        "rsectorID": np.array([0, 4, 1, 5]),
        "crystalID": np.array([0, 0, 2, 2]),
        "moduleID": np.zeros(4, dtype=np.int32),
        "globalPosX": np.array([400.0, -400.0, 0.0, 0.0]),
        "globalPosY": np.array([0.0, 0.0, 400.0, -400.0]),
        "globalPosZ": np.zeros(4),
        "comptonPhantom": np.zeros(4, dtype=np.int32),
    }
    cols.update(overrides)
    return GateTree("Singles", cols)


def test_the_reference_singles_sort() -> None:
    assert sort_coincidences(singles(), 4.0, policy="takeAllGoods").pairs.tolist() == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    ("branch", "value", "match"),
    [
        ("energy", np.nan, "NaN or infinite"),
        ("energy", np.inf, "NaN or infinite"),
        ("energy", -0.1, "negative"),
        ("time", np.nan, "NaN or infinite"),
        ("time", np.inf, "NaN or infinite"),
        ("globalPosX", np.nan, "NaN or infinite"),
        ("globalPosZ", -np.inf, "NaN or infinite"),
        ("crystalID", -1, "not IDs"),
        ("rsectorID", -3, "not IDs"),
        ("eventID", -1, "not IDs"),
        ("moduleID", -2, "not IDs"),
    ],
)
def test_sorters_and_encoder_name_the_bad_branch(branch: str, value: float, match: str) -> None:
    column = singles()[branch].copy()
    column = column.astype(np.float64) if isinstance(value, float) and column.dtype.kind != "f" else column
    column[3] = value
    bad = singles(**{branch: column})
    for call in (
        lambda: sort_coincidences(bad, 4.0, policy="takeAllGoods"),
        lambda: sort_scw(bad, 4.0),
        lambda: encode_spikes(bad, n_crystals=64, crystals_per_sector=8, bin_ns=1.0, n_steps=10),
    ):
        with pytest.raises(InputError, match=f"branch '{branch}'.*{match}.*row 3"):
            call()


def test_float_ids_must_be_whole_numbers() -> None:
    with pytest.raises(InputError, match=r"'crystalID'.*not IDs.*row 1 \(0.5\)"):
        sort_scw(singles(crystalID=np.array([0.0, 0.5, 2.0, 2.0])), 4.0)


def test_energy_window_that_looks_like_mev_is_refused() -> None:
    with pytest.raises(InputError, match=r"looks like MeV.*give \(350, 650\) keV"):
        sort_coincidences(singles(), 4.0, energy_window_kev=(0.35, 0.65))
    for window in [(np.nan, 650.0), (350.0, np.inf), (650.0, 350.0), (-1.0, 650.0)]:
        with pytest.raises(InputError, match="energy window"):
            sort_coincidences(singles(), 4.0, energy_window_kev=window)


def test_float32_energies_at_the_window_edges_are_inside() -> None:
    # a single stored in float32 at exactly 350 keV is 349.99999 keV in float64, one at 600 keV
    # is 600.00002 keV: a plain comparison drops both
    lo, hi = np.float32(0.35), np.float32(0.6)
    assert float(lo) * 1000 < 350
    assert float(hi) * 1000 > 600
    energy = np.array([lo, hi, lo, hi], dtype=np.float32)
    result = sort_coincidences(
        singles(energy=energy), 4.0, policy="takeAllGoods", energy_window_kev=(350, 600)
    )
    assert result.pairs.tolist() == [[0, 1], [2, 3]]
    above = np.nextafter(hi, np.float32(1))
    assert energy_window_mask(np.array([above], dtype=np.float32), (350, 600)).tolist() == [True]
    # one float32 step beyond the edge is still inside (the tolerance is about 8 steps) ...
    below = np.nextafter(lo, np.float32(0))
    assert energy_window_mask(np.array([below], dtype=np.float32), (350, 650)).tolist() == [True]
    # ... while a real keV away is out, on both sides
    out = np.array([0.349, 0.651, 0.3499, 0.6501])
    assert energy_window_mask(out, (350, 650)).tolist() == [False] * 4
    assert energy_window_mask(np.array([0.35, 0.65, 0.5]), (350, 650)).tolist() == [True] * 3


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PointSource(np.nan), "activity_bq must be a finite number"),
        (lambda: PointSource(-1.0), "activity_bq must be a number ≥ 0"),
        (lambda: PointSource(np.inf), "activity_bq must be a finite number"),
        (lambda: PointSource(1e3, (np.nan, 0.0, 0.0)), "position_mm has 1 non-finite"),
        (lambda: PointSource(1e3, (0.0, 0.0)), "position_mm must be three numbers"),  # type: ignore[arg-type]
        (lambda: LineSource(1e3, end_mm=(0.0, 0.0, np.inf)), "end_mm has 1 non-finite"),
        (lambda: CylinderSource(1e3, radius_mm=np.nan), "radius_mm must be a finite number"),
        (lambda: CylinderSource(1e3, length_mm=0.0), "length_mm must be a positive number"),
        (lambda: WaterCylinder(radius_mm=-5.0), "radius_mm must be a positive number"),
        (lambda: WaterCylinder(mu_per_mm=np.nan), "mu_per_mm must be a finite number"),
    ],
)
def test_sources_and_phantoms_refuse_bad_numbers(make: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        make()  # type: ignore[operator]


def test_simulate_refuses_bad_seconds_and_sources() -> None:
    for seconds in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(InputError, match="seconds must be a"):
            simulate("safir", [PointSource(1e3)], seconds=seconds)
    with pytest.raises(InputError, match="a source must be"):
        simulate("safir", ["point"], seconds=1e-3)  # type: ignore[list-item]


def test_petnet_refuses_nan_input_and_bad_parameters() -> None:
    x = np.zeros((4, 6, 3), dtype=np.float32)
    x[:, 2, 0] = 1
    bad = x.copy()
    bad[1, 3, 2] = np.nan
    with pytest.raises(InputError, match=r"x has 1 NaN or infinite value\(s\).*\[1, 3, 2\]"):
        PETNet(3, hidden=4, epochs=1).fit(bad, x)
    with pytest.raises(InputError, match="y has 1 NaN"):
        PETNet(3, hidden=4, epochs=1).fit(x, np.where(bad == bad, x, np.inf))
    net = PETNet(3, hidden=4, epochs=1, batch_size=2).fit(x, x)
    with pytest.raises(InputError, match="x has 1 NaN"):
        net.predict(bad)
    for params, match in [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"lr": np.nan}, "lr must be a finite number"),
        ({"hidden": -2}, "hidden must be a positive integer"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"beta": 2.0}, "beta"),
        ({"pos_weight": -1.0}, "pos_weight"),
    ]:
        with pytest.raises(InputError, match=match):
            PETNet(3, **params).fit(x, x)  # type: ignore[arg-type]


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> str:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match.lower() in err[0].lower(), err[0]
    return err[0]


def test_cli_names_bad_values_in_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = {
        "nan-energy.root": {"energy": np.array([0.511, np.nan, 0.45, 0.5])},
        "negative-crystal.root": {"crystalID": np.array([0, -1, 2, 2])},
    }
    for name, override in cases.items():
        path = write_gate(tmp_path / name, [singles(**override)])
        out = tmp_path / f"{name}.out.root"
        argv = ["pet", "sort", str(path), "--window-ns", "4", "--policy", "killAll", "--out", str(out)]
        fails_with_one_line(capsys, argv, f"branch '{next(iter(override))}'")
        assert not out.exists()
    good = write_gate(tmp_path / "good.root", [singles()])
    out = tmp_path / "o.root"
    argv = ["pet", "sort", str(good), "--window-ns", "4", "--policy", "killAll", "--out", str(out)]
    fails_with_one_line(capsys, [*argv, "--energy-window-kev", "0.35", "0.65"], "looks like MeV")
    fails_with_one_line(capsys, [*argv, "--energy-window-kev", "nan", "650"], "--energy-window-kev")

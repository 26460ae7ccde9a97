"""The simulator: geometry, physics closed forms, GATE fields, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from hai.pet import (
    HITS_BRANCHES,
    SINGLES_BRANCHES,
    CylinderSource,
    LineSource,
    PointSource,
    WaterCylinder,
    get_scanner,
    simulate,
    sort_coincidences,
)
from hai.pet.simulate import (
    ELECTRON_MASS_KEV,
    _decays,
    _klein_nishina_cos,
    _klein_nishina_cos_table,
    _may_reach,
)
from hai.shared import InputError

IDEAL = get_scanner("clinical", efficiency=1.0, photofraction=1.0, energy_resolution=0.0, ctr_ps=0.0)


def test_presets_and_overrides() -> None:
    clinical, safir = get_scanner("clinical"), get_scanner("safir")
    assert clinical.crystals_per_ring == 240
    assert clinical.radius_mm == 400.0
    assert safir.radius_mm < clinical.radius_mm
    assert safir.ctr_ps < clinical.ctr_ps
    assert get_scanner("safir", rings=2).n_crystals == 2 * safir.crystals_per_ring
    with pytest.raises(InputError, match="unknown scanner preset 'biograph'"):
        get_scanner("biograph")
    with pytest.raises(InputError, match="unknown scanner parameter"):
        get_scanner("clinical", radius=3)
    with pytest.raises(InputError, match="sectors"):
        get_scanner("clinical", sectors=7)


def test_gate_branches_sorted_times_and_determinism() -> None:
    a = simulate("safir", [CylinderSource(5e5, radius_mm=15, length_mm=10)], seconds=2e-3, seed=7)
    assert set(SINGLES_BRANCHES) | {"photonID"} == set(a.singles.keys())
    assert set(HITS_BRANCHES) == set(a.hits.keys())
    assert np.all(np.diff(a.singles["time"]) >= 0)
    assert np.all(np.diff(a.hits["time"]) >= 0)
    # string branches agree with the counters they name
    s, h = a.singles, a.hits
    expected = np.where(
        s["comptonPhantom"] > 0, "phantom", np.where(s["comptonCrystal"] > 0, "crystal", "NULL")
    )
    assert np.array_equal(s["comptVolName"], expected)
    assert {"NULL", "phantom", "crystal"} <= set(s["comptVolName"].tolist())
    assert np.array_equal(h["processName"] == "compt", h["nCrystalCompton"] > 0)
    assert set(h["processName"].tolist()) == {"phot", "compt"}
    assert a.singles["eventID"].dtype == np.int32
    assert a.singles["time"].dtype == np.float64
    b = simulate("safir", [CylinderSource(5e5, radius_mm=15, length_mm=10)], seconds=2e-3, seed=7)
    c = simulate("safir", [CylinderSource(5e5, radius_mm=15, length_mm=10)], seconds=2e-3, seed=8)
    assert a.singles.equals(b.singles)
    assert a.hits.equals(b.hits)
    assert not a.singles.equals(c.singles)
    # decays are Poisson(activity x time) = 1000 on average
    assert abs(a.n_decays - 1000) < 5 * np.sqrt(1000)
    assert set(np.unique(a.singles["photonID"]).tolist()) == {1, 2}


def test_back_to_back_photons_from_the_centre_hit_opposite_crystals() -> None:
    sim = simulate(IDEAL, [PointSource(2e6)], seconds=5e-3, seed=1, phantom=None)
    s = sim.singles
    assert s["comptonPhantom"].sum() == 0
    assert np.all(s["energy"] == 0.511)
    ev = s["eventID"]
    order = np.lexsort((s["photonID"], ev))
    ev_sorted = ev[order]
    first = np.flatnonzero(ev_sorted[:-1] == ev_sorted[1:])
    i, j = order[first], order[first + 1]
    assert len(i) > 50
    per = IDEAL.crystals_per_sector
    c = lambda k: s["rsectorID"][k].astype(int) * per + s["crystalID"][k] % per  # noqa: E731
    ring = lambda k: s["crystalID"][k] // per  # noqa: E731
    assert np.all((c(j) - c(i)) % IDEAL.crystals_per_ring == IDEAL.crystals_per_ring // 2)
    assert np.all(ring(i) + ring(j) == IDEAL.rings - 1)
    # both photons fly R/c; with no timing blur the two singles have the same time
    assert np.all(s["time"][i] == s["time"][j])
    # hits lie on the crystal cylinder
    assert np.allclose(np.hypot(sim.hits["posX"], sim.hits["posY"]), IDEAL.radius_mm)


def test_single_photon_losses_follow_the_efficiency() -> None:
    full = simulate(IDEAL, [PointSource(1e6)], seconds=5e-3, seed=2, phantom=None)
    half = simulate(
        IDEAL.with_overrides(efficiency=0.5), [PointSource(1e6)], seconds=5e-3, seed=2, phantom=None
    )
    none = simulate(
        IDEAL.with_overrides(efficiency=0.0), [PointSource(1e6)], seconds=5e-3, seed=2, phantom=None
    )
    assert len(none.singles) == 0
    ratio = len(half.singles) / len(full.singles)
    assert ratio == pytest.approx(0.5, abs=5 * np.sqrt(0.25 / len(full.singles)))
    # an axially short ring sees only photons within its acceptance: ~ L / (2 R) of all
    acceptance = len(full.hits) / (2 * full.n_decays)
    axial = IDEAL.axial_length_mm / 2
    expected = axial / np.hypot(axial, IDEAL.radius_mm)  # solid-angle fraction of a cylinder band
    assert acceptance == pytest.approx(expected, rel=0.1)


def test_energy_and_timing_resolution() -> None:
    scanner = IDEAL.with_overrides(energy_resolution=0.12, ctr_ps=300.0)
    sim = simulate(scanner, [PointSource(5e6)], seconds=5e-3, seed=3, phantom=None)
    s = sim.singles
    sigma_kev = np.std(s["energy"] * 1000)
    assert sigma_kev == pytest.approx(0.12 * 511 / 2.3548, rel=0.08)
    ev = s["eventID"]
    order = np.lexsort((s["photonID"], ev))
    first = np.flatnonzero(ev[order][:-1] == ev[order][1:])
    dt_ps = (s["time"][order[first]] - s["time"][order[first + 1]]) * 1e12
    assert np.std(dt_ps) == pytest.approx(300.0 / 2.3548, rel=0.12)


def test_klein_nishina_sampler_matches_the_cross_section() -> None:
    rng = np.random.default_rng(0)
    cos = _klein_nishina_cos(rng, np.full(200_000, 511.0))
    grid = np.linspace(-1, 1, 20001)
    p = 1 / (1 + 511.0 / ELECTRON_MASS_KEV * (1 - grid))
    density = p * p * (p + 1 / p - (1 - grid**2))
    mean = np.trapezoid(grid * density, grid) / np.trapezoid(density, grid)
    assert cos.mean() == pytest.approx(mean, abs=0.01)
    assert cos.min() >= -1
    assert cos.max() <= 1


def test_phantom_scatter_loses_energy_and_is_flagged() -> None:
    scanner = IDEAL.with_overrides(lld_kev=0.0)
    sim = simulate(scanner, [LineSource(3e6)], seconds=3e-3, seed=4, phantom=WaterCylinder(100.0, 400.0))
    h = sim.hits
    scattered = h["nPhantomCompton"] == 1
    assert 0.1 < scattered.mean() < 0.9
    e = h["edep"] * 1000
    assert np.all(e[~scattered] == 511.0)
    # Compton: 511/3 keV (backscatter) <= E' < 511 keV
    assert np.all(e[scattered] < 511.0)
    assert np.all(e[scattered] >= 511.0 / 3 - 1e-9)
    # scattered photons no longer come from the source line x = y = 0 ... but their singles
    # keep the truth: the annihilation point
    assert np.all(sim.singles["sourcePosX"] == 0.0)


def test_randoms_grow_with_activity() -> None:
    def random_fraction(activity: float) -> float:
        sim = simulate(
            "clinical", [CylinderSource(activity, radius_mm=100, length_mm=16)], seconds=4e-3, seed=5
        )
        r = sort_coincidences(sim.singles, 4.0, policy="takeWinnerOfGoods", energy_window_kev=(350, 650))
        c = r.coincidences
        return float(np.mean(c["eventID1"] != c["eventID2"]))

    low, high = random_fraction(2e6), random_fraction(1e8)
    assert low < 0.05 < high


def test_bad_input() -> None:
    with pytest.raises(InputError, match="seconds must be a positive number"):
        simulate("safir", [PointSource(1e3)], seconds=0)
    with pytest.raises(InputError, match="activity"):
        simulate("safir", [PointSource(-1.0)], seconds=1e-3)
    with pytest.raises(InputError, match="at least one source"):
        simulate("safir", [], seconds=1e-3)


@pytest.mark.parametrize("energy_kev", [100.0, 511.0, 1500.0])
def test_klein_nishina_samplers_follow_the_cross_section(energy_kev: float) -> None:
    grid = np.linspace(-1, 1, 20001)
    p = 1 / (1 + energy_kev / ELECTRON_MASS_KEV * (1 - grid))
    density = p * p * (p + 1 / p - (1 - grid**2))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    cdf /= cdf[-1]
    n = 200_000
    rng = np.random.default_rng(1)
    exact = _klein_nishina_cos(rng, np.full(n, energy_kev))
    table = _klein_nishina_cos_table(rng, energy_kev, n)
    assert table.dtype == np.float32
    for cos in (exact, table):
        assert cos.min() >= -1
        assert cos.max() <= 1
        # Kolmogorov-Smirnov distance to the closed-form CDF (1.95/sqrt(n) is the 0.1% level)
        x = np.sort(cos.astype(np.float64))
        ks = np.max(np.abs(np.interp(x, grid, cdf) - np.arange(1, n + 1) / n))
        assert ks < 1.95 / np.sqrt(n)


def test_may_reach_never_drops_a_photon_that_reaches_the_rings() -> None:
    rng = np.random.default_rng(2)
    n, radius, z_half = 200_000, 60.0, 8.8
    r = 24 * np.sqrt(rng.random(n))
    phi = 2 * np.pi * rng.random(n)
    qx, qy, qz = r * np.cos(phi), r * np.sin(phi), 24 * (2 * rng.random(n) - 1)
    nz = 2 * rng.random(n) - 1
    t = 2 * np.pi * rng.random(n)
    nx, ny = np.sqrt(1 - nz**2) * np.cos(t), np.sqrt(1 - nz**2) * np.sin(t)
    a, b = nx**2 + ny**2, qx * nx + qy * ny
    s = (np.sqrt(b * b - a * (qx**2 + qy**2 - radius**2)) - b) / a
    reaches = np.abs(qz + s * nz) < z_half
    kept = _may_reach(qx, qy, qz, nz, radius, z_half)
    assert reaches.sum() > 1000
    assert np.all(kept[reaches])
    assert kept.mean() < 0.5  # and it does cull


def test_decays_are_sorted_uniform_poisson_and_labelled_by_source() -> None:
    rng = np.random.default_rng(3)
    sources = [PointSource(3e5, (1.0, 0.0, 0.0)), PointSource(1e5, (0.0, 2.0, 0.0))]
    times, positions, ids = _decays(sources, 0.5, 0.1, rng)
    assert abs(len(times) - 4e4) < 5 * np.sqrt(4e4)
    assert np.all(np.diff(times) >= 0)
    assert times.min() >= 0.5
    assert times.max() < 0.6
    u = np.sort((times - 0.5) / 0.1)
    assert np.max(np.abs(u - np.arange(1, len(u) + 1) / len(u))) < 1.95 / np.sqrt(len(u))
    assert np.mean(ids == 1) == pytest.approx(0.25, abs=5 * np.sqrt(0.25 * 0.75 / len(ids)))
    assert np.array_equal(positions[:, 0] == 1.0, ids == 0)
    assert np.array_equal(positions[:, 1] == 2.0, ids == 1)
    # source labels are interleaved in time, not blocked by source
    assert 0.2 < np.mean(ids[1:] != ids[:-1]) < 0.5


def test_many_time_slices_keep_ids_times_and_determinism(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    module = sys.modules["hai.pet.simulate"]
    monkeypatch.setattr(module, "DECAYS_PER_CHUNK", 200)
    args = ("safir", [CylinderSource(1e6, radius_mm=15, length_mm=10)])
    a = simulate(*args, seconds=2e-3, seed=5)
    b = simulate(*args, seconds=2e-3, seed=5)
    assert a.singles.equals(b.singles)
    assert abs(a.n_decays - 2000) < 5 * np.sqrt(2000)
    h = a.hits
    assert np.all(np.diff(h["time"]) >= 0)
    assert h["time"].max() < 2e-3 + 1e-8
    assert 0 <= h["eventID"].min() <= h["eventID"].max() < a.n_decays
    # an event has at most its two photons, one of each
    key = h["eventID"].astype(np.int64) * 2 + h["photonID"] - 1
    assert len(np.unique(key)) == len(key)
    # event ids follow decay time across slices: in event order, times fall back by no more than
    # a difference of flight times (a few ns)
    in_event_order = h["time"][np.argsort(h["eventID"], kind="stable")]
    assert np.all(np.diff(in_event_order) > -5e-9)

"""hai.photonics.tmm against tmm (the reference), closed forms and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tmm  # the reference implementation; the test extra installs it
import torch

from hai.photonics.tmm import coherent, incoherent
from hai.shared import InputError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def random_stack(rng: np.random.Generator, wavelengths: int) -> tuple[np.ndarray, np.ndarray]:
    layers = int(rng.integers(1, 21))
    n = np.empty((layers + 2, wavelengths), complex)
    n[0] = rng.uniform(1.0, 1.6)
    for i in range(1, layers + 1):
        if rng.random() < 0.3:  # metal
            n[i] = rng.uniform(0.05, 2, wavelengths) + 1j * rng.uniform(1, 8, wavelengths)
        else:
            n[i] = rng.uniform(1.3, 4, wavelengths) + 1j * rng.uniform(0, 0.3, wavelengths) * (
                rng.random() < 0.5
            )
    n[-1] = rng.uniform(1, 3.5) + 1j * rng.uniform(0, 2) * (rng.random() < 0.5)  # absorbing exit allowed
    d = np.r_[0.0, rng.uniform(0, 300, layers), 0.0]
    return n, d


@pytest.mark.parametrize("pol", ["s", "p"])
def test_coherent_matches_tmm_on_random_stacks(pol: str) -> None:
    rng = np.random.default_rng(1 if pol == "s" else 2)
    wl = np.array([350.0, 800.0, 1700.0])
    angles = [0.0, 30.0, 60.0, 85.0]
    worst = 0.0
    for _ in range(12):
        n, d = random_stack(rng, wl.size)
        res = coherent(torch.tensor(n), torch.tensor(d), wl, angle_deg=angles, pol=pol, layer_absorption=True)
        assert res.R.shape == (len(angles), wl.size)
        assert res.r is not None
        assert res.t is not None
        assert res.layer_absorption is not None
        for ai, angle in enumerate(angles):
            for wi, lam in enumerate(wl):
                ref = tmm.coh_tmm(pol, list(n[:, wi]), [np.inf, *d[1:-1], np.inf], math.radians(angle), lam)
                per_layer = tmm.absorp_in_each_layer(ref)
                errors = [
                    abs(ref["R"] - res.R[ai, wi].item()),
                    abs(ref["T"] - res.T[ai, wi].item()),
                    abs(ref["r"] - res.r[ai, wi].item()),
                    abs(ref["t"] - res.t[ai, wi].item()),
                    float(np.abs(per_layer[1:-1] - res.layer_absorption[ai, 1:-1, wi].numpy()).max()),
                ]
                worst = max(worst, *errors)
    assert worst < 1e-10


def test_unpolarised_matches_tmm() -> None:
    rng = np.random.default_rng(3)
    n, d = random_stack(rng, 2)
    wl = np.array([500.0, 900.0])
    res = coherent(n, d, wl, angle_deg=50.0, pol="u")
    assert res.r is None
    for wi, lam in enumerate(wl):
        ref = tmm.unpolarized_RT(list(n[:, wi]), [np.inf, *d[1:-1], np.inf], math.radians(50), lam)
        assert res.R[wi].item() == pytest.approx(ref["R"], abs=1e-12)
        assert res.T[wi].item() == pytest.approx(ref["T"], abs=1e-12)


@pytest.mark.parametrize("pol", ["s", "p"])
def test_incoherent_layers_match_inc_tmm(pol: str) -> None:
    rng = np.random.default_rng(4)
    wl = np.array([400.0, 700.0, 1100.0])
    worst = 0.0
    for _ in range(6):
        layers = int(rng.integers(1, 6))
        n = np.empty((layers + 5, wl.size), complex)
        n[0] = 1.0
        for i in range(1, layers + 1):
            n[i] = rng.uniform(1.3, 3) + 1j * rng.uniform(0, 0.5) * (rng.random() < 0.5)
        n[layers + 1] = 1.52 + 1j * rng.uniform(1e-7, 1e-5)  # thick, slightly absorbing glass
        n[layers + 2] = rng.uniform(1.3, 2.5) + 0.05j  # a coherent layer below the glass
        n[layers + 3] = 1.6 + 1e-6j  # a second thick incoherent layer
        n[layers + 4] = 1.0
        d = np.r_[0.0, rng.uniform(0, 300, layers), rng.uniform(1e4, 5e5), rng.uniform(10, 200), 2e5, 0.0]
        c_list = ["i"] + ["c"] * layers + ["i", "c", "i", "i"]
        for angle in (0.0, 40.0):
            res = incoherent(
                n,
                d,
                wl,
                incoherent_layers=[layers + 1, layers + 3],
                angle_deg=angle,
                pol=pol,
                layer_absorption=True,
            )
            assert res.layer_absorption is not None
            assert torch.allclose(res.layer_absorption.sum(0), res.A, atol=1e-13)
            for wi, lam in enumerate(wl):
                ref = tmm.inc_tmm(
                    pol, list(n[:, wi]), [np.inf, *d[1:-1], np.inf], c_list, math.radians(angle), lam
                )
                per_layer = np.asarray(tmm.inc_absorp_in_each_layer(ref))
                worst = max(
                    worst,
                    abs(ref["R"] - res.R[wi].item()),
                    abs(ref["T"] - res.T[wi].item()),
                    float(np.abs(per_layer[1:-1] - res.layer_absorption[1:-1, wi].numpy()).max()),
                )
    assert worst < 1e-10


def test_opaque_substrate_gives_zero_transmission() -> None:
    n = torch.tensor([[1.0], [2.0], [1.5 + 0.01j], [1.0]], dtype=torch.complex128)
    res = incoherent(n, [0.0, 100.0, 1e7, 0.0], [500.0], incoherent_layers=[2], layer_absorption=True)
    assert res.T.item() == 0.0
    assert torch.isfinite(res.R).all()
    front = coherent(n[:3], [0.0, 100.0, 0.0], [500.0])  # the substrate as a semi-infinite exit medium
    assert res.R.item() == pytest.approx(front.R.item(), abs=1e-12)


def test_fresnel_interface_and_brewster() -> None:
    n = torch.tensor([[1.0], [1.5]], dtype=torch.complex128)
    d = torch.zeros(2)
    assert coherent(n, d, [600.0]).R.item() == pytest.approx(0.04, abs=1e-15)
    brewster = math.degrees(math.atan(1.5))
    assert coherent(n, d, [600.0], angle_deg=brewster, pol="p").R.item() == pytest.approx(0.0, abs=1e-15)
    # total internal reflection from glass into air
    inside = torch.tensor([[1.5], [1.0]], dtype=torch.complex128)
    for pol in ("s", "p"):
        res = coherent(inside, d, [600.0], angle_deg=60.0, pol=pol)
        assert res.R.item() == pytest.approx(1.0, abs=1e-14)
        assert res.T.item() == pytest.approx(0.0, abs=1e-14)


def test_quarter_wave_ar_and_bragg_mirror() -> None:
    lam, ns = 550.0, 1.52
    n_ar = math.sqrt(ns)
    n = torch.tensor([[1.0], [n_ar], [ns]], dtype=torch.complex128)
    res = coherent(n, torch.tensor([0.0, lam / 4 / n_ar, 0.0]), [lam])
    assert res.R.item() == pytest.approx(0.0, abs=1e-15)
    nh, nl, pairs = 2.35, 1.46, 5
    ns_list = [1.0] + [nh, nl] * pairs + [ns]
    d_list = [0.0] + [lam / 4 / nh, lam / 4 / nl] * pairs + [0.0]
    mirror = coherent(torch.tensor(ns_list, dtype=torch.complex128)[:, None], torch.tensor(d_list), [lam])
    y = (nh / nl) ** (2 * pairs) * ns
    assert mirror.R.item() == pytest.approx(((1 - y) / (1 + y)) ** 2, abs=1e-13)
    assert mirror.R.item() == pytest.approx(0.977706, abs=1e-6)


def test_energy_conservation_and_reciprocity() -> None:
    rng = np.random.default_rng(5)
    wl = np.linspace(400, 1600, 7)
    n, d = random_stack(rng, wl.size)
    n[0] = 1.0
    res = coherent(n, d, wl, angle_deg=[0.0, 45.0], pol="u", layer_absorption=True)
    assert res.layer_absorption is not None
    assert torch.allclose(res.R + res.T + res.A, torch.ones_like(res.R), atol=1e-14)
    assert bool((res.A > -1e-12).all())
    # the per-layer absorption adds up to A when the exit medium does not absorb... it is in T otherwise
    assert torch.allclose(res.layer_absorption.sum(-2), res.A, atol=1e-12)
    # lossless stack: A = 0 and the same R from both sides
    lossless = n.real.astype(complex)
    lossless[0] = lossless[-1] = 1.0
    fwd = coherent(lossless, d, wl)
    bwd = coherent(lossless[::-1].copy(), d[::-1].copy(), wl)
    assert torch.allclose(fwd.A, torch.zeros_like(fwd.A), atol=1e-13)
    assert torch.allclose(fwd.R, bwd.R, atol=1e-13)


def test_thick_absorbing_layer_does_not_overflow() -> None:
    n_ag = 0.12 + 3.5j
    n = torch.tensor([[1.0], [n_ag], [1.5]], dtype=torch.complex128)
    res = coherent(n, torch.tensor([0.0, 1e7, 0.0]), [550.0], pol="p", angle_deg=30.0, layer_absorption=True)
    assert torch.isfinite(res.R).all()
    assert torch.isfinite(res.T).all()
    assert res.T.item() == 0.0
    bulk = coherent(n[:2], torch.zeros(2), [550.0], pol="p", angle_deg=30.0)  # semi-infinite silver
    assert res.R.item() == pytest.approx(bulk.R.item(), abs=1e-15)
    single = coherent(n, torch.tensor([0.0, 1e7, 0.0]), [550.0], dtype=torch.complex64)
    assert torch.isfinite(single.R).all()


def test_zero_thickness_layer_and_batching() -> None:
    rng = np.random.default_rng(6)
    wl = np.array([450.0, 900.0])
    n, d = random_stack(rng, wl.size)
    base = coherent(n, d, wl, angle_deg=20.0, pol="p")
    n_extra = np.insert(n, 1, 2.0 + 0.5j, axis=0)
    d_extra = np.insert(d, 1, 0.0)
    extra = coherent(n_extra, d_extra, wl, angle_deg=20.0, pol="p")
    assert torch.allclose(base.R, extra.R, atol=1e-13)
    assert torch.allclose(base.T, extra.T, atol=1e-13)
    # a batch (3 thickness sets sharing n) equals one call per stack
    ds = np.stack([d, d * 0.5, d * 1.5])
    batched = coherent(n, ds, wl, angle_deg=20.0, pol="p")
    assert batched.R.shape == (3, 2)
    for i in range(3):
        single = coherent(n, ds[i], wl, angle_deg=20.0, pol="p")
        assert torch.allclose(batched.R[i], single.R, atol=1e-15, rtol=0)


def test_complex64_is_close_to_complex128() -> None:
    rng = np.random.default_rng(7)
    wl = np.linspace(300, 2000, 50)
    n, d = random_stack(rng, wl.size)
    exact = coherent(n, d, wl)
    fast = coherent(torch.tensor(n, dtype=torch.complex64), d, wl)
    assert fast.R.dtype == torch.float32
    assert float((fast.R.double() - exact.R).abs().max()) < 1e-4


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(8)
    inner = rng.uniform(1.3, 3, (3, 3)) + 1j * rng.uniform(
        0.1, 2, (3, 3)
    )  # k > 0: perturbations stay passive
    n_t = torch.tensor(inner, requires_grad=True)
    d_t = torch.tensor(rng.uniform(20, 200, 3), requires_grad=True)
    air = torch.ones(1, 3, dtype=torch.complex128)
    glass = torch.full((1, 3), 1.5 + 0j, dtype=torch.complex128)

    def reflect(n_in: torch.Tensor, d_in: torch.Tensor) -> torch.Tensor:
        n_full = torch.cat([air, n_in, glass])
        d_full = torch.cat([torch.zeros(1, dtype=torch.float64), d_in, torch.zeros(1, dtype=torch.float64)])
        res = coherent(n_full, d_full, [500.0, 800.0, 1200.0], angle_deg=25.0, pol="p")
        return torch.stack([res.R, res.T])

    assert torch.autograd.gradcheck(reflect, (n_t, d_t), eps=1e-6, atol=1e-6)


def test_bad_input_is_explained() -> None:
    n = torch.tensor([[1.0], [2.0], [1.5]], dtype=torch.complex128)
    with pytest.raises(InputError, match="negative"):
        coherent(n, [0.0, -5.0, 0.0], [500.0])
    with pytest.raises(InputError, match="NaN"):
        coherent(n, [0.0, float("nan"), 0.0], [500.0])
    with pytest.raises(InputError, match="polarisation"):
        coherent(n, [0.0, 5.0, 0.0], [500.0], pol="x")
    with pytest.raises(InputError, match="wavelengths"):
        coherent(n, [0.0, 5.0, 0.0], [500.0, 600.0])
    with pytest.raises(InputError, match="d_nm must have shape"):
        coherent(n, [0.0, 5.0], [500.0])
    with pytest.raises(InputError, match=r"\[0, 90\)"):
        coherent(n, [0.0, 5.0, 0.0], [500.0], angle_deg=90.0)
    with pytest.raises(InputError, match="gain"):
        coherent(torch.tensor([[1.0], [2.0 - 0.1j], [1.5]]), [0.0, 5.0, 0.0], [500.0])
    with pytest.raises(InputError, match="incoherent_layers"):
        incoherent(n, [0.0, 5.0, 0.0], [500.0], incoherent_layers=[0])

"""Issue 12.2: incoherent layers in which the light is evanescent give physical values, not NaN.

References: the coherent solver (a thick layer in which light is evanescent passes nothing, so
coherent and incoherent treatments agree), ``tmm.inc_tmm`` where it is physical, ``tmm.inc_tmm``
on the stack cut at the evanescent layer where it is not (it returns R = -2.69 on the issue's
repro), and energy conservation R + T + Σ A_layer = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tmm  # the reference implementation; the test extra installs it
import torch

from hai.photonics.tmm import coherent, incoherent

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")


def column(values: list[complex]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.complex128)[:, None]


def check_finite_and_balanced(res: object, nonnegative: bool = True) -> None:
    R, T, A_l = res.R, res.T, res.layer_absorption  # type: ignore[attr-defined]
    assert A_l is not None
    for x in (R, T, A_l):
        assert bool(torch.isfinite(x).all())
    assert torch.allclose(R + T + A_l.sum(-2), torch.ones_like(R), atol=1e-13)
    if nonnegative:
        assert bool((A_l > -1e-13).all())


@pytest.mark.parametrize("pol", ["s", "p"])
def test_issue_repro_evanescent_incoherent_layer_reflects_everything(pol: str) -> None:
    n = column([2.0, 1.8, 1.5, 1.5])
    d = [0.0, 100.0, 1e4, 0.0]
    res = incoherent(n, d, [600.0], incoherent_layers=[2], angle_deg=60.0, pol=pol, layer_absorption=True)
    check_finite_and_balanced(res)
    ref = coherent(n, d, [600.0], angle_deg=60.0, pol=pol)
    assert ref.R.item() == pytest.approx(1.0, abs=1e-14)
    assert res.R.item() == pytest.approx(ref.R.item(), abs=1e-14)
    assert res.T.item() == 0.0


@pytest.mark.parametrize("pol", ["s", "p"])
def test_issue_repro_absorbing_incoherent_layer_above_total_internal_reflection(pol: str) -> None:
    values = [2.5, 1.8, 0.5 + 5j, 1.0]
    d = [0.0, 100.0, 40.0, 0.0]
    res = incoherent(
        column(values), d, [600.0], incoherent_layers=[2], angle_deg=60.0, pol=pol, layer_absorption=True
    )
    check_finite_and_balanced(res)
    assert res.layer_absorption is not None
    ref = tmm.inc_tmm(
        pol, values, [np.inf, 100.0, 40.0, np.inf], ["i", "c", "i", "i"], math.radians(60), 600.0
    )
    per_layer = np.asarray(tmm.inc_absorp_in_each_layer(ref))
    assert res.R.item() == pytest.approx(ref["R"], abs=1e-12)
    assert res.T.item() == pytest.approx(0.0, abs=1e-15)
    assert res.layer_absorption[2, 0].item() == pytest.approx(per_layer[2], abs=1e-12)
    assert res.layer_absorption[2, 0].item() > 1e-3  # the metal really absorbs
    assert res.layer_absorption[1, 0].item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("pol", ["s", "p"])
def test_light_trapped_between_evanescent_layers_adds_nothing(pol: str) -> None:
    # incoherent 1.5 (evanescent at 60° from n0 = 2), incoherent 1.9 (propagating, lossless),
    # air (evanescent): the 1.9 layer reflects totally on both sides, its loop sum is 1/0
    for values, d, inc in (
        ([2.0, 1.5, 1.9, 1.0], [0.0, 1e4, 1e4, 0.0], [1, 2]),
        ([2.0, 1.7, 1.5, 1.9, 1.2, 1.0], [0.0, 100.0, 1e4, 1e4, 30.0, 0.0], [2, 3]),
    ):
        res = incoherent(
            column(values), d, [600.0], incoherent_layers=inc, angle_deg=60.0, pol=pol, layer_absorption=True
        )
        check_finite_and_balanced(res)
        assert res.R.item() == pytest.approx(1.0, abs=1e-14)
        assert res.T.item() == 0.0


@pytest.mark.parametrize("pol", ["s", "p"])
def test_evanescent_layer_cuts_the_stack_like_tmm_on_the_cut_stack(pol: str) -> None:
    # Random stacks above and below a lossless incoherent layer in which the light is evanescent:
    # R and the absorption above equal tmm.inc_tmm on the stack ending in that layer; nothing
    # is absorbed or transmitted below.
    rng = np.random.default_rng(12 if pol == "s" else 13)
    wl = np.array([450.0, 800.0, 1500.0])
    angle = 55.0
    for _ in range(6):
        above, below = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        n0 = 2.2
        cut_n = rng.uniform(1.0, n0 * math.sin(math.radians(angle)) - 0.05)
        top = [rng.uniform(1.3, 3.0, wl.size) + 1j * rng.uniform(0, 0.5, wl.size) for _ in range(above)]
        bottom = [rng.uniform(1.3, 3.0, wl.size) + 1j * rng.uniform(0, 0.5, wl.size) for _ in range(below)]
        n = np.array(
            [np.full(wl.size, n0), *top, np.full(wl.size, cut_n), *bottom, np.full(wl.size, 1.5)], complex
        )
        cut = above + 1
        d = np.r_[0.0, rng.uniform(10, 300, above), 5e4, rng.uniform(10, 300, below), 0.0]
        inc = [cut, cut + 1]  # the layer below the cut incoherent too
        d[cut + 1] = 2e4
        res = incoherent(n, d, wl, incoherent_layers=inc, angle_deg=angle, pol=pol, layer_absorption=True)
        check_finite_and_balanced(res)
        assert res.layer_absorption is not None
        assert torch.all(res.T == 0)
        assert torch.all(res.layer_absorption[cut:] == 0)
        for wi, lam in enumerate(wl):
            ref = tmm.inc_tmm(
                pol,
                list(n[: cut + 1, wi]),
                [np.inf, *d[1:cut], np.inf],
                ["i"] + ["c"] * above + ["i"],
                math.radians(angle),
                lam,
            )
            per_layer = np.asarray(tmm.inc_absorp_in_each_layer(ref))
            assert res.R[wi].item() == pytest.approx(ref["R"], abs=1e-12)
            np.testing.assert_allclose(res.layer_absorption[1:cut, wi].numpy(), per_layer[1:cut], atol=1e-12)


def test_absorbing_layers_near_the_critical_angle_stay_finite_and_match_tmm() -> None:
    # nearly lossless incoherent layers beyond their critical angle: the flux into them is tiny
    # but not zero. Results stay finite, balanced and equal to tmm.inc_tmm for every angle up
    # to 89°. Just beyond the critical angle the 1 µm layer is thin enough for the evanescent
    # light to tunnel, which a power (incoherent) treatment cannot describe: there R exceeds 1
    # by up to 3e-4 and that layer's absorption is negative, in tmm as here (README, "limits").
    values = [2.0, 1.5 + 1e-9j, 1.7, 1.4 + 1e-12j, 1.0]
    d = [0.0, 1e3, 80.0, 1e5, 0.0]
    angles = [float(a) for a in np.linspace(0, 89, 90)]
    for pol in ("s", "p"):
        res = incoherent(
            column(values),
            d,
            [633.0],
            incoherent_layers=[1, 3],
            angle_deg=angles,
            pol=pol,
            layer_absorption=True,
        )
        check_finite_and_balanced(res, nonnegative=False)
        assert res.layer_absorption is not None
        for ai, angle in enumerate(angles):
            ref = tmm.inc_tmm(
                pol, values, [np.inf, *d[1:-1], np.inf], list("iicii"), math.radians(angle), 633.0
            )
            per_layer = np.asarray(tmm.inc_absorp_in_each_layer(ref))
            assert res.R[ai, 0].item() == pytest.approx(ref["R"], abs=1e-12)
            assert res.T[ai, 0].item() == pytest.approx(ref["T"], abs=1e-12)
            np.testing.assert_allclose(res.layer_absorption[ai, 1:-1, 0].numpy(), per_layer[1:-1], atol=1e-12)

"""Simulation presets against tmm with the same n,k data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tmm  # the reference implementation; the test extra installs it
import torch

from hai.photonics import OPTOGPT, OPTOLLAMA, SimulationConfig, Vocabulary, nk, simulate, simulate_ids
from hai.photonics.dataset import random_stacks
from hai.shared import InputError


def test_presets() -> None:
    assert len(OPTOLLAMA.wavelengths_nm) == 171
    assert OPTOLLAMA.substrate is None
    assert OPTOLLAMA.incidence == OPTOLLAMA.exit == "Air"
    assert OPTOLLAMA.angle_deg == 0
    assert OPTOLLAMA.pol == "s"
    assert len(OPTOGPT.wavelengths_nm) == 71
    assert OPTOGPT.substrate == "Glass"
    assert SimulationConfig.from_dict(OPTOGPT.to_dict()) == OPTOGPT


def test_optollama_preset_matches_coh_tmm() -> None:
    stack = "TiO2_60 Ag_20 SiO2_100 Si_35"
    spectra = simulate(stack, "optollama")
    layers = [("TiO2", 60), ("Ag", 20), ("SiO2", 100), ("Si", 35)]
    wl = np.asarray(OPTOLLAMA.wavelengths_nm)
    table = {m: nk(m, wl) for m, _ in layers}
    for wi in range(0, wl.size, 17):
        ref = tmm.coh_tmm(
            "s",
            [1.0, *[table[m][wi] for m, _ in layers], 1.0],
            [np.inf, *[d for _, d in layers], np.inf],
            0.0,
            wl[wi],
        )
        assert spectra.R[0, wi].item() == pytest.approx(ref["R"], abs=1e-12)
        assert spectra.T[0, wi].item() == pytest.approx(ref["T"], abs=1e-12)
    assert torch.allclose(spectra.R + spectra.A + spectra.T, torch.ones(1, wl.size, dtype=torch.float64))
    assert spectra.stacked().shape == (1, 3, 171)


def test_optogpt_preset_matches_inc_tmm() -> None:
    spectra = simulate(["ZnS_40 MgF2_90", "Al_15"], "optogpt")
    wl = np.asarray(OPTOGPT.wavelengths_nm)
    glass = nk("Glass", wl)
    for row, layers in enumerate([[("ZnS", 40), ("MgF2", 90)], [("Al", 15)]]):
        for wi in range(0, wl.size, 10):
            n_list = [1.0, *[nk(m, wl)[wi] for m, _ in layers], glass[wi], 1.0]
            d_list = [np.inf, *[d for _, d in layers], 5e5, np.inf]
            c_list = ["i", *["c"] * len(layers), "i", "i"]
            ref = tmm.inc_tmm("s", n_list, d_list, c_list, 0.0, wl[wi])
            assert spectra.R[row, wi].item() == pytest.approx(ref["R"], abs=1e-12)
            assert spectra.T[row, wi].item() == pytest.approx(ref["T"], abs=1e-12)


def test_oblique_p_config_matches_tmm() -> None:
    config = SimulationConfig(wavelengths_nm=(500.0, 1000.0), angle_deg=35.0, pol="p")
    spectra = simulate("Ta2O5_120 TiN_10", config)
    for wi, lam in enumerate(config.wavelengths_nm):
        ref = tmm.coh_tmm(
            "p",
            [1.0, nk("Ta2O5", [lam])[0], nk("TiN", [lam])[0], 1.0],
            [np.inf, 120, 10, np.inf],
            math.radians(35),
            lam,
        )
        assert spectra.R[0, wi].item() == pytest.approx(ref["R"], abs=1e-12)


def test_ids_padding_and_batches_agree() -> None:
    vocab = Vocabulary()
    ids = random_stacks(40, np.random.default_rng(0), vocab)
    by_ids = simulate_ids(ids, vocab, batch_size=16)
    by_stacks = simulate(vocab.decode_batch(ids))
    assert torch.allclose(by_ids.R, by_stacks.R, atol=1e-13, rtol=0)
    assert torch.allclose(by_ids.T, by_stacks.T, atol=1e-13, rtol=0)
    # one stack alone equals the same stack in the padded batch
    alone = simulate(vocab.decode(ids[3]))
    assert torch.allclose(alone.R[0], by_stacks.R[3], atol=1e-15, rtol=0)
    fast = simulate_ids(ids, vocab, dtype=torch.complex64)
    assert float((fast.R.double() - by_ids.R).abs().max()) < 1e-3


def test_bad_configs_and_stacks() -> None:
    with pytest.raises(InputError, match="unknown simulation preset"):
        simulate("TiO2_60", "optoxyz")
    with pytest.raises(InputError, match="polarisation"):
        SimulationConfig(wavelengths_nm=(500.0,), pol="q")
    with pytest.raises(InputError, match="unknown material"):
        simulate("Gold_60")
    with pytest.raises(InputError, match="has n,k data"):
        simulate("SiO2_100", SimulationConfig(wavelengths_nm=(100.0, 500.0)))
    vocab = Vocabulary()
    with pytest.raises(InputError, match="<MSK>"):
        simulate_ids(torch.tensor([[vocab.id("TiO2_60"), vocab.mask_id, vocab.eos_id]]), vocab)

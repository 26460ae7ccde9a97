"""Event-driven PETNet inference (issue 19, ``method="event"``) equals the step-by-step network.

The reference is ``method="scan"``: every (sample, crystal) row through
``LocalPETNetModule.run_rows(fast=True)``, which equals snnTorch's ``Leaky`` step by step
(test_pet_petnet_parallel.py). The event path runs once per distinct input pattern and looks the
layers' currents up in tables, so its spikes, selected singles and pairs must be the same arrays,
on random inputs, on simulated acquisitions and with the shipped model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hai.pet.petnet as petnet_module
from hai.pet import CylinderSource, GateTree, PETNet, encode_spikes, get_scanner, simulate
from hai.pet.petnet import LocalPETNetModule, _lif_events, opposite_fan, shipped_model_path
from hai.shared import InputError


def _active_module(n_layers: int, seed: int, channels: int = 64, fan: int = 5) -> LocalPETNetModule:
    """A local network with large random weights and a decay of its own per layer: it fires on
    some inputs (and, for some seeds, on its biases alone)."""
    torch.manual_seed(seed)
    module = LocalPETNetModule(opposite_fan(channels, channels, fan), hidden=8, n_layers=n_layers, beta=0.7)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape) * 0.2)
            elif name.endswith("beta"):
                p.copy_(torch.rand(p.shape) * 0.6 + 0.3)
            else:
                p.copy_(torch.randn(p.shape) * 1.5 + 0.5)
    return module.eval()


def _net(module: LocalPETNetModule, channels: int, fan: int) -> PETNet:
    net = PETNet(channels, local=True, hidden=8, crystals_per_ring=channels, fan=fan, epochs=1)
    net.module_ = module
    net.device_ = torch.device("cpu")
    return net


def _random_singles(n: int, seed: int, span_s: float, sectors: int = 8) -> GateTree:
    rng = np.random.default_rng(seed)
    return GateTree(
        "Singles",
        {
            "eventID": np.repeat(np.arange(n // 2), 2)[rng.permutation(n)],
            "time": np.sort(rng.random(n)) * span_s,
            "rsectorID": rng.integers(0, sectors, n),
            "crystalID": rng.integers(0, 8, n),
            "comptonPhantom": np.zeros(n, dtype=np.int32),
        },
    )


@pytest.mark.parametrize(
    ("n_layers", "seed", "dtype"), [(1, 4, torch.float32), (2, 2, torch.float32), (2, 3, torch.float64)]
)
def test_lif_events_equals_the_step_by_step_network(n_layers: int, seed: int, dtype: torch.dtype) -> None:
    module = _active_module(n_layers, seed).to(dtype)
    rng = np.random.default_rng(seed)
    size = 4
    triples = np.stack(np.unravel_index(np.arange(2 * size * size), (2, size, size)), axis=1)
    code = rng.integers(0, len(triples), (600, 32)) * (rng.random((600, 32)) < 0.15)
    code[:50] = 0  # rows without input: the network's response to nothing
    quiet = module.run_rows(torch.zeros(1, 32, 3, dtype=dtype), fast=True)[0]
    with torch.no_grad():
        ref = module.run_rows(torch.from_numpy(triples[code]).to(dtype), fast=True)[0].numpy() > 0.5
        snn = module.run_rows(torch.from_numpy(triples[code]).to(dtype))[0].numpy() > 0.5
        got = _lif_events(module, code, triples, np.full(len(code), 31)).dense(np.arange(len(code)))
        last = rng.integers(0, 32, len(code))
        fired = _lif_events(module, code, triples, last)
        cut = fired.dense(np.arange(len(code)))
    assert 0.1 < ref.mean() < 0.6
    assert np.array_equal(ref, snn)
    assert np.array_equal(got[:50], np.broadcast_to(quiet.numpy() > 0.5, (50, 32)))
    assert np.array_equal(got, ref)
    upto = np.arange(32)[None, :] <= last[:, None]
    assert np.array_equal(cut, ref & upto)  # every step up to `last`, nothing after
    rows = rng.permutation(len(code))[:100]
    assert np.array_equal(fired.dense(rows), (ref & upto)[rows])
    lo = rng.integers(-3, 33, len(code))
    hi = lo + rng.integers(-1, 6, len(code))
    t = np.arange(32)[None, :]
    window = (t >= lo[:, None]) & (t <= hi[:, None])
    assert np.array_equal(fired.any_between(lo, hi), (ref & upto & window).any(1))


@pytest.mark.parametrize(
    ("n_layers", "seed", "n", "span_s"), [(1, 4, 1000, 2e-6), (2, 1, 3000, 2e-6), (1, 2, 400, 4e-6)]
)
def test_predict_spikes_event_equals_scan_on_random_singles(
    n_layers: int, seed: int, n: int, span_s: float
) -> None:
    """Dense random singles: crystals with several spikes in one sample and samples with more
    other spikes than a key holds (3000 singles in 2 µs: about 24 per 16 ns sample)."""
    singles = _random_singles(n, seed, span_s)
    enc = encode_spikes(singles, n_crystals=64, crystals_per_sector=8, bin_ns=0.5, n_steps=32)
    net = _net(_active_module(n_layers, seed), 64, 5)
    ref = net.predict_spikes(enc, method="scan")
    got = net.predict_spikes(enc, method="event")
    assert len(ref[0]) > 50
    per_sample = np.bincount(enc.sample)
    rows = np.unique(enc.sample * 64 + enc.channel, return_counts=True)[1]
    assert per_sample.max() >= 3  # keys past the direct table
    if n == 3000:  # rows with several spikes, and more other spikes than a key holds (9)
        assert rows.max() > 1
        assert per_sample.max() > 10
    for a, b in zip(got, ref, strict=True):
        assert np.array_equal(a, b)
    samples = enc.nonempty_samples[::3]
    for a, b in zip(
        net.predict_spikes(enc, samples, method="event"),
        net.predict_spikes(enc, samples, method="scan"),
        strict=True,
    ):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("tolerance", [0, 2])
def test_select_singles_and_pairs_event_equal_scan_on_random_singles(overlap: bool, tolerance: int) -> None:
    net = _net(_active_module(2, 4), 64, 5)
    opts = {
        "crystals_per_sector": 8,
        "bin_ns": 0.5,
        "n_steps": 32,
        "tolerance_steps": tolerance,
        "overlap": overlap,
    }
    for seed in (5, 6):
        singles = _random_singles(2000, seed, 3e-6)
        ref = net.select_singles(singles, method="scan", **opts)
        assert len(ref) > 20
        assert np.array_equal(net.select_singles(singles, method="event", **opts), ref)
        pairs = net.predict_pairs(singles, window_ns=2.0, method="scan", **opts)
        assert np.array_equal(net.predict_pairs(singles, window_ns=2.0, method="event", **opts), pairs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shipped_model_event_equals_scan_on_simulated_acquisitions(seed: int) -> None:
    scanner = get_scanner("clinical")
    net = PETNet.load(shipped_model_path())
    activity = (0.5e9, 1.5e9, 3e9)[seed]
    source = [CylinderSource(activity, radius_mm=100.0, length_mm=scanner.axial_length_mm)]
    singles = simulate(scanner, source, seconds=1e-4, seed=seed).singles
    opts = {
        "crystals_per_sector": scanner.crystals_per_sector,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": 0.5,
        "n_steps": 32,
        "tolerance_steps": 2,
    }
    for overlap in (True, False):
        ref = net.predict_pairs(singles, window_ns=1.0, overlap=overlap, method="scan", **opts)
        assert len(ref) > 10
        assert np.array_equal(net.predict_pairs(singles, window_ns=1.0, overlap=overlap, **opts), ref)
        assert np.array_equal(
            net.predict_pairs(singles, window_ns=1.0, overlap=overlap, method="parallel", **opts), ref
        )
    enc = encode_spikes(
        singles, n_crystals=scanner.n_crystals, **{k: opts[k] for k in opts if k != "tolerance_steps"}
    )
    for a, b in zip(net.predict_spikes(enc), net.predict_spikes(enc, method="scan"), strict=True):
        assert np.array_equal(a, b)


def test_event_chunks_and_other_step_counts_give_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net(_active_module(1, 6), 64, 5)
    singles = _random_singles(1500, 8, 3e-6)
    for n_steps in (20, 64):
        opts = {"crystals_per_sector": 8, "bin_ns": 0.5, "n_steps": n_steps, "tolerance_steps": 1}
        ref = net.select_singles(singles, method="scan", **opts)
        whole = net.select_singles(singles, **opts)
        monkeypatch.setattr(petnet_module, "EVENT_CHUNK", 97)  # many chunks, cut at sample edges
        chunked = net.select_singles(singles, **opts)
        enc = encode_spikes(singles, n_crystals=64, crystals_per_sector=8, bin_ns=0.5, n_steps=n_steps)
        spikes = net.predict_spikes(enc)
        monkeypatch.undo()
        assert len(ref) > 20
        assert np.array_equal(whole, ref)
        assert np.array_equal(chunked, ref)
        for a, b in zip(spikes, net.predict_spikes(enc, method="scan"), strict=True):
            assert np.array_equal(a, b)


def test_unknown_method_is_refused() -> None:
    net = _net(_active_module(1, 0), 64, 5)
    enc = encode_spikes(
        _random_singles(50, 0, 1e-6), n_crystals=64, crystals_per_sector=8, bin_ns=0.5, n_steps=32
    )
    with pytest.raises(InputError, match="method must be 'event', 'parallel' or 'scan'"):
        net.predict_spikes(enc, method="fast")


def test_changed_weights_are_not_served_from_the_caches() -> None:
    """The event path caches tables and the network's response to no input per weight tensor
    (and its version) and the fan matrix per geometry buffer: in-place edits and new tensors
    must both be seen."""
    module = _active_module(1, 3)
    net = _net(module, 64, 5)
    singles = _random_singles(1500, 9, 3e-5)
    opts = {"crystals_per_sector": 8, "bin_ns": 0.5, "n_steps": 32, "tolerance_steps": 2}
    before = net.select_singles(singles, **opts)
    assert 100 < len(before) < 1400
    assert np.array_equal(before, net.select_singles(singles, method="scan", **opts))
    bias = module.fcs[1].bias.detach().clone()
    with torch.no_grad():
        module.fcs[1].bias.sub_(1.0)  # in place
        module.lifs[0].beta.mul_(0.5)
    changed = net.select_singles(singles, **opts)
    assert not np.array_equal(changed, before)
    assert np.array_equal(changed, net.select_singles(singles, method="scan", **opts))
    module.fcs[1].bias = torch.nn.Parameter(bias)  # a new tensor
    module.geometry.copy_(opposite_fan(64, 64, 2))  # the buffer, in place
    flipped = net.select_singles(singles, **opts)
    assert np.array_equal(flipped, net.select_singles(singles, method="scan", **opts))
    assert len(flipped) > 0
    assert not np.array_equal(flipped, changed)

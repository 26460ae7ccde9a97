"""The time-parallel PETNet inference (issue 19.2) equals the step-by-step snnTorch network.

:func:`hai.pet.petnet.lif_time_parallel` and ``LocalPETNetModule.run_rows(parallel=True)``
integrate over the whole time window at once; the reference is snnTorch's ``Leaky`` called one
step at a time (``run_rows()`` without flags). In float64 the spikes are bit-equal and the
potentials agree to rounding; in float32 they agree on these inputs as well.
"""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch

from hai.pet import GateTree, PETNet, encode_spikes
from hai.pet.petnet import LocalPETNetModule, lif_time_parallel, opposite_fan


def _step_by_step(current: torch.Tensor, lif: snn.Leaky) -> tuple[torch.Tensor, torch.Tensor]:
    mem = lif.init_leaky()
    spikes, mems = [], []
    with torch.no_grad():
        for t in range(current.shape[1]):
            s, mem = lif(current[:, t], mem)
            spikes.append(s.to(current.dtype))
            mems.append(mem)
    return torch.stack(spikes, 1), torch.stack(mems, 1)


@pytest.mark.parametrize(("beta", "threshold"), [(0.5, 1.0), (0.95, 1.0), (0.0, 0.7), (1.0, 2.0)])
def test_lif_time_parallel_equals_snntorch_step_by_step(beta: float, threshold: float) -> None:
    gen = torch.Generator().manual_seed(3)
    current = torch.randn(200, 40, 5, generator=gen, dtype=torch.float64) * 1.2 + 0.4
    lif = snn.Leaky(beta=beta, threshold=threshold).to(current.dtype)
    ref_s, ref_m = _step_by_step(current, lif)
    s, m = lif_time_parallel(current, lif.beta, lif.threshold)  # snnTorch keeps them in float32
    assert 0.05 < float(ref_s.mean()) < 0.95  # neither silent nor saturated
    assert int(ref_s.sum(1).max()) >= 10  # neurons that fire many times (many passes)
    assert torch.equal(s, ref_s)
    torch.testing.assert_close(m, ref_m, rtol=0, atol=1e-12)


def _active_module(n_layers: int, seed: int) -> LocalPETNetModule:
    torch.manual_seed(seed)
    module = LocalPETNetModule(opposite_fan(64, 64, 5), hidden=8, n_layers=n_layers, beta=0.7)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape) * 1.5 + 0.3)
    return module


def _features(rows: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    events = torch.rand(rows, 32, 3, generator=gen) < 0.2
    return (events * torch.randint(1, 4, (rows, 32, 3), generator=gen)).to(torch.float64)


@pytest.mark.parametrize(("n_layers", "seed"), [(1, 2), (2, 2), (2, 7)])
def test_parallel_network_equals_the_step_by_step_network(n_layers: int, seed: int) -> None:
    module = _active_module(n_layers, seed).double()
    f = _features(500, seed)
    with torch.no_grad():
        ref_s, ref_m = module.run_rows(f)  # snnTorch, one step at a time
        par_s, par_m = module.run_rows(f, parallel=True)
        scan_s, _ = module.run_rows(f, fast=True)
    assert 0 < int(ref_s.sum()) < ref_s.numel()
    assert torch.equal(par_s, ref_s)
    assert torch.equal(scan_s, ref_s)
    torch.testing.assert_close(par_m, ref_m, rtol=0, atol=1e-10)
    module32, f32 = module.float(), f.float()
    with torch.no_grad():
        assert torch.equal(module32.run_rows(f32, parallel=True)[0], module32.run_rows(f32)[0])


def test_predict_spikes_parallel_selects_what_the_dense_network_selects() -> None:
    rng = np.random.default_rng(5)
    n, c = 1000, 64
    t = np.sort(rng.random(n)) * 2e-6
    singles = GateTree(
        "Singles",
        {
            "eventID": np.repeat(np.arange(n // 2), 2)[rng.permutation(n)],
            "time": t,
            "rsectorID": rng.integers(0, 8, n),
            "crystalID": rng.integers(0, 8, n),
            "comptonPhantom": np.zeros(n, dtype=np.int32),
        },
    )
    enc = encode_spikes(singles, n_crystals=c, crystals_per_sector=8, bin_ns=0.5, n_steps=32)
    net = PETNet(c, local=True, hidden=8, crystals_per_ring=c, fan=5, epochs=1)
    net.module_ = _active_module(1, 2).eval()
    net.device_ = torch.device("cpu")
    samples = enc.nonempty_samples
    dense = net.predict(enc.dense(samples)) * (enc.dense(samples) > 0)  # spikes where singles are
    s, step, ch = np.nonzero(dense)
    expected = set(zip(samples[s].tolist(), step.tolist(), ch.tolist(), strict=True))
    inputs = set(zip(enc.sample.tolist(), enc.step.tolist(), enc.channel.tolist(), strict=True))
    for method in ("parallel", "scan"):
        coords = net.predict_spikes(enc, method=method, max_rows=500)
        got = set(zip(*(c.tolist() for c in coords), strict=True))
        assert len(expected) > 20
        assert got & inputs == expected, method  # the spikes that can select a single

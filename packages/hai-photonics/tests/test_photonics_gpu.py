"""On CUDA the simulator gives the CPU's numbers (run where a GPU is available)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hai.photonics import Vocabulary, coherent, random_stacks, simulate_ids

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_cuda_matches_cpu() -> None:
    vocab = Vocabulary()
    ids = random_stacks(64, np.random.default_rng(0), vocab)
    cpu = simulate_ids(ids, vocab)
    gpu = simulate_ids(ids, vocab, device="cuda")
    assert gpu.R.device.type == "cuda"
    assert torch.allclose(gpu.R.cpu(), cpu.R, atol=1e-12, rtol=0)
    fast = simulate_ids(ids, vocab, device="cuda", dtype=torch.complex64)
    assert float((fast.R.cpu().double() - cpu.R).abs().max()) < 1e-3


def test_cuda_gradients_flow() -> None:
    n = torch.tensor([[1.0], [2.2 + 0.1j], [1.5]], dtype=torch.complex128, device="cuda")
    d = torch.tensor([0.0, 80.0, 0.0], dtype=torch.float64, device="cuda", requires_grad=True)
    res = coherent(n, d, torch.tensor([550.0], device="cuda"), angle_deg=[0.0, 45.0], pol="u")
    res.R.sum().backward()
    assert d.grad is not None
    assert bool(torch.isfinite(d.grad).all())
    assert d.grad[1] != 0

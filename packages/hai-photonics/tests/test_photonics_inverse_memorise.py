"""A tiny OptoLlama (and OptoGPT) memorises 16 stacks and samples them back from their spectra.

The stacks are of dielectrics only: behind an opaque metal layer the layers below leave no trace
in the spectrum, so stacks starting with, say, 200 nm of TiN cannot be told apart by anyone; and
the 16 are drawn so that their spectra differ pairwise by a mean absolute error of at least 0.03.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hai.photonics.dataset import Dataset, random_stacks
from hai.photonics.inverse.checkpoints import load_model
from hai.photonics.inverse.optogpt import OptoGPT, decode
from hai.photonics.inverse.sampling import sample
from hai.photonics.inverse.training import TrainConfig, train
from hai.photonics.simulate import OPTOLLAMA, simulate_ids
from hai.photonics.stacks import Vocabulary
from hai.shared import torch_threads

VOCAB = Vocabulary(["TiO2", "SiO2", "Al2O3", "MgF2"], range(10, 301, 10), max_layers=5)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def data() -> Dataset:
    pool = random_stacks(64, np.random.default_rng(3), VOCAB)
    spectra = simulate_ids(pool, VOCAB, OPTOLLAMA).stacked().clamp(0, 1)
    flat = spectra.reshape(64, -1)
    dist = torch.cdist(flat, flat, p=1.0) / flat.shape[1]
    keep: list[int] = []
    for i in range(64):
        if all(float(dist[i, j]) >= 0.03 for j in keep):
            keep.append(i)
    assert len(keep) >= 16
    chosen = torch.tensor(keep[:16])
    return Dataset(spectra[chosen].half(), pool[chosen], VOCAB, OPTOLLAMA, 3)


def _fit(data: Dataset, model: str, out: Path) -> torch.nn.Module:
    cfg = TrainConfig(
        model=model,
        size="tiny",
        steps=300,
        batch_size=64,
        lr=3e-3,
        warmup=20,
        val_fraction=0.0,
        eval_every=300,
        label_smoothing=0.0,
    )
    result = train(data, out, cfg, progress_bar=False)
    return load_model(result.best_path, kind=model, vocab=VOCAB).model


def test_optollama_samples_memorised_stacks_back(data: Dataset, tmp_path: Path) -> None:
    model = _fit(data, "optollama", tmp_path)
    spectra = data.spectra.float()
    for method, steps in (("confidence", VOCAB.sequence_length), ("remask", 20)):
        out = sample(model, spectra, VOCAB, method=method, steps=steps, temperature=0.0)
        assert out.tolist() == data.tokens.tolist(), method


def test_optogpt_decodes_memorised_stacks_back(data: Dataset, tmp_path: Path) -> None:
    model = _fit(data, "optogpt", tmp_path)
    assert isinstance(model, OptoGPT)
    spectra = data.spectra.float()
    assert decode(model, spectra, VOCAB).tolist() == data.tokens.tolist()
    assert decode(model, spectra, VOCAB, method="beam", beams=3).tolist() == data.tokens.tolist()
